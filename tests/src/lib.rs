//! # kheo-tests
//!
//! End-to-end harness: the real server on a loopback port with a temporary
//! store, and simulated devices that speak the sync protocol over HTTP with
//! the same [`Replica`] the app uses. The integration tests (`tests/`) and
//! the sync benchmark (`benches/sync.rs`) are built on it; the browser tests
//! of the app will join them here.

use std::collections::BTreeMap;
use std::path::PathBuf;

use automerge::ActorId;
use kheo_server::accounts::NewAccount;
use kheo_server::{Config, RunningServer};
use kheo_shared::client::{ClientError, Replica};
use kheo_shared::codes::Role;
use kheo_shared::ids::{DocId, ModelId, RecordId};
use kheo_shared::model::ModelProfile;
use kheo_shared::protocol::{
    self, CONTENT_TYPE, ErrorBody, LOGIN_PATH, LoginRequest, LoginResponse, SYNC_PATH, SyncRequest, SyncResponse,
};
use kheo_shared::record::Record;
use kheo_shared::scalars::Timestamp;
use kheo_shared::schema;

pub mod province;

/// A server on `127.0.0.1:0` over a store that lives as long as this value
/// (or longer, across [`TestServer::restart`]), with the demo organisation
/// tree and a commune staff device of Tam Thăng that creates models.
pub struct TestServer {
    pub server: Option<RunningServer>,
    pub dir: tempfile::TempDir,
    /// The PostgreSQL database the server uses when `KHEO_TEST_DATABASE_URL`
    /// names a server, instead of the SQLite file in `dir`.
    pub database: Option<kheo_server::store::scratch::ScratchDatabase>,
    pub url: String,
    /// What the server was started with, kept for restarts.
    config: Config,
    staff: Option<Box<Device>>,
}

/// The commune the harness's accounts and models belong to by default.
pub const HOME_UNIT: &str = "QNA.TK.TT";

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    /// Starts with the test configuration as `adjust` changes it.
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> TestServer {
        Self::start_on(kheo_server::store::scratch::scratch_database().await, adjust).await
    }

    /// Starts on the embedded SQLite store whatever `KHEO_TEST_DATABASE_URL`
    /// says: for tests of what only that store has (its file, its backups)
    /// or that copy it elsewhere.
    pub async fn start_on_sqlite() -> TestServer {
        Self::start_on(None, |_| {}).await
    }

    /// Starts over a store that `seed` filled first, with the server not
    /// yet running (so nothing it caches predates the seed), and returns
    /// what `seed` returned.
    pub async fn start_seeded<T>(
        adjust: impl FnOnce(&mut Config),
        seed: impl AsyncFnOnce(&kheo_server::store::Database) -> T,
    ) -> (TestServer, T) {
        let database = kheo_server::store::scratch::scratch_database().await;
        Self::start_seeded_on(database, adjust, seed).await
    }

    async fn start_on(
        database: Option<kheo_server::store::scratch::ScratchDatabase>,
        adjust: impl FnOnce(&mut Config),
    ) -> TestServer {
        Self::start_seeded_on(database, adjust, async |_| ()).await.0
    }

    async fn start_seeded_on<T>(
        database: Option<kheo_server::store::scratch::ScratchDatabase>,
        adjust: impl FnOnce(&mut Config),
        seed: impl AsyncFnOnce(&kheo_server::store::Database) -> T,
    ) -> (TestServer, T) {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut config = Config::for_tests(dir.path().to_owned());
        config.database_url = database.as_ref().map(|d| d.url.clone());
        adjust(&mut config);
        let store = kheo_server::store::open(config.database_url.as_deref(), &config.data_dir)
            .await
            .expect("the store opens for seeding");
        let seeded = seed(&store).await;
        store.close().await;
        let server = kheo_server::start(config.clone()).await.expect("server starts");
        server.accounts.replace_org(kheo_server::org::demo()).await.expect("demo tree installs");
        let url = server.url();
        let mut this = TestServer { server: Some(server), dir, database, url, config, staff: None };
        this.staff = Some(Box::new(this.device_as("staff", Role::CommuneStaff, HOME_UNIT).await));
        (this, seeded)
    }

    pub fn accounts(&self) -> &kheo_server::accounts::Accounts {
        &self.server.as_ref().expect("server running").accounts
    }

    /// Creates an account (username `<name>.test`, secret `<name>-secret`) and logs a device in.
    pub async fn device_as(&self, name: &str, role: Role, unit: &str) -> Device {
        let secret = format!("{name}-secret");
        let name = format!("{name}.test");
        self.accounts()
            .create_account(NewAccount {
                username: name.clone(),
                phone: None,
                display_name: name.clone(),
                role,
                unit: unit.into(),
                secret: secret.clone(),
            })
            .await
            .expect("account is created");
        Device::login(&self.url, &name, &secret).await.expect("login")
    }

    /// The token of the harness's commune staff device, for hand-made requests.
    pub fn staff_token(&self) -> &str {
        &self.staff.as_ref().expect("staff device").token
    }

    /// A volunteer of the home commune.
    pub async fn device(&self, name: &str) -> Device {
        self.device_as(name, Role::Volunteer, HOME_UNIT).await
    }

    /// A new model of the home commune, created and synced by commune staff.
    pub async fn model(&mut self) -> ModelId {
        let model = ModelId::new_random();
        let url = self.url.clone();
        let staff = self.staff.as_mut().expect("staff device");
        let mut profile = kheo_shared::testdata::model(model, HOME_UNIT);
        profile.status = kheo_shared::codes::ModelStatus::Recognised;
        profile.status_years.typical = None;
        staff.put_model(&profile);
        staff.sync_held(&url).await.expect("staff syncs the model");
        model
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().to_owned()
    }

    /// Stops gracefully and starts again on the same store (new port).
    pub async fn restart(&mut self) {
        self.stop().await;
        self.start_again(self.config.clone()).await;
    }

    /// Starts a stopped server again on the same store and the same port:
    /// what a browser needs, since its storage belongs to the origin.
    pub async fn start_on_same_port(&mut self) {
        assert!(self.server.is_none(), "stop the server first");
        let mut config = self.config.clone();
        config.addr = self.url.trim_start_matches("http://").parse().expect("the server's address");
        self.start_again(config).await;
    }

    async fn start_again(&mut self, config: Config) {
        let server = kheo_server::start(config).await.expect("server restarts");
        self.url = server.url();
        self.server = Some(server);
    }

    /// Creates an account (username `<name>.test`, secret `<name>-secret`)
    /// without logging any device in: for a person who will log in through the app.
    pub async fn account(&self, name: &str, role: Role, unit: &str) -> (String, String) {
        self.account_named(name, &format!("Tình nguyện viên {name}"), role, unit).await
    }

    /// The same with a display name of its own: screens name people by it.
    pub async fn account_named(&self, name: &str, display_name: &str, role: Role, unit: &str) -> (String, String) {
        let (username, secret) = (format!("{name}.test"), format!("{name}-secret"));
        self.accounts()
            .create_account(NewAccount {
                username: username.clone(),
                phone: None,
                display_name: display_name.into(),
                role,
                unit: unit.into(),
                secret: secret.clone(),
            })
            .await
            .expect("account is created");
        (username, secret)
    }

    /// A real server process (the `kheo-process` binary) on the same store,
    /// for tests that kill one with SIGKILL.
    pub async fn spawn_process(&self, binary: &std::path::Path) -> ServerProcess {
        self.spawn_process_with(binary, &[], "warn", false).await
    }

    /// The same with these arguments and `RUST_LOG`; with `logs`, its
    /// stderr (the log) is piped into [`ServerProcess::child`] for the test to read.
    pub async fn spawn_process_with(
        &self,
        binary: &std::path::Path,
        args: &[&str],
        rust_log: &str,
        logs: bool,
    ) -> ServerProcess {
        self.spawn_process_command(tokio::process::Command::new(binary), args, rust_log, logs).await
    }

    /// A server process pinned to one CPU core with `taskset`: for the
    /// scale-out benchmark, where each process may use one core only.
    pub async fn spawn_pinned_process(&self, binary: &std::path::Path, core: usize) -> ServerProcess {
        let mut command = tokio::process::Command::new("taskset");
        command.arg("--cpu-list").arg(core.to_string()).arg(binary);
        self.spawn_process_command(command, &[], "warn", false).await
    }

    async fn spawn_process_command(
        &self,
        mut command: tokio::process::Command,
        args: &[&str],
        rust_log: &str,
        logs: bool,
    ) -> ServerProcess {
        use tokio::io::AsyncBufReadExt;
        command
            .args(args)
            .env("KHEO_ADDR", "127.0.0.1:0")
            .env("KHEO_DATA_DIR", self.dir.path())
            .env("RUST_LOG", rust_log)
            .env_remove("KHEO_LOG_FORMAT")
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true);
        if logs {
            command.stderr(std::process::Stdio::piped());
        }
        match &self.database {
            Some(db) => command.env("KHEO_DATABASE_URL", &db.url),
            None => command.env_remove("KHEO_DATABASE_URL"),
        };
        let mut child = command.spawn().expect("the server process starts");
        let stdout = child.stdout.take().expect("its stdout");
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let url = loop {
            let line = lines.next_line().await.expect("its output").expect("it prints its address");
            if let Some(url) = line.strip_prefix("Kheo is serving on ") {
                break url.trim().to_owned();
            }
        };
        // Keep reading, so that the process never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        ServerProcess { child, url }
    }

    /// Another server process on the same store: its own hot documents,
    /// writer and connections, sharing nothing with this one but the database.
    pub async fn start_peer(&self) -> RunningServer {
        kheo_server::start(self.config.clone()).await.expect("peer server starts")
    }

    pub async fn stop(&mut self) {
        if let Some(s) = self.server.take() {
            s.stop().await.expect("clean stop");
        }
    }
}

/// A server running as a process of its own.
pub struct ServerProcess {
    pub child: tokio::process::Child,
    pub url: String,
}

/// Why a sync failed, as a device sees it.
#[derive(Debug, thiserror::Error)]
pub enum SyncFailure {
    #[error("server refused with {status}: {body:?}")]
    Refused { status: u16, body: ErrorBody },
    #[error("network: {0}")]
    Network(#[from] reqwest::Error),
    #[error("bad response: {0}")]
    BadResponse(String),
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// Traffic of one sync session.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Traffic {
    /// Time the device spent building requests and applying responses.
    pub device_time: std::time::Duration,
    pub round_trips: usize,
    pub bytes_up: usize,
    pub bytes_down: usize,
    /// False when the session stopped at the round limit while other
    /// devices kept the documents moving; the next session carries on.
    pub converged: bool,
}

/// A simulated phone, logged in.
pub struct Device {
    pub name: String,
    pub replica: Replica,
    pub token: String,
    pub device_id: String,
    http: reqwest::Client,
    clock: i64,
}

pub const MAX_ROUNDS: usize = 12;

impl Device {
    /// Logs in and takes the actor id the server binds to this device.
    pub async fn login(base_url: &str, login: &str, secret: &str) -> Result<Device, SyncFailure> {
        let http = reqwest::Client::new();
        let request = LoginRequest { login: login.into(), secret: secret.into(), device_label: "test phone".into() };
        let response = http.post(format!("{base_url}{LOGIN_PATH}")).json(&request).send().await?;
        let status = response.status();
        let bytes = response.bytes().await?;
        if !status.is_success() {
            let body = serde_json::from_slice(&bytes).map_err(|e| SyncFailure::BadResponse(e.to_string()))?;
            return Err(SyncFailure::Refused { status: status.as_u16(), body });
        }
        let login: LoginResponse =
            serde_json::from_slice(&bytes).map_err(|e| SyncFailure::BadResponse(e.to_string()))?;
        let actor = ActorId::try_from(login.actor.as_str()).map_err(|e| SyncFailure::BadResponse(e.to_string()))?;
        Ok(Device {
            name: login.account.username,
            replica: Replica::new(actor),
            token: login.token,
            device_id: login.device_id,
            http,
            clock: 1_750_000_000_000,
        })
    }

    fn tick(&mut self) -> Timestamp {
        self.clock += 1_000;
        Timestamp(self.clock)
    }

    pub fn put_model(&mut self, profile: &ModelProfile) {
        let now = self.tick();
        self.replica
            .edit(DocId::Model(profile.id), now, |doc| schema::put_model(doc, profile))
            .expect("model is written");
    }

    /// Logs (or updates) a record in the model's log of the record's year.
    pub fn put_record(&mut self, model: ModelId, record: &Record) -> DocId {
        let year = record.occurred_on.year();
        let log = DocId::log(model, year).expect("year in range");
        let mut record = record.clone();
        record.device = self.name.clone();
        let now = self.tick();
        self.replica
            .edit(log, now, |doc| {
                schema::init_log(doc, model, year)?;
                schema::put_record(doc, &record)
            })
            .expect("record is written");
        log
    }

    pub fn records(&self, log: &DocId) -> BTreeMap<RecordId, Record> {
        match self.replica.doc(log) {
            Some(doc) => schema::read_log(doc, log).expect("log is valid").records,
            None => BTreeMap::new(),
        }
    }

    /// One sync session: round trips until nothing is left to say, or
    /// [`MAX_ROUNDS`] of them, as a phone would before trying again later.
    pub async fn sync(&mut self, base_url: &str) -> Result<Traffic, SyncFailure> {
        self.sync_session(&[base_url], true).await
    }

    /// A session whose requests go to these servers in turn, starting at
    /// `first`: a load balancer in front of several processes.
    pub async fn sync_across(&mut self, urls: &[&str], first: usize) -> Result<Traffic, SyncFailure> {
        let turned: Vec<&str> = urls.iter().cycle().skip(first % urls.len().max(1)).take(urls.len()).copied().collect();
        self.sync_session(&turned, true).await
    }

    /// A session that only syncs the documents the device already holds
    /// (`full == false`): what an established phone does between full syncs.
    pub async fn sync_held(&mut self, base_url: &str) -> Result<Traffic, SyncFailure> {
        self.sync_session(&[base_url], false).await
    }

    async fn sync_session(&mut self, urls: &[&str], full: bool) -> Result<Traffic, SyncFailure> {
        self.replica.start_session();
        let mut traffic = Traffic::default();
        loop {
            let first = traffic.round_trips == 0;
            let started = std::time::Instant::now();
            let request = self.replica.request(first && full);
            traffic.device_time += started.elapsed();
            if !first && request.docs.is_empty() {
                traffic.converged = true;
                self.replica.finish_session();
                return Ok(traffic);
            }
            if traffic.round_trips == MAX_ROUNDS {
                // Drop the in-flight state, as a phone does between sessions.
                self.replica.abort_session();
                return Ok(traffic);
            }
            let base_url = urls[traffic.round_trips % urls.len()];
            match self.post(base_url, &request, &mut traffic).await {
                // The account's scope changed since the cursor: sync in full, as a phone does.
                Err(SyncFailure::Refused { body, .. }) if body.error == "stale_cursor" && first => {
                    self.replica.set_quiet_cursor(None);
                    self.replica.start_session();
                    traffic.round_trips = 0;
                }
                Err(SyncFailure::Refused { status, body }) => {
                    self.replica.abort_session();
                    // What the phone does: keep the refused document, show why, sync the rest later.
                    if let Some(id) = body.doc.as_deref().and_then(|d| DocId::parse(d).ok())
                        && (matches!(status, 403 | 422) || body.error == "bad_change")
                    {
                        self.replica.reject(id, &body.error, body.rule.as_deref(), &body.message);
                    }
                    return Err(SyncFailure::Refused { status, body });
                }
                Ok(response) => {
                    let started = std::time::Instant::now();
                    self.replica.receive(response)?;
                    traffic.device_time += started.elapsed();
                }
                Err(e) => {
                    self.replica.abort_session();
                    return Err(e);
                }
            }
        }
    }

    async fn post(
        &self,
        base_url: &str,
        request: &SyncRequest,
        traffic: &mut Traffic,
    ) -> Result<SyncResponse, SyncFailure> {
        let body = protocol::encode(request);
        traffic.round_trips += 1;
        traffic.bytes_up += body.len();
        let response = post_raw(&self.http, base_url, &self.token, body).await?;
        let status = response.status();
        let bytes = response.bytes().await?;
        traffic.bytes_down += bytes.len();
        if !status.is_success() {
            let body = serde_json::from_slice(&bytes)
                .map_err(|e| SyncFailure::BadResponse(format!("{status} without a JSON error body: {e}")))?;
            return Err(SyncFailure::Refused { status: status.as_u16(), body });
        }
        protocol::decode(&bytes).map_err(|e| SyncFailure::BadResponse(e.to_string()))
    }
}

/// A sync POST with the protocol's headers and an arbitrary body.
pub async fn post_raw(
    http: &reqwest::Client,
    base_url: &str,
    token: &str,
    body: Vec<u8>,
) -> Result<reqwest::Response, reqwest::Error> {
    http.post(format!("{base_url}{SYNC_PATH}"))
        .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
        .header(reqwest::header::CONTENT_ENCODING, "gzip")
        .bearer_auth(token)
        .body(body)
        .send()
        .await
}

/// The store's content, to show that refused requests change nothing.
impl TestServer {
    /// The store's database, whichever backend the server runs on, for
    /// tests that look at or change it directly.
    pub async fn raw_database(&self) -> sqlx::AnyPool {
        sqlx::any::install_default_drivers();
        let url = match &self.database {
            Some(db) => db.url.clone(),
            None => format!("sqlite://{}", self.dir.path().join(kheo_server::store::STORE_FILE).display()),
        };
        sqlx::AnyPool::connect(&url).await.expect("the store's database opens")
    }

    /// Every document, chunk and sync state the store holds.
    pub async fn store_fingerprint(&self) -> Vec<(String, Vec<u8>)> {
        use sqlx::Row;
        let pool = self.raw_database().await;
        let mut rows = Vec::new();
        for (table, query) in [
            ("documents", "SELECT id, snapshot FROM documents ORDER BY id"),
            ("chunks", "SELECT doc_id, data FROM chunks ORDER BY seq"),
            ("sync_states", "SELECT device || '/' || doc_id, state FROM sync_states ORDER BY device, doc_id"),
        ] {
            for r in sqlx::query(query).fetch_all(&pool).await.expect("store reads") {
                rows.push((format!("{table}:{}", r.get::<String, _>(0)), r.get::<Vec<u8>, _>(1)));
            }
        }
        pool.close().await;
        rows
    }
}

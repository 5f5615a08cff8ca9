//! `admin migrate-store`: a province's SQLite store, filled through a real
//! server and stopped, copied into PostgreSQL; a server on the copy lets
//! the phones carry on with their old tokens and serves every record. These
//! need a PostgreSQL server (`KHEO_TEST_DATABASE_URL`) and say so when they
//! are skipped.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use automerge::ActorId;
use kheo_server::store::migrate::{self, MigrateError, MigrateOptions, Summary};
use kheo_server::store::scratch::{ScratchDatabase, TEST_DATABASE_VAR, scratch_database};
use kheo_server::store::transfer::{COPIED_TABLES, READ_MODEL_TABLES};
use kheo_server::store::{self, Database, STORE_FILE};
use kheo_server::{Config, RunningServer};
use kheo_shared::codes::Role;
use kheo_shared::ids::{DocId, RecordId};
use kheo_shared::testdata;
use kheo_tests::{Device, TestServer};

use crate::records;

/// A stopped server's SQLite store with models, records from several
/// phones over two years, a refusal in the quarantine and a target.
struct Province {
    source: TestServer,
    phones: Vec<Device>,
    expected: BTreeMap<DocId, BTreeSet<RecordId>>,
    /// A stored photo's hash and bytes.
    photo: (String, Vec<u8>),
}

impl Province {
    fn file(&self) -> PathBuf {
        self.source.data_dir().join(STORE_FILE)
    }
}

async fn province() -> Province {
    let mut source = TestServer::start_on_sqlite().await;
    let models = [source.model().await, source.model().await];
    let mut phones = vec![source.device("mig-a").await, source.device("mig-b").await];
    let mut expected: BTreeMap<DocId, BTreeSet<RecordId>> = BTreeMap::new();
    for phone in &mut phones {
        for model in models {
            for record in records(2025, 3).into_iter().chain(records(2024, 1)) {
                let log = phone.put_record(model, &record);
                expected.entry(log).or_default().insert(record.id);
            }
        }
        phone.sync(&source.url).await.expect("the phone syncs");
        assert_eq!(phone.replica.unsynced_changes(), 0);
    }
    // A photo on a record, stored.
    let bytes = crate::blobs::jpeg(48, false);
    let sha = crate::blobs::hash_of(&bytes);
    let attachment = crate::blobs::attachment(&sha, kheo_shared::evidence::MediaType::Jpeg, bytes.len());
    let record = crate::blobs::record_with(&mut phones[0], &source.url, models[0], &[attachment]).await;
    expected.entry(DocId::log(models[0], 2025).expect("log id")).or_default().insert(record.id);
    let stored = crate::blobs::put(&source.url, &phones[0].token, &sha, "image/jpeg", &bytes, 0, bytes.len()).await;
    assert_eq!(stored.status.as_u16(), 201);
    // Changes under another actor: refused, and kept in the quarantine.
    let mut forger = source.device("mig-forger").await;
    forger.replica = kheo_shared::client::Replica::new(ActorId::random());
    forger.put_record(models[0], &testdata::meeting(RecordId::new_random(), "2025-04-01", 9));
    assert!(forger.sync(&source.url).await.is_err(), "the forged change is refused");
    let province = source.device_as("mig-province", Role::ProvinceStaff, "QNA").await;
    let put = reqwest::Client::new()
        .put(format!("{}/api/v1/admin/targets", source.url))
        .bearer_auth(&province.token)
        .json(&serde_json::json!({"unit": "QNA.TK", "year": 2025, "new_models": 3, "typical": 1}))
        .send()
        .await
        .expect("target request");
    assert_eq!(put.status().as_u16(), 204);
    source.stop().await;
    Province { source, phones, expected, photo: (sha, bytes) }
}

/// A PostgreSQL database of its own, or `None` (and a message) without one.
async fn postgres(test: &str) -> Option<ScratchDatabase> {
    let db = scratch_database().await;
    if db.is_none() {
        eprintln!("skipped {test}: {TEST_DATABASE_VAR} names no PostgreSQL server");
    }
    db
}

async fn migrate(file: &Path, url: &str, options: &MigrateOptions) -> Result<Summary, MigrateError> {
    let source = Database::open_sqlite_file(file).await.expect("the SQLite store opens");
    let target = store::open(Some(url), Path::new(".")).await.expect("the PostgreSQL database opens");
    let name = format!("sqlite:{}", file.display());
    let result = migrate::migrate(&source, &target, &name, options, &mut |_| {}).await;
    source.store.close().await;
    target.store.close().await;
    result
}

/// Rows of every table of the database, by name.
async fn table_rows(url: &str) -> Vec<(&'static str, i64)> {
    let db = store::open(Some(url), Path::new(".")).await.expect("the database opens");
    let mut rows = Vec::new();
    for table in COPIED_TABLES.iter().chain(READ_MODEL_TABLES.iter()) {
        rows.push((*table, db.transfer.count_rows(table).await.expect("count")));
    }
    rows.push(("migration marks", db.transfer.migration_marks().await.expect("marks").len() as i64));
    db.store.close().await;
    rows
}

async fn serve_on(db: &ScratchDatabase) -> (RunningServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut config = Config::for_tests(dir.path().to_owned());
    config.database_url = Some(db.url.clone());
    (kheo_server::start(config).await.expect("a server starts on the copy"), dir)
}

/// The phones carry on against a server on the copy with their old tokens,
/// a new login with an old password works, and every record is served.
async fn phones_carry_on(province: &mut Province, db: &ScratchDatabase) {
    let (server, _dir) = serve_on(db).await;
    let url = server.url();
    for phone in &mut province.phones {
        phone.sync(&url).await.expect("an old token still syncs");
        for (log, ids) in &province.expected {
            let got: BTreeSet<RecordId> = phone.records(log).keys().copied().collect();
            assert_eq!(&got, ids, "{} holds every record of {log}", phone.name);
        }
    }
    // A phone that never synced before: the account's password hash came along.
    let mut fresh = Device::login(&url, "mig-a.test", "mig-a-secret").await.expect("the old password logs in");
    fresh.sync(&url).await.expect("a new phone syncs");
    for (log, ids) in &province.expected {
        let got: BTreeSet<RecordId> = fresh.records(log).keys().copied().collect();
        assert_eq!(&got, ids, "the copy serves every record of {log}");
    }
    let (sha, bytes) = &province.photo;
    let served = crate::blobs::get(&url, &fresh.token, &format!("/api/v1/blobs/{sha}"), None).await;
    assert_eq!(served.status().as_u16(), 200, "the photo came along");
    assert_eq!(&served.bytes().await.expect("the photo")[..], &bytes[..]);
    server.stop().await.expect("the server stops");
}

#[tokio::test]
async fn a_province_moves_to_postgresql_and_its_phones_carry_on() {
    let Some(db) = postgres("a_province_moves_to_postgresql_and_its_phones_carry_on").await else { return };
    let mut province = province().await;
    let summary = migrate(&province.file(), &db.url, &MigrateOptions::default()).await.expect("verified copy");
    assert!(!summary.resumed);
    assert_eq!(summary.documents_verified, 6, "two models, each with a profile and two logs");
    for t in summary.tables.iter().chain(&summary.read_model) {
        assert_eq!(t.source, t.target, "{}", t.table);
    }
    let count = |table: &str| summary.tables.iter().find(|t| t.table == table).map(|t| t.source);
    assert_eq!(count("quarantine"), Some(1));
    assert_eq!(count("targets"), Some(1));
    assert_eq!(count("blobs"), Some(1));
    assert_eq!(count("devices"), Some(5), "staff, two phones, the forger and province staff");
    phones_carry_on(&mut province, &db).await;
}

#[tokio::test]
async fn a_migration_cut_off_resumes_and_verifies() {
    let Some(db) = postgres("a_migration_cut_off_resumes_and_verifies").await else { return };
    let mut province = province().await;
    // Small batches, stopped half-way through the documents.
    let cut = MigrateOptions { batch_docs: 1, batch_rows: 2, stop_after_batches: Some(12), ..Default::default() };
    match migrate(&province.file(), &db.url, &cut).await {
        Err(MigrateError::CutOff(12)) => {}
        other => panic!("expected the run to be cut off, got {other:?}"),
    }
    let rows: BTreeMap<_, _> = table_rows(&db.url).await.into_iter().collect();
    assert!(rows["accounts"] > 0 && rows["documents"] < 6, "a part was copied: {rows:?}");
    assert_eq!(rows["rm_models"], 0, "the read model is built after the copy");

    let summary = migrate(&province.file(), &db.url, &MigrateOptions::default()).await.expect("the run finishes");
    assert!(summary.resumed, "it carries on from the mark the first run left");
    assert_eq!(summary.documents_verified, 6);
    phones_carry_on(&mut province, &db).await;
}

#[tokio::test]
async fn a_non_empty_target_is_refused_and_nothing_is_written() {
    let Some(db) = postgres("a_non_empty_target_is_refused_and_nothing_is_written").await else { return };
    let province = province().await;
    // A database a server already set up: it holds an organisation tree.
    let target = store::open(Some(&db.url), Path::new(".")).await.expect("the database opens");
    let tree = kheo_server::org::demo();
    let units: Vec<_> = tree.units().cloned().collect();
    target.directory.replace_org(&units, &[]).await.expect("a tree");
    target.store.close().await;
    let before = table_rows(&db.url).await;

    match migrate(&province.file(), &db.url, &MigrateOptions::default()).await {
        Err(e @ MigrateError::NotEmpty(_)) => assert!(e.to_string().contains("--into-non-empty"), "{e}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(table_rows(&db.url).await, before, "nothing was written");

    // The binary says the same, and fails.
    let out = admin(&["migrate-store", "--from", &province.file().to_string_lossy(), "--to", &db.url]).await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not empty") && stderr.contains("--into-non-empty"), "{stderr}");
    assert_eq!(table_rows(&db.url).await, before, "nothing was written");
}

#[tokio::test]
async fn the_binary_migrates_a_data_directory_and_prints_its_summary() {
    let Some(db) = postgres("the_binary_migrates_a_data_directory_and_prints_its_summary").await else { return };
    let mut province = province().await;
    let dir = province.source.data_dir();
    let out = admin(&["migrate-store", "--from", &dir.to_string_lossy(), "--to", &db.url, "--batch", "2"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}");
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("documents") && stdout.contains("verified: 6 documents"), "{stdout}");
    phones_carry_on(&mut province, &db).await;
}

#[tokio::test]
async fn a_store_whose_server_still_runs_is_not_migrated() {
    // No PostgreSQL needed: the refusal comes before the target is opened. The
    // server runs in this test's process, another process than the command's.
    let mut server = TestServer::start_on_sqlite().await;
    let file = server.data_dir().join(STORE_FILE);
    let out = admin(&["migrate-store", "--from", &file.to_string_lossy(), "--to", "no-such-database"]).await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("open in another process"), "{stderr}");
    // Stopped, it is let through (to a database URL that does not parse).
    server.stop().await;
    let out = admin(&["migrate-store", "--from", &file.to_string_lossy(), "--to", "no-such-database"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("opening the PostgreSQL database"), "{stderr}");
}

/// `kheo-server admin ...` as a process (the test binary has the same commands).
async fn admin(args: &[&str]) -> std::process::Output {
    let binary = Path::new(env!("CARGO_BIN_EXE_kheo-process"));
    tokio::process::Command::new(binary)
        .arg("admin")
        .args(args)
        .env_remove("KHEO_DATABASE_URL")
        .env_remove("KHEO_MIGRATE_TO")
        .env("RUST_LOG", "warn")
        .output()
        .await
        .expect("the admin command runs")
}

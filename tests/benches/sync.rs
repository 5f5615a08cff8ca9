//! Sync benchmark, on loopback against the real server and store:
//!
//! ```text
//! cargo bench -p kheo-tests --bench sync            # everything
//! cargo bench -p kheo-tests --bench sync -- reconnect throughput layout
//! KHEO_TEST_DATABASE_URL=postgres://... cargo bench -p kheo-tests --bench sync -- throughput scaleout
//! ```
//!
//! * `reconnect`: bytes on the wire and round trips for a phone that pushes
//!   20 new records into a model-year already holding 1,000, next to the
//!   floor (the same 20 records as gzip'd postcard);
//! * `throughput`: records merged and durably committed per second with 200
//!   devices syncing at once (each pushing its own model's log, as an
//!   established phone does), next to the same devices syncing one by one
//!   and to the store's bare fsync'd commit rate, all measured in this run;
//! * `scaleout`: the same workload on one PostgreSQL, one server process
//!   pinned to one core against two processes pinned to a core each (needs
//!   `KHEO_TEST_DATABASE_URL`); `throughput` also runs on PostgreSQL then,
//!   next to SQLite;
//! * `layout`: one document per model-year against one document per model,
//!   the measurements behind the layout choice in `ARCHITECTURE.md`;
//! * `gate`: what the server's own checks of a message cost: the gate that
//!   parses it before Automerge, next to Automerge decoding and applying the
//!   same message, and the check that a merged log still loads (next to
//!   the whole save and load it replaced); and the time to take one full
//!   request (the most changes one request may carry) into logs of growing
//!   size;
//! * `growth`: the server's time to take one new record into logs of
//!   100, 1,000, 4,000 and 10,000 records, as a ratio to the smallest;
//! * `backlog`: a phone back after a long time offline with 20,000
//!   records: the requests its sync takes and their time;
//! * `quiet`: a phone holding 1,000 documents, nothing new on either side:
//!   the quiet session (one request naming the cursor) next to the full
//!   one it replaced (every document's message), in this run.
//!
//! Profiling only the measured windows (the 200 devices at once, and the
//! pushes into the log of 10,000): with `KHEO_PERF_CTL` naming perf's
//! control FIFO, the benchmark turns perf on and off around them:
//!
//! ```text
//! mkfifo /tmp/ctl /tmp/ack
//! KHEO_PERF_CTL=/tmp/ctl perf record -g --call-graph dwarf -D -1 \
//!     --control=fifo:/tmp/ctl,/tmp/ack target/release/deps/sync-... throughput
//! ```

use std::time::{Duration, Instant};

use automerge::sync::SyncDoc;
use automerge::{AutoCommit, ReadDoc};
use kheo_server::store::scratch::TEST_DATABASE_VAR;
use kheo_server::store::{self, Committed, DocWrite, Version, WriteBatch};
use kheo_server::sync::check_loadable;
use kheo_shared::ids::{DocId, ModelId, RecordId};
use kheo_shared::record::Record;
use kheo_shared::{protocol, schema, testdata};
use kheo_tests::{Device, TestServer};

fn records(year: i32, n: usize) -> Vec<Record> {
    (0..n)
        .map(|i| {
            let day = format!("{year}-{:02}-{:02}", 1 + i % 12, 1 + i % 28);
            testdata::any_record(RecordId::new_random(), &day, i)
        })
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let wants = |name: &str| args.is_empty() || args.iter().any(|a| a == name);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    if wants("reconnect") {
        rt.block_on(reconnect());
    }
    if wants("quiet") {
        rt.block_on(quiet());
    }
    if wants("throughput") {
        rt.block_on(throughput());
    }
    if wants("scaleout") {
        rt.block_on(scaleout());
    }
    if wants("layout") {
        layout();
    }
    if wants("backlog") {
        rt.block_on(backlog());
    }
    if wants("growth") {
        rt.block_on(growth());
    }
    if wants("gate") {
        gate();
    }
    if wants("gate") || wants("largest") {
        rt.block_on(largest_request());
    }
}

/// A phone's sync message carrying `n` new records of a log that already
/// holds `held` records on the server (`server` is that server's copy).
fn push_message(held: usize, n: usize) -> (AutoCommit, Vec<u8>) {
    use automerge::sync::State;
    let model = ModelId::new_random();
    let mut phone = AutoCommit::new();
    schema::init_log(&mut phone, model, 2025).expect("log");
    phone.commit();
    for r in records(2025, held) {
        schema::put_record(&mut phone, &r).expect("record");
        phone.commit();
    }
    let mut server = phone.fork();
    for r in records(2025, n) {
        schema::put_record(&mut phone, &r).expect("record");
        phone.commit();
    }
    let (mut ps, mut ss) = (State::new(), State::new());
    for _ in 0..4 {
        if let Some(m) = phone.sync().generate_sync_message(&mut ps) {
            if !m.changes.is_empty() {
                return (server, m.encode());
            }
            server.sync().receive_sync_message(&mut ss, m).expect("server receives");
        }
        if let Some(mut m) = server.sync().generate_sync_message(&mut ss) {
            m.flags = None;
            phone.sync().receive_sync_message(&mut ps, m).expect("phone receives");
        }
    }
    panic!("no message with changes");
}

fn gate() {
    use automerge::sync::{Message, State};
    use kheo_server::gate::Gate;
    println!("gate: the server's own checks, next to Automerge's work on the same message");
    for (held, n) in [(1_000, 20), (0, protocol::MAX_CHANGES_PER_REQUEST)] {
        let (server, msg) = push_message(held, n);
        let iterations = if n > 100 { 20 } else { 200 };
        let time = |f: &mut dyn FnMut()| {
            let started = Instant::now();
            for _ in 0..iterations {
                f();
            }
            started.elapsed() / iterations
        };
        let gate = time(&mut || drop(Gate::default().message(&msg).expect("gate passes")));
        let decode = time(&mut || drop(Message::decode(&msg).expect("decode")));
        let apply = time(&mut || {
            let mut copy = server.clone();
            let m = Message::decode(&msg).expect("decode");
            copy.sync().receive_sync_message(&mut State::new(), m).expect("apply");
        });
        let mut merged = server.clone();
        let before = merged.get_heads();
        merged.sync().receive_sync_message(&mut State::new(), Message::decode(&msg).expect("decode")).expect("apply");
        let load_check = time(&mut || drop(AutoCommit::load(&merged.save()).expect("loads")));
        let id = DocId::log(ModelId::new_random(), 2025).expect("log id");
        let added_check = time(&mut || check_loadable(id, &mut merged, &before).expect("loadable"));
        println!("  {n} records into a log of {held} ({} bytes)", msg.len());
        println!("    gate                    {:.3} ms", ms(gate));
        println!("    Automerge decode        {:.3} ms  (gate {:.2}x)", ms(decode), ms(gate) / ms(decode));
        println!("    clone + apply           {:.3} ms  (gate {:.2}x)", ms(apply), ms(gate) / ms(apply));
        println!(
            "    loadable check          {:.3} ms  ({:.2}x clone + apply; rebuilds the added changes)",
            ms(added_check),
            ms(added_check) / ms(apply)
        );
        println!(
            "    whole save + load       {:.3} ms  ({:.2}x clone + apply; the check it replaced)",
            ms(load_check),
            ms(load_check) / ms(apply)
        );
    }
}

/// A server whose model's 2025 log holds `held` records, synced from the
/// phone that wrote them.
async fn phone_with_log(held: usize) -> (TestServer, ModelId, Device) {
    let mut server = TestServer::start().await;
    let model = server.model().await;
    let mut phone = server.device("phone").await;
    for r in records(2025, held) {
        phone.put_record(model, &r);
    }
    // A large log takes more requests than one session's cap.
    while !phone.sync(&server.url).await.expect("initial sync").converged || phone.replica.unsynced_changes() > 0 {}
    (server, model, phone)
}

/// One request at the limit of changes into logs of growing size: the
/// time one request may hold a document.
async fn largest_request() {
    println!("largest request: {} new records in one request", protocol::MAX_CHANGES_PER_REQUEST);
    for held in [0usize, 5_000, 19_500] {
        let (server, model, mut phone) = phone_with_log(held).await;
        for r in records(2025, protocol::MAX_CHANGES_PER_REQUEST) {
            phone.put_record(model, &r);
        }
        let started = Instant::now();
        let traffic = phone.sync(&server.url).await.expect("push");
        let total = started.elapsed();
        println!(
            "  into a log of {held:>5}: {:.0} ms for {} round trips (device {:.0} ms)",
            ms(total),
            traffic.round_trips,
            ms(traffic.device_time)
        );
    }
}

/// 20,000 records logged offline, synced in one session of several
/// requests (the phone splits its backlog to the per-request budget).
async fn backlog() {
    const RECORDS: usize = 20_000;
    let mut server = TestServer::start().await;
    let model = server.model().await;
    let mut phone = server.device("phone").await;
    for r in records(2025, RECORDS) {
        phone.put_record(model, &r);
    }
    let started = Instant::now();
    let mut traffic = phone.sync(&server.url).await.expect("backlog sync");
    let mut sessions = 1;
    while !traffic.converged || phone.replica.unsynced_changes() > 0 {
        let more = phone.sync(&server.url).await.expect("backlog sync");
        traffic.round_trips += more.round_trips;
        traffic.device_time += more.device_time;
        traffic.converged = more.converged;
        sessions += 1;
    }
    let total = started.elapsed();
    let server_time = total.saturating_sub(traffic.device_time);
    let mut check = server.device("check").await;
    check.sync(&server.url).await.expect("check sync");
    let log = DocId::log(model, 2025).expect("log id");
    assert_eq!(check.records(&log).len(), RECORDS, "every record reached the server");
    println!("backlog: {RECORDS} records logged offline, then one sync");
    println!(
        "  {} requests in {sessions} session(s), {:.1} s ({:.1} s server, {:.0} ms per request)",
        traffic.round_trips,
        total.as_secs_f64(),
        server_time.as_secs_f64(),
        ms(server_time) / traffic.round_trips as f64
    );
}

/// One record pushed into logs of growing size: the server's time per
/// request (wall time on loopback less the simulated phone's own work),
/// the median of several pushes, next to the smallest log's in this run.
/// The pushes go to the four logs in turn, so that a noisy spell of the
/// machine falls on every size alike.
async fn growth() {
    const PUSHES: usize = 25;
    const SIZES: [usize; 4] = [100, 1_000, 4_000, 10_000];
    println!("growth: server time to take one new record, by the size of the log (median of {PUSHES}, interleaved)");
    let mut logs = Vec::new();
    for held in SIZES {
        logs.push(phone_with_log(held).await);
    }
    let mut per_request = vec![Vec::new(); SIZES.len()];
    let mut round_trips = vec![0; SIZES.len()];
    for r in records(2025, PUSHES) {
        for (i, (server, model, phone)) in logs.iter_mut().enumerate() {
            phone.put_record(*model, &r);
            let profiled = SIZES[i] == 10_000;
            if profiled {
                perf_ctl("enable");
            }
            let started = Instant::now();
            let traffic = phone.sync_held(&server.url).await.expect("push");
            let server_time = started.elapsed().saturating_sub(traffic.device_time);
            if profiled {
                perf_ctl("disable");
            }
            per_request[i].push(server_time / traffic.round_trips as u32);
            round_trips[i] = traffic.round_trips;
        }
    }
    let mut baseline = None;
    for (i, held) in SIZES.iter().enumerate() {
        per_request[i].sort();
        let median = ms(per_request[i][PUSHES / 2]);
        let base = *baseline.get_or_insert(median);
        println!(
            "  log of {held:>6}: {median:>7.2} ms per request ({} per push)  {:.2}x the log of 100",
            round_trips[i],
            median / base
        );
    }
}

async fn reconnect() {
    let mut server = TestServer::start().await;
    let model = server.model().await;
    let mut phone = server.device("phone").await;
    for r in records(2025, 1_000) {
        phone.put_record(model, &r);
    }
    phone.sync(&server.url).await.expect("initial sync");

    let new = records(2025, 20);
    for r in &new {
        phone.put_record(model, r);
    }
    let traffic = phone.sync(&server.url).await.expect("reconnect");
    let floor = protocol::gzip(&postcard::to_allocvec(&new).expect("postcard")).len();
    let wire = traffic.bytes_up + traffic.bytes_down;
    println!("reconnect: 20 new records into a log of 1,000");
    println!("  round trips             {}", traffic.round_trips);
    println!("  bytes up / down         {} / {}", traffic.bytes_up, traffic.bytes_down);
    println!("  bytes on the wire       {wire}");
    println!("  floor (gzip postcard)   {floor}");
    println!("  ratio to floor          {:.2}x", wire as f64 / floor as f64);
}

async fn quiet() {
    const DOCS: usize = 1_000;
    let server = TestServer::start().await;
    let mut staff = server.device_as("staff-many", kheo_shared::codes::Role::CommuneStaff, kheo_tests::HOME_UNIT).await;
    for _ in 0..DOCS {
        let mut profile = testdata::model(ModelId::new_random(), kheo_tests::HOME_UNIT);
        profile.status = kheo_shared::codes::ModelStatus::Recognised;
        profile.status_years.typical = None;
        staff.put_model(&profile);
    }
    while !staff.sync(&server.url).await.expect("staff syncs").converged {}
    let mut phone = server.device("phone").await;
    while !phone.sync(&server.url).await.expect("first sync").converged {}

    let session = async |phone: &mut Device, quiet: bool| {
        let mut runs = Vec::new();
        for _ in 0..7 {
            if !quiet {
                phone.replica.set_quiet_cursor(None);
            }
            let started = Instant::now();
            let traffic = phone.sync(&server.url).await.expect("sync");
            runs.push((started.elapsed(), traffic));
        }
        runs.sort_by_key(|(took, _)| *took);
        let (took, traffic) = runs.swap_remove(runs.len() / 2);
        (took, traffic)
    };
    // Alternated, so that the machine's noise falls on both.
    let (full_took, full) = session(&mut phone, false).await;
    let (quiet_took, quiet) = session(&mut phone, true).await;
    println!("quiet: a phone holding {DOCS} documents, nothing new on either side (median of 7)");
    for (name, took, t) in [("full session", full_took, &full), ("quiet session", quiet_took, &quiet)] {
        println!(
            "  {name:<14} {} round trips, {:>7} bytes up, {:>7} down, {:>7.1} ms",
            t.round_trips,
            t.bytes_up,
            t.bytes_down,
            took.as_secs_f64() * 1e3
        );
    }
    println!(
        "  quiet / full   bytes {:.4}x, time {:.3}x (goal: 1 request under 2 KB each way)",
        (quiet.bytes_up + quiet.bytes_down) as f64 / (full.bytes_up + full.bytes_down) as f64,
        quiet_took.as_secs_f64() / full_took.as_secs_f64()
    );
}

const DEVICES: usize = 200;
const MODELS: usize = 20;
const PER_DEVICE: usize = 25;
const TOTAL: usize = DEVICES * PER_DEVICE;

/// Established phones: each already holds its model's log (with one record
/// of every phone), then logs its records offline.
async fn established_phones(server: &mut TestServer) -> (Vec<ModelId>, Vec<Device>) {
    let url = server.url.clone();
    let url = url.as_str();
    let mut models = Vec::new();
    for _ in 0..MODELS {
        models.push(server.model().await);
    }
    let mut devices = Vec::new();
    for i in 0..DEVICES {
        devices.push(server.device(&format!("phone-{i}")).await);
    }
    for (i, d) in devices.iter_mut().enumerate() {
        d.put_record(models[i % MODELS], &records(2025, 1)[0]);
        d.sync_held(url).await.expect("first sync");
    }
    for (i, d) in devices.iter_mut().enumerate() {
        d.sync_held(url).await.expect("catch-up sync");
        for r in records(2025, PER_DEVICE) {
            d.put_record(models[i % MODELS], &r);
        }
    }
    (models, devices)
}

/// Every device syncs at once, device `i` to `urls[i % urls.len()]`;
/// returns the time until the last is done.
/// Tells perf (`enable` or `disable`) through `KHEO_PERF_CTL`, when set.
fn perf_ctl(cmd: &str) {
    if let Ok(path) = std::env::var("KHEO_PERF_CTL") {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().write(true).open(path).expect("ctl");
        writeln!(f, "{cmd}").expect("ctl");
    }
}

async fn all_at_once(devices: Vec<Device>, urls: &[String]) -> Duration {
    perf_ctl("enable");
    let t = Instant::now();
    let handles: Vec<_> = devices
        .into_iter()
        .enumerate()
        .map(|(i, mut d)| {
            let url = urls[i % urls.len()].clone();
            tokio::spawn(async move { d.sync_held(&url).await.expect("concurrent sync") })
        })
        .collect();
    for h in handles {
        h.await.expect("device task");
    }
    perf_ctl("disable");
    t.elapsed()
}

/// What a fresh device sees: every record of every phone is in the logs.
async fn check_all_merged(server: &TestServer, models: &[ModelId]) -> usize {
    let mut check = server.device("check").await;
    check.sync(&server.url).await.expect("check sync");
    let mut merged = 0;
    let mut max_heads = 0;
    for m in models {
        let log = DocId::log(*m, 2025).expect("log id");
        merged += check.records(&log).len();
        max_heads = max_heads.max(check.replica.heads(&log).len());
    }
    assert_eq!(merged, TOTAL + DEVICES, "every record merged");
    max_heads
}

/// The throughput on the embedded store and, when a PostgreSQL server is
/// named, on PostgreSQL in the same run, one process each.
async fn throughput() {
    println!("throughput: {DEVICES} devices, {MODELS} model logs, {PER_DEVICE} records each ({TOTAL} records)");
    println!("== SQLite, one process");
    let on_sqlite = throughput_on(Backend::Sqlite).await;
    if std::env::var(TEST_DATABASE_VAR).is_err() {
        println!("PostgreSQL skipped: set {TEST_DATABASE_VAR} to compare");
        return;
    }
    println!("== PostgreSQL, one process");
    let on_postgres = throughput_on(Backend::Postgres).await;
    println!("  PostgreSQL / SQLite     {:.2}x records/s", on_postgres / on_sqlite);
}

#[derive(Clone, Copy, PartialEq)]
enum Backend {
    Sqlite,
    Postgres,
}

async fn start_on(backend: Backend) -> TestServer {
    TestServer::start_with(|config| {
        if backend == Backend::Sqlite {
            config.database_url = None;
        }
    })
    .await
}

/// Returns the concurrent rate, records/s.
async fn throughput_on(backend: Backend) -> f64 {
    // Baseline 1: the same devices, one after the other.
    let mut server = start_on(backend).await;
    let (_, mut devices) = established_phones(&mut server).await;
    let t = Instant::now();
    let mut device_time = Duration::ZERO;
    for d in &mut devices {
        device_time += d.sync_held(&server.url).await.expect("sequential sync").device_time;
    }
    let sequential_time = t.elapsed();
    let sequential = TOTAL as f64 / sequential_time.as_secs_f64();
    drop(server);

    // The figure: all at once.
    let mut server = start_on(backend).await;
    let (models, devices) = established_phones(&mut server).await;
    let elapsed = all_at_once(devices, std::slice::from_ref(&server.url)).await;
    let concurrent = TOTAL as f64 / elapsed.as_secs_f64();
    let max_heads = check_all_merged(&server, &models).await;

    // Baseline 2: the same store's bare rate of one durable commit per batch.
    let dir = tempfile::tempdir().expect("temp dir");
    let database = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => store::scratch::scratch_database().await,
    };
    let bare = store::open(database.as_ref().map(|d| d.url.as_str()), dir.path()).await.expect("store");
    let doc = DocId::log(ModelId::new_random(), 2025).expect("log id");
    let n = 200;
    let t = Instant::now();
    let mut version = Version::NONE;
    for i in 0..n {
        let next = version.next(1);
        let append = DocWrite::Append { doc, chunk: vec![i as u8; 600], base: version, next };
        let batch = WriteBatch { docs: vec![append], ..WriteBatch::default() };
        assert_eq!(bare.store.commit(&[batch]).await.expect("commit"), [Committed::Done]);
        version = next;
    }
    let fsync_rate = n as f64 / t.elapsed().as_secs_f64();
    bare.store.close().await;

    println!("  all at once             {concurrent:.0} records/s durable ({:.2} s)", elapsed.as_secs_f64());
    println!("  one device at a time    {sequential:.0} records/s  (concurrent = {:.2}x)", concurrent / sequential);
    println!(
        "    of which devices      {:.0}% (simulated phones building requests and applying replies)",
        100.0 * device_time.as_secs_f64() / sequential_time.as_secs_f64()
    );
    println!(
        "  bare durable commits    {fsync_rate:.0} commits/s  (records per fsync-time = {:.2}x)",
        concurrent / fsync_rate
    );
    println!("  most heads on a log     {max_heads}");
    if backend == Backend::Sqlite {
        server_process_throughput().await;
    }
    concurrent
}

/// The same workload against the server as a process of its own on the
/// same store, so that its CPU can be told from the simulated phones':
/// whole sessions, then the phones' pushes built before the clock starts
/// (the 200 phones then cost next to nothing, as real phones cost the
/// server nothing).
async fn server_process_throughput() {
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_kheo-process"));
    for how in [Phones::Sessions, Phones::Prebuilt] {
        let mut server = TestServer::start().await;
        let (models, devices) = established_phones(&mut server).await;
        let mut process = server.spawn_process(binary).await;
        let pids: Vec<u32> = process.child.id().into_iter().collect();
        let before = CpuUse::now(&pids);
        let urls = std::slice::from_ref(&process.url);
        let (elapsed, what) = match how {
            Phones::Sessions => (all_at_once(devices, urls).await, "whole sessions"),
            Phones::Prebuilt => (pushes_at_once(devices, urls).await, "pushes built before"),
        };
        let cpu = CpuUse::now(&pids).minus(&before);
        check_all_merged(&server, &models).await;
        process.child.start_kill().ok();
        process.child.wait().await.ok();
        let per_record = |seconds: f64| 1e3 * seconds / TOTAL as f64;
        println!(
            "  server process, {what:<20} {:>5.0} records/s durable ({:.2} s); CPU per record: server {:.2} ms, \
             simulated phones {:.2} ms",
            TOTAL as f64 / elapsed.as_secs_f64(),
            elapsed.as_secs_f64(),
            per_record(cpu.servers),
            per_record(cpu.bench),
        );
    }
}

/// Scale-out on one PostgreSQL: the throughput workload against one server
/// process pinned to one core, then against two processes each pinned to a
/// core of its own (`taskset`), devices spread over them; pairs of runs,
/// alternating, so that a noisy spell shows as disagreeing pairs. The first
/// two pairs run whole sync sessions; the last two send the same pushes
/// built beforehand, taking the simulated phones' CPU off the 2 cores.
async fn scaleout() {
    if std::env::var(TEST_DATABASE_VAR).is_err() {
        println!("scaleout skipped: it needs PostgreSQL; set {TEST_DATABASE_VAR}");
        return;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("scaleout: {TOTAL} records from {DEVICES} devices, server processes pinned with taskset ({cores} cores)");
    if cores < 2 {
        println!("  skipped: two processes need two cores");
        return;
    }
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_kheo-process"));
    for (pair, how) in [(1, Phones::Sessions), (2, Phones::Sessions), (3, Phones::Prebuilt), (4, Phones::Prebuilt)] {
        if pair == 3 {
            println!(
                "  the same pushes built before the clock starts (one request per phone, its reply read, not applied):"
            );
        }
        let mut rates = Vec::new();
        for processes in [1usize, 2] {
            let mut server = TestServer::start().await;
            let (models, devices) = established_phones(&mut server).await;
            let mut spawned = Vec::new();
            for core in 0..processes {
                spawned.push(server.spawn_pinned_process(binary, core).await);
            }
            let urls: Vec<String> = spawned.iter().map(|p| p.url.clone()).collect();
            let pids: Vec<u32> = spawned.iter().filter_map(|p| p.child.id()).collect();
            let before = CpuUse::now(&pids);
            let elapsed = match how {
                Phones::Sessions => all_at_once(devices, &urls).await,
                Phones::Prebuilt => pushes_at_once(devices, &urls).await,
            };
            let cpu = CpuUse::now(&pids).minus(&before);
            check_all_merged(&server, &models).await;
            for mut p in spawned {
                p.child.start_kill().ok();
                p.child.wait().await.ok();
            }
            let rate = TOTAL as f64 / elapsed.as_secs_f64();
            println!(
                "  pair {pair}: {processes} process(es)  {rate:>6.0} records/s durable ({:.2} s)",
                elapsed.as_secs_f64()
            );
            println!(
                "    CPU: servers {:.2} s ({:.0}% of their {processes} core(s)), simulated phones {:.2} s, \
                 PostgreSQL {:.2} s; the machine {:.0}% busy",
                cpu.servers,
                100.0 * cpu.servers / (elapsed.as_secs_f64() * processes as f64),
                cpu.bench,
                cpu.postgres,
                100.0 * (cpu.servers + cpu.bench + cpu.postgres) / (elapsed.as_secs_f64() * cores as f64),
            );
            rates.push(rate);
        }
        println!("  pair {pair}: 2 processes / 1 = {:.2}x (goal 1.7x)", rates[1] / rates[0]);
    }
}

/// How the scale-out run's phones take part: whole sync sessions (building
/// requests and applying replies on the same 2 cores as the servers), or
/// their push-first requests built before the clock starts, so that the
/// servers and the database have the machine.
#[derive(Clone, Copy)]
enum Phones {
    Sessions,
    Prebuilt,
}

/// Every device's first request of a session (push-first: its new changes
/// after the shared heads), built first, then all sent at once, device `i`
/// to `urls[i % urls.len()]`; returns the time until the last is answered.
/// Each answer comes after its records are durable.
async fn pushes_at_once(devices: Vec<Device>, urls: &[String]) -> Duration {
    let pushes: Vec<(String, Vec<u8>)> = devices
        .into_iter()
        .map(|mut d| {
            d.replica.start_session();
            let request = d.replica.request(false);
            (d.token.clone(), protocol::encode(&request))
        })
        .collect();
    let http = reqwest::Client::new();
    perf_ctl("enable");
    let t = Instant::now();
    let handles: Vec<_> = pushes
        .into_iter()
        .enumerate()
        .map(|(i, (token, body))| {
            let (http, url) = (http.clone(), urls[i % urls.len()].clone());
            tokio::spawn(async move {
                let answer = kheo_tests::post_raw(&http, &url, &token, body).await.expect("the push is sent");
                assert!(answer.status().is_success(), "push refused: {}", answer.status());
                answer.bytes().await.expect("the answer is read");
            })
        })
        .collect();
    for h in handles {
        h.await.expect("push task");
    }
    perf_ctl("disable");
    t.elapsed()
}

/// CPU seconds used so far by the server processes, this benchmark's own
/// process (the simulated phones) and every PostgreSQL process, from
/// `/proc`: where a run's time went, on a machine where all of them share
/// the cores.
#[derive(Debug, Clone, Copy, Default)]
struct CpuUse {
    servers: f64,
    bench: f64,
    postgres: f64,
}

impl CpuUse {
    fn now(servers: &[u32]) -> CpuUse {
        let of = |stat: &str| -> Option<(String, f64)> {
            // `pid (comm) state ...`: the name may hold spaces, the fields after it do not.
            let (head, rest) = stat.rsplit_once(')')?;
            let comm = head.split_once('(')?.1.to_owned();
            let fields: Vec<&str> = rest.split_whitespace().collect();
            // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
            let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
            Some((comm, ticks / 100.0))
        };
        let read = |path: &str| std::fs::read_to_string(path).ok().and_then(|s| of(&s));
        let servers = servers.iter().filter_map(|pid| read(&format!("/proc/{pid}/stat"))).map(|(_, s)| s).sum();
        let bench = read("/proc/self/stat").map_or(0.0, |(_, s)| s);
        let postgres = std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| read(&format!("{}/stat", entry.path().display())))
            .filter(|(comm, _)| comm == "postgres")
            .map(|(_, s)| s)
            .sum();
        CpuUse { servers, bench, postgres }
    }

    fn minus(self, before: &CpuUse) -> CpuUse {
        CpuUse {
            servers: self.servers - before.servers,
            bench: self.bench - before.bench,
            postgres: self.postgres - before.postgres,
        }
    }
}

/// One phone's history: `years` yearly logs of `per_year` records, each record its own change.
fn layout() {
    const YEARS: i32 = 5;
    const PER_YEAR: usize = 1_000;
    let model = ModelId::new_random();
    let mut per_year: Vec<(DocId, AutoCommit)> = Vec::new();
    let mut single = AutoCommit::new();
    // The single-document layout keys records at its root like the log does; the header is the year's.
    schema::init_log(&mut single, model, 2025).expect("header");
    for y in 0..YEARS {
        let year = 2021 + y;
        let id = DocId::log(model, year).expect("log id");
        let mut doc = AutoCommit::new();
        schema::init_log(&mut doc, model, year).expect("header");
        for r in records(year, PER_YEAR) {
            schema::put_record(&mut doc, &r).expect("record");
            doc.commit();
            schema::put_record(&mut single, &r).expect("record");
            single.commit();
        }
        per_year.push((id, doc));
    }
    let (current_id, current) = per_year.last_mut().expect("a year");

    let measure = |name: &str, doc: &mut AutoCommit| {
        let saved = doc.save();
        let t = Instant::now();
        let loaded = AutoCommit::load(&saved).expect("load");
        let load = t.elapsed();
        let t = Instant::now();
        let copy = loaded.clone();
        let clone = t.elapsed();
        let keys = copy.keys(automerge::ROOT).count();
        let push = reconnect_bytes(doc);
        println!(
            "  {name:<26} {:>9} B saved  load {:>7.1} ms  copy {:>6.2} ms  push-20 {:>6} B  ({keys} root keys)",
            saved.len(),
            ms(load),
            ms(clone),
            push
        );
    };
    println!("layout: {YEARS} years x {PER_YEAR} records of one model, one change per record");
    measure("per model-year (current)", current);
    measure("one doc per model", &mut single);
    let t = Instant::now();
    let n = schema::read_log(current, current_id).expect("valid").records.len();
    println!("  reading a whole year       {:.1} ms for {n} records (typed, validated)", ms(t.elapsed()));
}

/// Bytes (gzip'd, both directions) of a reconnect that pushes 20 records,
/// using the sync protocol directly with persisted states on both sides.
fn reconnect_bytes(doc: &mut AutoCommit) -> usize {
    let mut server = doc.fork();
    let (mut phone_state, mut server_state) = (automerge::sync::State::new(), automerge::sync::State::new());
    converge(doc, &mut phone_state, &mut server, &mut server_state);
    let mut phone_state = automerge::sync::State::decode(&phone_state.encode()).expect("state");
    let mut server_state = automerge::sync::State::decode(&server_state.encode()).expect("state");
    for r in records(2025, 20) {
        schema::put_record(doc, &r).expect("record");
        doc.commit();
    }
    converge(doc, &mut phone_state, &mut server, &mut server_state)
}

fn converge(
    a: &mut AutoCommit,
    sa: &mut automerge::sync::State,
    b: &mut AutoCommit,
    sb: &mut automerge::sync::State,
) -> usize {
    let mut bytes = 0;
    loop {
        let Some(m) = a.sync().generate_sync_message(sa) else { return bytes };
        bytes += protocol::gzip(&m.clone().encode()).len();
        b.sync().receive_sync_message(sb, m).expect("receive");
        if let Some(reply) = b.sync().generate_sync_message(sb) {
            bytes += protocol::gzip(&reply.clone().encode()).len();
            a.sync().receive_sync_message(sa, reply).expect("receive");
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1_000.0
}

//! Staff devices at province scale (issue 11, goal 7), in headless Chromium
//! over a province-sized store of real documents ([`kheo_tests::province`]):
//!
//! ```text
//! cargo xtask build-app && cargo bench -p kheo-tests --bench province
//! cargo bench -p kheo-tests --bench province -- 0   # no records outside the home commune
//! cargo bench -p kheo-tests --bench province -- province   # the province staff account only
//! cargo bench -p kheo-tests --bench province -- poll       # the changes poll only, no browser
//! ```
//!
//! For a commune staff account of the home commune and a province staff
//! account, each on a fresh browser profile: log in, wait for the first
//! sync, then print the bytes the sync downloaded (the page's resource
//! timing of `/api/v1/sync`, bodies as on the wire), the documents held,
//! the localStorage used (keys and values, UTF-16), the cold open with the
//! network off (reload to the model list, by the page's own clock) and
//! opening the busy model of 2,000 records this year (tap to its records
//! on screen), online and then offline. A sync that fills the browser's
//! storage is reported as such, with what it held when it stopped.
//! Before the browsers: what one check of the "anything new?" poll costs
//! the server for a province staff device, over its whole scope and over
//! what it synced (`only_synced`, as the app asks).
//!
//! A benchmark, not a browser test: the seed alone takes longer than the
//! browser suite may spend on one test. `tests/browser/province.rs` checks
//! the same figures on a small seed.

// The browser tests' harness, shared as a file: a bench uses part of it.
#[allow(dead_code)]
#[path = "../tests/browser/harness.rs"]
mod harness;

use std::time::{Duration, Instant};

use harness::{Held, Phone};
use kheo_server::Config;
use kheo_shared::codes::Role;
use kheo_tests::province::{self, Plan, Seeded};
use kheo_tests::{HOME_UNIT, TestServer};
use serde_json::json;

/// How long a first sync may take before the bench says it did not finish.
const FIRST_SYNC_LIMIT: Duration = Duration::from_secs(420);
/// Cold opens per account; the median is the figure.
const COLD_OPENS: usize = 3;

fn main() {
    let mut plan = Plan::province();
    if let Some(n) = std::env::args().skip(1).find_map(|a| a.parse().ok()) {
        plan.other_records = n;
    }
    // `commune` or `province` measures that account only.
    let only: Option<String> = std::env::args().skip(1).find(|a| ["commune", "province", "poll"].contains(&a.as_str()));
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(run(plan, only));
}

async fn run(plan: Plan, only: Option<String>) {
    let app = harness::app_dir();
    let (ts, seeded) = TestServer::start_seeded(
        move |c: &mut Config| c.app_dir = Some(app),
        async |db| province::seed(db.store.as_ref(), &kheo_server::org::demo(), plan).await.expect("the seed"),
    )
    .await;
    println!("{}", seeded.describe());
    poll_checks(&ts).await;
    if only.as_deref() == Some("poll") {
        return;
    }
    let profiles = tempfile::tempdir().expect("profiles");
    let mut all = Vec::new();
    for (name, role, unit) in
        [("commune-staff", Role::CommuneStaff, HOME_UNIT), ("province-staff", Role::ProvinceStaff, "QNA")]
    {
        if only.as_deref().is_some_and(|o| !name.starts_with(o)) {
            continue;
        }
        let (user, secret) = ts.account(name, role, unit).await;
        let phone = Phone::launch(name, &profiles.path().join(name)).await;
        let figures = measure(&phone, &ts, &seeded, &user, &secret).await;
        println!("{name}: {figures}");
        all.push((name, figures));
        phone.quit().await;
    }
    println!("== summary ({})", seeded.describe());
    for (name, f) in &all {
        println!("{name:<15} {f}");
    }
}

/// One check of the changes poll (a cursor read from the store, answered
/// at once) for a province staff device that has synced nothing: over the
/// whole province, and with the `only_synced` the app sends. Alternated,
/// median of 21.
async fn poll_checks(ts: &TestServer) {
    const RUNS: usize = 21;
    let device = ts.device_as("poll-province", Role::ProvinceStaff, "QNA").await;
    let http = reqwest::Client::new();
    let check = async |query: &str| {
        let started = Instant::now();
        let answer = http
            .get(format!("{}/api/v1/changes?wait=0{query}", ts.url))
            .bearer_auth(&device.token)
            .send()
            .await
            .expect("the poll");
        assert!(answer.status().is_success(), "poll refused: {}", answer.status());
        answer.bytes().await.expect("its answer");
        started.elapsed().as_secs_f64() * 1e3
    };
    let (mut whole, mut synced) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        whole.push(check("").await);
        synced.push(check("&only_synced=true").await);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (whole, synced) = (median(&mut whole), median(&mut synced));
    println!(
        "changes poll, one check for a province staff device: whole scope {whole:.1} ms, \
         only what it synced {synced:.1} ms ({:.3}x)",
        synced / whole
    );
}

/// What one account's browser downloaded, kept and took.
#[derive(Debug, Default)]
struct Figures {
    first_sync: Option<Duration>,
    /// The sync bar's words when the first sync did not finish.
    stopped: Option<String>,
    held: Held,
    cold_open_ms: Vec<f64>,
    busy_online: Option<(f64, u64)>,
    busy_offline: Option<(f64, u64)>,
}

impl std::fmt::Display for Figures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.first_sync, &self.stopped) {
            (Some(t), _) => write!(f, "first sync {:.1} s", t.as_secs_f64())?,
            (None, Some(why)) => write!(f, "first sync DID NOT FINISH ({why:?})")?,
            (None, None) => write!(f, "first sync DID NOT FINISH")?,
        }
        let h = &self.held;
        let models = h.docs.iter().filter(|d| d.starts_with("model/")).count();
        write!(
            f,
            "; downloaded {:.2} MB in {} sync requests ({:.2} MB with headers; other API {:.1} KB); held {} documents \
             ({models} models); localStorage {:.2} MB ({} chars x 2)",
            h.sync_body_bytes as f64 / 1e6,
            h.sync_requests,
            h.sync_transfer_bytes as f64 / 1e6,
            h.other_api_bytes as f64 / 1e3,
            h.docs.len(),
            h.storage_bytes() as f64 / 1e6,
            h.storage_chars,
        )?;
        let mut opens = self.cold_open_ms.clone();
        opens.sort_by(f64::total_cmp);
        if let Some(median) = opens.get(opens.len() / 2) {
            write!(f, "; cold open offline {median:.0} ms (runs {opens:.0?})")?;
        }
        for (label, open) in [("online", &self.busy_online), ("offline", &self.busy_offline)] {
            match open {
                Some((ms, shown)) => write!(f, "; busy model {label} {ms:.0} ms to {shown} records on screen")?,
                None => write!(f, "; busy model {label}: not on the device")?,
            }
        }
        Ok(())
    }
}

async fn measure(phone: &Phone, ts: &TestServer, seeded: &Seeded, user: &str, secret: &str) -> Figures {
    let mut figures = Figures::default();
    // Scripts wait for a page that a province's documents keep busy.
    phone.driver.set_script_timeout(Duration::from_secs(300)).await.expect("script timeout");
    phone.watch_pages().await;
    phone.open(&ts.url).await;
    phone.fill("#login-user", user).await;
    phone.fill("#login-secret", secret).await;
    let started = Instant::now();
    phone.click("#login-submit").await;
    phone.wait_for("#sync-bar").await;
    match first_sync(phone, started).await {
        Ok(took) => figures.first_sync = Some(took),
        Err(why) => figures.stopped = Some(why),
    }
    figures.held = phone.held().await;
    phone.wait_offline_ready().await;

    let busy = format!("[data-model='{}']", seeded.busy);
    figures.busy_online = open_busy(phone, &busy).await;
    phone.set_online(false).await;
    for _ in 0..COLD_OPENS {
        figures.cold_open_ms.push(phone.cold_open().await);
    }
    phone.screenshot("province-cold-open").await;
    figures.busy_offline = open_busy(phone, &busy).await;
    phone.screenshot("province-busy-model").await;
    phone.set_online(true).await;
    figures
}

/// Waits for the first sync to finish; gives up at [`FIRST_SYNC_LIMIT`],
/// or once an error has stood for a minute with storage no longer growing.
async fn first_sync(phone: &Phone, started: Instant) -> Result<Duration, String> {
    let mut stuck_since: Option<(Instant, u64)> = None;
    loop {
        // A page busy applying thousands of documents answers no script for
        // a while: that is a state of the sync, not a failure of the bench.
        let state = match phone
            .driver
            .execute(
                "const p = document.querySelector('#sync-pending');
                 const bar = document.querySelector('#sync-bar');
                 const error = document.querySelector('#sync-error');
                 const done = !!p && p.dataset.pending === '0' && !error && !!bar
                   && bar.dataset.running === '0' && bar.dataset.synced === '1'
                   && !document.querySelector('#sync-last').innerText.includes('Chưa đồng bộ');
                 let chars = 0;
                 for (let i = 0; i < localStorage.length; i++) chars += (localStorage.getItem(localStorage.key(i)) || '').length;
                 return { done, error: error ? error.innerText : null, chars };",
                vec![],
            )
            .await
        {
            Ok(answer) => answer.json().clone(),
            Err(e) => {
                println!("{}: no answer after {:.0} s ({e:.80})", phone.name, started.elapsed().as_secs_f64());
                if started.elapsed() > FIRST_SYNC_LIMIT {
                    return Err(format!("the page stopped answering after {:.0} s", started.elapsed().as_secs_f64()));
                }
                continue;
            }
        };
        if state["done"] == json!(true) {
            return Ok(started.elapsed());
        }
        let chars = state["chars"].as_u64().unwrap_or(0);
        let error = state["error"].as_str().map(str::to_owned);
        stuck_since = match (stuck_since, &error) {
            (Some((since, at)), Some(_)) if at == chars => Some((since, at)),
            (_, Some(_)) => Some((Instant::now(), chars)),
            (_, None) => None,
        };
        let stuck = stuck_since.is_some_and(|(since, _)| since.elapsed() > Duration::from_secs(60));
        if stuck || started.elapsed() > FIRST_SYNC_LIMIT {
            phone.screenshot("province-first-sync-stopped").await;
            let bar = phone.text("#sync-bar").await;
            return Err(format!("after {:.0} s: {}", started.elapsed().as_secs_f64(), error.unwrap_or(bar)));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Finds the busy model in the list (searching by its name when the
/// first page does not show it), opens it timed, and goes back.
async fn open_busy(phone: &Phone, card: &str) -> Option<(f64, u64)> {
    if phone.count(card).await == 0 && phone.count("#models-q").await > 0 {
        phone.fill("#models-q", "Kim Đới").await;
        phone.click("#models-search").await;
        let found = Instant::now();
        while phone.count(card).await == 0 && found.elapsed() < Duration::from_secs(20) {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    if phone.count(card).await == 0 {
        return None;
    }
    let opened = phone.open_timed(card).await;
    phone.click("#back").await;
    phone.wait_for("#models [data-model], #no-models").await;
    opened
}

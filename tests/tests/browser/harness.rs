//! Driving the built app in Debian's headless Chromium through
//! chromedriver (thirtyfour): one chromedriver per browser, a fresh or
//! reused profile directory, a 360×640 phone viewport, network emulation
//! for "offline", and small helpers that wait for what a person would see.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use kheo_server::Config;
use kheo_shared::codes::ReviewState;
use kheo_shared::record::{Record, Review};
use kheo_shared::scalars::Timestamp;
use kheo_tests::TestServer;
use serde_json::json;
use thirtyfour::cdp::domains::network::NetworkConditions;
use thirtyfour::prelude::*;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// Long enough for a cold WebAssembly start on a loaded 2-core machine.
pub const PATIENCE: Duration = Duration::from_secs(45);

/// Browsers are heavy: the tests of this binary take turns.
pub async fn one_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    static TURN: OnceLock<tokio::sync::Mutex<()>> = OnceLock::new();
    TURN.get_or_init(|| tokio::sync::Mutex::new(())).lock().await
}

/// The built app (`cargo xtask build-app` writes it).
pub fn app_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../app/dist");
    assert!(
        ["index.html", "kheo_login_bg.wasm", "kheo_app_bg.wasm"].iter().all(|f| dir.join(f).is_file()),
        "the app is not built at {}: run `cargo xtask build-app` (or `cargo xtask test`, which builds it)",
        dir.display()
    );
    dir
}

/// Where screenshots of the main screens go, as test artifacts.
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let dir = target.join("e2e-screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot directory");
    dir
}

/// A server that also serves the built app.
pub async fn server_with_app() -> TestServer {
    let app = app_dir();
    TestServer::start_with(move |c: &mut Config| c.app_dir = Some(app)).await
}

/// An element's box on screen, in CSS pixels.
#[derive(Debug, Clone, Copy)]
pub struct Rect {
    pub top: f64,
    pub bottom: f64,
    pub left: f64,
    pub right: f64,
    pub scroll_y: f64,
    pub viewport_height: f64,
}

impl Rect {
    pub fn height(&self) -> f64 {
        self.bottom - self.top
    }

    pub fn width(&self) -> f64 {
        self.right - self.left
    }

    /// Wholly on screen without scrolling.
    pub fn in_view(&self) -> bool {
        self.top >= 0.0 && self.bottom <= self.viewport_height
    }
}

/// One browser profile: a phone.
pub struct Phone {
    pub driver: WebDriver,
    chromedriver: Child,
    pub name: &'static str,
}

impl Phone {
    /// Starts Chromium on `profile` (a directory that outlives the browser,
    /// so a later launch on it is the same phone after a restart).
    pub async fn launch(name: &'static str, profile: &Path) -> Phone {
        assert!(
            Path::new(CHROMIUM).is_file() && Path::new(CHROMEDRIVER).is_file(),
            "browser tests need Debian's chromium and chromium-driver (`apt-get install chromium chromium-driver`)"
        );
        let port = free_port();
        let chromedriver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let url = format!("http://127.0.0.1:{port}");
        wait_for_chromedriver(&url).await;
        let mut caps = DesiredCapabilities::chrome();
        caps.set_binary(CHROMIUM).expect("binary");
        for arg in [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=360,640",
            "--lang=vi-VN",
        ] {
            caps.add_arg(arg).expect("argument");
        }
        caps.add_arg(&format!("--user-data-dir={}", profile.display())).expect("profile");
        let driver = WebDriver::new(url, caps).await.expect("browser session");
        let phone = Phone { driver, chromedriver, name };
        phone
            .cdp(
                "Emulation.setDeviceMetricsOverride",
                json!({ "width": 360, "height": 640, "deviceScaleFactor": 2, "mobile": true }),
            )
            .await;
        phone
    }

    pub async fn cdp(&self, command: &str, params: serde_json::Value) -> serde_json::Value {
        self.driver
            .cdp()
            .send_raw(command, params)
            .await
            .unwrap_or_else(|e| panic!("{}: CDP {command}: {e}", self.name))
    }

    /// The browser's own network emulation: with `false`, every request of
    /// the page fails as with no signal, and the page is told it is offline.
    pub async fn set_online(&self, online: bool) {
        self.emulate(NetworkConditions { offline: !online, ..NetworkConditions::new() }).await;
    }

    /// A weak mobile link: `kbit_per_s` each way, `latency_ms` added to each request.
    pub async fn set_weak_link(&self, kbit_per_s: i32, latency_ms: u32) {
        let bytes_per_s = kbit_per_s * 1000 / 8;
        self.emulate(NetworkConditions {
            offline: false,
            latency: latency_ms,
            download_throughput: bytes_per_s,
            upload_throughput: bytes_per_s,
            ..NetworkConditions::new()
        })
        .await;
    }

    async fn emulate(&self, conditions: NetworkConditions) {
        self.cdp("Network.enable", json!({})).await;
        self.driver
            .cdp()
            .network()
            .emulate_network_conditions(conditions)
            .await
            .unwrap_or_else(|e| panic!("{}: network conditions: {e}", self.name));
    }

    /// Runs `script` in every page this phone opens from now on, before the
    /// page's own scripts (to watch what the page does from its start).
    pub async fn before_each_page(&self, script: &str) {
        self.cdp("Page.enable", json!({})).await;
        self.cdp("Page.addScriptToEvaluateOnNewDocument", json!({ "source": script })).await;
    }

    pub async fn open(&self, url: &str) {
        self.driver.goto(url).await.unwrap_or_else(|e| panic!("{}: open {url}: {e}", self.name));
    }

    pub async fn reload(&self) {
        self.driver.refresh().await.unwrap_or_else(|e| panic!("{}: reload: {e}", self.name));
    }

    pub async fn js(&self, script: &str, args: Vec<serde_json::Value>) -> serde_json::Value {
        self.driver
            .execute(script, args)
            .await
            .unwrap_or_else(|e| panic!("{}: script failed: {e}\n{script}", self.name))
            .json()
            .clone()
    }

    /// Waits until `script` returns something truthy, and returns it.
    pub async fn wait_js(&self, what: &str, script: &str, args: Vec<serde_json::Value>) -> serde_json::Value {
        let started = Instant::now();
        loop {
            let v = self.driver.execute(script, args.clone()).await.map(|r| r.json().clone());
            if let Ok(v) = &v
                && !v.is_null()
                && v != &json!(false)
                && v != &json!("")
                && v != &json!(0)
            {
                return v.clone();
            }
            if started.elapsed() > PATIENCE {
                self.screenshot(&format!("timeout-{}", what.replace(' ', "-"))).await;
                let body = self.text("body").await;
                panic!("{}: waited {PATIENCE:?} for {what}; last answer {v:?}; the page shows:\n{body}", self.name);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits for an element matching a CSS selector.
    pub async fn wait_for(&self, selector: &str) {
        self.wait_js(
            &format!("element {selector}"),
            "return !!document.querySelector(arguments[0]);",
            vec![json!(selector)],
        )
        .await;
    }

    /// Waits until the text of `selector` contains `needle`.
    pub async fn wait_text(&self, selector: &str, needle: &str) {
        self.wait_js(
            &format!("{selector} to say {needle:?}"),
            "const e = document.querySelector(arguments[0]); return !!e && e.textContent.includes(arguments[1]);",
            vec![json!(selector), json!(needle)],
        )
        .await;
    }

    /// Text content of the first match, empty when absent.
    pub async fn text(&self, selector: &str) -> String {
        let v = self
            .driver
            .execute(
                "const e = document.querySelector(arguments[0]); return e ? e.innerText : '';",
                vec![json!(selector)],
            )
            .await
            .map(|r| r.json().clone())
            .unwrap_or_default();
        v.as_str().unwrap_or_default().to_owned()
    }

    pub async fn count(&self, selector: &str) -> usize {
        let v = self.js("return document.querySelectorAll(arguments[0]).length;", vec![json!(selector)]).await;
        v.as_u64().unwrap_or(0) as usize
    }

    pub async fn wait_count(&self, selector: &str, n: usize) {
        self.wait_js(
            &format!("{n} × {selector}"),
            "return document.querySelectorAll(arguments[0]).length === arguments[1];",
            vec![json!(selector), json!(n)],
        )
        .await;
    }

    pub async fn click(&self, selector: &str) {
        self.wait_for(selector).await;
        let element =
            self.driver.find(By::Css(selector)).await.unwrap_or_else(|e| panic!("{}: {selector}: {e}", self.name));
        element.scroll_into_view().await.ok();
        element.click().await.unwrap_or_else(|e| panic!("{}: click {selector}: {e}", self.name));
    }

    /// Types into an input by replacing its value and firing the events a
    /// person's typing fires (date and time pickers take no keystrokes
    /// headless, so every field is filled the same way).
    pub async fn fill(&self, selector: &str, value: &str) {
        self.wait_for(selector).await;
        self.js(
            "const e = document.querySelector(arguments[0]); e.focus(); e.value = arguments[1];
             e.dispatchEvent(new Event('input', { bubbles: true }));
             e.dispatchEvent(new Event('change', { bubbles: true }));",
            vec![json!(selector), json!(value)],
        )
        .await;
    }

    /// Where the first match sits on screen (CSS pixels, the viewport's
    /// coordinates), and the window's scroll and height with it.
    pub async fn rect(&self, selector: &str) -> Rect {
        self.wait_for(selector).await;
        let v = self
            .js(
                "const r = document.querySelector(arguments[0]).getBoundingClientRect();
                 return [r.top, r.bottom, r.left, r.right, window.scrollY, window.innerHeight];",
                vec![json!(selector)],
            )
            .await;
        let n = |i: usize| v[i].as_f64().unwrap_or_else(|| panic!("{}: no rect for {selector}: {v}", self.name));
        Rect { top: n(0), bottom: n(1), left: n(2), right: n(3), scroll_y: n(4), viewport_height: n(5) }
    }

    /// Opens a model's page: taps it in the model list, or finds it open
    /// already (a volunteer with one model lands in it).
    pub async fn open_model(&self, model: impl std::fmt::Display) {
        let page = format!("/models/{model}");
        self.wait_js(
            &format!("the model {model} in the list or open"),
            "if (location.pathname === arguments[0]) return true;
             const card = document.querySelector(arguments[1]);
             if (card) { card.click(); return true; }
             return false;",
            vec![json!(page), json!(format!("[data-model='{model}']"))],
        )
        .await;
        self.wait_js(
            &format!("the page of model {model}"),
            "return location.pathname === arguments[0] && !!document.querySelector('#add-record');",
            vec![json!(page)],
        )
        .await;
    }

    /// Waits until a model is on the phone: in the list, or open.
    pub async fn wait_model(&self, model: impl std::fmt::Display) {
        self.wait_js(
            &format!("the model {model} on the phone"),
            "return location.pathname === arguments[0] || !!document.querySelector(arguments[1]);",
            vec![json!(format!("/models/{model}")), json!(format!("[data-model='{model}']"))],
        )
        .await;
    }

    pub async fn screenshot(&self, name: &str) {
        let path = screenshot_dir().join(format!("{}-{name}.png", self.name));
        if let Err(e) = self.driver.screenshot(&path).await {
            eprintln!("{}: screenshot {name}: {e}", self.name);
        }
    }

    /// Logs in through the form and waits for the first sync to finish.
    pub async fn log_in(&self, url: &str, username: &str, secret: &str) {
        self.open(url).await;
        self.fill("#login-user", username).await;
        self.fill("#login-secret", secret).await;
        self.screenshot("login").await;
        self.click("#login-submit").await;
        self.wait_for("#sync-bar").await;
        self.wait_synced().await;
    }

    /// Waits until the service worker controls the page and holds the shell,
    /// which is what lets the app open with no network.
    pub async fn wait_offline_ready(&self) {
        self.wait_js(
            "the service worker to control the page",
            "return !!navigator.serviceWorker && !!navigator.serviceWorker.controller;",
            vec![],
        )
        .await;
        self.wait_js(
            "the app shell in the cache",
            "return caches.keys().then(async (keys) => {
               for (const k of keys) {
                 const cache = await caches.open(k);
                 if (await cache.match('/kheo_app_bg.wasm') && await cache.match('/kheo_login_bg.wasm')) return true;
               }
               return false;
             });",
            vec![],
        )
        .await;
    }

    /// Waits until no change waits and the last sync succeeded.
    pub async fn wait_synced(&self) {
        self.wait_js(
            "a completed sync with nothing waiting",
            "const p = document.querySelector('#sync-pending');
             const bar = document.querySelector('#sync-bar');
             return !!p && p.dataset.pending === '0' && !document.querySelector('#sync-error')
               && bar.dataset.running === '0' && bar.dataset.synced === '1'
               && !document.querySelector('#sync-last').innerText.includes('Chưa đồng bộ');",
            vec![],
        )
        .await;
    }

    pub async fn pending(&self) -> usize {
        let v = self
            .js("const p = document.querySelector('#sync-pending'); return p ? p.dataset.pending : '0';", vec![])
            .await;
        v.as_str().and_then(|s| s.parse().ok()).unwrap_or(0)
    }

    /// From the next page on, keeps every request's timing (the default
    /// buffer holds 250) and notes when the model list first shows, for
    /// [`Phone::held`] and [`Phone::cold_open`].
    pub async fn watch_pages(&self) {
        self.before_each_page(
            "performance.setResourceTimingBufferSize(1000000);
             new MutationObserver((_, observer) => {
               if (!window.__kheoListShown && document.querySelector('#models [data-model], #no-models')) {
                 window.__kheoListShown = performance.now();
                 observer.disconnect();
               }
             }).observe(document, { childList: true, subtree: true });",
        )
        .await;
    }

    /// What this page downloaded from the API and what the phone keeps.
    pub async fn held(&self) -> Held {
        let v = self
            .js(
                "let syncs = 0, body = 0, transfer = 0, other = 0;
                 for (const e of performance.getEntriesByType('resource')) {
                   const path = new URL(e.name).pathname;
                   if (path === '/api/v1/sync') { syncs += 1; body += e.encodedBodySize; transfer += e.transferSize; }
                   else if (path.startsWith('/api/')) { other += e.encodedBodySize; }
                 }
                 let chars = 0;
                 const docs = [];
                 for (let i = 0; i < localStorage.length; i++) {
                   const key = localStorage.key(i);
                   chars += key.length + (localStorage.getItem(key) || '').length;
                   if (key.startsWith('kheo.doc.')) docs.push(key.slice('kheo.doc.'.length));
                 }
                 return { syncs, body, transfer, other, chars, docs };",
                vec![],
            )
            .await;
        let n = |k: &str| v[k].as_u64().unwrap_or(0);
        let mut docs: Vec<String> =
            v["docs"].as_array().into_iter().flatten().filter_map(|d| d.as_str().map(str::to_owned)).collect();
        docs.sort();
        Held {
            sync_requests: n("syncs"),
            sync_body_bytes: n("body"),
            sync_transfer_bytes: n("transfer"),
            other_api_bytes: n("other"),
            storage_chars: n("chars"),
            docs,
        }
    }

    /// Reloads (with the network off, a cold open from the worker's cache
    /// and the phone's storage) and returns the milliseconds from the
    /// navigation to the model list on screen, by the page's own clock.
    /// Needs [`Phone::watch_pages`].
    pub async fn cold_open(&self) -> f64 {
        self.reload().await;
        let shown =
            self.wait_js("the model list after a reload", "return window.__kheoListShown || null;", vec![]).await;
        shown.as_f64().unwrap_or(f64::NAN)
    }

    /// Taps `selector` and returns, at the first frame that shows a record
    /// of the log, the milliseconds since the tap and how many records are
    /// on screen; `None` after a minute with none.
    pub async fn open_timed(&self, selector: &str) -> Option<(f64, u64)> {
        self.wait_for(selector).await;
        let v = self
            .js(
                "const card = document.querySelector(arguments[0]);
                 const started = performance.now();
                 card.click();
                 return new Promise((resolve) => {
                   const look = () => {
                     const shown = document.querySelectorAll('#records .record').length;
                     if (shown > 0) requestAnimationFrame(() => resolve([performance.now() - started, shown]));
                     else if (performance.now() - started > 60000) resolve(null);
                     else requestAnimationFrame(look);
                   };
                   look();
                 });",
                vec![json!(selector)],
            )
            .await;
        let v = v.as_array()?;
        Some((v.first()?.as_f64()?, v.get(1)?.as_u64()?))
    }

    pub async fn quit(mut self) {
        let _ = self.driver.clone().quit().await;
        let _ = self.chromedriver.kill();
        let _ = self.chromedriver.wait();
    }
}

impl Drop for Phone {
    fn drop(&mut self) {
        let _ = self.chromedriver.kill();
    }
}

/// What a phone downloaded and keeps ([`Phone::held`]).
#[derive(Debug, Clone, Default)]
pub struct Held {
    pub sync_requests: u64,
    /// `/api/v1/sync` answers' bodies as on the wire, and with their headers.
    pub sync_body_bytes: u64,
    pub sync_transfer_bytes: u64,
    /// Every other `/api/` answer's body.
    pub other_api_bytes: u64,
    /// localStorage keys and values, in characters (UTF-16: 2 bytes each).
    pub storage_chars: u64,
    /// The documents stored, by id (`model/<uuid>`, `log/<uuid>/<year>`).
    pub docs: Vec<String>,
}

impl Held {
    pub fn storage_bytes(&self) -> u64 {
        self.storage_chars * 2
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

async fn wait_for_chromedriver(url: &str) {
    let started = Instant::now();
    let http = reqwest::Client::new();
    while started.elapsed() < Duration::from_secs(20) {
        if http.get(format!("{url}/status")).send().await.is_ok_and(|r| r.status().is_success()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not start on {url}");
}

/// Records of `model` (logs of 2025 and 2026) as the server holds them,
/// read by a fresh simulated device of the home commune.
pub async fn server_records(ts: &TestServer, model: kheo_shared::ids::ModelId, who: &str) -> Vec<Record> {
    let mut device = ts.device_as(who, kheo_shared::codes::Role::Volunteer, kheo_tests::HOME_UNIT).await;
    device.sync(&ts.url).await.expect("the checking device syncs");
    let mut records = Vec::new();
    for year in [2025, 2026] {
        let log = kheo_shared::ids::DocId::log(model, year).expect("a valid year");
        records.extend(device.records(&log).into_values());
    }
    records
}

/// A commune decision on a record, as the review screen writes it.
pub fn decided(record: &Record, state: ReviewState, reviewer: &str, comment: &str) -> Record {
    let mut r = record.clone();
    r.review = Review {
        state,
        reviewer: Some(reviewer.into()),
        reviewed_at: Some(Timestamp(r.updated_at.0 + 60_000)),
        comment: comment.into(),
    };
    r
}

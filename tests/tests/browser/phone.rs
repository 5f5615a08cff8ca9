//! What the phone does when things go wrong on its side: the server
//! refuses a change, storage fills up; a first visit over a weak link; and
//! the English option.

use kheo_server::store::directory::AccountUpdate;
use kheo_shared::codes::Role;
use kheo_shared::ids::RecordId;
use kheo_shared::testdata;
use kheo_tests::HOME_UNIT;
use serde_json::json;

use crate::harness::{Phone, one_at_a_time, server_with_app};

#[tokio::test]
async fn a_refused_record_shows_the_reason_and_stays_on_the_phone() {
    let _turn = one_at_a_time().await;
    let mut ts = server_with_app().await;
    let model = ts.model().await;
    let (user, secret) = ts.account("moved", Role::Volunteer, HOME_UNIT).await;
    let profiles = tempfile::tempdir().expect("profiles");
    let phone = Phone::launch("refused", &profiles.path().join("a")).await;
    phone.log_in(&ts.url, &user, &secret).await;

    // The volunteer moves to another commune; the phone does not know yet.
    let account = ts.accounts().directory.account_by_login(&user).await.expect("lookup").expect("the account");
    let update = AccountUpdate { unit: Some("QNA.DB.DP".into()), ..AccountUpdate::default() };
    ts.accounts().update_account(&account.id, update).await.expect("the account moves");

    phone.open_model(model).await;
    phone.click("#add-record").await;
    phone.fill("#f-kind", "meeting").await;
    phone.fill("#f-date", "2025-08-02").await;
    phone.fill("#f-topic", "Họp tổ tự quản tháng 8").await;
    phone.fill("#f-attendees", "25").await;
    phone.click("#save").await;
    phone.wait_text("#notice", "Đã lưu").await;

    phone.wait_text("#sync-error", "Máy chủ từ chối").await;
    phone.wait_text(".rejected", "Máy chủ từ chối").await;
    phone.screenshot("refused").await;
    assert_eq!(phone.count("li.record").await, 1, "the refused record stays on the phone");

    // After a reload the refusal is still shown and the data still there.
    phone.reload().await;
    // A reload stays on the model's page (its own address).
    phone.wait_for("#add-record").await;
    phone.wait_text(".rejected", "Máy chủ từ chối").await;
    phone.wait_count("li.record", 1).await;

    phone.quit().await;
    ts.stop().await;
}

#[tokio::test]
async fn a_full_storage_is_reported_and_loses_nothing() {
    let _turn = one_at_a_time().await;
    let mut ts = server_with_app().await;
    let model = ts.model().await;
    let (user, secret) = ts.account("full", Role::Volunteer, HOME_UNIT).await;
    let profiles = tempfile::tempdir().expect("profiles");
    let phone = Phone::launch("storage-full", &profiles.path().join("a")).await;
    phone.log_in(&ts.url, &user, &secret).await;
    phone.set_online(false).await;

    // Fill the origin's storage to the last byte, as other data on an old phone might.
    let filled = phone
        .js(
            "let n = 0; let chunk = 'x'.repeat(256 * 1024);
             while (chunk.length > 0) {
               try { localStorage.setItem('filler.' + n, chunk); n++; }
               catch (e) { chunk = chunk.slice(0, Math.floor(chunk.length / 2)); }
             }
             return n;",
            vec![],
        )
        .await;
    assert!(filled.as_u64().unwrap_or(0) > 0, "storage was filled");

    phone.open_model(model).await;
    phone.click("#add-record").await;
    phone.fill("#f-kind", "meeting").await;
    phone.fill("#f-date", "2025-08-03").await;
    phone.fill("#f-topic", "Tuyên truyền phòng chống cờ bạc").await;
    phone.fill("#f-attendees", "40").await;
    phone.click("#save").await;
    phone.wait_text("#form-error", "Bộ nhớ đã đầy").await;
    phone.screenshot("storage-full").await;
    // The form keeps what was typed, and nothing half-saved appears.
    let topic = phone.js("return document.querySelector('#f-topic').value;", vec![]).await;
    assert_eq!(topic.as_str(), Some("Tuyên truyền phòng chống cờ bạc"));

    // Space is freed; the same form saves, and a reload shows the record.
    phone
        .js(
            "Object.keys(localStorage).filter(k => k.startsWith('filler.')).forEach(k => localStorage.removeItem(k));",
            vec![],
        )
        .await;
    phone.click("#save").await;
    phone.wait_text("#notice", "Đã lưu").await;
    phone.reload().await;
    // A reload stays on the model's page (its own address).
    phone.wait_for("#add-record").await;
    phone.wait_count("li.record", 1).await;

    phone.quit().await;
    ts.stop().await;
}

#[tokio::test]
async fn english_is_an_option_and_keeps_dates_and_money_in_local_form() {
    let _turn = one_at_a_time().await;
    let mut ts = server_with_app().await;
    let model = ts.model().await;
    let (user, secret) = ts.account("english", Role::Volunteer, HOME_UNIT).await;
    let profiles = tempfile::tempdir().expect("profiles");
    let phone = Phone::launch("english", &profiles.path().join("a")).await;
    phone.log_in(&ts.url, &user, &secret).await;
    // One model: the app opens in it.
    phone.open_model(model).await;
    phone.wait_text("#add-record", "Ghi hoạt động mới").await;

    phone.click("#language").await;
    phone.wait_text("#add-record", "Log a new activity").await;
    phone.click("#add-record").await;
    phone.fill("#f-kind", "production").await;
    phone.fill("#f-date", "2025-09-05").await;
    phone.fill("#f-product", "Nấm rơm").await;
    phone.fill("#f-quantity", "120,5").await;
    phone.fill("#f-unit", "kg").await;
    phone.fill("#f-revenue", "6.025.000").await;
    phone.click("#save").await;
    phone.wait_text("#notice", "Saved").await;
    phone.wait_text("li.record", "05/09/2025").await;
    phone.wait_text("li.record", "6.025.000 đ").await;
    phone.wait_text("li.record", "120,5 kg").await;
    phone.wait_text("li.record", "Production and sales").await;
    phone.screenshot("english").await;

    // The choice survives a reload.
    phone.reload().await;
    phone.wait_text("h2", "Activity log").await;

    phone.quit().await;
    ts.stop().await;
}

#[tokio::test]
async fn logging_out_clears_the_phone_and_revokes_its_token() {
    let _turn = one_at_a_time().await;
    let mut ts = server_with_app().await;
    ts.model().await;
    let (user, secret) = ts.account("leaving", Role::Volunteer, HOME_UNIT).await;
    let profiles = tempfile::tempdir().expect("profiles");
    let phone = Phone::launch("logout", &profiles.path().join("a")).await;
    phone.log_in(&ts.url, &user, &secret).await;
    let token = phone.js("return JSON.parse(localStorage.getItem('kheo.session')).token;", vec![]).await;
    let token = token.as_str().expect("a stored token").to_owned();

    phone.click("#logout").await;
    phone.wait_for("#login-user").await;
    let left =
        phone.js("return Object.keys(localStorage).filter(k => k.startsWith('kheo.doc.')).length;", vec![]).await;
    assert_eq!(left.as_u64(), Some(0), "no document stays on a phone after logout");

    let http = reqwest::Client::new();
    let mut status = 0;
    for _ in 0..50 {
        let me =
            http.get(format!("{}/api/v1/me", ts.url)).bearer_auth(&token).send().await.expect("the server answers");
        status = me.status().as_u16();
        if status == 401 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status, 401, "the token of a logged-out phone no longer works");

    phone.quit().await;
    ts.stop().await;
}

/// Vietnamese words of the app's own chrome: none may show on a screen in English.
const VIETNAMESE_CHROME: [&str; 9] =
    ["Đồng bộ", "Quay lại", "Duyệt", "Báo cáo", "Lưu", "Mô hình", "Chưa", "Nhật ký", "hoạt động"];

/// The screen in English fits 360 px and says nothing of the app's own in Vietnamese.
async fn reads_in_english(phone: &Phone, screen: &str) {
    phone.screenshot(&format!("en-{screen}")).await;
    let body = phone.text("body").await;
    for word in VIETNAMESE_CHROME {
        assert!(!body.contains(word), "{screen}: {word:?} in English:\n{body}");
    }
    let width = phone.js("return document.documentElement.scrollWidth;", vec![]).await;
    assert!(width.as_f64().is_some_and(|w| w <= 360.5), "{screen} is {width} px wide");
}

#[tokio::test]
async fn every_screen_reads_in_english_at_360_px() {
    let _turn = one_at_a_time().await;
    let mut ts = server_with_app().await;
    let model = ts.model().await;
    // A record to review.
    let mut volunteer = ts.device("english-tv").await;
    volunteer.put_record(model, &testdata::patrol(RecordId::new_random(), "2025-03-10", 1));
    volunteer.sync(&ts.url).await.expect("the volunteer's phone syncs");
    let (user, secret) = ts.account("english-staff", Role::CommuneStaff, HOME_UNIT).await;
    let profiles = tempfile::tempdir().expect("profiles");
    let phone = Phone::launch("english-staff", &profiles.path().join("a")).await;
    phone.log_in(&ts.url, &user, &secret).await;
    phone.wait_model(model).await;
    phone.click("#language").await;
    phone.wait_text("h1", "Models").await;
    phone.wait_for("#models-total").await;
    reads_in_english(&phone, "models").await;

    phone.open_model(model).await;
    phone.wait_text("h2", "Activity log").await;
    phone.wait_for("li.record").await;
    reads_in_english(&phone, "model").await;

    phone.click("#edit-model").await;
    phone.wait_for("#m-members").await;
    reads_in_english(&phone, "model-form").await;
    phone.click("#back").await;

    phone.click("#tab-review").await;
    phone.wait_for("li.review-item").await;
    reads_in_english(&phone, "review").await;

    phone.click("#tab-reports").await;
    phone.wait_for("#rollup-caption").await;
    reads_in_english(&phone, "reports").await;

    // The record form last: a changed form asks before it is left.
    phone.click("#tab-models").await;
    phone.open_model(model).await;
    phone.click("#add-record").await;
    phone.fill("#f-kind", "patrol").await;
    phone.wait_for("#f-members").await;
    reads_in_english(&phone, "record-form").await;
    for kind in ["household_support", "production", "meeting"] {
        phone.fill("#f-kind", kind).await;
        reads_in_english(&phone, &format!("record-form-{kind}")).await;
    }

    phone.quit().await;
    ts.stop().await;
}

/// What a first visit may download (WebAssembly and JS, as served) before
/// the login screen works: issue 11's goal for a poor link.
const LOGIN_BUDGET: f64 = 450_000.0;

/// A first visit over a weak link (400 kbit/s each way, 400 ms per
/// request): index.html paints its boot screen before the app has
/// downloaded; the login screen works once the login module has, within
/// [`LOGIN_BUDGET`]; the whole app downloads behind it, the service worker's
/// offline copy revalidates what the page already downloaded (a 304 costs
/// headers) instead of fetching the app a second time, and a login then
/// opens the whole app from what the page holds. Prints the figures.
#[tokio::test]
async fn a_first_visit_over_a_weak_link_paints_at_once_and_downloads_the_app_once() {
    let _turn = one_at_a_time().await;
    let mut ts = server_with_app().await;
    let model = ts.model().await;
    let (user, secret) = ts.account("weak-link", Role::Volunteer, HOME_UNIT).await;
    let profiles = tempfile::tempdir().expect("profiles");
    let phone = Phone::launch("weak-link", &profiles.path().join("a")).await;
    // When the login form first exists (its button is made with its
    // handlers), seen by the page itself whatever the app's files are.
    phone
        .before_each_page(
            "new MutationObserver((_, seen) => {
               if (document.getElementById('login-submit')) { window.kheoLoginUsable = performance.now(); seen.disconnect(); }
             }).observe(document, { childList: true, subtree: true });",
        )
        .await;
    phone.set_weak_link(400, 400).await;
    phone.open(&ts.url).await;
    let booting = phone
        .js(
            "const b = document.getElementById('boot');
             return !!b && b.getBoundingClientRect().height > 0 && !document.getElementById('login-submit');",
            vec![],
        )
        .await;
    assert_eq!(booting, json!(true), "the boot screen shows while the app downloads");
    phone.screenshot("weak-link-boot").await;

    phone.wait_for("#login-submit").await;
    let login = phone.js("return window.kheoLoginUsable;", vec![]).await.as_f64().expect("when the login appeared");
    assert_eq!(phone.count("#boot").await, 0, "the boot screen is gone once the app runs");
    // The WebAssembly and JS the page had downloaded by then, as served (brotli).
    let before_login = phone
        .js(
            "return performance.getEntriesByType('resource')
               .filter((e) => e.responseEnd <= arguments[0] && /\\.(js|wasm)$/.test(new URL(e.name).pathname))
               .map((e) => [new URL(e.name).pathname, e.transferSize]);",
            vec![json!(login)],
        )
        .await;
    let before_login: Vec<(String, f64)> = serde_json::from_value(before_login).expect("the files before the login");
    let login_bytes: f64 = before_login.iter().map(|(_, size)| size).sum();
    phone.wait_offline_ready().await;
    let ready = phone.js("return performance.now();", vec![]).await.as_f64().expect("a time");
    let painted = phone
        .js(
            "const p = performance.getEntriesByName('first-contentful-paint')[0]; return p ? p.startTime : null;",
            vec![],
        )
        .await
        .as_f64()
        .expect("a first contentful paint");
    assert!(painted < login, "something is painted before the app runs: {painted:.0} ms, login at {login:.0} ms");

    let page_bytes = |path: &str| {
        format!(
            "const e = performance.getEntriesByType('resource').find((e) => new URL(e.name).pathname === '{path}');
             return e ? e.transferSize : null;"
        )
    };
    let page_wasm =
        phone.js(&page_bytes("/kheo_app_bg.wasm"), vec![]).await.as_f64().expect("the page fetched the wasm");
    let page_total = phone
        .js(
            "return performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource'))
               .reduce((sum, e) => sum + e.transferSize, 0);",
            vec![],
        )
        .await
        .as_f64()
        .expect("the page's bytes");
    let worker = phone
        .js(
            "return new Promise((resolve) => {
               const channel = new MessageChannel();
               channel.port1.onmessage = (e) => resolve(e.data);
               navigator.serviceWorker.controller.postMessage('kheo-downloads', [channel.port2]);
             });",
            vec![],
        )
        .await;
    let worker = worker.as_array().expect("the worker's downloads").clone();
    let of_worker = |path: &str| {
        worker.iter().find(|e| e["name"] == path).and_then(|e| e["transferSize"].as_f64()).unwrap_or_else(|| {
            panic!("the worker fetched {path} for its copy: {worker:?}");
        })
    };
    let worker_total: f64 = worker.iter().filter_map(|e| e["transferSize"].as_f64()).sum();

    // Logged in once the whole app has arrived: it opens from what the page holds.
    phone.fill("#login-user", &user).await;
    phone.fill("#login-secret", &secret).await;
    let submitted = phone.js("return performance.now();", vec![]).await.as_f64().expect("a time");
    phone.click("#login-submit").await;
    phone.wait_model(model).await;
    let opened = phone.js("return performance.now();", vec![]).await.as_f64().expect("a time");
    phone.wait_for("#sync-bar").await;
    assert_eq!(phone.count("#login-submit").await, 0, "the login module took its screen down");
    println!(
        "first visit at 400 kbit/s, 400 ms: boot screen painted at {:.1} s, login usable at {:.1} s after {:.1} KB \
         of WebAssembly and JS ({}), offline-ready at {:.1} s; the page downloaded {:.0} KB (the whole app's \
         WebAssembly {:.0} KB), the worker's copy {:.1} KB more; after the login, the model list in {:.1} s",
        painted / 1e3,
        login / 1e3,
        login_bytes / 1e3,
        before_login.iter().map(|(path, size)| format!("{path} {:.1} KB", size / 1e3)).collect::<Vec<_>>().join(", "),
        ready / 1e3,
        page_total / 1e3,
        page_wasm / 1e3,
        worker_total / 1e3,
        (opened - submitted) / 1e3,
    );
    assert!(
        login_bytes <= LOGIN_BUDGET,
        "the login screen works after at most {LOGIN_BUDGET} B of WebAssembly and JS: {login_bytes} B {before_login:?}"
    );
    assert!(login_bytes > 10_000.0, "the login needs some WebAssembly, counted: {before_login:?}");
    assert!(page_wasm > 100_000.0, "the first visit downloads the whole app too: {page_wasm} B");
    for file in ["/kheo_login_bg.wasm", "/kheo_app_bg.wasm"] {
        let again = of_worker(file);
        assert!(
            again < 2_000.0,
            "the worker revalidates {file}, which the page holds, instead of downloading it again: {again} B"
        );
    }

    phone.quit().await;
    ts.stop().await;
}

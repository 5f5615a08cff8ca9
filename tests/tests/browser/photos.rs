//! Evidence on a record in the browser: a photo and a location taken
//! offline survive a reload, the photo's bytes follow the record to the
//! server (in 64 KiB parts that resume where a cut link left them), and
//! commune staff and another volunteer see its thumbnail; with "photos on
//! Wi-Fi only", a photo waits while the phone is on a mobile network; the
//! phone frees what it need not keep (a photo thrown away with its form,
//! the bytes of sent photos when storage runs short), and a photo the
//! server refuses is said, kept and not sent again at every sync.

use std::path::{Path, PathBuf};

use kheo_shared::codes::Role;
use kheo_shared::evidence::Attachment;
use kheo_shared::ids::ModelId;
use kheo_shared::record::{Activity, Record};
use kheo_tests::{HOME_UNIT, TestServer};
use serde_json::json;
use thirtyfour::prelude::*;

use crate::harness::{Phone, one_at_a_time, server_records, server_with_app};

/// Where the emulated GPS puts the phone (a village in Quảng Nam).
const LATITUDE: f64 = 15.87654;
const LONGITUDE: f64 = 108.32101;

/// A JPEG of `width`×`height` drawn by the browser itself: blocks of
/// seeded noise (`block` px), so its size after the app's shrinking is
/// known to be several 64 KiB parts. Written to `dir`.
async fn test_jpeg(phone: &Phone, dir: &Path, width: u32, height: u32, block: u32) -> PathBuf {
    let bytes = phone
        .js(
            "const [w, h, b] = arguments; const c = document.createElement('canvas'); c.width = w; c.height = h;
             const x = c.getContext('2d'); let s = 12345;
             const r = () => { s = (s * 1103515245 + 12345) % 2147483648; return s % 256; };
             for (let i = 0; i < w; i += b) for (let j = 0; j < h; j += b) {
               x.fillStyle = `rgb(${r()},${r()},${r()})`; x.fillRect(i, j, b, b); }
             const url = c.toDataURL('image/jpeg', 0.95);
             return Array.from(atob(url.split(',')[1]), ch => ch.charCodeAt(0));",
            vec![json!(width), json!(height), json!(block)],
        )
        .await;
    let bytes: Vec<u8> = serde_json::from_value(bytes).expect("the JPEG's bytes");
    assert!(bytes.starts_with(&[0xff, 0xd8]), "a JPEG");
    let path = dir.join(format!("photo-{width}x{height}-{block}.jpg"));
    std::fs::write(&path, bytes).expect("the test photo is written");
    path
}

/// Picks `file` in the form's camera input, as the phone's picker would.
async fn pick_photo(phone: &Phone, file: &Path) {
    phone.wait_for("#f-photo-camera").await;
    let input = phone.driver.find(By::Css("#f-photo-camera")).await.expect("the camera input");
    input.send_keys(file.display().to_string()).await.expect("the photo is picked");
}

/// The emulated GPS, and the permission a person would grant.
async fn place_phone(phone: &Phone, url: &str) {
    phone.cdp("Browser.grantPermissions", json!({ "permissions": ["geolocation"], "origin": url })).await;
    phone
        .cdp(
            "Emulation.setGeolocationOverride",
            json!({ "latitude": LATITUDE, "longitude": LONGITUDE, "accuracy": 12 }),
        )
        .await;
}

/// The phone's own token, from its stored session.
async fn phone_token(phone: &Phone) -> String {
    let token = phone.js("return JSON.parse(localStorage.getItem('kheo.session')).token;", vec![]).await;
    token.as_str().expect("a stored session").to_owned()
}

/// `GET path` with a bearer token: the status and the body.
async fn get(ts: &TestServer, token: &str, path: &str) -> (u16, Vec<u8>) {
    let response = reqwest::Client::new()
        .get(format!("{}{path}", ts.url))
        .bearer_auth(token)
        .send()
        .await
        .expect("the server answers");
    let status = response.status().as_u16();
    (status, response.bytes().await.expect("the body").to_vec())
}

/// How many bytes of `sha` the server holds from the device of `token`.
async fn received(ts: &TestServer, token: &str, sha: &str) -> (bool, u64) {
    let (status, body) = get(ts, token, &format!("/api/v1/blobs/{sha}/upload")).await;
    assert_eq!(status, 200, "the resume point: {}", String::from_utf8_lossy(&body));
    let v: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
    (v["stored"] == json!(true), v["received"].as_u64().unwrap_or(0))
}

/// Waits until the sync bar says `n` photos wait.
async fn wait_photos_pending(phone: &Phone, n: usize) {
    phone
        .wait_js(
            &format!("{n} photos waiting"),
            "const p = document.querySelector('#sync-photos'); return !!p && p.dataset.pending === String(arguments[0]);",
            vec![json!(n)],
        )
        .await;
}

async fn photos_pending(phone: &Phone) -> u64 {
    let v = phone.js("return Number(document.querySelector('#sync-photos').dataset.pending);", vec![]).await;
    v.as_u64().unwrap_or(0)
}

/// A volunteer's phone logged in, with the model and the app ready offline.
async fn volunteer_ready(
    ts: &TestServer,
    model: ModelId,
    name: &'static str,
    profile: &Path,
    (user, secret): (&str, &str),
) -> Phone {
    let phone = Phone::launch(name, profile).await;
    phone.log_in(&ts.url, user, secret).await;
    phone.wait_model(model).await;
    phone.wait_offline_ready().await;
    phone
}

/// One volunteer's phone on a server of its own, its turn held.
struct Solo {
    _turn: tokio::sync::MutexGuard<'static, ()>,
    ts: TestServer,
    model: ModelId,
    phone: Phone,
    dir: tempfile::TempDir,
}

async fn solo(name: &'static str) -> Solo {
    let _turn = one_at_a_time().await;
    let mut ts = server_with_app().await;
    let model = ts.model().await;
    let (user, secret) = ts.account("tv1", Role::Volunteer, HOME_UNIT).await;
    let dir = tempfile::tempdir().expect("profiles");
    let phone = volunteer_ready(&ts, model, name, &dir.path().join("a"), (&user, &secret)).await;
    Solo { _turn, ts, model, phone, dir }
}

/// Starts a patrol in the form, up to where evidence goes.
async fn start_patrol(phone: &Phone, model: ModelId) {
    phone.open_model(model).await;
    phone.click("#add-record").await;
    phone.fill("#f-kind", "patrol").await;
    phone.fill("#f-date", "2025-06-14").await;
    phone.fill("#f-start", "21:30").await;
    phone.fill("#f-end", "23:45").await;
    phone.fill("#f-members", "6").await;
}

/// Saves a patrol with the photo `jpeg`.
async fn save_patrol_with(phone: &Phone, model: ModelId, jpeg: &Path) {
    start_patrol(phone, model).await;
    pick_photo(phone, jpeg).await;
    phone.wait_for("#photos li.photo img.thumb").await;
    phone.click("#save").await;
    phone.wait_text("#notice", "Đã lưu").await;
}

fn the_photo(records: &[Record]) -> (Record, Attachment) {
    let record = records.iter().find(|r| r.photos().next().is_some()).expect("a record with a photo").clone();
    let photo = record.photos().next().map(|(_, a)| a.clone()).expect("its photo");
    (record, photo)
}

#[tokio::test]
async fn a_photo_and_a_location_taken_offline_reach_commune_staff_and_another_phone() {
    let _turn = one_at_a_time().await;
    let mut ts = server_with_app().await;
    let model = ts.model().await;
    let (user, secret) = ts.account("tv1", Role::Volunteer, HOME_UNIT).await;
    let (user2, secret2) = ts.account("tv2", Role::Volunteer, HOME_UNIT).await;
    let (staff_name, staff_secret) = ts.account("canbo", Role::CommuneStaff, HOME_UNIT).await;
    let dir = tempfile::tempdir().expect("profiles");

    let phone = volunteer_ready(&ts, model, "photos-volunteer", &dir.path().join("a"), (&user, &secret)).await;
    place_phone(&phone, &ts.url).await;
    let jpeg = test_jpeg(&phone, dir.path(), 2000, 1500, 16).await;

    // 1. Offline: a patrol with its location and a photo, with a caption.
    phone.set_online(false).await;
    phone.wait_text("#net-state", "Chưa có mạng").await;
    start_patrol(&phone, model).await;
    phone.click("#f-location .get-location").await;
    phone.wait_for("#f-location[data-located='1']").await;
    phone.wait_text("#f-location .coords", "15.87654, 108.32101 ± 12 m").await;
    pick_photo(&phone, &jpeg).await;
    phone.wait_for("#photos li.photo img.thumb").await;
    phone.fill("#photos li.photo input.caption", "Ghe hút cát ở bến sông").await;
    phone.screenshot("photo-form").await;
    // The thumbnail and the caption are kept as a draft too.
    phone.reload().await;
    phone.wait_for("#draft-restored").await;
    phone.wait_for("#photos li.photo img.thumb").await;
    phone.wait_for("#f-location[data-located='1']").await;
    phone.click("#save").await;
    phone.wait_text("#notice", "Đã lưu").await;
    phone.wait_for("li.record .photo-strip img.thumb").await;
    // The photo waits for the network.
    wait_photos_pending(&phone, 1).await;

    // 2. A reload with no network: the record, its location and photo stay.
    phone.reload().await;
    phone.wait_for("li.record .photo-strip img.thumb").await;
    phone.wait_text("li.record[data-kind='patrol']", "15.87654, 108.32101 ± 12 m").await;
    phone.screenshot("photo-offline-reload").await;
    phone.click("li.record .card").await;
    phone.wait_for("#photos li.photo img.thumb").await;
    let caption = phone.js("return document.querySelector('#photos input.caption').value;", vec![]).await;
    assert_eq!(caption, json!("Ghe hút cát ở bến sông"));
    // An edit of something else keeps both.
    phone.fill("#f-area", "Bến sông Kim Đới").await;
    phone.click("#save").await;
    phone.wait_text("#notice", "Đã lưu").await;

    // 3. Online: the record syncs, then the photo's bytes follow.
    phone.set_online(true).await;
    phone.wait_synced().await;
    wait_photos_pending(&phone, 0).await;
    let held = server_records(&ts, model, "checker").await;
    let (record, photo) = the_photo(&held);
    let Activity::Patrol(patrol) = &record.activity else { panic!("a patrol") };
    let location = patrol.location.expect("the location reached the server");
    assert!((location.latitude - LATITUDE).abs() < 1e-6 && (location.longitude - LONGITUDE).abs() < 1e-6);
    assert_eq!(location.accuracy_m, 12.0);
    assert_eq!(patrol.area, "Bến sông Kim Đới", "the edit arrived");
    assert_eq!(photo.caption, "Ghe hút cát ở bến sông");
    assert!(photo.width.max(photo.height) <= 1280, "shrunk on the phone: {}x{}", photo.width, photo.height);
    let sha = photo.sha256.to_string();
    let (status, bytes) = get(&ts, ts.staff_token(), &format!("/api/v1/blobs/{sha}")).await;
    assert_eq!(status, 200, "the server stores the photo");
    assert!(bytes.starts_with(&[0xff, 0xd8]), "a JPEG");
    let sent = phone.js("return Number(document.querySelector('#sync-photos').dataset.bytes);", vec![]).await;
    eprintln!("photo: {} bytes, {}x{}; the phone sent {sent} bytes", photo.bytes, photo.width, photo.height);

    // 4. Commune staff see the thumbnail in review, and the photo on a tap.
    let staff = Phone::launch("photos-staff", &dir.path().join("s")).await;
    staff.log_in(&ts.url, &staff_name, &staff_secret).await;
    staff.click("#tab-review").await;
    staff.wait_for(&format!("li.review-item[data-record='{}'] .photo-strip img.thumb", record.id)).await;
    staff.screenshot("photo-review").await;
    staff.click("li.review-item .photo-strip button.thumb-box").await;
    staff
        .wait_js(
            "the full photo",
            "const i = document.querySelector('#photo-full-img'); return !!i && i.complete && i.naturalWidth;",
            vec![],
        )
        .await;
    staff.screenshot("photo-full").await;
    staff.click("#photo-close").await;
    staff.quit().await;

    // 5. Another volunteer's phone shows it after its sync.
    let other = Phone::launch("photos-volunteer2", &dir.path().join("b")).await;
    other.log_in(&ts.url, &user2, &secret2).await;
    other.open_model(model).await;
    other.wait_for("li.record .photo-strip img.thumb").await;
    other.screenshot("photo-second-phone").await;
    assert_eq!(photos_pending(&other).await, 0, "a photo from elsewhere is not this phone's to send");
    other.quit().await;

    phone.quit().await;
    ts.stop().await;
}

#[tokio::test]
async fn a_photo_upload_cut_off_half_way_resumes_where_it_stopped() {
    let Solo { _turn, mut ts, model, phone, dir } = solo("photos-resume").await;
    // Noise in small blocks: still some 200 KB after shrinking.
    let jpeg = test_jpeg(&phone, dir.path(), 1280, 960, 2).await;

    phone.set_online(false).await;
    save_patrol_with(&phone, model, &jpeg).await;

    // A weak link: the record goes at once, the photo part by part.
    phone.set_weak_link(256, 100).await;
    phone.wait_synced().await;
    let (_, photo) = the_photo(&server_records(&ts, model, "checker").await);
    let sha = photo.sha256.to_string();
    let total = u64::from(photo.bytes);
    assert!(total > 3 * 64 * 1024, "the photo takes several parts: {total} bytes");
    let token = phone_token(&phone).await;
    let started = std::time::Instant::now();
    loop {
        let (stored, got) = received(&ts, &token, &sha).await;
        assert!(!stored, "cut off before the end");
        if got >= 64 * 1024 {
            break;
        }
        assert!(started.elapsed() < crate::harness::PATIENCE, "the first part arrives");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // The link drops in the middle of the upload.
    phone.set_online(false).await;
    // A part whose body had all left before the cut may still be landing.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let (stored, kept) = received(&ts, &token, &sha).await;
    assert!(!stored && kept >= 64 * 1024 && kept < total, "part of it is on the server: {kept} of {total}");
    eprintln!("cut off after {kept} of {total} bytes");

    // The tab is killed and opened again with no network: nothing is sent.
    phone.reload().await;
    phone.wait_for("li.record .photo-strip img.thumb").await;
    wait_photos_pending(&phone, 1).await;

    // Back online: it continues from what the server holds.
    phone.set_online(true).await;
    wait_photos_pending(&phone, 0).await;
    let (stored, _) = received(&ts, &token, &sha).await;
    assert!(stored, "the server stores the whole photo");
    let sent = phone.js("return Number(document.querySelector('#sync-photos').dataset.bytes);", vec![]).await;
    let sent = sent.as_u64().expect("bytes sent");
    assert_eq!(sent, total - kept, "only what the server lacked was sent again");
    let (status, _) = get(&ts, ts.staff_token(), &format!("/api/v1/blobs/{sha}/thumbnail")).await;
    assert_eq!(status, 200, "its thumbnail is there");

    phone.quit().await;
    ts.stop().await;
}

#[tokio::test]
async fn with_photos_on_wifi_only_a_photo_waits_off_wifi_and_goes_on_wifi() {
    let Solo { _turn, mut ts, model, phone, dir } = solo("photos-wifi").await;
    let jpeg = test_jpeg(&phone, dir.path(), 800, 600, 8).await;
    // The setting, as the checkbox under the model list keeps it.
    phone.js("localStorage.setItem('kheo.photos_wifi_only', 'true');", vec![]).await;
    phone.reload().await;
    phone.wait_for("#add-record").await;
    // What Chrome for Android says of the network; desktop Chrome says nothing.
    phone
        .js(
            "window.__net = 'cellular'; const fake = { get type() { return window.__net; } };
             Object.defineProperty(Navigator.prototype, 'connection', { configurable: true, get: () => fake });",
            vec![],
        )
        .await;

    save_patrol_with(&phone, model, &jpeg).await;
    phone.wait_synced().await;
    // The record went; the photo waits for Wi-Fi, and says so.
    wait_photos_pending(&phone, 1).await;
    phone.wait_text("#sync-photos", "1 ảnh chờ Wi-Fi").await;
    let (_, photo) = the_photo(&server_records(&ts, model, "checker").await);
    let sha = photo.sha256.to_string();
    let token = phone_token(&phone).await;
    assert_eq!(received(&ts, &token, &sha).await, (false, 0), "nothing of the photo was sent");

    phone.js("window.__net = 'wifi';", vec![]).await;
    phone.click("#sync-now").await;
    wait_photos_pending(&phone, 0).await;
    assert!(received(&ts, &token, &sha).await.0, "on Wi-Fi the photo went");

    phone.quit().await;
    ts.stop().await;
}

/// How many entries the phone's photo store `store` holds.
async fn stored_photos(phone: &Phone, store: &str) -> u64 {
    let n = phone
        .js(
            "return new Promise((done, fail) => {
               const open = indexedDB.open('kheo-photos');
               open.onerror = fail;
               open.onsuccess = () => {
                 const count = open.result.transaction(arguments[0]).objectStore(arguments[0]).count();
                 count.onsuccess = () => { open.result.close(); done(count.result); };
                 count.onerror = fail;
               };
             });",
            vec![json!(store)],
        )
        .await;
    n.as_u64().expect("a count")
}

#[tokio::test]
async fn a_photo_thrown_away_with_its_form_is_freed_and_a_saved_one_kept() {
    let Solo { _turn, mut ts, model, phone, dir } = solo("photos-sweep").await;
    let kept = test_jpeg(&phone, dir.path(), 800, 600, 8).await;
    let thrown = test_jpeg(&phone, dir.path(), 640, 480, 4).await;
    phone.set_online(false).await;
    save_patrol_with(&phone, model, &kept).await;

    phone.click("#add-record").await;
    pick_photo(&phone, &thrown).await;
    phone.wait_for("#photos li.photo img.thumb").await;
    assert_eq!(stored_photos(&phone, "full").await, 2);
    // Back, and yes, throw the changes away.
    phone.js("window.confirm = () => true;", vec![]).await;
    phone.click("#back").await;
    phone.wait_for("#add-record").await;
    phone.reload().await;
    phone.wait_for("li.record .photo-strip img.thumb").await;
    let started = std::time::Instant::now();
    while stored_photos(&phone, "full").await != 1 || stored_photos(&phone, "thumb").await != 1 {
        assert!(started.elapsed() < crate::harness::PATIENCE, "only the saved photo stays");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    phone.quit().await;
    ts.stop().await;
}

#[tokio::test]
async fn a_phone_short_of_storage_frees_sent_photos_keeps_thumbnails_and_fetches_again() {
    let Solo { _turn, mut ts, model, phone, dir } = solo("photos-short").await;
    let jpeg = test_jpeg(&phone, dir.path(), 800, 600, 8).await;
    // The browser says 90% of this origin's quota is used.
    phone.js("StorageManager.prototype.estimate = async () => ({ usage: 90e6, quota: 100e6 });", vec![]).await;
    save_patrol_with(&phone, model, &jpeg).await;
    wait_photos_pending(&phone, 0).await;
    let started = std::time::Instant::now();
    while stored_photos(&phone, "full").await != 0 {
        assert!(started.elapsed() < crate::harness::PATIENCE, "the sent photo's bytes are freed");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(stored_photos(&phone, "thumb").await, 1, "its thumbnail stays");

    // Opened, it comes from the server again, and is kept.
    phone.click("li.record .card").await;
    phone.click("#photos button.thumb-box").await;
    phone
        .wait_js(
            "the full photo from the server",
            "const i = document.querySelector('#photo-full-img'); return !!i && i.complete && i.naturalWidth;",
            vec![],
        )
        .await;
    assert_eq!(stored_photos(&phone, "full").await, 1);
    assert_eq!(photos_pending(&phone).await, 0, "a photo fetched back is not sent again");
    phone.quit().await;
    ts.stop().await;
}

#[tokio::test]
async fn a_photo_the_server_refuses_is_said_kept_on_the_phone_and_not_sent_again_and_again() {
    let _turn = one_at_a_time().await;
    // A device quota of 0 MiB: every photo is over it.
    let app = crate::harness::app_dir();
    let mut ts = TestServer::start_with(move |c: &mut kheo_server::Config| {
        c.app_dir = Some(app);
        c.blob_quota_mib = 0;
    })
    .await;
    let model = ts.model().await;
    let (user, secret) = ts.account("tv1", Role::Volunteer, HOME_UNIT).await;
    let dir = tempfile::tempdir().expect("profiles");
    let phone = volunteer_ready(&ts, model, "photos-refused", &dir.path().join("a"), (&user, &secret)).await;
    let jpeg = test_jpeg(&phone, dir.path(), 800, 600, 8).await;
    save_patrol_with(&phone, model, &jpeg).await;
    phone.wait_synced().await;
    phone.wait_text("#photos-refused", "over_quota").await;
    phone.screenshot("photo-refused").await;
    // It no longer counts as waiting, and stays on the phone.
    wait_photos_pending(&phone, 0).await;
    assert_eq!(stored_photos(&phone, "full").await, 1);
    let (_, photo) = the_photo(&server_records(&ts, model, "checker").await);
    let token = phone_token(&phone).await;
    assert_eq!(received(&ts, &token, photo.sha256.as_str()).await, (false, 0));
    phone.quit().await;
    ts.stop().await;
}

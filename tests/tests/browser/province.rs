//! Staff browsers over a province-shaped store of real documents, kept
//! small enough for the suite ([`kheo_tests::province`]); the figures at
//! province scale are the `province` bench, which measures the same things.

use kheo_server::Config;
use kheo_shared::codes::Role;
use kheo_tests::province::{self, Plan};
use kheo_tests::{HOME_UNIT, TestServer};
use serde_json::json;

use crate::harness::{Phone, app_dir, one_at_a_time};

/// localStorage's quota in Chromium, in bytes of UTF-16.
const STORAGE_QUOTA: u64 = 5 * 1024 * 1024;

/// The province's shape at a small scale: a few home models, one busy
/// log of 2,000 records this year, thin models elsewhere.
fn small() -> Plan {
    Plan { home_models: 3, home_records: 12, busy_records: 2_000, other_models: 12, other_records: 2 }
}

/// A server with the app over the [`small`] seed.
async fn seeded_server() -> (TestServer, province::Seeded) {
    let app = app_dir();
    TestServer::start_seeded(
        move |c: &mut Config| c.app_dir = Some(app),
        async |db| province::seed(db.store.as_ref(), &kheo_server::org::demo(), small()).await.expect("the seed"),
    )
    .await
}

#[tokio::test]
async fn commune_staff_keep_only_their_commune_and_open_a_busy_log_a_page_at_a_time() {
    let _turn = one_at_a_time().await;
    let (ts, seeded) = seeded_server().await;
    println!("{}", seeded.describe());
    let (user, secret) = ts.account("canbo.province", Role::CommuneStaff, HOME_UNIT).await;
    let profiles = tempfile::tempdir().expect("profiles");
    let phone = Phone::launch("province-commune", &profiles.path().join("a")).await;
    phone.watch_pages().await;
    phone.log_in(&ts.url, &user, &secret).await;
    let held = phone.held().await;
    println!("commune staff after the first sync: {held:?}");

    // The commune's models and this year's logs, nothing of any other commune.
    let home: Vec<String> = seeded.home.iter().map(ToString::to_string).collect();
    let of_home = |doc: &String| home.iter().any(|m| doc.contains(m.as_str()));
    assert!(held.docs.iter().all(of_home), "only the commune's documents: {:?}", held.docs);
    for m in &home {
        for doc in [format!("model/{m}"), format!("log/{m}/2026")] {
            assert!(held.docs.contains(&doc), "{doc} is on the phone: {:?}", held.docs);
        }
    }
    assert!(held.storage_bytes() < STORAGE_QUOTA, "{} bytes of localStorage", held.storage_bytes());
    assert!(held.sync_body_bytes > 0 && held.sync_requests > 0, "the sync was seen: {held:?}");
    assert!(held.sync_transfer_bytes > held.sync_body_bytes, "bodies and their headers: {held:?}");
    println!(
        "downloaded {} B of sync answers in {} requests ({} B with headers), {} B of other API answers; {} B stored",
        held.sync_body_bytes,
        held.sync_requests,
        held.sync_transfer_bytes,
        held.other_api_bytes,
        held.storage_bytes()
    );

    phone.wait_offline_ready().await;
    phone.set_online(false).await;
    let open = phone.cold_open().await;
    println!("cold open offline: {open:.0} ms");
    assert!(open < 1_000.0, "a cold open takes {open:.0} ms");

    // The busy log opens on its newest page; the rest follows on request.
    let busy = format!("[data-model='{}']", seeded.busy);
    if phone.count(&busy).await == 0 {
        phone.fill("#models-q", "Kim Đới").await;
        phone.click("#models-search").await;
    }
    let (ms, shown) = phone.open_timed(&busy).await.expect("the busy model's records show");
    println!("the busy model ({} records this year) on screen in {ms:.0} ms", small().busy_records);
    phone.screenshot("busy-log").await;
    assert_eq!(shown, 50, "the newest page first");
    // The goal is 100 ms (the bench prints it); a loaded CI machine gets
    // slack, and reading every record, as the page did, took 1 to 2 s.
    assert!(ms < 250.0, "the busy log took {ms:.0} ms to show");
    let total = phone.js("return Number(document.querySelector('#records').dataset.total);", vec![]).await;
    assert!(total.as_u64().is_some_and(|t| t >= 2_000), "the log counts every record: {total}");
    let newest = phone.js("return document.querySelector('#records .record .muted').innerText;", vec![]).await;
    assert_eq!(newest, json!("29/11/2026"), "newest first");
    phone.click("#records-more").await;
    phone.wait_count("#records .record", 100).await;
    phone.quit().await;
}

#[tokio::test]
async fn province_staff_keep_what_they_open_and_fetch_a_busy_log_when_asked() {
    let _turn = one_at_a_time().await;
    let (ts, seeded) = seeded_server().await;
    let (user, secret) = ts.account("tinh.province", Role::ProvinceStaff, "QNA").await;
    let profiles = tempfile::tempdir().expect("profiles");
    let phone = Phone::launch("province-staff", &profiles.path().join("a")).await;
    phone.watch_pages().await;
    phone.log_in(&ts.url, &user, &secret).await;
    let held = phone.held().await;
    println!("province staff after the first sync: {} documents, {} B stored", held.docs.len(), held.storage_bytes());
    assert!(held.docs.is_empty(), "nothing of the province before anything is opened: {:?}", held.docs);

    // The server's list finds the busy model; opening it fetches its recent years.
    let busy = format!("[data-model='{}']", seeded.busy);
    phone.fill("#models-q", "Kim Đới").await;
    phone.click("#models-search").await;
    let (ms, shown) = phone.open_timed(&busy).await.expect("the busy model's records arrive");
    println!("the busy model fetched and on screen in {ms:.0} ms");
    assert_eq!(shown, 50, "the newest page first");
    phone.wait_synced().await;
    let held = phone.held().await;
    let m = seeded.busy;
    let expected = [format!("log/{m}/2025"), format!("log/{m}/2026"), format!("model/{m}")];
    assert_eq!(held.docs, expected, "what was opened, its recent years only");
    assert!(held.storage_bytes() < STORAGE_QUOTA, "{} bytes of localStorage", held.storage_bytes());

    // What was opened opens again with no network.
    phone.click("#back").await;
    phone.wait_offline_ready().await;
    phone.set_online(false).await;
    let open = phone.cold_open().await;
    println!("cold open offline: {open:.0} ms");
    assert!(open < 1_000.0, "a cold open takes {open:.0} ms");
    let (ms, shown) = phone.open_timed(&busy).await.expect("the busy model opens offline");
    println!("the busy model offline in {ms:.0} ms");
    assert_eq!(shown, 50);
    phone.quit().await;
}

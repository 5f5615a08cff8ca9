//! What a staff device keeps of its scope (the app's `held` module): a
//! commune staff phone holds this and last year's logs and fetches an
//! earlier year when asked, or when the review queue needs it; a province
//! staff browser holds only the models it opened.

use kheo_shared::codes::Role;
use kheo_shared::ids::{ModelId, RecordId};
use kheo_shared::testdata;
use kheo_tests::HOME_UNIT;
use serde_json::json;

use crate::harness::{Phone, one_at_a_time, server_with_app};

/// The ids of the documents in the phone's storage.
async fn stored_docs(phone: &Phone) -> Vec<String> {
    let v = phone
        .js(
            "return Object.keys(localStorage).filter(k => k.startsWith('kheo.doc.')).map(k => k.slice(9)).sort();",
            vec![],
        )
        .await;
    v.as_array().expect("a list").iter().filter_map(|s| s.as_str().map(str::to_owned)).collect()
}

fn log(model: ModelId, year: i32) -> String {
    format!("log/{model}/{year}")
}

#[tokio::test]
async fn a_commune_staff_phone_keeps_recent_years_and_fetches_earlier_ones_when_asked_or_due_for_review() {
    let _turn = one_at_a_time().await;
    let mut ts = server_with_app().await;
    let (opened, reviewed) = (ts.model().await, ts.model().await);
    let mut volunteer = ts.device("tv-years").await;
    for model in [opened, reviewed] {
        volunteer.put_record(model, &testdata::patrol(RecordId::new_random(), "2023-05-10", 1));
        volunteer.put_record(model, &testdata::meeting(RecordId::new_random(), "2025-06-01", 12));
    }
    volunteer.sync(&ts.url).await.expect("the volunteer syncs");
    let (user, secret) = ts.account("canbo-years", Role::CommuneStaff, HOME_UNIT).await;
    let profiles = tempfile::tempdir().expect("profiles");
    let phone = Phone::launch("held-commune", &profiles.path().join("c")).await;
    phone.log_in(&ts.url, &user, &secret).await;
    let stored = stored_docs(&phone).await;
    assert!(stored.contains(&log(opened, 2025)), "last year's log is kept: {stored:?}");
    assert!(!stored.contains(&log(opened, 2023)), "2023 stays on the server: {stored:?}");

    // The model shows last year; earlier years come one press at a time,
    // an empty one (2024) passed over.
    phone.open_model(opened).await;
    phone.wait_count("li.record", 1).await;
    phone.wait_for("#earlier-year[data-year='2024']").await;
    phone.click("#earlier-year").await;
    phone.wait_for("#earlier-year[data-year='2023']").await;
    phone.click("#earlier-year").await;
    phone.wait_count("li.record", 2).await;
    phone.wait_for("#earlier-year[data-year='2022']").await;
    phone.wait_synced().await;
    let stored = stored_docs(&phone).await;
    assert!(stored.contains(&log(opened, 2023)), "the year asked for is kept: {stored:?}");
    assert!(!stored.contains(&log(opened, 2024)), "a year with no log is not: {stored:?}");

    // The review queue lists what awaits review on the server too.
    phone.click("#tab-review").await;
    phone.wait_count("li.review-item", 4).await;
    phone.wait_synced().await;
    let stored = stored_docs(&phone).await;
    assert!(stored.contains(&log(reviewed, 2023)), "fetched for review: {stored:?}");
    phone.quit().await;
}

#[tokio::test]
async fn a_province_browser_holds_only_the_models_it_opens() {
    let _turn = one_at_a_time().await;
    let mut ts = server_with_app().await;
    let models = [ts.model().await, ts.model().await, ts.model().await];
    let mut volunteer = ts.device("tv-province").await;
    for model in models {
        volunteer.put_record(model, &testdata::meeting(RecordId::new_random(), "2025-06-01", 12));
    }
    volunteer.sync(&ts.url).await.expect("the volunteer syncs");
    let (user, secret) = ts.account("tinh-held", Role::ProvinceStaff, "QNA").await;
    let profiles = tempfile::tempdir().expect("profiles");
    let phone = Phone::launch("held-province", &profiles.path().join("p")).await;
    phone.log_in(&ts.url, &user, &secret).await;
    assert_eq!(stored_docs(&phone).await, Vec::<String>::new(), "nothing of the province is downloaded");

    phone.open_model(models[1]).await;
    phone.wait_count("li.record", 1).await;
    phone.wait_synced().await;
    let stored = stored_docs(&phone).await;
    assert_eq!(stored, [log(models[1], 2025), format!("model/{}", models[1])], "the opened model alone");
    // Reopened offline, it is still there.
    phone.set_online(false).await;
    phone.reload().await;
    phone.wait_count("li.record", 1).await;
    let held = phone.js("return document.querySelector('#model-arriving') === null;", vec![]).await;
    assert_eq!(held, json!(true), "nothing is on its way");
    phone.quit().await;
}

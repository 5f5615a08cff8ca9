//! "Anything new?": a phone with the app open waits on `GET
//! /api/v1/changes` and syncs when it answers `changed`, so a record
//! logged on another phone of the same commune arrives within seconds
//! instead of at the next periodic sync. The answer follows the database,
//! so it moves for a write through another server process too, and never
//! for a write outside the reader's scope.

use std::time::{Duration, Instant};

use kheo_shared::codes::Role;
use kheo_shared::ids::RecordId;
use kheo_shared::testdata;
use kheo_tests::TestServer;

/// What one poll answered: (HTTP status, JSON body).
async fn poll(url: &str, token: &str, since: Option<&str>, wait: u64) -> (u16, serde_json::Value) {
    poll_keeping(url, token, since, wait, &[]).await
}

/// The same, naming the device's keep rule (`only_synced`, `logs_from`).
async fn poll_keeping(
    url: &str,
    token: &str,
    since: Option<&str>,
    wait: u64,
    keep: &[(&str, &str)],
) -> (u16, serde_json::Value) {
    let mut query = vec![("wait", wait.to_string())];
    if let Some(since) = since {
        query.push(("since", since.to_owned()));
    }
    query.extend(keep.iter().map(|(k, v)| (*k, v.to_string())));
    let response = reqwest::Client::new()
        .get(format!("{url}/api/v1/changes"))
        .bearer_auth(token)
        .query(&query)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON body"))
}

/// The cursor of `token`'s scope now.
async fn cursor(url: &str, token: &str) -> String {
    let (status, body) = poll(url, token, None, 0).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["changed"], false, "{body}");
    body["cursor"].as_str().expect("a cursor").to_owned()
}

#[tokio::test]
async fn a_waiting_phone_hears_of_a_record_logged_in_its_commune_and_not_of_one_elsewhere() {
    let mut server = TestServer::start().await;
    let model = server.model().await;
    let mut writer = server.device("changes-writer").await;
    let reader = server.device("changes-reader").await;
    let elsewhere = server.device_as("changes-elsewhere", Role::Volunteer, "QNA.DB.DP").await;
    let url = server.url.clone();

    let since = cursor(&url, &reader.token).await;
    let since_elsewhere = cursor(&url, &elsewhere.token).await;
    let (reader_url, reader_token, reader_since) = (url.clone(), reader.token.clone(), since.clone());
    let waiting = tokio::spawn(async move {
        let started = Instant::now();
        let answer = poll(&reader_url, &reader_token, Some(&reader_since), 20).await;
        (answer, started.elapsed())
    });
    let (other_url, other_token) = (url.clone(), elsewhere.token.clone());
    let waiting_elsewhere =
        tokio::spawn(async move { poll(&other_url, &other_token, Some(&since_elsewhere), 4).await });

    // Let both polls start waiting, then log a record on another phone.
    tokio::time::sleep(Duration::from_millis(500)).await;
    writer.put_record(model, &testdata::any_record(RecordId::new_random(), "2026-11-30", 0));
    writer.sync(&url).await.expect("the writer syncs");
    let wrote_at = Instant::now();

    let ((status, body), waited) = waiting.await.expect("poll task");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["changed"], true, "{body}");
    let now = body["cursor"].as_str().expect("a cursor").to_owned();
    assert_ne!(now, since);
    let heard_after = wrote_at.elapsed();
    println!("changes: heard of the record {heard_after:?} after its sync (poll waited {waited:?})");
    assert!(heard_after < Duration::from_secs(5), "took {heard_after:?}");

    let (status, body) = waiting_elsewhere.await.expect("poll task");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["changed"], false, "another commune's record is not news here: {body}");

    // Nothing new since the answer's cursor.
    let (_, body) = poll(&url, &reader.token, Some(&now), 0).await;
    assert_eq!(body["changed"], false, "{body}");
}

#[tokio::test]
async fn a_write_through_another_process_moves_the_cursor() {
    let mut server = TestServer::start().await;
    let model = server.model().await;
    let peer = server.start_peer().await;
    let mut writer = server.device("changes-peer-writer").await;
    let reader = server.device("changes-peer-reader").await;
    let since = cursor(&peer.url(), &reader.token).await;
    let (peer_url, token, since_copy) = (peer.url(), reader.token.clone(), since.clone());
    let waiting = tokio::spawn(async move { poll(&peer_url, &token, Some(&since_copy), 20).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    writer.put_record(model, &testdata::any_record(RecordId::new_random(), "2026-11-29", 1));
    writer.sync(&server.url).await.expect("the writer syncs through the first process");
    let (status, body) = waiting.await.expect("poll task");
    assert_eq!((status, body["changed"].clone()), (200, serde_json::json!(true)), "{body}");
    peer.stop().await.expect("peer stops");
}

#[tokio::test]
async fn a_newer_poll_of_the_same_phone_ends_the_older_one() {
    let server = TestServer::start().await;
    let reader = server.device("changes-twice").await;
    let url = server.url.clone();
    let since = cursor(&url, &reader.token).await;
    let (first_url, token, first_since) = (url.clone(), reader.token.clone(), since.clone());
    let first = tokio::spawn(async move {
        let started = Instant::now();
        (poll(&first_url, &token, Some(&first_since), 20).await, started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let second = poll(&url, &reader.token, Some(&since), 1).await;
    let ((status, body), took) = first.await.expect("poll task");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["changed"], false, "{body}");
    assert!(took < Duration::from_secs(5), "the older poll kept waiting: {took:?}");
    assert_eq!(second.0, 200, "{}", second.1);
}

/// Asking for the cursor alone (no `since`) answers at once and leaves the
/// phone's waiting poll waiting: it then still hears of a record.
#[tokio::test]
async fn asking_for_the_cursor_leaves_the_waiting_poll_alone() {
    let mut server = TestServer::start().await;
    let model = server.model().await;
    let reader = server.device("changes-cursor").await;
    let mut writer = server.device("changes-cursor-writer").await;
    let url = server.url.clone();
    let since = cursor(&url, &reader.token).await;
    let (first_url, token, first_since) = (url.clone(), reader.token.clone(), since.clone());
    let waiting = tokio::spawn(async move { poll(&first_url, &token, Some(&first_since), 20).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_ne!(cursor(&url, &reader.token).await, "", "the cursor alone is answered");
    writer.put_record(
        model,
        &kheo_shared::testdata::any_record(kheo_shared::ids::RecordId::new_random(), "2025-05-05", 0),
    );
    writer.sync(&url).await.expect("the writer syncs");
    let (status, body) = waiting.await.expect("poll task");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["changed"], true, "the waiting poll heard of the record: {body}");
}

#[tokio::test]
async fn bad_polls_get_a_clear_400_and_a_missing_token_401() {
    let server = TestServer::start().await;
    let reader = server.device("changes-bad").await;
    let url = server.url.clone();
    let long = "A".repeat(5_000);
    for (since, wait, why) in [
        (Some("not-a-cursor"), 0, "a made-up cursor"),
        (Some(long.as_str()), 0, "a huge cursor"),
        (None, 26, "a wait over 25 s"),
    ] {
        let (status, body) = poll(&url, &reader.token, since, wait).await;
        assert_eq!(status, 400, "{why}: {body}");
        assert_eq!(body["error"], "bad_query", "{why}: {body}");
    }
    let response = reqwest::get(format!("{url}/api/v1/changes")).await.expect("request");
    assert_eq!(response.status().as_u16(), 401);
    let (status, _) = poll(&url, &reader.token, None, 0).await;
    assert_eq!(status, 200);
}

/// A device keeping part of its scope, polling with its rule, hears of
/// changes to what it would be offered, and of nothing else.
#[tokio::test]
async fn a_poll_with_a_keep_hears_only_of_what_the_device_is_offered() {
    let mut server = TestServer::start().await;
    let (opened, other) = (server.model().await, server.model().await);
    let mut phone = server.device("keep-writer").await;
    for model in [opened, other] {
        phone.put_record(model, &testdata::meeting(RecordId::new_random(), "2025-03-01", 5));
        phone.put_record(model, &testdata::meeting(RecordId::new_random(), "2023-03-01", 5));
    }
    while !phone.sync(&server.url).await.expect("sync").converged {}
    let mut province = server.device_as("keep-province", Role::ProvinceStaff, "QNA").await;
    province.replica.set_keep(Some(kheo_shared::protocol::Keep { only_synced: true, ..Default::default() }));
    province.replica.fetch(kheo_shared::ids::DocId::log(opened, 2025).expect("log"));
    while !province.sync(&server.url).await.expect("sync").converged {}
    let commune = server.device_as("keep-commune", Role::CommuneStaff, kheo_tests::HOME_UNIT).await;
    let url = server.url.clone();
    let synced_only = [("only_synced", "true")];
    let recent = [("logs_from", "2024")];
    let now = async |token: &str, keep: &[(&str, &str)]| {
        let (status, body) = poll_keeping(&url, token, None, 0, keep).await;
        assert_eq!(status, 200, "{body}");
        body["cursor"].as_str().expect("a cursor").to_owned()
    };
    let changed_since = async |token: &str, since: &str, keep: &[(&str, &str)]| {
        let (status, body) = poll_keeping(&url, token, Some(since), 0, keep).await;
        assert_eq!(status, 200, "{body}");
        body["changed"].as_bool().expect("changed")
    };

    // A record in the model the province browser did not open.
    let province_at = now(&province.token, &synced_only).await;
    let province_everything = now(&province.token, &[]).await;
    phone.put_record(other, &testdata::meeting(RecordId::new_random(), "2025-04-01", 6));
    while !phone.sync(&server.url).await.expect("sync").converged {}
    assert!(!changed_since(&province.token, &province_at, &synced_only).await, "an unopened model wakes no one");
    assert!(changed_since(&province.token, &province_everything, &[]).await, "without the rule it would have");

    // A record in a year the commune's rule does not keep.
    let commune_at = now(&commune.token, &recent).await;
    phone.put_record(opened, &testdata::meeting(RecordId::new_random(), "2023-04-01", 6));
    while !phone.sync(&server.url).await.expect("sync").converged {}
    assert!(!changed_since(&commune.token, &commune_at, &recent).await, "an old year the rule leaves out");
    assert!(!changed_since(&province.token, &province_at, &synced_only).await, "nor a log it did not open");

    // A record in the opened log, and in this year's: both hear of it.
    phone.put_record(opened, &testdata::meeting(RecordId::new_random(), "2025-05-01", 7));
    while !phone.sync(&server.url).await.expect("sync").converged {}
    assert!(changed_since(&province.token, &province_at, &synced_only).await, "the opened log moved");
    assert!(changed_since(&commune.token, &commune_at, &recent).await, "this year's log moved");

    // A bad rule is a clear 400.
    for keep in [[("only_synced", "maybe")], [("logs_from", "1999")], [("logs_from", "soon")]] {
        let (status, body) = poll_keeping(&url, &province.token, None, 0, &keep).await;
        assert_eq!(status, 400, "{keep:?}: {body}");
        assert_eq!(body["error"], "bad_query", "{keep:?}: {body}");
    }
}

#[tokio::test]
async fn a_waiting_poll_does_not_hold_up_shutdown() {
    let mut server = TestServer::start().await;
    let reader = server.device("changes-shutdown").await;
    let url = server.url.clone();
    let since = cursor(&url, &reader.token).await;
    let token = reader.token.clone();
    let waiting = tokio::spawn(async move { poll(&url, &token, Some(&since), 25).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    server.stop().await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(10), "shutdown waited for the poll: {took:?}");
    let (status, body) = waiting.await.expect("poll task");
    assert_eq!((status, body["changed"].clone()), (200, serde_json::json!(false)), "{body}");
}

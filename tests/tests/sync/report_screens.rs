//! What the report screens ask the server besides the figures: where the
//! data ends, so that a report opens on a period that has some.

use kheo_shared::codes::Role;
use kheo_shared::ids::RecordId;
use kheo_shared::testdata;
use kheo_tests::{HOME_UNIT, TestServer};

async fn latest(server: &TestServer, token: &str) -> serde_json::Value {
    let response = reqwest::Client::new()
        .get(format!("{}/api/v1/reports/latest", server.url))
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    response.json().await.expect("json")
}

#[tokio::test]
async fn the_latest_month_with_records_is_the_readers_own() {
    let mut server = TestServer::start().await;
    let province = server.device_as("province", Role::ProvinceStaff, "QNA").await;
    let other = server.device_as("dienphuoc", Role::CommuneStaff, "QNA.DB.DP").await;
    assert_eq!(latest(&server, &province.token).await, serde_json::json!({ "month": null }), "nothing logged yet");

    let model = server.model().await;
    let mut phone = server.device("tv").await;
    phone.put_record(model, &testdata::patrol(RecordId::new_random(), "2024-11-03", 0));
    phone.put_record(model, &testdata::meeting(RecordId::new_random(), "2025-03-09", 20));
    // A tombstone later than both does not count.
    let mut gone = testdata::patrol(RecordId::new_random(), "2025-08-01", 0);
    gone.deleted = true;
    phone.put_record(model, &gone);
    phone.sync(&server.url).await.expect("the phone syncs");

    assert_eq!(latest(&server, &province.token).await["month"], "2025-03");
    let commune = server.device_as("tamthang", Role::CommuneStaff, HOME_UNIT).await;
    assert_eq!(latest(&server, &commune.token).await["month"], "2025-03");
    // Another commune's records are not another reader's data.
    assert_eq!(latest(&server, &other.token).await["month"], serde_json::Value::Null);
}

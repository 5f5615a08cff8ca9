//! What the report screens ask the server besides the figures (where the
//! data ends, so that a report opens on a period that has some), and the
//! exports as a person opens them in Excel.

use kheo_shared::codes::Role;
use kheo_shared::ids::RecordId;
use kheo_shared::testdata;
use kheo_tests::{Device, HOME_UNIT, TestServer};

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

async fn get_bytes(server: &TestServer, token: &str, path: &str) -> Vec<u8> {
    let response =
        reqwest::Client::new().get(format!("{}{path}", server.url)).bearer_auth(token).send().await.expect("request");
    assert_eq!(response.status(), 200, "{path}");
    response.bytes().await.expect("body").to_vec()
}

/// A CSV export as Excel reads it: a UTF-8 byte order mark, then rows by column name.
fn rows_by_name(bytes: &[u8]) -> Vec<std::collections::HashMap<String, String>> {
    let text = bytes.strip_prefix("\u{feff}".as_bytes()).expect("a UTF-8 byte order mark first, for Excel");
    let mut reader = csv::Reader::from_reader(text);
    let header: Vec<String> = reader.headers().expect("a header").iter().map(str::to_owned).collect();
    reader
        .records()
        .map(|r| header.iter().cloned().zip(r.expect("a row").iter().map(str::to_owned)).collect())
        .collect()
}

#[tokio::test]
async fn exports_open_in_excel_with_words_codes_beside_them_days_and_names() {
    let mut server = TestServer::start().await;
    let model = server.model().await;
    let (user, secret) = server.account_named("tt1", "Nguyễn Văn Tới", Role::Volunteer, HOME_UNIT).await;
    let mut phone = Device::login(&server.url, &user, &secret).await.expect("login");
    let mut patrol = testdata::patrol(RecordId::new_random(), "2025-03-09", 1);
    patrol.author = user.clone();
    phone.put_record(model, &patrol);
    phone.sync(&server.url).await.expect("the phone syncs");
    let province = server.device_as("province", Role::ProvinceStaff, "QNA").await;

    let records =
        get_bytes(&server, &province.token, "/api/v1/reports/records?from=2025-01-01&to=2025-12-31&format=csv").await;
    let rows = rows_by_name(&records);
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    for (column, value) in [
        ("Mã bản ghi", patrol.id.to_string().as_str()),
        ("Lĩnh vực", "Quốc phòng - an ninh, an ninh trật tự"),
        ("Mã lĩnh vực", "security_order"),
        ("Loại hoạt động", "Tuần tra"),
        ("Mã loại hoạt động", "patrol"),
        ("Ngày", "09/03/2025"),
        ("Trạng thái duyệt", "Chờ duyệt"),
        ("Mã trạng thái duyệt", "new"),
        ("Người ghi", "Nguyễn Văn Tới"),
        ("Tên đăng nhập người ghi", user.as_str()),
        ("Đã xóa", "không"),
        ("Số vụ việc", "1"),
        ("Mã mô hình", model.to_string().as_str()),
    ] {
        assert_eq!(row.get(column).map(String::as_str), Some(value), "{column} in {row:?}");
    }

    let rollup = get_bytes(
        &server,
        &province.token,
        "/api/v1/reports/rollup?from=2025-01-01&to=2025-12-31&group=field&format=csv",
    )
    .await;
    let rows = rows_by_name(&rollup);
    let field = rows.iter().find(|r| r["Mã"] == "security_order").expect("the field's row, by its code");
    assert_eq!(field["Nhóm"], "Quốc phòng - an ninh, an ninh trật tự");
    assert_eq!(field["Số lần tuần tra"], "1");
    assert_eq!(rows.last().expect("a total")["Nhóm"], "Tổng cộng");
}

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
    // Two photos and one removed: the export lists the two, in the record's order.
    let mut removed = testdata::photo(3, 1_000);
    removed.deleted = true;
    for photo in [testdata::photo(1, 1_000), testdata::photo(2, 2_000), removed] {
        patrol.attachments.insert(kheo_shared::evidence::AttachmentId::new_random(), photo);
    }
    let photos: Vec<String> = patrol.photos().map(|(_, a)| format!("/api/v1/blobs/{}", a.sha256)).collect();
    assert_eq!(photos.len(), 2);
    let photos = photos.join(" ");
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
        ("Số ảnh", "2"),
        ("Ảnh", photos.as_str()),
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

/// One record of each kind, with details that tell the columns apart.
fn one_of_each_kind(author: &str) -> [kheo_shared::record::Record; 4] {
    use kheo_shared::codes::{IncidentCategory, IncidentOutcome, SupportType};
    use kheo_shared::record::{Activity, Incident};
    let mut patrol = testdata::patrol(RecordId::new_random(), "2025-03-09", 0);
    patrol.note = "Trời mưa, đi sớm".into();
    if let Activity::Patrol(p) = &mut patrol.activity {
        p.incidents = vec![
            Incident {
                id: "i1".into(),
                category: IncidentCategory::Theft,
                description: "Mất xe máy".into(),
                outcome: IncidentOutcome::HandedToPolice,
                location: None,
            },
            Incident {
                id: "i2".into(),
                category: IncidentCategory::Gambling,
                description: String::new(),
                outcome: IncidentOutcome::HandledByTeam,
                location: None,
            },
        ];
    }
    let mut support = testdata::household_support(RecordId::new_random(), "2025-03-10", 0);
    if let Activity::HouseholdSupport(s) = &mut support.activity {
        s.support_type = SupportType::LivestockOrSeed;
        s.workdays = 1.5;
        s.quantity = 20.0;
        s.unit = "con gà giống".into();
        s.description = "Giúp gây đàn".into();
    }
    let production = testdata::production(RecordId::new_random(), "2025-03-11", 60_000_000);
    let meeting = testdata::meeting(RecordId::new_random(), "2025-03-12", 30);
    let mut all = [patrol, support, production, meeting];
    for r in &mut all {
        r.author = author.to_owned();
    }
    all
}

/// Each kind's cells of [`one_of_each_kind`], by column name; every other
/// detail column of the row is blank.
fn expected_details(kind: &str) -> Vec<(&'static str, &'static str)> {
    match kind {
        "patrol" => vec![
            ("Giờ bắt đầu", "21:00"),
            ("Giờ kết thúc", "23:30"),
            ("Số thành viên tham gia", "5"),
            ("Địa bàn, tuyến tuần tra", "Thôn Kim Đới, tuyến ven sông"),
            ("Số vụ việc", "2"),
            ("Vụ việc (loại: kết quả xử lý)", "Trộm cắp tài sản: Chuyển công an xã (Mất xe máy); Cờ bạc: Tổ tự xử lý"),
            ("Mã vụ việc", "theft:handed_to_police; gambling:handled_by_team"),
            ("Chuyển công an xã", "1"),
            ("Hỗ trợ công an", "0"),
            ("Ghi chú", "Trời mưa, đi sớm"),
        ],
        "household_support" => vec![
            ("Hộ giúp đỡ", "Hộ ông Nguyễn Văn An"),
            // As typed, not the lowercased key households are counted by.
            ("Hộ được giúp đỡ", "Hộ bà Trần Thị Bình"),
            ("Hình thức hỗ trợ", "Con giống, cây giống"),
            ("Mã hình thức hỗ trợ", "livestock_or_seed"),
            ("Tiền (đồng)", "0"),
            ("Ngày công", "1.5"),
            ("Mô tả hỗ trợ", "Giúp gây đàn"),
            ("Số lượng", "20"),
            ("Đơn vị tính", "con gà giống"),
        ],
        "production" => vec![
            ("Sản phẩm", "Viên hoàn mật ong nghệ đen"),
            ("Số lượng", "12.5"),
            ("Đơn vị tính", "kg"),
            ("Doanh thu (đồng)", "60000000"),
        ],
        _ => vec![("Nội dung họp, tuyên truyền", "Tuyên truyền phòng chống cờ bạc"), ("Số người tham dự", "30")],
    }
}

/// Checks one CSV row of the records export against [`expected_details`].
fn assert_details(row: &std::collections::HashMap<String, String>) {
    let expected = expected_details(&row["Mã loại hoạt động"]);
    let columns = kheo_server::reports::RECORD_COLUMNS;
    let first = columns.iter().position(|c| *c == "Giờ bắt đầu").expect("the first detail column");
    for column in columns[first..].iter().filter(|c| **c != "Mã mô hình") {
        let want = expected.iter().find(|(c, _)| c == column).map_or("", |(_, v)| *v);
        assert_eq!(row.get(*column).map(String::as_str), Some(want), "{column} in {row:?}");
    }
}

async fn sync_one_of_each_kind(server: &mut TestServer) -> Vec<kheo_shared::record::Record> {
    let model = server.model().await;
    let (user, secret) = server.account_named("tt2", "Trần Văn Hai", Role::Volunteer, HOME_UNIT).await;
    let mut phone = Device::login(&server.url, &user, &secret).await.expect("login");
    let records = one_of_each_kind(&user);
    for r in &records {
        phone.put_record(model, r);
    }
    phone.sync(&server.url).await.expect("the phone syncs");
    records.into()
}

#[tokio::test]
async fn the_records_export_carries_each_kinds_details() {
    let mut server = TestServer::start().await;
    let records = sync_one_of_each_kind(&mut server).await;
    let province = server.device_as("province", Role::ProvinceStaff, "QNA").await;

    let csv =
        get_bytes(&server, &province.token, "/api/v1/reports/records?from=2025-01-01&to=2025-12-31&format=csv").await;
    let rows = rows_by_name(&csv);
    assert_eq!(rows.len(), 4, "one row per record: {rows:?}");
    for (row, record) in rows.iter().zip(&records) {
        assert_eq!(row["Mã bản ghi"], record.id.to_string(), "oldest first");
        assert_eq!(row["Người ghi"], "Trần Văn Hai");
        assert_details(row);
    }

    let xlsx =
        get_bytes(&server, &province.token, "/api/v1/reports/records?from=2025-01-01&to=2025-12-31&format=xlsx").await;
    let sheet = xlsx::first_sheet(&xlsx);
    let header: Vec<String> = sheet[0].iter().map(|c| c.text().to_owned()).collect();
    assert_eq!(header, kheo_server::reports::RECORD_COLUMNS, "the same header as the CSV");
    assert_eq!(sheet.len(), 5);
    let at = |name: &str| header.iter().position(|h| h == name).expect(name);
    let patrol = &sheet[1];
    assert_eq!(patrol[at("Số thành viên tham gia")], xlsx::Cell::Number(5.0), "numbers as numbers");
    assert_eq!(patrol[at("Giờ bắt đầu")], xlsx::Cell::Text("21:00".into()));
    assert_eq!(patrol[at("Tiền (đồng)")], xlsx::Cell::Empty, "another kind's column is blank");
    assert_eq!(sheet[2][at("Ngày công")], xlsx::Cell::Number(1.5));
    assert_eq!(sheet[3][at("Doanh thu (đồng)")], xlsx::Cell::Number(60_000_000.0));
    assert_eq!(sheet[3][at("Sản phẩm")], xlsx::Cell::Text("Viên hoàn mật ong nghệ đen".into()));
    assert_eq!(sheet[4][at("Số người tham dự")], xlsx::Cell::Number(30.0));
}

/// A store written before the details existed: the migration empties the
/// read model and the server rebuilds it from the documents as it starts.
#[tokio::test]
async fn a_store_from_before_the_details_gets_them_when_the_server_starts() {
    let mut server = TestServer::start().await;
    sync_one_of_each_kind(&mut server).await;
    server.stop().await;
    // Undo migration 0006 (0003 on PostgreSQL) as if it had never run.
    let version = if server.database.is_some() { 3 } else { 6 };
    let pool = server.raw_database().await;
    let added = include_str!("../../../server/migrations/sqlite/0006_record_details.sql")
        .lines()
        .filter_map(|line| line.strip_prefix("ALTER TABLE rm_records ADD COLUMN "))
        .filter_map(|rest| rest.split_whitespace().next())
        .collect::<Vec<_>>();
    assert!(added.contains(&"incident_list") && added.contains(&"note"), "the migration's columns: {added:?}");
    for column in added {
        sqlx::query(&format!("ALTER TABLE rm_records DROP COLUMN {column}")).execute(&pool).await.expect("drop");
    }
    sqlx::query(&format!("DELETE FROM _sqlx_migrations WHERE version = {version}"))
        .execute(&pool)
        .await
        .expect("forget the migration");
    pool.close().await;

    server.restart().await;
    let province = server.device_as("province", Role::ProvinceStaff, "QNA").await;
    let csv =
        get_bytes(&server, &province.token, "/api/v1/reports/records?from=2025-01-01&to=2025-12-31&format=csv").await;
    let rows = rows_by_name(&csv);
    assert_eq!(rows.len(), 4, "{rows:?}");
    rows.iter().for_each(assert_details);
    let rollup = get_bytes(&server, &province.token, "/api/v1/reports/rollup?from=2025-01-01&to=2025-12-31").await;
    let rollup: serde_json::Value = serde_json::from_slice(&rollup).expect("json");
    assert_eq!(rollup["total"]["incidents_by_outcome"]["handed_to_police"], 1, "incidents rebuilt too");
    assert_eq!(rollup["total"]["households_supported"], 1);
}

/// Just enough of an XLSX reader for the exports: the first sheet's cells,
/// shared strings resolved, numbers told from text.
mod xlsx {
    use std::io::Read;

    #[derive(Debug, Clone, PartialEq)]
    pub enum Cell {
        Empty,
        Text(String),
        Number(f64),
    }

    impl Cell {
        pub fn text(&self) -> &str {
            match self {
                Cell::Text(t) => t,
                _ => "",
            }
        }
    }

    fn part(bytes: &[u8], name: &str) -> String {
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("an XLSX is a zip");
        let mut text = String::new();
        zip.by_name(name).expect(name).read_to_string(&mut text).expect("UTF-8 XML");
        text
    }

    fn unescape(s: &str) -> String {
        s.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&apos;", "'").replace("&amp;", "&")
    }

    /// The text of every `<tag ...>text</tag>` in `xml`, in order.
    fn elements<'a>(xml: &'a str, tag: &str) -> Vec<(&'a str, &'a str)> {
        let (open, close) = (format!("<{tag}"), format!("</{tag}>"));
        let mut out = Vec::new();
        let mut rest = xml;
        while let Some(start) = rest.find(&open) {
            let after = &rest[start + open.len()..];
            // `<c` also starts `<cols`: only a space, `>` or `/` ends the name.
            if !after.starts_with([' ', '>', '/']) {
                rest = after;
                continue;
            }
            let head_end = after.find('>').expect("a closed tag");
            let attributes = &after[..head_end];
            if attributes.ends_with('/') {
                out.push((attributes, ""));
                rest = &after[head_end + 1..];
                continue;
            }
            let body = &after[head_end + 1..];
            let end = body.find(&close).expect("a closing tag");
            out.push((attributes, &body[..end]));
            rest = &body[end + close.len()..];
        }
        out
    }

    fn attribute<'a>(attributes: &'a str, name: &str) -> Option<&'a str> {
        let key = format!(" {name}=\"");
        let start = attributes.find(&key)? + key.len();
        attributes[start..].split('"').next()
    }

    fn column(reference: &str) -> usize {
        reference.chars().take_while(char::is_ascii_uppercase).fold(0, |n, c| n * 26 + (c as usize - 'A' as usize + 1))
            - 1
    }

    pub fn first_sheet(bytes: &[u8]) -> Vec<Vec<Cell>> {
        let strings: Vec<String> = elements(&part(bytes, "xl/sharedStrings.xml"), "si")
            .into_iter()
            .map(|(_, si)| elements(si, "t").into_iter().map(|(_, t)| unescape(t)).collect())
            .collect();
        let sheet = part(bytes, "xl/worksheets/sheet1.xml");
        let mut rows = Vec::new();
        for (_, row) in elements(&sheet, "row") {
            let mut cells = Vec::new();
            for (attributes, body) in elements(row, "c") {
                let at = column(attribute(attributes, "r").expect("a cell reference"));
                cells.resize(at + 1, Cell::Empty);
                let value = elements(body, "v").first().map(|(_, v)| *v).unwrap_or("");
                cells[at] = match attribute(attributes, "t") {
                    Some("s") => Cell::Text(strings[value.parse::<usize>().expect("a string index")].clone()),
                    _ => Cell::Number(value.parse().expect("a number")),
                };
            }
            rows.push(cells);
        }
        let width = rows.iter().map(Vec::len).max().unwrap_or(0);
        rows.iter_mut().for_each(|r| r.resize(width, Cell::Empty));
        rows
    }
}

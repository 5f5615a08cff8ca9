//! Consolidation over the read model: figures known in advance come out
//! exactly, periods that span the 2025 reform map old units to new ones,
//! targets show who is behind, exports keep Vietnamese intact.

use kheo_shared::codes::{IncidentCategory, IncidentOutcome, ModelStatus, ReviewState, Role};
use kheo_shared::ids::{ModelId, RecordId};
use kheo_shared::record::{Activity, Incident, Review};
use kheo_shared::scalars::Timestamp;
use kheo_shared::testdata;
use kheo_tests::{Device, HOME_UNIT, TestServer};

async fn get_text(server: &TestServer, token: &str, path: &str) -> String {
    let response =
        reqwest::Client::new().get(format!("{}{path}", server.url)).bearer_auth(token).send().await.expect("request");
    assert!(response.status().is_success(), "{path}: {}", response.status());
    response.text().await.expect("text")
}

async fn get_json(server: &TestServer, token: &str, path: &str) -> serde_json::Value {
    let response =
        reqwest::Client::new().get(format!("{}{path}", server.url)).bearer_auth(token).send().await.expect("request");
    assert!(response.status().is_success(), "{path}: {}", response.status());
    response.json().await.expect("json")
}

/// A staff decision on a record, as the review screen writes it.
fn decided(r: &kheo_shared::record::Record, state: ReviewState, comment: &str) -> kheo_shared::record::Record {
    let mut r = r.clone();
    r.review = Review {
        state,
        reviewer: Some("reviewer.test".into()),
        reviewed_at: Some(Timestamp(1_760_000_000_000)),
        comment: comment.into(),
    };
    r
}

/// The Tam Thăng "5 in 1" team as the brief reports it: over 300 patrols,
/// 37 cases found, prevented or handled, and support to the police in 73 cases.
#[tokio::test]
async fn the_tam_thang_figures_reproduce_exactly() {
    let mut server = TestServer::start().await;
    let model = server.model().await;
    let mut phones = Vec::new();
    for i in 0..3 {
        phones.push(server.device(&format!("tt{i}")).await);
    }
    let (mut handled, mut supported) = (0, 0);
    for n in 0..305usize {
        let year = 2022 + (n % 3) as i32;
        let day = format!("{year}-{:02}-{:02}", 1 + n % 12, 1 + n % 28);
        let mut r = testdata::patrol(RecordId::new_random(), &day, 0);
        let Activity::Patrol(p) = &mut r.activity else { unreachable!() };
        let mut add = |outcome: IncidentOutcome, category: IncidentCategory| {
            let id = format!("{}-{}", r.id, p.incidents.len());
            p.incidents.push(Incident { id, category, description: String::new(), outcome, location: None });
        };
        if handled < 37 && n % 8 == 0 {
            let outcome =
                if handled % 2 == 0 { IncidentOutcome::HandledByTeam } else { IncidentOutcome::HandedToPolice };
            add(outcome, IncidentCategory::IllegalSandMining);
            handled += 1;
        }
        if supported < 73 && n % 4 == 1 {
            add(IncidentOutcome::SupportedPolice, IncidentCategory::Theft);
            supported += 1;
        }
        phones[n % 3].put_record(model, &r);
    }
    assert_eq!((handled, supported), (37, 73), "the dataset holds the brief's figures");
    // A tombstone must not count.
    let mut extra = testdata::patrol(RecordId::new_random(), "2023-05-05", 2);
    extra.deleted = true;
    phones[0].put_record(model, &extra);
    for p in &mut phones {
        p.sync(&server.url).await.unwrap();
    }

    let province = server.device_as("province", Role::ProvinceStaff, "QNA").await;
    let r =
        get_json(&server, &province.token, "/api/v1/reports/rollup?from=2022-01-01&to=2024-12-31&group=commune").await;
    let rows = r["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["key"], HOME_UNIT);
    let t = &rows[0]["totals"];
    assert_eq!(t["patrols"], 305);
    assert_eq!(t["supported_police"], 73);
    assert_eq!(t["incidents_by_outcome"]["supported_police"], 73);
    let by_team = t["incidents_by_outcome"]["handled_by_team"].as_i64().unwrap()
        + t["incidents_by_outcome"]["handed_to_police"].as_i64().unwrap();
    assert_eq!(by_team, 37);
    assert_eq!(t["incidents"], 110);
    assert_eq!(t["incidents_by_category"]["illegal_sand_mining"], 37);
    assert_eq!(r["mapped_units"].as_array().unwrap().len(), 0, "no reform inside this period");

    // The same figures drawn: incidents by category, records per month.
    let svg = |path: String| {
        let token = province.token.clone();
        let url = format!("{}{path}", server.url);
        async move {
            let response = reqwest::Client::new().get(url).bearer_auth(token).send().await.unwrap();
            assert_eq!(response.headers()["content-type"], "image/svg+xml; charset=utf-8");
            response.text().await.unwrap()
        }
    };
    let incidents = svg("/api/v1/reports/charts/incidents.svg?from=2022-01-01&to=2024-12-31".into()).await;
    assert!(incidents.starts_with("<svg") && incidents.contains("Khai thác cát trái phép"), "{incidents}");
    assert_eq!(incidents.matches("<rect").count(), 2, "two categories");
    let months = svg("/api/v1/reports/charts/records.svg?from=2023-01-01&to=2023-12-31".into()).await;
    // 2023's patrols fall in February, May, August and November (day n of the set: month 1 + n % 12).
    assert_eq!(months.matches("<rect").count(), 4);
    assert!(months.contains(">02/2023<") && months.contains(">11/2023<"), "months as mm/yyyy: {months}");
    let progress = svg("/api/v1/reports/charts/targets.svg?year=2022".into()).await;
    assert!(progress.contains("<line"), "targets are marked");

    // One year only, and by district.
    let y =
        get_json(&server, &province.token, "/api/v1/reports/rollup?from=2023-01-01&to=2023-12-31&group=district").await;
    assert_eq!(y["rows"][0]["key"], "QNA.TK");
    assert_eq!(y["total"]["patrols"], 102);
}

#[tokio::test]
async fn approved_only_counts_what_staff_approved() {
    let mut server = TestServer::start().await;
    let model = server.model().await;
    let mut phone = server.device("logger").await;
    let records: Vec<_> =
        (0..4).map(|i| testdata::meeting(RecordId::new_random(), &format!("2025-03-0{}", i + 1), 10)).collect();
    for r in &records {
        phone.put_record(model, r);
    }
    phone.sync(&server.url).await.unwrap();
    let mut staff = server.device_as("reviewer", Role::CommuneStaff, HOME_UNIT).await;
    staff.sync(&server.url).await.unwrap();
    for r in records.iter().take(3) {
        staff.put_record(model, &decided(r, ReviewState::Approved, ""));
    }
    staff.sync(&server.url).await.unwrap();
    let all = get_json(&server, &staff.token, "/api/v1/reports/rollup?from=2025-01-01&to=2025-12-31").await;
    let approved =
        get_json(&server, &staff.token, "/api/v1/reports/rollup?from=2025-01-01&to=2025-12-31&approved=true").await;
    assert_eq!(all["total"]["meetings"], 4);
    assert_eq!(approved["total"]["meetings"], 3);
    assert_eq!(approved["total"]["attendees"], 30);
}

#[tokio::test]
async fn a_period_across_the_2025_reform_rolls_up_to_the_new_units_and_says_so() {
    let server = TestServer::start().await;
    let mut province = server.device_as("province", Role::ProvinceStaff, "QNA").await;
    let (old_model, new_model) = (ModelId::new_random(), ModelId::new_random());
    let mut old = testdata::model(old_model, "QNA.TK.TT");
    old.status = ModelStatus::Recognised;
    old.status_years.typical = None;
    let mut new = testdata::model(new_model, "QNA.X.TT");
    new.started_on = kheo_shared::scalars::Day::parse("2025-08-01").unwrap();
    new.status = ModelStatus::Building;
    new.status_years = Default::default();
    new.status_years.building = Some(2025);
    province.put_model(&old);
    province.put_model(&new);
    province.put_record(old_model, &testdata::meeting(RecordId::new_random(), "2025-03-15", 20));
    province.put_record(new_model, &testdata::meeting(RecordId::new_random(), "2025-09-15", 25));
    province.sync(&server.url).await.unwrap();

    let r =
        get_json(&server, &province.token, "/api/v1/reports/rollup?from=2025-01-01&to=2025-12-31&group=commune").await;
    let rows = r["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{r}");
    assert_eq!(rows[0]["key"], "QNA.X.TT");
    assert_eq!(rows[0]["totals"]["meetings"], 2);
    assert_eq!(rows[0]["totals"]["attendees"], 45);
    assert_eq!(rows[0]["totals"]["new_models"], 1);
    assert_eq!(r["mapped_units"][0], serde_json::json!(["QNA.TK.TT", "QNA.X.TT"]));
    // Before the reform, the old commune stands on its own.
    let before =
        get_json(&server, &province.token, "/api/v1/reports/rollup?from=2025-01-01&to=2025-06-30&group=commune").await;
    assert_eq!(before["rows"][0]["key"], "QNA.TK.TT");
    assert_eq!(before["rows"][0]["totals"]["attendees"], 20);

    // A commune staff account of the new commune sees the old commune's work too.
    let staff = server.device_as("new.staff", Role::CommuneStaff, "QNA.X.TT").await;
    let scoped = get_json(&server, &staff.token, "/api/v1/reports/rollup?from=2025-01-01&to=2025-12-31").await;
    assert_eq!(scoped["total"]["meetings"], 2);
    // Another commune's staff sees none of it.
    let other = server.device_as("dp.staff", Role::CommuneStaff, "QNA.DB.DP").await;
    let none = get_json(&server, &other.token, "/api/v1/reports/rollup?from=2025-01-01&to=2025-12-31").await;
    assert_eq!(none["total"]["meetings"], 0);
}

#[tokio::test]
async fn targets_show_who_is_behind_and_exports_keep_vietnamese() {
    let mut server = TestServer::start().await;
    let model = server.model().await; // started 2022 in Tam Thăng
    let province = server.device_as("province", Role::ProvinceStaff, "QNA").await;
    let mut phone: Device = server.device("logger").await;
    phone.put_record(model, &testdata::household_support(RecordId::new_random(), "2024-04-04", 2_500_000));
    phone.sync(&server.url).await.unwrap();

    let progress = get_json(&server, &province.token, "/api/v1/reports/targets?year=2022").await;
    let tam_ky = progress.as_array().unwrap().iter().find(|p| p["unit"] == "QNA.TK").unwrap();
    assert_eq!((tam_ky["new_models"].as_i64(), tam_ky["new_models_target"].as_i64()), (Some(1), Some(2)));
    assert_eq!(tam_ky["behind"], true);
    // Targets are configurable per unit and year.
    let put = reqwest::Client::new()
        .put(format!("{}/api/v1/admin/targets", server.url))
        .bearer_auth(&province.token)
        .json(&serde_json::json!({"unit": "QNA.TK", "year": 2022, "new_models": 1, "typical": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status().as_u16(), 204);
    let progress = get_json(&server, &province.token, "/api/v1/reports/targets?year=2022").await;
    let tam_ky = progress.as_array().unwrap().iter().find(|p| p["unit"] == "QNA.TK").unwrap();
    assert_eq!(tam_ky["behind"], false);

    // Two supports to the same household count it once.
    phone.put_record(model, &testdata::household_support(RecordId::new_random(), "2024-05-05", 1_000_000));
    phone.sync(&server.url).await.unwrap();
    let r = get_json(&server, &province.token, "/api/v1/reports/rollup?from=2024-01-01&to=2024-12-31").await;
    assert_eq!(r["total"]["households_supported"], 1);
    assert_eq!(r["total"]["money_vnd"], 3_500_000);
    assert_eq!(r["total"]["workdays"], 5.0);

    let csv = get_text(
        &server,
        &province.token,
        "/api/v1/reports/rollup?from=2024-01-01&to=2024-12-31&group=commune&format=csv",
    )
    .await;
    assert!(csv.starts_with("\u{feff}Nhóm,Mã,Số mô hình"), "a byte order mark for Excel, then the header: {csv}");
    assert!(csv.contains("Xã Tam Thăng") && csv.contains("3500000"), "{csv}");
    let xlsx = reqwest::Client::new()
        .get(format!("{}/api/v1/reports/rollup?from=2024-01-01&to=2024-12-31&format=xlsx", server.url))
        .bearer_auth(&province.token)
        .send()
        .await
        .unwrap();
    assert_eq!(xlsx.status().as_u16(), 200);
    let bytes = xlsx.bytes().await.unwrap();
    assert_eq!(&bytes[..2], b"PK", "an XLSX is a zip");
}

#[tokio::test]
async fn the_read_model_is_rebuilt_from_the_documents_when_missing() {
    let mut server = TestServer::start().await;
    let model = server.model().await;
    let mut phone = server.device("logger").await;
    for i in 0..5 {
        phone.put_record(model, &testdata::meeting(RecordId::new_random(), &format!("2025-04-0{}", i + 1), 7));
    }
    phone.sync(&server.url).await.unwrap();
    server.stop().await;
    let pool = server.raw_database().await;
    sqlx::query("DELETE FROM rm_records").execute(&pool).await.unwrap();
    sqlx::query("DELETE FROM rm_models").execute(&pool).await.unwrap();
    pool.close().await;
    server.restart().await;
    let province = server.device_as("province", Role::ProvinceStaff, "QNA").await;
    let r = get_json(&server, &province.token, "/api/v1/reports/rollup?from=2025-01-01&to=2025-12-31").await;
    assert_eq!(r["total"]["meetings"], 5);
    assert_eq!(r["total"]["attendees"], 35);
}

/// The Tam Thăng team spread from Kim Đới to all 8 villages.
#[tokio::test]
async fn the_replication_view_shows_where_a_typical_model_spread() {
    let server = TestServer::start().await;
    let mut province = server.device_as("province", Role::ProvinceStaff, "QNA").await;
    let root = ModelId::new_random();
    let mut typical = testdata::model(root, "QNA.TK.TT.KD");
    typical.name = "Tổ tự quản \"5 trong 1\" thôn Kim Đới".into();
    province.put_model(&typical);
    let villages = ["VB", "TTA", "MC", "NT", "PK", "AP", "TM"];
    for (i, v) in villages.iter().enumerate() {
        let mut copy = testdata::model(ModelId::new_random(), &format!("QNA.TK.TT.{v}"));
        copy.replicated_from = Some(root);
        copy.status = ModelStatus::Building;
        copy.status_years = Default::default();
        copy.status_years.building = Some(2023);
        copy.started_on = kheo_shared::scalars::Day::parse(&format!("2023-0{}-01", 1 + i % 9)).unwrap();
        province.put_model(&copy);
    }
    province.put_record(root, &testdata::patrol(RecordId::new_random(), "2024-02-02", 1));
    province.sync(&server.url).await.unwrap();

    let list = get_json(&server, &province.token, &format!("/api/v1/reports/replications/{root}")).await;
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 7, "with Kim Đới itself, 8 villages");
    assert!(list.iter().all(|r| r["depth"] == 1 && r["unit"].as_str().unwrap().starts_with("QNA.TK.TT.")));
    let y =
        get_json(&server, &province.token, "/api/v1/reports/rollup?from=2023-01-01&to=2023-12-31&group=commune").await;
    assert_eq!(y["total"]["replications"], 7);
    assert_eq!(y["total"]["new_models"], 7);

    let csv = get_text(&server, &province.token, "/api/v1/reports/records?from=2024-01-01&to=2024-12-31").await;
    let mut lines = csv.lines();
    assert!(lines.next().unwrap().starts_with("\u{feff}Mã bản ghi,Mô hình,Đơn vị,Lĩnh vực,Mã lĩnh vực,Loại hoạt động"));
    let row = lines.next().unwrap();
    assert!(row.contains("Thôn Kim Đới") && row.contains("Tuần tra,patrol"), "{row}");
    assert!(lines.next().is_none());
}

#[tokio::test]
async fn the_review_queue_filters_and_shows_edits_after_approval() {
    let mut server = TestServer::start().await;
    let model = server.model().await;
    let mut phone = server.device("logger").await;
    let [a, b, c] = [
        testdata::meeting(RecordId::new_random(), "2025-03-01", 5),
        testdata::patrol(RecordId::new_random(), "2025-03-02", 1),
        testdata::meeting(RecordId::new_random(), "2025-03-03", 9),
    ];
    for r in [&a, &b, &c] {
        phone.put_record(model, r);
    }
    phone.sync(&server.url).await.unwrap();
    let mut staff = server.device_as("reviewer", Role::CommuneStaff, HOME_UNIT).await;
    staff.sync(&server.url).await.unwrap();
    staff.put_record(model, &decided(&a, ReviewState::Approved, ""));
    staff.put_record(model, &decided(&b, ReviewState::Returned, "Thiếu số người tham gia"));
    staff.sync(&server.url).await.unwrap();
    // The volunteer edits the approved record after the decision.
    phone.sync(&server.url).await.unwrap();
    let mut edited = phone.records(&kheo_shared::ids::DocId::log(model, 2025).unwrap())[&a.id].clone();
    edited.note = "bổ sung".into();
    edited.updated_at = Timestamp(1_770_000_000_000);
    phone.put_record(model, &edited);
    phone.sync(&server.url).await.unwrap();

    let queue = |query: &str| {
        let path = format!("/api/v1/review/queue{query}");
        let (server, token) = (&server, staff.token.clone());
        async move { get_json(server, &token, &path).await }
    };
    let all = queue("").await;
    assert_eq!(all.as_array().unwrap().len(), 3);
    let state_of = |id: &RecordId, list: &serde_json::Value| {
        list.as_array().unwrap().iter().find(|i| i["record"] == id.to_string()).map(|i| i["state"].clone())
    };
    assert_eq!(state_of(&a.id, &all), Some("edited_after_approval".into()));
    assert_eq!(state_of(&b.id, &all), Some("returned".into()));
    assert_eq!(state_of(&c.id, &all), Some("new".into()));
    let returned = queue("?state=returned").await;
    assert_eq!(returned[0]["comment"], "Thiếu số người tham gia");
    assert_eq!(queue("?kind=meeting").await.as_array().unwrap().len(), 2);
    assert_eq!(queue("?unit=QNA.TK.TT.KD").await.as_array().unwrap().len(), 0, "the model is commune-wide");
    assert_eq!(queue("?from=2025-03-02&to=2025-03-02").await.as_array().unwrap().len(), 1);
    let newest = queue("?limit=2").await;
    let newest: Vec<&serde_json::Value> = newest.as_array().unwrap().iter().map(|i| &i["record"]).collect();
    assert_eq!(newest, [&serde_json::json!(c.id.to_string()), &serde_json::json!(b.id.to_string())], "the newest two");
    // Volunteers have no review queue.
    let response = reqwest::Client::new()
        .get(format!("{}/api/v1/review/queue", server.url))
        .bearer_auth(&phone.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 403);
}

#[tokio::test]
async fn concurrent_edits_of_one_field_show_both_values_to_the_reviewer() {
    let mut server = TestServer::start().await;
    let model = server.model().await;
    let mut a = server.device("phone.a").await;
    let mut b = server.device("phone.b").await;
    let r = testdata::meeting(RecordId::new_random(), "2025-06-01", 30);
    let log = a.put_record(model, &r);
    a.sync(&server.url).await.unwrap();
    b.sync(&server.url).await.unwrap();
    // Both phones, offline, correct the attendance differently.
    let mut on_a = b.records(&log)[&r.id].clone();
    let mut on_b = on_a.clone();
    on_a.note = "30 người".into();
    on_b.note = "35 người".into();
    a.put_record(model, &on_a);
    b.put_record(model, &on_b);
    a.sync(&server.url).await.unwrap();
    b.sync(&server.url).await.unwrap();

    let staff = server.device_as("reviewer", Role::CommuneStaff, HOME_UNIT).await;
    let queue = get_json(&server, &staff.token, "/api/v1/review/queue").await;
    let item = queue.as_array().unwrap().iter().find(|i| i["record"] == r.id.to_string()).unwrap().clone();
    let conflicts = item["conflicts"].as_array().unwrap();
    assert_eq!(conflicts.len(), 1, "{item}");
    assert_eq!(conflicts[0]["path"], "note");
    let mut values: Vec<String> =
        conflicts[0]["values"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect();
    values.sort();
    assert_eq!(values, ["30 người", "35 người"]);
}

/// The object ids of a record's map and of its detail block in a log.
fn detail_of(doc: &automerge::AutoCommit, r: &kheo_shared::record::Record) -> automerge::ObjId {
    use automerge::ReadDoc;
    use kheo_shared::codes::Code;
    let record = doc.get(automerge::ROOT, r.id.to_string()).unwrap().expect("record is in the log").1;
    doc.get(&record, r.kind().code()).unwrap().expect("detail block").1
}

/// `@automerge/automerge` 3.2.5 to 3.5.0 write `0` and negative integers
/// inside nested object literals as floats. Records with such fields sync,
/// read back as integers on another phone and count in the reports.
#[tokio::test]
async fn integers_a_javascript_client_wrote_as_floats_sync_and_count() {
    use automerge::transaction::Transactable;
    use kheo_shared::codes::{Code, SupportType};
    let mut server = TestServer::start().await;
    let model = server.model().await;
    let mut js = server.device("js").await;
    let mut support = testdata::household_support(RecordId::new_random(), "2025-03-08", 0);
    let Activity::HouseholdSupport(s) = &mut support.activity else { unreachable!() };
    s.support_type = SupportType::Materials;
    let meeting = testdata::meeting(RecordId::new_random(), "2025-03-09", 12);
    let production = testdata::production(RecordId::new_random(), "2025-03-10", 1_500_000);
    let mut patrol = testdata::patrol(RecordId::new_random(), "2025-03-11", 0);
    let log = js.put_record(model, &support);
    for r in [&meeting, &production, &patrol] {
        js.put_record(model, r);
    }
    let floats = |doc: &mut automerge::AutoCommit| -> Result<(), automerge::AutomergeError> {
        doc.put(detail_of(doc, &support), "amount_vnd", 0.0)?;
        doc.put(detail_of(doc, &meeting), "attendees", 12.0)?;
        doc.put(detail_of(doc, &production), "revenue_vnd", 1_500_000.0)?;
        doc.put(detail_of(doc, &patrol), "members_present", 5.0)?;
        doc.put(automerge::ROOT, "year", 2025.0)
    };
    js.replica.edit(log, Timestamp(1_750_000_100_000), floats).unwrap();
    let Activity::Patrol(p) = &mut patrol.activity else { unreachable!() };
    p.members_present = 5;
    js.sync(&server.url).await.expect("whole floats are integers");

    let mut other = server.device("reader").await;
    other.sync(&server.url).await.unwrap();
    let records = other.records(&log);
    for r in [&support, &meeting, &production, &patrol] {
        assert_eq!(records.get(&r.id).map(|got| &got.activity), Some(&r.activity), "{}", r.kind().code());
    }
    let staff = server.device_as("js.staff", Role::CommuneStaff, HOME_UNIT).await;
    let r = get_json(&server, &staff.token, "/api/v1/reports/rollup?from=2025-01-01&to=2025-12-31").await;
    assert_eq!(r["total"]["households_supported"], 1);
    assert_eq!(r["total"]["money_vnd"], 0);
    assert_eq!(r["total"]["attendees"], 12);
    assert_eq!(r["total"]["revenue_vnd"], 1_500_000);
    assert_eq!(r["total"]["patrols"], 1);

    // A float that is no integer is still refused, where it is.
    let mut broken = testdata::meeting(RecordId::new_random(), "2025-04-01", 3);
    broken.note = "1.5 attendees".into();
    other.put_record(model, &broken);
    other
        .replica
        .edit(log, Timestamp(1_750_000_200_000), |doc| doc.put(detail_of(doc, &broken), "attendees", 1.5))
        .unwrap();
    match other.sync(&server.url).await {
        Err(kheo_tests::SyncFailure::Refused { status: 422, body }) => {
            assert_eq!(body.path.as_deref(), Some(format!("{}/meeting/attendees", broken.id).as_str()), "{body:?}");
        }
        outcome => panic!("1.5 attendees: {outcome:?}"),
    }
}

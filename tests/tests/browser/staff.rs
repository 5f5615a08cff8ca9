//! Staff screens: commune staff build and edit models on the phone (offline
//! first, like records), and province staff read the consolidated reports,
//! which need the server and say so without it.

use std::time::{Duration, Instant};

use kheo_shared::codes::{ModelStatus, Role};
use kheo_shared::ids::{DocId, ModelId, RecordId};
use kheo_shared::model::ModelProfile;
use kheo_shared::schema;
use kheo_shared::testdata;
use kheo_tests::{HOME_UNIT, TestServer};
use serde_json::json;

use crate::harness::{Phone, one_at_a_time, server_with_app};

const NEW_MODEL: &str = "Tổ tự quản \"5 trong 1\" thôn Vĩnh Bình";

/// Every model the server gives a fresh simulated device of the home commune.
async fn server_models(ts: &TestServer, who: &str) -> Vec<ModelProfile> {
    let mut device = ts.device_as(who, Role::Volunteer, HOME_UNIT).await;
    device.sync(&ts.url).await.expect("the checking device syncs");
    device
        .replica
        .doc_ids()
        .filter_map(|id| match id {
            DocId::Model(m) => device.replica.doc(id).and_then(|d| schema::read_model(d, *m).ok()),
            DocId::Log { .. } => None,
        })
        .collect()
}

/// Waits until the organisation tree is on the phone (fetched after the first sync).
async fn wait_org(phone: &Phone) {
    phone.wait_js("the organisation tree on the phone", "return !!localStorage.getItem('kheo.org');", vec![]).await;
}

/// Waits until the trimmed text of `selector` is exactly `expected`.
async fn wait_exact(phone: &Phone, selector: &str, expected: &str) {
    phone
        .wait_js(
            &format!("{selector} to be {expected:?}"),
            "const e = document.querySelector(arguments[0]); return !!e && e.textContent.trim() === arguments[1];",
            vec![json!(selector), json!(expected)],
        )
        .await;
}

async fn is_disabled(phone: &Phone, selector: &str) -> bool {
    phone.wait_for(selector).await;
    phone.js("return document.querySelector(arguments[0]).disabled;", vec![json!(selector)]).await == json!(true)
}

/// Scrolls `selector` to the top of the screen, for a screenshot of it.
async fn show(phone: &Phone, selector: &str) {
    phone.wait_for(selector).await;
    phone.js("document.querySelector(arguments[0]).scrollIntoView();", vec![json!(selector)]).await;
}

#[tokio::test]
async fn commune_staff_build_a_model_offline_and_the_commune_sees_it_after_sync() {
    let _turn = one_at_a_time().await;
    let mut ts = server_with_app().await;
    // A typical model of the commune, recognised as such by the province.
    let typical = ModelId::new_random();
    let mut province = ts.device_as("tinh", Role::ProvinceStaff, "QNA").await;
    province.put_model(&testdata::model(typical, HOME_UNIT));
    province.sync_held(&ts.url).await.expect("the province syncs the typical model");
    let (staff, staff_secret) = ts.account("canboxa", Role::CommuneStaff, HOME_UNIT).await;
    let (volunteer, volunteer_secret) = ts.account("tv1", Role::Volunteer, HOME_UNIT).await;
    let profiles = tempfile::tempdir().expect("profiles");

    let phone = Phone::launch("commune-staff", &profiles.path().join("a")).await;
    phone.log_in(&ts.url, &staff, &staff_secret).await;
    phone.wait_model(typical).await;
    wait_org(&phone).await;
    phone.screenshot("models").await;

    // Offline: a new model, replicated from the typical one.
    phone.set_online(false).await;
    phone.wait_text("#net-state", "Chưa có mạng").await;
    phone.click("#add-model").await;
    phone.fill("#m-name", NEW_MODEL).await;
    phone.fill("#m-field", "security_order").await;
    phone.wait_for("#m-unit option[value='QNA.TK.TT.VB']").await;
    phone.fill("#m-unit", "QNA.TK.TT.VB").await;
    phone.fill("#m-lead", "Ban Công tác Mặt trận thôn Vĩnh Bình").await;
    phone.fill("#m-started", "2023-03-01").await;
    phone.fill("#m-status", "recognised").await;
    phone.fill("#m-year-building", "2023").await;
    phone.fill("#m-year-recognised", "2024").await;
    // Typical and replicating steps are the province's to set, and the form says so.
    assert!(is_disabled(&phone, "#m-year-typical").await);
    assert!(is_disabled(&phone, "#m-year-replicating").await);
    assert!(is_disabled(&phone, "#m-status option[value='typical']").await);
    phone.wait_text("#m-province-only", "cán bộ cấp tỉnh").await;
    phone.fill("#m-replicated-from", &typical.to_string()).await;
    phone.fill("#m-members", "20").await;
    phone.fill("#m-households", "0").await;
    phone.fill("#m-description", "Tổ tuần tra tự quản, \"3 không\", học tập thôn Kim Đới").await;
    phone.js("window.scrollTo(0, 0);", vec![]).await;
    phone.screenshot("model-form").await;
    show(&phone, "#m-years").await;
    phone.screenshot("model-form-years").await;
    phone.click("#save-model").await;
    phone.wait_text("#notice", "Đã lưu").await;
    wait_exact(&phone, "#model-name", NEW_MODEL).await;
    phone.wait_text("#model-source", "Tổ tự quản").await;
    assert!(phone.pending().await > 0, "the new model waits for the network");
    phone.screenshot("new-model-offline").await;

    // Back online, it syncs by itself and the server holds it as entered.
    phone.set_online(true).await;
    phone.wait_synced().await;
    let held = server_models(&ts, "checker").await;
    let built = held.iter().find(|m| m.name == NEW_MODEL).expect("the server holds the new model");
    assert_eq!(built.unit, "QNA.TK.TT.VB");
    assert_eq!(built.replicated_from, Some(typical));
    assert_eq!(built.status, ModelStatus::Recognised);
    assert_eq!((built.status_years.building, built.status_years.recognised), (Some(2023), Some(2024)));
    assert_eq!(built.status_years.typical, None);
    assert_eq!(built.members, 20);
    let id = built.id;

    // A volunteer of the commune sees it after their sync, and cannot manage models.
    let other = Phone::launch("volunteer", &profiles.path().join("b")).await;
    other.log_in(&ts.url, &volunteer, &volunteer_secret).await;
    other.wait_text("#models", NEW_MODEL).await;
    assert_eq!(other.count("#add-model").await, 0, "volunteers do not build models");
    other.open_model(id).await;
    wait_exact(&other, "#model-name", NEW_MODEL).await;
    assert_eq!(other.count("#edit-model").await, 0, "volunteers do not edit models");
    other.screenshot("sees-new-model").await;

    // Staff update the profile; only the changed field moves.
    phone.click("#edit-model").await;
    phone.wait_for("#m-members").await;
    phone.fill("#m-members", "25").await;
    phone.click("#save-model").await;
    phone.wait_text("#notice", "Đã lưu").await;
    phone.wait_synced().await;
    let held = server_models(&ts, "checker2").await;
    let edited = held.iter().find(|m| m.id == id).expect("the model is still there");
    assert_eq!(edited.members, 25);
    assert_eq!(edited.replicated_from, Some(typical));
    assert_eq!(edited.name, NEW_MODEL);

    other.quit().await;
    phone.quit().await;
    ts.stop().await;
}

#[tokio::test]
async fn province_staff_read_reports_that_need_the_server() {
    let _turn = one_at_a_time().await;
    let mut ts = server_with_app().await;
    let model = ts.model().await;
    // A volunteer's phone (simulated) logs three patrols with three incidents and one support.
    let mut volunteer = ts.device("tv-sim").await;
    volunteer.put_record(model, &testdata::patrol(RecordId::new_random(), "2025-03-10", 2));
    volunteer.put_record(model, &testdata::patrol(RecordId::new_random(), "2025-04-11", 1));
    volunteer.put_record(model, &testdata::patrol(RecordId::new_random(), "2025-05-12", 0));
    volunteer.put_record(model, &testdata::household_support(RecordId::new_random(), "2025-06-01", 1_500_000));
    volunteer.sync(&ts.url).await.expect("the volunteer's phone syncs");
    // A typical model and one replication of it.
    let typical = ModelId::new_random();
    let mut replica = testdata::model(ModelId::new_random(), "QNA.TK.TT.VB");
    replica.name = "Tổ tự quản thôn Vĩnh Bình".into();
    replica.status = ModelStatus::Recognised;
    replica.status_years.typical = None;
    replica.started_on = kheo_shared::scalars::Day::parse("2023-03-01").expect("a day");
    replica.replicated_from = Some(typical);
    let mut province = ts.device_as("tinh-sim", Role::ProvinceStaff, "QNA").await;
    province.put_model(&testdata::model(typical, HOME_UNIT));
    province.put_model(&replica);
    province.sync_held(&ts.url).await.expect("the province syncs its models");

    let (user, secret) = ts.account("tinh", Role::ProvinceStaff, "QNA").await;
    let profiles = tempfile::tempdir().expect("profiles");
    let downloads = tempfile::tempdir().expect("downloads");
    let phone = Phone::launch("province", &profiles.path().join("a")).await;
    phone.log_in(&ts.url, &user, &secret).await;
    phone.wait_model(typical).await;
    wait_org(&phone).await;
    phone.cdp("Browser.setDownloadBehavior", json!({ "behavior": "allow", "downloadPath": downloads.path() })).await;

    phone.click("#tab-reports").await;
    phone.fill("#r-kind", "year").await;
    phone.fill("#r-year", "2025").await;
    wait_exact(&phone, "#rollup tfoot [data-col='patrols']", "3").await;
    wait_exact(&phone, "#rollup tfoot [data-col='incidents']", "3").await;
    wait_exact(&phone, "#rollup tfoot [data-col='money_vnd']", "1.500.000").await;
    phone.wait_text("#rollup tbody tr[data-key='security_order']", "Quốc phòng - an ninh").await;
    phone.wait_text("#rollup-caption", "01/01/2025").await;
    phone.wait_text("#rollup-caption", "Toàn tỉnh").await;
    phone.screenshot("reports").await;
    show(&phone, "#rollup-caption").await;
    phone.screenshot("reports-rollup").await;

    // The server's charts, in the page.
    phone.wait_text("#chart-records svg", "Số hoạt động theo tháng").await;
    phone.wait_text("#chart-incidents svg", "Vụ việc theo loại").await;
    phone.wait_for("#chart-targets svg").await;
    show(&phone, "#chart-records").await;
    phone.screenshot("reports-chart").await;

    // Targets of 2025: no unit built new models, so every unit is behind.
    phone.wait_for("#targets tr.behind").await;
    phone.wait_text("#targets tr.behind", "Chưa đạt").await;
    show(&phone, "#targets").await;
    phone.screenshot("reports-targets").await;

    // By commune: the old commune's figures land in the new commune, and the report says so.
    phone.fill("#r-group", "commune").await;
    phone.wait_text("#rollup tbody", "Xã Tam Thăng (mới)").await;
    phone.wait_text("#rollup-mapped", "Xã Tam Thăng → Xã Tam Thăng (mới)").await;
    wait_exact(&phone, "#rollup tbody tr[data-key='QNA.X.TT'] [data-col='patrols']", "3").await;

    // Where the typical model was replicated.
    phone.fill("#r-replication-model", &typical.to_string()).await;
    phone.wait_text("#replications", "Tổ tự quản thôn Vĩnh Bình").await;
    phone.wait_text("#replications", "01/03/2023").await;
    show(&phone, "#replications").await;
    phone.screenshot("reports-replications").await;

    // The export downloads a CSV with Vietnamese column names.
    phone.click("#export-csv").await;
    phone.wait_text("#export-status", "tong-hop-2025-01-01-2025-12-31.csv").await;
    let file = downloads.path().join("tong-hop-2025-01-01-2025-12-31.csv");
    let started = Instant::now();
    while !file.is_file() && started.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let csv = std::fs::read_to_string(&file).expect("the CSV was downloaded");
    assert!(csv.starts_with("Nhóm,Mã,Số mô hình"), "{csv}");
    assert!(csv.contains("Xã Tam Thăng (mới)"), "{csv}");

    // Offline, the screen says reports need the server, and keeps what it showed.
    phone.set_online(false).await;
    phone.wait_text("#reports-offline", "Báo cáo cần kết nối máy chủ").await;
    phone.wait_for("#reports-stale").await;
    phone.js("window.scrollTo(0, 0);", vec![]).await;
    phone.screenshot("reports-offline").await;
    phone.set_online(true).await;
    phone.wait_js("the report to load again", "return !document.querySelector('#reports-offline');", vec![]).await;

    // Online but with the server down: the same.
    ts.stop().await;
    let refresh = phone.rect("#r-refresh").await;
    assert!(refresh.height() >= 44.0 && refresh.width() >= 44.0, "\"Tải lại\" is a thumb's size: {refresh:?}");
    phone.click("#r-refresh").await;
    phone.wait_text("#reports-offline", "Báo cáo cần kết nối máy chủ").await;

    phone.quit().await;
}

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

async fn value(phone: &Phone, selector: &str) -> String {
    phone.wait_for(selector).await;
    let v = phone.js("return document.querySelector(arguments[0]).value;", vec![json!(selector)]).await;
    v.as_str().unwrap_or_default().to_owned()
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

/// Taps an export button and returns the text of the file it downloads.
async fn download(phone: &Phone, button: &str, dir: &std::path::Path, name: &str) -> String {
    phone.click(button).await;
    phone.wait_text("#export-status", name).await;
    let file = dir.join(name);
    let started = Instant::now();
    while !file.is_file() && started.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{name} was not downloaded: {e}"))
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
    // No district stands on 31/12/2025 (the reform ended them): grouping by
    // district is not offered then, as it would put everything in one row.
    assert_eq!(phone.count("#r-group option[value='district']").await, 0, "no districts after the reform");
    assert_eq!(phone.count("#r-group option[value='commune']").await, 1);
    phone.fill("#r-year", "2024").await;
    phone.wait_for("#r-group option[value='district']").await;
    phone.fill("#r-year", "2025").await;
    wait_exact(&phone, "#rollup tbody tr[data-key='QNA.X.TT'] [data-col='patrols']", "3").await;

    // Where the typical model was replicated.
    phone.fill("#r-replication-model", &typical.to_string()).await;
    phone.wait_text("#replications", "Tổ tự quản thôn Vĩnh Bình").await;
    phone.wait_text("#replications", "01/03/2023").await;
    show(&phone, "#replications").await;
    phone.screenshot("reports-replications").await;

    // The export downloads a CSV with Vietnamese column names.
    let csv = download(&phone, "#export-csv", downloads.path(), "tong-hop-2025-01-01-2025-12-31.csv").await;
    assert!(csv.starts_with("\u{feff}Nhóm,Mã,Số mô hình"), "a byte order mark for Excel, then the header: {csv}");
    assert!(csv.contains("Xã Tam Thăng (mới)"), "{csv}");

    // Each export button says what it exports.
    let labels = phone
        .js(
            "return ['#export-xlsx', '#export-csv', '#export-records-xlsx', '#export-records-csv']
               .map(s => document.querySelector(s).innerText.trim());",
            vec![],
        )
        .await;
    assert_eq!(
        labels,
        json!([
            "Xuất Excel bảng tổng hợp",
            "Xuất CSV bảng tổng hợp",
            "Xuất Excel danh sách bản ghi",
            "Xuất CSV danh sách bản ghi"
        ])
    );
    show(&phone, "#export-xlsx").await;
    phone.screenshot("reports-exports").await;
    // The records as Excel opens them: words with the codes beside them, days as dd/mm/yyyy.
    let records = download(&phone, "#export-records-csv", downloads.path(), "ban-ghi-2025-01-01-2025-12-31.csv").await;
    assert!(records.starts_with("\u{feff}Mã bản ghi,Mô hình,Đơn vị,Lĩnh vực"), "{records}");
    for expected in ["Tuần tra,patrol", "Hỗ trợ hộ gia đình,household_support", "10/03/2025", "Chờ duyệt,new"]
    {
        assert!(records.contains(expected), "{expected} in {records}");
    }

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

#[tokio::test]
async fn reports_open_on_the_latest_year_that_has_records() {
    let _turn = one_at_a_time().await;
    let mut ts = server_with_app().await;
    let model = ts.model().await;
    // Everything was logged in 2024; the phone's clock is in a later year.
    let mut volunteer = ts.device("tv-2024").await;
    volunteer.put_record(model, &testdata::patrol(RecordId::new_random(), "2024-03-10", 1));
    volunteer.put_record(model, &testdata::patrol(RecordId::new_random(), "2024-11-20", 0));
    volunteer.sync(&ts.url).await.expect("the volunteer's phone syncs");
    let this_year = time::OffsetDateTime::now_utc().year();
    assert!(this_year > 2024, "the test needs a clock past 2024");

    let (user, secret) = ts.account("tinh", Role::ProvinceStaff, "QNA").await;
    let profiles = tempfile::tempdir().expect("profiles");
    let phone = Phone::launch("reports-open", &profiles.path().join("a")).await;
    phone.log_in(&ts.url, &user, &secret).await;
    phone.click("#tab-reports").await;

    // Nothing touched: the report is of 2024, with its figures, not an empty current year.
    wait_exact(&phone, "#rollup tfoot [data-col='patrols']", "2").await;
    let year = phone.js("return document.querySelector('#r-year').value;", vec![]).await;
    assert_eq!(year, json!("2024"));
    phone.wait_text("#rollup-caption", "01/01/2024").await;
    phone.wait_text("#rollup-caption", "31/12/2024").await;
    assert_eq!(phone.count("#rollup-empty").await, 0);
    phone.screenshot("opens-on-latest").await;

    // The person can still pick the current year, which has no activity.
    phone.fill("#r-year", &this_year.to_string()).await;
    phone.wait_text("#rollup-caption", &format!("31/12/{this_year}")).await;
    wait_exact(&phone, "#rollup tfoot [data-col='patrols']", "0").await;

    phone.quit().await;
    ts.stop().await;
}

/// How wide `text` is in the font of `selector`, and the room its select
/// has for the chosen option's text: the box less its padding and what
/// Chromium keeps for the arrow (about 48 px in all: the issue saw
/// "Xã Điện Phước (đến 30/06/2025)", 278 px, cut after "202").
async fn text_and_room(phone: &Phone, selector: &str, text: &str) -> (f64, f64) {
    let v = phone
        .js(
            "const s = document.querySelector(arguments[0]); const css = getComputedStyle(s);
             const ctx = document.createElement('canvas').getContext('2d');
             ctx.font = `${css.fontWeight} ${css.fontSize} ${css.fontFamily}`;
             const arrow = 48;
             const room = s.clientWidth - parseFloat(css.paddingLeft) - parseFloat(css.paddingRight) - arrow;
             return [ctx.measureText(arguments[1]).width, room];",
            vec![json!(selector), json!(text)],
        )
        .await;
    (v[0].as_f64().expect("a width"), v[1].as_f64().expect("a room"))
}

#[tokio::test]
async fn the_unit_select_shows_the_whole_name_and_says_apart_that_the_unit_has_ended() {
    let _turn = one_at_a_time().await;
    let mut ts = server_with_app().await;
    // Điện Phước ended on 30/06/2025 in the (illustrative) reform; its staff keep it as their unit.
    let (user, secret) = ts.account("dienphuoc", Role::CommuneStaff, "QNA.DB.DP").await;
    let profiles = tempfile::tempdir().expect("profiles");
    let phone = Phone::launch("unit-select", &profiles.path().join("a")).await;
    phone.log_in(&ts.url, &user, &secret).await;
    wait_org(&phone).await;
    phone.click("#add-model").await;
    phone.wait_for("#m-unit option[value='QNA.DB.DP.PL']").await;

    // The chosen unit's text fits in the closed select at 360 px.
    let chosen =
        phone.js("const s = document.querySelector('#m-unit'); return s.options[s.selectedIndex].text;", vec![]).await;
    let chosen = chosen.as_str().expect("the chosen unit's text").to_owned();
    assert_eq!(chosen.trim(), "Xã Điện Phước");
    let (width, room) = text_and_room(&phone, "#m-unit", &chosen).await;
    assert!(width <= room, "{chosen:?} is {width:.0} px in a select with {room:.0} px of room");
    // What the select used to show would not fit: the date goes elsewhere.
    let (old, _) = text_and_room(&phone, "#m-unit", "Xã Điện Phước (đến 30/06/2025)").await;
    assert!(old > room, "the old label ({old:.0} px) fitted in {room:.0} px: this test would not see it cut");
    // Every unit the select offers fits too.
    let texts = phone.js("return [...document.querySelectorAll('#m-unit option')].map(o => o.text);", vec![]).await;
    for text in serde_json::from_value::<Vec<String>>(texts).expect("option texts") {
        let (width, room) = text_and_room(&phone, "#m-unit", &text).await;
        assert!(width <= room, "{text:?} is {width:.0} px for {room:.0} px");
    }

    // That the unit has ended is said under the select and by its group, in full.
    wait_exact(&phone, "#m-unit-ended", "Đơn vị cũ, tồn tại đến 30/06/2025 (trước khi sắp xếp lại đơn vị hành chính).")
        .await;
    let group = phone.js("return document.querySelector('#m-unit optgroup').label;", vec![]).await;
    assert_eq!(group, json!("Đơn vị cũ, đến 30/06/2025"));
    phone.screenshot("unit-select").await;
    phone.click("#language").await;
    phone.wait_text("#m-unit-ended", "A former unit, in existence until 30/06/2025").await;
    phone.screenshot("unit-select-en").await;
    phone.click("#language").await;

    phone.quit().await;
    ts.stop().await;
}

/// A model with patrols (day, incidents) synced by a volunteer's phone, and
/// province staff on the report screen for 2025.
async fn reports_of_2025(
    ts: &mut TestServer,
    name: &'static str,
    patrols: &[(&str, usize)],
    profiles: &tempfile::TempDir,
) -> Phone {
    let model = ts.model().await;
    let mut volunteer = ts.device(&format!("tv-{name}")).await;
    for (day, incidents) in patrols {
        volunteer.put_record(model, &testdata::patrol(RecordId::new_random(), day, *incidents));
    }
    volunteer.sync(&ts.url).await.expect("the volunteer's phone syncs");
    let (user, secret) = ts.account("tinh", Role::ProvinceStaff, "QNA").await;
    let phone = Phone::launch(name, &profiles.path().join(name)).await;
    phone.log_in(&ts.url, &user, &secret).await;
    phone.click("#tab-reports").await;
    phone.fill("#r-kind", "year").await;
    phone.fill("#r-year", "2025").await;
    phone
}

#[tokio::test]
async fn charts_are_readable_at_360_px_in_either_language() {
    let _turn = one_at_a_time().await;
    let mut ts = server_with_app().await;
    let profiles = tempfile::tempdir().expect("profiles");
    let phone = reports_of_2025(&mut ts, "charts", &[("2025-03-10", 2), ("2025-04-11", 1)], &profiles).await;
    phone.wait_text("#chart-records svg", "Số hoạt động theo tháng").await;
    phone.wait_for("#chart-incidents svg").await;
    phone.wait_for("#chart-targets svg rect").await;

    // Every word of every chart at 12 px or more as shown, and inside its chart.
    let check = "const out = [];
        for (const svg of document.querySelectorAll('.chart svg')) {
          const box = svg.getBoundingClientRect();
          const scale = box.width / svg.viewBox.baseVal.width;
          for (const t of svg.querySelectorAll('text')) {
            const px = parseFloat(getComputedStyle(t).fontSize) * scale;
            const r = t.getBoundingClientRect();
            if (px < 12 || r.left < box.left - 1 || r.right > box.right + 1) {
              out.push(`${svg.parentElement.id}: \"${t.textContent}\" at ${px.toFixed(1)} px, ${r.left.toFixed(0)}..${r.right.toFixed(0)} in ${box.left.toFixed(0)}..${box.right.toFixed(0)}`);
            }
          }
        }
        return out;";
    let small = phone.js(check, vec![]).await;
    assert_eq!(small, json!([]), "text too small or cut off at 360 px");
    // Months as mm/yyyy, not 2025-03.
    phone.wait_text("#chart-records svg", "03/2025").await;
    phone.wait_text("#chart-records svg", "04/2025").await;
    assert!(!phone.text("#chart-records svg").await.contains("2025-03"));
    // A unit with no new model still has a bar to read as zero.
    let bars = phone
        .js("return [...document.querySelectorAll('#chart-targets svg rect')].map(r => r.getBoundingClientRect().width);", vec![])
        .await;
    let bars: Vec<f64> = serde_json::from_value(bars).expect("bar widths");
    assert!(!bars.is_empty() && bars.iter().all(|w| *w >= 1.0), "every bar is visible: {bars:?}");
    show(&phone, "#chart-records").await;
    phone.screenshot("charts").await;
    show(&phone, "#chart-targets").await;
    phone.screenshot("charts-targets").await;

    // In English, the charts speak English.
    phone.click("#language").await;
    phone.wait_text("#chart-records svg", "Activities per month").await;
    phone.wait_text("#chart-incidents svg", "Incidents by category").await;
    phone.wait_text("#chart-targets svg", "New models against the 2025 target").await;
    assert_eq!(phone.js(check, vec![]).await, json!([]), "English text too small or cut off");
    show(&phone, "#chart-records").await;
    phone.screenshot("charts-en").await;
    phone.click("#language").await;

    phone.quit().await;
    ts.stop().await;
}

#[tokio::test]
async fn province_staff_set_a_units_targets_beside_its_progress() {
    let _turn = one_at_a_time().await;
    let mut ts = server_with_app().await;
    let profiles = tempfile::tempdir().expect("profiles");
    let phone = reports_of_2025(&mut ts, "targets", &[("2025-03-10", 0)], &profiles).await;

    // The province's rule is the default: 2 new models and 1 typical for a commune under the province.
    let row = "#targets tr[data-unit='QNA.X.TT']";
    phone.wait_text(row, "0 / 2").await;
    phone.wait_text(row, "Chưa đạt").await;
    phone.click("#targets-edit summary").await;
    phone.wait_text("#targets-edit", "Mặc định theo quy định của tỉnh").await;
    let new_models = phone.js("return document.querySelector('#target-new-QNA-X-TT').value;", vec![]).await;
    assert_eq!(new_models, json!("2"), "the editor starts from the rule");

    // Set Tam Thăng's targets for 2025 to none: the table beside it says it is on target.
    phone.fill("#target-new-QNA-X-TT", "0").await;
    phone.fill("#target-typical-QNA-X-TT", "0").await;
    let save = phone.rect("#target-save-QNA-X-TT").await;
    assert!(save.height() >= 44.0, "a thumb's size: {save:?}");
    phone.click("#target-save-QNA-X-TT").await;
    phone.wait_text("#target-status", "Đã lưu chỉ tiêu của Xã Tam Thăng (mới).").await;
    phone.wait_text(row, "0 / 0").await;
    phone.wait_text(row, "Đạt").await;
    show(&phone, "#targets-edit").await;
    phone.screenshot("targets-set").await;
    // The server holds it.
    let checker = ts.device_as("tinh-check", Role::ProvinceStaff, "QNA").await;
    let progress: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/api/v1/reports/targets?year=2025", ts.url))
        .bearer_auth(&checker.token)
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    let tam_thang =
        progress.as_array().expect("rows").iter().find(|p| p["unit"] == "QNA.X.TT").expect("Tam Thăng's row").clone();
    assert_eq!((tam_thang["new_models_target"].clone(), tam_thang["typical_target"].clone()), (json!(0), json!(0)));

    // A target that is no number is refused on the phone.
    phone.fill("#target-new-QNA-X-TT", "nhiều").await;
    phone.click("#target-save-QNA-X-TT").await;
    phone.wait_text("#target-status", "Chỉ tiêu là số nguyên từ 0 đến 1000.").await;

    phone.quit().await;
    ts.stop().await;
}

#[tokio::test]
async fn province_staff_find_a_model_among_many_by_name_field_and_unit_page_by_page() {
    let _turn = one_at_a_time().await;
    let mut ts = server_with_app().await;
    let mut province = ts.device_as("tinh-list", Role::ProvinceStaff, "QNA").await;
    let mut dien_phuoc = Vec::new();
    for i in 1..=45 {
        let id = ModelId::new_random();
        let mut profile = testdata::model(id, if i <= 5 { "QNA.DB.DP" } else { HOME_UNIT });
        if i <= 5 {
            profile.name = format!("Tổ tuần tra Điện Phước {i}");
            dien_phuoc.push(id);
        } else {
            profile.name = format!("Hộ giúp hộ Tam Thăng {i:02}");
            profile.field = kheo_shared::codes::Field::PovertyReduction;
        }
        province.put_model(&profile);
    }
    province.sync_held(&ts.url).await.expect("the province syncs its models");
    let (user, secret) = ts.account("tinh-list-phone", Role::ProvinceStaff, "QNA").await;
    let profiles = tempfile::tempdir().expect("profiles");
    let phone = Phone::launch("province-list", &profiles.path().join("a")).await;
    phone.log_in(&ts.url, &user, &secret).await;
    wait_org(&phone).await;

    // All of the province, counted and paged.
    wait_exact(&phone, "#models-total", "45 mô hình").await;
    wait_exact(&phone, "#models-page", "Trang 1/3").await;
    assert_eq!(phone.count("#models li").await, 20);
    phone.screenshot("models-province").await;
    phone.click("#models-next").await;
    wait_exact(&phone, "#models-page", "Trang 2/3").await;
    assert_eq!(phone.count("#models li").await, 20);

    // By name, typed without diacritics: back to the first page of what matches.
    phone.fill("#models-q", "dien phuoc").await;
    phone.click("#models-search").await;
    wait_exact(&phone, "#models-total", "5 mô hình").await;
    assert_eq!(phone.count("#models-pager").await, 0, "one page needs no pager");
    for id in &dien_phuoc {
        assert_eq!(phone.count(&format!("#models [data-model='{id}']")).await, 1);
    }
    phone.wait_text("#models", "Tổ tuần tra Điện Phước 1").await;
    phone.screenshot("models-search").await;

    // By field and by unit.
    phone.fill("#models-q", "").await;
    phone.click("#models-search").await;
    phone.fill("#models-field", "poverty_reduction").await;
    wait_exact(&phone, "#models-total", "40 mô hình").await;
    phone.fill("#models-field", "").await;
    // The units of today's tree: the old commune's models are found under
    // the commune that took it over in 2025.
    assert_eq!(phone.count("#models-unit option[value='QNA.DB.DP']").await, 0, "an ended unit is not offered");
    phone.wait_for("#models-unit option[value='QNA.X.DP']").await;
    phone.fill("#models-unit", "QNA.X.DP").await;
    wait_exact(&phone, "#models-total", "5 mô hình").await;

    // A model opens from the list.
    phone.open_model(dien_phuoc[0]).await;
    wait_exact(&phone, "#model-name", "Tổ tuần tra Điện Phước 1").await;
    // Back on the list, the search is as it was left.
    phone.click("#back").await;
    wait_exact(&phone, "#models-total", "5 mô hình").await;
    assert_eq!(value(&phone, "#models-unit").await, "QNA.X.DP");

    // In English.
    phone.click("#language").await;
    wait_exact(&phone, "#models-total", "5 models").await;
    phone.click("#language").await;

    // Offline: the models on the phone, with the same filters, and the list
    // says so. A province browser holds only the model it opened.
    phone.set_online(false).await;
    phone.fill("#models-unit", "").await;
    phone.fill("#models-q", "dien phuoc").await;
    phone.click("#models-search").await;
    phone.wait_for("#models-offline").await;
    wait_exact(&phone, "#models-total", "1 mô hình").await;
    assert_eq!(phone.count(&format!("#models [data-model='{}']", dien_phuoc[0])).await, 1);
    phone.screenshot("models-offline").await;

    phone.quit().await;
    ts.stop().await;
}

//! The volunteer's daily flow on a 360×640 phone, as issue 12 found it:
//! messages a person understands at the field they are about, the number
//! pad for a PIN, targets big enough for a thumb, a calm offline line, Save
//! in reach, the saved record in sight with where it stands, dates in the
//! app's language, a form that starts from what the team did last, and a
//! returned record easy to find, with people named by name.

use kheo_shared::codes::{Field, ReviewState, Role};
use kheo_shared::ids::{ModelId, RecordId};
use kheo_shared::testdata;
use kheo_tests::{Device, HOME_UNIT, TestServer};
use serde_json::json;

use crate::harness::{Phone, decided, one_at_a_time, server_with_app};

/// Waits until the trimmed text of `selector` is exactly `expected`.
async fn wait_exact(phone: &Phone, selector: &str, expected: &str) {
    phone
        .wait_js(
            &format!("{selector} to be {expected:?}"),
            "const e = document.querySelector(arguments[0]); return !!e && e.innerText.trim() === arguments[1];",
            vec![json!(selector), json!(expected)],
        )
        .await;
}

async fn wait_focus(phone: &Phone, id: &str) {
    phone
        .wait_js(
            &format!("the focus on #{id}"),
            "return !!document.activeElement && document.activeElement.id === arguments[0];",
            vec![json!(id)],
        )
        .await;
}

async fn value(phone: &Phone, selector: &str) -> String {
    phone.wait_for(selector).await;
    let v = phone.js("return document.querySelector(arguments[0]).value;", vec![json!(selector)]).await;
    v.as_str().unwrap_or_default().to_owned()
}

/// A volunteer of the home commune logged in on a fresh phone.
async fn volunteer(ts: &TestServer, name: &'static str, profiles: &tempfile::TempDir) -> Phone {
    let (user, secret) = ts.account(name, Role::Volunteer, HOME_UNIT).await;
    let phone = Phone::launch(name, &profiles.path().join(name)).await;
    phone.log_in(&ts.url, &user, &secret).await;
    phone
}

#[tokio::test]
async fn a_missing_field_is_named_in_plain_words_next_to_it_and_gets_the_focus() {
    let _turn = one_at_a_time().await;
    let mut ts = server_with_app().await;
    let model = ts.model().await;
    let profiles = tempfile::tempdir().expect("profiles");
    let phone = volunteer(&ts, "validation", &profiles).await;
    phone.open_model(model).await;
    phone.click("#add-record").await;
    phone.fill("#f-kind", "patrol").await;

    // Required fields are marked before anyone taps Save; optional ones are not.
    wait_exact(&phone, "#required-hint", "Các mục có dấu * là bắt buộc.").await;
    for id in ["f-date", "f-start", "f-end", "f-members"] {
        assert_eq!(phone.count(&format!("label[for='{id}'] .req")).await, 1, "{id} is marked required");
        assert_eq!(phone.count(&format!("#{id}[aria-required='true']")).await, 1, "{id} says so to a screen reader");
    }
    assert_eq!(phone.count("label[for='f-area'] .req").await, 0, "the area is optional");

    phone.fill("#f-members", "").await;
    phone.fill("#f-area", "Tuyến ven sông").await;
    phone.click("#save").await;
    wait_exact(&phone, "#f-members-error", "Hãy nhập “Số thành viên tham gia”.").await;
    wait_focus(&phone, "f-members").await;
    phone.screenshot("validation-missing").await;
    let body = phone.text("body").await;
    for developer_words in ["out of range", "members_present", "patrol/"] {
        assert!(!body.contains(developer_words), "no developer error on screen ({developer_words:?}):\n{body}");
    }
    assert_eq!(phone.count("#notice").await, 0, "nothing was saved");
    // Next to its field, inside the screen.
    let field = phone.rect("#f-members").await;
    let message = phone.rect("#f-members-error").await;
    assert!(
        message.top >= field.bottom - 1.0 && message.top - field.bottom <= 12.0,
        "the message sits right under its field: field {field:?}, message {message:?}"
    );
    assert!(message.right <= 360.5, "the message fits the screen: {message:?}");
    assert_eq!(phone.count("#f-members[aria-invalid='true']").await, 1);

    // Out of the schema's range: said with the range, not as a developer error.
    phone.fill("#f-members", "0").await;
    phone.fill("#f-area", "Tuyến ven sông Kim Đới").await;
    phone.click("#save").await;
    wait_exact(&phone, "#f-members-error", "“Số thành viên tham gia” phải từ 1 đến 100.000.").await;
    wait_focus(&phone, "f-members").await;

    // An end time cleared: named too.
    phone.fill("#f-members", "6").await;
    phone.fill("#f-end", "").await;
    phone.click("#save").await;
    wait_exact(&phone, "#f-end-error", "Hãy nhập “Kết thúc”.").await;
    wait_focus(&phone, "f-end").await;
    assert_eq!(phone.count("#f-members-error").await, 0, "the fixed field's message is gone");

    phone.fill("#f-end", "23:00").await;
    phone.click("#save").await;
    phone.wait_text("#notice", "Đã lưu").await;

    // In English, in English.
    phone.click("#language").await;
    phone.click("#add-record").await;
    phone.fill("#f-kind", "meeting").await;
    phone.fill("#f-attendees", "12").await;
    phone.click("#save").await;
    wait_exact(&phone, "#f-topic-error", "Enter “Topic”.").await;
    wait_focus(&phone, "f-topic").await;
    phone.fill("#f-topic", "Họp tổ").await;
    phone.fill("#f-attendees", "100001").await;
    phone.click("#save").await;
    wait_exact(&phone, "#f-attendees-error", "“Attendees” must be from 0 to 100.000.").await;
    wait_focus(&phone, "f-attendees").await;
    phone.screenshot("validation-english").await;

    phone.quit().await;
    ts.stop().await;
}

#[tokio::test]
async fn the_pin_field_opens_the_number_pad_with_letters_a_tap_away() {
    let _turn = one_at_a_time().await;
    let mut ts = server_with_app().await;
    let (user, secret) = ts.account("pin", Role::Volunteer, HOME_UNIT).await;
    let profiles = tempfile::tempdir().expect("profiles");
    let phone = Phone::launch("pin", &profiles.path().join("a")).await;
    phone.open(&ts.url).await;
    let mode = async || {
        phone.wait_for("#login-secret").await;
        phone.js("return document.querySelector('#login-secret').getAttribute('inputmode');", vec![]).await
    };
    assert_eq!(mode().await, json!("numeric"), "a PIN gets the number pad");
    assert_eq!(phone.js("return document.querySelector('#login-secret').type;", vec![]).await, json!("password"));
    wait_exact(&phone, "#login-keyboard", "Bàn phím chữ").await;
    let toggle = phone.rect("#login-keyboard").await;
    assert!(toggle.height() >= 44.0, "the keyboard switch is a thumb's size: {toggle:?}");
    phone.click("#login-keyboard").await;
    assert_eq!(mode().await, json!("text"), "a password gets the letters");
    wait_exact(&phone, "#login-keyboard", "Bàn phím số").await;
    phone.click("#login-keyboard").await;
    assert_eq!(mode().await, json!("numeric"));
    // And the secret still logs in (this one has letters, typed on the letter keyboard).
    phone.click("#login-keyboard").await;
    phone.fill("#login-user", &user).await;
    phone.fill("#login-secret", &secret).await;
    phone.click("#login-submit").await;
    phone.wait_for("#sync-bar").await;

    phone.quit().await;
    ts.stop().await;
}

#[tokio::test]
async fn the_buttons_of_the_daily_flow_are_big_enough_for_a_thumb() {
    let _turn = one_at_a_time().await;
    let mut ts = server_with_app().await;
    let model = ts.model().await;
    let profiles = tempfile::tempdir().expect("profiles");
    let phone = volunteer(&ts, "targets", &profiles).await;
    let big_enough = async |selector: &str| {
        let r = phone.rect(selector).await;
        assert!(r.height() >= 44.0 && r.width() >= 44.0, "{selector} is at least 44×44 px: {r:?}");
    };
    for selector in ["#language", "#logout", "#sync-now"] {
        big_enough(selector).await;
    }
    phone.open_model(model).await;
    big_enough("#back").await;
    phone.click("#add-record").await;
    big_enough("#back").await;
    phone.fill("#f-kind", "patrol").await;
    phone.click("#add-incident").await;
    big_enough(".incident .remove-incident").await;
    big_enough("#add-incident").await;
    // "Remove" sits by the incident's title, not right above "+ Add".
    let remove = phone.rect(".incident .remove-incident").await;
    let add = phone.rect("#add-incident").await;
    let category = phone.rect("#f-inc-0-category").await;
    assert!(remove.bottom <= category.top, "remove is in the incident's head: {remove:?} {category:?}");
    assert!(add.top - remove.bottom >= 100.0, "remove and add are far apart: {remove:?} {add:?}");
    phone.screenshot("targets-incident").await;

    phone.quit().await;
    ts.stop().await;
}

#[tokio::test]
async fn offline_is_one_calm_line_and_each_record_says_whether_it_left_the_phone() {
    let _turn = one_at_a_time().await;
    let mut ts = server_with_app().await;
    let model = ts.model().await;
    let profiles = tempfile::tempdir().expect("profiles");
    let phone = volunteer(&ts, "calm", &profiles).await;
    phone.open_model(model).await;

    phone.set_online(false).await;
    phone.wait_text("#net-state", "Chưa có mạng").await;
    phone.click("#add-record").await;
    phone.fill("#f-kind", "meeting").await;
    phone.fill("#f-date", "2025-08-02").await;
    phone.fill("#f-topic", "Họp tổ tự quản tháng 8").await;
    phone.fill("#f-attendees", "25").await;
    phone.click("#save").await;
    phone.wait_text("#notice", "Đã lưu").await;
    // The save wakes a sync that cannot reach the server: watch the bar through it.
    for _ in 0..15 {
        let bar = phone.text("#sync-bar").await;
        assert!(!bar.contains("Mất mạng"), "offline is not said as a loss: {bar:?}");
        assert!(
            !(bar.contains("Chưa có mạng") && bar.contains("Đang đồng bộ")),
            "never offline and syncing at once: {bar:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let pending = phone.pending().await;
    assert!(pending > 0, "the record waits");
    wait_exact(&phone, "#sync-line", &format!("Chưa có mạng · {pending} thay đổi chờ gửi")).await;
    assert_eq!(phone.count("#sync-error").await, 0, "offline is no error");
    let red = phone
        .js(
            "return [...document.querySelectorAll('#sync-bar, #sync-bar *')].filter(e => {
               const s = getComputedStyle(e);
               return s.color === 'rgb(179, 38, 30)' || s.backgroundColor === 'rgb(253, 236, 234)';
             }).length;",
            vec![],
        )
        .await;
    assert_eq!(red, json!(0), "nothing red while offline");
    let bar = phone.rect("#sync-bar").await;
    let header = phone.rect("header.top").await;
    let notice = phone.rect("#notice").await;
    eprintln!(
        "offline after a save: header {:.0} px, sync bar {:.0} px, notice ends at {:.0} px of {:.0}",
        header.height(),
        bar.height(),
        notice.bottom,
        bar.viewport_height
    );
    assert!(bar.height() <= 50.0, "the sync bar is one line: {bar:?}");
    assert!(notice.bottom <= 160.0, "header, sync bar and notice leave the screen to the work: {notice:?}");
    phone.screenshot("calm-offline").await;

    // The record is still only on the phone, and says so; no review state yet.
    let record = "li.record[data-kind='meeting']";
    phone.wait_for(&format!("{record}[data-sync='local']")).await;
    phone.wait_text(&format!("{record} [data-sync='local']"), "Chưa đồng bộ").await;
    assert_eq!(phone.count(&format!("{record} [data-review]")).await, 0, "no review before the commune has it");

    // Back online: synced, and then where it stands in review.
    phone.set_online(true).await;
    phone.wait_synced().await;
    phone.wait_for(&format!("{record}[data-sync='synced']")).await;
    phone.wait_text(&format!("{record} [data-sync='synced']"), "Đã đồng bộ").await;
    phone.wait_text(&format!("{record} [data-review='new']"), "Chờ duyệt").await;
    phone.wait_text("#sync-line", "Đã đồng bộ lúc").await;
    let bar = phone.rect("#sync-bar").await;
    assert!(bar.height() <= 50.0, "online too, one line: {bar:?}");
    phone.screenshot("calm-synced").await;

    // A record that arrived from the server counts as synced.
    let mut other = ts.device("calm-other").await;
    other.put_record(model, &testdata::patrol(RecordId::new_random(), "2025-08-01", 0));
    other.sync(&ts.url).await.expect("the other phone syncs");
    phone.click("#sync-now").await;
    phone.wait_for("li.record[data-kind='patrol'][data-sync='synced']").await;

    phone.quit().await;
    ts.stop().await;
}

#[tokio::test]
async fn save_stays_in_reach_and_the_saved_record_comes_first_marked() {
    let _turn = one_at_a_time().await;
    let mut ts = server_with_app().await;
    let model = ts.model().await;
    let profiles = tempfile::tempdir().expect("profiles");
    let phone = volunteer(&ts, "reach", &profiles).await;
    phone.open_model(model).await;
    // Some history, newer than the record about to be logged.
    for day in ["2025-06-20", "2025-06-18", "2025-06-15", "2025-06-12"] {
        phone.click("#add-record").await;
        phone.fill("#f-kind", "patrol").await;
        phone.fill("#f-date", day).await;
        phone.fill("#f-members", "5").await;
        phone.fill("#f-area", &format!("Tuyến ngày {day}")).await;
        phone.click("#save").await;
        phone.wait_text("#notice", "Đã lưu").await;
    }
    phone.wait_count("li.record", 4).await;

    phone.click("#add-record").await;
    phone.fill("#f-kind", "patrol").await;
    let save = phone.rect("#save").await;
    assert_eq!(save.scroll_y, 0.0, "the form opens at its top, not where the log was scrolled");
    assert!(save.in_view(), "Save is on screen without scrolling: {save:?}");
    // The harness's tap scrolls the button into view, as a thumb would.
    phone.click("#add-incident").await;
    let save = phone.rect("#save").await;
    eprintln!(
        "Save with one incident: {:.0}–{:.0} px of {:.0}, page scrolled {:.0} px",
        save.top, save.bottom, save.viewport_height, save.scroll_y
    );
    assert!(save.in_view(), "Save is on screen with an incident: {save:?}");
    phone.fill("#f-date", "2025-06-01").await;
    phone.fill("#f-members", "7").await;
    phone.fill("#f-area", "Tuyến đê bao").await;
    phone.fill("#f-inc-0-description", "Đốt rác gây khói").await;
    let save = phone.rect("#save").await;
    assert!(save.in_view(), "Save stays on screen wherever the person is in the form: {save:?}");
    phone.screenshot("reach-form").await;
    phone.click("#save").await;
    phone.wait_text("#notice", "Đã lưu").await;

    // The saved record is the first thing in the log, marked, at the top of the page.
    phone.wait_count("li.record", 5).await;
    phone.wait_for("li.record.just-saved").await;
    let first = phone
        .js("const li = document.querySelector('li.record'); return [li.classList.contains('just-saved'), li.innerText];", vec![])
        .await;
    assert_eq!(first[0], json!(true), "the first record is the one just saved: {first}");
    assert!(first[1].as_str().unwrap_or_default().contains("Tuyến đê bao"), "{first}");
    wait_exact(&phone, "#just-saved", "✓ Vừa lưu").await;
    let saved = phone.rect("li.record.just-saved").await;
    assert_eq!(saved.scroll_y, 0.0, "the page is at its top, not where the form was scrolled");
    assert!(saved.in_view(), "the saved record is in sight: {saved:?}");
    phone.screenshot("reach-saved").await;

    // Leaving the model and coming back, the log is in its usual order again.
    phone.click("#back").await;
    phone.open_model(model).await;
    phone.wait_count("li.record", 5).await;
    assert_eq!(phone.count("li.record.just-saved").await, 0);
    phone.wait_text("li.record:last-child", "Tuyến đê bao").await;

    phone.quit().await;
    ts.stop().await;
}

#[tokio::test]
async fn a_picked_date_and_time_read_dd_mm_yyyy_and_24_hours_in_the_apps_language() {
    let _turn = one_at_a_time().await;
    let mut ts = server_with_app().await;
    let model = ts.model().await;
    let profiles = tempfile::tempdir().expect("profiles");
    let phone = volunteer(&ts, "dates", &profiles).await;
    phone.open_model(model).await;
    phone.click("#add-record").await;
    phone.fill("#f-kind", "patrol").await;
    phone.fill("#f-date", "2025-12-01").await;
    wait_exact(&phone, "#f-date-shown", "Thứ Hai, 01/12/2025").await;
    phone.fill("#f-start", "07:05").await;
    wait_exact(&phone, "#f-start-shown", "07:05").await;
    phone.fill("#f-end", "21:40").await;
    wait_exact(&phone, "#f-end-shown", "21:40").await;
    phone.screenshot("dates-vi").await;
    phone.click("#language").await;
    wait_exact(&phone, "#f-date-shown", "Monday, 01/12/2025").await;
    wait_exact(&phone, "#f-end-shown", "21:40").await;
    phone.screenshot("dates-en").await;

    phone.quit().await;
    ts.stop().await;
}

#[tokio::test]
async fn a_new_record_starts_from_the_models_kind_and_the_teams_last_patrol() {
    let _turn = one_at_a_time().await;
    let mut ts = server_with_app().await;
    let patrols = ts.model().await;
    // The team's last patrol, from another member's phone.
    let mut other = ts.device("defaults-other").await;
    other.put_record(patrols, &testdata::patrol(RecordId::new_random(), "2025-05-02", 0));
    let mut last = testdata::patrol(RecordId::new_random(), "2025-05-09", 1);
    if let kheo_shared::record::Activity::Patrol(p) = &mut last.activity {
        p.start = kheo_shared::scalars::ClockTime::hm(19, 30).expect("a time");
        p.end = kheo_shared::scalars::ClockTime::hm(22, 15).expect("a time");
        p.members_present = 8;
        p.area = "Tuyến đường ĐT 616".into();
    }
    other.put_record(patrols, &last);
    other.sync(&ts.url).await.expect("the other phone syncs");
    // A production group of the same commune, with nothing logged yet.
    let production = ModelId::new_random();
    let mut staff = ts.device_as("defaults-staff", Role::CommuneStaff, HOME_UNIT).await;
    let mut profile = testdata::model(production, HOME_UNIT);
    profile.name = "Tổ hợp tác trồng nghệ".into();
    profile.field = Field::EconomicDevelopment;
    profile.status = kheo_shared::codes::ModelStatus::Recognised;
    profile.status_years.typical = None;
    staff.put_model(&profile);
    staff.sync_held(&ts.url).await.expect("staff syncs the model");

    let profiles = tempfile::tempdir().expect("profiles");
    let phone = volunteer(&ts, "defaults", &profiles).await;
    phone.open_model(patrols).await;
    phone.wait_count("li.record", 2).await;
    phone.click("#add-record").await;
    assert_eq!(value(&phone, "#f-kind").await, "patrol");
    assert_eq!(value(&phone, "#f-start").await, "19:30", "the start of the last patrol, not a fixed 21:00");
    assert_eq!(value(&phone, "#f-end").await, "22:15");
    assert_eq!(value(&phone, "#f-members").await, "8");
    assert_eq!(value(&phone, "#f-area").await, "Tuyến đường ĐT 616");
    assert_eq!(phone.count(".incident").await, 0, "incidents are the night's own");
    // The daily patrol with one incident: taps from the model list to "saved".
    phone.click("#back").await;
    phone.click("#back").await;
    let started = std::time::Instant::now();
    let mut taps = 0;
    phone.open_model(patrols).await;
    taps += 1;
    phone.click("#add-record").await;
    taps += 1;
    phone.click("#add-incident").await;
    taps += 1;
    // A select is two taps: open it, pick.
    phone.fill("#f-inc-0-category", "gambling").await;
    taps += 2;
    phone.click("#save").await;
    taps += 1;
    phone.wait_text("#notice", "Đã lưu").await;
    eprintln!(
        "the daily patrol with one incident: {taps} taps, {:.1} s in the browser",
        started.elapsed().as_secs_f64()
    );
    assert!(taps <= 7);
    phone.wait_text("li.record.just-saved", "Tuyến đường ĐT 616").await;

    phone.click("#back").await;
    phone.open_model(production).await;
    phone.click("#add-record").await;
    assert_eq!(value(&phone, "#f-kind").await, "production", "a production group opens on production");
    phone.wait_for("#f-product").await;

    phone.quit().await;
    ts.stop().await;
}

async fn path(phone: &Phone) -> String {
    phone.js("return location.pathname;", vec![]).await.as_str().unwrap_or_default().to_owned()
}

async fn wait_path(phone: &Phone, expected: &str) {
    phone
        .wait_js(
            &format!("the address {expected}"),
            "return location.pathname === arguments[0];",
            vec![json!(expected)],
        )
        .await;
}

#[tokio::test]
async fn each_screen_has_its_address_so_back_goes_back_and_a_reload_stays() {
    let _turn = one_at_a_time().await;
    let mut ts = server_with_app().await;
    let model = ts.model().await;
    let profiles = tempfile::tempdir().expect("profiles");
    let phone = volunteer(&ts, "router", &profiles).await;
    let history = async || phone.js("return history.length;", vec![]).await.as_u64().unwrap_or(0);
    // A volunteer with one model lands in it, with the list one Back away.
    wait_path(&phone, &format!("/models/{model}")).await;
    phone.wait_for("#add-record").await;
    let start = history().await;
    phone.click("#add-record").await;
    wait_path(&phone, &format!("/models/{model}/new")).await;
    phone.wait_for("#f-date").await;
    assert_eq!(history().await, start + 1, "each screen is an entry in the history");

    // A reload stays on the form.
    phone.reload().await;
    phone.wait_for("#f-date").await;
    assert_eq!(path(&phone).await, format!("/models/{model}/new"));

    // The phone's Back goes back a screen at a time, inside the app.
    phone.driver.back().await.expect("back");
    phone.wait_for("#add-record").await;
    wait_path(&phone, &format!("/models/{model}")).await;
    phone.driver.back().await.expect("back");
    phone.wait_for(&format!("[data-model='{model}']")).await;
    wait_path(&phone, "/").await;
    // Back at the list, the app does not land in the model again.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(path(&phone).await, "/");
    phone.driver.forward().await.expect("forward");
    phone.wait_for("#add-record").await;

    // After a save, Back does not reopen the form.
    phone.click("#add-record").await;
    phone.fill("#f-kind", "meeting").await;
    phone.fill("#f-topic", "Họp tổ").await;
    phone.click("#save").await;
    phone.wait_text("#notice", "Đã lưu").await;
    wait_path(&phone, &format!("/models/{model}")).await;
    phone.wait_count("li.record", 1).await;
    phone.driver.back().await.expect("back");
    wait_path(&phone, "/").await;
    phone.wait_for(&format!("[data-model='{model}']")).await;

    // A record has its own address too, and "← Quay lại" is the same as Back.
    phone.open_model(model).await;
    phone.click("li.record .card").await;
    phone.wait_for("#f-topic").await;
    let record_path = path(&phone).await;
    assert!(record_path.starts_with(&format!("/models/{model}/records/")), "{record_path}");
    phone.reload().await;
    phone.wait_for("#f-topic").await;
    assert_eq!(value(&phone, "#f-topic").await, "Họp tổ", "the reload reopened the same record");
    phone.click("#back").await;
    wait_path(&phone, &format!("/models/{model}")).await;
    phone.click("#back").await;
    wait_path(&phone, "/").await;

    phone.quit().await;
    ts.stop().await;
}

#[tokio::test]
async fn a_half_filled_form_survives_back_a_reload_and_a_killed_browser_and_leaving_asks_first() {
    let _turn = one_at_a_time().await;
    let mut ts = server_with_app().await;
    let model = ts.model().await;
    let (user, secret) = ts.account("drafts", Role::Volunteer, HOME_UNIT).await;
    let profiles = tempfile::tempdir().expect("profiles");
    let profile = profiles.path().join("a");
    let phone = Phone::launch("drafts", &profile).await;
    phone.log_in(&ts.url, &user, &secret).await;
    phone.open_model(model).await;
    phone.click("#add-record").await;
    phone.fill("#f-kind", "patrol").await;
    phone.fill("#f-members", "9").await;
    phone.fill("#f-area", "Tuyến nháp").await;
    phone.click("#add-incident").await;
    phone.fill("#f-inc-0-category", "gambling").await;
    phone.fill("#f-inc-0-description", "Nhóm đánh bạc ở bãi sông").await;
    assert_eq!(phone.count("#draft-restored").await, 0, "a fresh form has no draft");
    let kept = async |phone: &Phone| {
        phone.wait_for("#draft-restored").await;
        phone.wait_text("#draft-restored", "Đã mở lại bản nháp chưa lưu").await;
        assert_eq!(value(phone, "#f-members").await, "9");
        assert_eq!(value(phone, "#f-area").await, "Tuyến nháp");
        assert_eq!(value(phone, "#f-inc-0-category").await, "gambling");
        assert_eq!(value(phone, "#f-inc-0-description").await, "Nhóm đánh bạc ở bãi sông");
    };

    // 1. A reload.
    phone.reload().await;
    kept(&phone).await;
    phone.screenshot("draft-restored").await;

    // 2. The phone's Back, and the form opened again.
    phone.driver.back().await.expect("back");
    phone.wait_for("#add-record").await;
    phone.click("#add-record").await;
    kept(&phone).await;

    // 3. The browser killed (Android dropping a background tab) and opened again.
    phone.quit().await;
    let phone = Phone::launch("drafts", &profile).await;
    phone.open(&ts.url).await;
    phone.open_model(model).await;
    phone.click("#add-record").await;
    kept(&phone).await;

    // The form's own Back asks first; "Cancel" stays on the form with everything.
    phone.click("#back").await;
    let question = phone.driver.get_alert_text().await.expect("a question before leaving");
    assert_eq!(question, "Biểu mẫu có thay đổi chưa lưu. Bỏ các thay đổi này và quay lại?");
    phone.driver.dismiss_alert().await.expect("cancel");
    assert_eq!(value(&phone, "#f-area").await, "Tuyến nháp");
    // "OK" throws the changes away and goes back; the next form is fresh.
    phone.click("#back").await;
    phone.driver.accept_alert().await.expect("ok");
    phone.wait_for("#add-record").await;
    phone.click("#add-record").await;
    phone.wait_for("#f-members").await;
    assert_eq!(value(&phone, "#f-members").await, "");
    assert_eq!(phone.count("#draft-restored").await, 0);
    // An unchanged form leaves without a question.
    phone.click("#back").await;
    phone.wait_for("#add-record").await;

    // "Bỏ bản nháp" puts the form back as it started.
    phone.click("#add-record").await;
    phone.fill("#f-members", "4").await;
    phone.reload().await;
    phone.wait_for("#draft-restored").await;
    assert_eq!(value(&phone, "#f-members").await, "4");
    phone.click("#draft-discard").await;
    assert_eq!(value(&phone, "#f-members").await, "");
    assert_eq!(phone.count("#draft-restored").await, 0);
    phone.click("#back").await;
    phone.wait_for("#add-record").await;

    // A saved form leaves no draft behind.
    phone.click("#add-record").await;
    phone.fill("#f-kind", "meeting").await;
    phone.fill("#f-topic", "Họp tổ tháng 12").await;
    phone.reload().await;
    phone.wait_for("#draft-restored").await;
    phone.click("#save").await;
    phone.wait_text("#notice", "Đã lưu").await;
    phone.click("#add-record").await;
    phone.wait_for("#f-kind").await;
    assert_eq!(phone.count("#draft-restored").await, 0, "the saved draft is gone");
    assert_eq!(value(&phone, "#f-topic").await, "");
    let drafts =
        phone.js("return Object.keys(localStorage).filter(k => k.startsWith('kheo.draft.')).length;", vec![]).await;
    assert_eq!(drafts, json!(0), "nothing left in storage");

    phone.quit().await;
    ts.stop().await;
}

#[tokio::test]
async fn the_model_list_counts_returned_records_and_the_log_finds_them_by_review_state() {
    let _turn = one_at_a_time().await;
    let mut ts = server_with_app().await;
    let model = ts.model().await;
    let quiet = ts.model().await;
    let (teammate, teammate_secret) = ts.account_named("dongdoi", "Trần Thị Bình", Role::Volunteer, HOME_UNIT).await;
    let (reviewer, reviewer_secret) = ts.account_named("duyet", "Lê Thị Thu", Role::CommuneStaff, HOME_UNIT).await;

    // A teammate's phone (simulated) logs four patrols; the commune returns
    // two, approves one and leaves one waiting.
    let mut phone_b = Device::login(&ts.url, &teammate, &teammate_secret).await.expect("the teammate logs in");
    let records: Vec<_> = (1..=4)
        .map(|n| {
            let mut r = testdata::patrol(RecordId::new_random(), &format!("2025-05-0{n}"), 0);
            r.author = teammate.clone();
            r
        })
        .collect();
    for r in &records {
        phone_b.put_record(model, r);
    }
    phone_b.sync(&ts.url).await.expect("the teammate's phone syncs");
    let mut staff = Device::login(&ts.url, &reviewer, &reviewer_secret).await.expect("the reviewer logs in");
    staff.sync(&ts.url).await.expect("the reviewer's phone syncs");
    staff.put_record(model, &decided(&records[0], ReviewState::Returned, &reviewer, "Thiếu địa bàn"));
    staff.put_record(model, &decided(&records[1], ReviewState::Returned, &reviewer, "Sai ngày"));
    staff.put_record(model, &decided(&records[2], ReviewState::Approved, &reviewer, ""));
    staff.sync(&ts.url).await.expect("the decisions sync");

    let profiles = tempfile::tempdir().expect("profiles");
    let phone = volunteer(&ts, "returned", &profiles).await;
    // The list says how many records were sent back, on that model only.
    let badge = format!("[data-model='{model}'] .returned-count");
    wait_exact(&phone, &badge, "2 bản ghi bị trả lại, cần sửa").await;
    phone.wait_text(&format!("[data-model='{model}']"), "4 hoạt động").await;
    assert_eq!(phone.count(&format!("[data-model='{quiet}'] .returned-count")).await, 0);
    phone.screenshot("returned-count").await;

    // The log finds them by review state.
    phone.open_model(model).await;
    phone.wait_count("li.record", 4).await;
    phone.fill("#filter-review", "returned").await;
    phone.wait_count("li.record", 2).await;
    for r in &records[..2] {
        assert_eq!(phone.count(&format!("li.record[data-record='{}']", r.id)).await, 1);
    }
    phone.screenshot("returned-filter").await;
    phone.fill("#filter-review", "approved").await;
    phone.wait_count("li.record", 1).await;
    phone.fill("#filter-review", "new").await;
    phone.wait_count("li.record", 1).await;
    assert_eq!(phone.count(&format!("li.record[data-record='{}']", records[3].id)).await, 1);
    phone.fill("#filter-review", "").await;
    phone.wait_count("li.record", 4).await;

    // Who logged each record, by name, not by login.
    let card = format!("li.record[data-record='{}']", records[0].id);
    phone.wait_text(&format!("{card} .author"), "Người ghi: Trần Thị Bình").await;
    let text = phone.text(&card).await;
    assert!(!text.contains(&teammate), "no login name on the card: {text}");

    // In English too.
    phone.click("#language").await;
    phone.wait_text(&format!("{card} .author"), "Logged by Trần Thị Bình").await;
    phone.click("#back").await;
    wait_exact(&phone, &badge, "2 returned, to fix").await;
    phone.click("#language").await;

    // A log with no review yet keeps its room: no review filter to show.
    phone.open_model(quiet).await;
    phone.wait_for("#filter-kind").await;
    assert_eq!(phone.count("#filter-review").await, 0);

    phone.quit().await;
    ts.stop().await;
}

#[tokio::test]
async fn a_record_logged_on_another_phone_of_the_commune_shows_within_seconds_without_a_tap() {
    let _turn = one_at_a_time().await;
    let mut ts = server_with_app().await;
    let model = ts.model().await;
    let profiles = tempfile::tempdir().expect("profiles");
    let phone = volunteer(&ts, "live", &profiles).await;
    phone.open_model(model).await;
    phone.wait_synced().await;

    // A teammate logs a patrol on their own phone and it reaches the server.
    let mut teammate = ts.device("live-teammate").await;
    let record = testdata::any_record(RecordId::new_random(), "2026-11-30", 0);
    teammate.put_record(model, &record);
    teammate.sync(&ts.url).await.expect("the teammate's phone syncs");
    let synced_at = std::time::Instant::now();

    // Without anyone tapping "Đồng bộ ngay" (the periodic sync is 2 minutes away).
    let card = format!("li.record[data-record='{}']", record.id);
    phone
        .wait_js(
            "the teammate's record on this phone",
            "return document.querySelectorAll(arguments[0]).length === 1;",
            vec![json!(card)],
        )
        .await;
    let took = synced_at.elapsed();
    println!("live update: the teammate's record showed {:.1} s after it reached the server", took.as_secs_f64());
    assert!(took < std::time::Duration::from_secs(10), "took {took:?}");
    phone.screenshot("live-update").await;

    // Offline the phone stops asking; back online, what changed meanwhile arrives by itself.
    phone.set_online(false).await;
    let second = testdata::any_record(RecordId::new_random(), "2026-11-29", 1);
    teammate.put_record(model, &second);
    teammate.sync(&ts.url).await.expect("the teammate's phone syncs again");
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(phone.count(&format!("li.record[data-record='{}']", second.id)).await, 0, "offline, nothing arrives");
    phone.set_online(true).await;
    phone
        .wait_js(
            "the record logged while offline",
            "return document.querySelectorAll(arguments[0]).length === 1;",
            vec![json!(format!("li.record[data-record='{}']", second.id))],
        )
        .await;

    phone.quit().await;
    ts.stop().await;
}

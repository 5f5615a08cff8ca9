//! Commune review in the browser: a record goes from a volunteer's phone
//! to commune staff, back with a comment, is fixed, and is approved; and
//! staff approve several records at once, with concurrent edits shown.

use kheo_shared::codes::{ReviewState, Role};
use kheo_shared::ids::RecordId;
use kheo_shared::record::{Activity, Record};
use kheo_shared::testdata;
use kheo_tests::{Device, HOME_UNIT};
use serde_json::json;

use crate::harness::{Phone, decided, one_at_a_time, server_records, server_with_app};

/// The record a review item stands for.
fn item(id: &str) -> String {
    format!("li.review-item[data-record='{id}']")
}

#[tokio::test]
async fn a_returned_record_is_fixed_by_its_volunteer_and_then_approved() {
    let _turn = one_at_a_time().await;
    let mut ts = server_with_app().await;
    let model = ts.model().await;
    let (volunteer_name, volunteer_secret) = ts.account("tv1", Role::Volunteer, HOME_UNIT).await;
    let (staff_name, staff_secret) = ts.account("canbo", Role::CommuneStaff, HOME_UNIT).await;
    let profiles = tempfile::tempdir().expect("profiles");
    let comment = "Thiếu số người tham dự thực tế";

    // A volunteer logs a meeting with no network, then syncs.
    let volunteer = Phone::launch("review-volunteer", &profiles.path().join("v")).await;
    volunteer.log_in(&ts.url, &volunteer_name, &volunteer_secret).await;
    volunteer.set_online(false).await;
    volunteer.wait_text("#net-state", "Chưa có mạng").await;
    volunteer.open_model(model).await;
    volunteer.click("#add-record").await;
    volunteer.fill("#f-kind", "meeting").await;
    volunteer.fill("#f-date", "2025-06-20").await;
    volunteer.fill("#f-topic", "Tuyên truyền phòng chống cờ bạc").await;
    volunteer.fill("#f-attendees", "25").await;
    volunteer.click("#save").await;
    volunteer.wait_text("#notice", "Đã lưu").await;
    assert!(volunteer.pending().await > 0, "the record waits for the network");
    volunteer.set_online(true).await;
    volunteer.wait_synced().await;
    let id = volunteer.js("return document.querySelector('li.record').dataset.record;", vec![]).await;
    let id = id.as_str().expect("the record's id").to_owned();

    // Commune staff see it in the queue, and return it with no network.
    let staff = Phone::launch("review-staff", &profiles.path().join("s")).await;
    staff.log_in(&ts.url, &staff_name, &staff_secret).await;
    staff.click("#tab-review").await;
    staff.wait_count("li.review-item", 1).await;
    staff.wait_text(&item(&id), "Tuyên truyền phòng chống cờ bạc").await;
    staff.wait_for(&format!("{} [data-review='new']", item(&id))).await;
    staff.screenshot("queue").await;
    staff.set_online(false).await;
    staff.wait_text("#net-state", "Chưa có mạng").await;
    staff.click(&format!("{} input.review-select", item(&id))).await;
    staff.wait_text("#review-selected", "Đã chọn 1").await;
    staff.click("#review-return").await;
    staff.wait_text("#review-error", "Hãy ghi ý kiến").await;
    staff.fill("#review-comment", comment).await;
    staff.screenshot("return-with-comment").await;
    staff.click("#review-return").await;
    staff.wait_text("#notice", "Đã lưu").await;
    // Returned, it no longer awaits the reviewer: it stands under "Trả lại".
    staff.wait_count("li.review-item", 0).await;
    staff.fill("#review-state", "returned").await;
    staff.wait_text(&format!("{} [data-review='returned']", item(&id)), comment).await;
    assert!(staff.pending().await > 0, "the decision waits for the network");
    staff.screenshot("returned").await;
    staff.set_online(true).await;
    staff.wait_synced().await;

    // The volunteer sees the comment after a sync, and fixes the record.
    volunteer.click("#sync-now").await;
    let on_volunteer = format!("li.record[data-record='{id}']");
    volunteer.wait_text(&on_volunteer, &format!("Trả lại: {comment}")).await;
    volunteer.screenshot("returned").await;
    volunteer.click(&format!("{on_volunteer} button.card")).await;
    volunteer.wait_text("#returned", comment).await;
    volunteer.screenshot("returned-form").await;
    volunteer.fill("#f-attendees", "27").await;
    volunteer.click("#save").await;
    volunteer.wait_text("#notice", "Đã lưu").await;
    volunteer.wait_text(&format!("{on_volunteer} [data-fixed]"), "Đã sửa, chờ duyệt lại").await;
    volunteer.wait_synced().await;

    // Staff see the fix among what awaits them, and approve it.
    staff.fill("#review-state", "new").await;
    staff.click("#sync-now").await;
    staff.wait_for(&format!("{} [data-edited]", item(&id))).await;
    staff.wait_text(&item(&id), "27").await;
    staff.screenshot("fixed").await;
    staff.click(&format!("{} input.review-select", item(&id))).await;
    staff.fill("#review-comment", "Đã đủ thông tin").await;
    staff.click("#review-approve").await;
    staff.wait_text("#notice", "Đã lưu").await;
    staff.wait_count("li.review-item", 0).await;
    staff.fill("#review-state", "").await;
    staff.wait_for(&format!("{} [data-review='approved']", item(&id))).await;
    assert_eq!(staff.count("[data-edited]").await, 0, "the approval covers the fix");
    staff.wait_synced().await;

    // The volunteer sees the approval; the server holds it.
    volunteer.click("#sync-now").await;
    volunteer.wait_text(&on_volunteer, "Đã duyệt").await;
    volunteer.screenshot("approved").await;
    let held = server_records(&ts, model, "checker").await;
    assert_eq!(held.len(), 1);
    let record = &held[0];
    assert_eq!(record.id.to_string(), id);
    assert_eq!(record.review.state, ReviewState::Approved);
    assert_eq!(record.review.reviewer.as_deref(), Some(staff_name.as_str()));
    assert_eq!(record.review.comment, "Đã đủ thông tin");
    assert!(record.review.reviewed_at.is_some_and(|at| at >= record.updated_at), "the approval covers the last edit");
    assert_eq!(record.author, volunteer_name);
    match &record.activity {
        Activity::Meeting(m) => assert_eq!(m.attendees, 27, "the volunteer's fix reached the server"),
        other => panic!("a meeting was logged, the server holds {other:?}"),
    }

    staff.quit().await;
    volunteer.quit().await;
    ts.stop().await;
}

#[tokio::test]
async fn staff_approve_several_records_at_once_and_see_concurrent_edits() {
    let _turn = one_at_a_time().await;
    let mut ts = server_with_app().await;
    let model = ts.model().await;
    let (staff_name, staff_secret) = ts.account("canbo", Role::CommuneStaff, HOME_UNIT).await;

    // Two volunteers' phones (simulated): three patrols and a meeting, and
    // the meeting's note changed on both phones at once.
    let mut a = ts.device_as("tv-a", Role::Volunteer, HOME_UNIT).await;
    let mut b = ts.device_as("tv-b", Role::Volunteer, HOME_UNIT).await;
    let patrols: Vec<Record> =
        (1..=3).map(|n| testdata::patrol(RecordId::new_random(), &format!("2025-05-0{n}"), n % 2)).collect();
    for p in &patrols {
        a.put_record(model, p);
    }
    let meeting = testdata::meeting(RecordId::new_random(), "2025-05-10", 40);
    a.put_record(model, &meeting);
    a.sync(&ts.url).await.expect("phone A syncs");
    b.sync(&ts.url).await.expect("phone B syncs");
    let (mut on_a, mut on_b) = (meeting.clone(), meeting.clone());
    on_a.note = "Có 40 người dự".into();
    on_a.updated_at.0 += 1_000;
    on_b.note = "Có 45 người dự".into();
    on_b.updated_at.0 += 2_000;
    a.put_record(model, &on_a);
    b.put_record(model, &on_b);
    a.sync(&ts.url).await.expect("phone A syncs its edit");
    b.sync(&ts.url).await.expect("phone B syncs its edit");

    let profiles = tempfile::tempdir().expect("profiles");
    let staff = Phone::launch("review-many", &profiles.path().join("s")).await;
    staff.log_in(&ts.url, &staff_name, &staff_secret).await;
    staff.click("#tab-review").await;
    staff.wait_count("li.review-item", 4).await;

    // Both values of the note are shown.
    let meeting_item = item(&meeting.id.to_string());
    let conflict = format!("{meeting_item} .conflict[data-path='note']");
    staff.wait_text(&conflict, "Có 40 người dự").await;
    staff.wait_text(&conflict, "Có 45 người dự").await;
    staff.wait_text(&conflict, "Ghi chú").await;
    staff
        .js("document.querySelector(arguments[0]).scrollIntoView({ block: 'center' });", vec![conflict.clone().into()])
        .await;
    staff.screenshot("conflict").await;

    // Only patrols, all of them, approved in one go.
    staff.click("#review-more summary").await;
    staff.fill("#review-kind", "patrol").await;
    staff.wait_count("li.review-item", 3).await;
    staff.click("#review-select-all").await;
    staff.wait_count("input.review-select:checked", 3).await;
    staff.wait_text("#review-selected", "Đã chọn 3").await;
    staff.wait_text("#review-approve", "Phê duyệt (3)").await;
    staff.screenshot("select-all").await;
    staff.click("#review-approve").await;
    staff.wait_text("#notice", "Đã lưu").await;
    // Approved, they leave the records awaiting a decision.
    staff.wait_count("li.review-item", 0).await;
    staff.fill("#review-state", "").await;
    staff.wait_count("li.review-item [data-review='approved']", 3).await;
    staff.wait_synced().await;

    // The other filters: state, and a period that leaves the meeting out.
    staff.fill("#review-kind", "").await;
    staff.wait_count("li.review-item", 4).await;
    staff.fill("#review-state", "new").await;
    staff.wait_count("li.review-item", 1).await;
    staff.wait_for(&meeting_item).await;
    staff.fill("#review-state", "").await;
    staff.fill("#review-to", "2025-05-02").await;
    staff.wait_count("li.review-item", 2).await;
    staff.screenshot("filtered").await;

    let held = server_records(&ts, model, "checker").await;
    assert_eq!(held.len(), 4);
    for r in &held {
        let expected = if r.id == meeting.id { ReviewState::New } else { ReviewState::Approved };
        assert_eq!(r.review.state, expected, "record {}", r.id);
        if expected == ReviewState::Approved {
            assert_eq!(r.review.reviewer.as_deref(), Some(staff_name.as_str()));
        }
    }

    staff.quit().await;
    ts.stop().await;
}

/// The villages of Tam Thăng in the demo tree.
const TAM_THANG_VILLAGES: [&str; 8] = [
    "Thôn Kim Đới",
    "Thôn Vĩnh Bình",
    "Thôn Thạch Tân",
    "Thôn Mỹ Cang",
    "Thôn Ngọc Thạnh",
    "Thôn Phước Khánh",
    "Thôn An Phú",
    "Thôn Tú Mỹ",
];

#[tokio::test]
async fn review_opens_on_what_awaits_a_decision_offers_every_village_and_names_people() {
    let _turn = one_at_a_time().await;
    let mut ts = server_with_app().await;
    let model = ts.model().await;
    let (author, author_secret) = ts.account_named("kimdoi", "Nguyễn Văn Tới", Role::Volunteer, HOME_UNIT).await;
    let (reviewer, reviewer_secret) = ts.account_named("phochutich", "Lê Thị Thu", Role::CommuneStaff, HOME_UNIT).await;
    let (staff_name, staff_secret) = ts.account("canbo", Role::CommuneStaff, HOME_UNIT).await;

    // A volunteer's phone (simulated) logs two records; another reviewer approved one already.
    let mut volunteer = Device::login(&ts.url, &author, &author_secret).await.expect("the volunteer logs in");
    let mut waiting = testdata::patrol(RecordId::new_random(), "2025-05-02", 1);
    waiting.author = author.clone();
    let mut done = testdata::meeting(RecordId::new_random(), "2025-05-01", 30);
    done.author = author.clone();
    volunteer.put_record(model, &waiting);
    volunteer.put_record(model, &done);
    volunteer.sync(&ts.url).await.expect("the volunteer's phone syncs");
    let mut other = Device::login(&ts.url, &reviewer, &reviewer_secret).await.expect("the reviewer logs in");
    other.sync(&ts.url).await.expect("the reviewer's phone syncs");
    other.put_record(model, &decided(&done, ReviewState::Approved, &reviewer, ""));
    other.sync(&ts.url).await.expect("the approval syncs");

    let profiles = tempfile::tempdir().expect("profiles");
    let staff = Phone::launch("review-opens", &profiles.path().join("s")).await;
    staff.log_in(&ts.url, &staff_name, &staff_secret).await;
    staff.click("#tab-review").await;

    // It opens on "Chờ duyệt": the approved meeting is not in the way.
    staff.wait_for(&item(&waiting.id.to_string())).await;
    staff.wait_count("li.review-item", 1).await;
    let state = staff.js("return document.querySelector('#review-state').value;", vec![]).await;
    assert_eq!(state, json!("new"), "the state filter says what is shown");
    let shown = staff
        .js("const s = document.querySelector('#review-state'); return s.options[s.selectedIndex].text;", vec![])
        .await;
    assert_eq!(shown, json!("Chờ duyệt"));

    // The author by name, not by login.
    staff.wait_text(&item(&waiting.id.to_string()), "Người ghi: Nguyễn Văn Tới").await;
    let card = staff.text(&item(&waiting.id.to_string())).await;
    assert!(!card.contains(&author), "no login name on the card: {card}");

    // The village filter offers the commune, then each of its villages.
    staff
        .wait_js(
            "the villages in the filter",
            "return document.querySelectorAll('#review-unit option').length >= 10;",
            vec![],
        )
        .await;
    let options =
        staff.js("return [...document.querySelectorAll('#review-unit option')].map(o => o.text);", vec![]).await;
    let options: Vec<String> = serde_json::from_value(options).expect("option texts");
    assert_eq!(options[1], "Xã Tam Thăng", "the commune first: {options:?}");
    for village in TAM_THANG_VILLAGES {
        assert!(options.iter().any(|o| o == village), "{village} is offered: {options:?}");
    }
    staff.screenshot("opens-awaiting").await;

    // Every state: the approval names its reviewer by name too.
    staff.fill("#review-state", "").await;
    staff.wait_count("li.review-item", 2).await;
    staff.wait_text(&item(&done.id.to_string()), "Người duyệt: Lê Thị Thu").await;
    let card = staff.text(&item(&done.id.to_string())).await;
    assert!(!card.contains(&reviewer), "no login name on the card: {card}");

    // A village: the commune's own model is not under it.
    staff.fill("#review-unit", "QNA.TK.TT.KD").await;
    staff.wait_count("li.review-item", 0).await;
    staff.screenshot("village-filter").await;

    staff.quit().await;
    ts.stop().await;
}

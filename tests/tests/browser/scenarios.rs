//! The five scenarios a volunteer's phone must get through.

use kheo_shared::codes::Role;
use kheo_shared::ids::ModelId;
use kheo_shared::record::Activity;
use kheo_tests::HOME_UNIT;

use crate::harness::{Phone, one_at_a_time, server_records, server_with_app};

/// Adds a patrol with two incidents through the form.
async fn add_patrol(phone: &Phone, model: ModelId, area: &str) {
    phone.open_model(model).await;
    phone.click("#add-record").await;
    phone.fill("#f-kind", "patrol").await;
    phone.fill("#f-date", "2025-06-14").await;
    phone.fill("#f-start", "21:30").await;
    phone.fill("#f-end", "23:45").await;
    phone.fill("#f-members", "6").await;
    phone.fill("#f-area", area).await;
    phone.click("#add-incident").await;
    phone.click("#add-incident").await;
    phone.fill("#f-inc-0-category", "illegal_sand_mining").await;
    phone.fill("#f-inc-0-outcome", "handed_to_police").await;
    phone.fill("#f-inc-0-description", "Ghe hút cát ban đêm ở bến sông").await;
    phone.fill("#f-inc-1-category", "theft").await;
    phone.fill("#f-inc-1-description", "Mất trộm xe đạp").await;
    phone.screenshot("patrol-form").await;
    phone.click("#save").await;
    phone.wait_text("#notice", "Đã lưu").await;
}

async fn add_support(phone: &Phone, giver: &str) {
    phone.click("#add-record").await;
    phone.fill("#f-kind", "household_support").await;
    phone.fill("#f-date", "2025-06-15").await;
    phone.fill("#f-giver", giver).await;
    phone.fill("#f-receiver", "Hộ bà Trần Thị Hoa").await;
    phone.fill("#f-support-type", "money").await;
    phone.fill("#f-amount", "1.500.000").await;
    phone.fill("#f-workdays", "2,5").await;
    phone.screenshot("support-form").await;
    phone.click("#save").await;
    phone.wait_text("#notice", "Đã lưu").await;
}

#[tokio::test]
async fn records_made_offline_survive_a_reload_and_reach_another_phone() {
    let _turn = one_at_a_time().await;
    let mut ts = server_with_app().await;
    let model = ts.model().await;
    let (user, secret) = ts.account("tv1", Role::Volunteer, HOME_UNIT).await;
    let (user2, secret2) = ts.account("tv2", Role::Volunteer, HOME_UNIT).await;
    let profiles = tempfile::tempdir().expect("profiles");

    let phone = Phone::launch("volunteer1", &profiles.path().join("a")).await;
    phone.log_in(&ts.url, &user, &secret).await;
    phone.wait_model(model).await;
    phone.screenshot("models").await;
    phone.wait_offline_ready().await;

    // 1. Offline: a patrol with two incidents and a household support.
    phone.set_online(false).await;
    phone.wait_text("#net-state", "Chưa có mạng").await;
    add_patrol(&phone, model, "Tuyến ven sông Kim Đới").await;
    add_support(&phone, "Hộ ông Nguyễn Văn Ba").await;
    phone.wait_count("li.record", 2).await;
    phone.screenshot("model-offline").await;
    assert!(phone.pending().await > 0, "the changes wait for the network");

    phone.reload().await;
    // A reload stays on the model's page (its own address).
    phone.wait_for("#add-record").await;
    phone.wait_count("li.record", 2).await;
    phone.wait_text("li.record[data-kind='patrol']", "Vụ việc: 2").await;
    phone.wait_text("li.record[data-kind='household_support']", "1.500.000 đ").await;
    phone.screenshot("after-offline-reload").await;
    assert!(phone.pending().await > 0, "still waiting after the reload");

    // 2. Back online: the records reach the server by themselves...
    phone.set_online(true).await;
    phone.wait_synced().await;
    let held = server_records(&ts, model, "checker").await;
    assert_eq!(held.len(), 2, "the server holds both records");
    let patrol = held.iter().find_map(|r| match &r.activity {
        Activity::Patrol(p) => Some(p.clone()),
        _ => None,
    });
    let patrol = patrol.expect("the patrol reached the server");
    assert_eq!(patrol.incidents.len(), 2);
    assert_eq!(patrol.members_present, 6);
    assert!(held.iter().all(|r| r.author == user), "records carry their author");

    // ... and another volunteer of the village sees them after their sync.
    let other = Phone::launch("volunteer2", &profiles.path().join("b")).await;
    other.log_in(&ts.url, &user2, &secret2).await;
    other.open_model(model).await;
    other.wait_count("li.record", 2).await;
    other.wait_text("li.record[data-kind='patrol']", "Tuyến ven sông Kim Đới").await;
    other.screenshot("second-phone").await;

    other.quit().await;
    phone.quit().await;
    ts.stop().await;
}

#[tokio::test]
async fn two_phones_offline_on_the_same_model_both_end_with_every_record() {
    let _turn = one_at_a_time().await;
    let mut ts = server_with_app().await;
    let model = ts.model().await;
    let (user1, secret1) = ts.account("tv1", Role::Volunteer, HOME_UNIT).await;
    let (user2, secret2) = ts.account("tv2", Role::Volunteer, HOME_UNIT).await;
    let profiles = tempfile::tempdir().expect("profiles");
    let a = Phone::launch("concurrent-a", &profiles.path().join("a")).await;
    let b = Phone::launch("concurrent-b", &profiles.path().join("b")).await;
    a.log_in(&ts.url, &user1, &secret1).await;
    b.log_in(&ts.url, &user2, &secret2).await;

    a.set_online(false).await;
    b.set_online(false).await;
    add_patrol(&a, model, "Tuyến A").await;
    add_patrol(&b, model, "Tuyến B").await;
    add_support(&b, "Hộ ông Lê Văn Cường").await;

    a.set_online(true).await;
    b.set_online(true).await;
    a.wait_synced().await;
    b.wait_synced().await;
    // Whoever synced first learns of the other's records at its next sync.
    a.click("#sync-now").await;
    b.click("#sync-now").await;
    a.wait_count("li.record", 3).await;
    b.wait_count("li.record", 3).await;
    a.wait_text("#records", "Tuyến B").await;
    b.wait_text("#records", "Tuyến A").await;
    a.screenshot("merged").await;
    assert_eq!(server_records(&ts, model, "checker").await.len(), 3);

    a.quit().await;
    b.quit().await;
    ts.stop().await;
}

#[tokio::test]
async fn a_server_outage_shows_an_error_keeps_the_data_and_recovers_by_itself() {
    let _turn = one_at_a_time().await;
    let mut ts = server_with_app().await;
    let model = ts.model().await;
    let (user, secret) = ts.account("tv1", Role::Volunteer, HOME_UNIT).await;
    let profiles = tempfile::tempdir().expect("profiles");
    let phone = Phone::launch("outage", &profiles.path().join("a")).await;
    phone.log_in(&ts.url, &user, &secret).await;

    ts.stop().await;
    add_patrol(&phone, model, "Tuyến khi máy chủ tắt").await;
    // A server that cannot be reached is no network to a volunteer: said calmly, not as an error.
    phone.wait_text("#net-state", "Chưa có mạng").await;
    phone.wait_text("#sync-pending", "thay đổi chờ gửi").await;
    assert_eq!(phone.count("#sync-error").await, 0, "nothing for the volunteer to do");
    phone.screenshot("server-down").await;
    assert!(phone.pending().await > 0);
    assert_eq!(phone.count("li.record").await, 1, "the record stays on the phone");

    // Nobody touches the phone: it retries by itself once the server is back.
    ts.start_on_same_port().await;
    phone.wait_synced().await;
    phone.screenshot("recovered").await;
    assert_eq!(server_records(&ts, model, "checker").await.len(), 1);

    phone.quit().await;
    ts.stop().await;
}

#[tokio::test]
async fn the_app_opens_cold_with_no_network_after_the_first_visit() {
    let _turn = one_at_a_time().await;
    let mut ts = server_with_app().await;
    let model = ts.model().await;
    let (user, secret) = ts.account("tv1", Role::Volunteer, HOME_UNIT).await;
    let profiles = tempfile::tempdir().expect("profiles");
    let profile = profiles.path().join("a");
    let url = ts.url.clone();

    let phone = Phone::launch("cold", &profile).await;
    phone.log_in(&url, &user, &secret).await;
    phone.wait_model(model).await;
    phone.wait_offline_ready().await;
    phone.quit().await;

    // The browser is closed, the server is gone and the network is off.
    ts.stop().await;
    let phone = Phone::launch("cold", &profile).await;
    phone.set_online(false).await;
    phone.open(&url).await;
    phone.wait_model(model).await;
    phone.wait_text("#net-state", "Chưa có mạng").await;
    phone.wait_text("#sync-last", "Đã đồng bộ lúc").await;
    phone.screenshot("cold-offline").await;
    phone.open_model(model).await;
    phone.click("#add-record").await;
    phone.wait_for("#f-date").await;

    phone.quit().await;
}

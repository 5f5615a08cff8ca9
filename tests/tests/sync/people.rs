//! Display names: the app shows people by name, not by login, so the
//! server tells each reader the names of the accounts whose work they see
//! (their unit and below, and the staff above them), and no others.

use kheo_server::accounts::NewAccount;
use kheo_shared::codes::Role;
use kheo_tests::{HOME_UNIT, TestServer};

async fn person(server: &TestServer, username: &str, display_name: &str, role: Role, unit: &str) {
    server
        .accounts()
        .create_account(NewAccount {
            username: username.into(),
            phone: None,
            display_name: display_name.into(),
            role,
            unit: unit.into(),
            secret: format!("{username}-secret-1"),
        })
        .await
        .expect("account is created");
}

/// `GET /api/v1/people` as `token` sees it: (username, display name) pairs.
async fn people(server: &TestServer, token: Option<&str>) -> (u16, Vec<(String, String)>) {
    let mut request = reqwest::Client::new().get(format!("{}/api/v1/people", server.url));
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.expect("a JSON body");
    let pairs = body
        .as_array()
        .map(|list| {
            list.iter()
                .map(|p| {
                    (
                        p["username"].as_str().unwrap_or("").to_owned(),
                        p["display_name"].as_str().unwrap_or("").to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    (status, pairs)
}

fn names(pairs: &[(String, String)]) -> Vec<&str> {
    pairs.iter().map(|(_, name)| name.as_str()).collect()
}

#[tokio::test]
async fn each_reader_gets_the_names_of_the_people_whose_work_they_see() {
    let server = TestServer::start().await;
    person(&server, "kimdoi.tv", "Nguyễn Văn Tới", Role::Volunteer, "QNA.TK.TT.KD").await;
    person(&server, "vinhbinh.tv", "Trần Thị Bình", Role::Volunteer, "QNA.TK.TT.VB").await;
    person(&server, "xa.tamthang", "Lê Thị Thu (cán bộ xã)", Role::CommuneStaff, HOME_UNIT).await;
    person(&server, "tinh.dv", "Phạm Văn Tỉnh", Role::ProvinceStaff, "QNA").await;
    person(&server, "dienphuoc.tv", "Võ Văn Phước", Role::Volunteer, "QNA.DB.DP").await;

    let (status, _) = people(&server, None).await;
    assert_eq!(status, 401, "names need a login");

    // A volunteer of Kim Đới: their village and the staff above it, not the next village.
    let volunteer = kheo_tests::Device::login(&server.url, "kimdoi.tv", "kimdoi.tv-secret-1").await.expect("login");
    let (status, seen) = people(&server, Some(&volunteer.token)).await;
    assert_eq!(status, 200);
    let seen = names(&seen);
    for name in ["Nguyễn Văn Tới", "Lê Thị Thu (cán bộ xã)", "Phạm Văn Tỉnh"] {
        assert!(seen.contains(&name), "{name} in {seen:?}");
    }
    for name in ["Trần Thị Bình", "Võ Văn Phước"] {
        assert!(!seen.contains(&name), "{name} is not the volunteer's to see: {seen:?}");
    }

    // Commune staff: every village of the commune, with the Vietnamese intact, not another commune.
    let staff = kheo_tests::Device::login(&server.url, "xa.tamthang", "xa.tamthang-secret-1").await.expect("login");
    let (_, seen) = people(&server, Some(&staff.token)).await;
    assert!(seen.contains(&("vinhbinh.tv".into(), "Trần Thị Bình".into())), "{seen:?}");
    assert!(seen.contains(&("kimdoi.tv".into(), "Nguyễn Văn Tới".into())), "{seen:?}");
    assert!(!names(&seen).contains(&"Võ Văn Phước"), "{seen:?}");

    // The province sees everyone.
    let province = kheo_tests::Device::login(&server.url, "tinh.dv", "tinh.dv-secret-1").await.expect("login");
    let (_, seen) = people(&server, Some(&province.token)).await;
    for name in ["Nguyễn Văn Tới", "Trần Thị Bình", "Võ Văn Phước", "Lê Thị Thu (cán bộ xã)"] {
        assert!(names(&seen).contains(&name), "{name} in {seen:?}");
    }
}

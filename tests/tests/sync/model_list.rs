//! The staff's model list (`GET /api/v1/models`): a province holds
//! thousands of models, so staff find one by name (without diacritics
//! too), by field, status and unit, see how many match, and page through.

use kheo_shared::codes::{Field, ModelStatus, ReviewState, Role};
use kheo_shared::ids::{ModelId, RecordId};
use kheo_shared::scalars::Timestamp;
use kheo_shared::testdata;
use kheo_tests::{Device, HOME_UNIT, TestServer};

async fn list(url: &str, token: &str, query: &[(&str, &str)]) -> (u16, serde_json::Value) {
    let response = reqwest::Client::new()
        .get(format!("{url}/api/v1/models"))
        .bearer_auth(token)
        .query(query)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON body"))
}

fn names(page: &serde_json::Value) -> Vec<&str> {
    page["models"].as_array().expect("models").iter().map(|m| m["name"].as_str().unwrap_or("")).collect()
}

/// A model named `name` in `unit`, written and synced by `staff`.
async fn model(staff: &mut Device, url: &str, name: &str, field: Field, recognised: bool, unit: &str) -> ModelId {
    let id = ModelId::new_random();
    let mut profile = testdata::model(id, unit);
    profile.name = name.into();
    profile.field = field;
    // Commune staff may set these two; typical is the province's decision.
    profile.status_years.typical = None;
    if recognised {
        profile.status = ModelStatus::Recognised;
    } else {
        profile.status = ModelStatus::Building;
        profile.status_years.recognised = None;
    }
    staff.put_model(&profile);
    staff.sync(url).await.expect("the model syncs");
    id
}

#[tokio::test]
async fn staff_find_models_by_name_field_status_and_unit_page_by_page() {
    let server = TestServer::start().await;
    let url = server.url.clone();
    let mut commune = server.device_as("ml-commune", Role::CommuneStaff, HOME_UNIT).await;
    let mut province = server.device_as("ml-province", Role::ProvinceStaff, "QNA").await;
    let patrol = model(&mut commune, &url, "Tổ tuần tra Kim Đới", Field::SecurityOrder, false, "QNA.TK.TT.KD").await;
    model(&mut commune, &url, "Hộ giúp hộ nghèo Tam Thăng", Field::PovertyReduction, true, HOME_UNIT).await;
    model(&mut commune, &url, "Tổ hợp tác nghệ đen", Field::EconomicDevelopment, true, HOME_UNIT).await;
    model(&mut province, &url, "Tổ tuần tra Điện Phước", Field::SecurityOrder, false, "QNA.DB.DP").await;

    // Records of the patrol team: two, one returned by the commune and not fixed yet.
    let mut records = Vec::new();
    for (i, state) in [ReviewState::New, ReviewState::Returned].into_iter().enumerate() {
        let mut r = testdata::any_record(RecordId::new_random(), "2026-03-02", i);
        r.review.state = state;
        if state == ReviewState::Returned {
            r.review.reviewer = Some(commune.name.clone());
            r.review.reviewed_at = Some(Timestamp(r.updated_at.millis()));
            r.review.comment = "Thiếu số người".into();
        }
        records.push(r);
    }
    for r in &records {
        commune.put_record(patrol, r);
    }
    commune.sync(&url).await.expect("the records sync");

    // Province staff see the whole province, by name.
    let (status, all) = list(&url, &province.token, &[]).await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(all["total"], 4, "{all}");
    assert_eq!(
        names(&all),
        ["Hộ giúp hộ nghèo Tam Thăng", "Tổ hợp tác nghệ đen", "Tổ tuần tra Điện Phước", "Tổ tuần tra Kim Đới"]
    );
    assert_eq!(all["by_field"]["security_order"], 2, "{all}");
    assert_eq!(all["by_status"]["recognised"], 2, "{all}");
    let kim_doi = &all["models"][3];
    assert_eq!((kim_doi["records"].clone(), kim_doi["returned"].clone()), (2.into(), 1.into()), "{kim_doi}");
    assert_eq!(kim_doi["unit_name"], "Thôn Kim Đới", "{kim_doi}");

    // Typed without diacritics, in any case.
    let (_, found) = list(&url, &province.token, &[("q", "TUAN TRA dien")]).await;
    assert_eq!(names(&found), ["Tổ tuần tra Điện Phước"]);
    let (_, found) = list(&url, &province.token, &[("q", "nghe den")]).await;
    assert_eq!(names(&found), ["Tổ hợp tác nghệ đen"]);

    // Filters combine; a district or commune takes what lies below it.
    let (_, found) = list(&url, &province.token, &[("field", "security_order"), ("unit", "QNA.TK")]).await;
    assert_eq!(names(&found), ["Tổ tuần tra Kim Đới"]);
    let (_, found) = list(&url, &province.token, &[("status", "recognised"), ("field", "")]).await;
    assert_eq!(found["total"], 2, "{found}");

    // Pages.
    let (_, second) = list(&url, &province.token, &[("per_page", "3"), ("page", "2")]).await;
    assert_eq!((second["total"].clone(), second["pages"].clone()), (4.into(), 2.into()));
    assert_eq!(names(&second), ["Tổ tuần tra Kim Đới"]);
    let (_, beyond) = list(&url, &province.token, &[("per_page", "3"), ("page", "9")]).await;
    assert_eq!(names(&beyond), Vec::<&str>::new());

    // Commune staff see their commune only.
    let (_, theirs) = list(&url, &commune.token, &[("q", "tuan tra")]).await;
    assert_eq!(names(&theirs), ["Tổ tuần tra Kim Đới"]);

    // Volunteers use the list on their phone; this one is for staff.
    let volunteer = server.device("ml-volunteer").await;
    let (status, body) = list(&url, &volunteer.token, &[]).await;
    assert_eq!((status, body["error"].clone()), (403, "forbidden".into()), "{body}");

    // Bad filters: a clear 400 each.
    for query in [
        [("field", "lava")],
        [("status", "asleep")],
        [("unit", "NOWHERE")],
        [("page", "0")],
        [("per_page", "1000")],
        [("page", "-1")],
    ] {
        let (status, body) = list(&url, &province.token, &query).await;
        assert_eq!((status, body["error"].clone()), (400, "bad_query".into()), "{query:?}: {body}");
    }
    let long = "a".repeat(101);
    let (status, _) = list(&url, &province.token, &[("q", long.as_str())]).await;
    assert_eq!(status, 400);
}

//! Who may do what: authentication on every endpoint, device tokens,
//! login throttling, bound actors, read scopes, and the write rules as a
//! matrix of role × action × in or out of scope.

use automerge::ActorId;
use kheo_shared::codes::{ModelStatus, ReviewState, Role};
use kheo_shared::ids::{DocId, ModelId, RecordId};
use kheo_shared::protocol::{LOGIN_PATH, LoginRequest};
use kheo_shared::record::Review;
use kheo_shared::scalars::Timestamp;
use kheo_shared::testdata;
use kheo_tests::{Device, HOME_UNIT, SyncFailure, TestServer};

const OTHER_UNIT: &str = "QNA.DB.DP";

async fn json_call(
    method: reqwest::Method,
    url: &str,
    token: Option<&str>,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let mut request = reqwest::Client::new().request(method, url);
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    if let Some(b) = body {
        request = request.json(&b);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let bytes = response.bytes().await.expect("body");
    (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
}

async fn import_csv(server: &TestServer, token: &str, csv: &'static str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/api/v1/admin/accounts/import", server.url))
        .bearer_auth(token)
        .body(csv)
        .send()
        .await
        .expect("request")
}

fn refused_with(outcome: Result<kheo_tests::Traffic, SyncFailure>, status: u16, rule: &str) {
    match outcome {
        Err(SyncFailure::Refused { status: s, body }) => {
            assert_eq!(s, status, "{body:?}");
            assert_eq!(body.rule.as_deref(), Some(rule), "{body:?}");
        }
        other => panic!("expected a {status} naming {rule}, got {other:?}"),
    }
}

#[tokio::test]
async fn no_endpoint_but_login_health_and_the_api_document_answers_without_a_token() {
    let server = TestServer::start().await;
    let routes = [
        ("POST", "/api/v1/sync"),
        ("GET", "/api/v1/me"),
        ("GET", "/api/v1/devices"),
        ("GET", "/api/v1/org"),
        ("POST", "/api/v1/devices/x/revoke"),
        ("GET", "/api/v1/admin/accounts"),
        ("POST", "/api/v1/admin/accounts"),
        ("POST", "/api/v1/admin/accounts/import"),
        ("PATCH", "/api/v1/admin/accounts/x"),
        ("GET", "/api/v1/admin/devices"),
        ("GET", "/api/v1/admin/quarantine"),
        ("GET", "/api/v1/admin/org"),
        ("PUT", "/api/v1/admin/org"),
    ];
    let well_formed_unknown = format!("kheo_{}", "A".repeat(43));
    for (method, path) in routes {
        let method: reqwest::Method = method.parse().unwrap();
        let url = format!("{}{path}", server.url);
        for token in [None, Some("garbage"), Some(well_formed_unknown.as_str())] {
            let (status, body) = json_call(method.clone(), &url, token, None).await;
            assert_eq!(status, 401, "{method} {path} with {token:?}");
            assert_eq!(body["error"], "unauthenticated", "{method} {path}");
        }
    }
    let (status, _) = json_call(reqwest::Method::GET, &format!("{}/healthz", server.url), None, None).await;
    assert_eq!(status, 200);
    let (status, document) =
        json_call(reqwest::Method::GET, &format!("{}/api/v1/openapi.json", server.url), None, None).await;
    assert_eq!(status, 200);
    assert!(document["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")), "{document}");
}

#[tokio::test]
async fn logins_are_checked_and_brute_force_is_throttled() {
    let server = TestServer::start().await;
    let _ = server.device("guarded").await;
    let url = format!("{}{LOGIN_PATH}", server.url);
    let attempt = |secret: &str| {
        let body = serde_json::to_value(LoginRequest {
            login: "guarded.test".into(),
            secret: secret.into(),
            device_label: String::new(),
        })
        .unwrap();
        json_call(reqwest::Method::POST, &url, None, Some(body))
    };
    let (status, body) = attempt("wrong-guess").await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_credentials")));
    for _ in 1..kheo_server::accounts::ACCOUNT_FAILURES {
        assert_eq!(attempt("wrong-guess").await.0, 401);
    }
    // Locked now, even with the right secret.
    let (status, body) = attempt("guarded-secret").await;
    assert_eq!((status, body["error"].as_str()), (429, Some("too_many_attempts")));
    // An unknown name answers exactly like a wrong secret.
    let body = serde_json::json!({ "login": "nobody.here", "secret": "whatever1" });
    let (status, unknown) = json_call(reqwest::Method::POST, &url, None, Some(body)).await;
    assert_eq!((status, unknown["error"].as_str()), (401, Some("invalid_credentials")));

    // Spraying many names from one address locks the address, for every account.
    let _ = server.device("innocent").await;
    for i in 0..kheo_server::accounts::ADDRESS_FAILURES {
        let body = serde_json::json!({ "login": format!("spray.{i}"), "secret": "guess-123" });
        json_call(reqwest::Method::POST, &url, None, Some(body)).await;
    }
    let body = serde_json::json!({ "login": "innocent.test", "secret": "innocent-secret" });
    let (status, locked) = json_call(reqwest::Method::POST, &url, None, Some(body)).await;
    assert_eq!((status, locked["error"].as_str()), (429, Some("too_many_attempts")));
}

#[tokio::test]
async fn revoked_tokens_and_disabled_accounts_stop_at_the_next_sync() {
    let mut server = TestServer::start().await;
    let model = server.model().await;
    let mut phone = server.device("owner").await;
    phone.put_record(model, &testdata::meeting(RecordId::new_random(), "2025-03-01", 5));
    phone.sync(&server.url).await.unwrap();
    // The owner signs the phone out from another device.
    let other = Device::login(&server.url, "owner.test", "owner-secret").await.unwrap();
    let revoke = format!("{}/api/v1/devices/{}/revoke", server.url, phone.device_id);
    let (status, _) = json_call(reqwest::Method::POST, &revoke, Some(&other.token), None).await;
    assert_eq!(status, 204);
    match phone.sync(&server.url).await {
        Err(SyncFailure::Refused { status: 401, body }) => assert_eq!(body.error, "token_revoked"),
        other => panic!("{other:?}"),
    }
    // Another user cannot revoke someone else's device; an admin can.
    let stranger = server.device("stranger").await;
    let revoke_other = format!("{}/api/v1/devices/{}/revoke", server.url, other.device_id);
    assert_eq!(json_call(reqwest::Method::POST, &revoke_other, Some(&stranger.token), None).await.0, 403);
    let admin = server.device_as("root", Role::Admin, "QNA").await;
    assert_eq!(json_call(reqwest::Method::POST, &revoke_other, Some(&admin.token), None).await.0, 204);

    // Disabling an account stops all its devices.
    let mut worker = server.device("worker").await;
    let me = json_call(reqwest::Method::GET, &format!("{}/api/v1/me", server.url), Some(&worker.token), None).await;
    let id = me.1["id"].as_str().unwrap().to_owned();
    let patch = format!("{}/api/v1/admin/accounts/{id}", server.url);
    let blank = serde_json::json!({"display_name": "   "});
    assert_eq!(json_call(reqwest::Method::PATCH, &patch, Some(&admin.token), Some(blank)).await.0, 400);
    let (status, body) =
        json_call(reqwest::Method::PATCH, &patch, Some(&admin.token), Some(serde_json::json!({"disabled": true})))
            .await;
    assert_eq!((status, body["disabled"].as_bool()), (200, Some(true)));
    match worker.sync(&server.url).await {
        Err(SyncFailure::Refused { status: 401, body }) => assert_eq!(body.error, "account_disabled"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn admin_endpoints_need_the_admin_role() {
    let server = TestServer::start().await;
    let admin = server.device_as("root", Role::Admin, "QNA").await;
    let others = [
        server.device_as("volunteer", Role::Volunteer, HOME_UNIT).await,
        server.device_as("commune", Role::CommuneStaff, HOME_UNIT).await,
        server.device_as("province", Role::ProvinceStaff, "QNA").await,
    ];
    // Every admin endpoint, every method: refused below admin before the body is read.
    let admin_routes = [
        ("GET", "/api/v1/admin/accounts"),
        ("POST", "/api/v1/admin/accounts"),
        ("POST", "/api/v1/admin/accounts/import"),
        ("PATCH", "/api/v1/admin/accounts/x"),
        ("GET", "/api/v1/admin/devices"),
        ("GET", "/api/v1/admin/quarantine"),
        ("GET", "/api/v1/admin/org"),
        ("PUT", "/api/v1/admin/org"),
    ];
    for (method, path) in admin_routes {
        let url = format!("{}{path}", server.url);
        for who in &others {
            let (status, body) = json_call(method.parse().unwrap(), &url, Some(&who.token), None).await;
            assert_eq!((status, body["rule"].as_str()), (403, Some("needs_role")), "{} {method} {path}", who.name);
        }
        if method == "GET" {
            assert_eq!(json_call(reqwest::Method::GET, &url, Some(&admin.token), None).await.0, 200, "{path}");
        }
    }
    // Creating accounts through the API, one and in bulk.
    let create = format!("{}/api/v1/admin/accounts", server.url);
    let new = serde_json::json!({
        "username": "new.volunteer", "display_name": "Tình nguyện viên mới", "role": "volunteer",
        "unit": "QNA.TK.TT.KD", "secret": "246810"
    });
    let (status, body) = json_call(reqwest::Method::POST, &create, Some(&admin.token), Some(new.clone())).await;
    assert_eq!((status, body["unit"].as_str()), (201, Some("QNA.TK.TT.KD")));
    assert_eq!(json_call(reqwest::Method::POST, &create, Some(&admin.token), Some(new)).await.0, 409);
    let csv = "username,phone,display_name,role,unit,secret\n\
               bulk.one,0905000001,Nguyễn Văn Một,volunteer,QNA.TK.TT,135790\n\
               bulk.two,,Trần Thị Hai,commune_staff,QNA.DB.DP,975310\n";
    let response = import_csv(&server, &admin.token, csv).await;
    assert_eq!(response.status().as_u16(), 200);
    let created: serde_json::Value = response.json().await.unwrap();
    assert_eq!(created.as_array().map(Vec::len), Some(2));
    assert_eq!(created[0]["display_name"], "Nguyễn Văn Một");
    // The phone number logs in too.
    Device::login(&server.url, "0905000001", "135790").await.unwrap();

    // A file with one bad row creates nothing, and says which line; a byte-order mark is fine.
    let bad = "\u{feff}username,phone,display_name,role,unit,secret\n\
               bulk.three,,Ba,volunteer,QNA.TK.TT,135790\n\
               bulk.four,12ab,Bốn,volunteer,QNA.TK.TT,135790\n";
    let response = import_csv(&server, &admin.token, bad).await;
    assert_eq!(response.status().as_u16(), 400);
    let error: serde_json::Value = response.json().await.unwrap();
    assert!(error["message"].as_str().unwrap().starts_with("line 3:"), "{error}");
    assert!(Device::login(&server.url, "bulk.three", "135790").await.is_err(), "nothing was created");

    // Everyone signed in reads the organisation tree.
    let volunteer = server.device("tree.reader").await;
    let (status, tree) =
        json_call(reqwest::Method::GET, &format!("{}/api/v1/org", server.url), Some(&volunteer.token), None).await;
    assert_eq!(status, 200);
    assert!(tree["units"].as_array().unwrap().iter().any(|u| u["name"] == "Thôn Kim Đới"));
}

#[tokio::test]
async fn a_model_must_belong_to_a_unit_of_the_tree() {
    let server = TestServer::start().await;
    let mut province = server.device_as("province", Role::ProvinceStaff, "QNA").await;
    let mut profile = testdata::model(ModelId::new_random(), "NOWHERE");
    profile.status = ModelStatus::Recognised;
    profile.status_years.typical = None;
    province.put_model(&profile);
    refused_with(province.sync(&server.url).await, 403, "unknown_unit");
}

#[tokio::test]
async fn a_change_under_another_actor_is_refused_and_quarantined() {
    let mut server = TestServer::start().await;
    let model = server.model().await;
    let mut forger = server.device("forger").await;
    // Same token, but the changes claim to be another device's.
    forger.replica = kheo_shared::client::Replica::new(ActorId::random());
    forger.put_record(model, &testdata::meeting(RecordId::new_random(), "2025-04-01", 9));
    refused_with(forger.sync(&server.url).await, 403, "foreign_actor");
    let admin = server.device_as("root", Role::Admin, "QNA").await;
    let (status, list) =
        json_call(reqwest::Method::GET, &format!("{}/api/v1/admin/quarantine", server.url), Some(&admin.token), None)
            .await;
    assert_eq!(status, 200);
    let entries = list.as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["rule"], "foreign_actor");
    assert!(entries[0]["bytes"].as_u64().unwrap() > 0, "the refused changes are kept");
}

/// The state every matrix case starts from: one model in the home commune
/// and one in another, each with a record, made by province staff.
struct World {
    server: TestServer,
    models: [ModelId; 2],
    records: [RecordId; 2],
    province: Device,
}

async fn world() -> World {
    let server = TestServer::start().await;
    let mut province = server.device_as("province", Role::ProvinceStaff, "QNA").await;
    let mut models = [ModelId::new_random(); 2];
    let mut records = [RecordId::new_random(); 2];
    for (i, unit) in [HOME_UNIT, OTHER_UNIT].into_iter().enumerate() {
        models[i] = ModelId::new_random();
        let mut profile = testdata::model(models[i], unit);
        profile.status = ModelStatus::Recognised;
        profile.status_years.typical = None;
        province.put_model(&profile);
        records[i] = RecordId::new_random();
        province.put_record(models[i], &testdata::patrol(records[i], "2025-05-05", 1));
    }
    province.sync(&server.url).await.unwrap();
    World { server, models, records, province }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Action {
    CreateRecord,
    EditRecord,
    Review,
    CreateModel,
    EditModel,
    MakeTypical,
}

/// Gives `device` the documents of model `i` as province staff holds them
/// (as if they had leaked), then performs the action on them.
fn act(world: &mut World, device: &mut Device, action: Action, i: usize) {
    let model = world.models[i];
    let log = DocId::log(model, 2025).unwrap();
    for id in [DocId::Model(model), log] {
        let (doc, _) = world.province.replica.export(&id).unwrap();
        let fresh = automerge::sync::State::new().encode();
        device.replica.import(id, &doc, &fresh).unwrap();
    }
    let unit = if i == 0 { HOME_UNIT } else { OTHER_UNIT };
    let current = || world.province.records(&log)[&world.records[i]].clone();
    match action {
        Action::CreateRecord => {
            device.put_record(model, &testdata::production(RecordId::new_random(), "2025-06-06", 1_000_000));
        }
        Action::EditRecord => {
            let mut r = current();
            r.note = format!("sửa bởi {}", device.name);
            device.put_record(model, &r);
        }
        Action::Review => {
            let mut r = current();
            r.review = Review {
                state: ReviewState::Approved,
                reviewer: Some(device.name.clone()),
                reviewed_at: Some(Timestamp(1_760_000_000_000)),
                comment: String::new(),
            };
            device.put_record(model, &r);
        }
        Action::CreateModel => {
            let mut p = testdata::model(ModelId::new_random(), unit);
            p.status = ModelStatus::Building;
            p.status_years = Default::default();
            p.status_years.building = Some(2025);
            device.put_model(&p);
        }
        Action::EditModel | Action::MakeTypical => {
            let doc = device.replica.doc(&DocId::Model(model)).unwrap();
            let mut p = kheo_shared::schema::read_model(doc, model).unwrap();
            if action == Action::EditModel {
                p.members += 1;
            } else {
                p.status = ModelStatus::Typical;
                p.status_years.typical = Some(2025);
            }
            device.put_model(&p);
        }
    }
}

#[tokio::test]
async fn write_rules_matrix_of_role_action_and_scope() {
    use Action::*;
    // (role, action, in scope?) -> None when allowed, Some(rule) when refused.
    let expected = |role: Role, action: Action, home: bool| -> Option<&'static str> {
        let staff = role >= Role::CommuneStaff;
        let province = role >= Role::ProvinceStaff;
        if !home && !province {
            // Scope is checked before the role's rights.
            return Some("out_of_scope");
        }
        match action {
            CreateRecord | EditRecord => None,
            Review if !staff => Some("review_needs_staff"),
            CreateModel | EditModel if !staff => Some("model_needs_staff"),
            MakeTypical if !staff => Some("model_needs_staff"),
            MakeTypical if !province => Some("status_needs_province"),
            _ => None,
        }
    };
    let mut world = world().await;
    let mut n = 0;
    for role in [Role::Volunteer, Role::CommuneStaff, Role::ProvinceStaff, Role::Admin] {
        let unit = if role >= Role::ProvinceStaff { "QNA" } else { HOME_UNIT };
        for action in [CreateRecord, EditRecord, Review, CreateModel, EditModel, MakeTypical] {
            for (i, home) in [(0, true), (1, false)] {
                n += 1;
                let mut device = world.server.device_as(&format!("m{n}"), role, unit).await;
                act(&mut world, &mut device, action, i);
                let outcome = device.sync_held(&world.server.url).await;
                match expected(role, action, home) {
                    None => assert!(outcome.is_ok(), "{role} {action:?} home={home}: {outcome:?}"),
                    Some(rule) => match outcome {
                        Err(SyncFailure::Refused { status: 403, body }) => {
                            assert_eq!(body.rule.as_deref(), Some(rule), "{role} {action:?} home={home}: {body:?}");
                        }
                        other => panic!("{role} {action:?} home={home}: expected {rule}, got {other:?}"),
                    },
                }
            }
        }
    }
    assert_eq!(n, 4 * 6 * 2);
}

#[tokio::test]
async fn reads_follow_the_scope_and_an_account_move() {
    let mut world = world().await;
    let url = world.server.url.clone();
    let mut volunteer = world.server.device("reader").await;
    volunteer.sync(&url).await.unwrap();
    let home_log = DocId::log(world.models[0], 2025).unwrap();
    let other_log = DocId::log(world.models[1], 2025).unwrap();
    assert_eq!(volunteer.records(&home_log).len(), 1, "sees its commune");
    assert!(volunteer.replica.doc(&other_log).is_none(), "does not see another commune");
    // Asking for an out-of-scope document by id is refused.
    let mut prober = world.server.device("prober").await;
    prober.replica.edit(other_log, Timestamp(1), |_| Ok::<(), std::convert::Infallible>(())).unwrap();
    refused_with(prober.sync_held(&url).await, 403, "out_of_scope");
    // Province staff see everything.
    let mut province = world.server.device_as("province2", Role::ProvinceStaff, "QNA").await;
    province.sync(&url).await.unwrap();
    assert_eq!(province.records(&other_log).len(), 1);

    // Moving the volunteer to Điện Phước moves what it receives.
    let admin = world.server.device_as("root", Role::Admin, "QNA").await;
    let me = json_call(reqwest::Method::GET, &format!("{url}/api/v1/me"), Some(&volunteer.token), None).await.1;
    let patch = format!("{url}/api/v1/admin/accounts/{}", me["id"].as_str().unwrap());
    let moved = serde_json::json!({ "unit": OTHER_UNIT });
    assert_eq!(json_call(reqwest::Method::PATCH, &patch, Some(&admin.token), Some(moved)).await.0, 200);
    let mut after_move = Device::login(&url, "reader.test", "reader-secret").await.unwrap();
    after_move.sync(&url).await.unwrap();
    assert_eq!(after_move.records(&other_log).len(), 1);
    assert!(after_move.replica.doc(&home_log).is_none());
    // The old phone still holds the old documents but may no longer sync them.
    refused_with(volunteer.sync(&url).await, 403, "out_of_scope");
    let _ = &mut world.province;
}

#[tokio::test]
async fn the_admin_command_sets_up_a_store_the_server_then_uses() {
    use kheo_server::admin_cli::{AdminCommand, run};
    let dir = tempfile::tempdir().unwrap();
    let config = kheo_server::Config::for_tests(dir.path().to_owned());
    // The tree goes in as JSON, comes out as CSV and goes back in from the CSV.
    let tree = dir.path().join("tree.json");
    std::fs::write(&tree, kheo_server::org::to_json(&kheo_server::org::demo()).unwrap()).unwrap();
    run(&config, AdminCommand::ImportOrg { json: tree }).await.unwrap();
    let csv_dir = dir.path().join("org-csv");
    run(&config, AdminCommand::ExportOrgCsv { dir: csv_dir.clone() }).await.unwrap();
    let units_csv = std::fs::read_to_string(csv_dir.join("units.csv")).unwrap();
    assert!(units_csv.contains("Thôn Kim Đới"), "diacritics intact");
    let (units, successions) = (csv_dir.join("units.csv"), csv_dir.join("successions.csv"));
    run(&config, AdminCommand::ImportOrgCsv { units, successions }).await.unwrap();
    let csv = dir.path().join("accounts.csv");
    std::fs::write(&csv, "username,phone,display_name,role,unit,secret\ncli.tv,,Tổ viên,volunteer,QNA.TK.TT,112233\n")
        .unwrap();
    run(&config, AdminCommand::ImportAccounts { csv }).await.unwrap();
    let create = AdminCommand::CreateAccount {
        username: "cli.admin".into(),
        display_name: "Quản trị".into(),
        role: Role::Admin,
        unit: "QNA".into(),
        secret: "admin-secret".into(),
        phone: None,
    };
    run(&config, create).await.unwrap();
    run(&config, AdminCommand::DisableAccount { username: "cli.tv".into() }).await.unwrap();
    let unknown_unit = AdminCommand::MoveAccount { username: "cli.admin".into(), unit: "NOWHERE".into() };
    assert!(run(&config, unknown_unit).await.is_err());

    let server = kheo_server::start(config.clone()).await.unwrap();
    let url = server.url();
    let admin = Device::login(&url, "cli.admin", "admin-secret").await.unwrap();
    assert!(matches!(Device::login(&url, "cli.tv", "112233").await, Err(SyncFailure::Refused { status: 401, .. })));
    server.stop().await.unwrap();
    run(&config, AdminCommand::RevokeDevice { device_id: admin.device_id.clone() }).await.unwrap();
    assert!(run(&config, AdminCommand::RevokeDevice { device_id: admin.device_id }).await.is_err(), "only once");
}

#[tokio::test]
async fn a_refused_document_stays_on_the_phone_and_the_rest_still_syncs() {
    let mut server = TestServer::start().await;
    let (reviewed, other) = (server.model().await, server.model().await);
    let mut phone = server.device("eager").await;
    let mut r = testdata::meeting(RecordId::new_random(), "2025-02-02", 4);
    r.review = Review {
        state: ReviewState::Approved,
        reviewer: Some("eager.test".into()),
        reviewed_at: Some(Timestamp(1_760_000_000_000)),
        comment: String::new(),
    };
    let refused_log = phone.put_record(reviewed, &r);
    let fine = testdata::meeting(RecordId::new_random(), "2025-02-03", 6);
    let fine_log = phone.put_record(other, &fine);
    refused_with(phone.sync(&server.url).await, 403, "review_needs_staff");
    // The next attempt leaves the refused document out and syncs the other.
    phone.sync(&server.url).await.unwrap();
    let rejections = phone.replica.rejections();
    assert_eq!(rejections[&refused_log].rule.as_deref(), Some("review_needs_staff"));
    assert!(phone.records(&refused_log).contains_key(&r.id), "kept on the phone");
    let mut reader = server.device("reader").await;
    reader.sync(&server.url).await.unwrap();
    assert!(reader.records(&fine_log).contains_key(&fine.id));
    assert!(reader.replica.doc(&refused_log).is_none());
}

#[tokio::test]
async fn the_login_answer_carries_a_token_and_is_never_cached() {
    let server = TestServer::start().await;
    server.account("nostore", Role::Volunteer, HOME_UNIT).await;
    let http = reqwest::Client::new();
    let login = |secret: &str| LoginRequest {
        login: "nostore.test".into(),
        secret: secret.into(),
        device_label: "test phone".into(),
    };
    let ok = http.post(format!("{}{LOGIN_PATH}", server.url)).json(&login("nostore-secret")).send().await.unwrap();
    assert_eq!(ok.status().as_u16(), 200);
    assert_eq!(ok.headers()[reqwest::header::CACHE_CONTROL], "no-store");
    let refused = http.post(format!("{}{LOGIN_PATH}", server.url)).json(&login("wrong-secret")).send().await.unwrap();
    assert_eq!(refused.status().as_u16(), 401);
    assert_eq!(refused.headers()[reqwest::header::CACHE_CONTROL], "no-store");
}

/// An admin cannot disable itself or give up the role when no other enabled
/// admin would remain: nobody could administer the server any more.
#[tokio::test]
async fn the_last_enabled_admin_cannot_be_disabled_or_demoted() {
    let server = TestServer::start().await;
    let first = server.device_as("root", Role::Admin, "QNA").await;
    let patch = |token: &str, id: &str, body: serde_json::Value| {
        let (url, token) = (format!("{}/api/v1/admin/accounts/{id}", server.url), token.to_owned());
        async move { json_call(reqwest::Method::PATCH, &url, Some(&token), Some(body)).await }
    };
    let me = |token: &str| {
        let (url, token) = (format!("{}/api/v1/me", server.url), token.to_owned());
        async move { json_call(reqwest::Method::GET, &url, Some(&token), None).await.1["id"].as_str().unwrap().to_owned() }
    };
    let first_id = me(&first.token).await;
    for change in [
        serde_json::json!({"disabled": true}),
        serde_json::json!({"role": "province_staff"}),
        serde_json::json!({"role": "volunteer", "disabled": true}),
    ] {
        let (status, body) = patch(&first.token, &first_id, change.clone()).await;
        assert_eq!((status, body["error"].as_str()), (409, Some("last_admin")), "{change}: {body}");
    }
    // Other changes to the last admin still go through, and it is unchanged by the refusals.
    let (status, body) = patch(&first.token, &first_id, serde_json::json!({"display_name": "Quản trị"})).await;
    assert_eq!((status, body["role"].as_str(), body["disabled"].as_bool()), (200, Some("admin"), Some(false)));
    assert_eq!(patch(&first.token, &first_id, serde_json::json!({"role": "admin"})).await.0, 200);

    // With a second admin, the first may step down; then the second is the last.
    let second = server.device_as("root2", Role::Admin, "QNA").await;
    let second_id = me(&second.token).await;
    assert_eq!(patch(&first.token, &first_id, serde_json::json!({"role": "province_staff"})).await.0, 200);
    let (status, body) = patch(&second.token, &second_id, serde_json::json!({"disabled": true})).await;
    assert_eq!((status, body["error"].as_str()), (409, Some("last_admin")), "{body}");
    // A disabled admin does not count as one.
    assert_eq!(patch(&second.token, &first_id, serde_json::json!({"role": "admin", "disabled": true})).await.0, 200);
    let (status, body) = patch(&second.token, &second_id, serde_json::json!({"role": "commune_staff"})).await;
    assert_eq!((status, body["error"].as_str()), (409, Some("last_admin")), "{body}");
    // Enabled again, the first lets the second go.
    assert_eq!(patch(&second.token, &first_id, serde_json::json!({"disabled": false})).await.0, 200);
    assert_eq!(patch(&second.token, &second_id, serde_json::json!({"disabled": true})).await.0, 200);
}

#[tokio::test]
async fn the_admin_command_keeps_an_enabled_admin_too() {
    use kheo_server::admin_cli::{AdminCommand, run};
    let dir = tempfile::tempdir().unwrap();
    let config = kheo_server::Config::for_tests(dir.path().to_owned());
    let tree = dir.path().join("tree.json");
    std::fs::write(&tree, kheo_server::org::to_json(&kheo_server::org::demo()).unwrap()).unwrap();
    run(&config, AdminCommand::ImportOrg { json: tree }).await.unwrap();
    let admin = |username: &str| AdminCommand::CreateAccount {
        username: username.into(),
        display_name: "Quản trị".into(),
        role: Role::Admin,
        unit: "QNA".into(),
        secret: "admin-secret".into(),
        phone: None,
    };
    run(&config, admin("only.admin")).await.unwrap();
    let err = run(&config, AdminCommand::DisableAccount { username: "only.admin".into() }).await.unwrap_err();
    assert!(err.to_string().contains("last enabled admin"), "{err}");
    // Moving the last admin is not a demotion.
    run(&config, AdminCommand::MoveAccount { username: "only.admin".into(), unit: "QNA.TK".into() }).await.unwrap();
    run(&config, admin("other.admin")).await.unwrap();
    run(&config, AdminCommand::DisableAccount { username: "only.admin".into() }).await.unwrap();
    assert!(run(&config, AdminCommand::DisableAccount { username: "other.admin".into() }).await.is_err());
}

#[tokio::test]
async fn a_login_the_throttle_cannot_count_is_refused_unchecked() {
    let server = TestServer::start().await;
    let (name, secret) = server.account("closed", Role::Volunteer, HOME_UNIT).await;
    // The failed-login windows break: on SQLite a file beside the store, on
    // PostgreSQL a table of the store's database.
    sqlx::any::install_default_drivers();
    let url = match &server.database {
        Some(db) => db.url.clone(),
        None => format!("sqlite://{}", server.dir.path().join("logins.sqlite3").display()),
    };
    let windows = sqlx::AnyPool::connect(&url).await.expect("the windows' database opens");
    sqlx::query("DROP TABLE login_failures").execute(&windows).await.expect("the table goes");
    windows.close().await;

    let url = format!("{}{LOGIN_PATH}", server.url);
    for secret in ["wrong-guess", secret.as_str()] {
        let body = serde_json::json!({ "login": name, "secret": secret });
        let (status, body) = json_call(reqwest::Method::POST, &url, None, Some(body)).await;
        assert_eq!((status, body["error"].as_str()), (503, Some("unavailable")), "{body}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    }
}

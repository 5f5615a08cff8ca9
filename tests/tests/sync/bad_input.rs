//! Every kind of bad input gets a clear 4xx with a JSON error body and
//! leaves the store exactly as it was.

use automerge::transaction::Transactable;
use kheo_shared::codes::Role;
use kheo_shared::ids::{DocId, RecordId};
use kheo_shared::protocol::{self, DocMessage, ErrorBody, MAX_BODY_BYTES, SyncRequest};
use kheo_shared::testdata;
use kheo_tests::{HOME_UNIT, SyncFailure, TestServer, post_raw};

use crate::{new_model, records};

/// A server that already holds some data, so "unchanged" means something.
async fn server_with_data() -> TestServer {
    let mut server = TestServer::start().await;
    let model = server.model().await;
    let mut phone = server.device("seed").await;
    for r in records(2025, 5) {
        phone.put_record(model, &r);
    }
    phone.sync(&server.url).await.unwrap();
    server
}

async fn expect_refusal(server: &TestServer, body: Vec<u8>, status: u16, code: &str) -> ErrorBody {
    expect_refusal_as(server, server.staff_token(), body, status, code).await
}

async fn expect_refusal_as(server: &TestServer, token: &str, body: Vec<u8>, status: u16, code: &str) -> ErrorBody {
    let before = server.store_fingerprint().await;
    let response = post_raw(&reqwest::Client::new(), &server.url, token, body).await.unwrap();
    assert_eq!(response.status().as_u16(), status);
    let content_type = response.headers()[reqwest::header::CONTENT_TYPE].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("application/json"), "{content_type}");
    let error: ErrorBody = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    assert_eq!(error.error, code, "{error:?}");
    assert!(!error.message.is_empty());
    assert_eq!(server.store_fingerprint().await, before, "store unchanged after {code}");
    error
}

/// A valid first sync message from a device that holds nothing.
fn empty_doc_message() -> Vec<u8> {
    use automerge::sync::SyncDoc;
    let doc = automerge::Automerge::new();
    doc.generate_sync_message(&mut automerge::sync::State::new()).expect("a first message").encode()
}

fn request_with(id: &str, msg: Vec<u8>) -> Vec<u8> {
    let mut m = DocMessage::new(DocId::Model(new_model()), msg);
    m.id = id.to_owned();
    protocol::encode(&SyncRequest { v: 1, docs: vec![m], full: false, held: Vec::new(), quiet: None, keep: None })
}

#[tokio::test]
async fn truncated_body_is_refused() {
    let server = server_with_data().await;
    let mut body =
        protocol::encode(&SyncRequest { v: 1, docs: vec![], full: true, held: Vec::new(), quiet: None, keep: None });
    body.truncate(body.len() - 6);
    expect_refusal(&server, body, 400, "malformed_body").await;
}

#[tokio::test]
async fn non_cbor_and_non_gzip_bodies_are_refused() {
    let server = server_with_data().await;
    expect_refusal(&server, protocol::gzip(b"{\"json\": true}"), 400, "malformed_body").await;
    expect_refusal(&server, b"plain bytes".to_vec(), 400, "malformed_body").await;
}

#[tokio::test]
async fn garbage_automerge_message_is_refused() {
    let server = server_with_data().await;
    let id = DocId::Model(new_model()).to_string();
    let err =
        expect_refusal(&server, request_with(&id, vec![0x42, 0xde, 0xad, 0xbe, 0xef]), 400, "bad_sync_message").await;
    assert_eq!(err.doc.as_deref(), Some(id.as_str()));
}

#[tokio::test]
async fn malformed_document_id_is_refused() {
    let server = server_with_data().await;
    let msg = empty_doc_message();
    for id in ["model/not-a-uuid", "../etc/passwd", "log/0b6f2c1e-8a4d-4c1b-9a57-3f1e2d4c5b6a/1800"] {
        expect_refusal(&server, request_with(id, msg.clone()), 400, "bad_document_id").await;
    }
}

#[tokio::test]
async fn oversized_bodies_are_refused_with_413() {
    let server = server_with_data().await;
    expect_refusal(&server, vec![0u8; MAX_BODY_BYTES + 1], 413, "body_too_large").await;
    // Small on the wire, huge once inflated.
    let bomb = protocol::gzip(&vec![0u8; protocol::MAX_INFLATED_BYTES + 10]);
    expect_refusal(&server, bomb, 413, "body_too_large").await;
}

#[tokio::test]
async fn duplicate_documents_and_unknown_versions_are_refused() {
    let server = server_with_data().await;
    let id = DocId::Model(new_model());
    let msg = empty_doc_message();
    let dup = SyncRequest {
        v: 1,
        docs: vec![DocMessage::new(id, msg.clone()), DocMessage::new(id, msg)],
        full: false,
        held: Vec::new(),
        quiet: None,
        keep: None,
    };
    expect_refusal(&server, protocol::encode(&dup), 400, "duplicate_document").await;
    let future = SyncRequest { v: 99, docs: vec![], full: false, held: Vec::new(), quiet: None, keep: None };
    expect_refusal(&server, protocol::encode(&future), 400, "unsupported_version").await;
}

#[tokio::test]
async fn wrong_headers_are_refused() {
    let server = server_with_data().await;
    let before = server.store_fingerprint().await;
    let body =
        protocol::encode(&SyncRequest { v: 1, docs: vec![], full: true, held: Vec::new(), quiet: None, keep: None });
    let http = reqwest::Client::new();
    let url = format!("{}{}", server.url, protocol::SYNC_PATH);
    let no_token = http
        .post(&url)
        .header("content-type", "application/cbor")
        .header("content-encoding", "gzip")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(no_token.status().as_u16(), 401);
    let json = http
        .post(&url)
        .bearer_auth(server.staff_token())
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(json.status().as_u16(), 415);
    let err: ErrorBody = serde_json::from_slice(&json.bytes().await.unwrap()).unwrap();
    assert_eq!(err.error, "unsupported_media_type");
    assert_eq!(server.store_fingerprint().await, before);
}

#[tokio::test]
async fn a_document_that_breaks_the_schema_rejects_the_whole_request() {
    let server = server_with_data().await;
    let mut phone = server.device_as("careless", Role::CommuneStaff, HOME_UNIT).await;
    // A valid new model document and an invalid log in the same request.
    let model = new_model();
    let mut profile = testdata::model(model, HOME_UNIT);
    profile.status = kheo_shared::codes::ModelStatus::Recognised;
    profile.status_years.typical = None;
    phone.put_model(&profile);
    let record = testdata::meeting(RecordId::new_random(), "2025-02-02", 12);
    let log = phone.put_record(model, &record);
    phone
        .replica
        .edit(log, kheo_shared::scalars::Timestamp(1), |doc| {
            let (_, rec) = automerge::ReadDoc::get(doc, automerge::ROOT, record.id.to_string())?.expect("record");
            let (_, meeting) = automerge::ReadDoc::get(doc, &rec, "meeting")?.expect("detail");
            doc.put(&meeting, "attendees", "mười hai")
        })
        .unwrap();
    let before = server.store_fingerprint().await;
    let failure = phone.sync(&server.url).await.unwrap_err();
    let SyncFailure::Refused { status, body } = failure else { panic!("{failure}") };
    assert_eq!(status, 422);
    assert_eq!(body.error, "schema_violation");
    assert_eq!(body.doc.as_deref(), Some(log.to_string().as_str()));
    assert_eq!(body.path, Some(format!("{}/meeting/attendees", record.id)));
    assert_eq!(server.store_fingerprint().await, before, "nothing of the request was kept");
}

#[tokio::test]
async fn removing_a_record_instead_of_marking_it_deleted_is_refused() {
    let mut server = server_with_data().await;
    let model = server.model().await;
    let mut phone = server.device("eraser").await;
    let record = testdata::patrol(RecordId::new_random(), "2025-02-02", 1);
    let log = phone.put_record(model, &record);
    phone.sync(&server.url).await.unwrap();
    phone
        .replica
        .edit(log, kheo_shared::scalars::Timestamp(2), |doc| doc.delete(automerge::ROOT, record.id.to_string()))
        .unwrap();
    let before = server.store_fingerprint().await;
    let SyncFailure::Refused { status, body } = phone.sync(&server.url).await.unwrap_err() else { panic!() };
    assert_eq!((status, body.error.as_str()), (422, "schema_violation"));
    assert_eq!(server.store_fingerprint().await, before);
}

#[tokio::test]
async fn bytes_after_the_cbor_message_are_refused() {
    let server = server_with_data().await;
    let http = reqwest::Client::new();
    // A request that changes the store when accepted: a new model, in the
    // second round of its session (the first only exchanges heads).
    let mut phone = server.device_as("trailing", Role::CommuneStaff, HOME_UNIT).await;
    let mut profile = testdata::model(new_model(), HOME_UNIT);
    profile.status = kheo_shared::codes::ModelStatus::Recognised;
    profile.status_years.typical = None;
    phone.put_model(&profile);
    phone.replica.start_session();
    let first = protocol::encode(&phone.replica.request(true));
    let reply = post_raw(&http, &server.url, &phone.token, first).await.unwrap();
    assert_eq!(reply.status().as_u16(), 200);
    phone.replica.receive(protocol::decode(&reply.bytes().await.unwrap()).unwrap()).unwrap();
    let request = phone.replica.request(false);
    assert!(!request.docs.is_empty());
    let cbor = protocol::gunzip(&protocol::encode(&request), protocol::MAX_INFLATED_BYTES).unwrap();
    let second = protocol::gunzip(
        &protocol::encode(&SyncRequest { v: 1, docs: vec![], full: false, held: Vec::new(), quiet: None, keep: None }),
        protocol::MAX_INFLATED_BYTES,
    )
    .unwrap();
    for tail in [second.as_slice(), &[0u8][..], b"\xff trailing junk"] {
        let mut body = cbor.clone();
        body.extend_from_slice(tail);
        let err = expect_refusal_as(&server, &phone.token, protocol::gzip(&body), 400, "malformed_body").await;
        assert!(err.message.contains("after its CBOR message"), "{err:?}");
    }
    // The same request without the tail is accepted, and changes the store.
    let before = server.store_fingerprint().await;
    let response = post_raw(&http, &server.url, &phone.token, protocol::gzip(&cbor)).await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_ne!(server.store_fingerprint().await, before);
}

/// Query strings, path segments and methods a route does not take get the
/// JSON error body, like every other refusal, never axum's plain text.
#[tokio::test]
async fn query_path_and_method_refusals_are_json() {
    let server = server_with_data().await;
    let admin = server.device_as("admin", Role::Admin, "QNA").await;
    let http = reqwest::Client::new();
    let cases: [(reqwest::Method, &str, u16, &str); 19] = [
        (reqwest::Method::GET, "/api/v1/reports/rollup", 400, "bad_query"),
        (reqwest::Method::GET, "/api/v1/reports/rollup?from=2025-01-01", 400, "bad_query"),
        (reqwest::Method::GET, "/api/v1/reports/rollup?from=2025-13-01&to=2025-12-31", 400, "bad_query"),
        (reqwest::Method::GET, "/api/v1/reports/rollup?from=2025-01-01&to=2025-12-31&group=galaxy", 400, "bad_query"),
        (reqwest::Method::GET, "/api/v1/reports/rollup?from=2025-01-01&to=2025-12-31&approved=maybe", 400, "bad_query"),
        (reqwest::Method::GET, "/api/v1/reports/rollup?from=2025-01-01&to=2025-12-31&format=pdf", 400, "bad_query"),
        (reqwest::Method::GET, "/api/v1/reports/records?from=x&to=y", 400, "bad_query"),
        (reqwest::Method::GET, "/api/v1/reports/targets", 400, "bad_query"),
        (reqwest::Method::GET, "/api/v1/reports/targets?year=twenty", 400, "bad_query"),
        (reqwest::Method::GET, "/api/v1/reports/charts/records.svg?from=2025-01-01", 400, "bad_query"),
        (reqwest::Method::GET, "/api/v1/reports/charts/targets.svg?year=1e9", 400, "bad_query"),
        (reqwest::Method::GET, "/api/v1/review/queue?from=2025-02-30&to=2025-03-01", 400, "bad_query"),
        (reqwest::Method::GET, "/api/v1/review/queue?limit=0", 400, "bad_query"),
        (reqwest::Method::GET, "/api/v1/review/queue?limit=1001", 400, "bad_query"),
        (reqwest::Method::GET, "/api/v1/reports/replications/%FF", 400, "bad_path"),
        (reqwest::Method::PATCH, "/api/v1/admin/accounts/%C3%28", 400, "bad_path"),
        (reqwest::Method::GET, "/api/v1/login", 405, "method_not_allowed"),
        (reqwest::Method::DELETE, "/api/v1/admin/accounts", 405, "method_not_allowed"),
        (reqwest::Method::GET, "/api/v1/sync", 405, "method_not_allowed"),
    ];
    for (method, path, status, code) in cases {
        let response = http.request(method.clone(), format!("{}{path}", server.url)).bearer_auth(&admin.token);
        let response = response.send().await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{method} {path}");
        let content_type = response.headers()[reqwest::header::CONTENT_TYPE].to_str().unwrap().to_owned();
        assert!(content_type.starts_with("application/json"), "{method} {path}: {content_type}");
        if status == 405 {
            assert!(response.headers().contains_key(reqwest::header::ALLOW), "{method} {path}");
        }
        let error: ErrorBody = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
        assert_eq!(error.error, code, "{method} {path}: {error:?}");
        assert!(!error.message.is_empty());
    }
    // The same endpoints, asked properly.
    let ok = http
        .get(format!("{}/api/v1/reports/rollup?from=2025-01-01&to=2025-12-31&group=commune", server.url))
        .bearer_auth(&admin.token)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status().as_u16(), 200);
}

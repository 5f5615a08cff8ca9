//! Hostile input from a signed-in phone, one test per class of attack:
//! each gets a JSON 4xx, leaves the store unchanged, leaves the server
//! answering, and leaves every document loadable by a new device.

use std::io::Write;
use std::time::{Duration, Instant};

use automerge::sync::{Message, MessageVersion};
use automerge::{ActorId, AutoCommit, Change, ChangeHash, ExpandedChange};
use kheo_shared::ids::DocId;
use kheo_shared::protocol::{self, DocMessage, ErrorBody, SyncRequest};
use kheo_tests::{Device, TestServer, post_raw};
use sha2::{Digest, Sha256};

use crate::records;

fn uleb(out: &mut Vec<u8>, n: u64) {
    let _ = leb128::write::unsigned(out, n);
}

fn request(log: DocId, msg: Vec<u8>) -> Vec<u8> {
    protocol::encode(&SyncRequest {
        v: 1,
        docs: vec![DocMessage::new(log, msg)],
        full: false,
        held: Vec::new(),
        quiet: None,
        keep: None,
    })
}

fn message(heads: Vec<ChangeHash>, changes: Vec<Vec<u8>>) -> Vec<u8> {
    Message { heads, need: vec![], have: vec![], changes: changes.into(), flags: None, version: MessageVersion::V1 }
        .encode()
}

/// A server holding one synced log, and the phone that wrote it.
async fn server_with_log() -> (TestServer, Device, DocId) {
    let mut server = TestServer::start().await;
    let model = server.model().await;
    let mut phone = server.device("phone").await;
    let mut log = None;
    for r in records(2025, 3) {
        log = Some(phone.put_record(model, &r));
    }
    phone.sync(&server.url).await.unwrap();
    (server, phone, log.unwrap())
}

/// Posts `body` as `phone` and checks the refusal: status, JSON code, the
/// store unchanged, the server still quick to answer.
async fn refused(server: &TestServer, phone: &Device, body: Vec<u8>, status: u16, code: &str) -> ErrorBody {
    let before = server.store_fingerprint().await;
    let http = reqwest::Client::new();
    let response = post_raw(&http, &server.url, &phone.token, body).await.unwrap();
    assert_eq!(response.status().as_u16(), status);
    let error: ErrorBody = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    assert_eq!(error.error, code, "{error:?}");
    assert_eq!(server.store_fingerprint().await, before, "store unchanged after {code}");
    let started = Instant::now();
    let health = http.get(format!("{}/healthz", server.url)).send().await.unwrap();
    assert!(health.status().is_success());
    assert!(started.elapsed() < Duration::from_millis(100), "healthz took {:?}", started.elapsed());
    error
}

/// A device that never saw the log receives it whole and can load it.
async fn loads_on_a_new_device(server: &TestServer, log: &DocId, records: usize) {
    let mut fresh = server.device(&format!("fresh{}", rand::random::<u32>())).await;
    fresh.sync(&server.url).await.unwrap();
    let mut doc = fresh.replica.doc(log).expect("the log reached the new device").clone();
    let reloaded = AutoCommit::load(&doc.save()).expect("the log loads");
    assert_eq!(kheo_shared::schema::read_log(&reloaded, log).unwrap().records.len(), records);
}

/// A local change of `phone` to `log`, not yet sent.
fn next_change(phone: &mut Device, server_heads: &[ChangeHash], log: DocId) -> Change {
    let model = log.model();
    phone.put_record(model, &records(2025, 1).remove(0));
    let mut doc = phone.replica.doc(&log).unwrap().clone();
    doc.get_changes(server_heads).last().cloned().unwrap()
}

#[tokio::test]
async fn bloom_filter_parameters_chosen_by_the_client_are_refused() {
    let (server, phone, log) = server_with_log().await;
    // One entry, 10 bits per entry, 2^32 - 1 probes: Automerge would reserve 16 GiB.
    let mut bloom = vec![1, 10];
    uleb(&mut bloom, u32::MAX as u64);
    bloom.extend([0, 0]);
    let mut msg = vec![0x42, 0, 0, 1, 0];
    uleb(&mut msg, bloom.len() as u64);
    msg.extend(&bloom);
    msg.push(0);
    refused(&server, &phone, request(log, msg), 400, "bad_sync_message").await;
    // Zero bits per entry: Automerge would divide by zero.
    let msg = vec![0x42, 0, 0, 1, 0, 3, 5, 0, 7, 0];
    refused(&server, &phone, request(log, msg), 400, "bad_sync_message").await;
    loads_on_a_new_device(&server, &log, 3).await;
}

#[tokio::test]
async fn a_compression_bomb_inside_a_change_is_refused() {
    let (server, mut phone, log) = server_with_log().await;
    let heads = phone.replica.heads(&log);
    let change = next_change(&mut phone, &heads, log);
    let raw = change.raw_bytes();
    // The body behind the header (magic, checksum, type, length), padded
    // with 64 MiB of extra bytes that deflate to almost nothing.
    let mut r = &raw[9..];
    let len = leb128::read::unsigned(&mut r).unwrap() as usize;
    let mut body = r[..len].to_vec();
    body.extend(vec![0u8; 64 << 20]);
    let mut deflate = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    deflate.write_all(&body).unwrap();
    let deflated = deflate.finish().unwrap();
    let mut header = vec![1];
    uleb(&mut header, body.len() as u64);
    let hash: [u8; 32] = Sha256::new().chain_update(&header).chain_update(&body).finalize().into();
    let mut chunk = vec![0x85, 0x6f, 0x4a, 0x83];
    chunk.extend(&hash[..4]);
    chunk.push(2);
    uleb(&mut chunk, deflated.len() as u64);
    chunk.extend(deflated);
    assert!(chunk.len() < 128 << 10);
    let err =
        refused(&server, &phone, request(log, message(vec![ChangeHash(hash)], vec![chunk])), 400, "bad_change").await;
    assert!(err.message.contains("inflates past"), "{}", err.message);
    loads_on_a_new_device(&server, &log, 3).await;
}

#[tokio::test]
async fn a_change_that_would_break_the_document_is_refused() {
    let (server, mut phone, log) = server_with_log().await;
    let heads = phone.replica.heads(&log);
    let change = next_change(&mut phone, &heads, log);
    // Name a predecessor operation that exists nowhere.
    let mut expanded: ExpandedChange = change.decode();
    let ghost = automerge::legacy::OpId(9_999, ActorId::random());
    let op = expanded.operations.iter_mut().find(|op| !op.insert).expect("an op that is not an insert");
    let mut pred: Vec<_> = op.pred.iter().cloned().collect();
    pred.push(ghost);
    op.pred = pred.into();
    expanded.hash = None;
    let forged = Change::from(expanded);
    let body = request(log, message(vec![forged.hash()], vec![forged.raw_bytes().to_vec()]));
    refused(&server, &phone, body, 400, "bad_change").await;
    loads_on_a_new_device(&server, &log, 3).await;
    // The honest device syncs on as before.
    let mut honest = server.device("honest").await;
    honest.sync(&server.url).await.unwrap();
    let mut later = records(2025, 1);
    honest.put_record(log.model(), &later.remove(0));
    honest.sync(&server.url).await.unwrap();
    loads_on_a_new_device(&server, &log, 4).await;
}

#[tokio::test]
async fn a_waiting_change_does_not_lend_its_actor_to_other_devices() {
    let (server, mut victim, log) = server_with_log().await;
    let heads = victim.replica.heads(&log);
    // The victim's two changes; the second alone reaches the server and waits.
    let first = next_change(&mut victim, &heads, log);
    let second = next_change(&mut victim, &[first.hash()], log);
    let http = reqwest::Client::new();
    let body = request(log, message(vec![second.hash()], vec![second.raw_bytes().to_vec()]));
    assert!(post_raw(&http, &server.url, &victim.token, body).await.unwrap().status().is_success());

    // Another volunteer forges a change under the victim's actor.
    let mut attacker = server.device("attacker").await;
    attacker.sync(&server.url).await.unwrap();
    let mut forged_doc = attacker.replica.doc(&log).unwrap().clone().with_actor(victim.replica.actor().clone());
    let before = forged_doc.get_heads();
    {
        use automerge::transaction::Transactable;
        forged_doc.put(automerge::ROOT, "forged", "yes").unwrap();
    }
    forged_doc.commit();
    let forged = forged_doc.get_changes(&before).remove(0);
    let body = request(log, message(vec![forged.hash()], vec![forged.raw_bytes().to_vec()]));
    let err = refused(&server, &attacker, body, 403, "forbidden").await;
    assert_eq!(err.rule.as_deref(), Some("foreign_actor"));

    // The victim's session completes: both its changes land.
    victim.sync(&server.url).await.unwrap();
    loads_on_a_new_device(&server, &log, 5).await;
}

#[tokio::test]
async fn waiting_changes_are_bounded_per_device() {
    let (server, mut phone, log) = server_with_log().await;
    let heads = phone.replica.heads(&log);
    let mut chain = vec![next_change(&mut phone, &heads, log)];
    for _ in 0..300 {
        let last = chain.last().unwrap().hash();
        chain.push(next_change(&mut phone, &[last], log));
    }
    // Everything but the first: every change waits for it.
    let waiting: Vec<Vec<u8>> = chain[1..].iter().map(|c| c.raw_bytes().to_vec()).collect();
    let body = request(log, message(vec![chain.last().unwrap().hash()], waiting));
    let err = refused(&server, &phone, body, 413, "over_budget").await;
    assert!(err.message.contains("wait"), "{}", err.message);
    // The honest path still works: a whole session sends them in order.
    phone.sync(&server.url).await.unwrap();
    loads_on_a_new_device(&server, &log, 304).await;
}

#[tokio::test]
async fn a_phone_with_more_changes_than_one_request_takes_syncs_over_several() {
    let mut server = TestServer::start().await;
    let model = server.model().await;
    let mut phone = server.device("phone").await;
    let n = protocol::MAX_CHANGES_PER_REQUEST + 300;
    let mut log = None;
    for r in records(2025, n) {
        log = Some(phone.put_record(model, &r));
    }
    let traffic = phone.sync(&server.url).await.unwrap();
    assert!(traffic.converged, "{traffic:?}");
    assert!(traffic.round_trips >= 3, "{traffic:?}");
    loads_on_a_new_device(&server, &log.unwrap(), n).await;
}

#[tokio::test]
async fn a_held_list_of_millions_is_refused_while_it_is_decoded() {
    let (server, phone, log) = server_with_log().await;
    // 32 million empty strings: 32 MiB of CBOR, about 32 KB gzip'd, and
    // 768 MiB as a list of Rust strings had it been decoded whole.
    let n: u64 = 32 * 1024 * 1024 - 64;
    let mut cbor = vec![0xa4, 0x61, b'v', 0x01, 0x64, b'd', b'o', b'c', b's', 0x80];
    // "full": true, "held": an array with an 8-byte length.
    cbor.extend([0x64, b'f', b'u', b'l', b'l', 0xf5, 0x64, b'h', b'e', b'l', b'd', 0x9b]);
    cbor.extend(n.to_be_bytes());
    cbor.extend(std::iter::repeat_n(0x60u8, n as usize));
    let body = protocol::gzip(&cbor);
    assert!(body.len() < 64 << 10, "{} bytes", body.len());
    let started = Instant::now();
    let err = refused(&server, &phone, body, 413, "too_many_documents").await;
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    assert!(err.message.contains("200000"), "{}", err.message);
    loads_on_a_new_device(&server, &log, 3).await;
}

/// A version-2 request carrying `pack` for `log`, its message naming `heads`.
fn packed_request(v: u32, log: DocId, heads: Vec<ChangeHash>, pack: Vec<u8>) -> Vec<u8> {
    let doc =
        DocMessage { packed: Some(serde_bytes::ByteBuf::from(pack)), ..DocMessage::new(log, message(heads, vec![])) };
    protocol::encode(&SyncRequest { v, docs: vec![doc], full: false, held: Vec::new(), quiet: None, keep: None })
}

#[tokio::test]
async fn a_pack_is_refused_unless_it_is_exactly_changes_the_server_would_take() {
    use kheo_shared::packed::pack;
    let (server, mut phone, log) = server_with_log().await;
    let heads = phone.replica.heads(&log);
    let change = next_change(&mut phone, &heads, log);
    let packed = pack(std::slice::from_ref(&change)).expect("a record packs");
    // One bit off anywhere, and the rebuilt change is not the phone's.
    for at in [packed.len() / 4, packed.len() / 2, packed.len() - 1] {
        let mut damaged = packed.clone();
        damaged[at] ^= 0x04;
        let body = packed_request(protocol::PACKED_VERSION, log, vec![change.hash()], damaged);
        refused(&server, &phone, body, 400, "bad_packed").await;
    }
    // A version-1 request has no packs.
    let body = packed_request(protocol::PROTOCOL_VERSION, log, vec![change.hash()], packed.clone());
    refused(&server, &phone, body, 400, "malformed_body").await;
    // A pack is only an encoding: a change that would break the document is
    // refused packed as it is unpacked.
    let mut expanded: ExpandedChange = change.decode();
    let op = expanded.operations.iter_mut().find(|op| !op.insert).expect("an op that is not an insert");
    op.pred = vec![automerge::legacy::OpId(9_999, ActorId::random())].into();
    expanded.hash = None;
    let forged = Change::from(expanded);
    let forged_pack = pack(std::slice::from_ref(&forged)).expect("any change of one actor packs");
    let body = packed_request(protocol::PACKED_VERSION, log, vec![forged.hash()], forged_pack);
    refused(&server, &phone, body, 400, "bad_change").await;
    loads_on_a_new_device(&server, &log, 3).await;
    // The honest pack lands: the same change, under its own hash.
    let body = packed_request(protocol::PACKED_VERSION, log, vec![change.hash()], packed);
    let response = post_raw(&reqwest::Client::new(), &server.url, &phone.token, body).await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    loads_on_a_new_device(&server, &log, 4).await;
}

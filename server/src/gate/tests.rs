//! The gate against what Automerge writes (accepted, unchanged) and against
//! each class of hostile input (refused, with the reason).

use std::io::Write;

use automerge::sync::{Message, State, SyncDoc};
use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, ROOT};
use sha2::{Digest, Sha256};

use super::bytes::put_uleb;
use super::*;

/// A phone's second message of a session: the one that carries its changes.
pub(crate) fn message_with_changes(records: usize) -> (AutoCommit, Vec<u8>) {
    let mut phone = AutoCommit::new().with_actor(ActorId::random());
    for i in 0..records {
        let rec = phone.put_object(ROOT, format!("r{i}"), automerge::ObjType::Map).unwrap();
        phone.put(&rec, "title", format!("tuần tra {i}")).unwrap();
        phone.put(&rec, "members", i as i64).unwrap();
        phone.commit();
    }
    let second = sync_message_of(&mut phone);
    assert_eq!(Message::decode(&second).unwrap().changes.len(), records);
    (phone, second)
}

/// The message of `phone` that carries its changes to a server that has none.
pub(crate) fn sync_message_of(phone: &mut AutoCommit) -> Vec<u8> {
    let mut server = AutoCommit::new();
    let (mut ps, mut ss) = (State::new(), State::new());
    let first = phone.sync().generate_sync_message(&mut ps).unwrap();
    server.sync().receive_sync_message(&mut ss, first).unwrap();
    let mut reply = server.sync().generate_sync_message(&mut ss).unwrap();
    // As the Kheo server answers: no flags, so the phone sends changes, not a document.
    reply.flags = None;
    phone.sync().receive_sync_message(&mut ps, reply).unwrap();
    phone.sync().generate_sync_message(&mut ps).unwrap().encode()
}

/// A version-1 message announcing `heads` and carrying `changes`.
pub(crate) fn v1_message_with_heads(heads: &[automerge::ChangeHash], changes: &[Vec<u8>]) -> Vec<u8> {
    let mut m = vec![0x42];
    put_uleb(&mut m, heads.len() as u64);
    for h in heads {
        m.extend(h.0);
    }
    m.extend([0, 0]);
    put_uleb(&mut m, changes.len() as u64);
    for c in changes {
        put_uleb(&mut m, c.len() as u64);
        m.extend(c);
    }
    m
}

pub(crate) fn v1_message(changes: &[Vec<u8>]) -> Vec<u8> {
    v1_message_with_heads(&[], changes)
}

/// A chunk of `kind` around `body`, with the checksum Automerge computes
/// over the uncompressed change.
pub(crate) fn chunk(kind: u8, body: &[u8], checksum_of: &[u8]) -> Vec<u8> {
    let mut header = vec![1];
    put_uleb(&mut header, checksum_of.len() as u64);
    let hash: [u8; 32] = Sha256::new().chain_update(&header).chain_update(checksum_of).finalize().into();
    let mut out = vec![0x85, 0x6f, 0x4a, 0x83];
    out.extend(&hash[..4]);
    out.push(kind);
    put_uleb(&mut out, body.len() as u64);
    out.extend(body);
    out
}

fn body_of(chunk: &[u8]) -> &[u8] {
    let mut r = bytes::Reader::new(&chunk[9..]);
    let len = r.uleb("len").unwrap() as usize;
    let at = 9 + r.position();
    &chunk[at..at + len]
}

/// A change body with one action column whose single run is `run` rows long.
fn change_with_run(run: i64) -> Vec<u8> {
    let mut body = vec![0, 16];
    body.extend([7u8; 16]);
    body.extend([1, 1, 0, 0, 0]); // seq, start op, time, message, other actors
    let mut column = Vec::new();
    let _ = leb128::write::signed(&mut column, run);
    put_uleb(&mut column, 1);
    put_uleb(&mut body, 1);
    put_uleb(&mut body, (4 << 4) | 2);
    put_uleb(&mut body, column.len() as u64);
    body.extend(column);
    body
}

#[test]
fn what_automerge_writes_passes_unchanged() {
    let (phone, bytes) = message_with_changes(20);
    let gated = Gate::default().message(&bytes).unwrap();
    assert_eq!(gated.message, Message::decode(&bytes).unwrap());
    assert_eq!(gated.changes.len(), 20);
    let hashes: Vec<_> = phone.clone().get_changes(&[]).iter().map(|c| c.hash()).collect();
    assert_eq!(gated.changes.iter().map(|c| c.hash).collect::<Vec<_>>(), hashes);
    assert!(gated.changes.iter().all(|c| c.ops == 3 && c.actor == *phone.get_actor()));
}

#[test]
fn the_empty_first_message_passes() {
    let mut phone = AutoCommit::new();
    phone.put(ROOT, "a", 1).unwrap();
    let first = phone.sync().generate_sync_message(&mut State::new()).unwrap().encode();
    let gated = Gate::default().message(&first).unwrap();
    assert!(gated.changes.is_empty());
    assert_eq!(gated.heads, phone.get_heads());
}

#[test]
fn bloom_parameters_other_than_automerges_are_refused() {
    for (entries, bits, probes, len) in [
        (1u64, 10u64, u32::MAX as u64, 2usize),
        (1, 0, 7, 0),
        (1, 10, 0, 2),
        (u32::MAX as u64, 10, 7, 2),
        (4, 10, 7, 4), // 4 entries need 5 bytes
    ] {
        let mut bloom = Vec::new();
        for n in [entries, bits, probes] {
            put_uleb(&mut bloom, n);
        }
        bloom.extend(vec![0xff; len]);
        let mut m = vec![0x42, 0, 0, 1, 0];
        put_uleb(&mut m, bloom.len() as u64);
        m.extend(&bloom);
        m.push(0);
        let e = Gate::default().message(&m).unwrap_err();
        assert!(matches!(e, GateError::Message(_)), "{entries}/{bits}/{probes}: {e}");
    }
}

#[test]
fn a_compression_bomb_is_refused_at_the_cap() {
    let (_, bytes) = message_with_changes(1);
    let inner = Message::decode(&bytes).unwrap().changes.iter().next().unwrap().to_vec();
    let mut body = body_of(&inner).to_vec();
    body.extend(vec![0u8; 8 << 20]); // extra bytes, which Automerge keeps
    let mut deflated = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    deflated.write_all(&body).unwrap();
    let deflated = deflated.finish().unwrap();
    assert!(deflated.len() < 64 << 10);
    let e = Gate::default().message(&v1_message(&[chunk(2, &deflated, &body)])).unwrap_err();
    assert!(e.to_string().contains("inflates past"), "{e}");
}

#[test]
fn a_compressed_change_is_inflated_before_automerge_sees_it() {
    let (_, bytes) = message_with_changes(1);
    let inner = Message::decode(&bytes).unwrap().changes.iter().next().unwrap().to_vec();
    let body = body_of(&inner).to_vec();
    let mut deflated = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    deflated.write_all(&body).unwrap();
    let compressed = chunk(2, &deflated.finish().unwrap(), &body);
    let gated = Gate::default().message(&v1_message(&[compressed])).unwrap();
    assert_eq!(gated.changes[0].chunk, inner);
    assert_eq!(gated.message.changes.iter().next().unwrap(), &inner[..]);
}

#[test]
fn huge_run_lengths_are_refused_before_automerge_walks_them() {
    let ok = change_with_run(3);
    assert_eq!(Gate::default().message(&v1_message(&[chunk(1, &ok, &ok)])).unwrap().changes[0].ops, 3);
    let bad = change_with_run(1 << 40);
    let e = Gate::default().message(&v1_message(&[chunk(1, &bad, &bad)])).unwrap_err();
    assert!(matches!(e, GateError::Change(_)), "{e}");
}

#[test]
fn bad_checksums_documents_and_trailing_bytes_are_refused() {
    let (phone, bytes) = message_with_changes(1);
    let change = Message::decode(&bytes).unwrap().changes.iter().next().unwrap().to_vec();
    let mut flipped = change.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    assert!(matches!(Gate::default().message(&v1_message(&[flipped])), Err(GateError::Change(_))));

    let doc = phone.clone().save();
    let e = Gate::default().message(&v1_message(&[doc])).unwrap_err();
    assert!(e.to_string().contains("document chunk"), "{e}");

    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(matches!(Gate::default().message(&trailing), Err(GateError::Message(_))));
}

#[test]
fn the_request_budget_adds_up_over_messages() {
    let (_, bytes) = message_with_changes(30);
    let mut gate = Gate::new(Limits { max_changes_per_request: 50, ..Limits::default() });
    gate.message(&bytes).unwrap();
    assert!(matches!(gate.message(&bytes), Err(GateError::OverBudget(_))));
}

#[test]
fn counts_past_the_limits_are_refused_before_allocation() {
    let mut m = vec![0x42];
    put_uleb(&mut m, 1 << 60);
    assert!(matches!(Gate::default().message(&m), Err(GateError::Message(_))));
    let mut m = vec![0x42, 0, 0, 0];
    put_uleb(&mut m, 1 << 60);
    assert!(matches!(Gate::default().message(&m), Err(GateError::Message(_))));
}

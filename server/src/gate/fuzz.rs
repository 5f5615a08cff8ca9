//! A mutation fuzzer on stable Rust: valid sync messages from Automerge,
//! mutated (flipped bytes, truncations, huge LEB128 numbers spliced in,
//! changes recompressed), through the gate and the server's merge of one
//! document ([`crate::sync::prepare`], which has no IO).
//!
//! Nothing may panic outside the guarded Automerge calls, and whatever is
//! accepted must leave a document that saves and loads: the merge's own
//! check ([`crate::sync::merge::check_loadable`], which rebuilds only the
//! added changes) is held against a whole save and load on every case.
//! Half the cases merge into an empty log, half into a log that already
//! holds the records the message's changes edit (so mutations hit
//! predecessors and objects that exist). CI runs a few hundred cases; for
//! a long run:
//!
//! ```sh
//! KHEO_FUZZ_CASES=1000000 cargo test --release -p kheo-server --lib gate::fuzz -- --test-threads=1 --nocapture
//! ```

use std::io::Write;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use automerge::sync::{State, SyncDoc};
use automerge::{ActorId, AutoCommit};
use kheo_shared::codes::Role;
use kheo_shared::ids::{DocId, ModelId, RecordId};
use kheo_shared::{schema, testdata};
use proptest::prelude::*;

use super::Gate;
use super::bytes::put_uleb;
use super::tests::sync_message_of;
use crate::auth::Principal;
use crate::docs::HotDoc;

struct Seed {
    actor: ActorId,
    log: DocId,
    /// Messages into an empty log.
    messages: Vec<Vec<u8>>,
    /// The server's copy of a six-record log, and a message that edits
    /// two of its records and adds one.
    base: AutoCommit,
    edits: Vec<u8>,
}

/// Messages of one phone carrying a schema-valid yearly log: one record,
/// and six records of every kind.
fn seed() -> &'static Seed {
    static SEED: OnceLock<Seed> = OnceLock::new();
    SEED.get_or_init(|| {
        let actor = ActorId::random();
        let model = ModelId::new_random();
        let log = DocId::log(model, 2025).unwrap_or(DocId::Model(model));
        let phone_with = |n: usize| {
            let mut phone = AutoCommit::new().with_actor(actor.clone());
            schema::init_log(&mut phone, model, 2025).expect("a log");
            phone.commit();
            let mut written = Vec::new();
            for i in 0..n {
                let day = format!("2025-0{}-1{}", 1 + i % 9, i % 10);
                let record = testdata::any_record(RecordId::new_random(), &day, i);
                schema::put_record(&mut phone, &record).expect("a record");
                phone.commit();
                written.push(record);
            }
            (phone, written)
        };
        let messages = [1usize, 6].iter().map(|&n| sync_message_of(&mut phone_with(n).0)).collect();
        let (mut phone, written) = phone_with(6);
        let base = phone.fork();
        let before = phone.get_heads();
        for (i, mut record) in written.into_iter().take(2).enumerate() {
            record.note = format!("sửa lần {i}");
            schema::put_record(&mut phone, &record).expect("an edit");
            phone.commit();
        }
        schema::put_record(&mut phone, &testdata::any_record(RecordId::new_random(), "2025-03-03", 7))
            .expect("a record");
        phone.commit();
        let changes: Vec<Vec<u8>> = phone.get_changes(&before).iter().map(|c| c.raw_bytes().to_vec()).collect();
        let edits = super::tests::v1_message_with_heads(&phone.get_heads(), &changes);
        Seed { actor, log, messages, base, edits }
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip {
        at: usize,
        bit: u8,
    },
    Truncate {
        at: usize,
    },
    HugeNumber {
        at: usize,
        n: u64,
    },
    Delete {
        at: usize,
        len: usize,
    },
    Duplicate {
        at: usize,
        len: usize,
    },
    /// Re-wrap the first change as a compressed chunk.
    Compress,
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Mutation::Flip { at, bit }),
        any::<usize>().prop_map(|at| Mutation::Truncate { at }),
        (any::<usize>(), prop_oneof![Just(u64::MAX), Just(1 << 32), Just(1 << 62), any::<u64>()])
            .prop_map(|(at, n)| Mutation::HugeNumber { at, n }),
        (any::<usize>(), 1usize..40).prop_map(|(at, len)| Mutation::Delete { at, len }),
        (any::<usize>(), 1usize..40).prop_map(|(at, len)| Mutation::Duplicate { at, len }),
        Just(Mutation::Compress),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    let n = bytes.len().max(1);
    match *m {
        Mutation::Flip { at, bit } => {
            if let Some(b) = bytes.get_mut(at % n) {
                *b ^= 1 << bit;
            }
        }
        Mutation::Truncate { at } => bytes.truncate(at % n),
        Mutation::HugeNumber { at, n: number } => {
            let mut leb = Vec::new();
            put_uleb(&mut leb, number);
            let at = (at % n).min(bytes.len());
            bytes.splice(at..at, leb);
        }
        Mutation::Delete { at, len } => {
            let at = (at % n).min(bytes.len());
            let end = (at + len).min(bytes.len());
            bytes.drain(at..end);
        }
        Mutation::Duplicate { at, len } => {
            let at = (at % n).min(bytes.len());
            let end = (at + len).min(bytes.len());
            let copy = bytes[at..end].to_vec();
            bytes.splice(at..at, copy);
        }
        Mutation::Compress => {
            if let Ok(msg) = automerge::sync::Message::decode(bytes)
                && let Some(first) = msg.changes.iter().next()
            {
                // A mutated message may hold a "change" shorter than a chunk header.
                let Some(after_type) = first.get(9..) else { return };
                let mut r = super::bytes::Reader::new(after_type);
                if let Ok(len) = r.uleb("len") {
                    let rest = &after_type[r.position()..];
                    let body = &rest[..(len as usize).min(rest.len())];
                    let mut deflate = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
                    let _ = deflate.write_all(body);
                    let deflated = deflate.finish().unwrap_or_default();
                    let chunk = super::tests::chunk(2, &deflated, body);
                    let mut changes: Vec<Vec<u8>> = msg.changes.iter().map(<[u8]>::to_vec).collect();
                    changes[0] = chunk;
                    *bytes = super::tests::v1_message(&changes);
                }
            }
        }
    }
}

fn principal(actor: &ActorId) -> Principal {
    Principal {
        device_id: "fuzz".into(),
        account_id: "fuzz".into(),
        username: "fuzz".into(),
        role: Role::Volunteer,
        unit: "QNA.TK.TT".into(),
        actor: actor.clone(),
    }
}

static CASES: AtomicU64 = AtomicU64::new(0);
static ACCEPTED_BY_GATE: AtomicU64 = AtomicU64::new(0);
static MERGED: AtomicU64 = AtomicU64::new(0);
/// Applied cases where the whole save and load passed but the merge's
/// check refused: changes refused that Automerge could have kept.
static OVER_CAUTIOUS: AtomicU64 = AtomicU64::new(0);
/// Applied cases that would not have loaded, refused by the merge's check.
static CAUGHT: AtomicU64 = AtomicU64::new(0);

fn cases() -> u32 {
    std::env::var("KHEO_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256)
}

fn hot(doc: AutoCommit) -> HotDoc {
    HotDoc { doc, ..HotDoc::empty(ActorId::random(), 1) }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_messages_never_panic_and_never_break_a_document(
        which in 0usize..4,
        mutations in proptest::collection::vec(mutation(), 1..4),
    ) {
        let seed = seed();
        let (base, mut bytes) = match which {
            0 | 1 => (AutoCommit::new(), seed.messages[which].clone()),
            _ => (seed.base.clone(), seed.edits.clone()),
        };
        for m in &mutations {
            apply(&mut bytes, m);
        }
        CASES.fetch_add(1, Ordering::Relaxed);
        let Ok(gated) = Gate::default().message(&bytes) else { return Ok(()) };
        ACCEPTED_BY_GATE.fetch_add(1, Ordering::Relaxed);
        let id = seed.log;
        let who = principal(&seed.actor);

        // The merge's check against the whole-document one, on the same copy.
        if let Some(mut copy) = applied(base.clone(), gated.message.clone()) {
            let before = base.clone().get_heads();
            // Automerge's own load panics on some documents: those do not load.
            let whole = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                crate::sync::merge::saves_and_loads(&mut copy)
            }))
            .unwrap_or(false);
            // Guarded as in the merge: a panic there is a refusal.
            let fast = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                crate::sync::merge::check_loadable(id, &mut copy, &before).is_ok()
            }))
            .unwrap_or(false);
            prop_assert!(whole || !fast, "the merge's check passed a document that does not load");
            if whole && !fast {
                OVER_CAUTIOUS.fetch_add(1, Ordering::Relaxed);
            }
            if !whole {
                CAUGHT.fetch_add(1, Ordering::Relaxed);
            }
        }

        let mut hot = hot(base);
        if let Ok(prepared) = crate::sync::prepare(id, &mut hot, State::new(), gated, &who)
            && prepared.merged.is_some()
        {
            MERGED.fetch_add(1, Ordering::Relaxed);
            prop_assert!(crate::sync::merge::saves_and_loads(&mut hot.doc), "an accepted merge must load");
        }
    }
}

/// The copy after Automerge took the message, unless it panicked or
/// refused, or nothing applied.
fn applied(mut doc: AutoCommit, message: automerge::sync::Message) -> Option<AutoCommit> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let before = doc.get_heads();
        doc.sync().receive_sync_message(&mut State::new(), message).ok()?;
        (doc.get_heads() != before).then_some(doc)
    }))
    .ok()
    .flatten()
}

#[test]
fn unmutated_seeds_merge() {
    let seed = seed();
    let cases = seed.messages.iter().map(|m| (AutoCommit::new(), m)).chain([(seed.base.clone(), &seed.edits)]);
    for (base, bytes) in cases {
        let gated = Gate::default().message(bytes).expect("the gate passes what Automerge writes");
        let prepared = crate::sync::prepare(seed.log, &mut hot(base), State::new(), gated, &principal(&seed.actor));
        assert!(prepared.is_ok_and(|p| p.merged.is_some()), "the seed merges, so the fuzzer reaches the merge");
    }
}

#[test]
fn zz_report() {
    // Printed with --nocapture after a long run; the counts are per process.
    eprintln!(
        "fuzz: {} cases, {} passed the gate, {} merged; {} would not have loaded and were refused, \
         {} refused that would have loaded; {} Automerge panics caught",
        CASES.load(Ordering::Relaxed),
        ACCEPTED_BY_GATE.load(Ordering::Relaxed),
        MERGED.load(Ordering::Relaxed),
        CAUGHT.load(Ordering::Relaxed),
        OVER_CAUTIOUS.load(Ordering::Relaxed),
        crate::sync::AUTOMERGE_PANICS.load(Ordering::Relaxed)
    );
}

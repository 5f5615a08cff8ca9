//! A mutation fuzzer on stable Rust: valid sync messages from Automerge,
//! mutated (flipped bytes, truncations, huge LEB128 numbers spliced in,
//! changes recompressed), through the gate and the server's merge of one
//! document ([`crate::sync::prepare`], which has no IO).
//!
//! Nothing may panic outside the guarded Automerge calls, and whatever is
//! accepted must leave a document that saves and loads. CI runs a few
//! hundred cases; for a long run:
//!
//! ```sh
//! KHEO_FUZZ_CASES=1000000 cargo test --release -p kheo-server --lib gate::fuzz -- --test-threads=1 --nocapture
//! ```

use std::io::Write;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use automerge::sync::State;
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
    messages: Vec<Vec<u8>>,
}

/// Messages of one phone carrying a schema-valid yearly log: one record,
/// and six records of every kind.
fn seed() -> &'static Seed {
    static SEED: OnceLock<Seed> = OnceLock::new();
    SEED.get_or_init(|| {
        let actor = ActorId::random();
        let model = ModelId::new_random();
        let log = DocId::log(model, 2025).unwrap_or(DocId::Model(model));
        let messages = [1usize, 6]
            .iter()
            .map(|&n| {
                let mut phone = AutoCommit::new().with_actor(actor.clone());
                schema::init_log(&mut phone, model, 2025).expect("a log");
                phone.commit();
                for i in 0..n {
                    let day = format!("2025-0{}-1{}", 1 + i % 9, i % 10);
                    schema::put_record(&mut phone, &testdata::any_record(RecordId::new_random(), &day, i))
                        .expect("a record");
                    phone.commit();
                }
                sync_message_of(&mut phone)
            })
            .collect();
        Seed { actor, log, messages }
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

fn cases() -> u32 {
    std::env::var("KHEO_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_messages_never_panic_and_never_break_a_document(
        which in 0usize..2,
        mutations in proptest::collection::vec(mutation(), 1..4),
    ) {
        let seed = seed();
        let mut bytes = seed.messages[which].clone();
        for m in &mutations {
            apply(&mut bytes, m);
        }
        CASES.fetch_add(1, Ordering::Relaxed);
        let Ok(gated) = Gate::default().message(&bytes) else { return Ok(()) };
        ACCEPTED_BY_GATE.fetch_add(1, Ordering::Relaxed);
        let id = seed.log;
        let mut hot = HotDoc { doc: AutoCommit::new(), stored: false, chunks_since_snapshot: 0, waiting: Default::default() };
        let who = principal(&seed.actor);
        if let Ok(prepared) = crate::sync::prepare(id, &mut hot, State::new(), gated, &who)
            && let Some(mut merged) = prepared.merged
        {
            MERGED.fetch_add(1, Ordering::Relaxed);
            let saved = merged.doc.save();
            prop_assert!(AutoCommit::load(&saved).is_ok(), "an accepted merge must load");
        }
    }
}

#[test]
fn unmutated_seeds_merge() {
    let seed = seed();
    for bytes in &seed.messages {
        let gated = Gate::default().message(bytes).expect("the gate passes what Automerge writes");
        let mut hot =
            HotDoc { doc: AutoCommit::new(), stored: false, chunks_since_snapshot: 0, waiting: Default::default() };
        let prepared = crate::sync::prepare(seed.log, &mut hot, State::new(), gated, &principal(&seed.actor));
        assert!(prepared.is_ok_and(|p| p.merged.is_some()), "the seed merges, so the fuzzer reaches the merge");
    }
}

#[test]
fn zz_report() {
    // Printed with --nocapture after a long run; the counts are per process.
    eprintln!(
        "fuzz: {} cases, {} passed the gate, {} merged, {} Automerge panics caught",
        CASES.load(Ordering::Relaxed),
        ACCEPTED_BY_GATE.load(Ordering::Relaxed),
        MERGED.load(Ordering::Relaxed),
        crate::sync::AUTOMERGE_PANICS.load(Ordering::Relaxed)
    );
}

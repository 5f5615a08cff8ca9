//! The store's contract, as tests any backend must pass: the version check
//! that makes several processes on one database safe, and compaction that
//! deletes only what its snapshot covers. Each test takes a fresh store.

use kheo_shared::ids::{DocId, ModelId};

use super::directory::{Directory, QUARANTINE_BYTES_PER_DEVICE, QUARANTINE_ENTRIES_PER_DEVICE, QuarantineEntry};
use super::reports::{IncidentFacts, RecordDetails, ReportStore};
use super::{Committed, DocWrite, Store, Version, WriteBatch};
use crate::read_model::{ReadModelWrite, RecordRow};

const P1: i64 = 11;
const P2: i64 = 22;

fn log() -> DocId {
    DocId::log(ModelId::new_random(), 2025).expect("log id")
}

fn append(doc: DocId, chunk: &[u8], base: Version, writer: i64) -> (WriteBatch, Version) {
    let next = base.next(writer);
    let write = DocWrite::Append { doc, chunk: chunk.to_vec(), base, next };
    (WriteBatch { docs: vec![write], ..WriteBatch::default() }, next)
}

fn with_state(mut batch: WriteBatch, device: &str, doc: DocId) -> WriteBatch {
    batch.sync_states.push((device.into(), doc, b"state".to_vec()));
    batch
}

async fn chunks<S: Store>(store: &S, doc: &DocId) -> Vec<Vec<u8>> {
    store.load_doc(doc).await.expect("load").map(|d| d.chunks).unwrap_or_default()
}

pub async fn a_write_on_a_version_that_moved_keeps_nothing_of_its_batch<S: Store + Directory>(store: &S) {
    let doc = log();
    let (first, v1) = append(doc, b"one", Version::NONE, P1);
    assert_eq!(store.commit(&[first]).await.unwrap(), [Committed::Done]);
    // Both processes hold v1; the second writes first.
    let (theirs, v2) = append(doc, b"two-by-p2", v1, P2);
    assert_eq!(store.commit(&[theirs]).await.unwrap(), [Committed::Done]);
    let (ours, _) = append(doc, b"two-by-p1", v1, P1);
    let ours = with_state(ours, "phone", doc);
    assert_eq!(store.commit(&[ours]).await.unwrap(), [Committed::Conflict(doc)]);
    assert_eq!(chunks(store, &doc).await, [b"one".to_vec(), b"two-by-p2".to_vec()]);
    assert_eq!(store.load_sync_state("phone", &doc).await.unwrap(), None, "nothing of the batch is kept");
    assert_eq!(store.versions(&[doc]).await.unwrap(), [(doc, v2)]);
    // A new document is created once: the second creation finds it there.
    let fresh = log();
    let (a, _) = append(fresh, b"a", Version::NONE, P1);
    let (b, _) = append(fresh, b"b", Version::NONE, P2);
    assert_eq!(store.commit(&[a]).await.unwrap(), [Committed::Done]);
    assert_eq!(store.commit(&[b]).await.unwrap(), [Committed::Conflict(fresh)]);
}

pub async fn a_conflict_leaves_out_its_batch_alone<S: Store + Directory>(store: &S) {
    let (shared, other) = (log(), log());
    let (seed, v1) = append(shared, b"seed", Version::NONE, P1);
    store.commit(&[seed]).await.unwrap();
    let (theirs, _) = append(shared, b"theirs", v1, P2);
    store.commit(&[theirs]).await.unwrap();
    // One group: a stale write, an unrelated one, and one merged on the stale one.
    let (stale, v2_ours) = append(shared, b"stale", v1, P1);
    let (unrelated, _) = append(other, b"unrelated", Version::NONE, P1);
    let (on_top, _) = append(shared, b"on-top", v2_ours, P1);
    let outcomes = store.commit(&[stale, with_state(unrelated, "phone", other), on_top]).await.unwrap();
    assert_eq!(outcomes, [Committed::Conflict(shared), Committed::Done, Committed::Conflict(shared)]);
    assert_eq!(chunks(store, &shared).await, [b"seed".to_vec(), b"theirs".to_vec()]);
    assert_eq!(chunks(store, &other).await, [b"unrelated".to_vec()]);
    assert!(store.load_sync_state("phone", &other).await.unwrap().is_some());
}

pub async fn a_snapshot_deletes_only_the_chunks_it_covers<S: Store + Directory>(store: &S) {
    let doc = log();
    let (first, v1) = append(doc, b"one", Version::NONE, P1);
    store.commit(&[first]).await.unwrap();
    // Another process appends after this one's copy was taken...
    let (theirs, v2) = append(doc, b"two", v1, P2);
    store.commit(&[theirs]).await.unwrap();
    // ...so this one's compaction, made on v1, must not delete "two".
    let snapshot = |base: Version, bytes: &[u8]| WriteBatch {
        docs: vec![DocWrite::Snapshot { doc, bytes: bytes.to_vec(), base, next: base.next(P1) }],
        ..WriteBatch::default()
    };
    assert_eq!(store.commit(&[snapshot(v1, b"snap-at-1")]).await.unwrap(), [Committed::Conflict(doc)]);
    let stored = store.load_doc(&doc).await.unwrap().unwrap();
    assert_eq!((stored.snapshot, stored.chunks), (Vec::new(), vec![b"one".to_vec(), b"two".to_vec()]));
    // Caught up to v2, the snapshot covers both chunks and replaces them.
    assert_eq!(store.commit(&[snapshot(v2, b"snap-at-2")]).await.unwrap(), [Committed::Done]);
    let stored = store.load_doc(&doc).await.unwrap().unwrap();
    assert_eq!((stored.snapshot, stored.chunks.len()), (b"snap-at-2".to_vec(), 0));
    assert_eq!(stored.version, v2.next(P1));
}

pub async fn a_copy_catches_up_from_the_chunks_after_its_version<S: Store + Directory>(store: &S) {
    let doc = log();
    let (first, v1) = append(doc, b"one", Version::NONE, P1);
    store.commit(&[first]).await.unwrap();
    let (second, v2) = append(doc, b"two", v1, P2);
    let (third, v3) = append(doc, b"three", v2, P2);
    store.commit(&[second, third]).await.unwrap();
    let (at, after) = store.chunks_after(&doc, v1.n).await.unwrap();
    assert_eq!(at, v3);
    assert_eq!(after, [(v2.n, b"two".to_vec()), (v3.n, b"three".to_vec())]);
    let (at, after) = store.chunks_after(&log(), 0).await.unwrap();
    assert_eq!((at, after.len()), (Version::NONE, 0), "a document the store does not hold");
}

fn entry(device: &str, bytes: usize) -> QuarantineEntry {
    QuarantineEntry {
        id: 0,
        at: 1,
        device: device.into(),
        account: "a".into(),
        doc_id: "model/x".into(),
        rule: "schema".into(),
        message: "refused".into(),
        changes: vec![7; bytes],
        bytes,
    }
}

pub async fn the_quarantine_is_capped_per_device_in_entries_and_bytes<S: Store + Directory>(store: &S) {
    let big = QUARANTINE_BYTES_PER_DEVICE / 4 + 1;
    for _ in 0..5 {
        store.quarantine(&entry("greedy", big)).await.unwrap();
    }
    for _ in 0..QUARANTINE_ENTRIES_PER_DEVICE + 30 {
        store.quarantine(&entry("looping", 10)).await.unwrap();
    }
    store.quarantine(&entry("honest", 10)).await.unwrap();
    let all = store.quarantined().await.unwrap();
    let of = |d: &str| all.iter().filter(|e| e.device == d).collect::<Vec<_>>();
    let greedy = of("greedy");
    assert_eq!(greedy.len(), 5, "every refusal is recorded");
    assert_eq!(greedy.iter().filter(|e| e.bytes > 0).count(), 3, "changes kept up to the budget");
    assert!(greedy.iter().map(|e| e.bytes).sum::<usize>() <= QUARANTINE_BYTES_PER_DEVICE);
    assert!(greedy.iter().filter(|e| e.bytes == 0).all(|e| e.message.contains("quarantine is full")));
    assert_eq!(of("looping").len(), QUARANTINE_ENTRIES_PER_DEVICE, "the newest entries");
    assert_eq!(of("honest").len(), 1, "another device is not affected");
}

/// Every kind's details come back as the export shows them, a deleted
/// patrol's incidents too, and a record's row is replaced whole when it
/// changes kind.
pub async fn a_record_keeps_each_kinds_details_for_the_export<S: Store + Directory + ReportStore>(store: &S) {
    use kheo_shared::codes::{IncidentCategory, IncidentOutcome};
    use kheo_shared::ids::RecordId;
    use kheo_shared::record::{Activity, Incident};
    use kheo_shared::testdata;

    let model = ModelId::new_random();
    let mut patrol = testdata::patrol(RecordId::new_random(), "2025-03-09", 0);
    patrol.note = "Trời mưa to".into();
    if let Activity::Patrol(p) = &mut patrol.activity {
        p.incidents = vec![
            Incident {
                id: "a".into(),
                category: IncidentCategory::Theft,
                description: "Mất xe máy".into(),
                outcome: IncidentOutcome::HandedToPolice,
                location: None,
            },
            Incident {
                id: "b".into(),
                category: IncidentCategory::Gambling,
                description: String::new(),
                outcome: IncidentOutcome::SupportedPolice,
                location: None,
            },
        ];
    }
    let mut deleted = patrol.clone();
    deleted.id = RecordId::new_random();
    deleted.deleted = true;
    let support = testdata::household_support(RecordId::new_random(), "2025-03-10", 2_000_000);
    let mut production = testdata::production(RecordId::new_random(), "2025-03-11", 60_000_000);
    let meeting = testdata::meeting(RecordId::new_random(), "2025-03-12", 30);
    let row = |r: &kheo_shared::record::Record| ReadModelWrite::Record(RecordRow::from_record(model, r));
    let batch = WriteBatch {
        read_model: [&patrol, &deleted, &support, &production, &meeting].into_iter().map(row).collect(),
        ..WriteBatch::default()
    };
    store.commit(&[batch]).await.unwrap();

    let facts = store.records("2025-01-01", "2025-12-31").await.unwrap();
    let of = |r: &kheo_shared::record::Record| {
        facts.iter().find(|f| f.record == r.id.to_string()).map(|f| f.details.clone()).expect("the record's row")
    };
    let incidents = vec![
        IncidentFacts {
            category: "theft".into(),
            outcome: "handed_to_police".into(),
            description: "Mất xe máy".into(),
        },
        IncidentFacts { category: "gambling".into(), outcome: "supported_police".into(), description: String::new() },
    ];
    let patrolled = RecordDetails::Patrol {
        start: "21:00".into(),
        end: "23:30".into(),
        members_present: Some(5),
        area: "Thôn Kim Đới, tuyến ven sông".into(),
        incidents,
        handed_to_police: 1,
        supported_police: 1,
    };
    assert_eq!(of(&patrol), patrolled);
    assert_eq!(of(&deleted), patrolled, "a tombstone still shows what it held");
    let first = facts.iter().find(|f| f.record == patrol.id.to_string()).expect("the patrol");
    assert_eq!((first.note.as_str(), first.deleted), ("Trời mưa to", false));
    assert_eq!(
        of(&support),
        RecordDetails::HouseholdSupport {
            giver: "Hộ ông Nguyễn Văn An".into(),
            receiver: "Hộ bà Trần Thị Bình".into(),
            support_type: "money".into(),
            amount_vnd: 2_000_000,
            workdays: 2.5,
            quantity: Some(0.0),
            unit: String::new(),
            description: "Hỗ trợ sửa mái nhà".into(),
        }
    );
    assert_eq!(
        of(&production),
        RecordDetails::Production {
            product: "Viên hoàn mật ong nghệ đen".into(),
            quantity: Some(12.5),
            unit: "kg".into(),
            revenue_vnd: 60_000_000,
        }
    );
    assert_eq!(of(&meeting), RecordDetails::Meeting { topic: "Tuyên truyền phòng chống cờ bạc".into(), attendees: 30 });

    // A record that changes kind leaves nothing of the old kind behind.
    production.activity = meeting.activity.clone();
    let batch = WriteBatch { read_model: vec![row(&production)], ..WriteBatch::default() };
    store.commit(&[batch]).await.unwrap();
    let facts = store.records("2025-01-01", "2025-12-31").await.unwrap();
    let changed = facts.iter().find(|f| f.record == production.id.to_string()).expect("the row");
    assert_eq!(
        changed.details,
        RecordDetails::Meeting { topic: "Tuyên truyền phòng chống cờ bạc".into(), attendees: 30 }
    );
}

/// Runs every contract test against stores `open` makes: an
/// `Option<(Arc<store>, guard)>`, the guard kept while the test runs.
pub async fn versions_in_units_name_each_document_of_the_units_models_and_no_other<S: Store + Directory>(store: &S) {
    let (ours, theirs) = (ModelId::new_random(), ModelId::new_random());
    let mut batch = WriteBatch::default();
    let mut docs = Vec::new();
    for (model, unit) in [(ours, "QNA.TK.TT"), (theirs, "QNA.DB.DP")] {
        batch.model_units.push((model, unit.into()));
        for doc in [DocId::Model(model), DocId::log(model, 2024).unwrap(), DocId::log(model, 2025).unwrap()] {
            let next = Version::NONE.next(P1);
            batch.docs.push(DocWrite::Append { doc, chunk: b"c".to_vec(), base: Version::NONE, next });
            docs.push(doc);
        }
    }
    store.commit(&[batch]).await.unwrap();
    let ids = |found: Vec<(DocId, Version)>| found.into_iter().map(|(id, _)| id).collect::<Vec<_>>();
    let mine = ids(store.versions_in_units(Some(&["QNA.TK.TT".to_owned(), "QNA.X".to_owned()])).await.unwrap());
    let mut expected = docs[..3].to_vec();
    expected.sort_by_key(|id| id.to_string());
    assert_eq!(mine, expected, "the model and its logs, by id");
    assert_eq!(ids(store.versions_in_units(Some(&[])).await.unwrap()), []);
    assert_eq!(store.versions_in_units(None).await.unwrap().len(), 6);
}

/// A device's synced documents: those it has a sync state with, stored,
/// and no other device's.
pub async fn versions_synced_by_name_the_devices_synced_documents_only<S: Store + Directory>(store: &S) {
    let model = ModelId::new_random();
    let docs = [DocId::Model(model), DocId::log(model, 2024).unwrap(), DocId::log(model, 2025).unwrap()];
    let mut batch = WriteBatch::default();
    batch.model_units.push((model, "QNA.TK.TT".into()));
    for doc in docs {
        let next = Version::NONE.next(P1);
        batch.docs.push(DocWrite::Append { doc, chunk: b"c".to_vec(), base: Version::NONE, next });
    }
    batch.sync_states.push(("opened-two".into(), docs[2], b"s".to_vec()));
    batch.sync_states.push(("opened-two".into(), docs[0], b"s".to_vec()));
    batch.sync_states.push(("another".into(), docs[1], b"s".to_vec()));
    // A state with a document the store does not hold names nothing.
    batch.sync_states.push(("opened-two".into(), DocId::Model(ModelId::new_random()), b"s".to_vec()));
    store.commit(&[batch]).await.unwrap();
    let ids = |found: Vec<(DocId, Version)>| found.into_iter().map(|(id, _)| id).collect::<Vec<_>>();
    let mut expected = vec![docs[0], docs[2]];
    expected.sort_by_key(|id| id.to_string());
    assert_eq!(ids(store.versions_synced_by("opened-two").await.unwrap()), expected);
    assert_eq!(ids(store.versions_synced_by("another").await.unwrap()), [docs[1]]);
    assert_eq!(store.versions_synced_by("never").await.unwrap(), []);
}

/// The rebuild's guard: rows read from a document are kept only while the
/// document is still at the version they were read from.
pub async fn rows_derived_from_a_document_are_kept_only_while_it_is_unchanged<S: Store + Directory + ReportStore>(
    store: &S,
) {
    use kheo_shared::ids::RecordId;
    use kheo_shared::testdata;

    let model = ModelId::new_random();
    let doc = DocId::log(model, 2025).expect("log id");
    let row = |r: &kheo_shared::record::Record| ReadModelWrite::Record(RecordRow::from_record(model, r));
    let derived =
        |r, version| WriteBatch { read_model: vec![row(r)], unchanged: vec![(doc, version)], ..WriteBatch::default() };
    let kept = |facts: &[super::reports::RecordFacts], r: &kheo_shared::record::Record| {
        facts.iter().any(|f| f.record == r.id.to_string())
    };
    let (early, late) = (
        testdata::patrol(RecordId::new_random(), "2025-03-09", 0),
        testdata::patrol(RecordId::new_random(), "2025-03-10", 1),
    );
    let (first, v1) = append(doc, b"one", Version::NONE, P1);
    store.commit(&[first]).await.unwrap();
    assert_eq!(store.commit(&[derived(&early, v1)]).await.unwrap(), [Committed::Done]);
    // Another process writes the document after the rebuild read it.
    let (theirs, _) = append(doc, b"two", v1, P2);
    store.commit(&[theirs]).await.unwrap();
    assert_eq!(store.commit(&[derived(&late, v1)]).await.unwrap(), [Committed::Conflict(doc)]);
    let facts = store.records("2025-01-01", "2025-12-31").await.unwrap();
    assert!(kept(&facts, &early), "rows of an unchanged document are kept");
    assert!(!kept(&facts, &late), "rows of a document that moved are not");
}

/// Every document write stores the heads it leaves, or "unknown" when it
/// does not say (never the heads of an earlier write); the backfill fills in
/// the unknown ones; a scope's heads come with one device's sync states.
pub async fn each_write_stores_its_heads_or_unknown_and_the_backfill_fills_them<S: Store + Directory>(store: &S) {
    use automerge::transaction::Transactable;
    let model = ModelId::new_random();
    let doc = DocId::log(model, 2025).expect("log id");
    let mut am = automerge::AutoCommit::new();
    am.put(automerge::ROOT, "n", 1).unwrap();
    let heads = super::encode_heads(&am.get_heads());
    let (mut first, v1) = append(doc, &am.save(), Version::NONE, P1);
    first.heads.insert(doc, heads.clone());
    first.model_units.push((model, "QNA.TK.TT".into()));
    let first = with_state(first, "device-a", doc);
    store.commit(&[first]).await.unwrap();
    let scope = |device: &'static str| async move {
        store.heads_in_units(device, Some(&["QNA.TK.TT".to_owned()])).await.unwrap()
    };
    let found = scope("device-a").await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, doc);
    assert_eq!(found[0].heads.as_deref(), Some(heads.as_slice()));
    assert_eq!(found[0].state.as_deref(), Some(&b"state"[..]));
    assert_eq!(scope("device-b").await[0].state, None, "another device's state is not this one's");
    assert!(store.heads_in_units("device-a", Some(&["QNA.DB.DP".to_owned()])).await.unwrap().is_empty());
    assert_eq!(store.heads_in_units("device-a", None).await.unwrap().len(), 1);

    // A write that does not say leaves the heads unknown, not stale.
    am.put(automerge::ROOT, "n", 2).unwrap();
    let (second, _) = append(doc, &am.save_incremental(), v1, P1);
    store.commit(&[second]).await.unwrap();
    assert_eq!(scope("device-a").await[0].heads, None);
    assert_eq!(store.docs_without_heads().await.unwrap(), [doc]);

    assert_eq!(crate::sync::quiet::backfill_heads(store).await.unwrap(), 1);
    assert_eq!(scope("device-a").await[0].heads, Some(super::encode_heads(&am.get_heads())));
    assert!(store.docs_without_heads().await.unwrap().is_empty());
}

/// A random record for the monthly figures' test: any kind, any day of
/// 2024-12 to 2026-01, any review state, sometimes deleted; a few
/// receivers shared between records (households count distinct); workdays
/// in halves, so every sum is exact in floating point on both paths.
fn random_record(rng: &mut rand::rngs::StdRng, id: kheo_shared::ids::RecordId) -> kheo_shared::record::Record {
    use kheo_shared::codes::{IncidentCategory, IncidentOutcome, ReviewState, SupportType};
    use kheo_shared::record::{Activity, Incident};
    use rand::Rng;
    const CATEGORIES: [IncidentCategory; 3] =
        [IncidentCategory::Theft, IncidentCategory::Gambling, IncidentCategory::Traffic];
    const OUTCOMES: [IncidentOutcome; 3] =
        [IncidentOutcome::HandledByTeam, IncidentOutcome::HandedToPolice, IncidentOutcome::SupportedPolice];
    let (year, month) = if rng.random_bool(0.1) { (2024, 12) } else { (2025, rng.random_range(1..=13)) };
    let (year, month) = if month == 13 { (2026, 1) } else { (year, month) };
    let day = format!("{year}-{month:02}-{:02}", rng.random_range(1..=28));
    let n = rng.random_range(0..1000);
    let mut r = kheo_shared::testdata::any_record(id, &day, n);
    r.deleted = rng.random_bool(0.15);
    r.review.state = [ReviewState::New, ReviewState::Approved, ReviewState::Returned][rng.random_range(0..3)];
    match &mut r.activity {
        Activity::Patrol(p) => {
            p.incidents = (0..rng.random_range(0..4))
                .map(|i| Incident {
                    id: format!("{id}-{i}"),
                    category: CATEGORIES[rng.random_range(0..3)],
                    description: String::new(),
                    outcome: OUTCOMES[rng.random_range(0..3)],
                    location: None,
                })
                .collect();
        }
        Activity::HouseholdSupport(h) => {
            h.receiver = ["Hộ bà Bình", "hộ bà bình ", "Hộ ông An", "Hộ ông Tư"][rng.random_range(0..4)].into();
            h.support_type =
                [SupportType::Money, SupportType::HouseRepair, SupportType::Workdays][rng.random_range(0..3)];
            h.amount_vnd = rng.random_range(0..5_000_000);
            h.workdays = f64::from(rng.random_range(0..9_u8)) / 2.0;
        }
        Activity::Production(p) => p.revenue_vnd = rng.random_range(0..90_000_000),
        Activity::Meeting(m) => m.attendees = rng.random_range(0..60),
    }
    r
}

/// The monthly pre-aggregates against the record rows they sum: random
/// records of a few models are written, rewritten (another kind, month,
/// model or review state, deleted, undeleted) in random batches, with the
/// start-up rebuild's habit of writing rows again unchanged; after each
/// batch every figure of a set of periods (whole months, parts of months
/// at either end, one day, across a year's end, approved only or not)
/// equals the old sums over the record rows, and so does the whole rollup.
pub async fn monthly_figures_equal_the_record_rows_they_sum<S: Store + Directory + ReportStore>(store: &S) {
    use kheo_shared::ids::RecordId;
    use rand::{Rng, SeedableRng};

    let seed = rand::random::<u64>();
    eprintln!("monthly figures: seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let tree = crate::org::demo();
    let units: Vec<String> = tree.units().map(|u| u.code.clone()).collect();
    let models: Vec<ModelId> = (0..4).map(|_| ModelId::new_random()).collect();
    let profiles = models.iter().enumerate().map(|(i, m)| {
        ReadModelWrite::Model(crate::read_model::ModelRow {
            profile: kheo_shared::testdata::model(*m, &units[(i * 7) % units.len()]),
        })
    });
    store.commit(&[WriteBatch { read_model: profiles.collect(), ..WriteBatch::default() }]).await.unwrap();
    let periods = [
        ("2025-01-01", "2025-12-31"),
        ("2024-12-01", "2026-01-31"),
        ("2025-03-01", "2025-03-31"),
        ("2025-02-01", "2025-02-28"),
        ("2025-03-15", "2025-06-10"),
        ("2025-03-01", "2025-05-20"),
        ("2025-03-02", "2025-05-31"),
        ("2025-04-09", "2025-04-09"),
        ("2025-04-02", "2025-04-27"),
        ("2024-12-31", "2025-01-01"),
        ("2024-12-20", "2026-01-05"),
    ];
    let mut ids: Vec<(RecordId, ModelId)> = Vec::new();
    let mut written: Vec<ReadModelWrite> = Vec::new();
    for round in 0..12 {
        let mut batch = WriteBatch::default();
        for _ in 0..rng.random_range(5..40) {
            let (id, model) = if ids.is_empty() || rng.random_bool(0.4) {
                let fresh = (RecordId::new_random(), models[rng.random_range(0..models.len())]);
                ids.push(fresh);
                fresh
            } else {
                let (id, model) = ids[rng.random_range(0..ids.len())];
                // Now and then a record's row moves to another model.
                if rng.random_bool(0.05) { (id, models[rng.random_range(0..models.len())]) } else { (id, model) }
            };
            let row = ReadModelWrite::Record(RecordRow::from_record(model, &random_record(&mut rng, id)));
            written.push(row.clone());
            batch.read_model.push(row);
        }
        // Rows written again as they are, as a rebuild does.
        for _ in 0..rng.random_range(0..5) {
            batch.read_model.push(written[rng.random_range(0..written.len())].clone());
        }
        store.commit(&[batch]).await.unwrap();
        for (from, to) in periods {
            for approved_only in [false, true] {
                let what = format!("round {round}, {from}..{to}, approved only {approved_only}, seed {seed}");
                let mut oracle = store.activity_from_records(from, to, approved_only).await.unwrap();
                oracle.sort_by(|a, b| a.model.cmp(&b.model));
                let mut monthly = store.activity(from, to, approved_only).await.unwrap();
                monthly.sort_by(|a, b| a.model.cmp(&b.model));
                assert_eq!(monthly, oracle, "activity, {what}");
                let key = |i: &super::reports::IncidentCount| (i.model.clone(), i.category.clone(), i.outcome.clone());
                let mut oracle = store.incidents_from_records(from, to, approved_only).await.unwrap();
                oracle.sort_by_key(key);
                let mut monthly = store.incidents(from, to, approved_only).await.unwrap();
                monthly.sort_by_key(key);
                assert_eq!(monthly, oracle, "incidents, {what}");
                let period = crate::reports::Period::parse(from, to).unwrap();
                let grouping = crate::reports::Grouping::Model;
                let rollup =
                    |figures| crate::reports::rollup_of(figures, store, &tree, None, period, grouping, approved_only);
                use crate::reports::Figures;
                let reports = (rollup(Figures::Monthly).await.unwrap(), rollup(Figures::Records).await.unwrap());
                assert_eq!(reports.0, reports.1, "rollup, {what}");
            }
        }
    }
}

#[macro_export]
macro_rules! store_contract_tests {
    ($open:expr) => {
        $crate::store_contract_tests!(@each $open;
            a_write_on_a_version_that_moved_keeps_nothing_of_its_batch,
            a_conflict_leaves_out_its_batch_alone,
            a_snapshot_deletes_only_the_chunks_it_covers,
            a_copy_catches_up_from_the_chunks_after_its_version,
            the_quarantine_is_capped_per_device_in_entries_and_bytes,
            versions_in_units_name_each_document_of_the_units_models_and_no_other,
            versions_synced_by_name_the_devices_synced_documents_only,
            a_record_keeps_each_kinds_details_for_the_export,
            rows_derived_from_a_document_are_kept_only_while_it_is_unchanged,
            each_write_stores_its_heads_or_unknown_and_the_backfill_fills_them,
            monthly_figures_equal_the_record_rows_they_sum
        );
    };
    (@each $open:expr; $($test:ident),*) => {
        $(
            #[tokio::test]
            async fn $test() {
                // `None` when the backend is not available here.
                let Some((store, _keep)) = $open.await else { return };
                $crate::store::contract::$test(&*store).await;
            }
        )*
    };
}

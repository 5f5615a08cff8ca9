//! The pure pipeline played against real device replicas: no runtime, no
//! store. [`Sim`] is `SyncService::handle` with its IO replaced by maps (the
//! hot documents, the sync states, the store's snapshots and chunks, the
//! quarantine), calling the same steps in the same order.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use automerge::{ActorId, AutoCommit, ChangeHash, ReadDoc};
use kheo_shared::client::Replica;
use kheo_shared::codes::Role;
use kheo_shared::ids::{DocId, ModelId, RecordId};
use kheo_shared::protocol::{PROTOCOL_VERSION, SyncRequest, SyncResponse};
use kheo_shared::scalars::Timestamp;
use kheo_shared::{schema, testdata};

use super::{Decoded, DocInput, Plan, Quarantine, decode, pipeline, plan, quiet};
use crate::access::Scope;
use crate::auth::Principal;
use crate::changes::Cursor;
use crate::docs::HotDoc;
use crate::error::AppError;
use crate::org::OrgTree;
use crate::org::demo;
use crate::store::{DocWrite, ScopeDoc, StoredDoc, Version};

const UNIT: &str = "QNA.TK.TT";
/// The one server process of the simulation.
const WRITER: i64 = 7;

/// The server: `handle`'s IO as maps, the pure steps as they are.
struct Sim {
    org: OrgTree,
    actor: ActorId,
    hots: BTreeMap<DocId, HotDoc>,
    /// Documents ever locked (loaded), to see what a refusal touched.
    loaded: BTreeSet<DocId>,
    states: BTreeMap<(String, DocId), Vec<u8>>,
    units: HashMap<ModelId, String>,
    /// What the store holds of each document: a snapshot and chunks after it.
    store: BTreeMap<DocId, (Vec<u8>, Vec<Vec<u8>>)>,
    versions: BTreeMap<DocId, Version>,
    /// The heads stored beside each document (`None`: unknown).
    heads: BTreeMap<DocId, Option<Vec<u8>>>,
    quarantine: Vec<Quarantine>,
}

impl Sim {
    fn new() -> Self {
        Sim {
            org: demo(),
            actor: ActorId::random(),
            hots: BTreeMap::new(),
            loaded: BTreeSet::new(),
            states: BTreeMap::new(),
            units: HashMap::new(),
            store: BTreeMap::new(),
            versions: BTreeMap::new(),
            heads: BTreeMap::new(),
            quarantine: Vec::new(),
        }
    }

    fn known(&self, requested: &BTreeSet<DocId>) -> HashMap<ModelId, String> {
        requested.iter().filter_map(|id| self.units.get(&id.model()).map(|u| (id.model(), u.clone()))).collect()
    }

    fn handle(&mut self, who: &Principal, now: Timestamp, request: SyncRequest) -> Result<SyncResponse, AppError> {
        let Decoded { messages, requested, full, quiet, .. } = decode(request)?;
        if quiet.is_some_and(|q| !q.is_for(who)) {
            return Err(AppError::StaleCursor);
        }
        let scope = Scope { who, org: &self.org };
        let cursor = (full || quiet.is_some()).then(|| quiet::QuietCursor::new(who, self.cursor(who)));
        if let Err(refusal) = pipeline::check_read_scope(&scope, &self.known(&requested), &messages) {
            self.quarantine.extend(refusal.quarantine);
            return Err(refusal.error);
        }
        // Lock and load: a document the store never held comes back empty.
        for id in messages.keys() {
            self.loaded.insert(*id);
            let actor = self.actor.clone();
            self.hots.entry(*id).or_insert_with(|| HotDoc::empty(actor, WRITER));
        }
        let known = self.known(&requested);
        let ids: BTreeSet<DocId> = messages.keys().copied().collect();
        let hots = self.hots.iter_mut().filter(|(id, _)| ids.contains(id));
        let inputs = messages
            .into_iter()
            .zip(hots)
            .map(|((id, gated), (hot_id, hot))| {
                assert_eq!(id, *hot_id);
                let state = self.states.get(&(who.device_id.clone(), id));
                let state = state.map(|b| automerge::sync::State::decode(b).unwrap_or_default()).unwrap_or_default();
                DocInput { id, hot, state, gated }
            })
            .collect();
        let Plan { installs, batch, replies, model_units } = match plan(now, who, &self.org, &known, inputs) {
            Ok(plan) => plan,
            Err(refusal) => {
                self.restore_dirty();
                self.quarantine.extend(refusal.quarantine);
                return Err(refusal.error);
            }
        };
        for install in installs {
            let hot = self.hots.get_mut(&install.id).expect("locked");
            install.apply(hot);
        }
        // The commit, with the store's version check.
        for write in batch.docs {
            self.heads.insert(write.doc(), batch.heads.get(&write.doc()).cloned());
            let (base, next) = write.versions();
            let stored = self.versions.get(&write.doc()).copied().unwrap_or(Version::NONE);
            assert_eq!(stored, base, "one process: every write is made on the stored version");
            self.versions.insert(write.doc(), next);
            match write {
                DocWrite::Snapshot { doc, bytes, .. } => {
                    self.store.insert(doc, (bytes, Vec::new()));
                }
                DocWrite::Append { doc, chunk, .. } => self.store.entry(doc).or_default().1.push(chunk),
            }
        }
        for (device, doc, state) in batch.sync_states {
            self.states.insert((device, doc), state);
        }
        assert_eq!(batch.model_units.len(), model_units.len());
        self.units.extend(model_units);
        let mut replies = replies;
        let (missing, complete) = match quiet {
            Some(since) if Some(since) == cursor => (Vec::new(), true),
            Some(_) => {
                let scope_docs = self
                    .in_scope(who)
                    .into_iter()
                    .map(|(id, version)| ScopeDoc {
                        id,
                        version,
                        heads: self.heads.get(&id).cloned().flatten(),
                        state: self.states.get(&(who.device_id.clone(), id)).cloned(),
                    })
                    .collect();
                let news = quiet::news(scope_docs, &requested);
                let mut budget = quiet::MAX_PUSH_BYTES;
                for (id, state) in news.tell {
                    let hot = self.hots.get_mut(&id).expect("a stored document is hot in the simulation");
                    replies.push(quiet::tell(id, hot, state, &mut budget)?);
                }
                (news.missing, !news.truncated)
            }
            None if full => {
                let in_scope =
                    |id: &DocId| self.units.get(&id.model()).is_some_and(|u| scope_covers(&self.org, who, u));
                (self.store.keys().filter(|id| !requested.contains(id) && in_scope(id)).copied().collect(), true)
            }
            None => (Vec::new(), true),
        };
        let cursor = cursor.filter(|_| complete).map(|c| c.to_string());
        Ok(SyncResponse { v: PROTOCOL_VERSION, docs: replies, missing, cursor })
    }

    /// The stored versions of the documents in `who`'s scope, by id.
    fn in_scope(&self, who: &Principal) -> Vec<(DocId, Version)> {
        let covers = |id: &DocId| self.units.get(&id.model()).is_some_and(|u| scope_covers(&self.org, who, u));
        self.versions.iter().filter(|(id, _)| covers(id)).map(|(id, v)| (*id, *v)).collect()
    }

    /// What `changes::scope_cursor` reads from the store.
    fn cursor(&self, who: &Principal) -> Cursor {
        Cursor::of(&self.in_scope(who))
    }

    /// A refusal's documents reloaded from the store, as `handle` does.
    fn restore_dirty(&mut self) {
        for (id, hot) in self.hots.iter_mut().filter(|(_, h)| h.dirty) {
            *hot = match self.store.get(id) {
                Some((snapshot, chunks)) => {
                    let version = self.versions[id];
                    let stored = StoredDoc { snapshot: snapshot.clone(), chunks: chunks.clone(), version };
                    HotDoc::from_stored(id, &stored, self.actor.clone(), WRITER).expect("the store loads")
                }
                None => HotDoc::empty(self.actor.clone(), WRITER),
            };
        }
    }

    /// What a reload from the store would give: its heads.
    fn reloaded_heads(&self, id: &DocId) -> Vec<ChangeHash> {
        let (snapshot, chunks) = &self.store[id];
        let mut doc = if snapshot.is_empty() { AutoCommit::new() } else { AutoCommit::load(snapshot).unwrap() };
        for chunk in chunks {
            doc.load_incremental(chunk).unwrap();
        }
        doc.get_heads()
    }

    /// Everything of the server's memory a refused request must not change.
    fn fingerprint(&mut self) -> Fingerprint {
        let hots: Vec<_> = self
            .hots
            .iter_mut()
            .map(|(id, h)| {
                (*id, h.doc.save(), h.stored, h.chunks_since_snapshot, h.waiting.keys().copied().collect::<Vec<_>>())
            })
            .collect();
        let mut units: Vec<_> = self.units.clone().into_iter().collect();
        units.sort();
        (hots, self.states.clone(), units, self.store.clone())
    }
}

type Fingerprint = (
    Vec<(DocId, Vec<u8>, bool, usize, Vec<ChangeHash>)>,
    BTreeMap<(String, DocId), Vec<u8>>,
    Vec<(ModelId, String)>,
    BTreeMap<DocId, (Vec<u8>, Vec<Vec<u8>>)>,
);

fn scope_covers(org: &OrgTree, who: &Principal, unit: &str) -> bool {
    Scope { who, org }.covers(unit)
}

/// A phone: its replica and who the server knows it as.
struct Phone {
    replica: Replica,
    who: Principal,
    /// Whether a session is under way, and whether its first round was sent.
    in_session: Option<bool>,
}

impl Phone {
    fn new(n: usize, role: Role, unit: &str) -> Self {
        let actor = ActorId::random();
        let who = Principal {
            device_id: format!("device-{n}"),
            account_id: format!("account-{n}"),
            username: format!("user{n}"),
            role,
            unit: unit.into(),
            actor: actor.clone(),
        };
        Phone { replica: Replica::new(actor), who, in_session: None }
    }

    /// One round of a session (started if none is); false once it is done.
    fn round(&mut self, server: &mut Sim, now: Timestamp) -> Result<bool, AppError> {
        let first = match self.in_session {
            None => {
                self.replica.start_session();
                true
            }
            Some(sent) => !sent,
        };
        self.in_session = Some(true);
        let request = self.replica.request(first);
        if request.docs.is_empty() && !first {
            self.in_session = None;
            self.replica.finish_session();
            return Ok(false);
        }
        let response = server.handle(&self.who, now, request)?;
        self.replica.receive(response).expect("the server's answer applies");
        Ok(true)
    }

    /// A session until the server refuses a request: the refusal, and the
    /// server's fingerprint just before that request.
    fn refused(&mut self, server: &mut Sim, now: Timestamp) -> (AppError, Fingerprint) {
        self.replica.start_session();
        for round in 0..10 {
            let before = server.fingerprint();
            match server.handle(&self.who, now, self.replica.request(round == 0)) {
                Ok(response) => self.replica.receive(response).expect("the server's answer applies"),
                Err(e) => return (e, before),
            }
        }
        panic!("{} was never refused", self.who.device_id)
    }

    /// A whole session; returns its rounds.
    fn sync(&mut self, server: &mut Sim, now: &mut Timestamp) -> Result<usize, AppError> {
        self.in_session = None;
        let mut rounds = 0;
        while self.round(server, *now)? {
            now.0 += 1_000;
            rounds += 1;
            assert!(rounds < 20, "{} does not converge", self.who.device_id);
        }
        Ok(rounds)
    }

    fn add_record(&mut self, log: DocId, now: Timestamp, record: &kheo_shared::record::Record) {
        let DocId::Log { model, year } = log else { unreachable!() };
        let fresh = self.replica.doc(&log).is_none_or(|d| d.get(automerge::ROOT, "type").ok().flatten().is_none());
        self.replica
            .edit(log, now, |d| {
                if fresh {
                    schema::init_log(d, model, year)?;
                }
                schema::put_record(d, record)
            })
            .expect("a record");
    }
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
    }
}

/// Province staff creates `n` models in [`UNIT`] and syncs them.
fn with_models(server: &mut Sim, now: &mut Timestamp, n: usize) -> (Phone, Vec<ModelId>) {
    let mut staff = Phone::new(0, Role::ProvinceStaff, "QNA");
    let models: Vec<ModelId> = (0..n).map(|_| ModelId::new_random()).collect();
    for m in &models {
        let profile = testdata::model(*m, UNIT);
        staff.replica.edit(DocId::Model(*m), *now, |d| schema::put_model(d, &profile)).expect("a model");
    }
    staff.sync(server, now).expect("the staff's models are accepted");
    (staff, models)
}

fn records_of(doc: &AutoCommit, id: &DocId) -> BTreeSet<RecordId> {
    schema::read_log(doc, id).expect("a valid log").records.keys().copied().collect()
}

#[test]
fn devices_editing_offline_in_interleaved_sessions_converge_with_every_record() {
    let mut lost_answers = 0;
    for seed in 1..=3u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let mut server = Sim::new();
        let mut now = Timestamp(1_750_000_000_000);
        let (staff, models) = with_models(&mut server, &mut now, 2);
        let mut phones: Vec<Phone> = (1..=3).map(|n| Phone::new(n, Role::Volunteer, UNIT)).collect();
        for phone in &mut phones {
            phone.sync(&mut server, &mut now).expect("a first sync");
            assert!(
                models.iter().all(|m| phone.replica.doc(&DocId::Model(*m)).is_some()),
                "the models reach the phone"
            );
        }
        let logs: Vec<DocId> =
            models.iter().flat_map(|m| [2024, 2025].map(|y| DocId::log(*m, y).expect("a year"))).collect();
        // Every record written, by log, and the meetings that may be edited again.
        let mut written: BTreeMap<DocId, BTreeSet<RecordId>> = BTreeMap::new();
        let mut meetings: Vec<(DocId, RecordId)> = Vec::new();
        for step in 0..250 {
            now.0 += 1_000;
            let p = rng.below(phones.len());
            let phone = &mut phones[p];
            match rng.below(10) {
                // Offline edits: a new record, or a meeting edited again (perhaps another phone's).
                0..=3 => {
                    let log = logs[rng.below(logs.len())];
                    let id = RecordId::new_random();
                    let day = format!(
                        "{}-0{}-1{}",
                        2024 + (logs.iter().position(|l| *l == log).unwrap() % 2),
                        1 + rng.below(9),
                        rng.below(10)
                    );
                    let record = if rng.below(2) == 0 {
                        meetings.push((log, id));
                        testdata::meeting(id, &day, 1 + rng.below(50) as u32)
                    } else {
                        testdata::any_record(id, &day, step)
                    };
                    phone.add_record(log, now, &record);
                    written.entry(log).or_default().insert(id);
                }
                4 if !meetings.is_empty() => {
                    let (log, id) = meetings[rng.below(meetings.len())];
                    let Some(doc) = phone.replica.doc(&log) else { continue };
                    let Some(mut record) = schema::read_log(doc, &log).expect("valid").records.remove(&id) else {
                        continue;
                    };
                    if let kheo_shared::record::Activity::Meeting(m) = &mut record.activity {
                        m.attendees += 1;
                    }
                    phone.replica.edit(log, now, |d| schema::put_record(d, &record)).expect("an edit");
                }
                // A round of this phone's session, its answer sometimes lost.
                5..=8 => {
                    if rng.below(8) == 0 && phone.in_session.is_some() {
                        let request = phone.replica.request(false);
                        if !request.docs.is_empty() {
                            server.handle(&phone.who, now, request).expect("accepted");
                            lost_answers += 1;
                        }
                        phone.replica.abort_session();
                        phone.in_session = None;
                    } else {
                        phone.round(&mut server, now).expect("accepted");
                    }
                }
                _ => {
                    phone.replica.abort_session();
                    phone.in_session = None;
                }
            }
        }
        // Everyone online until nothing moves.
        for _ in 0..3 {
            for phone in &mut phones {
                phone.sync(&mut server, &mut now).expect("accepted");
            }
        }
        let mut phones_and_staff: Vec<Phone> = phones;
        phones_and_staff.push(staff);
        for phone in &mut phones_and_staff {
            phone.sync(&mut server, &mut now).expect("accepted");
        }
        for phone in &mut phones_and_staff {
            assert_eq!(
                phone.sync(&mut server, &mut now).expect("accepted"),
                1,
                "seed {seed}: a quiet session is one round"
            );
            assert_eq!(
                phone.replica.unsynced_changes(),
                0,
                "seed {seed}: {} has unsynced changes",
                phone.who.device_id
            );
        }
        assert!(!written.is_empty(), "seed {seed}: the run wrote records");
        for (log, ids) in &written {
            let hot = server.hots.get_mut(log).expect("the log reached the server");
            assert!(hot.waiting.is_empty(), "seed {seed}: nothing waits at the end");
            let heads = hot.doc.get_heads();
            assert_eq!(records_of(&hot.doc, log), *ids, "seed {seed}: the server holds every record of {log}");
            assert_eq!(server.reloaded_heads(log), heads, "seed {seed}: the store reloads to the same document");
            for phone in &mut phones_and_staff {
                assert_eq!(phone.replica.heads(log), heads, "seed {seed}: {} converged on {log}", phone.who.device_id);
                let doc = phone.replica.doc(log).expect("every phone holds the log");
                assert_eq!(records_of(doc, log), *ids, "seed {seed}: {} holds every record", phone.who.device_id);
            }
        }
        for hot in server.hots.values_mut() {
            assert!(hot.doc.get_heads().len() <= super::MAX_HEADS + 1, "seed {seed}: heads collapse");
        }
        assert!(server.quarantine.is_empty(), "seed {seed}: nothing refused");
    }
    assert!(lost_answers > 0, "some answers were lost on the way");
}

#[test]
fn a_refused_request_leaves_the_server_as_it_was() {
    let mut server = Sim::new();
    let mut now = Timestamp(1_750_000_000_000);
    let (_staff, models) = with_models(&mut server, &mut now, 1);
    let model = models[0];
    let log = DocId::log(model, 2025).expect("a year");
    let mut phone = Phone::new(1, Role::Volunteer, UNIT);
    phone.sync(&mut server, &mut now).expect("a first sync");
    phone.add_record(log, now, &testdata::meeting(RecordId::new_random(), "2025-03-01", 12));
    phone.sync(&mut server, &mut now).expect("a record is accepted");

    // A good record and a model edit a volunteer may not make, in one request.
    phone.add_record(log, now, &testdata::meeting(RecordId::new_random(), "2025-03-02", 7));
    let mut profile = testdata::model(model, UNIT);
    profile.members += 1;
    phone.replica.edit(DocId::Model(model), now, |d| schema::put_model(d, &profile)).expect("an edit");
    let (refused, before) = phone.refused(&mut server, now);
    assert!(matches!(refused, AppError::Forbidden { rule: "model_needs_staff", .. }), "{refused}");
    assert_eq!(server.fingerprint(), before, "nothing of a refused request is installed or stored");
    assert_eq!(server.quarantine.len(), 1);
    assert_eq!((server.quarantine[0].doc, server.quarantine[0].rule), (DocId::Model(model), "model_needs_staff"));
    assert!(!server.quarantine[0].changes.is_empty(), "the refused changes are kept");

    // A schema violation: quarantined as such, nothing kept.
    let mut other = Phone::new(2, Role::Volunteer, UNIT);
    other.sync(&mut server, &mut now).expect("a first sync");
    other.replica.edit(log, now, |d| automerge::transaction::Transactable::put(d, automerge::ROOT, "junk", 1)).unwrap();
    let (refused, before) = other.refused(&mut server, now);
    assert!(matches!(refused, AppError::SchemaViolation { .. }), "{refused}");
    assert_eq!(server.fingerprint(), before);
    assert_eq!(server.quarantine.last().map(|q| q.rule), Some("schema"));

    // Out of scope: refused from what is in memory, before the document is loaded.
    let mut outsider = Phone::new(3, Role::Volunteer, "QNA.DB.DP");
    let new_log = DocId::log(model, 2023).expect("a year");
    outsider.add_record(new_log, now, &testdata::meeting(RecordId::new_random(), "2023-05-05", 3));
    let quarantined = server.quarantine.len();
    let (refused, before) = outsider.refused(&mut server, now);
    assert!(matches!(refused, AppError::Forbidden { rule: "out_of_scope", .. }), "{refused}");
    assert!(!server.loaded.contains(&new_log), "refused before its lock");
    assert_eq!(server.fingerprint(), before);
    // Its first message carries no changes yet: nothing to keep.
    assert_eq!(server.quarantine.len(), quarantined);

    // The phone's good record goes through once the bad edit is gone.
    let mut fixed = Phone::new(1, Role::Volunteer, UNIT);
    fixed.sync(&mut server, &mut now).expect("a clean phone syncs");
    assert_eq!(records_of(&server.hots.get(&log).expect("hot").doc, &log).len(), 1, "the refused record was not kept");
}

/// A volunteer's phone with its model's 2025 log synced, holding one record.
fn phone_with_log(server: &mut Sim, now: &mut Timestamp) -> (Phone, DocId) {
    let (_staff, models) = with_models(server, now, 1);
    let log = DocId::log(models[0], 2025).expect("a year");
    let mut phone = Phone::new(1, Role::Volunteer, UNIT);
    phone.add_record(log, *now, &testdata::meeting(RecordId::new_random(), "2025-01-02", 5));
    phone.sync(server, now).expect("a first sync");
    (phone, log)
}

#[test]
fn a_reconnect_with_new_records_takes_one_round_trip() {
    let mut server = Sim::new();
    let mut now = Timestamp(1_750_000_000_000);
    let (mut phone, log) = phone_with_log(&mut server, &mut now);
    for i in 0..20 {
        phone.add_record(log, now, &testdata::any_record(RecordId::new_random(), "2025-06-01", i));
    }
    assert_eq!(phone.replica.unsynced_changes(), 20);
    assert_eq!(phone.sync(&mut server, &mut now).expect("accepted"), 1, "the changes go in the first request");
    assert_eq!(phone.replica.unsynced_changes(), 0);
    assert_eq!(server.hots.get_mut(&log).expect("hot").doc.get_heads(), phone.replica.heads(&log));
    assert_eq!(server.reloaded_heads(&log), phone.replica.heads(&log), "and the store has them");
    assert_eq!(records_of(&server.hots[&log].doc, &log).len(), 21);
}

#[test]
fn a_reconnect_sends_its_records_packed_and_the_server_holds_the_very_changes() {
    let mut server = Sim::new();
    let mut now = Timestamp(1_750_000_000_000);
    let (mut phone, log) = phone_with_log(&mut server, &mut now);
    for i in 0..20 {
        phone.add_record(log, now, &testdata::any_record(RecordId::new_random(), "2025-06-01", i));
    }
    phone.replica.start_session();
    let request = phone.replica.request(true);
    assert_eq!(request.v, kheo_shared::protocol::PACKED_VERSION);
    let m = &request.docs[0];
    assert!(m.packed.is_some(), "the 20 changes go packed");
    assert!(automerge::sync::Message::decode(&m.msg).expect("a message").changes.is_empty());
    let response = server.handle(&phone.who, now, request).expect("accepted");
    phone.replica.receive(response).expect("applies");
    assert_eq!(server.reloaded_heads(&log), phone.replica.heads(&log), "the same change hashes, stored");
    assert_eq!(records_of(&server.hots[&log].doc, &log).len(), 21);
}

#[test]
fn a_phone_speaking_version_1_still_syncs() {
    let mut server = Sim::new();
    let mut now = Timestamp(1_750_000_000_000);
    let (mut phone, log) = phone_with_log(&mut server, &mut now);
    phone.replica.stop_packing();
    for i in 0..5 {
        phone.add_record(log, now, &testdata::any_record(RecordId::new_random(), "2025-06-01", i));
    }
    phone.replica.start_session();
    let request = phone.replica.request(true);
    assert_eq!(request.v, PROTOCOL_VERSION);
    assert!(request.docs.iter().all(|m| m.packed.is_none()));
    let response = server.handle(&phone.who, now, request).expect("accepted");
    phone.replica.receive(response).expect("applies");
    phone.sync(&mut server, &mut now).expect("the session ends");
    assert_eq!(server.reloaded_heads(&log), phone.replica.heads(&log));
    assert_eq!(records_of(&server.hots[&log].doc, &log).len(), 6);
}

#[test]
fn a_pack_that_does_not_rebuild_is_refused_and_changes_nothing() {
    let mut server = Sim::new();
    let mut now = Timestamp(1_750_000_000_000);
    let (mut phone, log) = phone_with_log(&mut server, &mut now);
    for i in 0..3 {
        phone.add_record(log, now, &testdata::any_record(RecordId::new_random(), "2025-06-01", i));
    }
    let mut refusals = 0;
    for at in [0.2, 0.5, 0.8, 0.99] {
        phone.replica.start_session();
        let mut request = phone.replica.request(true);
        let pack = request.docs[0].packed.as_mut().expect("packed");
        let i = (pack.len() as f64 * at) as usize;
        pack[i] ^= 0x10;
        let before = server.fingerprint();
        match server.handle(&phone.who, now, request) {
            Err(AppError::BadPacked { .. }) => refusals += 1,
            other => panic!("a damaged pack at {i} was not refused: {other:?}"),
        }
        assert!(server.fingerprint() == before, "the refusal changed the server");
        phone.replica.abort_session();
    }
    assert_eq!(refusals, 4);
    // A version-1 request may not carry a pack at all.
    phone.replica.start_session();
    let mut request = phone.replica.request(true);
    request.v = PROTOCOL_VERSION;
    assert!(matches!(server.handle(&phone.who, now, request), Err(AppError::MalformedBody(_))));
    phone.replica.abort_session();
    // The app's answer to `bad_packed`: the same changes, unpacked.
    phone.replica.stop_packing();
    phone.sync(&mut server, &mut now).expect("accepted unpacked");
    assert_eq!(server.reloaded_heads(&log), phone.replica.heads(&log));
    assert_eq!(records_of(&server.hots[&log].doc, &log).len(), 4);
}

#[test]
fn a_backlog_larger_than_one_request_goes_over_several_within_the_budget() {
    let mut server = Sim::new();
    let mut now = Timestamp(1_750_000_000_000);
    let (mut phone, log) = phone_with_log(&mut server, &mut now);
    let n = kheo_shared::protocol::MAX_CHANGES_PER_REQUEST + 200;
    for _ in 0..n {
        phone.add_record(log, now, &testdata::meeting(RecordId::new_random(), "2025-06-01", 3));
    }
    phone.replica.start_session();
    let mut rounds = 0;
    loop {
        let request = phone.replica.request(rounds == 0);
        if request.docs.is_empty() {
            break;
        }
        for m in &request.docs {
            let packed = m.packed.as_ref().map_or(0, |p| {
                kheo_shared::packed::unpack(p, &kheo_shared::packed::Budget::default()).expect("a pack").len()
            });
            let changes = automerge::sync::Message::decode(&m.msg).expect("a message").changes.len() + packed;
            assert!(changes <= kheo_shared::protocol::MAX_CHANGES_PER_REQUEST, "{changes} changes in one request");
        }
        rounds += 1;
        assert!(rounds < 10, "no convergence");
        let response = server.handle(&phone.who, now, request).expect("each request is within the budget");
        phone.replica.receive(response).expect("the answer applies");
    }
    assert!(rounds >= 2, "{rounds} rounds: more changes than one request takes");
    assert_eq!(server.reloaded_heads(&log), phone.replica.heads(&log));
    assert_eq!(records_of(&server.hots[&log].doc, &log).len(), n + 1);
}

#[test]
fn an_aborted_session_is_retried_without_loss() {
    let mut server = Sim::new();
    let mut now = Timestamp(1_750_000_000_000);
    let (mut phone, log) = phone_with_log(&mut server, &mut now);
    phone.add_record(log, now, &testdata::meeting(RecordId::new_random(), "2025-06-02", 4));
    phone.replica.start_session();
    let first = phone.replica.request(true);
    let answered = server.handle(&phone.who, now, first).expect("the first round");
    phone.replica.receive(answered).expect("applies");
    let _lost = phone.replica.request(false); // its changes never reach the server
    phone.replica.abort_session();
    phone.sync(&mut server, &mut now).expect("the retry");
    assert_eq!(server.reloaded_heads(&log), phone.replica.heads(&log));
    assert_eq!(records_of(&server.hots[&log].doc, &log).len(), 2);
}

/// The bytes of a request and of its answer as they go over the wire.
fn wire(request: &SyncRequest, response: &SyncResponse) -> (usize, usize) {
    (kheo_shared::protocol::encode(request).len(), kheo_shared::protocol::encode(response).len())
}

#[test]
fn a_device_holding_a_thousand_quiet_documents_syncs_in_one_small_request() {
    let mut server = Sim::new();
    let mut now = Timestamp(1_750_000_000_000);
    let (_staff, models) = with_models(&mut server, &mut now, 1_000);
    let mut phone = Phone::new(1, Role::Volunteer, UNIT);
    phone.sync(&mut server, &mut now).expect("a first sync");
    assert_eq!(phone.replica.doc_ids().count(), 1_000);
    assert!(phone.replica.quiet_cursor().is_some(), "a finished session leaves a cursor");

    // Nothing new on either side: one request, a few dozen bytes each way.
    phone.replica.start_session();
    let request = phone.replica.request(true);
    assert!(request.docs.is_empty() && request.quiet.is_some());
    let response = server.handle(&phone.who, now, request.clone()).expect("accepted");
    assert!(response.docs.is_empty() && response.missing.is_empty());
    let (up, down) = wire(&request, &response);
    assert!(up < 2048 && down < 2048, "{up} bytes up, {down} down");
    phone.replica.receive(response).expect("applies");
    assert!(phone.replica.request(false).docs.is_empty(), "the session is over after one round");
    phone.replica.finish_session();

    // The old way, for the record: a full request names every document.
    phone.replica.set_quiet_cursor(None);
    phone.replica.start_session();
    let full = phone.replica.request(true);
    assert_eq!(full.docs.len(), models.len());
}

#[test]
fn a_quiet_phone_receives_another_devices_record_in_its_first_answer() {
    let mut server = Sim::new();
    let mut now = Timestamp(1_750_000_000_000);
    let (mut writer, log) = phone_with_log(&mut server, &mut now);
    let mut reader = Phone::new(2, Role::Volunteer, UNIT);
    reader.sync(&mut server, &mut now).expect("a first sync");
    reader.sync(&mut server, &mut now).expect("and a quiet one");
    let record = testdata::meeting(RecordId::new_random(), "2025-04-01", 9);
    writer.add_record(log, now, &record);
    writer.sync(&mut server, &mut now).expect("accepted");

    reader.replica.start_session();
    let request = reader.replica.request(true);
    assert!(request.docs.is_empty(), "the reader has nothing of its own to say");
    let response = server.handle(&reader.who, now, request).expect("accepted");
    assert_eq!(response.docs.len(), 1, "one message, for the log that moved");
    reader.replica.receive(response).expect("applies");
    let doc = reader.replica.doc(&log).expect("held");
    assert!(records_of(doc, &log).contains(&record.id), "the record came in the first answer");
    // The rest of the session acknowledges it and ends.
    reader.in_session = Some(true);
    let mut rounds = 1;
    while reader.round(&mut server, now).expect("accepted") {
        rounds += 1;
    }
    assert!(rounds <= 2, "{rounds} rounds");
    assert_eq!(reader.sync(&mut server, &mut now).expect("accepted"), 1, "and the next session is quiet again");
}

#[test]
fn a_stale_or_forged_cursor_costs_a_comparison_never_a_record() {
    let mut server = Sim::new();
    let mut now = Timestamp(1_750_000_000_000);
    let (mut writer, log) = phone_with_log(&mut server, &mut now);
    let mut reader = Phone::new(2, Role::Volunteer, UNIT);
    reader.sync(&mut server, &mut now).expect("a first sync");
    let record = testdata::meeting(RecordId::new_random(), "2025-04-02", 3);
    writer.add_record(log, now, &record);
    writer.sync(&mut server, &mut now).expect("accepted");

    // A cursor of the reader's scope that names nothing the server ever said.
    let forged = quiet::QuietCursor::new(&reader.who, Cursor::from_bytes([7; 16]));
    reader.replica.set_quiet_cursor(Some(forged.to_string()));
    reader.sync(&mut server, &mut now).expect("accepted");
    assert!(records_of(reader.replica.doc(&log).expect("held"), &log).contains(&record.id));

    // One made for another scope (the account moved) is refused: the phone syncs in full.
    let mut moved = reader.who.clone();
    moved.unit = "QNA.DB.DP".into();
    let elsewhere = quiet::QuietCursor::new(&moved, Cursor::from_bytes([7; 16]));
    reader.replica.set_quiet_cursor(Some(elsewhere.to_string()));
    reader.replica.start_session();
    let request = reader.replica.request(true);
    assert!(matches!(server.handle(&reader.who, now, request), Err(AppError::StaleCursor)));

    // A cursor of another shape is refused before anything is read.
    reader.replica.set_quiet_cursor(Some("not a cursor".into()));
    reader.replica.start_session();
    let request = reader.replica.request(true);
    assert!(matches!(server.handle(&reader.who, now, request), Err(AppError::MalformedBody(_))));
}

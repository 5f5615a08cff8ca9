//! Applying one sync request: the server's half of the protocol.
//!
//! The pipeline for a request is: check and decode every message (nothing
//! locked yet) → lock the documents in id order → for each document, apply
//! the message to a copy and validate the merged result → if every document
//! passed, install the copies and generate the replies → queue one write
//! batch → answer once it is durable.
//!
//! A request is all or nothing: one document that breaks the schema rejects
//! the whole request and nothing of it is kept, in memory or on disk. A
//! request repeated or cut off at any point is harmless: applying changes the
//! server already holds is a no-op, and a sync state that was not saved only
//! means the next round re-negotiates what both sides have.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use automerge::sync::{Message, State, SyncDoc};
use automerge::transaction::CommitOptions;
use automerge::{AutoCommit, ChangeHash, PatchAction, Prop};
use kheo_shared::ids::{DocId, ModelId};
use kheo_shared::protocol::{DocMessage, MAX_DOCS_PER_REQUEST, MAX_HELD, PROTOCOL_VERSION, SyncRequest, SyncResponse};
use kheo_shared::scalars::Timestamp;
use kheo_shared::schema::{self, SchemaError};

use tokio::sync::OwnedMutexGuard;

use crate::access::{self, Scope};
use crate::auth::Principal;
use crate::docs::{DocCache, HotDoc, Waiting};
use crate::error::AppError;
use crate::gate::{Gate, GateError, GatedChange, GatedMessage};
use crate::org::OrgTree;
use crate::read_model::{ModelRow, ReadModelWrite, RecordRow};
use crate::store::directory::{Directory, QuarantineEntry};
use crate::store::{DocWrite, Store, WriteBatch};
use crate::writer::Writer;

/// Compact a document into a snapshot after this many appended chunks.
pub const COMPACT_AFTER_CHUNKS: usize = 64;
/// Above this many heads the server adds an empty merge change, so that
/// messages (which all carry the heads) stay small on a hot document.
pub const MAX_HEADS: usize = 8;
/// Changes one device may have waiting for a dependency in one document,
/// and their bytes: a phone sends a change's dependencies within a round
/// or two, so more than this is not a cut-off session but an attack.
pub const MAX_WAITING_PER_DEVICE: usize = 256;
pub const MAX_WAITING_BYTES_PER_DEVICE: usize = 1 << 20;
/// A change whose dependency has not come for this long is dropped from
/// memory (its device still holds it and sends it again with the rest).
pub const WAITING_EXPIRES_AFTER: Duration = Duration::from_secs(7 * 24 * 3600);

pub struct SyncService {
    pub store: Arc<dyn Store>,
    pub directory: Arc<dyn Directory>,
    pub cache: DocCache,
    pub writer: Writer,
    /// The unit of every model the server holds, kept in step with commits.
    pub model_units: RwLock<HashMap<ModelId, String>>,
}

pub(crate) struct Prepared {
    pub(crate) id: DocId,
    pub(crate) state: State,
    /// The merged document, when the message carried changes.
    pub(crate) merged: Option<Merged>,
    /// The changes as received, for the quarantine if a rule refuses them.
    pub(crate) received: Vec<u8>,
}

pub(crate) struct Merged {
    pub(crate) doc: AutoCommit,
    /// Heads before the merge.
    pub(crate) before: Vec<ChangeHash>,
    /// Root keys of a log the merge touched.
    pub(crate) touched: BTreeSet<String>,
    /// Received changes left waiting for a missing dependency: Automerge
    /// holds those in a queue that `save` leaves out.
    pub(crate) waiting: Vec<GatedChange>,
}

impl SyncService {
    pub async fn handle(&self, who: &Principal, org: &OrgTree, request: SyncRequest) -> Result<SyncResponse, AppError> {
        if request.v != PROTOCOL_VERSION {
            return Err(AppError::UnsupportedVersion(request.v));
        }
        if request.docs.len() > MAX_DOCS_PER_REQUEST {
            return Err(AppError::TooManyDocuments(format!(
                "{} documents in one request; at most {MAX_DOCS_PER_REQUEST}",
                request.docs.len()
            )));
        }
        if request.held.len() > MAX_HELD {
            return Err(AppError::TooManyDocuments(format!("{} held ids; at most {MAX_HELD}", request.held.len())));
        }
        let messages = decode_messages(request.docs, &mut Gate::default())?;
        let mut requested: BTreeSet<DocId> = messages.keys().copied().collect();
        for id in &request.held {
            requested.insert(DocId::parse(id).map_err(|e| AppError::BadDocumentId(e.to_string()))?);
        }
        let scope = Scope { who, org };

        let mut guards = Vec::with_capacity(messages.len());
        for id in messages.keys() {
            guards.push(self.cache.lock(*id).await?);
        }

        // Merge every message into a copy and check the schema.
        let mut prepared = Vec::with_capacity(messages.len());
        for ((id, message), guard) in messages.into_iter().zip(guards.iter_mut()) {
            let hot = guard.as_mut().ok_or_else(|| AppError::Internal(format!("{id} not loaded")))?;
            let state = match self.store.load_sync_state(&who.device_id, &id).await? {
                // A state we cannot read only costs a longer negotiation.
                Some(bytes) => State::decode(&bytes).unwrap_or_default(),
                None => State::new(),
            };
            let received: Vec<u8> = message.changes.iter().flat_map(|c| c.chunk.iter().copied()).collect();
            match prepare(id, hot, state, message, who) {
                Ok(mut p) => {
                    p.received = received;
                    prepared.push(p);
                }
                Err(e @ AppError::SchemaViolation { .. }) => {
                    self.quarantine(who, id, &received, "schema", &e.to_string()).await;
                    return Err(e);
                }
                Err(AppError::Forbidden { rule, message, doc }) => {
                    self.quarantine(who, id, &received, rule, &message).await;
                    return Err(AppError::Forbidden { rule, message, doc });
                }
                Err(e) => return Err(e),
            }
        }

        // Check scope, actors and write rules on what each merge changed.
        let mut new_units: HashMap<ModelId, String> = HashMap::new();
        for p in &prepared {
            if let (DocId::Model(model), Some(m)) = (p.id, &p.merged)
                && let Ok(profile) = schema::read_model(&m.doc, model)
            {
                new_units.insert(model, profile.unit);
            }
        }
        {
            // Only the units of the models this request touches, read once.
            let known: HashMap<ModelId, String> = {
                let all = self.model_units.read().unwrap_or_else(|p| p.into_inner());
                requested.iter().filter_map(|id| all.get(&id.model()).map(|u| (id.model(), u.clone()))).collect()
            };
            for (p, guard) in prepared.iter_mut().zip(guards.iter()) {
                let hot = guard.as_ref().ok_or_else(|| AppError::Internal(format!("{} not loaded", p.id)))?;
                let model = p.id.model();
                let unit = new_units.get(&model).or_else(|| known.get(&model)).map(String::as_str);
                let outcome = match &mut p.merged {
                    None => scope.check_read(unit),
                    Some(m) => {
                        let waiting: BTreeSet<ChangeHash> = hot.waiting.keys().copied().collect();
                        let change = access::Change {
                            id: &p.id,
                            old: &hot.doc,
                            merged: &mut m.doc,
                            before: &m.before,
                            touched: &m.touched,
                            model_unit: unit,
                            waiting: &waiting,
                        };
                        scope
                            .check_read(known.get(&model).map(String::as_str))
                            .and_then(|()| access::check_write(&scope, change).map(drop))
                    }
                };
                if let Err(v) = outcome {
                    if !p.received.is_empty() {
                        self.quarantine(who, p.id, &p.received, v.rule, &v.message).await;
                    }
                    return Err(AppError::Forbidden { rule: v.rule, message: v.message, doc: Some(p.id.to_string()) });
                }
            }
        }

        // Everything Automerge does with the merged copies happens before any
        // of them is installed: a failure here leaves memory as it was.
        let now = Timestamp::now();
        let mut finished = Vec::with_capacity(prepared.len());
        for (p, guard) in prepared.into_iter().zip(guards.iter_mut()) {
            let hot = guard.as_mut().ok_or_else(|| AppError::Internal(format!("{} not loaded", p.id)))?;
            finished.push(finish(p, hot, now)?);
        }

        let mut batch = WriteBatch::default();
        let mut replies = Vec::new();
        for (f, guard) in finished.into_iter().zip(guards.iter_mut()) {
            let hot = guard.as_mut().ok_or_else(|| AppError::Internal(format!("{} not loaded", f.id)))?;
            let Finished { id, state, reply, install } = f;
            if let Some(Install { doc, write, rows, waiting }) = install {
                hot.doc = doc;
                hot.stored = true;
                hot.chunks_since_snapshot =
                    if matches!(write, DocWrite::Snapshot { .. }) { 0 } else { hot.chunks_since_snapshot + 1 };
                hot.waiting.retain(|hash, _| !waiting.applied.contains(hash));
                for change in waiting.new {
                    let entry = Waiting {
                        device: Some(who.device_id.clone()),
                        actor: change.actor,
                        chunk: change.chunk,
                        since: now,
                    };
                    hot.waiting.insert(change.hash, entry);
                }
                batch.read_model.extend(rows);
                batch.docs.push(write);
            }
            if let Some(reply) = reply {
                replies.push(DocMessage::new(id, reply));
            }
            // An id nobody ever wrote to leaves no trace.
            if hot.stored {
                batch.sync_states.push((who.device_id.clone(), id, state.encode()));
            }
        }
        batch.model_units = new_units.iter().map(|(m, u)| (*m, u.clone())).collect();
        // Folded into the same group commit: a separate write would cost an fsync per request.
        batch.device_seen = Some((who.device_id.clone(), now.millis()));
        let touched: Vec<DocId> = batch
            .docs
            .iter()
            .map(|w| match w {
                DocWrite::Append { doc, .. } | DocWrite::Snapshot { doc, .. } => *doc,
            })
            .collect();
        // Unlock before waiting on the disk (the writer keeps order), but hold
        // the slots so that none is evicted and reloaded before the write lands.
        let slots: Vec<_> = guards.iter().map(|g| OwnedMutexGuard::mutex(g).clone()).collect();
        drop(guards);
        if let Err(e) = self.writer.write(batch).await {
            for id in &touched {
                self.cache.invalidate(id).await;
            }
            return Err(AppError::Internal(e.to_string()));
        }
        drop(slots);
        self.model_units.write().unwrap_or_else(|p| p.into_inner()).extend(new_units);

        let missing = if request.full { self.missing(&scope, &requested).await? } else { Vec::new() };
        Ok(SyncResponse { v: PROTOCOL_VERSION, docs: replies, missing })
    }

    /// Documents in scope that the device did not name.
    async fn missing(&self, scope: &Scope<'_>, requested: &BTreeSet<DocId>) -> Result<Vec<DocId>, AppError> {
        let stored = self.store.doc_ids().await?;
        let units = self.model_units.read().unwrap_or_else(|p| p.into_inner());
        Ok(stored
            .into_iter()
            .filter(|id| !requested.contains(id))
            .filter(|id| units.get(&id.model()).is_some_and(|unit| scope.covers(unit)))
            .collect())
    }

    /// Keeps refused changes with the reason, so that nothing is lost.
    async fn quarantine(&self, who: &Principal, doc: DocId, changes: &[u8], rule: &str, message: &str) {
        let entry = QuarantineEntry {
            id: 0,
            at: Timestamp::now().millis(),
            device: who.device_id.clone(),
            account: who.account_id.clone(),
            doc_id: doc.to_string(),
            rule: rule.to_owned(),
            message: message.to_owned(),
            changes: changes.to_vec(),
            bytes: changes.len(),
        };
        tracing::warn!(device = %who.device_id, account = %who.username, %doc, rule, message, "changes refused and quarantined");
        if let Err(e) = self.directory.quarantine(&entry).await {
            tracing::error!(error = %e, %doc, "could not quarantine refused changes");
        }
    }
}

/// The read-model rows a merge changed: the model's, or the touched records'.
fn read_model_rows(id: &DocId, doc: &AutoCommit, touched: BTreeSet<String>) -> Vec<ReadModelWrite> {
    match id {
        // Both documents were validated in this request; a read failure here is impossible.
        DocId::Model(model) => schema::read_model(doc, *model)
            .map(|profile| vec![ReadModelWrite::Model(ModelRow { profile })])
            .unwrap_or_default(),
        DocId::Log { model, .. } => schema::read_existing_records(doc, id, touched)
            .map(|records| {
                records.values().map(|r| ReadModelWrite::Record(RecordRow::in_doc(doc, *model, r))).collect()
            })
            .unwrap_or_default(),
    }
}

fn decode_messages(docs: Vec<DocMessage>, gate: &mut Gate) -> Result<BTreeMap<DocId, GatedMessage>, AppError> {
    let mut messages = BTreeMap::new();
    for m in docs {
        let id = m.doc_id().map_err(|e| AppError::BadDocumentId(e.to_string()))?;
        let gated = gate.message(&m.msg).map_err(|e| match e {
            GateError::Message(e) => AppError::BadSyncMessage { doc: m.id.clone(), reason: e.to_string() },
            GateError::Change(e) => AppError::BadChange { doc: m.id.clone(), reason: e.to_string() },
            GateError::OverBudget(message) => AppError::OverBudget(message),
        })?;
        if messages.insert(id, gated).is_some() {
            return Err(AppError::DuplicateDocument(m.id));
        }
    }
    Ok(messages)
}

/// Panics of Automerge caught by [`guarded`] since the process started:
/// each one is a refused request, and a case worth reporting upstream.
pub static AUTOMERGE_PANICS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Runs Automerge on data a phone sent. The gate bounds what Automerge is
/// given, but Automerge may still panic on input it does not expect; the
/// work is always on a copy, so a panic costs the request, not the document.
fn guarded<T>(id: DocId, what: &str, f: impl FnOnce() -> Result<T, AppError>) -> Result<T, AppError> {
    std::panic::catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| {
        AUTOMERGE_PANICS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::warn!(%id, what, "Automerge panicked on a device's changes; request refused");
        Err(AppError::BadChange { doc: id.to_string(), reason: format!("Automerge could not {what}") })
    })
}

/// Applies a message to a copy of the document and validates the result.
pub(crate) fn prepare(
    id: DocId,
    hot: &mut HotDoc,
    mut state: State,
    gated: GatedMessage,
    who: &Principal,
) -> Result<Prepared, AppError> {
    let bad_message =
        |e: automerge::AutomergeError| AppError::BadSyncMessage { doc: id.to_string(), reason: e.to_string() };
    let GatedMessage { changes, message, .. } = gated;
    if changes.is_empty() {
        // Nothing to merge: only the sync state moves, which cannot break the document.
        let doc = &mut hot.doc;
        guarded(id, "read the sync message", || {
            doc.sync().receive_sync_message(&mut state, message).map_err(bad_message)
        })?;
        return Ok(Prepared { id, state, merged: None, received: Vec::new() });
    }
    // A change the server lacks must be the device's own: phones relay
    // nothing, and no one writes in another person's name.
    let mut fresh = Vec::new();
    for change in changes {
        if hot.waiting.contains_key(&change.hash) || hot.doc.get_change_by_hash(&change.hash).is_some() {
            continue;
        }
        if change.actor != who.actor {
            return Err(AppError::Forbidden {
                rule: "foreign_actor",
                message: format!("change {} is written under actor {}, not this device's", change.hash, change.actor),
                doc: Some(id.to_string()),
            });
        }
        fresh.push(change);
    }
    expire_waiting(id, hot);
    let before = hot.doc.get_heads();
    let mut merged = hot.doc.clone();
    guarded(id, "apply these changes", || {
        merged.sync().receive_sync_message(&mut state, message).map_err(bad_message)
    })?;
    let after = merged.get_heads();
    // Changes whose dependencies have not arrived (a bloom filter false
    // positive on the sender's side, or a cut-off session) wait in
    // Automerge's queue. They must be kept, or the sender, which believes
    // they were delivered, would not send them again in this session.
    let mut waiting = Vec::new();
    for change in fresh {
        if merged.get_change_by_hash(&change.hash).is_none() {
            waiting.push(change);
        }
    }
    check_waiting_budget(id, hot, &waiting, &who.device_id)?;
    if after == before && waiting.is_empty() {
        return Ok(Prepared { id, state, merged: None, received: Vec::new() });
    }
    let touched = if after != before {
        guarded(id, "validate the merge", || {
            let touched = validate_merge(&id, &mut merged, &before, &after)
                .map_err(|error| AppError::SchemaViolation { doc: id.to_string(), error })?;
            check_loadable(id, &mut merged)?;
            Ok(touched)
        })?
    } else {
        BTreeSet::new()
    };
    Ok(Prepared { id, state, merged: Some(Merged { doc: merged, before, touched, waiting }), received: Vec::new() })
}

/// Accepted means loadable: the merged document must save and load back
/// with the same heads, or a change that Automerge applied in memory (one
/// naming an operation that does not exist, say) would make the document
/// unreadable for every device that loads it afterwards.
fn check_loadable(id: DocId, merged: &mut AutoCommit) -> Result<(), AppError> {
    let broken = |reason: String| AppError::BadChange { doc: id.to_string(), reason };
    let saved = merged.save();
    let mut loaded =
        AutoCommit::load(&saved).map_err(|e| broken(format!("the merged document would not load: {e}")))?;
    if loaded.get_heads() != merged.get_heads() {
        return Err(broken("the merged document loads with other heads than it has".into()));
    }
    Ok(())
}

/// Refuses a merge that would leave one device more waiting changes in a
/// document than its budget.
fn check_waiting_budget(id: DocId, hot: &HotDoc, new: &[GatedChange], device: &str) -> Result<(), AppError> {
    if new.is_empty() {
        return Ok(());
    }
    let mine = hot.waiting.values().filter(|w| w.device.as_deref() == Some(device));
    let (count, bytes) = mine.fold((0, 0), |(n, b), w| (n + 1, b + w.chunk.len()));
    let count = count + new.len();
    let bytes = bytes + new.iter().map(|c| c.chunk.len()).sum::<usize>();
    if count > MAX_WAITING_PER_DEVICE || bytes > MAX_WAITING_BYTES_PER_DEVICE {
        return Err(AppError::OverBudget(format!(
            "{id}: {count} changes ({bytes} bytes) would wait for dependencies this device has not sent; \
             at most {MAX_WAITING_PER_DEVICE} ({MAX_WAITING_BYTES_PER_DEVICE} bytes): send their dependencies first"
        )));
    }
    Ok(())
}

/// Forgets waiting changes past their time: the document is rebuilt
/// without Automerge's queue, then the others are queued again.
fn expire_waiting(id: DocId, hot: &mut HotDoc) {
    let now = Timestamp::now().millis();
    let ttl = WAITING_EXPIRES_AFTER.as_millis() as i64;
    if !hot.waiting.values().any(|w| now - w.since.millis() > ttl) {
        return;
    }
    hot.waiting.retain(|_, w| now - w.since.millis() <= ttl);
    let actor = hot.doc.get_actor().clone();
    let Ok(mut rebuilt) = AutoCommit::load(&hot.doc.save()) else {
        tracing::error!(%id, "could not rebuild a document to expire its waiting changes");
        return;
    };
    for w in hot.waiting.values() {
        // Each was accepted once already; one that no longer loads is dropped.
        let _ = rebuilt.load_incremental(&w.chunk);
    }
    hot.doc = rebuilt.with_actor(actor);
    // The store still holds the expired chunks until the next snapshot.
    hot.chunks_since_snapshot = COMPACT_AFTER_CHUNKS;
}

/// Checks the merged document: a model whole, a log by the records the
/// merge touched (the rest was valid before and did not change). Returns
/// the touched root keys of a log.
fn validate_merge(
    id: &DocId,
    merged: &mut AutoCommit,
    before: &[ChangeHash],
    after: &[ChangeHash],
) -> Result<BTreeSet<String>, SchemaError> {
    match id {
        DocId::Model(_) => schema::validate(merged, id).map(|()| BTreeSet::new()),
        DocId::Log { .. } => {
            let touched = touched_root_keys(merged.diff(before, after));
            if before.is_empty() {
                schema::validate(merged, id)?;
            } else {
                schema::check_log_header(merged, id)?;
                schema::read_log_records(merged, id, touched.iter().cloned())?;
            }
            Ok(touched)
        }
    }
}

fn touched_root_keys(patches: Vec<automerge::Patch>) -> BTreeSet<String> {
    patches
        .into_iter()
        .filter_map(|p| match p.path.first() {
            Some((_, Prop::Map(key))) => Some(key.clone()),
            Some((_, Prop::Seq(_))) => None,
            None => match p.action {
                PatchAction::PutMap { key, .. } | PatchAction::DeleteMap { key } => Some(key),
                PatchAction::Conflict { prop: Prop::Map(key) }
                | PatchAction::Increment { prop: Prop::Map(key), .. } => Some(key),
                _ => None,
            },
        })
        .collect()
}

struct Finished {
    id: DocId,
    state: State,
    /// The encoded reply, when there is something to say.
    reply: Option<Vec<u8>>,
    install: Option<Install>,
}

/// A merged document ready to replace the hot one, with its write.
struct Install {
    doc: AutoCommit,
    write: DocWrite,
    rows: Vec<ReadModelWrite>,
    waiting: WaitingDelta,
}

struct WaitingDelta {
    /// Waiting changes this merge applied.
    applied: Vec<ChangeHash>,
    new: Vec<GatedChange>,
}

/// Finishes a prepared document on its copy: collapses heads, builds the
/// store write, the read-model rows and the reply. Nothing is installed.
fn finish(p: Prepared, hot: &mut HotDoc, now: Timestamp) -> Result<Finished, AppError> {
    let Prepared { id, mut state, merged, .. } = p;
    let Some(Merged { mut doc, before, touched, waiting }) = merged else {
        let hot_doc = &mut hot.doc;
        let reply = guarded(id, "answer", || Ok(hot_doc.sync().generate_sync_message(&mut state)))?;
        return Ok(Finished { id, state, reply: reply.map(encode_reply), install: None });
    };
    guarded(id, "finish the merge", move || {
        let applied: Vec<ChangeHash> =
            hot.waiting.keys().filter(|h| doc.get_change_by_hash(h).is_some()).copied().collect();
        if doc.get_heads().len() > MAX_HEADS {
            doc.empty_change(CommitOptions::default().with_time(now.millis() / 1000));
        }
        let rows = read_model_rows(&id, &doc, touched);
        let still_waiting = hot.waiting.len() - applied.len() + waiting.len();
        let write = write_for(id, &mut doc, hot.chunks_since_snapshot, &before, &waiting, still_waiting == 0);
        let reply = doc.sync().generate_sync_message(&mut state).map(encode_reply);
        let install = Install { doc, write, rows, waiting: WaitingDelta { applied, new: waiting } };
        Ok(Finished { id, state, reply, install: Some(install) })
    })
}

/// The server's replies carry no flags: flags tell Automerge that the
/// server reads version-2 messages, which would let a phone send a whole
/// saved document in place of its changes, and the gate reads changes only.
fn encode_reply(mut reply: Message) -> Vec<u8> {
    reply.flags = None;
    reply.encode()
}

/// What the store must add for a merge: the new changes, or a fresh
/// snapshot once enough chunks piled up.
fn write_for(
    id: DocId,
    doc: &mut AutoCommit,
    chunks_since_snapshot: usize,
    before: &[ChangeHash],
    waiting: &[GatedChange],
    nothing_waits: bool,
) -> DocWrite {
    // A snapshot would drop changes still waiting for their dependencies.
    if chunks_since_snapshot + 1 >= COMPACT_AFTER_CHUNKS && nothing_waits {
        return DocWrite::Snapshot { doc: id, bytes: doc.save() };
    }
    let mut chunk = if doc.get_heads() == before { Vec::new() } else { doc.save_after(before) };
    // Loading replays these; the ones already applied are skipped.
    for w in waiting {
        chunk.extend(&w.chunk);
    }
    DocWrite::Append { doc: id, chunk }
}

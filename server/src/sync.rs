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
use std::sync::{Arc, RwLock};

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
use crate::docs::{DocCache, HotDoc};
use crate::error::AppError;
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

pub struct SyncService {
    pub store: Arc<dyn Store>,
    pub directory: Arc<dyn Directory>,
    pub cache: DocCache,
    pub writer: Writer,
    /// The unit of every model the server holds, kept in step with commits.
    pub model_units: RwLock<HashMap<ModelId, String>>,
}

struct Prepared {
    id: DocId,
    state: State,
    /// The merged document, when the message carried changes.
    merged: Option<Merged>,
    /// The changes as received, for the quarantine if a rule refuses them.
    received: Vec<u8>,
}

struct Merged {
    doc: AutoCommit,
    /// Heads before the merge.
    before: Vec<ChangeHash>,
    /// Root keys of a log the merge touched.
    touched: BTreeSet<String>,
    /// The changes as received, kept when some of them wait for a missing
    /// dependency: Automerge holds those in a queue that `save` leaves out.
    waiting: Option<Vec<u8>>,
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
        let messages = decode_messages(request.docs)?;
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
            let received: Vec<u8> = message.changes.iter().flatten().copied().collect();
            match prepare(id, hot, state, message) {
                Ok(mut p) => {
                    p.received = received;
                    prepared.push(p);
                }
                Err(e @ AppError::SchemaViolation { .. }) => {
                    self.quarantine(who, id, &received, "schema", &e.to_string()).await;
                    return Err(e);
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
                        let mut actors = hot.waiting_actors.clone();
                        actors.insert(who.actor.clone());
                        let change = access::Change {
                            id: &p.id,
                            old: &hot.doc,
                            merged: &mut m.doc,
                            before: &m.before,
                            touched: &m.touched,
                            model_unit: unit,
                            actors: &actors,
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

        let now = Timestamp::now();
        let mut batch = WriteBatch::default();
        let mut replies = Vec::new();
        for (p, guard) in prepared.into_iter().zip(guards.iter_mut()) {
            let hot = guard.as_mut().ok_or_else(|| AppError::Internal(format!("{} not loaded", p.id)))?;
            let Prepared { id, mut state, merged, .. } = p;
            if let Some(Merged { doc, before, waiting, touched }) = merged {
                hot.doc = doc;
                batch.read_model.extend(read_model_rows(&id, &hot.doc, touched));
                if waiting.is_some() {
                    hot.waiting_actors.insert(who.actor.clone());
                } else if hot.doc.get_missing_deps(&[]).is_empty() {
                    hot.waiting_actors.clear();
                }
                if hot.doc.get_heads().len() > MAX_HEADS {
                    hot.doc.empty_change(CommitOptions::default().with_time(now.millis() / 1000));
                }
                batch.docs.push(write_for(id, hot, &before, waiting));
            }
            if let Some(reply) = hot.doc.sync().generate_sync_message(&mut state) {
                replies.push(DocMessage::new(id, reply.encode()));
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

fn decode_messages(docs: Vec<DocMessage>) -> Result<BTreeMap<DocId, Message>, AppError> {
    let mut messages = BTreeMap::new();
    for m in docs {
        let id = m.doc_id().map_err(|e| AppError::BadDocumentId(e.to_string()))?;
        let message = Message::decode(&m.msg)
            .map_err(|e| AppError::BadSyncMessage { doc: m.id.clone(), reason: e.to_string() })?;
        if messages.insert(id, message).is_some() {
            return Err(AppError::DuplicateDocument(m.id));
        }
    }
    Ok(messages)
}

/// Applies a message to a copy of the document and validates the result.
fn prepare(id: DocId, hot: &mut HotDoc, mut state: State, message: Message) -> Result<Prepared, AppError> {
    let bad_message =
        |e: automerge::AutomergeError| AppError::BadSyncMessage { doc: id.to_string(), reason: e.to_string() };
    if message.changes.is_empty() {
        // Nothing to merge: only the sync state moves, which cannot break the document.
        hot.doc.sync().receive_sync_message(&mut state, message).map_err(bad_message)?;
        return Ok(Prepared { id, state, merged: None, received: Vec::new() });
    }
    let received: Vec<u8> = message.changes.iter().flatten().copied().collect();
    let before = hot.doc.get_heads();
    let mut merged = hot.doc.clone();
    merged.sync().receive_sync_message(&mut state, message).map_err(bad_message)?;
    let after = merged.get_heads();
    // Changes whose dependencies have not arrived (a bloom filter false
    // positive on the sender's side, or a cut-off session) wait in
    // Automerge's queue. They must be kept, or the sender, which believes
    // they were delivered, would not send them again in this session.
    let waiting = !merged.get_missing_deps(&[]).is_empty();
    if after == before && !waiting {
        return Ok(Prepared { id, state, merged: None, received: Vec::new() });
    }
    let touched = if after != before {
        validate_merge(&id, &mut merged, &before, &after)
            .map_err(|error| AppError::SchemaViolation { doc: id.to_string(), error })?
    } else {
        BTreeSet::new()
    };
    let waiting = waiting.then_some(received);
    Ok(Prepared { id, state, merged: Some(Merged { doc: merged, before, touched, waiting }), received: Vec::new() })
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

/// What the store must add for a merge: the new changes, or a fresh
/// snapshot once enough chunks piled up.
fn write_for(id: DocId, hot: &mut HotDoc, before: &[ChangeHash], waiting: Option<Vec<u8>>) -> DocWrite {
    hot.stored = true;
    // A snapshot would drop changes still waiting for their dependencies.
    if hot.chunks_since_snapshot + 1 >= COMPACT_AFTER_CHUNKS && waiting.is_none() {
        hot.chunks_since_snapshot = 0;
        return DocWrite::Snapshot { doc: id, bytes: hot.doc.save() };
    }
    hot.chunks_since_snapshot += 1;
    let mut chunk = if hot.doc.get_heads() == before { Vec::new() } else { hot.doc.save_after(before) };
    // Loading replays these; the ones already applied are skipped.
    chunk.extend(waiting.unwrap_or_default());
    DocWrite::Append { doc: id, chunk }
}

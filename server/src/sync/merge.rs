//! Merging one document's message into the live document, and checking
//! the result: the device's own actor on what the server lacks (before the
//! merge), the waiting budget, that the added changes load back, and the
//! schema on what the merge touched.
//!
//! The merge goes into the hot document itself, not into a copy: a copy
//! costs time in proportion to the whole log, on every request. Until the
//! request is accepted the document is marked [`HotDoc::dirty`]; a refused
//! request leaves it so, and the caller reloads every dirty document from
//! the store before anyone else reads it. What the document was before is
//! read from the merged one at its old heads ([`super::before::Before`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::panic::AssertUnwindSafe;

use automerge::legacy::{Key, ObjectId, OpId};
use automerge::sync::State;
use automerge::{ActorId, AutoCommit, Change, ChangeHash, Prop, ReadDoc};
use kheo_shared::ids::DocId;
use kheo_shared::scalars::Timestamp;
use kheo_shared::schema::{self, SchemaError};

use super::receive::receive;
use super::{COMPACT_AFTER_CHUNKS, MAX_WAITING_BYTES_PER_DEVICE, MAX_WAITING_PER_DEVICE, WAITING_EXPIRES_AFTER};
use crate::auth::Principal;
use crate::docs::{HotDoc, Waiting};
use crate::error::AppError;
use crate::gate::{GatedChange, GatedMessage};

pub(crate) struct Prepared {
    pub(crate) id: DocId,
    pub(crate) state: State,
    /// The merged document, when the message carried changes.
    pub(crate) merged: Option<Merged>,
}

pub(crate) struct Merged {
    /// Heads before the merge.
    pub(crate) before: Vec<ChangeHash>,
    /// Root keys of a log the merge touched.
    pub(crate) touched: BTreeSet<String>,
    /// The changes the merge added, in the order Automerge applied them.
    pub(crate) added: Vec<Change>,
    /// Received changes left waiting for a missing dependency: Automerge
    /// holds those in a queue that `save` leaves out.
    pub(crate) waiting: Vec<GatedChange>,
}

/// Panics of Automerge caught by [`guarded`] since the process started:
/// each one is a refused request, and a case worth reporting upstream.
pub static AUTOMERGE_PANICS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Runs Automerge on data a phone sent. The gate bounds what Automerge is
/// given, but Automerge may still panic on input it does not expect; the
/// document is then left dirty and reloaded, so a panic costs the request,
/// not the document.
pub(super) fn guarded<T>(id: DocId, what: &str, f: impl FnOnce() -> Result<T, AppError>) -> Result<T, AppError> {
    std::panic::catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| {
        AUTOMERGE_PANICS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::warn!(%id, what, "Automerge panicked on a device's changes; request refused");
        Err(AppError::BadChange { doc: id.to_string(), reason: format!("Automerge could not {what}") })
    })
}

/// [`prepare_at`] now (the fuzzer's entry point).
#[cfg(test)]
pub(crate) fn prepare(
    id: DocId,
    hot: &mut HotDoc,
    state: State,
    gated: GatedMessage,
    who: &Principal,
) -> Result<Prepared, AppError> {
    prepare_at(Timestamp::now(), id, hot, state, gated, who)
}

/// Applies a message to the hot document and validates the result. On an
/// error the document may hold part of the merge and stays
/// [`HotDoc::dirty`]; waiting changes older than [`WAITING_EXPIRES_AFTER`]
/// at `now` are dropped from its queue either way.
pub(crate) fn prepare_at(
    now: Timestamp,
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
        guarded(id, "read the sync message", || receive(doc, &mut state, message).map_err(bad_message))?;
        return Ok(Prepared { id, state, merged: None });
    }
    // A change the server lacks must be the device's own: phones relay
    // nothing, and no one writes in another person's name.
    let mut fresh = Vec::new();
    for change in changes {
        if hot.waiting.contains_key(&change.hash) || hot.doc.get_change_meta_by_hash(&change.hash).is_some() {
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
    expire_waiting(now, id, hot);
    let before = hot.doc.get_heads();
    // From here a failure may leave changes in the document that the
    // request does not keep; accepted, the install clears the mark.
    hot.dirty = true;
    let merged = &mut hot.doc;
    // Everything Automerge does with the document after it took the
    // device's changes is guarded too: a change it applied may leave it in
    // a state where even reading a change back panics.
    let queued = &hot.waiting;
    let (after, waiting, added, touched) = guarded(id, "apply these changes", || {
        receive(merged, &mut state, message).map_err(bad_message)?;
        let added = added_changes(merged, &before, &fresh, queued);
        let touched =
            touched_root_keys(merged, &added).map_err(|reason| AppError::BadChange { doc: id.to_string(), reason })?;
        let after = merged.get_heads();
        // Changes whose dependencies have not arrived (a bloom filter false
        // positive on the sender's side, or a cut-off session) wait in
        // Automerge's queue. They must be kept, or the sender, which believes
        // they were delivered, would not send them again in this session.
        let waiting: Vec<GatedChange> =
            fresh.into_iter().filter(|c| merged.get_change_meta_by_hash(&c.hash).is_none()).collect();
        Ok((after, waiting, added, touched))
    })?;
    check_waiting_budget(id, hot, &waiting, &who.device_id)?;
    if after == before && waiting.is_empty() {
        hot.dirty = false;
        return Ok(Prepared { id, state, merged: None });
    }
    // Changes still waiting are checked when their dependencies arrive
    // and they apply: until then they are only kept as received.
    let merged = &mut hot.doc;
    let touched = guarded(id, "validate the merge", || {
        if after == before {
            return Ok(BTreeSet::new());
        }
        check_rebuilds(id, merged, added.iter().map(Change::hash).collect())?;
        validate_merge(&id, merged, &before, touched)
            .map_err(|error| AppError::SchemaViolation { doc: id.to_string(), error })
    })?;
    Ok(Prepared { id, state, merged: Some(Merged { before, touched, added, waiting }) })
}

/// Accepted means loadable: Automerge may apply a change in memory that
/// its own save and load cannot reproduce (one naming an operation that
/// does not exist, say), which would make the document unreadable for
/// every device that loads it afterwards. Loading rebuilds each change
/// from the operation set and checks it against its hash; this does the
/// same for the changes the merge added, and only those (the rest loaded
/// before), so its cost follows the request, not the document.
///
/// Automerge's bundle is that rebuild for chosen changes. It is marked
/// experimental for its byte format, which nothing here keeps; the
/// fuzzer checks this against a whole save and load on every case.
pub fn check_loadable(id: DocId, merged: &mut AutoCommit, before: &[ChangeHash]) -> Result<(), AppError> {
    let added = merged.get_changes_meta(before).iter().map(|c| c.hash).collect();
    check_rebuilds(id, merged, added)
}

/// [`check_loadable`] for the changes already known to be the added ones.
fn check_rebuilds(id: DocId, merged: &mut AutoCommit, added: BTreeSet<ChangeHash>) -> Result<(), AppError> {
    let broken = |reason: String| AppError::BadChange { doc: id.to_string(), reason };
    let rebuilt = merged
        .bundle(added.iter().copied())
        .and_then(|bundle| bundle.to_changes())
        .map_err(|e| broken(format!("the merged document would not load: {e}")))?;
    let rebuilt: BTreeSet<ChangeHash> = rebuilt.iter().map(|c| c.hash()).collect();
    if rebuilt != added {
        return Err(broken("the merged document would not load: a change does not survive a save".into()));
    }
    Ok(())
}

/// The whole-document form of [`check_loadable`], which it must agree
/// with: saved, loaded back, the same heads.
#[cfg(test)]
pub(crate) fn saves_and_loads(merged: &mut AutoCommit) -> bool {
    let saved = merged.save();
    AutoCommit::load(&saved).is_ok_and(|mut loaded| loaded.get_heads() == merged.get_heads())
}

/// The changes a merge added, from their chunks as received. Automerge's
/// `get_changes` would rebuild each one from the operation set, which
/// costs more than applying it. The hashes come from the merged document,
/// so the list is exactly what it added; should a chunk not be at hand,
/// the rebuild is the fallback.
fn added_changes(
    doc: &mut AutoCommit,
    before: &[ChangeHash],
    fresh: &[GatedChange],
    queued: &BTreeMap<ChangeHash, Waiting>,
) -> Vec<Change> {
    let chunks: HashMap<ChangeHash, &[u8]> = fresh
        .iter()
        .map(|c| (c.hash, c.chunk.as_slice()))
        .chain(queued.iter().map(|(hash, w)| (*hash, w.chunk.as_slice())))
        .collect();
    let hashes: Vec<ChangeHash> = doc.get_changes_meta(before).iter().map(|c| c.hash).collect();
    let parsed: Option<Vec<Change>> = hashes
        .iter()
        .map(|hash| {
            let chunk = chunks.get(hash)?;
            Change::from_bytes(chunk.to_vec()).ok().filter(|c| c.hash() == *hash)
        })
        .collect();
    parsed.unwrap_or_else(|| {
        tracing::warn!("a merged change was not among the received chunks; rebuilding the merge's changes");
        doc.get_changes(before)
    })
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
fn expire_waiting(now: Timestamp, id: DocId, hot: &mut HotDoc) {
    let now = now.millis();
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
    merged: &AutoCommit,
    before: &[ChangeHash],
    touched: BTreeSet<String>,
) -> Result<BTreeSet<String>, SchemaError> {
    match id {
        DocId::Model(_) => schema::validate(merged, id).map(|()| BTreeSet::new()),
        DocId::Log { .. } => {
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

/// The root keys under which the changes added since `before` operate:
/// the record each operation's object belongs to, or the key itself for an
/// operation on the root. A superset of what the merge visibly changed
/// (an operation may lose a conflict), found at the cost of the changes:
/// a diff or patches would walk the document or its paths.
fn touched_root_keys(doc: &AutoCommit, added: &[Change]) -> Result<BTreeSet<String>, String> {
    let mut touched = BTreeSet::new();
    let mut root_key_of: HashMap<(u64, ActorId), Option<String>> = HashMap::new();
    for change in added {
        for op in change.decode().operations {
            match op.obj {
                ObjectId::Root => {
                    if let Key::Map(key) = op.key {
                        touched.insert(key.to_string());
                    }
                }
                ObjectId::Id(OpId(counter, actor)) => {
                    let missing = || format!("an operation names object {counter}@{actor}, which does not exist");
                    let key = root_key_of
                        .entry((counter, actor.clone()))
                        .or_insert_with(|| root_key(doc, counter, &actor))
                        .clone()
                        .ok_or_else(missing)?;
                    touched.insert(key);
                }
            }
        }
    }
    Ok(touched)
}

/// The root key an object sits under, through its parents.
fn root_key(doc: &AutoCommit, counter: u64, actor: &ActorId) -> Option<String> {
    let obj = doc.import(&format!("{counter}@{actor}")).ok()?.0;
    match doc.parents(&obj).ok()?.last()?.prop {
        Prop::Map(key) => Some(key),
        Prop::Seq(_) => None,
    }
}

//! Merging one document's message into a copy, and checking the copy: the
//! device's own actor on what the server lacks, the waiting budget, the
//! schema on what the merge touched, and that the copy loads back.

use std::collections::BTreeSet;
use std::panic::AssertUnwindSafe;

use automerge::sync::{State, SyncDoc};
use automerge::{AutoCommit, ChangeHash, PatchAction, Prop};
use kheo_shared::ids::DocId;
use kheo_shared::scalars::Timestamp;
use kheo_shared::schema::{self, SchemaError};

use super::{COMPACT_AFTER_CHUNKS, MAX_WAITING_BYTES_PER_DEVICE, MAX_WAITING_PER_DEVICE, WAITING_EXPIRES_AFTER};
use crate::auth::Principal;
use crate::docs::HotDoc;
use crate::error::AppError;
use crate::gate::{GatedChange, GatedMessage};

pub(crate) struct Prepared {
    pub(crate) id: DocId,
    pub(crate) state: State,
    /// The merged document, when the message carried changes.
    pub(crate) merged: Option<Merged>,
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

/// Panics of Automerge caught by [`guarded`] since the process started:
/// each one is a refused request, and a case worth reporting upstream.
pub static AUTOMERGE_PANICS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Runs Automerge on data a phone sent. The gate bounds what Automerge is
/// given, but Automerge may still panic on input it does not expect; the
/// work is always on a copy, so a panic costs the request, not the document.
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

/// Applies a message to a copy of the document and validates the result.
/// The hot document itself changes only by housekeeping that keeps its
/// content: waiting changes older than [`WAITING_EXPIRES_AFTER`] at `now`
/// are dropped from its queue.
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
        guarded(id, "read the sync message", || {
            doc.sync().receive_sync_message(&mut state, message).map_err(bad_message)
        })?;
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
    let mut merged = hot.doc.clone();
    // Everything Automerge does with the copy after it took the device's
    // changes is guarded too: a change it applied may leave the copy in a
    // state where even reading a change back panics.
    let (after, waiting) = guarded(id, "apply these changes", || {
        merged.sync().receive_sync_message(&mut state, message).map_err(bad_message)?;
        let after = merged.get_heads();
        // Changes whose dependencies have not arrived (a bloom filter false
        // positive on the sender's side, or a cut-off session) wait in
        // Automerge's queue. They must be kept, or the sender, which believes
        // they were delivered, would not send them again in this session.
        let waiting: Vec<GatedChange> =
            fresh.into_iter().filter(|c| merged.get_change_meta_by_hash(&c.hash).is_none()).collect();
        Ok((after, waiting))
    })?;
    check_waiting_budget(id, hot, &waiting, &who.device_id)?;
    if after == before && waiting.is_empty() {
        return Ok(Prepared { id, state, merged: None });
    }
    // Loadable even when nothing applied yet: the queue is saved with it.
    let touched = guarded(id, "validate the merge", || {
        let touched = if after != before {
            validate_merge(&id, &mut merged, &before, &after)
                .map_err(|error| AppError::SchemaViolation { doc: id.to_string(), error })?
        } else {
            BTreeSet::new()
        };
        check_loadable(id, &mut merged)?;
        Ok(touched)
    })?;
    Ok(Prepared { id, state, merged: Some(Merged { doc: merged, before, touched, waiting }) })
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

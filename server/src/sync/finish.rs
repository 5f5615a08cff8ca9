//! Finishing a checked merge in the hot document: heads collapsed, the
//! store write and read-model rows built, the reply generated, and the
//! [`Install`] of the bookkeeping that goes with the merge once the whole
//! request passed.

use std::collections::BTreeSet;

use automerge::sync::{Message, State, SyncDoc};
use automerge::transaction::CommitOptions;
use automerge::{AutoCommit, ChangeHash};
use kheo_shared::ids::DocId;
use kheo_shared::scalars::Timestamp;
use kheo_shared::schema;

use super::merge::{Merged, Prepared, guarded};
use super::{COMPACT_AFTER_CHUNKS, MAX_HEADS};
use crate::docs::{HotDoc, Waiting};
use crate::error::AppError;
use crate::gate::GatedChange;
use crate::read_model::{ModelRow, ReadModelWrite, RecordRow};
use crate::store::{DocWrite, Version};

/// The bookkeeping of an accepted merge (already in the hot document):
/// assignments only.
pub struct Install {
    pub id: DocId,
    pub chunks_since_snapshot: usize,
    /// The version the merge's write makes.
    pub version: Version,
    /// Waiting changes this merge applied.
    pub applied: Vec<ChangeHash>,
    /// Received changes that now wait for a dependency.
    pub waiting: Vec<(ChangeHash, Waiting)>,
}

impl Install {
    pub fn apply(self, hot: &mut HotDoc) {
        hot.dirty = false;
        hot.stored = true;
        hot.chunks_since_snapshot = self.chunks_since_snapshot;
        hot.version = self.version;
        hot.waiting.retain(|hash, _| !self.applied.contains(hash));
        hot.waiting.extend(self.waiting);
    }
}

pub(super) struct Finished {
    pub(super) id: DocId,
    pub(super) state: State,
    /// The encoded reply, when there is something to say.
    pub(super) reply: Option<Vec<u8>>,
    /// The install, its store write and its read-model rows, after a merge.
    pub(super) merge: Option<(Install, DocWrite, Vec<ReadModelWrite>)>,
    /// After a merge: the heads the write leaves the document at, stored
    /// beside it for quiet syncs ([`crate::store::encode_heads`]).
    pub(super) heads: Option<Vec<u8>>,
}

/// Finishes a prepared document: collapses heads, builds the store write,
/// the read-model rows and the reply. The document stays dirty until the
/// caller applies the [`Install`].
pub(super) fn finish(p: Prepared, hot: &mut HotDoc, device: &str, now: Timestamp) -> Result<Finished, AppError> {
    let Prepared { id, mut state, merged } = p;
    let Some(Merged { before: _, touched, added, waiting }) = merged else {
        let hot_doc = &mut hot.doc;
        let reply = guarded(id, "answer", || Ok(hot_doc.sync().generate_sync_message(&mut state)))?;
        return Ok(Finished { id, state, reply: reply.map(encode_reply), merge: None, heads: None });
    };
    guarded(id, "finish the merge", move || {
        let (base, next) = (hot.version, hot.next_version());
        let doc = &mut hot.doc;
        let applied: Vec<ChangeHash> =
            hot.waiting.keys().filter(|h| doc.get_change_meta_by_hash(h).is_some()).copied().collect();
        let mut added = added;
        if doc.get_heads().len() > MAX_HEADS {
            doc.empty_change(CommitOptions::default().with_time(now.millis() / 1000));
            added.extend(doc.get_last_local_change());
        }
        let rows = read_model_rows(&id, doc, touched);
        let still_waiting = hot.waiting.len() - applied.len() + waiting.len();
        // A snapshot would drop changes still waiting for their dependencies.
        let compact = hot.chunks_since_snapshot + 1 >= COMPACT_AFTER_CHUNKS && still_waiting == 0;
        let write = write_for(id, doc, (base, next), compact, &added, &waiting);
        let heads = Some(crate::store::encode_heads(&doc.get_heads()));
        let reply = doc.sync().generate_sync_message(&mut state).map(encode_reply);
        let chunks_since_snapshot =
            if matches!(write, DocWrite::Snapshot { .. }) { 0 } else { hot.chunks_since_snapshot + 1 };
        let waiting = waiting
            .into_iter()
            .map(|c| {
                let entry = Waiting { device: Some(device.to_owned()), chunk: c.chunk, since: now };
                (c.hash, entry)
            })
            .collect();
        let install = Install { id, chunks_since_snapshot, version: next, applied, waiting };
        Ok(Finished { id, state, reply, merge: Some((install, write, rows)), heads })
    })
}

/// The server's replies carry no flags: flags tell Automerge that the
/// server reads version-2 messages, which would let a phone send a whole
/// saved document in place of its changes, and the gate reads changes only.
fn encode_reply(mut reply: Message) -> Vec<u8> {
    reply.flags = None;
    reply.encode()
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

/// What the store must add for a merge: the changes it added (`added`,
/// which is what `save_after` would give, without rebuilding them from the
/// operation set), or a fresh snapshot once enough chunks piled up
/// (`compact`); made on `base` and making `next`.
fn write_for(
    id: DocId,
    doc: &mut AutoCommit,
    (base, next): (Version, Version),
    compact: bool,
    added: &[automerge::Change],
    waiting: &[GatedChange],
) -> DocWrite {
    if compact {
        return DocWrite::Snapshot { doc: id, bytes: doc.save(), base, next };
    }
    let mut chunk: Vec<u8> = added.iter().flat_map(|c| c.raw_bytes().iter().copied()).collect();
    // Loading replays these; the ones already applied are skipped.
    for w in waiting {
        chunk.extend(&w.chunk);
    }
    DocWrite::Append { doc: id, chunk, base, next }
}

//! Applying one sync request: the server's half of the protocol.
//!
//! A request goes through typed steps:
//!
//! 1. [`decode`]: the envelope checked, every message through the gate;
//! 2. [`pipeline::check_read_scope`]: documents of known models outside the
//!    account's scope refused from what is in memory, before any lock;
//! 3. lock and load the documents in id order, load the sync states (IO);
//! 4. [`pipeline::plan`], pure: merge into the documents ([`merge`]), validate,
//!    authorise ([`crate::access`]), finish ([`finish`]) into one write
//!    batch, the replies and the installs;
//! 5. install, commit the batch, answer once it is durable (IO); on a
//!    refusal, reload the documents it merged into from the store instead.
//!
//! [`SyncService::handle`] keeps only the IO: loading, the quarantine of a
//! [`pipeline::Refusal`], the commit and the list of missing documents.
//!
//! A request is all or nothing: one document that breaks the schema rejects
//! the whole request and nothing of it is kept, in memory or on disk. A
//! request repeated or cut off at any point is harmless: applying changes the
//! server already holds is a no-op, and a sync state that was not saved only
//! means the next round re-negotiates what both sides have.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use automerge::sync::State;
use kheo_shared::ids::{DocId, ModelId};
use kheo_shared::protocol::{PROTOCOL_VERSION, SyncRequest, SyncResponse};
use kheo_shared::scalars::Timestamp;
use tokio::sync::OwnedMutexGuard;

use crate::access::Scope;
use crate::auth::Principal;
use crate::docs::{DocCache, HotDoc};
use crate::error::AppError;
use crate::org::OrgTree;
use crate::store::Store;
use crate::store::directory::{Directory, QuarantineEntry};
use crate::writer::Writer;

pub mod before;
pub mod decode;
pub mod finish;
pub(crate) mod merge;
pub mod pipeline;
#[cfg(test)]
mod tests;

pub use decode::{Decoded, decode};
#[cfg(test)]
pub(crate) use merge::prepare;
pub use merge::{AUTOMERGE_PANICS, check_loadable};
pub use pipeline::{DocInput, Plan, Quarantine, Refusal, plan};

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

impl SyncService {
    pub async fn handle(&self, who: &Principal, org: &OrgTree, request: SyncRequest) -> Result<SyncResponse, AppError> {
        let Decoded { messages, requested, full } = decode(request)?;
        let scope = Scope { who, org };
        if let Err(refusal) = pipeline::check_read_scope(&scope, &self.known_units(&requested), &messages) {
            return Err(self.refuse(who, *refusal).await);
        }

        let ids: Vec<DocId> = messages.keys().copied().collect();
        let mut guards = Vec::with_capacity(ids.len());
        for id in &ids {
            guards.push(self.cache.lock(*id).await?);
        }
        let mut states = Vec::with_capacity(ids.len());
        for id in &ids {
            states.push(match self.store.load_sync_state(&who.device_id, id).await? {
                // A state we cannot read only costs a longer negotiation.
                Some(bytes) => State::decode(&bytes).unwrap_or_default(),
                None => State::new(),
            });
        }
        // Read once the documents are held: only the models this request names.
        let known = self.known_units(&requested);

        let now = Timestamp::now();
        let planned = {
            let mut inputs = Vec::with_capacity(ids.len());
            for (((id, gated), guard), state) in messages.into_iter().zip(guards.iter_mut()).zip(states) {
                let hot = guard.as_mut().ok_or_else(|| AppError::Internal(format!("{id} not loaded")))?;
                inputs.push(DocInput { id, hot, state, gated });
            }
            plan(now, who, org, &known, inputs)
        };
        let Plan { installs, batch, replies, model_units } = match planned {
            Ok(plan) => plan,
            Err(refusal) => {
                self.restore_dirty(&ids, &mut guards).await;
                return Err(self.refuse(who, *refusal).await);
            }
        };

        // Every check passed: install the bookkeeping (assignments only).
        let touched: Vec<DocId> = installs.iter().map(|i| i.id).collect();
        for install in installs {
            let at =
                ids.binary_search(&install.id).map_err(|_| AppError::Internal(format!("{} not locked", install.id)))?;
            let hot = guards[at].as_mut().ok_or_else(|| AppError::Internal(format!("{} not loaded", install.id)))?;
            install.apply(hot);
        }
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
        self.model_units.write().unwrap_or_else(|p| p.into_inner()).extend(model_units);

        let missing = if full { self.missing(&scope, &requested).await? } else { Vec::new() };
        Ok(SyncResponse { v: PROTOCOL_VERSION, docs: replies, missing })
    }

    /// Puts back, as the store holds them, the documents a refused request
    /// merged into. The store is read only after every write queued before
    /// this request landed, so nothing accepted earlier is lost.
    async fn restore_dirty(&self, ids: &[DocId], guards: &mut [OwnedMutexGuard<Option<HotDoc>>]) {
        if !guards.iter().any(|g| g.as_ref().is_some_and(|h| h.dirty)) {
            return;
        }
        if let Err(e) = self.writer.barrier().await {
            tracing::error!(error = %e, "the writer failed before a refused request's documents were restored");
        }
        for (id, guard) in ids.iter().zip(guards.iter_mut()) {
            if guard.as_ref().is_some_and(|h| h.dirty)
                && let Err(e) = self.cache.restore(id, guard).await
            {
                // The slot is empty: the next request loads the document again.
                tracing::error!(%id, error = %e, "could not reload a refused request's document");
            }
        }
    }

    /// The known units of the models of these documents.
    fn known_units(&self, requested: &BTreeSet<DocId>) -> HashMap<ModelId, String> {
        let all = self.model_units.read().unwrap_or_else(|p| p.into_inner());
        requested.iter().filter_map(|id| all.get(&id.model()).map(|u| (id.model(), u.clone()))).collect()
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

    /// Quarantines what a refusal keeps; returns its error.
    async fn refuse(&self, who: &Principal, refusal: Refusal) -> AppError {
        if let Some(q) = refusal.quarantine {
            self.quarantine(who, q.doc, &q.changes, q.rule, &q.message).await;
        }
        refusal.error
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

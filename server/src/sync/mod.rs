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
//!    The documents stay locked until then.
//!
//! Other server processes may write the same documents: step 3 catches the
//! locked copies up with the store ([`DocCache::refresh`]), and a commit
//! that finds a document written meanwhile keeps nothing of the request
//! ([`WriteError::Conflict`]), which is then merged again from step 1, at
//! most [`MAX_ATTEMPTS`] times.
//!
//! [`SyncService::handle`] keeps only the IO: loading, the quarantine of a
//! [`pipeline::Refusal`], the commit and the list of missing documents.
//!
//! A request is all or nothing: one document that breaks the schema rejects
//! the whole request and nothing of it is kept, in memory or on disk. A
//! request repeated or cut off at any point is harmless: applying changes the
//! server already holds is a no-op, and a sync state that was not saved only
//! means the next round re-negotiates what both sides have.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use automerge::sync::State;
use kheo_shared::ids::{DocId, ModelId};
use kheo_shared::protocol::{Keep, PROTOCOL_VERSION, SyncRequest, SyncResponse};
use kheo_shared::scalars::Timestamp;
use tokio::sync::OwnedMutexGuard;

use crate::access::Scope;
use crate::auth::Principal;
use crate::docs::{DocCache, HotDoc};
use crate::error::AppError;
use crate::org::OrgTree;
use crate::read_model::ReadModelWrite;
use crate::store::directory::{Directory, QuarantineEntry};
use crate::store::{ScopeDoc, Store};
use crate::writer::{WriteError, Writer};

pub mod before;
pub mod decode;
pub mod finish;
pub(crate) mod merge;
pub mod pipeline;
pub mod quiet;
mod receive;
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

/// Times one request is merged when other processes keep writing its
/// documents in between (each attempt first catches up with them).
pub const MAX_ATTEMPTS: usize = 8;
/// The longest pause before merging again after a conflict; the pause is
/// random up to this times the attempt, so that processes racing for one
/// document fall out of step.
const CONFLICT_PAUSE: Duration = Duration::from_millis(20);

pub struct SyncService {
    pub store: Arc<dyn Store>,
    pub directory: Arc<dyn Directory>,
    pub cache: DocCache,
    pub writer: Writer,
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// Why an attempt did not answer.
enum Retry {
    /// A document changed in the store after it was merged: merge again.
    Conflict(DocId),
    Failed(AppError),
}

impl From<AppError> for Retry {
    fn from(e: AppError) -> Self {
        Retry::Failed(e)
    }
}

impl From<crate::store::StoreError> for Retry {
    fn from(e: crate::store::StoreError) -> Self {
        Retry::Failed(e.into())
    }
}

/// The documents of a scope that a device keeping `keep` is offered:
/// those it synced and did not just release, and those its rule names.
fn offered<'a>(
    docs: Vec<ScopeDoc>,
    keep: &'a Keep,
    released: &'a BTreeSet<DocId>,
) -> impl Iterator<Item = ScopeDoc> + 'a {
    docs.into_iter().filter(move |d| !released.contains(&d.id) && keep.offers(&d.id, d.state.is_some()))
}

impl SyncService {
    pub async fn handle(&self, who: &Principal, org: &OrgTree, request: SyncRequest) -> Result<SyncResponse, AppError> {
        let mut request = Some(request);
        for attempt in 1..=MAX_ATTEMPTS {
            // The last attempt takes the request itself; the others a copy.
            let this = if attempt == MAX_ATTEMPTS { request.take() } else { request.clone() };
            let Some(this) = this else { break };
            match self.attempt(who, org, this).await {
                Ok(response) => return Ok(response),
                Err(Retry::Failed(e)) => return Err(e),
                Err(Retry::Conflict(doc)) => {
                    tracing::debug!(%doc, attempt, "written by another process meanwhile; merging again");
                    let pause = CONFLICT_PAUSE.mul_f64(rand::random::<f64>() * attempt as f64);
                    tokio::time::sleep(pause).await;
                }
            }
        }
        Err(AppError::Busy(1))
    }

    async fn attempt(&self, who: &Principal, org: &OrgTree, request: SyncRequest) -> Result<SyncResponse, Retry> {
        let Decoded { messages, requested, full, quiet, keep, released } = decode(request)?;
        if quiet.is_some_and(|q| !q.is_for(who)) {
            return Err(AppError::StaleCursor.into());
        }
        let scope = Scope { who, org };
        // Before anything of the answer is made: whatever is written after
        // it is either in the answer or moves the cursor the phone keeps.
        // The same rows name what a full request's device lacks.
        let units = crate::changes::scope_units(org, who);
        let scoped = match (full || quiet.is_some(), &keep) {
            (false, _) => None,
            (true, None) => Some(self.store.versions_in_units(units.as_deref()).await?),
            (true, Some(keep)) => {
                let docs = self.store.heads_in_units(&who.device_id, units.as_deref()).await?;
                Some(offered(docs, keep, &released).map(|d| (d.id, d.version)).collect())
            }
        };
        let cursor = scoped.as_deref().map(|v| quiet::QuietCursor::new(who, crate::changes::Cursor::of(v)));
        let models: Vec<ModelId> = requested.iter().map(DocId::model).collect();
        let known = self.directory.units_of(&models).await.map_err(AppError::from)?;
        if let Err(refusal) = pipeline::check_read_scope(&scope, &known, &messages) {
            return Err(self.refuse(who, *refusal).await.into());
        }

        let ids: Vec<DocId> = messages.keys().copied().collect();
        let mut guards = Vec::with_capacity(ids.len());
        for id in &ids {
            guards.push(self.cache.lock(*id).await?);
        }
        // What other processes wrote since these copies were loaded.
        self.cache.refresh(&ids, &mut guards).await?;
        let mut states = Vec::with_capacity(ids.len());
        for id in &ids {
            states.push(match self.store.load_sync_state(&who.device_id, id).await? {
                // A state we cannot read only costs a longer negotiation.
                Some(bytes) => State::decode(&bytes).unwrap_or_default(),
                None => State::new(),
            });
        }
        // Read again once the documents are held: a merge may have created or moved one.
        let known = self.directory.units_of(&models).await.map_err(AppError::from)?;

        let now = Timestamp::now();
        let planned = {
            let mut inputs = Vec::with_capacity(ids.len());
            for (((id, gated), guard), state) in messages.into_iter().zip(guards.iter_mut()).zip(states) {
                let hot = guard.as_mut().ok_or_else(|| AppError::Internal(format!("{id} not loaded")))?;
                inputs.push(DocInput { id, hot, state, gated });
            }
            plan(now, who, org, &known, inputs)
        };
        let Plan { installs, mut batch, replies, model_units: _ } = match planned {
            Ok(plan) => plan,
            Err(refusal) => {
                self.restore_dirty(&ids, &mut guards).await;
                return Err(self.refuse(who, *refusal).await.into());
            }
        };

        batch.released_states = released.iter().map(|id| (who.device_id.clone(), *id)).collect();
        // Every check passed: install the bookkeeping (assignments only).
        let mut written = Vec::with_capacity(installs.len());
        for install in installs {
            let at =
                ids.binary_search(&install.id).map_err(|_| AppError::Internal(format!("{} not locked", install.id)))?;
            let hot = guards[at].as_mut().ok_or_else(|| AppError::Internal(format!("{} not loaded", install.id)))?;
            install.apply(hot);
            written.push(at);
        }
        // The documents stay locked until the write is durable, so an
        // unlocked copy is always a version the store holds. In its own
        // task, so that a client that goes away cannot cut it short.
        let records = batch.read_model.iter().filter(|w| matches!(w, ReadModelWrite::Record(_))).count();
        let writer = self.writer.clone();
        let landed = tokio::spawn(async move {
            let result = writer.write(batch).await;
            if result.is_err() {
                // The copies hold merges the store does not: the next lock reloads them.
                for at in written {
                    *guards[at] = None;
                }
            }
            drop(guards);
            result
        });
        match landed.await.map_err(|e| AppError::Internal(format!("the write task failed: {e}")))? {
            Ok(()) => self.metrics.merged(records),
            Err(WriteError::Conflict(doc)) => return Err(Retry::Conflict(doc)),
            Err(e) => return Err(AppError::Internal(e.to_string()).into()),
        }

        let mut replies = replies;
        let (missing, complete) = match quiet {
            Some(since) if Some(since) == cursor => (Vec::new(), true),
            Some(_) => {
                let mut scope_docs = self.store.heads_in_units(&who.device_id, units.as_deref()).await?;
                if let Some(keep) = &keep {
                    scope_docs = offered(scope_docs, keep, &released).collect();
                }
                let news = quiet::news(scope_docs, &requested);
                replies.extend(self.tell(news.tell).await?);
                (news.missing, !news.truncated)
            }
            None if full => {
                let scoped = scoped.unwrap_or_default().into_iter().map(|(id, _)| id);
                (scoped.filter(|id| !requested.contains(id)).collect(), true)
            }
            None => (Vec::new(), true),
        };
        let cursor = cursor.filter(|_| complete).map(|c| c.to_string());
        Ok(SyncResponse { v: PROTOCOL_VERSION, docs: replies, missing, cursor })
    }

    /// A message for each document a quiet phone lacks something in, one
    /// document locked at a time (this request's own are unlocked by now).
    async fn tell(&self, news: Vec<(DocId, State)>) -> Result<Vec<kheo_shared::protocol::DocMessage>, AppError> {
        let mut budget = quiet::MAX_PUSH_BYTES;
        let mut told = Vec::with_capacity(news.len());
        for (id, state) in news {
            let mut guards = vec![self.cache.lock(id).await?];
            self.cache.refresh(&[id], &mut guards).await?;
            let hot = guards[0].as_mut().ok_or_else(|| AppError::Internal(format!("{id} not loaded")))?;
            told.push(quiet::tell(id, hot, state, &mut budget)?);
        }
        Ok(told)
    }

    /// Puts back, as the store holds them, the documents a refused request
    /// merged into. Every write made on them is durable (they stay locked
    /// until it is), so the store holds all that was accepted.
    async fn restore_dirty(&self, ids: &[DocId], guards: &mut [OwnedMutexGuard<Option<HotDoc>>]) {
        for (id, guard) in ids.iter().zip(guards.iter_mut()) {
            if guard.as_ref().is_some_and(|h| h.dirty)
                && let Err(e) = self.cache.restore(id, guard).await
            {
                // The slot is empty: the next request loads the document again.
                tracing::error!(%id, error = %e, "could not reload a refused request's document");
            }
        }
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
        tracing::warn!(device = %who.device_id, account = %who.username, %doc, rule, reason = message, "changes refused and quarantined");
        if let Err(e) = self.directory.quarantine(&entry).await {
            tracing::error!(error = %e, %doc, "could not quarantine refused changes");
        }
    }
}

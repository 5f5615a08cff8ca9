//! The hot-document cache: documents in memory, each behind its own lock,
//! bounded in number.
//!
//! A sync locks the documents it touches (in id order, so two requests never
//! deadlock), loads any that are cold from the store, and keeps its handle to
//! the slot until its write is durable. Eviction skips slots somebody still
//! holds, so a document is never reloaded from the store while writes made
//! to its in-memory copy are still queued.

use std::collections::BTreeSet;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use automerge::{ActorId, AutoCommit};
use kheo_shared::ids::DocId;
use lru::LruCache;
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

use crate::store::{Store, StoreError};

/// A document in memory.
pub struct HotDoc {
    pub doc: AutoCommit,
    /// Whether the store holds anything of it yet.
    pub stored: bool,
    /// Chunks appended since the last snapshot; decides compaction.
    pub chunks_since_snapshot: usize,
    /// Actors of devices whose changes wait for a missing dependency: when
    /// another device's sync completes them, they are applied in its request.
    /// In memory only; after a restart such changes apply when their own
    /// device syncs again.
    pub waiting_actors: BTreeSet<ActorId>,
}

pub type Slot = Arc<AsyncMutex<Option<HotDoc>>>;

pub struct DocCache {
    store: Arc<dyn Store>,
    actor: ActorId,
    capacity: NonZeroUsize,
    slots: Mutex<LruCache<DocId, Slot>>,
}

impl DocCache {
    pub fn new(store: Arc<dyn Store>, actor: ActorId, capacity: NonZeroUsize) -> Self {
        DocCache { store, actor, capacity, slots: Mutex::new(LruCache::unbounded()) }
    }

    fn slot(&self, id: DocId) -> Slot {
        let mut slots = self.slots.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(slot) = slots.get(&id) {
            return slot.clone();
        }
        while slots.len() >= self.capacity.get() {
            // The least recently used slot nobody holds; when all are held the
            // cache grows past its capacity until they are released.
            let idle = slots.iter().rev().find(|(_, s)| Arc::strong_count(s) == 1).map(|(k, _)| *k);
            match idle {
                Some(k) => {
                    slots.pop(&k);
                }
                None => break,
            }
        }
        let slot: Slot = Arc::new(AsyncMutex::new(None));
        slots.put(id, slot.clone());
        slot
    }

    /// Locks a document, loading it from the store when cold. A document the
    /// store never held comes back empty with `stored == false`.
    pub async fn lock(&self, id: DocId) -> Result<OwnedMutexGuard<Option<HotDoc>>, StoreError> {
        let mut guard = self.slot(id).lock_owned().await;
        if guard.is_none() {
            *guard = Some(self.load(&id).await?);
        }
        Ok(guard)
    }

    async fn load(&self, id: &DocId) -> Result<HotDoc, StoreError> {
        let Some(stored) = self.store.load_doc(id).await? else {
            return Ok(HotDoc {
                doc: AutoCommit::new().with_actor(self.actor.clone()),
                stored: false,
                chunks_since_snapshot: 0,
                waiting_actors: BTreeSet::new(),
            });
        };
        let mut doc = if stored.snapshot.is_empty() {
            AutoCommit::new()
        } else {
            AutoCommit::load(&stored.snapshot).map_err(|e| StoreError::Corrupt(format!("{id} snapshot: {e}")))?
        };
        for chunk in &stored.chunks {
            doc.load_incremental(chunk).map_err(|e| StoreError::Corrupt(format!("{id} chunk: {e}")))?;
        }
        Ok(HotDoc {
            doc: doc.with_actor(self.actor.clone()),
            stored: true,
            chunks_since_snapshot: stored.chunks.len(),
            waiting_actors: BTreeSet::new(),
        })
    }

    /// Drops the in-memory copy so the next lock reloads it from the store:
    /// after a failed commit it may hold changes the store does not.
    pub async fn invalidate(&self, id: &DocId) {
        let slot = self.slots.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).get(id).cloned();
        if let Some(slot) = slot {
            *slot.lock().await = None;
        }
    }
}

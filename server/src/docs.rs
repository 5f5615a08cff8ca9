//! The hot-document cache: documents in memory, each behind its own lock,
//! bounded in number.
//!
//! A sync locks the documents it touches (in id order, so two requests never
//! deadlock), loads any that are cold from the store, and holds the locks
//! until its write is durable (or has failed, which empties the slots). An
//! unlocked copy is therefore always a version the store holds, and
//! eviction, which skips slots somebody holds, never drops a copy whose
//! writes are still queued.
//!
//! A sync merges into the hot document itself and marks it [`HotDoc::dirty`]
//! until the request is accepted; a refused request's documents are
//! reloaded ([`DocCache::restore`]).
//!
//! Other processes may write the same documents. Before a sync merges, the
//! copies it locked are compared with the store's versions
//! ([`DocCache::refresh`]): a copy behind the store loads the chunks it
//! lacks, or the whole document when a compaction took them.

use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use automerge::{ActorId, AutoCommit, ChangeHash};
use kheo_shared::ids::DocId;
use kheo_shared::scalars::Timestamp;
use lru::LruCache;
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

use crate::store::{Store, StoreError, StoredDoc, Version};

/// A document in memory.
pub struct HotDoc {
    pub doc: AutoCommit,
    /// Whether the store holds anything of it yet.
    pub stored: bool,
    /// Chunks appended since the last snapshot; decides compaction.
    pub chunks_since_snapshot: usize,
    /// Changes that arrived before one of their dependencies and wait in
    /// Automerge's queue, by hash. Each was checked against its sender's
    /// actor when it arrived, so when another device's sync supplies the
    /// dependency, exactly these changes (not their actors) may be applied
    /// in that device's request.
    pub waiting: BTreeMap<ChangeHash, Waiting>,
    /// Set while a sync's merge is in the document and not yet accepted:
    /// the document may then hold changes that no one will store.
    pub dirty: bool,
    /// The stored version this copy holds; the next write is made on it.
    pub version: Version,
    /// This process, as the writer of the versions it makes.
    pub writer: i64,
}

impl HotDoc {
    /// A document the store never held.
    pub fn empty(actor: ActorId, writer: i64) -> HotDoc {
        HotDoc {
            doc: AutoCommit::new().with_actor(actor),
            stored: false,
            chunks_since_snapshot: 0,
            waiting: BTreeMap::new(),
            dirty: false,
            version: Version::NONE,
            writer,
        }
    }

    /// The version the next write of this copy makes.
    pub fn next_version(&self) -> Version {
        self.version.next(self.writer)
    }

    /// The document as the store holds it: its snapshot, then its chunks.
    pub fn from_stored(id: &DocId, stored: &StoredDoc, actor: ActorId, writer: i64) -> Result<HotDoc, StoreError> {
        let mut doc = if stored.snapshot.is_empty() {
            AutoCommit::new()
        } else {
            AutoCommit::load(&stored.snapshot).map_err(|e| StoreError::Corrupt(format!("{id} snapshot: {e}")))?
        };
        for chunk in &stored.chunks {
            doc.load_incremental(chunk).map_err(|e| StoreError::Corrupt(format!("{id} chunk: {e}")))?;
        }
        let waiting = still_waiting(&mut doc, &stored.chunks);
        Ok(HotDoc {
            doc: doc.with_actor(actor),
            stored: true,
            chunks_since_snapshot: stored.chunks.len(),
            waiting,
            dirty: false,
            version: stored.version,
            writer,
        })
    }

    /// Applies chunks another process wrote after this copy's version, or
    /// returns false (and changes nothing) when they are not all there.
    fn catch_up(&mut self, id: &DocId, to: Version, chunks: Vec<(i64, Vec<u8>)>) -> Result<bool, StoreError> {
        let (made, data): (Vec<i64>, Vec<Vec<u8>>) = chunks.into_iter().unzip();
        if to.n <= self.version.n || !made.into_iter().eq(self.version.n + 1..=to.n) {
            return Ok(false);
        }
        for chunk in &data {
            self.doc.load_incremental(chunk).map_err(|e| StoreError::Corrupt(format!("{id} chunk: {e}")))?;
        }
        for (hash, waiting) in still_waiting(&mut self.doc, &data) {
            self.waiting.entry(hash).or_insert(waiting);
        }
        self.waiting.retain(|hash, _| self.doc.get_change_meta_by_hash(hash).is_none());
        self.chunks_since_snapshot += data.len();
        self.stored = true;
        self.version = to;
        Ok(true)
    }
}

/// A change waiting for a dependency.
#[derive(Debug, Clone)]
pub struct Waiting {
    /// The device that sent it; `None` when rebuilt from the store after a
    /// restart (its actor was checked when it was first accepted).
    pub device: Option<String>,
    /// The chunk as received, kept to rebuild the queue when others expire.
    pub chunk: Vec<u8>,
    pub since: Timestamp,
}

pub type Slot = Arc<AsyncMutex<Option<HotDoc>>>;

pub struct DocCache {
    store: Arc<dyn Store>,
    actor: ActorId,
    /// This process as a writer of versions: random, so that two
    /// processes never make the same version.
    writer: i64,
    capacity: NonZeroUsize,
    slots: Mutex<LruCache<DocId, Slot>>,
}

impl DocCache {
    pub fn new(store: Arc<dyn Store>, actor: ActorId, capacity: NonZeroUsize) -> Self {
        let writer = i64::from_ne_bytes(uuid::Uuid::new_v4().as_u64_pair().0.to_ne_bytes());
        DocCache { store, actor, writer, capacity, slots: Mutex::new(LruCache::unbounded()) }
    }

    /// Documents in the cache now (over its capacity while requests hold them all).
    pub fn len(&self) -> usize {
        self.slots.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
        match self.store.load_doc(id).await? {
            None => Ok(HotDoc::empty(self.actor.clone(), self.writer)),
            Some(stored) => HotDoc::from_stored(id, &stored, self.actor.clone(), self.writer),
        }
    }

    /// Brings locked documents up to what the store holds, when another
    /// process wrote them since they were loaded. One query for all of them
    /// when nothing changed.
    pub async fn refresh(
        &self,
        ids: &[DocId],
        guards: &mut [OwnedMutexGuard<Option<HotDoc>>],
    ) -> Result<(), StoreError> {
        let stored: HashMap<DocId, Version> = self.store.versions(ids).await?.into_iter().collect();
        for (id, guard) in ids.iter().zip(guards.iter_mut()) {
            let Some(hot) = guard.as_mut() else { continue };
            let at = stored.get(id).copied().unwrap_or(Version::NONE);
            if at == hot.version {
                continue;
            }
            let (to, chunks) = self.store.chunks_after(id, hot.version.n).await?;
            match hot.catch_up(id, to, chunks) {
                Ok(true) => {}
                Ok(false) => self.restore(id, guard).await?,
                Err(e) => {
                    // Half caught up is no copy to merge into: the next lock reloads it.
                    **guard = None;
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Puts a locked document back as the store holds it; on an error the
    /// slot is emptied, so the next lock tries the store again.
    pub async fn restore(&self, id: &DocId, guard: &mut OwnedMutexGuard<Option<HotDoc>>) -> Result<(), StoreError> {
        **guard = None;
        **guard = Some(self.load(id).await?);
        Ok(())
    }
}

/// The changes of the stored chunks that loading left in Automerge's queue:
/// they were accepted earlier as waiting for a dependency.
fn still_waiting(doc: &mut AutoCommit, chunks: &[Vec<u8>]) -> BTreeMap<ChangeHash, Waiting> {
    if doc.get_missing_deps(&[]).is_empty() {
        return BTreeMap::new();
    }
    // The server's own chunks: generous limits, the same parser.
    let limits = crate::gate::Limits::trusted();
    let since = Timestamp::now();
    let mut waiting = BTreeMap::new();
    for chunk in chunks {
        for change in crate::gate::change::read_chunks(chunk, &limits).unwrap_or_default() {
            if doc.get_change_by_hash(&change.hash).is_none() {
                let entry = Waiting { device: None, chunk: change.chunk, since };
                waiting.insert(change.hash, entry);
            }
        }
    }
    waiting
}

//! Durable storage of documents and sync states, behind the [`Store`] trait.
//!
//! A document is stored as its latest snapshot (a full `Automerge::save`)
//! plus the change chunks appended since, in order. Writes arrive as
//! [`WriteBatch`]es; [`Store::commit`] makes a slice of batches durable in
//! one transaction, in order, and only then returns. That is what lets the
//! [`crate::writer`] acknowledge a sync only after it is on disk while
//! paying one fsync for many concurrent syncs.
//!
//! Several server processes may share one database. Every document write
//! names the [`Version`] it was merged on and is kept only if the stored
//! document is still at that version ([`Committed::Conflict`] otherwise, and
//! nothing of that batch is kept); a process compares the versions of the
//! documents it holds in memory with the stored ones before it merges
//! ([`Store::versions`]) and catches up from the chunks it lacks
//! ([`Store::chunks_after`]). A snapshot deletes only the chunks it covers.

pub mod backup;
pub mod blobs;
#[cfg(test)]
mod blobs_contract;
#[cfg(test)]
pub mod contract;
pub mod directory;
pub mod logins;
#[cfg(test)]
pub mod logins_contract;
pub mod migrate;
mod postgres;
mod postgres_directory;
mod postgres_logins;
mod postgres_reports;
pub mod reports;
mod rows;
pub mod scratch;
mod sqlite;
mod sqlite_directory;
mod sqlite_logins;
mod sqlite_reports;
pub mod transfer;
mod transfer_impl;

pub use blobs::BlobStore;
pub use directory::Directory;
pub use logins::LoginWindows;
pub use postgres::PgStore;
pub use postgres_logins::PgLogins;
pub use reports::ReportStore;
pub use sqlite::{STORE_FILE, SqliteStore, open_elsewhere};
pub use sqlite_logins::SqliteLogins;
pub use transfer::Transfer;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use kheo_shared::ids::{DocId, ModelId};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored id {0:?} is not a document id")]
    CorruptId(String),
    #[error("stored document is unreadable: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Logins(#[from] logins::LoginWindowsError),
}

/// Which stored state of a document a copy holds: the number of writes
/// it has seen and the process that made the last one. The pair is unique
/// along the document's history even when two processes both write "the
/// next" version: only one of them is kept, and the other's version never
/// exists in the store, so nothing merged on top of it passes the check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Version {
    pub n: i64,
    pub writer: i64,
}

impl Version {
    /// A document the store does not hold.
    pub const NONE: Version = Version { n: 0, writer: 0 };

    /// The version a write on top of this one by `writer` makes.
    pub fn next(self, writer: i64) -> Version {
        Version { n: self.n + 1, writer }
    }
}

/// What the store holds of one document.
#[derive(Debug, Default)]
pub struct StoredDoc {
    /// Empty when the document was never compacted.
    pub snapshot: Vec<u8>,
    /// Change chunks appended after the snapshot, oldest first.
    pub chunks: Vec<Vec<u8>>,
    pub version: Version,
}

impl StoredDoc {
    /// The document as Automerge holds it: the snapshot, then the chunks.
    pub fn to_automerge(&self) -> Result<automerge::Automerge, StoreError> {
        let mut doc = if self.snapshot.is_empty() {
            automerge::Automerge::new()
        } else {
            automerge::Automerge::load(&self.snapshot).map_err(|e| StoreError::Corrupt(e.to_string()))?
        };
        for chunk in &self.chunks {
            doc.load_incremental(chunk).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        }
        Ok(doc)
    }
}

#[derive(Debug, Clone)]
pub enum DocWrite {
    /// Changes to add after what is stored (`Automerge::save_after`).
    Append { doc: DocId, chunk: Vec<u8>, base: Version, next: Version },
    /// A full save that replaces the snapshot and the chunks it covers
    /// (every chunk up to `base`).
    Snapshot { doc: DocId, bytes: Vec<u8>, base: Version, next: Version },
}

impl DocWrite {
    pub fn doc(&self) -> DocId {
        match self {
            DocWrite::Append { doc, .. } | DocWrite::Snapshot { doc, .. } => *doc,
        }
    }

    /// The stored version the write was made on, and the one it makes.
    pub fn versions(&self) -> (Version, Version) {
        match self {
            DocWrite::Append { base, next, .. } | DocWrite::Snapshot { base, next, .. } => (*base, *next),
        }
    }
}

/// How one batch of a commit ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Committed {
    Done,
    /// The document was no longer at the version the batch was merged on
    /// (another process, or a refused line of this one, wrote it): nothing
    /// of the batch was kept.
    Conflict(DocId),
}

/// Everything one sync request changes; committed all or nothing.
#[derive(Debug, Clone, Default)]
pub struct WriteBatch {
    pub docs: Vec<DocWrite>,
    /// (device, document, encoded `automerge::sync::State`).
    pub sync_states: Vec<(String, DocId, Vec<u8>)>,
    /// The unit each merged model document now names.
    pub model_units: Vec<(ModelId, String)>,
    /// (device, when): the device's last sync, shown in device lists.
    pub device_seen: Option<(String, i64)>,
    /// Rows of the read model the merge changed.
    pub read_model: Vec<crate::read_model::ReadModelWrite>,
    /// Documents the batch was derived from without writing them (the
    /// read-model rebuild): it is kept only while each is still at this
    /// version, so rows read from a document another process has written
    /// since never overwrite the rows that process's merge wrote.
    pub unchanged: Vec<(DocId, Version)>,
    /// The heads (see [`encode_heads`]) each written document is at after
    /// the batch. A document written without them is stored with heads
    /// unknown, which a quiet sync counts as news: never wrong, only slower.
    pub heads: BTreeMap<DocId, Vec<u8>>,
    /// (device, document): sync states to forget, for documents the
    /// device released (`Keep::release`): the server no longer offers them.
    pub released_states: Vec<(String, DocId)>,
}

/// One document of a scope, as a quiet sync compares it.
#[derive(Debug, Clone, PartialEq)]
pub struct ScopeDoc {
    pub id: DocId,
    pub version: Version,
    /// [`encode_heads`], `None` when unknown.
    pub heads: Option<Vec<u8>>,
    /// The device's encoded `automerge::sync::State`, `None` when it never synced the document.
    pub state: Option<Vec<u8>>,
}

/// A document's heads as stored: the hashes sorted, 32 bytes each.
pub fn encode_heads(heads: &[automerge::ChangeHash]) -> Vec<u8> {
    let mut sorted = heads.to_vec();
    sorted.sort();
    sorted.iter().flat_map(|h| h.0).collect()
}

impl WriteBatch {
    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
            && self.sync_states.is_empty()
            && self.released_states.is_empty()
            && self.model_units.is_empty()
            && self.device_seen.is_none()
            && self.read_model.is_empty()
    }
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// `None` when the document was never stored.
    async fn load_doc(&self, id: &DocId) -> Result<Option<StoredDoc>, StoreError>;

    async fn load_sync_state(&self, device: &str, id: &DocId) -> Result<Option<Vec<u8>>, StoreError>;

    /// Every stored document id.
    async fn doc_ids(&self) -> Result<Vec<DocId>, StoreError>;

    /// The stored versions of these documents; absent ones are left out.
    async fn versions(&self, ids: &[DocId]) -> Result<Vec<(DocId, Version)>, StoreError>;

    /// The versions of every stored document of the models in `units`
    /// (every stored document when `None`), in id order: what a phone's
    /// "anything new?" check compares (see [`crate::changes`]).
    async fn versions_in_units(&self, units: Option<&[String]>) -> Result<Vec<(DocId, Version)>, StoreError>;

    /// The versions of the stored documents `device` has a sync state
    /// with, in id order: what a device keeping only what it synced hears
    /// of (see [`crate::changes`]).
    async fn versions_synced_by(&self, device: &str) -> Result<Vec<(DocId, Version)>, StoreError>;

    /// For every stored document of the models in `units` (all when
    /// `None`), in id order: its stored heads and `device`'s sync state
    /// with it. What a quiet sync compares (see [`crate::sync::quiet`]).
    async fn heads_in_units(&self, device: &str, units: Option<&[String]>) -> Result<Vec<ScopeDoc>, StoreError>;

    /// Documents stored with their heads unknown (written before heads were
    /// kept, or by a writer that does not say), in id order.
    async fn docs_without_heads(&self) -> Result<Vec<DocId>, StoreError>;

    /// The document's version and its chunks written after version `n`,
    /// each with the version it made, oldest first. A compaction since `n`
    /// leaves gaps: the caller must check that every version is there.
    async fn chunks_after(&self, id: &DocId, n: i64) -> Result<(Version, Vec<(i64, Vec<u8>)>), StoreError>;

    /// Makes the batches durable, in order, in one transaction. A batch
    /// with a document write that does not find its base version is left
    /// out whole (so is, by the same check, anything merged on top of it).
    async fn commit(&self, batches: &[WriteBatch]) -> Result<Vec<Committed>, StoreError>;

    /// A trivial query through the pool: whether the database answers at all
    /// (the health check's probe, see [`crate::health`]).
    async fn ping(&self) -> Result<(), StoreError>;

    /// Waits until in-flight work is done and releases the database.
    async fn close(&self);
}

/// One database seen through its traits, and the login windows kept
/// beside it.
#[derive(Clone)]
pub struct Database {
    pub store: Arc<dyn Store>,
    pub directory: Arc<dyn Directory>,
    pub reports: Arc<dyn ReportStore>,
    pub logins: Arc<dyn LoginWindows>,
    /// Rows as stored, for copies to another database.
    pub transfer: Arc<dyn Transfer>,
    /// Photos' bytes and their uploads.
    pub blobs: Arc<dyn BlobStore>,
}

impl Database {
    fn of<S: Store + Directory + ReportStore + Transfer + BlobStore>(
        db: Arc<S>,
        logins: Arc<dyn LoginWindows>,
    ) -> Database {
        Database {
            store: db.clone(),
            directory: db.clone(),
            reports: db.clone(),
            transfer: db.clone(),
            blobs: db,
            logins,
        }
    }

    /// The SQLite file at `path` (created if needed), migrated, with the
    /// login windows of its folder.
    pub async fn open_sqlite_file(path: &Path) -> Result<Database, StoreError> {
        let folder = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let logins = Arc::new(SqliteLogins::open(folder).await?);
        Ok(Database::of(Arc::new(SqliteStore::open_file(path).await?), logins))
    }

    /// Waits until in-flight work is done and releases every connection.
    pub async fn close(&self) {
        self.store.close().await;
        self.logins.close().await;
    }
}

/// The one way to open a store: PostgreSQL when a `postgres://` URL is
/// given, else the embedded SQLite file in `data_dir` (created if needed);
/// with either, the login windows every process on it shares ([`logins`]).
/// Both are migrated before they are returned.
pub async fn open(database_url: Option<&str>, data_dir: &Path) -> Result<Database, StoreError> {
    match database_url {
        Some(url) => {
            // The store's migrations make the windows' table.
            let store = Arc::new(PgStore::open(url).await?);
            Ok(Database::of(store, Arc::new(PgLogins::open(url).await?)))
        }
        None => {
            std::fs::create_dir_all(data_dir)
                .map_err(|e| StoreError::Corrupt(format!("creating {}: {e}", data_dir.display())))?;
            let store = Arc::new(SqliteStore::open(data_dir).await?);
            Ok(Database::of(store, Arc::new(SqliteLogins::open(data_dir).await?)))
        }
    }
}

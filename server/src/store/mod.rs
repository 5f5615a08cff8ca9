//! Durable storage of documents and sync states, behind the [`Store`] trait.
//!
//! A document is stored as its latest snapshot (a full `Automerge::save`)
//! plus the change chunks appended since, in order. Writes arrive as
//! [`WriteBatch`]es; [`Store::commit`] makes a slice of batches durable in
//! one transaction, in order, and only then returns. That is what lets the
//! [`crate::writer`] acknowledge a sync only after it is on disk while
//! paying one fsync for many concurrent syncs.

pub mod directory;
pub mod reports;
mod sqlite;
mod sqlite_directory;
mod sqlite_reports;

pub use directory::Directory;
pub use reports::ReportStore;
pub use sqlite::SqliteStore;

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
}

/// What the store holds of one document.
#[derive(Debug, Default)]
pub struct StoredDoc {
    /// Empty when the document was never compacted.
    pub snapshot: Vec<u8>,
    /// Change chunks appended after the snapshot, oldest first.
    pub chunks: Vec<Vec<u8>>,
}

#[derive(Debug, Clone)]
pub enum DocWrite {
    /// Changes to add after what is stored (`Automerge::save_after`).
    Append { doc: DocId, chunk: Vec<u8> },
    /// A full save that replaces the snapshot and every chunk before it.
    Snapshot { doc: DocId, bytes: Vec<u8> },
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
}

impl WriteBatch {
    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
            && self.sync_states.is_empty()
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

    /// Makes the batches durable, in order, in one transaction.
    async fn commit(&self, batches: &[WriteBatch]) -> Result<(), StoreError>;

    /// Waits until in-flight work is done and releases the database.
    async fn close(&self);
}

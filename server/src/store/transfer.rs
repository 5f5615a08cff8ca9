//! The [`Transfer`] trait: rows exactly as stored, read in pages from one
//! database and written into another, for `admin migrate-store` (see
//! [`super::migrate`]). What the other traits already give (accounts, the
//! organisation tree, model units, documents as Automerge sees them) is
//! read through them; this trait adds only what they do not expose: token
//! hashes, chunk versions, quarantine ids, every target, blobs, table sizes
//! and the mark a migration leaves on its target.
//!
//! Every `import_*` writes its rows in one transaction and skips a row
//! whose key is already there, so a copy cut off between two calls is
//! finished by running it again.

use async_trait::async_trait;

use super::StoreError;
use super::directory::{AccountRow, DeviceRow, QuarantineEntry};

/// The tables a migration copies row for row, in the order it copies them
/// (accounts before the devices that name them).
pub const COPIED_TABLES: [&str; 11] = [
    "units",
    "successions",
    "accounts",
    "devices",
    "model_units",
    "targets",
    "quarantine",
    "documents",
    "chunks",
    "sync_states",
    "blobs",
];

/// The read model's tables: built from the documents, not copied.
pub const READ_MODEL_TABLES: [&str; 4] = ["rm_models", "rm_records", "rm_incidents", "rm_attachments"];

/// A document as stored: its snapshot, versions and chunks with the
/// version each made, which other processes' catch-up relies on.
#[derive(Debug, Clone, PartialEq)]
pub struct RawDoc {
    pub id: String,
    pub snapshot: Vec<u8>,
    pub updated_at: i64,
    pub version: i64,
    pub writer: i64,
    /// (version it made, bytes), in stored order.
    pub chunks: Vec<(i64, Vec<u8>)>,
}

impl RawDoc {
    /// Bytes held in memory, for batches bounded by size.
    pub fn size(&self) -> usize {
        self.snapshot.len() + self.chunks.iter().map(|(_, c)| c.len()).sum::<usize>()
    }
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct SyncStateRow {
    pub device: String,
    pub doc_id: String,
    pub state: Vec<u8>,
}

/// A device with the hash of its token: what lets a phone keep its login.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceSecret {
    pub device: DeviceRow,
    pub token_hash: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct TargetRow {
    pub unit: String,
    pub year: i32,
    pub new_models: i64,
    pub typical: i64,
}

/// A stored blob as it is stored (unfinished uploads are not copied: a
/// phone starts those again from `received: 0`).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct BlobRow {
    pub sha256: String,
    pub media_type: String,
    pub bytes: i64,
    pub width: i64,
    pub height: i64,
    pub content: Vec<u8>,
    pub thumbnail: Vec<u8>,
    pub first_device: String,
    pub created_at: i64,
}

/// A migration's mark on the database it writes into.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct MigrationMark {
    pub source: String,
    pub started_at: i64,
    pub finished_at: Option<i64>,
}

/// The table name when it is one of [`COPIED_TABLES`] or
/// [`READ_MODEL_TABLES`]: the only names a count is built from.
pub(super) fn known_table(table: &str) -> Result<&'static str, StoreError> {
    COPIED_TABLES
        .iter()
        .chain(READ_MODEL_TABLES.iter())
        .find(|t| **t == table)
        .copied()
        .ok_or_else(|| StoreError::Corrupt(format!("{table} is not a table of the store")))
}

#[async_trait]
pub trait Transfer: Send + Sync + 'static {
    /// Rows of one of [`COPIED_TABLES`] or [`READ_MODEL_TABLES`].
    async fn count_rows(&self, table: &str) -> Result<i64, StoreError>;

    /// The document with its chunks, read in one transaction.
    async fn export_doc(&self, id: &str) -> Result<Option<RawDoc>, StoreError>;
    /// Writes the documents this database lacks, each with its chunks;
    /// returns how many it wrote (the others were there).
    async fn import_docs(&self, docs: &[RawDoc]) -> Result<usize, StoreError>;

    /// Sync states after `(device, doc_id)` in key order, at most `limit`.
    async fn export_sync_states(
        &self,
        after: Option<(&str, &str)>,
        limit: i64,
    ) -> Result<Vec<SyncStateRow>, StoreError>;
    async fn import_sync_states(&self, rows: &[SyncStateRow]) -> Result<usize, StoreError>;

    /// Accounts with their secret hashes, as [`super::Directory::accounts`] reads them.
    async fn import_accounts(&self, rows: &[AccountRow]) -> Result<usize, StoreError>;

    async fn export_devices(&self) -> Result<Vec<DeviceSecret>, StoreError>;
    async fn import_devices(&self, rows: &[DeviceSecret]) -> Result<usize, StoreError>;

    async fn export_targets(&self) -> Result<Vec<TargetRow>, StoreError>;
    async fn import_targets(&self, rows: &[TargetRow]) -> Result<usize, StoreError>;

    /// Quarantine entries with an id above `after`, oldest first, at most `limit`.
    async fn export_quarantine(&self, after: i64, limit: i64) -> Result<Vec<QuarantineEntry>, StoreError>;
    /// Keeps each entry's id, and the id the next refusal gets stays above them.
    async fn import_quarantine(&self, rows: &[QuarantineEntry]) -> Result<usize, StoreError>;

    /// Blobs whose hash is above `after`, in hash order, at most `limit`.
    async fn export_blobs(&self, after: &str, limit: i64) -> Result<Vec<BlobRow>, StoreError>;
    async fn import_blobs(&self, rows: &[BlobRow]) -> Result<usize, StoreError>;

    async fn migration_marks(&self) -> Result<Vec<MigrationMark>, StoreError>;
    /// Records (or updates) the mark of a migration from `mark.source`.
    async fn set_migration_mark(&self, mark: &MigrationMark) -> Result<(), StoreError>;
}

//! Where photos' bytes are kept (docs/PROTOCOL.md §13): the [`BlobStore`]
//! trait, its outcomes, and its one implementation for both backends.
//!
//! Three tables of the store's own database (so `admin backup`, `pg_dump`
//! and `admin migrate-store` carry them): `blobs`, whole blobs by SHA-256
//! with their thumbnail and the device that stored them first;
//! `blob_uploads`, a device's unfinished upload of one hash (its declared
//! size and how much of it is durable); `blob_parts`, the parts received.
//! The attachments that reference a hash are read from the read model
//! (`rm_attachments`), which the merge that named them wrote.
//!
//! A device's quota counts its blobs and the declared size of its
//! unfinished uploads. Each write checks it inside a transaction that
//! holds the device, so several processes on one PostgreSQL cannot both
//! pass it: SQLite's write lock (`BEGIN IMMEDIATE`) or an advisory lock
//! on the device on PostgreSQL. No state in a process decides it.
//!
//! Every statement is written once with `$N` placeholders, numbered in
//! the order they first appear, which SQLite reads as PostgreSQL does.

use async_trait::async_trait;
use sha2::{Digest, Sha256};

use super::{PgStore, SqliteStore, StoreError};

/// An attachment that names a hash, as the read model holds it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct BlobRef {
    pub model: String,
    pub media_type: String,
    pub bytes: i64,
    pub deleted: bool,
}

/// Where a device's upload of one hash stands (§13.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadState {
    /// The whole blob is stored, by any device.
    pub stored: bool,
    /// Bytes of this device's unfinished upload held durably.
    pub received: i64,
}

/// One part of an upload, already checked against the attachment.
#[derive(Debug, Clone, Copy)]
pub struct Part<'a> {
    pub sha256: &'a str,
    pub device: &'a str,
    pub media_type: &'a str,
    /// The blob's size.
    pub total: i64,
    /// Where this part starts.
    pub first: i64,
    pub data: &'a [u8],
    pub now: i64,
    /// The device's quota in bytes.
    pub quota: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartOutcome {
    /// The blob is already stored; nothing was written.
    AlreadyStored,
    /// The part does not start at what is held; nothing was written.
    OffsetMismatch { received: i64 },
    /// The upload would pass the device's quota; nothing was written.
    OverQuota { used: i64 },
    /// The part is durable; this much is held now.
    Received { received: i64 },
    /// The part completes the blob: the whole bytes, for the checks before
    /// [`BlobStore::finish`]. Nothing was written.
    Complete { bytes: Vec<u8> },
}

/// A checked blob, ready to store.
#[derive(Debug, Clone, Copy)]
pub struct NewBlob<'a> {
    pub sha256: &'a str,
    pub media_type: &'a str,
    /// The size of what was uploaded (what the hash names).
    pub bytes: i64,
    pub width: i64,
    pub height: i64,
    /// The stored copy (metadata stripped).
    pub content: &'a [u8],
    pub thumbnail: &'a [u8],
    pub device: &'a str,
    pub now: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finished {
    /// Stored; the device's unfinished upload is gone.
    Stored,
    /// Another request stored it meanwhile; this device's upload is gone.
    AlreadyStored,
    /// Another request of the device moved its upload meanwhile; nothing written.
    OffsetMismatch {
        received: i64,
    },
    OverQuota {
        used: i64,
    },
}

/// Which bytes of a blob to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    Content,
    Thumbnail,
}

/// Blobs, their unfinished uploads and the attachments naming them.
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// The attachments of the read model naming `sha256` (at most a few
    /// hundred: a hash is one photo).
    async fn references(&self, sha256: &str) -> Result<Vec<BlobRef>, StoreError>;

    async fn upload_state(&self, sha256: &str, device: &str) -> Result<UploadState, StoreError>;

    /// Keeps a part durably, unless it completes the blob (then its whole
    /// bytes come back for the checks, nothing written), or refuses it.
    async fn put_part(&self, part: &Part<'_>) -> Result<PartOutcome, StoreError>;

    /// Stores a checked blob uploaded by `blob.device`, whose upload held
    /// `first` bytes when its last part arrived, and ends that upload.
    async fn finish(&self, blob: &NewBlob<'_>, first: i64, quota: i64) -> Result<Finished, StoreError>;

    /// Ends a device's unfinished upload (a failed check).
    async fn discard(&self, sha256: &str, device: &str) -> Result<(), StoreError>;

    /// The media type and the bytes, when the blob is stored.
    async fn read_blob(&self, sha256: &str, variant: Variant) -> Result<Option<(String, Vec<u8>)>, StoreError>;

    /// Deletes the unfinished uploads untouched since `before`; returns how many.
    async fn sweep_uploads(&self, before: i64) -> Result<u64, StoreError>;

    /// What the device's quota counts now: its blobs and unfinished uploads.
    async fn quota_used(&self, device: &str) -> Result<i64, StoreError>;
}

const REFERENCES: &str =
    "SELECT model, media_type, bytes, deleted FROM rm_attachments WHERE sha256 = $1 ORDER BY record LIMIT 1000";
const IS_STORED: &str = "SELECT COUNT(*) FROM blobs WHERE sha256 = $1";
const UPLOAD: &str = "SELECT received, total FROM blob_uploads WHERE sha256 = $1 AND device = $2";
/// The device's blobs and unfinished uploads but the upload of `$2`.
const USED: &str = "SELECT CAST(COALESCE((SELECT SUM(bytes) FROM blobs WHERE first_device = $1), 0) \
     + COALESCE((SELECT SUM(total) FROM blob_uploads WHERE device = $1 AND sha256 <> $2), 0) AS BIGINT)";
const PARTS: &str = "SELECT data FROM blob_parts WHERE sha256 = $1 AND device = $2 ORDER BY part_start";
const INSERT_PART: &str = "INSERT INTO blob_parts (sha256, device, part_start, data) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (sha256, device, part_start) DO UPDATE SET data = excluded.data";
const UPSERT_UPLOAD: &str = "INSERT INTO blob_uploads (sha256, device, media_type, total, received, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (sha256, device) DO UPDATE SET \
     media_type = excluded.media_type, total = excluded.total, received = excluded.received, \
     updated_at = excluded.updated_at";
const DELETE_PARTS: &str = "DELETE FROM blob_parts WHERE sha256 = $1 AND device = $2";
const DELETE_UPLOAD: &str = "DELETE FROM blob_uploads WHERE sha256 = $1 AND device = $2";
const INSERT_BLOB: &str = "INSERT INTO blobs (sha256, media_type, bytes, width, height, content, thumbnail, \
     first_device, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (sha256) DO NOTHING";
const READ_CONTENT: &str = "SELECT media_type, content FROM blobs WHERE sha256 = $1";
const READ_THUMBNAIL: &str = "SELECT 'jpeg', thumbnail FROM blobs WHERE sha256 = $1";
const SWEEP_PARTS: &str = "DELETE FROM blob_parts WHERE EXISTS (SELECT 1 FROM blob_uploads u \
     WHERE u.sha256 = blob_parts.sha256 AND u.device = blob_parts.device AND u.updated_at <= $1)";
const SWEEP_UPLOADS: &str = "DELETE FROM blob_uploads WHERE updated_at <= $1";

/// The first key of the quota's advisory locks on PostgreSQL (the two-key
/// lock space; the login throttle uses another class).
const PG_LOCK_CLASS: i32 = 0x424c;
const PG_LOCK: &str = "SELECT pg_advisory_xact_lock($1, $2)";

/// A device's lock number: two devices on one number only wait for each other.
fn lock_number(device: &str) -> i32 {
    let digest = Sha256::digest(device.as_bytes());
    i32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// What a device's upload (received, total) holds of a blob of `total`
/// bytes: an upload of another size was for an attachment that changed
/// since, and starts over.
fn held(upload: Option<(i64, i64)>, total: i64) -> i64 {
    match upload {
        Some((received, declared)) if declared == total => received,
        _ => 0,
    }
}

macro_rules! impl_blob_store {
    ($store:ty, $begin_write:expr, $lock:expr) => {
        impl $store {
            /// A write transaction that holds `device` until it ends, in every process.
            async fn holding_device(
                &self,
                device: &str,
            ) -> Result<sqlx::Transaction<'static, <Self as BlobBackend>::Db>, sqlx::Error> {
                let mut tx = self.pool().begin_with($begin_write).await?;
                if let Some(lock) = $lock {
                    sqlx::query(lock).bind(PG_LOCK_CLASS).bind(lock_number(device)).execute(&mut *tx).await?;
                }
                Ok(tx)
            }
        }

        #[async_trait]
        impl BlobStore for $store {
            async fn references(&self, sha256: &str) -> Result<Vec<BlobRef>, StoreError> {
                Ok(sqlx::query_as(REFERENCES).bind(sha256).fetch_all(self.pool()).await?)
            }

            async fn upload_state(&self, sha256: &str, device: &str) -> Result<UploadState, StoreError> {
                let mut tx = self.pool().begin().await?;
                let stored: i64 = sqlx::query_scalar(IS_STORED).bind(sha256).fetch_one(&mut *tx).await?;
                let upload: Option<(i64, i64)> =
                    sqlx::query_as(UPLOAD).bind(sha256).bind(device).fetch_optional(&mut *tx).await?;
                tx.commit().await?;
                Ok(UploadState { stored: stored > 0, received: upload.map_or(0, |(received, _)| received) })
            }

            async fn put_part(&self, p: &Part<'_>) -> Result<PartOutcome, StoreError> {
                let mut tx = self.holding_device(p.device).await?;
                let stored: i64 = sqlx::query_scalar(IS_STORED).bind(p.sha256).fetch_one(&mut *tx).await?;
                if stored > 0 {
                    return Ok(PartOutcome::AlreadyStored);
                }
                let upload: Option<(i64, i64)> =
                    sqlx::query_as(UPLOAD).bind(p.sha256).bind(p.device).fetch_optional(&mut *tx).await?;
                let received = held(upload, p.total);
                if p.first != received {
                    return Ok(PartOutcome::OffsetMismatch { received });
                }
                let used: i64 = sqlx::query_scalar(USED).bind(p.device).bind(p.sha256).fetch_one(&mut *tx).await?;
                if used.saturating_add(p.total) > p.quota {
                    return Ok(PartOutcome::OverQuota { used });
                }
                let end = p.first + p.data.len() as i64;
                if end >= p.total {
                    let parts: Vec<Vec<u8>> = if received == 0 {
                        Vec::new()
                    } else {
                        sqlx::query_scalar(PARTS).bind(p.sha256).bind(p.device).fetch_all(&mut *tx).await?
                    };
                    tx.rollback().await?;
                    let mut bytes = Vec::with_capacity(p.total as usize);
                    for part in parts {
                        bytes.extend_from_slice(&part);
                    }
                    bytes.extend_from_slice(p.data);
                    return Ok(PartOutcome::Complete { bytes });
                }
                if upload.is_some() && received == 0 {
                    sqlx::query(DELETE_PARTS).bind(p.sha256).bind(p.device).execute(&mut *tx).await?;
                }
                sqlx::query(INSERT_PART)
                    .bind(p.sha256)
                    .bind(p.device)
                    .bind(p.first)
                    .bind(p.data)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(UPSERT_UPLOAD)
                    .bind(p.sha256)
                    .bind(p.device)
                    .bind(p.media_type)
                    .bind(p.total)
                    .bind(end)
                    .bind(p.now)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(PartOutcome::Received { received: end })
            }

            async fn finish(&self, b: &NewBlob<'_>, first: i64, quota: i64) -> Result<Finished, StoreError> {
                let mut tx = self.holding_device(b.device).await?;
                let stored: i64 = sqlx::query_scalar(IS_STORED).bind(b.sha256).fetch_one(&mut *tx).await?;
                if stored == 0 {
                    let upload: Option<(i64, i64)> =
                        sqlx::query_as(UPLOAD).bind(b.sha256).bind(b.device).fetch_optional(&mut *tx).await?;
                    let received = held(upload, b.bytes);
                    if received != first {
                        return Ok(Finished::OffsetMismatch { received });
                    }
                    let used: i64 = sqlx::query_scalar(USED).bind(b.device).bind(b.sha256).fetch_one(&mut *tx).await?;
                    if used.saturating_add(b.bytes) > quota {
                        return Ok(Finished::OverQuota { used });
                    }
                    sqlx::query(INSERT_BLOB)
                        .bind(b.sha256)
                        .bind(b.media_type)
                        .bind(b.bytes)
                        .bind(b.width)
                        .bind(b.height)
                        .bind(b.content)
                        .bind(b.thumbnail)
                        .bind(b.device)
                        .bind(b.now)
                        .execute(&mut *tx)
                        .await?;
                }
                sqlx::query(DELETE_PARTS).bind(b.sha256).bind(b.device).execute(&mut *tx).await?;
                sqlx::query(DELETE_UPLOAD).bind(b.sha256).bind(b.device).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(if stored == 0 { Finished::Stored } else { Finished::AlreadyStored })
            }

            async fn discard(&self, sha256: &str, device: &str) -> Result<(), StoreError> {
                let mut tx = self.holding_device(device).await?;
                sqlx::query(DELETE_PARTS).bind(sha256).bind(device).execute(&mut *tx).await?;
                sqlx::query(DELETE_UPLOAD).bind(sha256).bind(device).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn read_blob(&self, sha256: &str, variant: Variant) -> Result<Option<(String, Vec<u8>)>, StoreError> {
                let sql = match variant {
                    Variant::Content => READ_CONTENT,
                    Variant::Thumbnail => READ_THUMBNAIL,
                };
                Ok(sqlx::query_as(sql).bind(sha256).fetch_optional(self.pool()).await?)
            }

            async fn sweep_uploads(&self, before: i64) -> Result<u64, StoreError> {
                let mut tx = self.pool().begin_with($begin_write).await?;
                sqlx::query(SWEEP_PARTS).bind(before).execute(&mut *tx).await?;
                let swept = sqlx::query(SWEEP_UPLOADS).bind(before).execute(&mut *tx).await?.rows_affected();
                tx.commit().await?;
                Ok(swept)
            }

            async fn quota_used(&self, device: &str) -> Result<i64, StoreError> {
                Ok(sqlx::query_scalar(USED).bind(device).bind("").fetch_one(self.pool()).await?)
            }
        }
    };
}

/// The database a store's pool speaks, for the transaction type above.
trait BlobBackend {
    type Db: sqlx::Database;
}

impl BlobBackend for SqliteStore {
    type Db = sqlx::Sqlite;
}

impl BlobBackend for PgStore {
    type Db = sqlx::Postgres;
}

// SQLite: one writer at a time already holds every device.
impl_blob_store!(SqliteStore, "BEGIN IMMEDIATE", None::<&str>);
impl_blob_store!(PgStore, "BEGIN", Some(PG_LOCK));

//! The embedded default store: one SQLite file in WAL mode with
//! `synchronous = FULL`, so a committed transaction survives power loss.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use kheo_shared::ids::DocId;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use super::rows::{
    DELETE_ATTACHMENTS, INSERT_ATTACHMENT, ScopeRow, VersionRow, bind_attachment, bind_record_row, record_upsert,
};
use super::{Committed, DocWrite, ScopeDoc, Store, StoreError, StoredDoc, Version, WriteBatch};
use crate::read_model::{ModelRow, ReadModelWrite};
use kheo_shared::codes::Code;

/// The store's file name in the data directory.
pub const STORE_FILE: &str = "kheo.sqlite3";

pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) [`STORE_FILE`] in `dir` and migrates it.
    pub async fn open(dir: &Path) -> Result<Self, StoreError> {
        Self::open_file(&dir.join(STORE_FILE)).await
    }

    /// Opens (creating if needed) the store file at `path` and migrates it.
    pub async fn open_file(path: &Path) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(30))
            // Reports scan large indexes: read them through a memory map and
            // keep a real page cache (SQLite's default is 2 MB per connection).
            .pragma("mmap_size", "1073741824")
            .pragma("cache_size", "-65536");
        let pool = SqlitePoolOptions::new().max_connections(8).connect_with(options).await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(SqliteStore { pool })
    }

    /// Migrates the file at `path` through one connection in rollback-journal
    /// mode, which leaves no write-ahead log beside it once closed (a pool's
    /// close does not wait for its last connection, whose close would
    /// checkpoint the log). The server sets WAL again when it opens the file.
    pub async fn migrate_alone(path: &Path) -> Result<(), StoreError> {
        use sqlx::{ConnectOptions, Connection};
        let mut conn = SqliteConnectOptions::new()
            .filename(path)
            .journal_mode(SqliteJournalMode::Delete)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .connect()
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&mut conn).await?;
        conn.close().await?;
        Ok(())
    }

    pub(super) fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

/// Whether another process holds the store file at `file` open (a server
/// that was not stopped): every connection to a WAL database keeps a shared
/// lock on one byte of its `-shm` file (the unix VFS's "dead man switch",
/// byte 128) for as long as it is open, and `F_GETLK` reports another
/// process's lock without taking one. Locks of this process are not seen.
/// `Ok(false)` where this cannot be told (no `-shm` file: nobody has the
/// store open; or not Linux).
pub fn open_elsewhere(file: &Path) -> std::io::Result<bool> {
    let mut shm = file.as_os_str().to_owned();
    shm.push("-shm");
    let shm = match std::fs::File::open(&shm) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    held_elsewhere(&shm)
}

#[cfg(target_os = "linux")]
fn held_elsewhere(shm: &std::fs::File) -> std::io::Result<bool> {
    use std::os::fd::AsRawFd;
    /// `(22 + SQLITE_SHM_NLOCK) * 4 + SQLITE_SHM_NLOCK` in SQLite's os_unix.c.
    const DEAD_MAN_SWITCH: libc::off_t = 128;
    let mut lock = libc::flock {
        l_type: libc::F_WRLCK as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: DEAD_MAN_SWITCH,
        l_len: 1,
        l_pid: 0,
    };
    // SAFETY: F_GETLK reads and writes only `lock`, a valid `flock`, on an open descriptor.
    if unsafe { libc::fcntl(shm.as_raw_fd(), libc::F_GETLK, &mut lock) } == -1 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(lock.l_type != libc::F_UNLCK as libc::c_short)
}

#[cfg(not(target_os = "linux"))]
fn held_elsewhere(_shm: &std::fs::File) -> std::io::Result<bool> {
    Ok(false)
}

/// A record's row replaces the one it had, whatever kind it was.
static INSERT_RECORD: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| record_upsert(|_| "?".to_owned()));

async fn write_read_model(tx: &mut Tx<'_>, write: &ReadModelWrite) -> Result<(), sqlx::Error> {
    match write {
        ReadModelWrite::Model(ModelRow { profile: p }) => {
            sqlx::query(
                "INSERT OR REPLACE INTO rm_models (model, name, field, unit, status, started_on, building_year, \
                 recognised_year, typical_year, replicating_year, stopped_year, replicated_from, members, households) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(p.id.to_string())
            .bind(&p.name)
            .bind(p.field.code())
            .bind(&p.unit)
            .bind(p.status.code())
            .bind(p.started_on.to_string())
            .bind(p.status_years.building)
            .bind(p.status_years.recognised)
            .bind(p.status_years.typical)
            .bind(p.status_years.replicating)
            .bind(p.status_years.stopped)
            .bind(p.replicated_from.map(|m| m.to_string()))
            .bind(i64::from(p.members))
            .bind(i64::from(p.households))
            .execute(&mut **tx)
            .await?;
        }
        ReadModelWrite::Record(r) => {
            bind_record_row(sqlx::query(&INSERT_RECORD), r).execute(&mut **tx).await?;
            sqlx::query("DELETE FROM rm_incidents WHERE record = ?").bind(&r.record).execute(&mut **tx).await?;
            // A deleted record keeps its row (a tombstone) but counts nothing.
            if !r.deleted {
                for (position, incident) in r.incidents.iter().enumerate() {
                    sqlx::query(
                        "INSERT INTO rm_incidents (record, position, model, occurred_on, review_state, category, \
                         outcome) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    )
                    .bind(&r.record)
                    .bind(position as i64)
                    .bind(&r.model)
                    .bind(&r.occurred_on)
                    .bind(r.review_state)
                    .bind(incident.category)
                    .bind(incident.outcome)
                    .execute(&mut **tx)
                    .await?;
                }
            }
            // Deleted records keep theirs: a blob stays readable by who may read the record.
            sqlx::query(DELETE_ATTACHMENTS).bind(&r.record).execute(&mut **tx).await?;
            for a in &r.details.attachments {
                bind_attachment(sqlx::query(INSERT_ATTACHMENT), r, a).execute(&mut **tx).await?;
            }
        }
    }
    Ok(())
}

/// Writes one batch; stops at the first document not at its base version
/// (the caller rolls the batch back).
async fn write_batch(tx: &mut Tx<'_>, batch: &WriteBatch, now: i64) -> Result<Committed, sqlx::Error> {
    // The transaction holds the write lock: nobody moves these until it ends.
    for (doc, version) in &batch.unchanged {
        let stored = sqlx::query_as::<_, (i64, i64)>("SELECT version, writer FROM documents WHERE id = ?")
            .bind(doc.to_string())
            .fetch_optional(&mut **tx)
            .await?;
        if stored.unwrap_or((0, 0)) != (version.n, version.writer) {
            return Ok(Committed::Conflict(*doc));
        }
    }
    for write in &batch.docs {
        let doc = write.doc();
        let key = doc.to_string();
        let (base, next) = write.versions();
        let snapshot = match write {
            DocWrite::Snapshot { bytes, .. } => Some(bytes),
            DocWrite::Append { .. } => None,
        };
        // Moves the document from `base` to `next`, or finds it elsewhere.
        let moved = if base == Version::NONE {
            sqlx::query(
                "INSERT INTO documents (id, snapshot, updated_at, version, writer, heads) \
                 VALUES (?1, COALESCE(?2, x''), ?3, ?4, ?5, ?8) \
                 ON CONFLICT(id) DO UPDATE SET snapshot = COALESCE(?2, snapshot), updated_at = ?3, version = ?4, writer = ?5, \
                 heads = ?8 WHERE version = 0 AND writer = 0",
            )
        } else {
            sqlx::query(
                "UPDATE documents SET snapshot = COALESCE(?2, snapshot), updated_at = ?3, version = ?4, writer = ?5, \
                 heads = ?8 WHERE id = ?1 AND version = ?6 AND writer = ?7",
            )
        }
        .bind(&key)
        .bind(snapshot)
        .bind(now)
        .bind(next.n)
        .bind(next.writer)
        .bind(base.n)
        .bind(base.writer)
        // Every write says where the document now is, or that it is unknown.
        .bind(batch.heads.get(&doc))
        .execute(&mut **tx)
        .await?;
        if moved.rows_affected() != 1 {
            return Ok(Committed::Conflict(doc));
        }
        match write {
            DocWrite::Append { chunk, .. } => {
                sqlx::query("INSERT INTO chunks (doc_id, version, data) VALUES (?, ?, ?)")
                    .bind(&key)
                    .bind(next.n)
                    .bind(chunk)
                    .execute(&mut **tx)
                    .await?;
            }
            // The snapshot holds what the document held at `base`: every chunk up to it.
            DocWrite::Snapshot { .. } => {
                sqlx::query("DELETE FROM chunks WHERE doc_id = ? AND version <= ?")
                    .bind(&key)
                    .bind(base.n)
                    .execute(&mut **tx)
                    .await?;
            }
        }
    }
    // Heads of documents the batch did not write (a backfill, kept only
    // while `unchanged` holds).
    for (doc, heads) in batch.heads.iter().filter(|(doc, _)| !batch.docs.iter().any(|w| w.doc() == **doc)) {
        sqlx::query("UPDATE documents SET heads = ? WHERE id = ?")
            .bind(heads)
            .bind(doc.to_string())
            .execute(&mut **tx)
            .await?;
    }
    if let Some((device, at)) = &batch.device_seen {
        sqlx::query("UPDATE devices SET last_seen = ? WHERE id = ?").bind(at).bind(device).execute(&mut **tx).await?;
    }
    for (model, unit) in &batch.model_units {
        sqlx::query(
            "INSERT INTO model_units (model, unit) VALUES (?, ?) ON CONFLICT(model) DO UPDATE SET unit = excluded.unit",
        )
        .bind(model.to_string())
        .bind(unit)
        .execute(&mut **tx)
        .await?;
    }
    for write in &batch.read_model {
        write_read_model(tx, write).await?;
    }
    for (device, doc) in &batch.released_states {
        sqlx::query("DELETE FROM sync_states WHERE device = ? AND doc_id = ?")
            .bind(device)
            .bind(doc.to_string())
            .execute(&mut **tx)
            .await?;
    }
    for (device, doc, state) in &batch.sync_states {
        sqlx::query(
            "INSERT INTO sync_states (device, doc_id, state) VALUES (?, ?, ?) \
             ON CONFLICT(device, doc_id) DO UPDATE SET state = excluded.state",
        )
        .bind(device)
        .bind(doc.to_string())
        .bind(state)
        .execute(&mut **tx)
        .await?;
    }
    Ok(Committed::Done)
}

type Tx<'c> = sqlx::Transaction<'c, sqlx::Sqlite>;

fn now_millis() -> i64 {
    kheo_shared::scalars::Timestamp::now().millis()
}

#[async_trait]
impl Store for SqliteStore {
    async fn load_doc(&self, id: &DocId) -> Result<Option<StoredDoc>, StoreError> {
        let key = id.to_string();
        // One read transaction, so a concurrent compaction cannot slip between the two reads.
        let mut tx = self.pool.begin().await?;
        let Some(row) = sqlx::query("SELECT snapshot, version, writer FROM documents WHERE id = ?")
            .bind(&key)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(None);
        };
        let chunks = sqlx::query("SELECT data FROM chunks WHERE doc_id = ? ORDER BY version, seq")
            .bind(&key)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .map(|r| r.get::<Vec<u8>, _>(0))
            .collect();
        tx.commit().await?;
        let version = Version { n: row.try_get(1)?, writer: row.try_get(2)? };
        Ok(Some(StoredDoc { snapshot: row.try_get(0)?, chunks, version }))
    }

    async fn load_sync_state(&self, device: &str, id: &DocId) -> Result<Option<Vec<u8>>, StoreError> {
        let row = sqlx::query("SELECT state FROM sync_states WHERE device = ? AND doc_id = ?")
            .bind(device)
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn doc_ids(&self) -> Result<Vec<DocId>, StoreError> {
        sqlx::query("SELECT id FROM documents ORDER BY id")
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(|r| {
                let s: String = r.get(0);
                DocId::from_str(&s).map_err(|_| StoreError::CorruptId(s))
            })
            .collect()
    }

    async fn versions(&self, ids: &[DocId]) -> Result<Vec<(DocId, Version)>, StoreError> {
        let mut found = Vec::with_capacity(ids.len());
        // SQLite takes at most 32,766 parameters; stay well below.
        for part in ids.chunks(500) {
            let marks = vec!["?"; part.len()].join(", ");
            let sql = format!("SELECT id, version, writer FROM documents WHERE id IN ({marks})");
            let mut query = sqlx::query_as::<_, VersionRow>(&sql);
            for id in part {
                query = query.bind(id.to_string());
            }
            for row in query.fetch_all(&self.pool).await? {
                found.push(row.parse()?);
            }
        }
        Ok(found)
    }

    async fn versions_in_units(&self, units: Option<&[String]>) -> Result<Vec<(DocId, Version)>, StoreError> {
        let rows = match units {
            None => {
                sqlx::query_as::<_, VersionRow>("SELECT id, version, writer FROM documents ORDER BY id")
                    .fetch_all(&self.pool)
                    .await?
            }
            Some(units) => {
                // A model's logs are the ids between 'log/<model>/' and 'log/<model>0' ('0' follows '/').
                let units = serde_json::to_string(units).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                sqlx::query_as::<_, VersionRow>(
                    "WITH scoped AS (SELECT model FROM model_units WHERE unit IN (SELECT value FROM json_each(?))) \
                     SELECT d.id, d.version, d.writer FROM scoped m JOIN documents d ON d.id = 'model/' || m.model \
                     UNION ALL \
                     SELECT d.id, d.version, d.writer FROM scoped m JOIN documents d \
                       ON d.id > 'log/' || m.model || '/' AND d.id < 'log/' || m.model || '0' \
                     ORDER BY 1",
                )
                .bind(units)
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.into_iter().map(VersionRow::parse).collect()
    }

    async fn versions_synced_by(&self, device: &str) -> Result<Vec<(DocId, Version)>, StoreError> {
        sqlx::query_as::<_, VersionRow>(
            "SELECT d.id, d.version, d.writer FROM sync_states s JOIN documents d ON d.id = s.doc_id \
             WHERE s.device = ? ORDER BY d.id",
        )
        .bind(device)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(VersionRow::parse)
        .collect()
    }

    async fn heads_in_units(&self, device: &str, units: Option<&[String]>) -> Result<Vec<ScopeDoc>, StoreError> {
        let rows = match units {
            None => {
                sqlx::query_as::<_, ScopeRow>(
                    "SELECT d.id, d.version, d.writer, d.heads, s.state FROM documents d \
                     LEFT JOIN sync_states s ON s.device = ? AND s.doc_id = d.id ORDER BY d.id",
                )
                .bind(device)
                .fetch_all(&self.pool)
                .await?
            }
            Some(units) => {
                let units = serde_json::to_string(units).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                sqlx::query_as::<_, ScopeRow>(
                    "WITH scoped AS (SELECT model FROM model_units WHERE unit IN (SELECT value FROM json_each(?2))), \
                     docs AS (SELECT d.id, d.version, d.writer, d.heads FROM scoped m \
                       JOIN documents d ON d.id = 'model/' || m.model \
                     UNION ALL \
                     SELECT d.id, d.version, d.writer, d.heads FROM scoped m JOIN documents d \
                       ON d.id > 'log/' || m.model || '/' AND d.id < 'log/' || m.model || '0') \
                     SELECT docs.id, docs.version, docs.writer, docs.heads, s.state FROM docs \
                     LEFT JOIN sync_states s ON s.device = ?1 AND s.doc_id = docs.id ORDER BY 1",
                )
                .bind(device)
                .bind(units)
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.into_iter().map(ScopeRow::parse).collect()
    }

    async fn docs_without_heads(&self) -> Result<Vec<DocId>, StoreError> {
        sqlx::query_scalar::<_, String>("SELECT id FROM documents WHERE heads IS NULL ORDER BY id")
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(|s| DocId::from_str(&s).map_err(|_| StoreError::CorruptId(s)))
            .collect()
    }

    async fn chunks_after(&self, id: &DocId, n: i64) -> Result<(Version, Vec<(i64, Vec<u8>)>), StoreError> {
        let key = id.to_string();
        let mut tx = self.pool.begin().await?;
        let version = sqlx::query("SELECT version, writer FROM documents WHERE id = ?")
            .bind(&key)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| Ok::<_, sqlx::Error>(Version { n: r.try_get(0)?, writer: r.try_get(1)? }))
            .transpose()?
            .unwrap_or(Version::NONE);
        let chunks =
            sqlx::query("SELECT version, data FROM chunks WHERE doc_id = ? AND version > ? ORDER BY version, seq")
                .bind(&key)
                .bind(n)
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                .collect::<Result<_, sqlx::Error>>()?;
        tx.commit().await?;
        Ok((version, chunks))
    }

    async fn commit(&self, batches: &[WriteBatch]) -> Result<Vec<Committed>, StoreError> {
        let now = now_millis();
        // The write lock up front: another process's writer waits for it
        // (busy timeout) instead of failing on a read lock it cannot upgrade.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let mut outcomes = Vec::with_capacity(batches.len());
        for batch in batches {
            // A savepoint per batch: a conflict leaves out this batch alone.
            let mut part = sqlx::Connection::begin(&mut *tx).await?;
            let outcome = write_batch(&mut part, batch, now).await?;
            if outcome == Committed::Done {
                part.commit().await?;
            } else {
                part.rollback().await?;
            }
            outcomes.push(outcome);
        }
        tx.commit().await?;
        Ok(outcomes)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}

#[cfg(test)]
mod contract_tests {
    use super::SqliteStore;

    async fn open() -> Option<(std::sync::Arc<SqliteStore>, tempfile::TempDir)> {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = SqliteStore::open(dir.path()).await.expect("store opens");
        Some((std::sync::Arc::new(store), dir))
    }

    crate::store_contract_tests!(open());
    crate::blob_contract_tests!(open());
}

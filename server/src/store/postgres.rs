//! The store on PostgreSQL, for several server processes on one database
//! (`--database-url postgres://...`). The same tables as the embedded
//! SQLite store in PostgreSQL's types; durability is PostgreSQL's
//! (`synchronous_commit` on, its default).

use std::str::FromStr;

use async_trait::async_trait;
use kheo_shared::ids::DocId;
use sqlx::Row;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use super::rows::{
    DELETE_ATTACHMENTS, INSERT_ATTACHMENT, ScopeRow, VersionRow, bind_attachment, bind_record_row, record_upsert,
};
use super::{Committed, DocWrite, ScopeDoc, Store, StoreError, StoredDoc, Version, WriteBatch};
use crate::read_model::{ModelRow, ReadModelWrite};
use kheo_shared::codes::Code;

/// Reads that must agree with each other see one snapshot of the database.
const READ_SNAPSHOT: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";
/// Times a group commit is tried when PostgreSQL breaks a deadlock.
const COMMIT_ATTEMPTS: usize = 5;

pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to `url` and migrates the database.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new().max_connections(16).connect_with(options).await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(PgStore { pool })
    }

    pub(super) fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn commit_once(&self, batches: &[WriteBatch]) -> Result<Vec<Committed>, sqlx::Error> {
        let now = now_millis();
        let mut tx = self.pool.begin().await?;
        // Every document of the group locked up front, in id order, so two
        // processes' groups wait for each other instead of deadlocking.
        let mut keys: Vec<String> = batches.iter().flat_map(|b| b.docs.iter().map(|w| w.doc().to_string())).collect();
        keys.sort();
        keys.dedup();
        sqlx::query("SELECT id FROM documents WHERE id = ANY($1) ORDER BY id FOR UPDATE")
            .bind(&keys)
            .fetch_all(&mut *tx)
            .await?;
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
}

/// A deadlock broken or a serialization failure: nothing was kept, and
/// the same transaction may succeed when tried again.
fn is_retryable(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("40P01" | "40001")))
}

/// A record's row replaces the one it had, whatever kind it was.
static INSERT_RECORD: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| record_upsert(|n| format!("${n}")));

async fn write_read_model(tx: &mut Tx<'_>, write: &ReadModelWrite) -> Result<(), sqlx::Error> {
    match write {
        ReadModelWrite::Model(ModelRow { profile: p }) => {
            sqlx::query(
                "INSERT INTO rm_models (model, name, field, unit, status, started_on, building_year, \
                 recognised_year, typical_year, replicating_year, stopped_year, replicated_from, members, households) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
                 ON CONFLICT (model) DO UPDATE SET name = excluded.name, field = excluded.field, unit = excluded.unit, \
                 status = excluded.status, started_on = excluded.started_on, building_year = excluded.building_year, \
                 recognised_year = excluded.recognised_year, typical_year = excluded.typical_year, \
                 replicating_year = excluded.replicating_year, stopped_year = excluded.stopped_year, \
                 replicated_from = excluded.replicated_from, members = excluded.members, households = excluded.households",
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
            sqlx::query("DELETE FROM rm_incidents WHERE record = $1").bind(&r.record).execute(&mut **tx).await?;
            // A deleted record keeps its row (a tombstone) but counts nothing.
            if !r.deleted {
                for (position, incident) in r.incidents.iter().enumerate() {
                    sqlx::query(
                        "INSERT INTO rm_incidents (record, position, model, occurred_on, review_state, category, \
                         outcome) VALUES ($1, $2, $3, $4, $5, $6, $7)",
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
    // FOR SHARE: another process's merge of one of these waits for this
    // transaction, then writes its newer rows over ours, never the reverse.
    for (doc, version) in &batch.unchanged {
        let stored = sqlx::query_as::<_, (i64, i64)>("SELECT version, writer FROM documents WHERE id = $1 FOR SHARE")
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
                 VALUES ($1, COALESCE($2, ''::bytea), $3, $4, $5, $8) \
                 ON CONFLICT (id) DO UPDATE SET snapshot = COALESCE($2, documents.snapshot), updated_at = $3, \
                 version = $4, writer = $5, heads = $8 WHERE documents.version = 0 AND documents.writer = 0",
            )
        } else {
            sqlx::query(
                "UPDATE documents SET snapshot = COALESCE($2, snapshot), updated_at = $3, version = $4, writer = $5, \
                 heads = $8 WHERE id = $1 AND version = $6 AND writer = $7",
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
                sqlx::query("INSERT INTO chunks (doc_id, version, data) VALUES ($1, $2, $3)")
                    .bind(&key)
                    .bind(next.n)
                    .bind(chunk)
                    .execute(&mut **tx)
                    .await?;
            }
            // The snapshot holds what the document held at `base`: every chunk up to it.
            DocWrite::Snapshot { .. } => {
                sqlx::query("DELETE FROM chunks WHERE doc_id = $1 AND version <= $2")
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
        sqlx::query("UPDATE documents SET heads = $1 WHERE id = $2")
            .bind(heads)
            .bind(doc.to_string())
            .execute(&mut **tx)
            .await?;
    }
    if let Some((device, at)) = &batch.device_seen {
        sqlx::query("UPDATE devices SET last_seen = $1 WHERE id = $2").bind(at).bind(device).execute(&mut **tx).await?;
    }
    for (model, unit) in &batch.model_units {
        sqlx::query(
            "INSERT INTO model_units (model, unit) VALUES ($1, $2) ON CONFLICT(model) DO UPDATE SET unit = excluded.unit",
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
        sqlx::query("DELETE FROM sync_states WHERE device = $1 AND doc_id = $2")
            .bind(device)
            .bind(doc.to_string())
            .execute(&mut **tx)
            .await?;
    }
    for (device, doc, state) in &batch.sync_states {
        sqlx::query(
            "INSERT INTO sync_states (device, doc_id, state) VALUES ($1, $2, $3) \
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

type Tx<'c> = sqlx::Transaction<'c, sqlx::Postgres>;

fn now_millis() -> i64 {
    kheo_shared::scalars::Timestamp::now().millis()
}

#[async_trait]
impl Store for PgStore {
    async fn load_doc(&self, id: &DocId) -> Result<Option<StoredDoc>, StoreError> {
        let key = id.to_string();
        // One snapshot for both reads, so a concurrent compaction cannot slip between them.
        let mut tx = self.pool.begin_with(READ_SNAPSHOT).await?;
        let Some(row) = sqlx::query("SELECT snapshot, version, writer FROM documents WHERE id = $1")
            .bind(&key)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(None);
        };
        let chunks = sqlx::query("SELECT data FROM chunks WHERE doc_id = $1 ORDER BY version, seq")
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
        let row = sqlx::query("SELECT state FROM sync_states WHERE device = $1 AND doc_id = $2")
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
        let keys: Vec<String> = ids.iter().map(DocId::to_string).collect();
        sqlx::query_as::<_, VersionRow>("SELECT id, version, writer FROM documents WHERE id = ANY($1)")
            .bind(&keys)
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(VersionRow::parse)
            .collect()
    }

    async fn versions_in_units(&self, units: Option<&[String]>) -> Result<Vec<(DocId, Version)>, StoreError> {
        let rows = match units {
            None => {
                sqlx::query_as::<_, VersionRow>("SELECT id, version, writer FROM documents ORDER BY id")
                    .fetch_all(&self.pool)
                    .await?
            }
            Some(units) => {
                // A model's logs are the ids between 'log/<model>/' and 'log/<model>0' in byte
                // order ('0' follows '/'), on the index kept in that order.
                sqlx::query_as::<_, VersionRow>(
                    "WITH scoped AS (SELECT model FROM model_units WHERE unit = ANY($1)) \
                     SELECT d.id, d.version, d.writer FROM scoped m JOIN documents d ON d.id = 'model/' || m.model \
                     UNION ALL \
                     SELECT d.id, d.version, d.writer FROM scoped m JOIN documents d \
                       ON d.id COLLATE \"C\" > ('log/' || m.model || '/') COLLATE \"C\" \
                      AND d.id COLLATE \"C\" < ('log/' || m.model || '0') COLLATE \"C\" \
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
             WHERE s.device = $1 ORDER BY d.id",
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
                     LEFT JOIN sync_states s ON s.device = $1 AND s.doc_id = d.id ORDER BY d.id",
                )
                .bind(device)
                .fetch_all(&self.pool)
                .await?
            }
            Some(units) => {
                sqlx::query_as::<_, ScopeRow>(
                    "WITH scoped AS (SELECT model FROM model_units WHERE unit = ANY($2)), \
                     docs AS (SELECT d.id, d.version, d.writer, d.heads FROM scoped m \
                       JOIN documents d ON d.id = 'model/' || m.model \
                     UNION ALL \
                     SELECT d.id, d.version, d.writer, d.heads FROM scoped m JOIN documents d \
                       ON d.id COLLATE \"C\" > ('log/' || m.model || '/') COLLATE \"C\" \
                      AND d.id COLLATE \"C\" < ('log/' || m.model || '0') COLLATE \"C\") \
                     SELECT docs.id, docs.version, docs.writer, docs.heads, s.state FROM docs \
                     LEFT JOIN sync_states s ON s.device = $1 AND s.doc_id = docs.id ORDER BY 1",
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
        let mut tx = self.pool.begin_with(READ_SNAPSHOT).await?;
        let version = sqlx::query("SELECT version, writer FROM documents WHERE id = $1")
            .bind(&key)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| Ok::<_, sqlx::Error>(Version { n: r.try_get(0)?, writer: r.try_get(1)? }))
            .transpose()?
            .unwrap_or(Version::NONE);
        let chunks =
            sqlx::query("SELECT version, data FROM chunks WHERE doc_id = $1 AND version > $2 ORDER BY version, seq")
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
        let mut attempt = 1;
        loop {
            match self.commit_once(batches).await {
                // Two processes' groups that lock the same rows in another
                // order: PostgreSQL breaks the deadlock and the group goes again.
                Err(e) if is_retryable(&e) && attempt < COMMIT_ATTEMPTS => {
                    tracing::debug!(error = %e, attempt, "group commit went again");
                    attempt += 1;
                }
                other => return other.map_err(StoreError::from),
            }
        }
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
    use super::PgStore;
    use crate::store::scratch::{ScratchDatabase, TEST_DATABASE_VAR, scratch_database};

    /// `None` (and the test passes without running) when no PostgreSQL is
    /// named: `cargo xtask test` names one when it can start it.
    async fn open() -> Option<(std::sync::Arc<PgStore>, ScratchDatabase)> {
        let Some(db) = scratch_database().await else {
            eprintln!("skipped: {TEST_DATABASE_VAR} names no PostgreSQL server");
            return None;
        };
        let store = PgStore::open(&db.url).await.expect("store opens");
        Some((std::sync::Arc::new(store), db))
    }

    crate::store_contract_tests!(open());
    crate::blob_contract_tests!(open());
}

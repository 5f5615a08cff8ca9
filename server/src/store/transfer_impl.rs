//! [`Transfer`] on both backends, from one text: each statement is written
//! once with `?` placeholders, which SQLite reads as they are and
//! PostgreSQL gets numbered (`$1`, `$2`, ...) by [`numbered`].

use async_trait::async_trait;
use sqlx::Row;

use super::directory::{AccountRow, QuarantineEntry};
use super::rows::{
    ACCOUNT_COLUMNS, DEVICE_COLUMNS, DEVICE_INSERT_COLUMNS, DeviceSecretColumns, QUARANTINE_COLUMNS, QuarantineColumns,
    bind_account, bind_device,
};
use super::transfer::{BlobRow, DeviceSecret, MigrationMark, RawDoc, SyncStateRow, TargetRow, Transfer, known_table};
use super::{PgStore, SqliteStore, StoreError};

/// A statement as SQLite takes it.
fn as_written(sql: &str) -> String {
    sql.to_owned()
}

/// A statement with PostgreSQL's placeholders: the n-th `?` becomes `$n`
/// (no statement here has a `?` in a string).
fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push_str(&format!("${n}"));
        } else {
            out.push(c);
        }
    }
    out
}

/// Ids given explicitly leave PostgreSQL's sequence behind: the next
/// refusal's id must follow the largest. (SQLite's AUTOINCREMENT does so
/// by itself.)
const PG_QUARANTINE_SEQUENCE: &str =
    "SELECT setval(pg_get_serial_sequence('quarantine', 'id'), COALESCE(MAX(id), 0) + 1, false) FROM quarantine";

macro_rules! impl_transfer {
    ($store:ty, $sql:path, $begin_write:expr, $after_quarantine:expr) => {
        #[async_trait]
        impl Transfer for $store {
            async fn count_rows(&self, table: &str) -> Result<i64, StoreError> {
                let table = known_table(table)?;
                Ok(sqlx::query_scalar(&$sql(&format!("SELECT COUNT(*) FROM {table}"))).fetch_one(self.pool()).await?)
            }

            async fn export_doc(&self, id: &str) -> Result<Option<RawDoc>, StoreError> {
                let mut tx = self.pool().begin_with("BEGIN").await?;
                let select = $sql("SELECT snapshot, updated_at, version, writer FROM documents WHERE id = ?");
                let Some(row) = sqlx::query(&select).bind(id).fetch_optional(&mut *tx).await? else {
                    return Ok(None);
                };
                let chunks = sqlx::query_as::<_, (i64, Vec<u8>)>(&$sql(
                    "SELECT version, data FROM chunks WHERE doc_id = ? ORDER BY version, seq",
                ))
                .bind(id)
                .fetch_all(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(Some(RawDoc {
                    id: id.to_owned(),
                    snapshot: row.try_get(0)?,
                    updated_at: row.try_get(1)?,
                    version: row.try_get(2)?,
                    writer: row.try_get(3)?,
                    chunks,
                }))
            }

            async fn import_docs(&self, docs: &[RawDoc]) -> Result<usize, StoreError> {
                let mut tx = self.pool().begin_with($begin_write).await?;
                let mut written = 0;
                for d in docs {
                    let inserted = sqlx::query(&$sql(
                        "INSERT INTO documents (id, snapshot, updated_at, version, writer) \
                         VALUES (?, ?, ?, ?, ?) \
                         ON CONFLICT(id) DO NOTHING",
                    ))
                    .bind(&d.id)
                    .bind(&d.snapshot)
                    .bind(d.updated_at)
                    .bind(d.version)
                    .bind(d.writer)
                    .execute(&mut *tx)
                    .await?;
                    // A document already there keeps its own chunks.
                    if inserted.rows_affected() == 0 {
                        continue;
                    }
                    for (version, data) in &d.chunks {
                        sqlx::query(&$sql("INSERT INTO chunks (doc_id, version, data) VALUES (?, ?, ?)"))
                            .bind(&d.id)
                            .bind(version)
                            .bind(data)
                            .execute(&mut *tx)
                            .await?;
                    }
                    written += 1;
                }
                tx.commit().await?;
                Ok(written)
            }

            async fn export_sync_states(
                &self,
                after: Option<(&str, &str)>,
                limit: i64,
            ) -> Result<Vec<SyncStateRow>, StoreError> {
                let (device, doc) = after.unwrap_or(("", ""));
                Ok(sqlx::query_as(&$sql(
                    "SELECT device, doc_id, state FROM sync_states WHERE (device, doc_id) > (?, ?) \
                     ORDER BY device, doc_id LIMIT ?",
                ))
                .bind(device)
                .bind(doc)
                .bind(limit)
                .fetch_all(self.pool())
                .await?)
            }

            async fn import_sync_states(&self, rows: &[SyncStateRow]) -> Result<usize, StoreError> {
                let mut tx = self.pool().begin_with($begin_write).await?;
                let mut written = 0;
                for r in rows {
                    written += sqlx::query(&$sql(
                        "INSERT INTO sync_states (device, doc_id, state) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                    ))
                    .bind(&r.device)
                    .bind(&r.doc_id)
                    .bind(&r.state)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected() as usize;
                }
                tx.commit().await?;
                Ok(written)
            }

            async fn import_accounts(&self, rows: &[AccountRow]) -> Result<usize, StoreError> {
                let mut tx = self.pool().begin_with($begin_write).await?;
                let mut written = 0;
                for a in rows {
                    written += bind_account(
                        sqlx::query(&$sql(&format!(
                            "INSERT INTO accounts ({ACCOUNT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) \
                             ON CONFLICT DO NOTHING"
                        ))),
                        a,
                    )
                    .execute(&mut *tx)
                    .await?
                    .rows_affected() as usize;
                }
                tx.commit().await?;
                Ok(written)
            }

            async fn export_devices(&self) -> Result<Vec<DeviceSecret>, StoreError> {
                Ok(sqlx::query_as::<_, DeviceSecretColumns>(&$sql(&format!(
                    "SELECT {DEVICE_COLUMNS}, token_hash FROM devices ORDER BY id"
                )))
                .fetch_all(self.pool())
                .await?
                .into_iter()
                .map(DeviceSecret::from)
                .collect())
            }

            async fn import_devices(&self, rows: &[DeviceSecret]) -> Result<usize, StoreError> {
                let mut tx = self.pool().begin_with($begin_write).await?;
                let mut written = 0;
                for DeviceSecret { device: d, token_hash } in rows {
                    written += bind_device(
                        sqlx::query(&$sql(&format!(
                            "INSERT INTO devices ({DEVICE_INSERT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) \
                             ON CONFLICT DO NOTHING"
                        ))),
                        d,
                        token_hash,
                    )
                    .execute(&mut *tx)
                    .await?
                    .rows_affected() as usize;
                }
                tx.commit().await?;
                Ok(written)
            }

            async fn export_targets(&self) -> Result<Vec<TargetRow>, StoreError> {
                Ok(sqlx::query_as(&$sql("SELECT unit, year, new_models, typical FROM targets ORDER BY unit, year"))
                    .fetch_all(self.pool())
                    .await?)
            }

            async fn import_targets(&self, rows: &[TargetRow]) -> Result<usize, StoreError> {
                let mut tx = self.pool().begin_with($begin_write).await?;
                let mut written = 0;
                for t in rows {
                    written += sqlx::query(&$sql(
                        "INSERT INTO targets (unit, year, new_models, typical) VALUES (?, ?, ?, ?) \
                         ON CONFLICT DO NOTHING",
                    ))
                    .bind(&t.unit)
                    .bind(t.year)
                    .bind(t.new_models)
                    .bind(t.typical)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected() as usize;
                }
                tx.commit().await?;
                Ok(written)
            }

            async fn export_quarantine(&self, after: i64, limit: i64) -> Result<Vec<QuarantineEntry>, StoreError> {
                Ok(sqlx::query_as::<_, QuarantineColumns>(&$sql(&format!(
                    "SELECT {QUARANTINE_COLUMNS} FROM quarantine WHERE id > ? ORDER BY id LIMIT ?"
                )))
                .bind(after)
                .bind(limit)
                .fetch_all(self.pool())
                .await?
                .into_iter()
                .map(QuarantineEntry::from)
                .collect())
            }

            async fn import_quarantine(&self, rows: &[QuarantineEntry]) -> Result<usize, StoreError> {
                let mut tx = self.pool().begin_with($begin_write).await?;
                let mut written = 0;
                for q in rows {
                    written += sqlx::query(&$sql(&format!(
                        "INSERT INTO quarantine ({QUARANTINE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) \
                         ON CONFLICT DO NOTHING"
                    )))
                    .bind(q.id)
                    .bind(q.at)
                    .bind(&q.device)
                    .bind(&q.account)
                    .bind(&q.doc_id)
                    .bind(&q.rule)
                    .bind(&q.message)
                    .bind(&q.changes)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected() as usize;
                }
                if let Some(after) = $after_quarantine {
                    sqlx::query(after).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(written)
            }

            async fn export_blobs(&self, after: &str, limit: i64) -> Result<Vec<BlobRow>, StoreError> {
                Ok(sqlx::query_as(&$sql(
                    "SELECT sha256, media_type, bytes, width, height, content, thumbnail, first_device, created_at \
                     FROM blobs WHERE sha256 > ? ORDER BY sha256 LIMIT ?",
                ))
                .bind(after)
                .bind(limit)
                .fetch_all(self.pool())
                .await?)
            }

            async fn import_blobs(&self, rows: &[BlobRow]) -> Result<usize, StoreError> {
                let mut tx = self.pool().begin_with($begin_write).await?;
                let mut written = 0;
                for b in rows {
                    written += sqlx::query(&$sql(
                        "INSERT INTO blobs (sha256, media_type, bytes, width, height, content, thumbnail, \
                         first_device, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    ))
                    .bind(&b.sha256)
                    .bind(&b.media_type)
                    .bind(b.bytes)
                    .bind(b.width)
                    .bind(b.height)
                    .bind(&b.content)
                    .bind(&b.thumbnail)
                    .bind(&b.first_device)
                    .bind(b.created_at)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected() as usize;
                }
                tx.commit().await?;
                Ok(written)
            }

            async fn migration_marks(&self) -> Result<Vec<MigrationMark>, StoreError> {
                Ok(sqlx::query_as(&$sql(
                    "SELECT source, started_at, finished_at FROM migration_progress ORDER BY source",
                ))
                .fetch_all(self.pool())
                .await?)
            }

            async fn set_migration_mark(&self, m: &MigrationMark) -> Result<(), StoreError> {
                sqlx::query(&$sql(
                    "INSERT INTO migration_progress (source, started_at, finished_at) VALUES (?, ?, ?) \
                     ON CONFLICT(source) DO UPDATE SET finished_at = excluded.finished_at",
                ))
                .bind(&m.source)
                .bind(m.started_at)
                .bind(m.finished_at)
                .execute(self.pool())
                .await?;
                Ok(())
            }
        }
    };
}

// SQLite: writers take the lock up front (see `SqliteStore::commit`).
impl_transfer!(SqliteStore, as_written, "BEGIN IMMEDIATE", None::<&str>);
impl_transfer!(PgStore, numbered, "BEGIN", Some(PG_QUARANTINE_SEQUENCE));

#[cfg(test)]
mod tests {
    #[test]
    fn placeholders_are_numbered_in_order() {
        assert_eq!(
            super::numbered("INSERT INTO t (a, b) VALUES (?, ?) LIMIT ?"),
            "INSERT INTO t (a, b) VALUES ($1, $2) LIMIT $3"
        );
    }
}

//! [`Directory`] on the embedded SQLite store.

use std::collections::HashMap;
use std::str::FromStr;

use async_trait::async_trait;
use kheo_shared::codes::{Code, Role};
use kheo_shared::ids::ModelId;
use kheo_shared::scalars::Day;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::directory::{
    AccountRow, AccountUpdate, DeviceRow, Directory, DirectoryError, QUARANTINE_BYTES_PER_DEVICE,
    QUARANTINE_ENTRIES_PER_DEVICE, QuarantineEntry,
};
use super::{SqliteStore, StoreError};
use crate::org::{Level, Succession, Unit};

const ACCOUNT_COLUMNS: &str = "id, username, phone, display_name, role, unit, secret_hash, disabled, created_at";
const DEVICE_COLUMNS: &str = "id, account, actor, label, created_at, last_seen, revoked_at";

fn corrupt(what: &str, value: &str) -> DirectoryError {
    DirectoryError::Store(StoreError::Corrupt(format!("stored {what} {value:?} is unreadable")))
}

fn account_from(row: &SqliteRow, offset: usize) -> Result<AccountRow, DirectoryError> {
    let role: String = row.try_get(offset + 4)?;
    Ok(AccountRow {
        id: row.try_get(offset)?,
        username: row.try_get(offset + 1)?,
        phone: row.try_get(offset + 2)?,
        display_name: row.try_get(offset + 3)?,
        role: Role::from_code(&role).ok_or_else(|| corrupt("role", &role))?,
        unit: row.try_get(offset + 5)?,
        secret_hash: row.try_get(offset + 6)?,
        disabled: row.try_get(offset + 7)?,
        created_at: row.try_get(offset + 8)?,
    })
}

fn device_from(row: &SqliteRow) -> Result<DeviceRow, DirectoryError> {
    Ok(DeviceRow {
        id: row.try_get(0)?,
        account: row.try_get(1)?,
        actor: row.try_get(2)?,
        label: row.try_get(3)?,
        created_at: row.try_get(4)?,
        last_seen: row.try_get(5)?,
        revoked_at: row.try_get(6)?,
    })
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

fn day(s: &str) -> Result<time::Date, DirectoryError> {
    Day::parse(s).map(|d| d.0).ok_or_else(|| corrupt("date", s))
}

#[async_trait]
impl Directory for SqliteStore {
    async fn insert_account(&self, a: &AccountRow) -> Result<(), DirectoryError> {
        sqlx::query(&format!("INSERT INTO accounts ({ACCOUNT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"))
            .bind(&a.id)
            .bind(&a.username)
            .bind(&a.phone)
            .bind(&a.display_name)
            .bind(a.role.code())
            .bind(&a.unit)
            .bind(&a.secret_hash)
            .bind(a.disabled)
            .bind(a.created_at)
            .execute(self.pool())
            .await
            .map_err(
                |e| {
                    if is_unique_violation(&e) { DirectoryError::Duplicate(a.username.clone()) } else { e.into() }
                },
            )?;
        Ok(())
    }

    async fn account_by_login(&self, login: &str) -> Result<Option<AccountRow>, DirectoryError> {
        let row = sqlx::query(&format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE username = ?1 OR phone = ?1"))
            .bind(login)
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| account_from(&r, 0)).transpose()
    }

    async fn account(&self, id: &str) -> Result<Option<AccountRow>, DirectoryError> {
        let row = sqlx::query(&format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = ?"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| account_from(&r, 0)).transpose()
    }

    async fn accounts(&self) -> Result<Vec<AccountRow>, DirectoryError> {
        let rows = sqlx::query(&format!("SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY username"))
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(|r| account_from(r, 0)).collect()
    }

    async fn update_account(&self, id: &str, u: &AccountUpdate) -> Result<bool, DirectoryError> {
        // One statement, so two admins demoting each other at once cannot
        // both pass the check: the last enabled admin stays one.
        let done = sqlx::query(
            "UPDATE accounts SET disabled = COALESCE(?1, disabled), unit = COALESCE(?2, unit), \
             role = COALESCE(?3, role), display_name = COALESCE(?4, display_name), \
             secret_hash = COALESCE(?5, secret_hash) \
             WHERE id = ?6 AND NOT (role = ?7 AND disabled = 0 \
               AND (COALESCE(?1, disabled) <> 0 OR COALESCE(?3, role) <> ?7) \
               AND NOT EXISTS (SELECT 1 FROM accounts AS other \
                               WHERE other.id <> ?6 AND other.role = ?7 AND other.disabled = 0))",
        )
        .bind(u.disabled)
        .bind(&u.unit)
        .bind(u.role.map(Code::code))
        .bind(&u.display_name)
        .bind(&u.secret_hash)
        .bind(id)
        .bind(Role::Admin.code())
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 1 {
            return Ok(true);
        }
        // Not updated: no such account, or the guard above held.
        if self.account(id).await?.is_some() { Err(DirectoryError::LastAdmin) } else { Ok(false) }
    }

    async fn insert_device(&self, d: &DeviceRow, token_hash: &[u8]) -> Result<(), DirectoryError> {
        sqlx::query(
            "INSERT INTO devices (id, account, token_hash, actor, label, created_at, last_seen, revoked_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&d.id)
        .bind(&d.account)
        .bind(token_hash)
        .bind(&d.actor)
        .bind(&d.label)
        .bind(d.created_at)
        .bind(d.last_seen)
        .bind(d.revoked_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn device_by_token(&self, token_hash: &[u8]) -> Result<Option<(DeviceRow, AccountRow)>, DirectoryError> {
        let row = sqlx::query(
            "SELECT d.id, d.account, d.actor, d.label, d.created_at, d.last_seen, d.revoked_at, \
             a.id, a.username, a.phone, a.display_name, a.role, a.unit, a.secret_hash, a.disabled, a.created_at \
             FROM devices d JOIN accounts a ON a.id = d.account WHERE d.token_hash = ?",
        )
        .bind(token_hash)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| Ok((device_from(&r)?, account_from(&r, 7)?))).transpose()
    }

    async fn devices(&self, account: Option<&str>) -> Result<Vec<DeviceRow>, DirectoryError> {
        let rows = sqlx::query(&format!(
            "SELECT {DEVICE_COLUMNS} FROM devices WHERE ?1 IS NULL OR account = ?1 ORDER BY created_at, id"
        ))
        .bind(account)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(device_from).collect()
    }

    async fn revoke_device(&self, id: &str, at: i64) -> Result<bool, DirectoryError> {
        let done = sqlx::query("UPDATE devices SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
            .bind(at)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn org(&self) -> Result<(Vec<Unit>, Vec<Succession>), DirectoryError> {
        let units = sqlx::query("SELECT code, name, level, parent, valid_from, valid_to FROM units ORDER BY code")
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(|r| {
                let level: String = r.try_get(2)?;
                let valid_to: Option<String> = r.try_get(5)?;
                Ok(Unit {
                    code: r.try_get(0)?,
                    name: r.try_get(1)?,
                    level: Level::from_str(&level).map_err(|_| corrupt("level", &level))?,
                    parent: r.try_get(3)?,
                    valid_from: day(&r.try_get::<String, _>(4)?)?,
                    valid_to: valid_to.as_deref().map(day).transpose()?,
                })
            })
            .collect::<Result<Vec<_>, DirectoryError>>()?;
        let successions = sqlx::query("SELECT old, new, effective FROM successions ORDER BY old, new")
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(|r| {
                Ok(Succession { old: r.try_get(0)?, new: r.try_get(1)?, effective: day(&r.try_get::<String, _>(2)?)? })
            })
            .collect::<Result<Vec<_>, DirectoryError>>()?;
        Ok((units, successions))
    }

    async fn replace_org(&self, units: &[Unit], successions: &[Succession]) -> Result<(), DirectoryError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM successions").execute(&mut *tx).await?;
        sqlx::query("DELETE FROM units").execute(&mut *tx).await?;
        for u in units {
            sqlx::query(
                "INSERT INTO units (code, name, level, parent, valid_from, valid_to) VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(&u.code)
            .bind(&u.name)
            .bind(u.level.as_str())
            .bind(&u.parent)
            .bind(Day(u.valid_from).to_string())
            .bind(u.valid_to.map(|d| Day(d).to_string()))
            .execute(&mut *tx)
            .await?;
        }
        for s in successions {
            sqlx::query("INSERT INTO successions (old, new, effective) VALUES (?, ?, ?)")
                .bind(&s.old)
                .bind(&s.new)
                .bind(Day(s.effective).to_string())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn model_units(&self) -> Result<HashMap<ModelId, String>, DirectoryError> {
        sqlx::query("SELECT model, unit FROM model_units")
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(|r| {
                let model: String = r.try_get(0)?;
                let id = model.parse().map_err(|_| corrupt("model id", &model))?;
                Ok((id, r.try_get(1)?))
            })
            .collect()
    }

    async fn units_of(&self, models: &[ModelId]) -> Result<HashMap<ModelId, String>, DirectoryError> {
        let mut units = HashMap::with_capacity(models.len());
        let mut wanted: Vec<&ModelId> = models.iter().collect();
        wanted.sort();
        wanted.dedup();
        for part in wanted.chunks(500) {
            let sql =
                format!("SELECT model, unit FROM model_units WHERE model IN ({})", vec!["?"; part.len()].join(", "));
            let mut query = sqlx::query(&sql);
            for model in part {
                query = query.bind(model.to_string());
            }
            for r in query.fetch_all(self.pool()).await? {
                let model: String = r.try_get(0)?;
                units.insert(model.parse().map_err(|_| corrupt("model id", &model))?, r.try_get(1)?);
            }
        }
        Ok(units)
    }

    async fn quarantine(&self, e: &QuarantineEntry) -> Result<(), DirectoryError> {
        // It reads, then writes: take the write lock first (see `commit`).
        let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await?;
        let kept: i64 = sqlx::query_scalar("SELECT COALESCE(SUM(LENGTH(changes)), 0) FROM quarantine WHERE device = ?")
            .bind(&e.device)
            .fetch_one(&mut *tx)
            .await?;
        // Past its byte budget a device's refusals are still recorded, without
        // the changes: the phone keeps them, which is what keeps the data.
        let over = kept as usize + e.changes.len() > QUARANTINE_BYTES_PER_DEVICE;
        let (changes, message) = if over {
            (
                &[][..],
                format!("{} (changes not kept: this device's quarantine is full; the phone keeps them)", e.message),
            )
        } else {
            (&e.changes[..], e.message.clone())
        };
        sqlx::query(
            "INSERT INTO quarantine (at, device, account, doc_id, rule, message, changes) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(e.at)
        .bind(&e.device)
        .bind(&e.account)
        .bind(&e.doc_id)
        .bind(&e.rule)
        .bind(message)
        .bind(changes)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM quarantine WHERE device = ?1 AND id NOT IN \
             (SELECT id FROM quarantine WHERE device = ?1 ORDER BY id DESC LIMIT ?2)",
        )
        .bind(&e.device)
        .bind(QUARANTINE_ENTRIES_PER_DEVICE as i64)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn quarantined(&self) -> Result<Vec<QuarantineEntry>, DirectoryError> {
        sqlx::query("SELECT id, at, device, account, doc_id, rule, message, changes FROM quarantine ORDER BY id")
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(|r| {
                let changes: Vec<u8> = r.try_get(7)?;
                Ok(QuarantineEntry {
                    id: r.try_get(0)?,
                    at: r.try_get(1)?,
                    device: r.try_get(2)?,
                    account: r.try_get(3)?,
                    doc_id: r.try_get(4)?,
                    rule: r.try_get(5)?,
                    message: r.try_get(6)?,
                    bytes: changes.len(),
                    changes,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SqliteStore;

    fn entry(device: &str, bytes: usize) -> QuarantineEntry {
        QuarantineEntry {
            id: 0,
            at: 1,
            device: device.into(),
            account: "a".into(),
            doc_id: "model/x".into(),
            rule: "schema".into(),
            message: "refused".into(),
            changes: vec![7; bytes],
            bytes,
        }
    }

    #[tokio::test]
    async fn the_quarantine_is_capped_per_device_in_entries_and_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        let big = QUARANTINE_BYTES_PER_DEVICE / 4 + 1;
        for _ in 0..5 {
            store.quarantine(&entry("greedy", big)).await.unwrap();
        }
        for _ in 0..QUARANTINE_ENTRIES_PER_DEVICE + 30 {
            store.quarantine(&entry("looping", 10)).await.unwrap();
        }
        store.quarantine(&entry("honest", 10)).await.unwrap();
        let all = store.quarantined().await.unwrap();
        let of = |d: &str| all.iter().filter(|e| e.device == d).collect::<Vec<_>>();
        let greedy = of("greedy");
        assert_eq!(greedy.len(), 5, "every refusal is recorded");
        assert_eq!(greedy.iter().filter(|e| e.bytes > 0).count(), 3, "changes kept up to the budget");
        assert!(greedy.iter().map(|e| e.bytes).sum::<usize>() <= QUARANTINE_BYTES_PER_DEVICE);
        assert!(greedy.iter().filter(|e| e.bytes == 0).all(|e| e.message.contains("quarantine is full")));
        assert_eq!(of("looping").len(), QUARANTINE_ENTRIES_PER_DEVICE, "the newest entries");
        assert_eq!(of("honest").len(), 1, "another device is not affected");
    }
}

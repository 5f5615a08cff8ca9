//! [`Directory`] on the PostgreSQL store.

use std::collections::HashMap;

use async_trait::async_trait;
use kheo_shared::codes::{Code, Role};
use kheo_shared::ids::ModelId;
use kheo_shared::scalars::Day;

use super::PgStore;
use super::directory::{
    AccountRow, AccountUpdate, DeviceRow, Directory, DirectoryError, QUARANTINE_ENTRIES_PER_DEVICE, QuarantineEntry,
};
use super::rows::{
    ACCOUNT_COLUMNS, AccountColumns, DEVICE_COLUMNS, DEVICE_INSERT_COLUMNS, ModelUnitColumns, QUARANTINE_COLUMNS,
    QuarantineColumns, SuccessionColumns, UNIT_COLUMNS, UnitColumns, bind_account, bind_device, is_unique_violation,
    quarantine_kept,
};
use crate::org::{Succession, Unit};

#[async_trait]
impl Directory for PgStore {
    async fn insert_account(&self, a: &AccountRow) -> Result<(), DirectoryError> {
        bind_account(
            sqlx::query(&format!(
                "INSERT INTO accounts ({ACCOUNT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
            )),
            a,
        )
        .execute(self.pool())
        .await
        .map_err(|e| if is_unique_violation(&e) { DirectoryError::Duplicate(a.username.clone()) } else { e.into() })?;
        Ok(())
    }

    async fn account_by_login(&self, login: &str) -> Result<Option<AccountRow>, DirectoryError> {
        sqlx::query_as::<_, AccountColumns>(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE username = $1 OR phone = $1"
        ))
        .bind(login)
        .fetch_optional(self.pool())
        .await?
        .map(AccountRow::try_from)
        .transpose()
    }

    async fn account(&self, id: &str) -> Result<Option<AccountRow>, DirectoryError> {
        sqlx::query_as::<_, AccountColumns>(&format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .map(AccountRow::try_from)
            .transpose()
    }

    async fn accounts(&self) -> Result<Vec<AccountRow>, DirectoryError> {
        sqlx::query_as::<_, AccountColumns>(&format!("SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY username"))
            .fetch_all(self.pool())
            .await?
            .into_iter()
            .map(AccountRow::try_from)
            .collect()
    }

    async fn update_account(&self, id: &str, u: &AccountUpdate) -> Result<bool, DirectoryError> {
        // Under PostgreSQL's snapshots two admins demoting each other at once
        // would both see the other enabled: account updates take turns, so
        // the check in the statement holds and the last enabled admin stays one.
        let mut tx = self.pool().begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('kheo.accounts'))").execute(&mut *tx).await?;
        let done = sqlx::query(
            "UPDATE accounts SET disabled = COALESCE($1, disabled), unit = COALESCE($2, unit), \
             role = COALESCE($3, role), display_name = COALESCE($4, display_name), \
             secret_hash = COALESCE($5, secret_hash) \
             WHERE id = $6 AND NOT (role = $7 AND NOT disabled \
               AND (COALESCE($1, disabled) OR COALESCE($3, role) <> $7) \
               AND NOT EXISTS (SELECT 1 FROM accounts AS other \
                               WHERE other.id <> $6 AND other.role = $7 AND NOT other.disabled))",
        )
        .bind(u.disabled)
        .bind(&u.unit)
        .bind(u.role.map(Code::code))
        .bind(&u.display_name)
        .bind(&u.secret_hash)
        .bind(id)
        .bind(Role::Admin.code())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        if done.rows_affected() == 1 {
            return Ok(true);
        }
        // Not updated: no such account, or the guard above held.
        if self.account(id).await?.is_some() { Err(DirectoryError::LastAdmin) } else { Ok(false) }
    }

    async fn insert_device(&self, d: &DeviceRow, token_hash: &[u8]) -> Result<(), DirectoryError> {
        bind_device(
            sqlx::query(&format!(
                "INSERT INTO devices ({DEVICE_INSERT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
            )),
            d,
            token_hash,
        )
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn device_by_token(&self, token_hash: &[u8]) -> Result<Option<(DeviceRow, AccountRow)>, DirectoryError> {
        let Some(device) =
            sqlx::query_as::<_, DeviceRow>(&format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE token_hash = $1"))
                .bind(token_hash)
                .fetch_optional(self.pool())
                .await?
        else {
            return Ok(None);
        };
        Ok(self.account(&device.account).await?.map(|account| (device, account)))
    }

    async fn devices(&self, account: Option<&str>) -> Result<Vec<DeviceRow>, DirectoryError> {
        Ok(sqlx::query_as::<_, DeviceRow>(&format!(
            "SELECT {DEVICE_COLUMNS} FROM devices WHERE $1::text IS NULL OR account = $1 ORDER BY created_at, id"
        ))
        .bind(account)
        .fetch_all(self.pool())
        .await?)
    }

    async fn revoke_device(&self, id: &str, at: i64) -> Result<bool, DirectoryError> {
        let done = sqlx::query("UPDATE devices SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(at)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn org(&self) -> Result<(Vec<Unit>, Vec<Succession>), DirectoryError> {
        let units = sqlx::query_as::<_, UnitColumns>(&format!("SELECT {UNIT_COLUMNS} FROM units ORDER BY code"))
            .fetch_all(self.pool())
            .await?
            .into_iter()
            .map(Unit::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        let successions =
            sqlx::query_as::<_, SuccessionColumns>("SELECT old, new, effective FROM successions ORDER BY old, new")
                .fetch_all(self.pool())
                .await?
                .into_iter()
                .map(Succession::try_from)
                .collect::<Result<Vec<_>, _>>()?;
        Ok((units, successions))
    }

    async fn org_generation(&self) -> Result<i64, DirectoryError> {
        Ok(sqlx::query_scalar("SELECT version FROM generations WHERE name = 'org'").fetch_one(self.pool()).await?)
    }

    async fn replace_org(&self, units: &[Unit], successions: &[Succession]) -> Result<(), DirectoryError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM successions").execute(&mut *tx).await?;
        sqlx::query("DELETE FROM units").execute(&mut *tx).await?;
        for u in units {
            sqlx::query(&format!("INSERT INTO units ({UNIT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"))
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
            sqlx::query("INSERT INTO successions (old, new, effective) VALUES ($1, $2, $3)")
                .bind(&s.old)
                .bind(&s.new)
                .bind(Day(s.effective).to_string())
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("UPDATE generations SET version = version + 1 WHERE name = 'org'").execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn model_units(&self) -> Result<HashMap<ModelId, String>, DirectoryError> {
        sqlx::query_as::<_, ModelUnitColumns>("SELECT model, unit FROM model_units")
            .fetch_all(self.pool())
            .await?
            .into_iter()
            .map(TryFrom::try_from)
            .collect()
    }

    async fn units_of(&self, models: &[ModelId]) -> Result<HashMap<ModelId, String>, DirectoryError> {
        let wanted: Vec<String> = models.iter().map(ModelId::to_string).collect();
        sqlx::query_as::<_, ModelUnitColumns>("SELECT model, unit FROM model_units WHERE model = ANY($1)")
            .bind(&wanted)
            .fetch_all(self.pool())
            .await?
            .into_iter()
            .map(TryFrom::try_from)
            .collect()
    }

    async fn quarantine(&self, e: &QuarantineEntry) -> Result<(), DirectoryError> {
        // Two refusals of one device at once: one waits for the other's count.
        let mut tx = self.pool().begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))").bind(&e.device).execute(&mut *tx).await?;
        let kept: i64 = sqlx::query_scalar(
            "SELECT COALESCE(SUM(octet_length(changes)), 0)::BIGINT FROM quarantine WHERE device = $1",
        )
        .bind(&e.device)
        .fetch_one(&mut *tx)
        .await?;
        let (changes, message) = quarantine_kept(kept, e);
        sqlx::query(
            "INSERT INTO quarantine (at, device, account, doc_id, rule, message, changes) VALUES ($1, $2, $3, $4, $5, $6, $7)",
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
            "DELETE FROM quarantine WHERE device = $1 AND id NOT IN \
             (SELECT id FROM quarantine WHERE device = $1 ORDER BY id DESC LIMIT $2)",
        )
        .bind(&e.device)
        .bind(QUARANTINE_ENTRIES_PER_DEVICE as i64)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn quarantined(&self) -> Result<Vec<QuarantineEntry>, DirectoryError> {
        Ok(sqlx::query_as::<_, QuarantineColumns>(&format!("SELECT {QUARANTINE_COLUMNS} FROM quarantine ORDER BY id"))
            .fetch_all(self.pool())
            .await?
            .into_iter()
            .map(QuarantineEntry::from)
            .collect())
    }

    async fn quarantine_count(&self) -> Result<i64, DirectoryError> {
        Ok(sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM quarantine").fetch_one(self.pool()).await?)
    }
}

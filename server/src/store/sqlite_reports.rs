//! [`ReportStore`] on the embedded SQLite store: aggregates in SQL, one
//! pass over the period's rows.

use async_trait::async_trait;
use sqlx::Row;

use super::SqliteStore;
use super::directory::DirectoryError;
use super::reports::{IncidentCount, ModelActivity, ModelFacts, RecordFacts, ReportStore, ReviewItem};

#[async_trait]
impl ReportStore for SqliteStore {
    async fn models(&self) -> Result<Vec<ModelFacts>, DirectoryError> {
        let rows = sqlx::query(
            "SELECT model, name, field, unit, status, started_on, typical_year, replicated_from FROM rm_models",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ModelFacts {
                    model: r.try_get(0)?,
                    name: r.try_get(1)?,
                    field: r.try_get(2)?,
                    unit: r.try_get(3)?,
                    status: r.try_get(4)?,
                    started_on: r.try_get(5)?,
                    typical_year: r.try_get(6)?,
                    replicated_from: r.try_get(7)?,
                })
            })
            .collect()
    }

    async fn activity(&self, from: &str, to: &str, approved_only: bool) -> Result<Vec<ModelActivity>, DirectoryError> {
        let totals = sqlx::query(
            "SELECT model, SUM(kind = 'patrol'), SUM(incidents), SUM(handed_to_police), SUM(supported_police), \
             SUM(amount_vnd), SUM(workdays), SUM(houses), SUM(kind = 'production'), \
             SUM(revenue_vnd), SUM(kind = 'meeting'), SUM(attendees) \
             FROM rm_records INDEXED BY rm_records_rollup WHERE occurred_on BETWEEN ?1 AND ?2 AND deleted = 0 \
             AND (?3 = 0 OR review_state = 'approved') GROUP BY model",
        )
        .bind(from)
        .bind(to)
        .bind(approved_only)
        .fetch_all(self.pool());
        let households = sqlx::query(
            "SELECT model, COUNT(DISTINCT receiver) FROM rm_records INDEXED BY rm_records_receivers \
             WHERE kind = 'household_support' AND occurred_on BETWEEN ?1 AND ?2 AND deleted = 0 \
             AND (?3 = 0 OR review_state = 'approved') GROUP BY model",
        )
        .bind(from)
        .bind(to)
        .bind(approved_only)
        .fetch_all(self.pool());
        // Two scans of different indexes, on two connections at once.
        let (rows, households) = tokio::try_join!(totals, households)?;
        let households: std::collections::HashMap<String, i64> =
            households.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect::<Result<_, sqlx::Error>>()?;
        rows.iter()
            .map(|r| {
                let model: String = r.try_get(0)?;
                Ok(ModelActivity {
                    households_supported: households.get(&model).copied().unwrap_or(0),
                    model,
                    patrols: r.try_get(1)?,
                    incidents: r.try_get(2)?,
                    handed_to_police: r.try_get(3)?,
                    supported_police: r.try_get(4)?,
                    money_vnd: r.try_get(5)?,
                    workdays: r.try_get(6)?,
                    houses: r.try_get(7)?,
                    production_records: r.try_get(8)?,
                    revenue_vnd: r.try_get(9)?,
                    meetings: r.try_get(10)?,
                    attendees: r.try_get(11)?,
                })
            })
            .collect()
    }

    async fn incidents(&self, from: &str, to: &str, approved_only: bool) -> Result<Vec<IncidentCount>, DirectoryError> {
        let rows = sqlx::query(
            "SELECT model, category, outcome, COUNT(*) FROM rm_incidents INDEXED BY rm_incidents_rollup \
             WHERE occurred_on BETWEEN ?1 AND ?2 AND (?3 = 0 OR review_state = 'approved') \
             GROUP BY model, category, outcome",
        )
        .bind(from)
        .bind(to)
        .bind(approved_only)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(IncidentCount {
                    model: r.try_get(0)?,
                    category: r.try_get(1)?,
                    outcome: r.try_get(2)?,
                    count: r.try_get(3)?,
                })
            })
            .collect()
    }

    async fn targets(&self, year: i32) -> Result<Vec<(String, i64, i64)>, DirectoryError> {
        let rows = sqlx::query("SELECT unit, new_models, typical FROM targets WHERE year = ?")
            .bind(year)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?))).collect()
    }

    async fn set_target(&self, unit: &str, year: i32, new_models: i64, typical: i64) -> Result<(), DirectoryError> {
        sqlx::query("INSERT OR REPLACE INTO targets (unit, year, new_models, typical) VALUES (?, ?, ?, ?)")
            .bind(unit)
            .bind(year)
            .bind(new_models)
            .bind(typical)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    async fn scan_count(&self, from: &str, to: &str) -> Result<i64, DirectoryError> {
        let row = sqlx::query(
            "SELECT COUNT(*), SUM(amount_vnd) FROM rm_records INDEXED BY rm_records_rollup \
             WHERE occurred_on BETWEEN ? AND ? AND deleted = 0",
        )
        .bind(from)
        .bind(to)
        .fetch_one(self.pool())
        .await?;
        Ok(row.try_get(0)?)
    }

    async fn monthly(
        &self,
        from: &str,
        to: &str,
        approved_only: bool,
    ) -> Result<Vec<(String, String, i64)>, DirectoryError> {
        let rows = sqlx::query(
            "SELECT model, substr(occurred_on, 1, 7), COUNT(*) FROM rm_records INDEXED BY rm_records_rollup \
             WHERE occurred_on BETWEEN ?1 AND ?2 AND deleted = 0 AND (?3 = 0 OR review_state = 'approved') \
             GROUP BY model, substr(occurred_on, 1, 7)",
        )
        .bind(from)
        .bind(to)
        .bind(approved_only)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?))).collect()
    }

    async fn review_items(&self, from: &str, to: &str) -> Result<Vec<ReviewItem>, DirectoryError> {
        let rows = sqlx::query(
            "SELECT record, model, kind, occurred_on, author, review_state, reviewer, review_comment, updated_at, \
             reviewed_at, conflicts FROM rm_records WHERE occurred_on BETWEEN ? AND ? AND deleted = 0 \
             ORDER BY occurred_on DESC, record",
        )
        .bind(from)
        .bind(to)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let state: String = r.try_get(5)?;
                let updated_at: i64 = r.try_get(8)?;
                let reviewed_at: Option<i64> = r.try_get(9)?;
                // An approval older than the record's last edit no longer covers it.
                let edited = state == "approved" && reviewed_at.is_some_and(|at| updated_at > at);
                Ok(ReviewItem {
                    record: r.try_get(0)?,
                    model: r.try_get(1)?,
                    kind: r.try_get(2)?,
                    occurred_on: r.try_get(3)?,
                    author: r.try_get(4)?,
                    state: if edited { "edited_after_approval".into() } else { state },
                    reviewer: r.try_get(6)?,
                    comment: r.try_get(7)?,
                    updated_at,
                    conflicts: serde_json::from_str(&r.try_get::<String, _>(10)?).unwrap_or_default(),
                })
            })
            .collect()
    }

    async fn records(&self, from: &str, to: &str) -> Result<Vec<RecordFacts>, DirectoryError> {
        let rows = sqlx::query(
            "SELECT record, model, kind, occurred_on, review_state, author, deleted, incidents, amount_vnd, workdays, \
             revenue_vnd, attendees FROM rm_records WHERE occurred_on BETWEEN ? AND ? ORDER BY occurred_on, record",
        )
        .bind(from)
        .bind(to)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RecordFacts {
                    record: r.try_get(0)?,
                    model: r.try_get(1)?,
                    kind: r.try_get(2)?,
                    occurred_on: r.try_get(3)?,
                    review_state: r.try_get(4)?,
                    author: r.try_get(5)?,
                    deleted: r.try_get(6)?,
                    incidents: r.try_get(7)?,
                    amount_vnd: r.try_get(8)?,
                    workdays: r.try_get(9)?,
                    revenue_vnd: r.try_get(10)?,
                    attendees: r.try_get(11)?,
                })
            })
            .collect()
    }

    async fn read_model_size(&self) -> Result<i64, DirectoryError> {
        Ok(sqlx::query("SELECT COUNT(*) FROM rm_models").fetch_one(self.pool()).await?.try_get(0)?)
    }
}

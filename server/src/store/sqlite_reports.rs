//! [`ReportStore`] on the embedded SQLite store: aggregates in SQL, one
//! pass over the period's rows.

use async_trait::async_trait;

use super::SqliteStore;
use super::directory::DirectoryError;
use super::reports::{
    IncidentCount, MONTHLY_SUMS, ModelActivity, ModelFacts, RecordCount, RecordFacts, ReportStore, ReviewItem,
    households_sql, merge_activity, merge_incidents, split,
};
use super::rows::{RECORD_FACTS_COLUMNS, REVIEW_COLUMNS, RecordFactsColumns, ReviewColumns};

/// What a rollup sums over record rows, named as [`ModelActivity`]'s fields.
const RECORD_SUMS: &str = "SUM(kind = 'patrol') AS patrols, SUM(incidents) AS incidents, \
     SUM(handed_to_police) AS handed_to_police, SUM(supported_police) AS supported_police, \
     SUM(amount_vnd) AS money_vnd, SUM(workdays) AS workdays, SUM(houses) AS houses, \
     SUM(kind = 'production') AS production_records, SUM(revenue_vnd) AS revenue_vnd, \
     SUM(kind = 'meeting') AS meetings, SUM(attendees) AS attendees";

/// The models with live records (every one has a monthly row), driving the
/// edges' reads: the record indexes lead with the model, so a day range is
/// one seek per model instead of a pass over the whole index.
const LIVE_MODELS: &str = "(SELECT DISTINCT model FROM rm_monthly) m";

#[async_trait]
impl ReportStore for SqliteStore {
    async fn models(&self) -> Result<Vec<ModelFacts>, DirectoryError> {
        Ok(sqlx::query_as(
            "SELECT model, name, field, unit, status, started_on, typical_year, replicated_from FROM rm_models",
        )
        .fetch_all(self.pool())
        .await?)
    }

    async fn record_counts(&self, models: &[String]) -> Result<Vec<RecordCount>, DirectoryError> {
        let mut found = Vec::with_capacity(models.len());
        // SQLite takes at most 32,766 parameters; a page is far fewer models.
        for part in models.chunks(500) {
            let marks = vec!["?"; part.len()].join(", ");
            // Returned and not edited since: the rule of `rows::ReviewItem`'s state and the phone's `to_fix`.
            let sql = format!(
                "SELECT model, COUNT(*) AS records, \
                 SUM(CASE WHEN review_state = 'returned' AND NOT (reviewed_at IS NOT NULL AND updated_at > reviewed_at) \
                 THEN 1 ELSE 0 END) AS returned \
                 FROM rm_records WHERE deleted = 0 AND model IN ({marks}) GROUP BY model"
            );
            let mut query = sqlx::query_as::<_, RecordCount>(&sql);
            for model in part {
                query = query.bind(model);
            }
            found.extend(query.fetch_all(self.pool()).await?);
        }
        Ok(found)
    }

    async fn activity(&self, from: &str, to: &str, approved_only: bool) -> Result<Vec<ModelActivity>, DirectoryError> {
        let split = split(from, to);
        let Some((first, last)) = &split.months else {
            return self.activity_from_records(from, to, approved_only).await;
        };
        let monthly_sql = format!(
            "SELECT model, {MONTHLY_SUMS} FROM rm_monthly WHERE month BETWEEN ?1 AND ?2 \
             AND (?3 = 0 OR approved = 1) GROUP BY model"
        );
        let monthly = sqlx::query_as::<_, ModelActivity>(&monthly_sql)
            .bind(first)
            .bind(last)
            .bind(approved_only)
            .fetch_all(self.pool());
        let edges = async {
            let mut rows = Vec::new();
            for (a, b) in &split.edges {
                rows.extend(
                    sqlx::query_as::<_, ModelActivity>(&format!(
                        "SELECT r.model AS model, {RECORD_SUMS} FROM {LIVE_MODELS} \
                         CROSS JOIN rm_records r INDEXED BY rm_records_rollup ON r.model = m.model \
                         WHERE r.occurred_on BETWEEN ?1 AND ?2 AND r.deleted = 0 \
                         AND (?3 = 0 OR r.review_state = 'approved') GROUP BY r.model"
                    ))
                    .bind(a)
                    .bind(b)
                    .bind(approved_only)
                    .fetch_all(self.pool())
                    .await?,
                );
            }
            Ok::<_, sqlx::Error>(rows)
        };
        // Distinct receivers over the whole months and the edges together.
        let sql = households_sql(
            &split,
            "SELECT model, receiver FROM rm_monthly_receivers WHERE month BETWEEN ?1 AND ?2 AND (?3 = 0 OR approved = 1)",
            |a, b| {
                format!(
                    "SELECT r.model, r.receiver FROM {LIVE_MODELS} \
                     CROSS JOIN rm_records r INDEXED BY rm_records_receivers \
                     ON r.kind = 'household_support' AND r.model = m.model WHERE r.occurred_on BETWEEN ?{a} AND ?{b} \
                     AND r.deleted = 0 AND (?3 = 0 OR r.review_state = 'approved')"
                )
            },
        );
        let mut households = sqlx::query_as::<_, (String, i64)>(&sql).bind(first).bind(last).bind(approved_only);
        for (a, b) in &split.edges {
            households = households.bind(a).bind(b);
        }
        let (monthly, edges, households) = tokio::try_join!(monthly, edges, households.fetch_all(self.pool()))?;
        Ok(super::reports::with_households(merge_activity(monthly.into_iter().chain(edges)), households))
    }

    async fn activity_from_records(
        &self,
        from: &str,
        to: &str,
        approved_only: bool,
    ) -> Result<Vec<ModelActivity>, DirectoryError> {
        let totals_sql = format!(
            "SELECT model, {RECORD_SUMS} \
             FROM rm_records INDEXED BY rm_records_rollup WHERE occurred_on BETWEEN ?1 AND ?2 AND deleted = 0 \
             AND (?3 = 0 OR review_state = 'approved') GROUP BY model"
        );
        let totals = sqlx::query_as::<_, ModelActivity>(&totals_sql)
            .bind(from)
            .bind(to)
            .bind(approved_only)
            .fetch_all(self.pool());
        let households = sqlx::query_as::<_, (String, i64)>(
            "SELECT model, COUNT(DISTINCT receiver) FROM rm_records INDEXED BY rm_records_receivers \
             WHERE kind = 'household_support' AND occurred_on BETWEEN ?1 AND ?2 AND deleted = 0 \
             AND (?3 = 0 OR review_state = 'approved') GROUP BY model",
        )
        .bind(from)
        .bind(to)
        .bind(approved_only)
        .fetch_all(self.pool());
        // Two scans of different indexes, on two connections at once.
        let (totals, households) = tokio::try_join!(totals, households)?;
        Ok(super::reports::with_households(totals, households))
    }

    async fn incidents(&self, from: &str, to: &str, approved_only: bool) -> Result<Vec<IncidentCount>, DirectoryError> {
        let split = split(from, to);
        let Some((first, last)) = &split.months else {
            return self.incidents_from_records(from, to, approved_only).await;
        };
        let mut counts = sqlx::query_as::<_, IncidentCount>(
            "SELECT model, category, outcome, CAST(SUM(incidents) AS BIGINT) AS count FROM rm_monthly_incidents \
             WHERE month BETWEEN ?1 AND ?2 AND (?3 = 0 OR approved = 1) GROUP BY model, category, outcome",
        )
        .bind(first)
        .bind(last)
        .bind(approved_only)
        .fetch_all(self.pool())
        .await?;
        for (a, b) in &split.edges {
            counts.extend(
                sqlx::query_as::<_, IncidentCount>(&format!(
                    "SELECT i.model AS model, i.category AS category, i.outcome AS outcome, COUNT(*) AS count \
                     FROM {LIVE_MODELS} CROSS JOIN rm_incidents i INDEXED BY rm_incidents_rollup ON i.model = m.model \
                     WHERE i.occurred_on BETWEEN ?1 AND ?2 AND (?3 = 0 OR i.review_state = 'approved') \
                     GROUP BY i.model, i.category, i.outcome"
                ))
                .bind(a)
                .bind(b)
                .bind(approved_only)
                .fetch_all(self.pool())
                .await?,
            );
        }
        Ok(merge_incidents(counts))
    }

    async fn incidents_from_records(
        &self,
        from: &str,
        to: &str,
        approved_only: bool,
    ) -> Result<Vec<IncidentCount>, DirectoryError> {
        Ok(sqlx::query_as(
            "SELECT model, category, outcome, COUNT(*) AS count FROM rm_incidents INDEXED BY rm_incidents_rollup \
             WHERE occurred_on BETWEEN ?1 AND ?2 AND (?3 = 0 OR review_state = 'approved') \
             GROUP BY model, category, outcome",
        )
        .bind(from)
        .bind(to)
        .bind(approved_only)
        .fetch_all(self.pool())
        .await?)
    }

    async fn targets(&self, year: i32) -> Result<Vec<(String, i64, i64)>, DirectoryError> {
        Ok(sqlx::query_as("SELECT unit, new_models, typical FROM targets WHERE year = ?")
            .bind(year)
            .fetch_all(self.pool())
            .await?)
    }

    async fn set_target(&self, unit: &str, year: i32, new_models: i64, typical: i64) -> Result<(), DirectoryError> {
        sqlx::query(
            "INSERT INTO targets (unit, year, new_models, typical) VALUES (?, ?, ?, ?) \
             ON CONFLICT (unit, year) DO UPDATE SET new_models = excluded.new_models, typical = excluded.typical",
        )
        .bind(unit)
        .bind(year)
        .bind(new_models)
        .bind(typical)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn scan_count(&self, from: &str, to: &str) -> Result<i64, DirectoryError> {
        // The sum makes the baseline read a column, as rollups do.
        let (count, _sum): (i64, Option<i64>) = sqlx::query_as(
            "SELECT COUNT(*), SUM(amount_vnd) FROM rm_records INDEXED BY rm_records_rollup \
             WHERE occurred_on BETWEEN ? AND ? AND deleted = 0",
        )
        .bind(from)
        .bind(to)
        .fetch_one(self.pool())
        .await?;
        Ok(count)
    }

    async fn monthly(
        &self,
        from: &str,
        to: &str,
        approved_only: bool,
    ) -> Result<Vec<(String, String, i64)>, DirectoryError> {
        Ok(sqlx::query_as(
            "SELECT model, substr(occurred_on, 1, 7), COUNT(*) FROM rm_records INDEXED BY rm_records_rollup \
             WHERE occurred_on BETWEEN ?1 AND ?2 AND deleted = 0 AND (?3 = 0 OR review_state = 'approved') \
             GROUP BY model, substr(occurred_on, 1, 7)",
        )
        .bind(from)
        .bind(to)
        .bind(approved_only)
        .fetch_all(self.pool())
        .await?)
    }

    async fn review_items(&self, from: &str, to: &str) -> Result<Vec<ReviewItem>, DirectoryError> {
        let rows = sqlx::query_as::<_, ReviewColumns>(&format!(
            "SELECT {REVIEW_COLUMNS} FROM rm_records WHERE occurred_on BETWEEN ? AND ? AND deleted = 0 \
             ORDER BY occurred_on DESC, record"
        ))
        .bind(from)
        .bind(to)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(ReviewItem::from).collect())
    }

    async fn records(&self, from: &str, to: &str) -> Result<Vec<RecordFacts>, DirectoryError> {
        let rows = sqlx::query_as::<_, RecordFactsColumns>(&format!(
            "SELECT {RECORD_FACTS_COLUMNS} FROM rm_records WHERE occurred_on BETWEEN ? AND ? \
             ORDER BY occurred_on, record"
        ))
        .bind(from)
        .bind(to)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(RecordFacts::try_from).collect()
    }

    async fn read_model_size(&self) -> Result<i64, DirectoryError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM rm_models").fetch_one(self.pool()).await?)
    }
}

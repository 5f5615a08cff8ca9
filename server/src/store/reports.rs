//! What reports read from the read model, behind a trait like the other stores.

use async_trait::async_trait;

use kheo_shared::codes::RecordKind;

use super::directory::DirectoryError;

/// A model as reports see it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ModelFacts {
    pub model: String,
    pub name: String,
    pub field: String,
    pub unit: String,
    pub status: String,
    pub started_on: String,
    pub typical_year: Option<i32>,
    pub replicated_from: Option<String>,
}

/// A model's records, for the model list.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct RecordCount {
    pub model: String,
    pub records: i64,
    pub returned: i64,
}

/// One model's activity in a period.
#[derive(Debug, Clone, Default, PartialEq, sqlx::FromRow)]
pub struct ModelActivity {
    pub model: String,
    pub patrols: i64,
    pub incidents: i64,
    pub handed_to_police: i64,
    pub supported_police: i64,
    /// Counted by a query of its own.
    #[sqlx(default)]
    pub households_supported: i64,
    pub money_vnd: i64,
    pub workdays: f64,
    pub houses: i64,
    pub production_records: i64,
    pub revenue_vnd: i64,
    pub meetings: i64,
    pub attendees: i64,
}

/// Incidents of one model by category and outcome in a period.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct IncidentCount {
    pub model: String,
    pub category: String,
    pub outcome: String,
    pub count: i64,
}

/// One record as the raw export shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordFacts {
    pub record: String,
    pub model: String,
    pub occurred_on: String,
    pub review_state: String,
    pub author: String,
    pub deleted: bool,
    pub note: String,
    /// The hashes of its live photos, in the record's order.
    pub photos: Vec<String>,
    pub details: RecordDetails,
}

impl RecordFacts {
    pub fn kind(&self) -> RecordKind {
        match self.details {
            RecordDetails::Patrol { .. } => RecordKind::Patrol,
            RecordDetails::HouseholdSupport { .. } => RecordKind::HouseholdSupport,
            RecordDetails::Production { .. } => RecordKind::Production,
            RecordDetails::Meeting { .. } => RecordKind::Meeting,
        }
    }
}

/// A record's own fields, by kind. Text a row stored before it had them
/// reads empty and a missing number `None`, so the export leaves the cell
/// blank instead of inventing a zero.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordDetails {
    Patrol {
        /// `HH:MM`, 24 h.
        start: String,
        end: String,
        members_present: Option<i64>,
        area: String,
        /// In position order.
        incidents: Vec<IncidentFacts>,
        handed_to_police: i64,
        supported_police: i64,
    },
    HouseholdSupport {
        giver: String,
        /// As typed.
        receiver: String,
        /// Its code.
        support_type: String,
        amount_vnd: i64,
        workdays: f64,
        quantity: Option<f64>,
        unit: String,
        description: String,
    },
    Production {
        product: String,
        quantity: Option<f64>,
        unit: String,
        revenue_vnd: i64,
    },
    Meeting {
        topic: String,
        attendees: i64,
    },
}

/// One incident of a patrol, by its codes.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct IncidentFacts {
    pub category: String,
    pub outcome: String,
    pub description: String,
}

/// A record waiting for, or carrying, a commune decision.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct ReviewItem {
    pub record: String,
    pub model: String,
    pub kind: String,
    pub occurred_on: String,
    pub author: String,
    /// `new`, `approved`, `returned`, or `edited_after_approval`.
    pub state: String,
    pub reviewer: Option<String>,
    pub comment: String,
    pub updated_at: i64,
    /// Fields two phones changed concurrently: both values are shown.
    pub conflicts: Vec<kheo_shared::schema::conflicts::FieldConflict>,
}

/// The activity rows with each model's distinct households supported,
/// which a query of its own counts.
pub(super) fn with_households(mut totals: Vec<ModelActivity>, households: Vec<(String, i64)>) -> Vec<ModelActivity> {
    let households: std::collections::HashMap<String, i64> = households.into_iter().collect();
    for row in &mut totals {
        row.households_supported = households.get(&row.model).copied().unwrap_or(0);
    }
    totals
}

/// A period as the monthly pre-aggregates answer it: the whole months it
/// covers come from `rm_monthly*`, the days of a month it covers only in
/// part from the record rows, so every figure is exactly what the record
/// rows of the period add up to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// The first and last whole month, `YYYY-MM`; `None` when the period
    /// holds no whole month (or its days do not read as days).
    pub months: Option<(String, String)>,
    /// Day ranges, both ends included: at most one before the whole
    /// months and one after, or the whole period when `months` is `None`.
    pub edges: Vec<(String, String)>,
}

pub fn split(from: &str, to: &str) -> Split {
    use kheo_shared::scalars::Day;
    use time::Date;
    let month = |d: Date| format!("{:04}-{:02}", d.year(), u8::from(d.month()));
    let whole = || -> Option<(Date, Date, Date, Date)> {
        let (from, to) = (Day::parse(from)?.0, Day::parse(to)?.0);
        let first = if from.day() == 1 {
            from
        } else {
            from.replace_day(time::util::days_in_month(from.month(), from.year())).ok()?.next_day()?
        };
        let last =
            if to.next_day().is_none_or(|d| d.day() == 1) { to } else { to.replace_day(1).ok()?.previous_day()? };
        (first <= last).then_some((from, first, last, to))
    };
    let Some((from_day, first, last, to_day)) = whole() else {
        return Split { months: None, edges: vec![(from.to_owned(), to.to_owned())] };
    };
    let mut edges = Vec::new();
    if let Some(before) = first.previous_day().filter(|d| from_day <= *d) {
        edges.push((Day(from_day).to_string(), Day(before).to_string()));
    }
    if let Some(after) = last.next_day().filter(|d| *d <= to_day) {
        edges.push((Day(after).to_string(), Day(to_day).to_string()));
    }
    Split { months: Some((month(first), month(last))), edges }
}

/// The distinct households of a split period: `whole` reads (model,
/// receiver) of the whole months (parameters 1 and 2, approved only 3),
/// `edge(a, b)` those of the record rows from parameter `a` to `b`; the
/// edges' days are bound after the months, in order.
pub(super) fn households_sql(split: &Split, whole: &str, edge: impl Fn(usize, usize) -> String) -> String {
    let parts: Vec<String> =
        std::iter::once(whole.to_owned()).chain((0..split.edges.len()).map(|n| edge(4 + 2 * n, 5 + 2 * n))).collect();
    format!("SELECT model, COUNT(DISTINCT receiver) FROM ({}) p GROUP BY model", parts.join(" UNION ALL "))
}

/// What the pre-aggregates sum, named as [`ModelActivity`]'s fields (the
/// same text on both backends: `CAST` where PostgreSQL's sums widen).
pub(super) const MONTHLY_SUMS: &str = "CAST(SUM(patrols) AS BIGINT) AS patrols, \
     CAST(SUM(incidents) AS BIGINT) AS incidents, CAST(SUM(handed_to_police) AS BIGINT) AS handed_to_police, \
     CAST(SUM(supported_police) AS BIGINT) AS supported_police, CAST(SUM(money_vnd) AS BIGINT) AS money_vnd, \
     SUM(workdays) AS workdays, CAST(SUM(houses) AS BIGINT) AS houses, \
     CAST(SUM(production_records) AS BIGINT) AS production_records, \
     CAST(SUM(revenue_vnd) AS BIGINT) AS revenue_vnd, CAST(SUM(meetings) AS BIGINT) AS meetings, \
     CAST(SUM(attendees) AS BIGINT) AS attendees";

/// Activity rows of the same period read in parts (whole months, edges)
/// added up per model, in model order.
pub(super) fn merge_activity(parts: impl IntoIterator<Item = ModelActivity>) -> Vec<ModelActivity> {
    let mut merged: std::collections::BTreeMap<String, ModelActivity> = std::collections::BTreeMap::new();
    for a in parts {
        let m = merged
            .entry(a.model.clone())
            .or_insert_with(|| ModelActivity { model: a.model.clone(), ..Default::default() });
        m.patrols += a.patrols;
        m.incidents += a.incidents;
        m.handed_to_police += a.handed_to_police;
        m.supported_police += a.supported_police;
        m.money_vnd += a.money_vnd;
        m.workdays += a.workdays;
        m.houses += a.houses;
        m.production_records += a.production_records;
        m.revenue_vnd += a.revenue_vnd;
        m.meetings += a.meetings;
        m.attendees += a.attendees;
    }
    merged.into_values().collect()
}

/// Incident counts read in parts added up per (model, category, outcome), in that order.
pub(super) fn merge_incidents(parts: impl IntoIterator<Item = IncidentCount>) -> Vec<IncidentCount> {
    let mut merged: std::collections::BTreeMap<(String, String, String), i64> = std::collections::BTreeMap::new();
    for i in parts {
        *merged.entry((i.model, i.category, i.outcome)).or_default() += i.count;
    }
    merged
        .into_iter()
        .map(|((model, category, outcome), count)| IncidentCount { model, category, outcome, count })
        .collect()
}

/// Days are `YYYY-MM-DD`, both ends included.
#[async_trait]
pub trait ReportStore: Send + Sync + 'static {
    async fn models(&self) -> Result<Vec<ModelFacts>, DirectoryError>;
    /// Records (not deleted) of each of these models, and how many of them
    /// the commune returned and nobody edited since. Models without
    /// records are left out.
    async fn record_counts(&self, models: &[String]) -> Result<Vec<RecordCount>, DirectoryError>;
    /// Each model's activity in a period: whole months from the monthly
    /// pre-aggregates, the rest of the period from the record rows.
    async fn activity(&self, from: &str, to: &str, approved_only: bool) -> Result<Vec<ModelActivity>, DirectoryError>;
    /// The same figures summed over the record rows alone: what
    /// [`ReportStore::activity`] must equal (the tests' oracle, the
    /// benchmark's baseline).
    async fn activity_from_records(
        &self,
        from: &str,
        to: &str,
        approved_only: bool,
    ) -> Result<Vec<ModelActivity>, DirectoryError>;
    /// Incidents by category and outcome, as [`ReportStore::activity`] reads a period.
    async fn incidents(&self, from: &str, to: &str, approved_only: bool) -> Result<Vec<IncidentCount>, DirectoryError>;
    /// The same counted over the incident rows alone.
    async fn incidents_from_records(
        &self,
        from: &str,
        to: &str,
        approved_only: bool,
    ) -> Result<Vec<IncidentCount>, DirectoryError>;
    /// (unit, new models, typical) set for `year`.
    async fn targets(&self, year: i32) -> Result<Vec<(String, i64, i64)>, DirectoryError>;
    async fn set_target(&self, unit: &str, year: i32, new_models: i64, typical: i64) -> Result<(), DirectoryError>;
    async fn read_model_size(&self) -> Result<i64, DirectoryError>;
    /// Live records per model and month (`YYYY-MM`) in a period.
    async fn monthly(
        &self,
        from: &str,
        to: &str,
        approved_only: bool,
    ) -> Result<Vec<(String, String, i64)>, DirectoryError>;
    /// Live records of a period for review, newest first.
    async fn review_items(&self, from: &str, to: &str) -> Result<Vec<ReviewItem>, DirectoryError>;
    /// Every record of a period, tombstones included, oldest first.
    async fn records(&self, from: &str, to: &str) -> Result<Vec<RecordFacts>, DirectoryError>;
    /// Records in a period, counted with no grouping: the baseline reports are measured against.
    async fn scan_count(&self, from: &str, to: &str) -> Result<i64, DirectoryError>;
}

#[cfg(test)]
mod tests {
    use super::{Split, split};

    fn expect(months: Option<(&str, &str)>, edges: &[(&str, &str)]) -> Split {
        Split {
            months: months.map(|(a, b)| (a.to_owned(), b.to_owned())),
            edges: edges.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect(),
        }
    }

    #[test]
    fn a_period_splits_into_whole_months_and_the_days_at_either_end() {
        assert_eq!(split("2025-01-01", "2025-12-31"), expect(Some(("2025-01", "2025-12")), &[]));
        assert_eq!(split("2024-02-01", "2024-02-29"), expect(Some(("2024-02", "2024-02")), &[]), "a leap February");
        assert_eq!(split("2025-02-01", "2025-02-28"), expect(Some(("2025-02", "2025-02")), &[]), "a common February");
        assert_eq!(
            split("2025-03-15", "2025-06-10"),
            expect(Some(("2025-04", "2025-05")), &[("2025-03-15", "2025-03-31"), ("2025-06-01", "2025-06-10")])
        );
        assert_eq!(
            split("2025-12-02", "2026-01-31"),
            expect(Some(("2026-01", "2026-01")), &[("2025-12-02", "2025-12-31")])
        );
        assert_eq!(split("2025-04-01", "2025-04-29"), expect(None, &[("2025-04-01", "2025-04-29")]), "no whole month");
        assert_eq!(split("2025-04-09", "2025-04-09"), expect(None, &[("2025-04-09", "2025-04-09")]));
        assert_eq!(split("2025-03-31", "2025-04-01"), expect(None, &[("2025-03-31", "2025-04-01")]));
        assert_eq!(split("not a day", "2025-04-01"), expect(None, &[("not a day", "2025-04-01")]), "scanned as asked");
    }
}

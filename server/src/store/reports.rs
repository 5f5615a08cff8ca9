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

/// Days are `YYYY-MM-DD`, both ends included.
#[async_trait]
pub trait ReportStore: Send + Sync + 'static {
    async fn models(&self) -> Result<Vec<ModelFacts>, DirectoryError>;
    /// Records (not deleted) of each of these models, and how many of them
    /// the commune returned and nobody edited since. Models without
    /// records are left out.
    async fn record_counts(&self, models: &[String]) -> Result<Vec<RecordCount>, DirectoryError>;
    async fn activity(&self, from: &str, to: &str, approved_only: bool) -> Result<Vec<ModelActivity>, DirectoryError>;
    async fn incidents(&self, from: &str, to: &str, approved_only: bool) -> Result<Vec<IncidentCount>, DirectoryError>;
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

//! The figures of a consolidation report, as the server computes them and
//! the app shows them: one definition for both ends of the wire.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The figures of a group. Counts of models describe the models as they
/// stand; everything else counts what happened in the period.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct Totals {
    pub models: i64,
    pub models_by_status: BTreeMap<String, i64>,
    pub new_models: i64,
    pub typical_models: i64,
    pub replications: i64,
    pub patrols: i64,
    pub incidents: i64,
    pub incidents_by_category: BTreeMap<String, i64>,
    pub incidents_by_outcome: BTreeMap<String, i64>,
    pub handed_to_police: i64,
    pub supported_police: i64,
    pub households_supported: i64,
    pub money_vnd: i64,
    pub workdays: f64,
    pub houses: i64,
    pub production_records: i64,
    pub revenue_vnd: i64,
    pub meetings: i64,
    pub attendees: i64,
}

fn add_counts(into: &mut BTreeMap<String, i64>, from: &BTreeMap<String, i64>) {
    for (k, v) in from {
        *into.entry(k.clone()).or_default() += v;
    }
}

impl Totals {
    /// Adds another group's figures (a province total from its communes).
    pub fn add(&mut self, o: &Totals) {
        self.models += o.models;
        add_counts(&mut self.models_by_status, &o.models_by_status);
        self.new_models += o.new_models;
        self.typical_models += o.typical_models;
        self.replications += o.replications;
        self.patrols += o.patrols;
        self.incidents += o.incidents;
        add_counts(&mut self.incidents_by_category, &o.incidents_by_category);
        add_counts(&mut self.incidents_by_outcome, &o.incidents_by_outcome);
        self.handed_to_police += o.handed_to_police;
        self.supported_police += o.supported_police;
        self.households_supported += o.households_supported;
        self.money_vnd += o.money_vnd;
        self.workdays += o.workdays;
        self.houses += o.houses;
        self.production_records += o.production_records;
        self.revenue_vnd += o.revenue_vnd;
        self.meetings += o.meetings;
        self.attendees += o.attendees;
    }
}

/// One group of a rollup: its key (a unit code, field code or model id),
/// the name people see, and its figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RollupRow {
    pub key: String,
    pub label: String,
    pub totals: Totals,
}

/// A model replicated from a typical one, directly or through another
/// replication, with where and when it started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Replication {
    pub model: String,
    pub name: String,
    pub unit: String,
    pub unit_name: String,
    pub started_on: String,
    /// 1 for a direct replication, 2 for a replication of a replication, ...
    pub depth: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_add_up_field_by_field_and_read_back_with_missing_fields() {
        let mut a = Totals { patrols: 2, money_vnd: 100, workdays: 1.5, ..Totals::default() };
        a.incidents_by_category.insert("theft".into(), 1);
        let mut b = Totals { patrols: 3, workdays: 1.0, ..Totals::default() };
        b.incidents_by_category.insert("theft".into(), 2);
        a.add(&b);
        assert_eq!((a.patrols, a.money_vnd, a.workdays), (5, 100, 2.5));
        assert_eq!(a.incidents_by_category["theft"], 3);
        let read: Totals = serde_json::from_str(r#"{"patrols": 7}"#).unwrap();
        assert_eq!(read, Totals { patrols: 7, ..Totals::default() });
    }
}

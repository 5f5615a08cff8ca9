//! Who may read and write which document: the account's scope in the
//! organisation tree, the device's bound actor, and the write rules of
//! [`crate::auth::rules`] applied to what a merge changed.
//!
//! A document belongs to its model's unit: a model document names it, an
//! activity log inherits it from its model. Province staff and admins see
//! every unit; everyone else sees their unit and the units below it,
//! following the successions of the 2025 reform.

use std::collections::BTreeSet;

use automerge::{AutoCommit, ChangeHash};
use kheo_shared::codes::Role;
use kheo_shared::ids::DocId;
use kheo_shared::schema;

use crate::auth::Principal;
use crate::auth::rules::{self, Violation};
use crate::org::OrgTree;
use crate::sync::before::Before;

pub struct Scope<'a> {
    pub who: &'a Principal,
    pub org: &'a OrgTree,
}

impl Scope<'_> {
    pub fn covers(&self, unit: &str) -> bool {
        self.who.is_at_least(Role::ProvinceStaff) || self.org.is_within(unit, &self.who.unit)
    }

    /// Reading (or syncing without changes) a document of a model in `unit`.
    pub fn check_read(&self, unit: Option<&str>) -> Result<(), Violation> {
        match unit {
            Some(unit) if !self.covers(unit) => Err(rules::out_of_scope(unit, &self.who.unit)),
            _ => Ok(()),
        }
    }
}

/// What a merge changed, for the write checks.
pub struct Change<'a> {
    pub id: &'a DocId,
    /// The document with the merge in it; read at `before`, what it was.
    pub merged: &'a mut AutoCommit,
    pub before: &'a [ChangeHash],
    /// Root keys of a log the merge touched.
    pub touched: &'a BTreeSet<String>,
    /// The changes the merge added.
    pub added: &'a [automerge::Change],
    /// The unit of the log's model (unused for a model document).
    pub model_unit: Option<&'a str>,
    /// Changes that waited for a dependency, each checked against its own
    /// sender's actor when it arrived: the only changes under another actor
    /// that this merge may apply.
    pub waiting: &'a BTreeSet<ChangeHash>,
}

fn schema_broken(e: schema::SchemaError) -> Violation {
    Violation { rule: "schema", message: e.to_string() }
}

/// Checks a merge; returns the model's unit after it, for a model document.
pub fn check_write(scope: &Scope<'_>, c: Change<'_>) -> Result<Option<String>, Violation> {
    for change in c.added {
        if *change.actor_id() != scope.who.actor && !c.waiting.contains(&change.hash()) {
            return Err(Violation {
                rule: "foreign_actor",
                message: format!(
                    "change {} is written under actor {}, not this device's",
                    change.hash(),
                    change.actor_id()
                ),
            });
        }
    }
    let role = scope.who.role;
    let merged: &AutoCommit = c.merged;
    let old = Before { doc: merged, heads: c.before };
    match c.id {
        DocId::Model(model) => {
            let after = schema::read_model(merged, *model).map_err(schema_broken)?;
            if scope.org.get(&after.unit).is_none() {
                return Err(Violation {
                    rule: "unknown_unit",
                    message: format!("unit {} is not in the organisation tree", after.unit),
                });
            }
            let before =
                if c.before.is_empty() { None } else { Some(schema::read_model(&old, *model).map_err(schema_broken)?) };
            for unit in before.iter().map(|b| b.unit.as_str()).chain([after.unit.as_str()]) {
                if !scope.covers(unit) {
                    return Err(rules::out_of_scope(unit, &scope.who.unit));
                }
            }
            rules::check_model(role, before.as_ref(), &after)?;
            Ok(Some(after.unit))
        }
        DocId::Log { .. } => {
            let unit = c.model_unit.ok_or_else(|| Violation {
                rule: "unknown_model",
                message: format!("{} is the log of a model this server does not know; sync the model first", c.id),
            })?;
            if !scope.covers(unit) {
                return Err(rules::out_of_scope(unit, &scope.who.unit));
            }
            let before = schema::read_existing_records(&old, c.id, c.touched.iter().cloned()).map_err(schema_broken)?;
            let after =
                schema::read_existing_records(merged, c.id, c.touched.iter().cloned()).map_err(schema_broken)?;
            for record in after.values() {
                rules::check_record(role, before.get(&record.id), record)?;
            }
            Ok(None)
        }
    }
}

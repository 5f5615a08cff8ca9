//! The write rules, checked on the merged result of every sync before it is
//! committed. Pure functions of who writes, what was there and what would be.
//!
//! | rule | who may |
//! |---|---|
//! | `out_of_scope` | anyone, only in models of their unit and below |
//! | `model_needs_staff` | commune staff and above create and edit models |
//! | `status_needs_province` | province staff and above set `typical` and `replicating` |
//! | `review_needs_staff` | commune staff and above set review fields |
//! | `unknown_model` | a log is accepted only for a model the server knows |
//! | `unknown_unit` | a model belongs to a unit of the organisation tree |
//! | `foreign_actor` | a change must be written under the device's own actor |

use kheo_shared::codes::{ModelStatus, Role};
use kheo_shared::model::ModelProfile;
use kheo_shared::record::{Record, Review};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (rule {rule})")]
pub struct Violation {
    pub rule: &'static str,
    pub message: String,
}

fn violation(rule: &'static str, message: impl Into<String>) -> Violation {
    Violation { rule, message: message.into() }
}

pub fn out_of_scope(unit: &str, scope: &str) -> Violation {
    violation("out_of_scope", format!("unit {unit} is outside this account's unit {scope}"))
}

/// A change to a model document by `role`, whose scope check the caller did
/// for both the old and the new unit.
pub fn check_model(role: Role, before: Option<&ModelProfile>, after: &ModelProfile) -> Result<(), Violation> {
    if role < Role::CommuneStaff {
        return Err(violation("model_needs_staff", "only commune staff and above create or edit models"));
    }
    if role < Role::ProvinceStaff {
        let province_only = |p: &ModelProfile| {
            (
                matches!(p.status, ModelStatus::Typical | ModelStatus::Replicating),
                p.status_years.typical,
                p.status_years.replicating,
            )
        };
        let was = before.map(province_only).unwrap_or((false, None, None));
        let now = province_only(after);
        let status_moved = before.is_none_or(|b| b.status != after.status);
        if (now.0 && status_moved) || now.1 != was.1 || now.2 != was.2 {
            return Err(violation(
                "status_needs_province",
                "only province staff set a model's typical or replicating status",
            ));
        }
    }
    Ok(())
}

/// A change to an activity record by `role`, in a model the caller checked is in scope.
pub fn check_record(role: Role, before: Option<&Record>, after: &Record) -> Result<(), Violation> {
    if role < Role::CommuneStaff {
        let untouched = match before {
            Some(b) => b.review == after.review,
            None => after.review == Review::new_unreviewed(),
        };
        if !untouched {
            return Err(violation(
                "review_needs_staff",
                format!("record {}: only commune staff review records", after.id),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kheo_shared::codes::ReviewState;
    use kheo_shared::ids::{ModelId, RecordId};
    use kheo_shared::scalars::Timestamp;
    use kheo_shared::testdata;

    #[test]
    fn models_need_staff_and_typical_needs_province() {
        let mut m = testdata::model(ModelId::new_random(), "QNA.TK.TT");
        m.status = ModelStatus::Recognised;
        m.status_years.typical = None;
        assert_eq!(check_model(Role::Volunteer, None, &m).unwrap_err().rule, "model_needs_staff");
        assert!(check_model(Role::CommuneStaff, None, &m).is_ok());
        let mut typical = m.clone();
        typical.status = ModelStatus::Typical;
        typical.status_years.typical = Some(2025);
        assert_eq!(check_model(Role::CommuneStaff, Some(&m), &typical).unwrap_err().rule, "status_needs_province");
        assert!(check_model(Role::ProvinceStaff, Some(&m), &typical).is_ok());
        // Commune staff may still edit other fields of a typical model.
        let mut renamed = typical.clone();
        renamed.members += 1;
        assert!(check_model(Role::CommuneStaff, Some(&typical), &renamed).is_ok());
    }

    #[test]
    fn reviews_need_staff() {
        let r = testdata::meeting(RecordId::new_random(), "2025-01-01", 3);
        assert!(check_record(Role::Volunteer, None, &r).is_ok());
        let mut approved = r.clone();
        approved.review = Review {
            state: ReviewState::Approved,
            reviewer: Some("staff".into()),
            reviewed_at: Some(Timestamp(1)),
            comment: String::new(),
        };
        assert_eq!(check_record(Role::Volunteer, Some(&r), &approved).unwrap_err().rule, "review_needs_staff");
        assert_eq!(check_record(Role::Volunteer, None, &approved).unwrap_err().rule, "review_needs_staff");
        assert!(check_record(Role::CommuneStaff, Some(&r), &approved).is_ok());
        let mut edited = approved.clone();
        edited.note = "sửa".into();
        assert!(check_record(Role::Volunteer, Some(&approved), &edited).is_ok(), "editing keeps the review");
    }
}

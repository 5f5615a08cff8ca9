//! Model management for commune staff and above: what the profile form
//! edits, how an edit is applied on top of the profile as it is at save
//! time (so a change that synced in while the form was open survives), the
//! server's write rules checked before saving, and the choices the form
//! offers (units of the account's scope, models to replicate from). No
//! browser API here, so it is tested natively beside the code.

use kheo_shared::client::Replica;
use kheo_shared::codes::{Field, ModelStatus, Role};
use kheo_shared::ids::{DocId, ModelId};
use kheo_shared::model::{ModelProfile, StatusYears};
use kheo_shared::scalars::{Day, Timestamp};
use kheo_shared::schema::{self, SchemaError, WriteError};

use crate::org::Unit;

/// The lifecycle steps in the order a model goes through them.
pub const STEPS: [ModelStatus; 5] = [
    ModelStatus::Building,
    ModelStatus::Recognised,
    ModelStatus::Typical,
    ModelStatus::Replicating,
    ModelStatus::Stopped,
];

/// What the profile form edits: everything but the id and the timestamps.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileFields {
    pub name: String,
    pub field: Field,
    pub unit: String,
    pub lead_organisation: String,
    pub started_on: Day,
    pub status: ModelStatus,
    pub status_years: StatusYears,
    pub replicated_from: Option<ModelId>,
    pub members: u32,
    pub households: u32,
    pub description: String,
}

impl ProfileFields {
    pub fn of(p: &ModelProfile) -> Self {
        ProfileFields {
            name: p.name.clone(),
            field: p.field,
            unit: p.unit.clone(),
            lead_organisation: p.lead_organisation.clone(),
            started_on: p.started_on,
            status: p.status,
            status_years: p.status_years.clone(),
            replicated_from: p.replicated_from,
            members: p.members,
            households: p.households,
            description: p.description.clone(),
        }
    }
}

/// Steps only province staff may set (`status_needs_province` on the server).
pub fn province_only(step: ModelStatus) -> bool {
    matches!(step, ModelStatus::Typical | ModelStatus::Replicating)
}

/// Whether `role` may choose `step` as the status of a model whose saved
/// status is `saved` (commune staff may keep a typical model typical).
pub fn may_choose_status(role: Role, step: ModelStatus, saved: Option<ModelStatus>) -> bool {
    !province_only(step) || role >= Role::ProvinceStaff || saved == Some(step)
}

/// Whether `role` may change the year of `step`.
pub fn may_set_year(role: Role, step: ModelStatus) -> bool {
    !province_only(step) || role >= Role::ProvinceStaff
}

/// The profile to save: the form's edit applied on top of `current`, the
/// profile as the phone holds it now. A field the form left as it found it
/// (`base`) keeps its current value, so a change that arrived by sync while
/// the form was open is not overwritten. With no `current`, a new model.
pub fn apply(
    id: ModelId,
    base: Option<&ProfileFields>,
    edited: &ProfileFields,
    current: Option<&ModelProfile>,
    now: Timestamp,
) -> ModelProfile {
    let (Some(base), Some(current)) = (base, current) else {
        return ModelProfile {
            id,
            name: edited.name.clone(),
            field: edited.field,
            unit: edited.unit.clone(),
            lead_organisation: edited.lead_organisation.clone(),
            started_on: edited.started_on,
            status: edited.status,
            status_years: edited.status_years.clone(),
            replicated_from: edited.replicated_from,
            members: edited.members,
            households: edited.households,
            description: edited.description.clone(),
            created_at: current.map_or(now, |c| c.created_at),
            updated_at: current.map_or(now, |c| c.updated_at.max(now)),
        };
    };
    fn pick<T: PartialEq + Clone>(base: &T, edited: &T, current: &T) -> T {
        if edited != base { edited.clone() } else { current.clone() }
    }
    let mut status_years = current.status_years.clone();
    for step in STEPS {
        let (b, e) = (base.status_years.get(step), edited.status_years.get(step));
        if b != e {
            status_years.set(step, e);
        }
    }
    ModelProfile {
        id,
        name: pick(&base.name, &edited.name, &current.name),
        field: pick(&base.field, &edited.field, &current.field),
        unit: pick(&base.unit, &edited.unit, &current.unit),
        lead_organisation: pick(&base.lead_organisation, &edited.lead_organisation, &current.lead_organisation),
        started_on: pick(&base.started_on, &edited.started_on, &current.started_on),
        status: pick(&base.status, &edited.status, &current.status),
        status_years,
        replicated_from: pick(&base.replicated_from, &edited.replicated_from, &current.replicated_from),
        members: pick(&base.members, &edited.members, &current.members),
        households: pick(&base.households, &edited.households, &current.households),
        description: pick(&base.description, &edited.description, &current.description),
        created_at: current.created_at,
        // Never earlier than what is there: a phone clock behind another's must not break the order.
        updated_at: current.updated_at.max(now),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ModelSaveError {
    /// The profile breaks a rule of the schema (the server would refuse it).
    #[error("{0}")]
    Invalid(#[from] SchemaError),
    #[error("{0}")]
    Write(#[from] WriteError),
    /// `model_needs_staff`.
    #[error("only commune staff and above create or edit models")]
    NeedsStaff,
    /// `status_needs_province`.
    #[error("only province staff set a model's typical or replicating status")]
    NeedsProvince,
}

/// The server's write rule for model documents (`check_model` in
/// `server/src/auth/rules.rs`), checked before saving so that staff learn
/// at once rather than from a refusal after sync.
pub fn check_rights(role: Role, before: Option<&ModelProfile>, after: &ModelProfile) -> Result<(), ModelSaveError> {
    if role < Role::CommuneStaff {
        return Err(ModelSaveError::NeedsStaff);
    }
    if role < Role::ProvinceStaff {
        let province = |p: &ModelProfile| (province_only(p.status), p.status_years.typical, p.status_years.replicating);
        let was = before.map(province).unwrap_or((false, None, None));
        let now = province(after);
        let status_moved = before.is_none_or(|b| b.status != after.status);
        if (now.0 && status_moved) || now.1 != was.1 || now.2 != was.2 {
            return Err(ModelSaveError::NeedsProvince);
        }
    }
    Ok(())
}

/// Checks the rights of `role` and writes the profile into its document as
/// one change, after reading it back as the server will; on any failure
/// the document is left as it was. Returns the document written.
pub fn save(
    replica: &mut Replica,
    role: Role,
    profile: &ModelProfile,
    now: Timestamp,
) -> Result<DocId, ModelSaveError> {
    let id = DocId::Model(profile.id);
    let before = replica.doc(&id).and_then(|d| schema::read_model(d, profile.id).ok());
    check_rights(role, before.as_ref(), profile)?;
    replica.edit(id, now, |doc| {
        schema::put_model(doc, profile)?;
        schema::read_model(&*doc, profile.id)?;
        Ok::<_, ModelSaveError>(())
    })?;
    Ok(id)
}

/// A unit the form offers, indented by its depth under the scope.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitChoice {
    pub code: String,
    pub name: String,
    pub depth: usize,
    /// Last day of a unit ended by a reform (`YYYY-MM-DD`).
    pub ended: Option<String>,
}

/// The units a model may belong to: `scope` and every unit under it, as a
/// tree (parents before children; units still in existence before ended
/// ones, then by name). Ended units stay on offer, because an account of an
/// old unit keeps that unit as its scope and its models there.
pub fn unit_choices(units: &[Unit], scope: &str) -> Vec<UnitChoice> {
    let mut out = Vec::new();
    let Some(root) = units.iter().find(|u| u.code == scope) else { return out };
    let mut stack = vec![(root, 0usize)];
    // The depth bound guards against a cycle in a damaged tree.
    while let Some((unit, depth)) = stack.pop() {
        out.push(UnitChoice { code: unit.code.clone(), name: unit.name.clone(), depth, ended: unit.valid_to.clone() });
        if depth >= 8 {
            continue;
        }
        let mut children: Vec<&Unit> = units.iter().filter(|u| u.parent.as_deref() == Some(&unit.code)).collect();
        children.sort_by(|a, b| (a.valid_to.is_some(), &a.name).cmp(&(b.valid_to.is_some(), &b.name)));
        stack.extend(children.into_iter().rev().map(|c| (c, depth + 1)));
    }
    out
}

/// The models a model may replicate: every other model on the phone, the
/// typical ones (and those already replicating) first, then by name.
pub fn replication_sources(models: &[ModelProfile], this: ModelId) -> Vec<&ModelProfile> {
    let mut out: Vec<&ModelProfile> = models.iter().filter(|m| m.id != this).collect();
    out.sort_by(|a, b| (!province_only(a.status), &a.name).cmp(&(!province_only(b.status), &b.name)));
    out
}

/// A typed year that is not a year from 2000 to 2100.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadYear;

/// Reads a year typed in the form: empty is "not reached".
pub fn parse_year(text: &str) -> Result<Option<i32>, BadYear> {
    let t = text.trim();
    if t.is_empty() {
        return Ok(None);
    }
    match t.parse::<i32>() {
        Ok(y) if (2000..=2100).contains(&y) => Ok(Some(y)),
        _ => Err(BadYear),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kheo_shared::testdata;

    fn recognised(unit: &str) -> ModelProfile {
        let mut m = testdata::model(ModelId::new_random(), unit);
        m.status = ModelStatus::Recognised;
        m.status_years.typical = None;
        m
    }

    #[test]
    fn an_edit_keeps_fields_changed_elsewhere_while_the_form_was_open() {
        let opened = recognised("QNA.TK.TT");
        let base = ProfileFields::of(&opened);
        let mut edited = base.clone();
        edited.members = 25;
        edited.status_years.stopped = Some(2026);
        edited.status = ModelStatus::Stopped;
        // Meanwhile another phone renamed it and set the households.
        let mut current = opened.clone();
        current.name = "Tên mới".into();
        current.households = 12;
        current.updated_at = Timestamp(opened.updated_at.0 + 5);
        let saved = apply(opened.id, Some(&base), &edited, Some(&current), Timestamp(opened.updated_at.0 + 10));
        assert_eq!(saved.name, "Tên mới");
        assert_eq!(saved.households, 12);
        assert_eq!(saved.members, 25);
        assert_eq!(saved.status, ModelStatus::Stopped);
        assert_eq!(saved.status_years.stopped, Some(2026));
        assert_eq!(saved.status_years.recognised, opened.status_years.recognised);
        assert_eq!(saved.created_at, opened.created_at);
        assert_eq!(saved.updated_at.0, opened.updated_at.0 + 10);
    }

    #[test]
    fn a_new_model_takes_the_form_whole() {
        let template = recognised("QNA.TK.TT.KD");
        let id = ModelId::new_random();
        let saved = apply(id, None, &ProfileFields::of(&template), None, Timestamp(42));
        assert_eq!(saved.id, id);
        assert_eq!((saved.created_at, saved.updated_at), (Timestamp(42), Timestamp(42)));
        assert_eq!(saved.unit, "QNA.TK.TT.KD");
    }

    #[test]
    fn rights_follow_the_server_rules() {
        let m = recognised("QNA.TK.TT");
        assert!(matches!(check_rights(Role::Volunteer, None, &m), Err(ModelSaveError::NeedsStaff)));
        assert!(check_rights(Role::CommuneStaff, None, &m).is_ok());
        let mut typical = m.clone();
        typical.status = ModelStatus::Typical;
        typical.status_years.typical = Some(2025);
        assert!(matches!(check_rights(Role::CommuneStaff, Some(&m), &typical), Err(ModelSaveError::NeedsProvince)));
        assert!(matches!(check_rights(Role::CommuneStaff, None, &typical), Err(ModelSaveError::NeedsProvince)));
        assert!(check_rights(Role::ProvinceStaff, Some(&m), &typical).is_ok());
        // Commune staff may edit a typical model's other fields and may stop it.
        let mut renamed = typical.clone();
        renamed.members += 1;
        assert!(check_rights(Role::CommuneStaff, Some(&typical), &renamed).is_ok());
        let mut stopped = typical.clone();
        stopped.status = ModelStatus::Stopped;
        stopped.status_years.stopped = Some(2026);
        assert!(check_rights(Role::CommuneStaff, Some(&typical), &stopped).is_ok());
        assert!(may_choose_status(Role::CommuneStaff, ModelStatus::Typical, Some(ModelStatus::Typical)));
        assert!(!may_choose_status(Role::CommuneStaff, ModelStatus::Replicating, Some(ModelStatus::Typical)));
        assert!(may_choose_status(Role::ProvinceStaff, ModelStatus::Replicating, None));
        assert!(!may_set_year(Role::CommuneStaff, ModelStatus::Typical));
        assert!(may_set_year(Role::CommuneStaff, ModelStatus::Stopped));
    }

    #[test]
    fn saving_checks_the_schema_and_rights_and_leaves_the_document_alone_on_failure() {
        let mut phone = Replica::new(automerge::ActorId::random());
        let m = recognised("QNA.TK.TT");
        let doc = save(&mut phone, Role::CommuneStaff, &m, Timestamp(1)).unwrap();
        let heads = phone.heads(&doc);
        // The current status needs its year.
        let mut bad = m.clone();
        bad.status = ModelStatus::Stopped;
        assert!(matches!(save(&mut phone, Role::CommuneStaff, &bad, Timestamp(2)), Err(ModelSaveError::Invalid(_))));
        let mut typical = m.clone();
        typical.status = ModelStatus::Typical;
        typical.status_years.typical = Some(2024);
        assert!(matches!(
            save(&mut phone, Role::CommuneStaff, &typical, Timestamp(2)),
            Err(ModelSaveError::NeedsProvince)
        ));
        assert_eq!(phone.heads(&doc), heads);
        assert!(save(&mut phone, Role::ProvinceStaff, &typical, Timestamp(3)).is_ok());
        assert_eq!(crate::catalog::model(&phone, m.id).map(|p| p.status), Some(ModelStatus::Typical));
    }

    fn unit(code: &str, name: &str, parent: Option<&str>, valid_to: Option<&str>) -> Unit {
        Unit {
            code: code.into(),
            name: name.into(),
            level: "village".into(),
            parent: parent.map(str::to_owned),
            valid_to: valid_to.map(str::to_owned),
        }
    }

    #[test]
    fn units_are_offered_as_a_tree_under_the_scope() {
        let units = vec![
            unit("P", "Tỉnh", None, None),
            unit("P.C", "Xã Tam Thăng", Some("P"), Some("2025-06-30")),
            unit("P.C.B", "Thôn B", Some("P.C"), Some("2025-06-30")),
            unit("P.C.A", "Thôn A", Some("P.C"), Some("2025-06-30")),
            unit("P.N", "Xã mới", Some("P"), None),
            unit("P.N.A", "Thôn A", Some("P.N"), None),
        ];
        let codes = |scope| unit_choices(&units, scope).into_iter().map(|u| (u.code, u.depth)).collect::<Vec<_>>();
        assert_eq!(codes("P.C"), vec![("P.C".into(), 0), ("P.C.A".into(), 1), ("P.C.B".into(), 1)]);
        let all = codes("P");
        assert_eq!(all.first(), Some(&("P".to_owned(), 0)));
        // Units still in existence come before ended ones.
        assert_eq!(all[1].0, "P.N");
        assert_eq!(all[2].0, "P.N.A");
        assert!(codes("nowhere").is_empty());
    }

    #[test]
    fn typical_models_come_first_among_sources_and_a_model_is_not_its_own() {
        let a = recognised("QNA.TK.TT");
        let mut t = recognised("QNA.TK.TT");
        t.name = "Zzz điển hình".into();
        t.status = ModelStatus::Typical;
        let list = [a.clone(), t.clone()];
        let sources: Vec<ModelId> = replication_sources(&list, ModelId::new_random()).iter().map(|m| m.id).collect();
        assert_eq!(sources, vec![t.id, a.id]);
        assert_eq!(replication_sources(&list, a.id).len(), 1);
    }

    #[test]
    fn years_are_read_in_range() {
        assert_eq!(parse_year(" "), Ok(None));
        assert_eq!(parse_year("2024"), Ok(Some(2024)));
        assert!(parse_year("1999").is_err());
        assert!(parse_year("năm").is_err());
    }
}

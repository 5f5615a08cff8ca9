//! The words for each code of the domain's vocabularies, in the current
//! language (the codes themselves are what documents store).

use kheo_shared::codes::{Field, IncidentCategory, IncidentOutcome, ModelStatus, RecordKind, SupportType};

use crate::i18n::*;

pub type I18n = leptos_i18n::I18nContext<Locale>;

pub fn kind(i18n: I18n, k: RecordKind) -> String {
    match k {
        RecordKind::Patrol => t_string!(i18n, kind.patrol).to_string(),
        RecordKind::HouseholdSupport => t_string!(i18n, kind.household_support).to_string(),
        RecordKind::Production => t_string!(i18n, kind.production).to_string(),
        RecordKind::Meeting => t_string!(i18n, kind.meeting).to_string(),
    }
}

pub fn status(i18n: I18n, s: ModelStatus) -> String {
    match s {
        ModelStatus::Building => t_string!(i18n, status.building).to_string(),
        ModelStatus::Recognised => t_string!(i18n, status.recognised).to_string(),
        ModelStatus::Typical => t_string!(i18n, status.typical).to_string(),
        ModelStatus::Replicating => t_string!(i18n, status.replicating).to_string(),
        ModelStatus::Stopped => t_string!(i18n, status.stopped).to_string(),
    }
}

pub fn field(i18n: I18n, f: Field) -> String {
    match f {
        Field::EconomicDevelopment => t_string!(i18n, field.economic_development).to_string(),
        Field::CultureSociety => t_string!(i18n, field.culture_society).to_string(),
        Field::SocialWelfare => t_string!(i18n, field.social_welfare).to_string(),
        Field::SecurityOrder => t_string!(i18n, field.security_order).to_string(),
        Field::NewRuralConstruction => t_string!(i18n, field.new_rural_construction).to_string(),
        Field::PovertyReduction => t_string!(i18n, field.poverty_reduction).to_string(),
        Field::SiteClearance => t_string!(i18n, field.site_clearance).to_string(),
        Field::TemporaryHousing => t_string!(i18n, field.temporary_housing).to_string(),
        Field::AdministrativeReform => t_string!(i18n, field.administrative_reform).to_string(),
        Field::DigitalTransformation => t_string!(i18n, field.digital_transformation).to_string(),
        Field::GovernmentMassMobilization => t_string!(i18n, field.government_mass_mobilization).to_string(),
        Field::PoliticalSystem => t_string!(i18n, field.political_system).to_string(),
        Field::Other => t_string!(i18n, field.other).to_string(),
    }
}

pub fn category(i18n: I18n, c: IncidentCategory) -> String {
    match c {
        IncidentCategory::Theft => t_string!(i18n, category.theft).to_string(),
        IncidentCategory::IllegalSandMining => t_string!(i18n, category.illegal_sand_mining).to_string(),
        IncidentCategory::EnvironmentalPollution => t_string!(i18n, category.environmental_pollution).to_string(),
        IncidentCategory::Gambling => t_string!(i18n, category.gambling).to_string(),
        IncidentCategory::PublicDisorder => t_string!(i18n, category.public_disorder).to_string(),
        IncidentCategory::Traffic => t_string!(i18n, category.traffic).to_string(),
        IncidentCategory::Other => t_string!(i18n, category.other).to_string(),
    }
}

pub fn outcome(i18n: I18n, o: IncidentOutcome) -> String {
    match o {
        IncidentOutcome::HandledByTeam => t_string!(i18n, outcome.handled_by_team).to_string(),
        IncidentOutcome::HandedToPolice => t_string!(i18n, outcome.handed_to_police).to_string(),
        IncidentOutcome::SupportedPolice => t_string!(i18n, outcome.supported_police).to_string(),
    }
}

pub fn support(i18n: I18n, s: SupportType) -> String {
    match s {
        SupportType::Money => t_string!(i18n, support.money).to_string(),
        SupportType::Workdays => t_string!(i18n, support.workdays).to_string(),
        SupportType::Materials => t_string!(i18n, support.materials).to_string(),
        SupportType::HouseRepair => t_string!(i18n, support.house_repair).to_string(),
        SupportType::HouseBuilding => t_string!(i18n, support.house_building).to_string(),
        SupportType::TechniqueTransfer => t_string!(i18n, support.technique_transfer).to_string(),
        SupportType::LivestockOrSeed => t_string!(i18n, support.livestock_or_seed).to_string(),
        SupportType::Other => t_string!(i18n, support.other).to_string(),
    }
}

/// Why the server refused a document, from its rule (or error code).
pub fn refusal(i18n: I18n, rule: Option<&str>, error: &str) -> String {
    match (rule, error) {
        (Some("out_of_scope"), _) => t_string!(i18n, rule.out_of_scope).to_string(),
        (Some("review_needs_staff"), _) => t_string!(i18n, rule.review_needs_staff).to_string(),
        (Some("model_needs_staff"), _) => t_string!(i18n, rule.model_needs_staff).to_string(),
        (Some("status_needs_province"), _) => t_string!(i18n, rule.status_needs_province).to_string(),
        (Some("unknown_model"), _) => t_string!(i18n, rule.unknown_model).to_string(),
        (Some("unknown_unit"), _) => t_string!(i18n, rule.unknown_unit).to_string(),
        (Some("foreign_actor"), _) => t_string!(i18n, rule.foreign_actor).to_string(),
        (_, "schema_violation" | "invalid_document" | "bad_change") => t_string!(i18n, rule.invalid).to_string(),
        _ => t_string!(i18n, rule.other).to_string(),
    }
}

/// Where a record stands in review, as the filters name it.
pub fn queue_state(i18n: I18n, state: crate::review::QueueState) -> String {
    use crate::review::QueueState;
    match state {
        QueueState::New => t_string!(i18n, review.awaiting).to_string(),
        QueueState::Approved => t_string!(i18n, review.approved).to_string(),
        QueueState::Returned => t_string!(i18n, review.returned_plain).to_string(),
        QueueState::EditedAfterApproval => t_string!(i18n, review.edited_after_approval).to_string(),
    }
}

//! The Automerge document schema: how models and activity records are laid
//! out in documents, how they are written, read back and validated.
//!
//! Two document types, both versioned by a root `schema` key:
//!
//! * a **model document** (`model/<uuid>`) holds one [`ModelProfile`] at its
//!   root;
//! * an **activity log** (`log/<uuid>/<year>`) holds the records of one
//!   model in one year. Each record is a map at the root under its own id.
//!
//! Records sit directly at the root, not in a `records` map, on purpose: two
//! phones that start the same year's log while offline would each create a
//! `records` map, Automerge would keep one of the two as the winner of a
//! conflict, and the other phone's records would vanish from view. Root keys
//! that are record ids never collide, and the scalar header keys (`schema`,
//! `type`, `model`, `year`) written by both phones carry the same values.
//!
//! ```
//! use automerge::AutoCommit;
//! use kheo_shared::{ids::*, schema, testdata};
//!
//! let model = ModelId::new_random();
//! let mut doc = AutoCommit::new();
//! schema::init_log(&mut doc, model, 2025).unwrap();
//! let record = testdata::patrol(RecordId::new_random(), "2025-03-08", 2);
//! schema::put_record(&mut doc, &record).unwrap();
//!
//! let log = schema::read_log(&doc, &DocId::log(model, 2025).unwrap()).unwrap();
//! assert_eq!(log.records[&record.id], record);
//! ```

pub mod conflicts;
pub mod reader;

use std::collections::BTreeMap;

use automerge::ReadDoc;
use autosurgeon::reconcile_prop;

use reader::{MapReader, Result};
pub use reader::{Problem, SchemaError};

use crate::codes::{Code, ModelStatus, RecordKind, ReviewState, SupportType};
use crate::evidence::{self, Attachment, AttachmentId, ContentHash, Location};
use crate::ids::{DocId, MAX_YEAR, MIN_YEAR, ModelId, RecordId};
use crate::model::{ModelProfile, StatusYears};
use crate::record::{Activity, HouseholdSupport, Incident, Meeting, Patrol, Production, Record, Review};

/// The schema version this build writes and the highest it reads.
pub const SCHEMA_VERSION: i64 = 1;

pub const TYPE_MODEL: &str = "model";
pub const TYPE_LOG: &str = "activity_log";

/// Bounds that keep typing mistakes and hostile input out of documents.
pub mod limits {
    pub const SHORT_TEXT: usize = 200;
    pub const LONG_TEXT: usize = 4_000;
    /// One trillion đồng: above any single support or sale in a commune.
    pub const MAX_VND: i64 = 1_000_000_000_000;
    pub const MAX_PEOPLE: i64 = 100_000;
    pub const MAX_WORKDAYS: f64 = 100_000.0;
    pub const MAX_QUANTITY: f64 = 1_000_000_000.0;
    pub const MAX_INCIDENTS: usize = 200;
}

/// Write errors: the document refused a change (only a bug can cause one).
/// Boxed, because Automerge's errors are large and writes are on hot paths.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(transparent)]
    Reconcile(Box<autosurgeon::ReconcileError>),
    #[error(transparent)]
    Automerge(Box<automerge::AutomergeError>),
}

impl From<autosurgeon::ReconcileError> for WriteError {
    fn from(e: autosurgeon::ReconcileError) -> Self {
        WriteError::Reconcile(Box::new(e))
    }
}

impl From<automerge::AutomergeError> for WriteError {
    fn from(e: automerge::AutomergeError) -> Self {
        WriteError::Automerge(Box::new(e))
    }
}

fn put_header<T: autosurgeon::Doc>(doc: &mut T, doc_type: &str) -> std::result::Result<(), WriteError> {
    reconcile_prop(doc, automerge::ROOT, "schema", SCHEMA_VERSION)?;
    reconcile_prop(doc, automerge::ROOT, "type", doc_type)?;
    Ok(())
}

/// Writes a model profile at the root of its document (creating or updating
/// it). Only fields that differ produce operations, so concurrent edits of
/// different fields merge.
pub fn put_model<T: autosurgeon::Doc>(doc: &mut T, profile: &ModelProfile) -> std::result::Result<(), WriteError> {
    put_header(doc, TYPE_MODEL)?;
    autosurgeon::reconcile(doc, profile)?;
    Ok(())
}

/// Writes the header of a model's log for one year. Safe to call on every
/// device that starts the log: the values are the same everywhere.
pub fn init_log<T: autosurgeon::Doc>(doc: &mut T, model: ModelId, year: i32) -> std::result::Result<(), WriteError> {
    put_header(doc, TYPE_LOG)?;
    reconcile_prop(doc, automerge::ROOT, "model", model)?;
    reconcile_prop(doc, automerge::ROOT, "year", i64::from(year))?;
    Ok(())
}

/// Creates or updates one record in a log document.
pub fn put_record<T: autosurgeon::Doc>(doc: &mut T, record: &Record) -> std::result::Result<(), WriteError> {
    reconcile_prop(doc, automerge::ROOT, record.id.to_string().as_str(), record)?;
    Ok(())
}

fn check_header<D: ReadDoc>(root: &MapReader<'_, D>, doc_type: &'static str) -> Result<()> {
    let version = root.int("schema")?;
    if version > SCHEMA_VERSION || version < 1 {
        return Err(SchemaError::new(
            "schema",
            Problem::UnsupportedVersion { found: version, supported: SCHEMA_VERSION },
        ));
    }
    let found = root.str("type")?;
    if found != doc_type {
        return Err(SchemaError::invalid("type", format!("expected {doc_type:?}, found {found:?}")));
    }
    Ok(())
}

/// Reads and validates a model document.
pub fn read_model<D: ReadDoc>(doc: &D, id: ModelId) -> Result<ModelProfile> {
    use limits::*;
    let root = MapReader::root(doc);
    check_header(&root, TYPE_MODEL)?;
    let found: ModelId = parse_id(&root, "id")?;
    if found != id {
        return Err(SchemaError::invalid("id", format!("{found} does not match the document id {id}")));
    }
    let years = root.map("status_years")?;
    let year = |key: &str| years.opt_int_in::<i32>(key, MIN_YEAR.into(), MAX_YEAR.into());
    let status_years = StatusYears {
        building: year("building")?,
        recognised: year("recognised")?,
        typical: year("typical")?,
        replicating: year("replicating")?,
        stopped: year("stopped")?,
    };
    let replicated_from = match root.opt_str("replicated_from")? {
        None => None,
        Some(_) => Some(parse_id(&root, "replicated_from")?),
    };
    let profile = ModelProfile {
        id,
        name: root.text("name", SHORT_TEXT, true)?,
        field: root.code("field")?,
        unit: root.text("unit", SHORT_TEXT, true)?,
        lead_organisation: root.text("lead_organisation", SHORT_TEXT, false)?,
        started_on: root.day("started_on")?,
        status: root.code("status")?,
        status_years,
        replicated_from,
        members: root.int_in("members", 0, MAX_PEOPLE)?,
        households: root.int_in("households", 0, MAX_PEOPLE)?,
        description: root.text("description", LONG_TEXT, false)?,
        created_at: root.timestamp("created_at")?,
        updated_at: root.timestamp("updated_at")?,
    };
    validate_model(&profile)?;
    Ok(profile)
}

fn validate_model(p: &ModelProfile) -> Result<()> {
    if p.status_years.get(p.status).is_none() {
        return Err(SchemaError::invalid(
            format!("status_years/{}", p.status),
            "the current status needs the year it was reached",
        ));
    }
    // Lifecycle steps happen in order; `stopped` may follow any of them.
    let mut last: Option<(ModelStatus, i32)> = None;
    for step in [ModelStatus::Building, ModelStatus::Recognised, ModelStatus::Typical, ModelStatus::Replicating] {
        if let Some(y) = p.status_years.get(step) {
            if let Some((prev, prev_year)) = last
                && y < prev_year
            {
                return Err(SchemaError::invalid(
                    format!("status_years/{step}"),
                    format!("{step} in {y} is before {prev} in {prev_year}"),
                ));
            }
            last = Some((step, y));
        }
    }
    if p.replicated_from == Some(p.id) {
        return Err(SchemaError::invalid("replicated_from", "a model cannot replicate itself"));
    }
    if p.updated_at < p.created_at {
        return Err(SchemaError::invalid("updated_at", "earlier than created_at"));
    }
    Ok(())
}

fn parse_id<T: std::str::FromStr, D: ReadDoc>(m: &MapReader<'_, D>, key: &str) -> Result<T> {
    let s = m.str(key)?;
    s.parse().map_err(|_| SchemaError::invalid(m.path_of(key), format!("{s:?} is not a lowercase hyphenated UUID")))
}

/// The records of one model in one year, keyed by record id.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityLog {
    pub model: ModelId,
    pub year: i32,
    pub records: BTreeMap<RecordId, Record>,
}

const LOG_HEADER_KEYS: [&str; 4] = ["schema", "type", "model", "year"];

/// Reads and validates a whole activity log document.
pub fn read_log<D: ReadDoc>(doc: &D, id: &DocId) -> Result<ActivityLog> {
    let DocId::Log { model, year } = *id else {
        return Err(SchemaError::invalid("", format!("{id} is not an activity log")));
    };
    check_log_header(doc, id)?;
    let root = MapReader::root(doc);
    let mut records = BTreeMap::new();
    for key in root.keys() {
        if LOG_HEADER_KEYS.contains(&key.as_str()) {
            continue;
        }
        let record = read_record(&root, &key, year)?;
        records.insert(record.id, record);
    }
    Ok(ActivityLog { model, year, records })
}

/// Reads and validates the records under the given root keys only: the
/// server's check of what one sync touched, without re-reading the year.
/// A touched key must still hold a record: records are never removed.
pub fn read_log_records<D: ReadDoc>(
    doc: &D,
    id: &DocId,
    keys: impl IntoIterator<Item = String>,
) -> Result<Vec<Record>> {
    let DocId::Log { year, .. } = *id else {
        return Err(SchemaError::invalid("", format!("{id} is not an activity log")));
    };
    let keys: Vec<String> = keys.into_iter().filter(|k| !LOG_HEADER_KEYS.contains(&k.as_str())).collect();
    let root = MapReader::root_keys(doc, keys.iter().map(String::as_str));
    keys.into_iter()
        .map(|k| match root.value(&k)? {
            None => Err(SchemaError::invalid(k, "records are never removed; mark them deleted instead")),
            Some(_) => read_record(&root, &k, year),
        })
        .collect()
}

/// The records under the given root keys that exist, read and validated;
/// absent keys are skipped (the "before" side of a merge).
pub fn read_existing_records<D: ReadDoc>(
    doc: &D,
    id: &DocId,
    keys: impl IntoIterator<Item = String>,
) -> Result<BTreeMap<RecordId, Record>> {
    let DocId::Log { year, .. } = *id else {
        return Err(SchemaError::invalid("", format!("{id} is not an activity log")));
    };
    let keys: Vec<String> = keys.into_iter().filter(|k| !LOG_HEADER_KEYS.contains(&k.as_str())).collect();
    let root = MapReader::root_keys(doc, keys.iter().map(String::as_str));
    let mut records = BTreeMap::new();
    for key in keys {
        if root.value(&key)?.is_none() {
            continue;
        }
        let record = read_record(&root, &key, year)?;
        records.insert(record.id, record);
    }
    Ok(records)
}

/// Checks the header of a log document (cheap; see [`read_log_records`]).
pub fn check_log_header<D: ReadDoc>(doc: &D, id: &DocId) -> Result<()> {
    let DocId::Log { model, year } = *id else {
        return Err(SchemaError::invalid("", format!("{id} is not an activity log")));
    };
    let root = MapReader::root_keys(doc, LOG_HEADER_KEYS.iter().copied());
    check_header(&root, TYPE_LOG)?;
    let found: ModelId = parse_id(&root, "model")?;
    if found != model {
        return Err(SchemaError::invalid("model", format!("{found} does not match the document id {id}")));
    }
    let found_year = root.int("year")?;
    if found_year != i64::from(year) {
        return Err(SchemaError::invalid("year", format!("{found_year} does not match the document id {id}")));
    }
    Ok(())
}

fn read_record<D: ReadDoc>(root: &MapReader<'_, D>, key: &str, year: i32) -> Result<Record> {
    use limits::*;
    let id: RecordId = key
        .parse()
        .map_err(|_| SchemaError::invalid(key, "unknown key: records are keyed by a lowercase hyphenated UUID"))?;
    let m = root.map(key)?;
    let found: RecordId = parse_id(&m, "id")?;
    if found != id {
        return Err(SchemaError::invalid(m.path_of("id"), format!("{found} does not match its key")));
    }
    let occurred_on = m.day("occurred_on")?;
    if occurred_on.year() != year {
        return Err(SchemaError::invalid(
            m.path_of("occurred_on"),
            format!("{occurred_on} does not belong in the log of {year}"),
        ));
    }
    let kind: RecordKind = m.code("kind")?;
    let detail = m.map(kind.code())?;
    let activity = match kind {
        RecordKind::Patrol => Activity::Patrol(read_patrol(&detail)?),
        RecordKind::HouseholdSupport => Activity::HouseholdSupport(read_support(&detail)?),
        RecordKind::Production => Activity::Production(Production {
            product: detail.text("product", SHORT_TEXT, true)?,
            quantity: detail.number_in("quantity", MAX_QUANTITY)?,
            unit: detail.text("unit", SHORT_TEXT, false)?,
            revenue_vnd: detail.int_in("revenue_vnd", 0, MAX_VND)?,
        }),
        RecordKind::Meeting => Activity::Meeting(Meeting {
            topic: detail.text("topic", SHORT_TEXT, true)?,
            attendees: detail.int_in("attendees", 0, MAX_PEOPLE)?,
        }),
    };
    let review = read_review(&m.map("review")?)?;
    let record = Record {
        id,
        occurred_on,
        author: m.text("author", SHORT_TEXT, true)?,
        device: m.text("device", SHORT_TEXT, true)?,
        created_at: m.timestamp("created_at")?,
        updated_at: m.timestamp("updated_at")?,
        deleted: m.bool_or_false("deleted")?,
        note: m.text("note", LONG_TEXT, false)?,
        review,
        activity,
        attachments: read_attachments(&m)?,
    };
    if record.updated_at < record.created_at {
        return Err(SchemaError::invalid(m.path_of("updated_at"), "earlier than created_at"));
    }
    Ok(record)
}

fn read_attachments<D: ReadDoc>(m: &MapReader<'_, D>) -> Result<BTreeMap<AttachmentId, Attachment>> {
    use evidence::limits::*;
    let mut attachments = BTreeMap::new();
    for key in m.keys() {
        let Some(id) = AttachmentId::from_key(&key) else { continue };
        let id = id.map_err(|_| SchemaError::invalid(m.path_of(&key), "attachments are keyed by photo:<uuid>"))?;
        if attachments.len() == MAX_ATTACHMENT_ENTRIES {
            return Err(SchemaError::invalid(
                m.path_of(&key),
                format!("at most {MAX_ATTACHMENT_ENTRIES} attachment entries on a record, removed ones included"),
            ));
        }
        let a = m.map(&key)?;
        let sha256 = a.str("sha256")?;
        let sha256 =
            ContentHash::parse(&sha256).map_err(|e| SchemaError::invalid(a.path_of("sha256"), e.to_string()))?;
        let side = i64::from(MAX_PHOTO_SIDE);
        attachments.insert(
            id,
            Attachment {
                sha256,
                media_type: a.code("media_type")?,
                bytes: a.int_in("bytes", 1, i64::from(MAX_PHOTO_BYTES))?,
                width: a.int_in("width", 1, side)?,
                height: a.int_in("height", 1, side)?,
                taken_at: a.timestamp("taken_at")?,
                caption: a.text("caption", limits::SHORT_TEXT, false)?,
                deleted: a.bool_or_false("deleted")?,
            },
        );
    }
    let live = attachments.values().filter(|a| !a.deleted).count();
    if live > MAX_PHOTOS {
        return Err(SchemaError::invalid(m.path(), format!("{live} photos, at most {MAX_PHOTOS} allowed")));
    }
    Ok(attachments)
}

fn read_location<D: ReadDoc>(d: &MapReader<'_, D>) -> Result<Option<Location>> {
    let Some(l) = d.opt_map("location")? else { return Ok(None) };
    Ok(Some(Location {
        latitude: l.float_in("latitude", -90.0, 90.0)?,
        longitude: l.float_in("longitude", -180.0, 180.0)?,
        accuracy_m: l.float_in("accuracy_m", 0.0, evidence::limits::MAX_ACCURACY_M)?,
        taken_at: l.timestamp("taken_at")?,
    }))
}

fn read_patrol<D: ReadDoc>(d: &MapReader<'_, D>) -> Result<Patrol> {
    use limits::*;
    let incidents = d.list_of_maps("incidents")?;
    if incidents.len() > MAX_INCIDENTS {
        return Err(SchemaError::out_of_range(d.path_of("incidents"), incidents.len(), 0, MAX_INCIDENTS));
    }
    let incidents = incidents
        .iter()
        .map(|i| {
            Ok(Incident {
                id: i.text("id", SHORT_TEXT, true)?,
                category: i.code("category")?,
                description: i.text("description", LONG_TEXT, false)?,
                outcome: i.code("outcome")?,
                location: read_location(i)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let mut seen = std::collections::BTreeSet::new();
    if let Some(dup) = incidents.iter().find(|i| !seen.insert(i.id.as_str())) {
        return Err(SchemaError::invalid(d.path_of("incidents"), format!("incident id {:?} appears twice", dup.id)));
    }
    Ok(Patrol {
        start: d.clock("start")?,
        end: d.clock("end")?,
        members_present: d.int_in("members_present", 1, MAX_PEOPLE)?,
        area: d.text("area", SHORT_TEXT, false)?,
        incidents,
        location: read_location(d)?,
    })
}

fn read_support<D: ReadDoc>(d: &MapReader<'_, D>) -> Result<HouseholdSupport> {
    use limits::*;
    let s = HouseholdSupport {
        giver: d.text("giver", SHORT_TEXT, true)?,
        receiver: d.text("receiver", SHORT_TEXT, true)?,
        support_type: d.code("support_type")?,
        amount_vnd: d.int_in("amount_vnd", 0, MAX_VND)?,
        workdays: d.number_in("workdays", MAX_WORKDAYS)?,
        quantity: d.number_in("quantity", MAX_QUANTITY)?,
        unit: d.text("unit", SHORT_TEXT, false)?,
        description: d.text("description", LONG_TEXT, false)?,
    };
    match s.support_type {
        SupportType::Money if s.amount_vnd == 0 => {
            Err(SchemaError::invalid(d.path_of("amount_vnd"), "money support needs an amount"))
        }
        SupportType::Workdays if s.workdays == 0.0 => {
            Err(SchemaError::invalid(d.path_of("workdays"), "workday support needs a number of workdays"))
        }
        _ => Ok(s),
    }
}

fn read_review<D: ReadDoc>(r: &MapReader<'_, D>) -> Result<Review> {
    use limits::*;
    let review = Review {
        state: r.code("state")?,
        reviewer: match r.opt_str("reviewer")? {
            None => None,
            Some(_) => Some(r.text("reviewer", SHORT_TEXT, true)?),
        },
        reviewed_at: r.opt_timestamp("reviewed_at")?,
        comment: r.text("comment", LONG_TEXT, false)?,
    };
    if review.state != ReviewState::New && (review.reviewer.is_none() || review.reviewed_at.is_none()) {
        return Err(SchemaError::invalid(r.path_of("state"), "a decision needs a reviewer and a time"));
    }
    if review.state == ReviewState::Returned && review.comment.trim().is_empty() {
        return Err(SchemaError::invalid(r.path_of("comment"), "a returned record needs a comment"));
    }
    Ok(review)
}

/// Validates a whole document of either type against its id.
pub fn validate<D: ReadDoc>(doc: &D, id: &DocId) -> Result<()> {
    match id {
        DocId::Model(m) => read_model(doc, *m).map(drop),
        DocId::Log { .. } => read_log(doc, id).map(drop),
    }
}

#[cfg(test)]
mod tests;

//! The read model: one flat row per model and per record (plus one per
//! incident and one per attachment), derived from the merged documents and written in the same
//! transaction as the merge, so reports run as SQL over rows and never load
//! an Automerge document.

use kheo_shared::codes::{Code, IncidentOutcome, SupportType};
use kheo_shared::ids::{DocId, ModelId};
use kheo_shared::model::ModelProfile;
use kheo_shared::record::{Activity, Record};
use kheo_shared::schema::conflicts::{FieldConflict, record_conflicts};

#[derive(Debug, Clone, PartialEq)]
pub struct ModelRow {
    pub profile: ModelProfile,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RecordRow {
    pub record: String,
    pub model: String,
    pub kind: &'static str,
    pub occurred_on: String,
    pub deleted: bool,
    pub review_state: &'static str,
    pub author: String,
    /// In position order.
    pub incidents: Vec<IncidentRow>,
    pub handed_to_police: i64,
    pub supported_police: i64,
    pub receiver: Option<String>,
    pub support_type: Option<&'static str>,
    pub amount_vnd: i64,
    pub workdays: f64,
    pub houses: i64,
    pub revenue_vnd: i64,
    pub attendees: i64,
    pub updated_at: i64,
    pub reviewer: Option<String>,
    pub reviewed_at: Option<i64>,
    pub review_comment: String,
    /// Fields two devices changed concurrently, found at merge time.
    pub conflicts: Vec<FieldConflict>,
    pub note: String,
    /// What only the records export and the blob endpoints read; `None` where the kind has none.
    /// Boxed: a write batch carries many rows in an enum with model rows.
    pub details: Box<Details>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct IncidentRow {
    pub category: &'static str,
    pub outcome: &'static str,
    pub description: String,
}

/// One photo on a record, as §5.4 describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct AttachmentRow {
    pub attachment: String,
    /// The log the record is in.
    pub doc_id: String,
    pub sha256: String,
    pub media_type: &'static str,
    pub bytes: i64,
    pub width: i64,
    pub height: i64,
    pub taken_at: i64,
    pub caption: String,
    pub deleted: bool,
}

/// The fields of each kind that no rollup counts, kept for the export.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Details {
    /// `HH:MM`, 24 h.
    pub patrol_start: Option<String>,
    pub patrol_end: Option<String>,
    pub members_present: Option<i64>,
    pub area: Option<String>,
    pub giver: Option<String>,
    /// As typed; [`RecordRow::receiver`] is the key households are counted by.
    pub receiver_name: Option<String>,
    pub support_description: Option<String>,
    pub product: Option<String>,
    /// Household support's and production's quantity, with its unit.
    pub quantity: Option<f64>,
    pub quantity_unit: Option<String>,
    pub topic: Option<String>,
    /// The hashes of the live photos, in the record's order.
    pub photos: Vec<String>,
    /// Every attachment, deleted ones too, in id order: what the blob
    /// endpoints check an upload or a read against ([`crate::blobs`]).
    pub attachments: Vec<AttachmentRow>,
}

/// A change to the read model, carried in a write batch.
#[derive(Debug, Clone, PartialEq)]
pub enum ReadModelWrite {
    Model(ModelRow),
    Record(RecordRow),
}

impl RecordRow {
    pub fn from_record(model: ModelId, r: &Record) -> RecordRow {
        let mut row = RecordRow {
            record: r.id.to_string(),
            model: model.to_string(),
            kind: r.kind().code(),
            occurred_on: r.occurred_on.to_string(),
            deleted: r.deleted,
            review_state: r.review.state.code(),
            author: r.author.clone(),
            incidents: Vec::new(),
            handed_to_police: 0,
            supported_police: 0,
            receiver: None,
            support_type: None,
            amount_vnd: 0,
            workdays: 0.0,
            houses: 0,
            revenue_vnd: 0,
            attendees: 0,
            updated_at: r.updated_at.millis(),
            reviewer: r.review.reviewer.clone(),
            reviewed_at: r.review.reviewed_at.map(|t| t.millis()),
            review_comment: r.review.comment.clone(),
            conflicts: Vec::new(),
            note: r.note.clone(),
            details: Box::default(),
        };
        // A record's year is its log's (the schema checks it when it reads the log).
        let doc_id = DocId::log(model, r.occurred_on.year()).map(|d| d.to_string()).unwrap_or_default();
        row.details.attachments = r
            .attachments
            .iter()
            .map(|(id, a)| AttachmentRow {
                attachment: id.to_string(),
                doc_id: doc_id.clone(),
                sha256: a.sha256.to_string(),
                media_type: a.media_type.code(),
                bytes: i64::from(a.bytes),
                width: i64::from(a.width),
                height: i64::from(a.height),
                taken_at: a.taken_at.millis(),
                caption: a.caption.clone(),
                deleted: a.deleted,
            })
            .collect();
        let d = &mut row.details;
        d.photos = r.photos().map(|(_, a)| a.sha256.to_string()).collect();
        match &r.activity {
            Activity::Patrol(p) => {
                row.incidents = p
                    .incidents
                    .iter()
                    .map(|i| IncidentRow {
                        category: i.category.code(),
                        outcome: i.outcome.code(),
                        description: i.description.clone(),
                    })
                    .collect();
                let count = |o: IncidentOutcome| p.incidents.iter().filter(|i| i.outcome == o).count() as i64;
                row.handed_to_police = count(IncidentOutcome::HandedToPolice);
                row.supported_police = count(IncidentOutcome::SupportedPolice);
                d.patrol_start = Some(p.start.to_string());
                d.patrol_end = Some(p.end.to_string());
                d.members_present = Some(i64::from(p.members_present));
                d.area = Some(p.area.clone());
            }
            Activity::HouseholdSupport(s) => {
                row.receiver = Some(s.receiver.trim().to_lowercase());
                row.support_type = Some(s.support_type.code());
                row.amount_vnd = s.amount_vnd;
                row.workdays = s.workdays;
                row.houses = i64::from(matches!(s.support_type, SupportType::HouseRepair | SupportType::HouseBuilding));
                d.giver = Some(s.giver.clone());
                d.receiver_name = Some(s.receiver.clone());
                d.support_description = Some(s.description.clone());
                d.quantity = Some(s.quantity);
                d.quantity_unit = Some(s.unit.clone());
            }
            Activity::Production(p) => {
                row.revenue_vnd = p.revenue_vnd;
                d.product = Some(p.product.clone());
                d.quantity = Some(p.quantity);
                d.quantity_unit = Some(p.unit.clone());
            }
            Activity::Meeting(m) => {
                row.attendees = i64::from(m.attendees);
                d.topic = Some(m.topic.clone());
            }
        }
        row
    }

    /// The row of a record as it stands in `doc`, with its conflicts.
    pub fn in_doc<D: automerge::ReadDoc>(doc: &D, model: ModelId, r: &Record) -> RecordRow {
        let mut row = RecordRow::from_record(model, r);
        row.conflicts = record_conflicts(doc, &row.record);
        row
    }
}

/// Documents whose rows one rebuild commit carries: bounds the rows held in
/// memory (a log holds thousands of records) and each transaction's length.
const REBUILD_DOCS_PER_COMMIT: usize = 32;
/// Times one document is read again because another process wrote it
/// meanwhile; past that the rebuild fails, and the server with it, loudly.
const REBUILD_ATTEMPTS: usize = 20;

/// Rebuilds every row from the stored documents: for a store written
/// before the read model existed, or after a migration emptied its tables.
///
/// Other processes may be serving and merging meanwhile. Each document's
/// rows are committed only while the document is still at the version they
/// were read from (`WriteBatch::unchanged`); one that moved is read again.
pub async fn rebuild(store: &dyn crate::store::Store) -> Result<usize, crate::store::StoreError> {
    use crate::store::{Committed, StoreError, WriteBatch};
    let ids = store.doc_ids().await?;
    let mut rows = 0;
    for group in ids.chunks(REBUILD_DOCS_PER_COMMIT) {
        let mut pending = group.to_vec();
        for _ in 0..REBUILD_ATTEMPTS {
            let mut batches = Vec::with_capacity(pending.len());
            for id in &pending {
                let Some(stored) = store.load_doc(id).await? else { continue };
                let version = stored.version;
                let read_model = rows_of(id, &stored.to_automerge()?);
                batches.push(WriteBatch { read_model, unchanged: vec![(*id, version)], ..WriteBatch::default() });
            }
            let outcomes = store.commit(&batches).await?;
            pending = Vec::new();
            for (batch, outcome) in batches.iter().zip(outcomes) {
                match outcome {
                    Committed::Done => rows += batch.read_model.len(),
                    Committed::Conflict(id) => pending.push(id),
                }
            }
            if pending.is_empty() {
                break;
            }
        }
        if let Some(id) = pending.first() {
            return Err(StoreError::Corrupt(format!("{id} kept moving while its read-model rows were rebuilt")));
        }
    }
    Ok(rows)
}

/// The read-model rows of one document.
pub fn rows_of(id: &DocId, doc: &automerge::Automerge) -> Vec<ReadModelWrite> {
    use kheo_shared::schema;
    match *id {
        DocId::Model(model) => match schema::read_model(doc, model) {
            Ok(profile) => vec![ReadModelWrite::Model(ModelRow { profile })],
            Err(_) => Vec::new(),
        },
        DocId::Log { model, .. } => match schema::read_log(doc, id) {
            Ok(log) => log.records.values().map(|r| ReadModelWrite::Record(RecordRow::in_doc(doc, model, r))).collect(),
            Err(_) => Vec::new(),
        },
    }
}

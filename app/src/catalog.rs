//! What the screens show and change, read from and written to a
//! [`Replica`]: the models on the phone, a model's records newest first,
//! and saving a record into the right yearly log. No browser API here, so
//! it is tested natively beside the code.

use automerge::ReadDoc;
use kheo_shared::client::{Rejection, Replica};
use kheo_shared::codes::RecordKind;
use kheo_shared::ids::{DocId, ModelId};
use kheo_shared::model::ModelProfile;
use kheo_shared::record::Record;
use kheo_shared::scalars::Timestamp;
use kheo_shared::schema::{self, SchemaError, WriteError};

#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    /// The record breaks a rule the server would also enforce.
    #[error("{0}")]
    Invalid(#[from] SchemaError),
    #[error("{0}")]
    Write(#[from] WriteError),
    #[error("the date is outside the years a log can hold")]
    BadYear,
}

/// The profiles of every model on the phone that reads back valid, by name.
/// A model document still empty (named by the server, not yet received) is
/// left out until its content arrives.
pub fn models(replica: &Replica) -> Vec<ModelProfile> {
    let mut out: Vec<ModelProfile> = replica
        .doc_ids()
        .filter_map(|id| match id {
            DocId::Model(m) => replica.doc(id).and_then(|d| schema::read_model(d, *m).ok()),
            DocId::Log { .. } => None,
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
    out
}

pub fn model(replica: &Replica, id: ModelId) -> Option<ModelProfile> {
    replica.doc(&DocId::Model(id)).and_then(|d| schema::read_model(d, id).ok())
}

/// Which records to list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Filter {
    pub kind: Option<RecordKind>,
    /// `(year, month)`.
    pub month: Option<(i32, u8)>,
    pub include_deleted: bool,
}

impl Filter {
    pub fn accepts(&self, r: &Record) -> bool {
        (self.include_deleted || !r.deleted)
            && self.kind.is_none_or(|k| r.kind() == k)
            && self.month.is_none_or(|(y, m)| r.occurred_on.0.year() == y && u8::from(r.occurred_on.0.month()) == m)
    }
}

/// The model's records over all its yearly logs, newest first (by day, then
/// by when they were logged). Logs that fail to read are skipped here and
/// reported by [`unreadable_logs`].
pub fn records(replica: &Replica, model: ModelId, filter: Filter) -> Vec<Record> {
    let mut out: Vec<Record> = log_ids(replica, model)
        .filter_map(|id| replica.doc(&id).and_then(|d| read_log(d, &id)))
        .flatten()
        .filter(|r| filter.accepts(r))
        .collect();
    out.sort_by(|a, b| b.occurred_on.cmp(&a.occurred_on).then(b.created_at.cmp(&a.created_at)).then(a.id.cmp(&b.id)));
    out
}

/// What the model page needs of a record to order, filter and count it,
/// read without the rest of the record (its details, photos, texts).
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub id: kheo_shared::ids::RecordId,
    pub log: DocId,
    pub occurred_on: kheo_shared::scalars::Day,
    pub created_at: Timestamp,
    pub kind: RecordKind,
    pub review: kheo_shared::codes::ReviewState,
}

impl Entry {
    fn passes(&self, filter: &Filter) -> bool {
        filter.kind.is_none_or(|k| self.kind == k)
            && filter
                .month
                .is_none_or(|(y, m)| self.occurred_on.0.year() == y && u8::from(self.occurred_on.0.month()) == m)
    }
}

/// A model's live records as its page lists them, read out of the replica
/// once per revision: newest first (as [`records`] orders them), and which
/// of them the server may not hold yet. A busy team's year holds thousands
/// of records; only those shown are read in full ([`ModelLog::records`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelLog {
    pub entries: Vec<Entry>,
    pub unsynced: std::collections::BTreeSet<kheo_shared::ids::RecordId>,
}

impl ModelLog {
    /// Logs that fail to read are left out, as [`records`] leaves them.
    pub fn read(replica: &mut Replica, model: ModelId) -> ModelLog {
        let unsynced = unsynced(replica, model);
        let mut entries: Vec<Entry> =
            log_ids(replica, model).filter_map(|id| replica.doc(&id).and_then(|d| entries(d, id))).flatten().collect();
        entries.sort_by(|a, b| {
            b.occurred_on.cmp(&a.occurred_on).then(b.created_at.cmp(&a.created_at)).then(a.id.cmp(&b.id))
        });
        ModelLog { entries, unsynced }
    }

    /// The entries `filter` keeps (deleted records are never entries).
    pub fn filtered<'a>(&'a self, filter: &'a Filter) -> impl Iterator<Item = &'a Entry> + 'a {
        self.entries.iter().filter(move |e| e.passes(filter))
    }

    /// These entries' records, read and checked in full, in the same order;
    /// one that no longer reads (changed since) is left out.
    pub fn records<'a>(replica: &Replica, entries: impl IntoIterator<Item = &'a Entry>) -> Vec<Record> {
        entries
            .into_iter()
            .filter_map(|e| {
                let doc = replica.doc(&e.log)?;
                schema::read_log_records(doc, &e.log, [e.id.to_string()]).ok()?.pop()
            })
            .collect()
    }

    /// Months (year, month) that have records, newest first.
    pub fn months(&self) -> Vec<(i32, u8)> {
        let mut months: Vec<(i32, u8)> =
            self.entries.iter().map(|e| (e.occurred_on.0.year(), u8::from(e.occurred_on.0.month()))).collect();
        months.dedup();
        months
    }
}

/// The live records' entries of one log; `None` when a record's entry
/// does not read (the log is then one [`unreadable_logs`] names).
fn entries<D: ReadDoc>(doc: &D, log: DocId) -> Option<Vec<Entry>> {
    let root = schema::reader::MapReader::root(doc);
    let mut out = Vec::new();
    for key in root.keys() {
        let Ok(id) = key.parse::<kheo_shared::ids::RecordId>() else { continue };
        let m = root.map(&key).ok()?;
        if m.bool_or_false("deleted").ok()? {
            continue;
        }
        out.push(Entry {
            id,
            log,
            occurred_on: m.day("occurred_on").ok()?,
            created_at: m.timestamp("created_at").ok()?,
            kind: m.code("kind").ok()?,
            review: m.map("review").ok()?.code("state").ok()?,
        });
    }
    Some(out)
}

/// How many live records the model's logs hold, without reading them: a
/// list of models counts thousands of records it never shows.
pub fn record_count(replica: &Replica, model: ModelId) -> usize {
    use automerge::{ROOT, ScalarValue, Value};
    let live = |doc: &automerge::AutoCommit, key: &str| match doc.get(ROOT, key) {
        Ok(Some((Value::Object(_), record))) => !matches!(
            doc.get(&record, "deleted"),
            Ok(Some((Value::Scalar(s), _))) if matches!(s.as_ref(), ScalarValue::Boolean(true))
        ),
        _ => false,
    };
    log_ids(replica, model)
        .filter_map(|id| replica.doc(&id))
        .map(|doc| {
            doc.keys(ROOT).filter(|key| key.parse::<kheo_shared::ids::RecordId>().is_ok() && live(doc, key)).count()
        })
        .sum()
}

/// Months (year, month) that have records of the model, newest first.
pub fn months(replica: &Replica, model: ModelId) -> Vec<(i32, u8)> {
    let mut months: Vec<(i32, u8)> = records(replica, model, Filter::default())
        .iter()
        .map(|r| (r.occurred_on.0.year(), u8::from(r.occurred_on.0.month())))
        .collect();
    months.dedup();
    months
}

pub fn record(replica: &Replica, model: ModelId, id: kheo_shared::ids::RecordId) -> Option<Record> {
    log_ids(replica, model)
        .filter_map(|log| replica.doc(&log).and_then(|d| read_log(d, &log)))
        .flatten()
        .find(|r| r.id == id)
}

/// Every photo on the phone's records that is not removed (nor on a
/// deleted record), one per hash: what the phone may have to upload.
pub fn photos(replica: &Replica) -> Vec<kheo_shared::evidence::Attachment> {
    let mut seen = std::collections::BTreeSet::new();
    replica
        .doc_ids()
        .filter(|id| matches!(id, DocId::Log { .. }))
        .filter_map(|id| replica.doc(id).and_then(|d| read_log(d, id)))
        .flatten()
        .filter(|r| !r.deleted)
        .flat_map(|r| r.photos().map(|(_, a)| a.clone()).collect::<Vec<_>>())
        .filter(|a| seen.insert(a.sha256.clone()))
        .collect()
}

/// Every log on the phone is loaded and reads back valid (what [`photos`]
/// lists is all the photos the phone's records name).
pub fn every_log_readable(replica: &Replica) -> bool {
    replica.all_loaded()
        && replica
            .doc_ids()
            .filter(|id| matches!(id, DocId::Log { .. }))
            .all(|id| replica.doc(id).and_then(|d| read_log(d, id)).is_some())
}

fn log_ids(replica: &Replica, model: ModelId) -> impl Iterator<Item = DocId> + '_ {
    replica.doc_ids().filter(move |id| matches!(id, DocId::Log { model: m, .. } if *m == model)).copied()
}

/// An empty log (named by the server, content not yet received) has no records yet.
fn read_log<D: ReadDoc>(doc: &D, id: &DocId) -> Option<Vec<Record>> {
    if doc.length(automerge::ROOT) == 0 {
        return Some(Vec::new());
    }
    schema::read_log(doc, id).ok().map(|log| log.records.into_values().collect())
}

/// Records of the model whose latest version the server is not known to
/// hold yet: absent at the heads the phone and the server share, or saved
/// or reviewed since (a save always moves `updated_at`, a decision
/// `review/reviewed_at`).
pub fn unsynced(replica: &mut Replica, model: ModelId) -> std::collections::BTreeSet<kheo_shared::ids::RecordId> {
    let mut out = std::collections::BTreeSet::new();
    let logs: Vec<DocId> = log_ids(replica, model).collect();
    for log in logs {
        let mut shared = replica.shared_heads(&log);
        shared.sort();
        let mut heads = replica.heads(&log);
        heads.sort();
        // A log at the heads the server acknowledged holds nothing new: the
        // usual case, and checking it record by record costs more than the
        // rest of the page (reads at old heads are Automerge's slow path).
        if heads == shared {
            continue;
        }
        let Some(doc) = replica.doc(&log) else { continue };
        for key in doc.keys(automerge::ROOT) {
            // Header keys (`type`, `model`, ...) are not record ids.
            if let Ok(id) = key.parse::<kheo_shared::ids::RecordId>()
                && !held_at(doc, &key, &shared)
            {
                out.insert(id);
            }
        }
    }
    out
}

/// Whether record `key` reads the same at `heads` as now, in the fields every write moves.
fn held_at<D: ReadDoc>(doc: &D, key: &str, heads: &[automerge::ChangeHash]) -> bool {
    use automerge::{ObjId, ROOT, Value};
    fn object<D: ReadDoc>(doc: &D, obj: &ObjId, key: &str, heads: Option<&[automerge::ChangeHash]>) -> Option<ObjId> {
        let found = match heads {
            Some(h) => doc.get_at(obj, key, h),
            None => doc.get(obj, key),
        };
        match found.ok()?? {
            (Value::Object(_), id) => Some(id),
            _ => None,
        }
    }
    fn scalar<D: ReadDoc>(
        doc: &D,
        obj: &ObjId,
        key: &str,
        heads: Option<&[automerge::ChangeHash]>,
    ) -> Option<automerge::ScalarValue> {
        let found = match heads {
            Some(h) => doc.get_at(obj, key, h),
            None => doc.get(obj, key),
        };
        match found.ok()?? {
            (Value::Scalar(s), _) => Some(s.into_owned()),
            _ => None,
        }
    }
    let (Some(now), Some(then)) = (object(doc, &ROOT, key, None), object(doc, &ROOT, key, Some(heads))) else {
        return false;
    };
    if now != then || scalar(doc, &now, "updated_at", None) != scalar(doc, &now, "updated_at", Some(heads)) {
        return false;
    }
    let review = object(doc, &now, "review", None);
    let review_then = object(doc, &now, "review", Some(heads));
    match (review, review_then) {
        (Some(r), Some(t)) => {
            r == t && scalar(doc, &r, "reviewed_at", None) == scalar(doc, &r, "reviewed_at", Some(heads))
        }
        (None, None) => true,
        _ => false,
    }
}

/// Logs of the model holding data the app cannot read (a newer schema, or damage).
pub fn unreadable_logs(replica: &Replica, model: ModelId) -> Vec<DocId> {
    log_ids(replica, model).filter(|id| replica.doc(id).is_some_and(|d| read_log(d, id).is_none())).collect()
}

/// Refusals the server gave for the model's documents.
pub fn rejections(replica: &mut Replica, model: ModelId) -> Vec<(DocId, Rejection)> {
    replica.rejections().into_iter().filter(|(id, _)| id.model() == model).collect()
}

/// Writes a record (new or edited) into the log of its year as one change,
/// after checking it as the server will. Returns the document written.
pub fn save_record(replica: &mut Replica, model: ModelId, record: &Record, now: Timestamp) -> Result<DocId, SaveError> {
    let year = record.occurred_on.year();
    let id = DocId::log(model, year).map_err(|_| SaveError::BadYear)?;
    replica.edit(id, now, |doc| {
        schema::init_log(doc, model, year)?;
        schema::put_record(doc, record)?;
        schema::read_log_records(&*doc, &id, [record.id.to_string()])?;
        Ok::<_, SaveError>(())
    })?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kheo_shared::ids::RecordId;
    use kheo_shared::testdata;

    fn phone_with_model() -> (Replica, ModelId) {
        let mut phone = Replica::new(automerge::ActorId::random());
        let model = ModelId::new_random();
        let profile = testdata::model(model, "QNA.TK.TT");
        phone.edit(DocId::Model(model), Timestamp(0), |d| schema::put_model(d, &profile)).unwrap();
        (phone, model)
    }

    #[test]
    fn records_are_listed_newest_first_across_years_and_filtered() {
        let (mut phone, model) = phone_with_model();
        let a = testdata::patrol(RecordId::new_random(), "2024-12-31", 2);
        let b = testdata::meeting(RecordId::new_random(), "2025-01-02", 30);
        let c = testdata::patrol(RecordId::new_random(), "2025-01-01", 0);
        for r in [&a, &b, &c] {
            save_record(&mut phone, model, r, Timestamp(1)).unwrap();
        }
        let all = records(&phone, model, Filter::default());
        assert_eq!(all.iter().map(|r| r.id).collect::<Vec<_>>(), vec![b.id, c.id, a.id]);
        let patrols = records(&phone, model, Filter { kind: Some(RecordKind::Patrol), ..Filter::default() });
        assert_eq!(patrols.len(), 2);
        let jan = records(&phone, model, Filter { month: Some((2025, 1)), ..Filter::default() });
        assert_eq!(jan.len(), 2);
        assert_eq!(months(&phone, model), vec![(2025, 1), (2024, 12)]);
        assert_eq!(models(&phone).len(), 1);
        assert_eq!(record_count(&phone, model), 3);
        let log = ModelLog::read(&mut phone, model);
        assert_eq!(ModelLog::records(&phone, &log.entries), all, "the same records in the same order");
        assert_eq!(log.months(), months(&phone, model));
        assert_eq!(log.unsynced.len(), 3, "nothing was synced");
        let filter = Filter { kind: Some(RecordKind::Patrol), ..Filter::default() };
        assert_eq!(ModelLog::records(&phone, log.filtered(&filter)), patrols);
    }

    #[test]
    fn deleted_records_are_hidden_unless_asked_for() {
        let (mut phone, model) = phone_with_model();
        let mut r = testdata::meeting(RecordId::new_random(), "2025-03-01", 10);
        save_record(&mut phone, model, &r, Timestamp(1)).unwrap();
        r.deleted = true;
        save_record(&mut phone, model, &r, Timestamp(2)).unwrap();
        assert!(records(&phone, model, Filter::default()).is_empty());
        assert_eq!(record_count(&phone, model), 0);
        assert!(ModelLog::read(&mut phone, model).entries.is_empty());
        assert_eq!(records(&phone, model, Filter { include_deleted: true, ..Filter::default() }).len(), 1);
        assert!(record(&phone, model, r.id).is_some_and(|r| r.deleted));
    }

    #[test]
    fn an_invalid_record_is_refused_and_leaves_the_log_unchanged() {
        let (mut phone, model) = phone_with_model();
        let ok = testdata::meeting(RecordId::new_random(), "2025-03-01", 10);
        let log = save_record(&mut phone, model, &ok, Timestamp(1)).unwrap();
        let heads = phone.heads(&log);
        let mut bad = testdata::meeting(RecordId::new_random(), "2025-03-02", 10);
        bad.note = "x".repeat(schema::limits::LONG_TEXT + 1);
        assert!(matches!(save_record(&mut phone, model, &bad, Timestamp(2)), Err(SaveError::Invalid(_))));
        assert_eq!(phone.heads(&log), heads);
        assert_eq!(records(&phone, model, Filter::default()).len(), 1);
    }

    #[test]
    fn a_model_not_yet_received_is_not_listed() {
        let mut phone = Replica::new(automerge::ActorId::random());
        let model = ModelId::new_random();
        phone.edit(DocId::Model(model), Timestamp(0), |_| Ok::<_, WriteError>(())).unwrap();
        assert!(models(&phone).is_empty());
    }

    #[test]
    fn the_photos_to_send_are_the_live_ones_of_live_records_once_each() {
        use kheo_shared::evidence::AttachmentId;
        let (mut phone, model) = phone_with_model();
        let mut a = testdata::patrol(RecordId::new_random(), "2025-03-01", 0);
        let removed = kheo_shared::evidence::Attachment { deleted: true, ..testdata::photo(2, 900) };
        for photo in [testdata::photo(1, 1000), removed, testdata::photo(3, 800)] {
            a.attachments.insert(AttachmentId::new_random(), photo);
        }
        // The same photo on two records is one upload.
        let mut b = testdata::meeting(RecordId::new_random(), "2026-01-02", 5);
        b.attachments.insert(AttachmentId::new_random(), testdata::photo(1, 1000));
        let mut gone = testdata::meeting(RecordId::new_random(), "2025-01-03", 5);
        gone.attachments.insert(AttachmentId::new_random(), testdata::photo(4, 700));
        gone.deleted = true;
        for r in [&a, &b, &gone] {
            save_record(&mut phone, model, r, Timestamp(1)).unwrap();
        }
        let mut seeds: Vec<u32> = photos(&phone).iter().map(|p| p.bytes).collect();
        seeds.sort();
        assert_eq!(seeds, vec![800, 1000]);
    }
}

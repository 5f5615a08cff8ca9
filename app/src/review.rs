//! Commune review of the records on the phone: the queue (every record of
//! every model the phone holds, which is already the reviewer's scope),
//! its filters, and the decision (approve, or return with a comment)
//! written into each record's review block. No browser API here, so it is
//! tested natively beside the code; [`apply`] is the device-level wrapper
//! the screen calls, which saves each log it changed.

use std::collections::BTreeMap;

use automerge::ReadDoc;
use kheo_shared::client::Replica;
use kheo_shared::codes::{RecordKind, ReviewState};
use kheo_shared::ids::{DocId, ModelId, RecordId};
use kheo_shared::record::{Record, Review};
use kheo_shared::scalars::{Day, Timestamp};
use kheo_shared::schema::conflicts::{FieldConflict, record_conflicts};
use kheo_shared::schema::{self, SchemaError, WriteError};

use crate::catalog;
use crate::device::{self, WriteFailure};
use crate::org::Org;

/// Where a record stands for the reviewer: the review block's state, with
/// an approval older than the record's last edit told apart (the same four
/// codes as the server's review queue).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum QueueState {
    New,
    Approved,
    Returned,
    EditedAfterApproval,
}

impl QueueState {
    pub const ALL: [QueueState; 4] =
        [QueueState::New, QueueState::Approved, QueueState::Returned, QueueState::EditedAfterApproval];

    pub fn of(record: &Record) -> QueueState {
        match record.review.state {
            ReviewState::New => QueueState::New,
            ReviewState::Returned => QueueState::Returned,
            ReviewState::Approved if edited_since_review(record) => QueueState::EditedAfterApproval,
            ReviewState::Approved => QueueState::Approved,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            QueueState::New => "new",
            QueueState::Approved => "approved",
            QueueState::Returned => "returned",
            QueueState::EditedAfterApproval => "edited_after_approval",
        }
    }

    pub fn from_code(code: &str) -> Option<QueueState> {
        QueueState::ALL.into_iter().find(|s| s.code() == code)
    }

    /// Whether a record in this state passes a filter on `wanted`. A record
    /// returned and fixed since awaits review again ("Chờ duyệt" shows it,
    /// with its "fixed" mark), as well as standing returned.
    pub fn passes(self, wanted: QueueState, record: &Record) -> bool {
        self == wanted || (wanted == QueueState::New && self == QueueState::Returned && edited_since_review(record))
    }
}

/// Whether the record changed after its last review (approval or return).
pub fn edited_since_review(record: &Record) -> bool {
    record.review.reviewed_at.is_some_and(|at| record.updated_at > at)
}

/// Which records the queue shows; every filter is optional (the screen
/// opens on [`QueueFilter::awaiting`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueFilter {
    /// A unit (typically a village): models of that unit and below. A
    /// commune-level model belongs to the commune.
    pub unit: Option<String>,
    pub model: Option<ModelId>,
    pub kind: Option<RecordKind>,
    /// First day of the period, inclusive.
    pub from: Option<Day>,
    /// Last day of the period, inclusive.
    pub to: Option<Day>,
    pub state: Option<QueueState>,
}

impl QueueFilter {
    /// The records awaiting a decision: what a reviewer opens the queue for.
    pub fn awaiting() -> QueueFilter {
        QueueFilter { state: Some(QueueState::New), ..QueueFilter::default() }
    }
}

/// The server's review queue for the same filter, a page at a time: what
/// a device whose rule leaves part of its scope on the server
/// ([`crate::held`]) reads to fetch the logs it lacks. "Awaiting review"
/// also shows returned records fixed since, which the server lists as
/// returned, so it asks for both.
pub fn server_queries(filter: &QueueFilter, limit: usize) -> Vec<String> {
    let mut common = vec![format!("limit={limit}")];
    if let Some(unit) = &filter.unit {
        common.push(format!("unit={}", query_safe(unit)));
    }
    if let Some(model) = filter.model {
        common.push(format!("model={model}"));
    }
    if let Some(kind) = filter.kind {
        common.push(format!("kind={}", kheo_shared::codes::Code::code(kind)));
    }
    if let Some(from) = filter.from {
        common.push(format!("from={from}"));
    }
    if let Some(to) = filter.to {
        common.push(format!("to={to}"));
    }
    let states: Vec<Option<&str>> = match filter.state {
        None => vec![None],
        Some(QueueState::New) => vec![Some("new"), Some("returned")],
        Some(s) => vec![Some(s.code())],
    };
    states
        .into_iter()
        .map(|state| {
            let mut query = common.clone();
            query.extend(state.map(|s| format!("state={s}")));
            format!("/api/v1/review/queue?{}", query.join("&"))
        })
        .collect()
}

/// Unit codes are letters, digits and dots; anything else is dropped
/// rather than sent unescaped.
fn query_safe(code: &str) -> String {
    code.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')).collect()
}

/// The logs holding the records the server's queue names (by model id and
/// day) that `holds` says the device lacks: newest first, each once.
pub fn logs_lacking<'a>(
    named: impl IntoIterator<Item = (&'a str, &'a str)>,
    holds: impl Fn(&DocId) -> bool,
) -> Vec<DocId> {
    let mut out = Vec::new();
    for (model, day) in named {
        let Ok(model) = model.parse::<ModelId>() else { continue };
        let Some(day) = Day::parse(day) else { continue };
        let Ok(log) = DocId::log(model, day.year()) else { continue };
        if !holds(&log) && !out.contains(&log) {
            out.push(log);
        }
    }
    out
}

/// One record in the queue, with where it comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueItem {
    /// The yearly log holding the record.
    pub log: DocId,
    pub model: ModelId,
    /// Empty when the model's profile is not on the phone (yet).
    pub model_name: String,
    /// The model's unit code; empty when its profile is not on the phone.
    pub unit: String,
    pub state: QueueState,
    /// Fields two phones changed concurrently, with every value.
    pub conflicts: Vec<FieldConflict>,
    pub record: Record,
}

/// Bookkeeping fields every edit writes: two phones editing different
/// fields at once both set them, which is no disagreement worth showing.
const BOOKKEEPING: [&str; 2] = ["updated_at", "review/reviewed_at"];

/// The records of every model on the phone that pass `filter`, deleted
/// ones left out, newest first (by day, then by when they were logged).
/// Logs that fail to read are skipped (the model page reports them).
pub fn queue(replica: &Replica, org: &Org, filter: &QueueFilter) -> Vec<QueueItem> {
    let profiles: BTreeMap<ModelId, (String, String)> =
        catalog::models(replica).into_iter().map(|m| (m.id, (m.name, m.unit))).collect();
    let mut out = Vec::new();
    for id in replica.doc_ids() {
        let DocId::Log { model, .. } = *id else { continue };
        if filter.model.is_some_and(|m| m != model) {
            continue;
        }
        let (model_name, unit) = profiles.get(&model).cloned().unwrap_or_default();
        if filter.unit.as_deref().is_some_and(|scope| !org.within(&unit, scope)) {
            continue;
        }
        let Some(doc) = replica.doc(id) else { continue };
        if doc.length(automerge::ROOT) == 0 {
            continue;
        }
        let Ok(log) = schema::read_log(doc, id) else { continue };
        for record in log.records.into_values() {
            let state = QueueState::of(&record);
            let keep = !record.deleted
                && filter.kind.is_none_or(|k| record.kind() == k)
                && filter.from.is_none_or(|d| record.occurred_on >= d)
                && filter.to.is_none_or(|d| record.occurred_on <= d)
                && filter.state.is_none_or(|s| state.passes(s, &record));
            if !keep {
                continue;
            }
            let conflicts = record_conflicts(doc, &record.id.to_string())
                .into_iter()
                .filter(|c| !BOOKKEEPING.contains(&c.path.as_str()))
                .collect();
            out.push(QueueItem {
                log: *id,
                model,
                model_name: model_name.clone(),
                unit: unit.clone(),
                state,
                conflicts,
                record,
            });
        }
    }
    out.sort_by(|a, b| {
        b.record
            .occurred_on
            .cmp(&a.record.occurred_on)
            .then(b.record.created_at.cmp(&a.record.created_at))
            .then(a.record.id.cmp(&b.record.id))
    });
    out
}

/// The choices of the village filter, `(code, name)`: the reviewer's unit
/// first, then every unit under it in the tree (its villages, before and
/// after a reform) and any other unit a model on the phone belongs to, by
/// name. A name two units share says which unit each one lies under.
pub fn units(replica: &Replica, org: &Org, scope: &str) -> Vec<(String, String)> {
    let mut codes: Vec<String> =
        org.units().iter().filter(|u| u.code != scope && org.within(&u.code, scope)).map(|u| u.code.clone()).collect();
    codes.extend(catalog::models(replica).into_iter().map(|m| m.unit).filter(|u| u != scope));
    codes.sort();
    codes.dedup();
    let mut out: Vec<(String, String)> = codes
        .into_iter()
        .map(|code| {
            let name = org.name(&code);
            (code, name)
        })
        .collect();
    out.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
    let shared: Vec<bool> =
        out.iter().map(|(code, name)| out.iter().any(|(other, n)| n == name && other != code)).collect();
    for ((code, name), shared) in out.iter_mut().zip(shared) {
        if let Some(parent) = shared.then(|| org.unit(code).and_then(|u| u.parent.clone())).flatten() {
            *name = format!("{name} – {}", org.name(&parent));
        }
    }
    if org.unit(scope).is_some() {
        out.insert(0, (scope.to_owned(), org.name(scope)));
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Approve,
    Return,
}

impl Verdict {
    fn state(self) -> ReviewState {
        match self {
            Verdict::Approve => ReviewState::Approved,
            Verdict::Return => ReviewState::Returned,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    #[error("nothing is selected")]
    NothingSelected,
    #[error("a record is returned with a comment saying what to fix")]
    CommentRequired,
    #[error("record {0} is not on this phone")]
    Missing(RecordId),
    #[error("{0}")]
    Invalid(#[from] SchemaError),
    #[error("{0}")]
    Write(#[from] WriteError),
}

/// The records to decide on, grouped by the log holding them, after the
/// checks that need no writing: something is selected, a return carries a
/// comment, and every record is still on the phone.
pub fn plan(
    replica: &Replica,
    selected: &[(DocId, RecordId)],
    verdict: Verdict,
    comment: &str,
) -> Result<BTreeMap<DocId, Vec<RecordId>>, DecideError> {
    if selected.is_empty() {
        return Err(DecideError::NothingSelected);
    }
    if verdict == Verdict::Return && comment.trim().is_empty() {
        return Err(DecideError::CommentRequired);
    }
    let mut by_log: BTreeMap<DocId, Vec<RecordId>> = BTreeMap::new();
    for (log, id) in selected {
        let present = replica.doc(log).is_some_and(|doc| {
            matches!(doc.get(automerge::ROOT, id.to_string().as_str()), Ok(Some((automerge::Value::Object(_), _))))
        });
        if !present {
            return Err(DecideError::Missing(*id));
        }
        let ids = by_log.entry(*log).or_default();
        if !ids.contains(id) {
            ids.push(*id);
        }
    }
    Ok(by_log)
}

/// Writes the decision into the review block of the given records of one
/// log, as one change. Each record is read from the document as it is now,
/// and only its review block is written: an edit that arrived meanwhile is
/// kept, and fields two phones changed at once stay in conflict for the
/// reviewer to see (writing them back, even unchanged, would settle them).
/// A record whose review would stay as it is (approved again with the same
/// comment and not edited since) is left alone. Returns how many records
/// changed.
pub fn decide_in_log(
    replica: &mut Replica,
    log: DocId,
    ids: &[RecordId],
    verdict: Verdict,
    comment: &str,
    reviewer: &str,
    now: Timestamp,
) -> Result<usize, DecideError> {
    let comment = comment.trim();
    replica.edit(log, now, |doc| {
        let current = schema::read_log_records(&*doc, &log, ids.iter().map(RecordId::to_string))?;
        let mut changed = 0;
        for record in current {
            let same = record.review.state == verdict.state()
                && record.review.comment == comment
                && !edited_since_review(&record);
            if same {
                continue;
            }
            let review = Review {
                state: verdict.state(),
                reviewer: Some(reviewer.to_owned()),
                // An approval covers the record as read, even when this
                // phone's clock is behind the one that last edited it.
                reviewed_at: Some(now.max(record.updated_at)),
                comment: comment.to_owned(),
            };
            let key = record.id.to_string();
            let Ok(Some((automerge::Value::Object(_), obj))) = doc.get(automerge::ROOT, key.as_str()) else {
                return Err(DecideError::Missing(record.id));
            };
            autosurgeon::reconcile_prop(doc, obj, "review", &review).map_err(WriteError::from)?;
            changed += 1;
        }
        schema::read_log_records(&*doc, &log, ids.iter().map(RecordId::to_string))?;
        Ok::<_, DecideError>(changed)
    })
}

/// Decides on the selected records in memory (one change per log touched).
/// Returns how many records changed and the logs to save.
pub fn decide(
    replica: &mut Replica,
    selected: &[(DocId, RecordId)],
    verdict: Verdict,
    comment: &str,
    reviewer: &str,
    now: Timestamp,
) -> Result<(usize, Vec<DocId>), DecideError> {
    let plan = plan(replica, selected, verdict, comment)?;
    let mut changed = 0;
    for (log, ids) in &plan {
        changed += decide_in_log(replica, *log, ids, verdict, comment, reviewer, now)?;
    }
    Ok((changed, plan.into_keys().collect()))
}

/// Why a decision was not (wholly) saved.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Decide(#[from] DecideError),
    #[error(transparent)]
    Write(#[from] WriteFailure),
}

/// A decision that stopped part way: the logs before the failing one are
/// saved (each log is saved whole or not at all).
#[derive(Debug)]
pub struct Stopped {
    /// Records whose decision is saved.
    pub saved: usize,
    pub cause: ApplyError,
}

/// Decides on the selected records as the logged-in reviewer, saving each
/// log it changes before the next. Returns how many records changed.
pub fn apply(selected: &[(DocId, RecordId)], verdict: Verdict, comment: &str) -> Result<usize, Stopped> {
    let stopped = |saved, cause: ApplyError| Stopped { saved, cause };
    device::with(|d| {
        let plan = plan(&d.replica, selected, verdict, comment).map_err(|e| stopped(0, e.into()))?;
        let reviewer = d.session.account.username.clone();
        let now = device::now();
        let mut saved = 0;
        for (log, ids) in plan {
            let changed = decide_in_log(&mut d.replica, log, &ids, verdict, comment, &reviewer, now)
                .map_err(|e| stopped(saved, e.into()))?;
            if changed > 0 {
                device::persist(d, log).map_err(|e| stopped(saved, e.into()))?;
            }
            saved += changed;
        }
        Ok(saved)
    })
    .unwrap_or(Err(stopped(0, WriteFailure::NoSession.into())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::org::Unit;
    use kheo_shared::testdata;

    const COMMUNE: &str = "QNA.TK.TT";
    const KIM_DOI: &str = "QNA.TK.TT.KD";
    const VILLAGE_2: &str = "QNA.TK.TT.T2";
    /// A village with no model on the phone.
    const MY_CANG: &str = "QNA.TK.TT.MC";
    /// Kim Đới of a neighbouring commune: the same name under another parent.
    const OLD_KIM_DOI: &str = "QNA.X.KD";

    fn org() -> Org {
        let unit = |code: &str, name: &str, parent: Option<&str>| Unit {
            code: code.into(),
            name: name.into(),
            level: if parent.is_some() { "village" } else { "commune" }.into(),
            parent: parent.map(str::to_owned),
            valid_to: None,
        };
        Org::new(vec![
            unit(COMMUNE, "Xã Tam Thăng", None),
            unit(KIM_DOI, "Thôn Kim Đới", Some(COMMUNE)),
            unit(VILLAGE_2, "Thôn 2", Some(COMMUNE)),
            unit(MY_CANG, "Thôn Mỹ Cang", Some(COMMUNE)),
            unit("QNA.X", "Xã Tam Thăng (mới)", None),
            unit(OLD_KIM_DOI, "Thôn Kim Đới", Some("QNA.X")),
        ])
    }

    fn add_model(phone: &mut Replica, unit: &str, name: &str) -> ModelId {
        let model = ModelId::new_random();
        let mut profile = testdata::model(model, unit);
        profile.name = name.into();
        phone.edit(DocId::Model(model), Timestamp(0), |d| schema::put_model(d, &profile)).unwrap();
        model
    }

    fn add(phone: &mut Replica, model: ModelId, record: &Record) -> (DocId, RecordId) {
        (catalog::save_record(phone, model, record, Timestamp(1)).unwrap(), record.id)
    }

    /// Seconds after the records of `testdata` were made.
    fn at(seconds: i64) -> Timestamp {
        Timestamp(1_700_000_000_000 + seconds * 1_000)
    }

    fn ids(items: &[QueueItem]) -> Vec<RecordId> {
        items.iter().map(|i| i.record.id).collect()
    }

    fn reread(phone: &Replica, model: ModelId, id: RecordId) -> Record {
        catalog::record(phone, model, id).unwrap()
    }

    #[test]
    fn the_queue_holds_every_model_newest_first_and_filters() {
        let mut phone = Replica::new(automerge::ActorId::random());
        let team = add_model(&mut phone, KIM_DOI, "Tổ tự quản Kim Đới");
        let turmeric = add_model(&mut phone, VILLAGE_2, "Nghệ đen thôn 2");
        let commune = add_model(&mut phone, COMMUNE, "Hộ khá giúp hộ nghèo");
        let a = testdata::patrol(RecordId::new_random(), "2024-12-31", 1);
        let b = testdata::production(RecordId::new_random(), "2025-03-02", 60_000_000);
        let c = testdata::meeting(RecordId::new_random(), "2025-02-10", 30);
        let mut gone = testdata::patrol(RecordId::new_random(), "2025-04-01", 0);
        gone.deleted = true;
        add(&mut phone, team, &a);
        add(&mut phone, turmeric, &b);
        add(&mut phone, commune, &c);
        add(&mut phone, team, &gone);
        let org = org();

        let all = queue(&phone, &org, &QueueFilter::default());
        assert_eq!(ids(&all), vec![b.id, c.id, a.id], "newest first, the deleted record left out");
        assert!(all.iter().all(|i| i.state == QueueState::New && i.conflicts.is_empty()));
        assert_eq!(all[0].model_name, "Nghệ đen thôn 2");
        assert_eq!(all[0].unit, VILLAGE_2);

        let at = |f: QueueFilter| ids(&queue(&phone, &org, &f));
        assert_eq!(at(QueueFilter { unit: Some(KIM_DOI.into()), ..Default::default() }), vec![a.id]);
        // The commune holds its own models and its villages'.
        assert_eq!(at(QueueFilter { unit: Some(COMMUNE.into()), ..Default::default() }).len(), 3);
        assert_eq!(at(QueueFilter { model: Some(commune), ..Default::default() }), vec![c.id]);
        assert_eq!(at(QueueFilter { kind: Some(RecordKind::Patrol), ..Default::default() }), vec![a.id]);
        let feb = QueueFilter { from: Day::parse("2025-02-01"), to: Day::parse("2025-03-02"), ..Default::default() };
        assert_eq!(at(feb), vec![b.id, c.id], "both ends of the period are inclusive");
        assert_eq!(at(QueueFilter { state: Some(QueueState::Approved), ..Default::default() }), vec![]);

        let names: Vec<String> = units(&phone, &org, COMMUNE).into_iter().map(|(_, name)| name).collect();
        assert_eq!(
            names,
            vec!["Xã Tam Thăng", "Thôn 2", "Thôn Kim Đới", "Thôn Mỹ Cang"],
            "every village, models or not"
        );
        let old = QueueFilter { unit: Some(OLD_KIM_DOI.into()), ..Default::default() };
        assert!(at(old).is_empty());
    }

    #[test]
    fn a_village_name_two_communes_share_says_which_commune() {
        let phone = Replica::new(automerge::ActorId::random());
        let unit = |code: &str, name: &str, parent: Option<&str>| Unit {
            code: code.into(),
            name: name.into(),
            level: "village".into(),
            parent: parent.map(str::to_owned),
            valid_to: None,
        };
        let org = Org::new(vec![
            unit("P", "Tỉnh Quảng Nam", None),
            unit("P.A", "Xã Tam Thăng", Some("P")),
            unit("P.A.KD", "Thôn Kim Đới", Some("P.A")),
            unit("P.B", "Xã Tam Thăng (mới)", Some("P")),
            unit("P.B.KD", "Thôn Kim Đới", Some("P.B")),
        ]);
        let names: Vec<String> = units(&phone, &org, "P").into_iter().map(|(_, name)| name).collect();
        assert_eq!(
            names,
            vec![
                "Tỉnh Quảng Nam",
                "Thôn Kim Đới – Xã Tam Thăng",
                "Thôn Kim Đới – Xã Tam Thăng (mới)",
                "Xã Tam Thăng",
                "Xã Tam Thăng (mới)"
            ]
        );
    }

    #[test]
    fn approving_and_returning_write_the_review_block_of_every_selected_record() {
        let mut phone = Replica::new(automerge::ActorId::random());
        let team = add_model(&mut phone, KIM_DOI, "Tổ tự quản Kim Đới");
        let other = add_model(&mut phone, VILLAGE_2, "Nghệ đen thôn 2");
        let a = testdata::patrol(RecordId::new_random(), "2025-01-05", 1);
        let b = testdata::meeting(RecordId::new_random(), "2025-01-06", 30);
        let c = testdata::production(RecordId::new_random(), "2024-11-01", 1_000);
        let d = testdata::meeting(RecordId::new_random(), "2025-01-07", 12);
        let selected = [add(&mut phone, team, &a), add(&mut phone, team, &b), add(&mut phone, other, &c)];
        let untouched = add(&mut phone, team, &d);
        let heads_before: Vec<_> = [selected[0].0, selected[2].0].iter().map(|l| phone.heads(l)).collect();

        let (changed, logs) = decide(&mut phone, &selected, Verdict::Approve, "  Tốt  ", "canbo.xa", at(5)).unwrap();
        assert_eq!(changed, 3);
        assert_eq!(logs.len(), 2, "one log per model and year touched");
        for (log, before) in [selected[0].0, selected[2].0].iter().zip(heads_before) {
            let after = phone.heads(log);
            assert_eq!(after.len(), 1);
            assert_ne!(after, before, "one new change on each log");
        }
        for (model, id) in [(team, a.id), (team, b.id), (other, c.id)] {
            let r = reread(&phone, model, id);
            assert_eq!(r.review.state, ReviewState::Approved);
            assert_eq!(r.review.reviewer.as_deref(), Some("canbo.xa"));
            assert_eq!(r.review.reviewed_at, Some(at(5)));
            assert_eq!(r.review.comment, "Tốt");
        }
        assert_eq!(reread(&phone, team, untouched.1).review, Review::new_unreviewed());

        // Approving again with nothing new changes nothing.
        let heads = phone.heads(&selected[0].0);
        let (changed, _) = decide(&mut phone, &selected[..2], Verdict::Approve, "Tốt", "canbo.xa", at(6)).unwrap();
        assert_eq!(changed, 0);
        assert_eq!(phone.heads(&selected[0].0), heads);

        // A return needs a comment, and replaces the approval.
        let err = decide(&mut phone, &selected[..1], Verdict::Return, "  ", "canbo.xa", at(7));
        assert!(matches!(err, Err(DecideError::CommentRequired)));
        assert_eq!(phone.heads(&selected[0].0), heads, "a refused decision writes nothing");
        decide(&mut phone, &selected[..1], Verdict::Return, "Thiếu địa bàn", "canbo.xa", at(7)).unwrap();
        let r = reread(&phone, team, a.id);
        assert_eq!(r.review.state, ReviewState::Returned);
        assert_eq!(r.review.comment, "Thiếu địa bàn");
        let org = org();
        let returned = QueueFilter { state: Some(QueueState::Returned), ..Default::default() };
        assert_eq!(ids(&queue(&phone, &org, &returned)), vec![a.id]);
        let awaiting = |phone: &Replica| ids(&queue(phone, &org, &QueueFilter::awaiting()));
        assert!(!awaiting(&phone).contains(&a.id), "returned, it waits for its volunteer, not the reviewer");
        // Fixed by its volunteer, it awaits review again, and still stands returned.
        let mut fixed = reread(&phone, team, a.id);
        fixed.note = "Đã bổ sung địa bàn".into();
        fixed.updated_at = at(9);
        catalog::save_record(&mut phone, team, &fixed, at(9)).unwrap();
        assert_eq!(awaiting(&phone), vec![d.id, a.id]);
        assert_eq!(ids(&queue(&phone, &org, &returned)), vec![a.id]);

        assert!(matches!(
            decide(&mut phone, &[], Verdict::Approve, "", "canbo.xa", at(8)),
            Err(DecideError::NothingSelected)
        ));
        let missing = (selected[0].0, RecordId::new_random());
        assert!(matches!(
            decide(&mut phone, &[missing], Verdict::Approve, "", "canbo.xa", at(8)),
            Err(DecideError::Missing(_))
        ));
    }

    #[test]
    fn a_record_edited_after_approval_shows_it_and_approving_again_clears_it() {
        let mut phone = Replica::new(automerge::ActorId::random());
        let team = add_model(&mut phone, KIM_DOI, "Tổ tự quản Kim Đới");
        let a = testdata::patrol(RecordId::new_random(), "2025-01-05", 1);
        let sel = [add(&mut phone, team, &a)];
        decide(&mut phone, &sel, Verdict::Approve, "", "canbo.xa", at(5)).unwrap();
        let org = org();
        assert_eq!(queue(&phone, &org, &QueueFilter::default())[0].state, QueueState::Approved);

        // The volunteer fixes a detail later: the approval no longer covers it.
        let mut edited = reread(&phone, team, a.id);
        edited.note = "Bổ sung: 2 người đến muộn".into();
        edited.updated_at = at(9);
        catalog::save_record(&mut phone, team, &edited, at(9)).unwrap();
        let item = &queue(&phone, &org, &QueueFilter::default())[0];
        assert_eq!(item.state, QueueState::EditedAfterApproval);
        assert_eq!(item.state.code(), "edited_after_approval");
        assert_eq!(QueueState::from_code("edited_after_approval"), Some(QueueState::EditedAfterApproval));

        // Approving again covers the edit, even when the reviewer's clock is behind.
        let (changed, _) = decide(&mut phone, &sel, Verdict::Approve, "", "canbo.xa", at(8)).unwrap();
        assert_eq!(changed, 1);
        let item = &queue(&phone, &org, &QueueFilter::default())[0];
        assert_eq!(item.state, QueueState::Approved);
        assert_eq!(item.record.note, "Bổ sung: 2 người đến muộn", "the decision keeps the edit");
    }

    #[test]
    fn a_decision_keeps_an_edit_that_arrived_since_the_queue_was_read() {
        let mut staff = Replica::new(automerge::ActorId::random());
        let team = add_model(&mut staff, KIM_DOI, "Tổ tự quản Kim Đới");
        let a = testdata::meeting(RecordId::new_random(), "2025-01-05", 30);
        let sel = [add(&mut staff, team, &a)];
        let org = org();
        let shown = queue(&staff, &org, &QueueFilter::default());
        assert_eq!(shown[0].record.note, a.note);

        // A sync brings the volunteer's fix before the reviewer taps "approve".
        let mut fixed = a.clone();
        fixed.note = "Đã sửa số người".into();
        catalog::save_record(&mut staff, team, &fixed, at(2)).unwrap();
        decide(&mut staff, &sel, Verdict::Approve, "", "canbo.xa", at(3)).unwrap();
        let r = reread(&staff, team, a.id);
        assert_eq!(r.note, "Đã sửa số người");
        assert_eq!(r.review.state, ReviewState::Approved);
    }

    #[test]
    fn concurrent_edits_of_a_field_show_every_value_and_survive_a_decision() {
        let mut a = Replica::new(automerge::ActorId::random());
        let team = add_model(&mut a, KIM_DOI, "Tổ tự quản Kim Đới");
        let r = testdata::meeting(RecordId::new_random(), "2025-01-05", 30);
        let (log, _) = add(&mut a, team, &r);
        let (model_doc, log_doc) = (a.export(&DocId::Model(team)).unwrap().0, a.export(&log).unwrap().0);
        let mut b = Replica::new(automerge::ActorId::random());
        b.edit(DocId::Model(team), Timestamp(0), |d| d.load_incremental(&model_doc)).unwrap();
        b.edit(log, Timestamp(0), |d| d.load_incremental(&log_doc)).unwrap();

        let (mut ra, mut rb) = (r.clone(), r.clone());
        ra.note = "30 người".into();
        ra.updated_at = at(10);
        rb.note = "35 người".into();
        rb.updated_at = at(11);
        catalog::save_record(&mut a, team, &ra, at(10)).unwrap();
        catalog::save_record(&mut b, team, &rb, at(11)).unwrap();
        let from_b = b.export(&log).unwrap().0;
        a.edit(log, at(12), |d| d.load_incremental(&from_b)).unwrap();

        let org = org();
        let item = queue(&a, &org, &QueueFilter::default()).remove(0);
        assert_eq!(item.conflicts.len(), 1, "only the note, not the bookkeeping: {:?}", item.conflicts);
        assert_eq!(item.conflicts[0].path, "note");
        let mut values = item.conflicts[0].values.clone();
        values.sort();
        assert_eq!(values, vec!["30 người", "35 người"]);

        // Reviewing touches the review block only: the disagreement stays visible.
        decide(&mut a, &[(log, r.id)], Verdict::Approve, "", "canbo.xa", at(20)).unwrap();
        let item = queue(&a, &org, &QueueFilter::default()).remove(0);
        assert_eq!(item.state, QueueState::Approved);
        assert_eq!(item.conflicts.len(), 1);
    }

    #[test]
    fn the_server_queue_is_asked_for_what_the_filter_shows_and_names_the_logs_lacking() {
        let model = ModelId::new_random();
        let filter = QueueFilter { unit: Some("QNA.TK.TT".into()), ..QueueFilter::awaiting() };
        assert_eq!(
            server_queries(&filter, 500),
            [
                "/api/v1/review/queue?limit=500&unit=QNA.TK.TT&state=new",
                "/api/v1/review/queue?limit=500&unit=QNA.TK.TT&state=returned"
            ],
            "awaiting review includes returned records fixed since"
        );
        let all = QueueFilter { model: Some(model), ..QueueFilter::default() };
        assert_eq!(server_queries(&all, 10), [format!("/api/v1/review/queue?limit=10&model={model}")]);
        let (m, held) = (model.to_string(), DocId::log(model, 2026).unwrap());
        let named =
            [(m.as_str(), "2026-05-01"), (m.as_str(), "2024-03-01"), (m.as_str(), "2024-01-01"), ("x", "2024-01-01")];
        assert_eq!(logs_lacking(named, |id| *id == held), [DocId::log(model, 2024).unwrap()]);
    }
}

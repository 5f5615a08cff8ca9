//! Rows as both backends read them (sqlx `FromRow`, by column name), and the
//! rules that turn stored values into the directory's and the reports'
//! types. Each backend's SQL selects these columns under these names; what
//! a stored value means is decided here, once.

use std::str::FromStr;

use kheo_shared::codes::{Code, RecordKind, Role};
use kheo_shared::ids::DocId;
use kheo_shared::scalars::Day;
use kheo_shared::schema::conflicts::FieldConflict;

use super::directory::{AccountRow, DirectoryError, QUARANTINE_BYTES_PER_DEVICE, QuarantineEntry};
use super::reports::{IncidentFacts, RecordDetails, RecordFacts, ReviewItem};
use super::{StoreError, Version};
use crate::org::{Level, Succession, Unit};
use crate::read_model::{IncidentRow, RecordRow};

pub(super) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

pub(super) fn corrupt(what: &str, value: &str) -> DirectoryError {
    DirectoryError::Store(StoreError::Corrupt(format!("stored {what} {value:?} is unreadable")))
}

/// A document's stored version, as the version queries read it.
#[derive(sqlx::FromRow)]
pub struct VersionRow {
    pub id: String,
    pub version: i64,
    pub writer: i64,
}

impl VersionRow {
    pub fn parse(self) -> Result<(DocId, Version), StoreError> {
        let id = DocId::from_str(&self.id).map_err(|_| StoreError::CorruptId(self.id))?;
        Ok((id, Version { n: self.version, writer: self.writer }))
    }
}

fn day(s: &str) -> Result<time::Date, DirectoryError> {
    Day::parse(s).map(|d| d.0).ok_or_else(|| corrupt("date", s))
}

pub(super) const ACCOUNT_COLUMNS: &str =
    "id, username, phone, display_name, role, unit, secret_hash, disabled, created_at";
pub(super) const DEVICE_COLUMNS: &str = "id, account, actor, label, created_at, last_seen, revoked_at";

#[derive(sqlx::FromRow)]
pub(super) struct AccountColumns {
    id: String,
    username: String,
    phone: Option<String>,
    display_name: String,
    role: String,
    unit: String,
    secret_hash: String,
    disabled: bool,
    created_at: i64,
}

impl TryFrom<AccountColumns> for AccountRow {
    type Error = DirectoryError;

    fn try_from(a: AccountColumns) -> Result<Self, DirectoryError> {
        Ok(AccountRow {
            role: Role::from_code(&a.role).ok_or_else(|| corrupt("role", &a.role))?,
            id: a.id,
            username: a.username,
            phone: a.phone,
            display_name: a.display_name,
            unit: a.unit,
            secret_hash: a.secret_hash,
            disabled: a.disabled,
            created_at: a.created_at,
        })
    }
}

pub(super) const UNIT_COLUMNS: &str = "code, name, level, parent, valid_from, valid_to";

#[derive(sqlx::FromRow)]
pub(super) struct UnitColumns {
    code: String,
    name: String,
    level: String,
    parent: Option<String>,
    valid_from: String,
    valid_to: Option<String>,
}

impl TryFrom<UnitColumns> for Unit {
    type Error = DirectoryError;

    fn try_from(u: UnitColumns) -> Result<Self, DirectoryError> {
        Ok(Unit {
            level: Level::from_str(&u.level).map_err(|_| corrupt("level", &u.level))?,
            valid_from: day(&u.valid_from)?,
            valid_to: u.valid_to.as_deref().map(day).transpose()?,
            code: u.code,
            name: u.name,
            parent: u.parent,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct SuccessionColumns {
    old: String,
    new: String,
    effective: String,
}

impl TryFrom<SuccessionColumns> for Succession {
    type Error = DirectoryError;

    fn try_from(s: SuccessionColumns) -> Result<Self, DirectoryError> {
        Ok(Succession { effective: day(&s.effective)?, old: s.old, new: s.new })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct ModelUnitColumns {
    model: String,
    unit: String,
}

impl TryFrom<ModelUnitColumns> for (kheo_shared::ids::ModelId, String) {
    type Error = DirectoryError;

    fn try_from(m: ModelUnitColumns) -> Result<Self, DirectoryError> {
        Ok((m.model.parse().map_err(|_| corrupt("model id", &m.model))?, m.unit))
    }
}

pub(super) const QUARANTINE_COLUMNS: &str = "id, at, device, account, doc_id, rule, message, changes";

#[derive(sqlx::FromRow)]
pub(super) struct QuarantineColumns {
    id: i64,
    at: i64,
    device: String,
    account: String,
    doc_id: String,
    rule: String,
    message: String,
    changes: Vec<u8>,
}

impl From<QuarantineColumns> for QuarantineEntry {
    fn from(q: QuarantineColumns) -> Self {
        QuarantineEntry {
            id: q.id,
            at: q.at,
            device: q.device,
            account: q.account,
            doc_id: q.doc_id,
            rule: q.rule,
            message: q.message,
            bytes: q.changes.len(),
            changes: q.changes,
        }
    }
}

/// What a refusal keeps when the device already has `kept` bytes in the
/// quarantine: past the budget it is still recorded, without its changes
/// (the phone keeps them, which is what keeps the data).
pub(super) fn quarantine_kept(kept: i64, e: &QuarantineEntry) -> (&[u8], String) {
    if kept.max(0) as usize + e.changes.len() > QUARANTINE_BYTES_PER_DEVICE {
        (&[], format!("{} (changes not kept: this device's quarantine is full; the phone keeps them)", e.message))
    } else {
        (&e.changes, e.message.clone())
    }
}

pub(super) const REVIEW_COLUMNS: &str = "record, model, kind, occurred_on, author, review_state, reviewer, \
                                         review_comment, updated_at, reviewed_at, conflicts";

#[derive(sqlx::FromRow)]
pub(super) struct ReviewColumns {
    record: String,
    model: String,
    kind: String,
    occurred_on: String,
    author: String,
    review_state: String,
    reviewer: Option<String>,
    review_comment: String,
    updated_at: i64,
    reviewed_at: Option<i64>,
    conflicts: String,
}

impl From<ReviewColumns> for ReviewItem {
    fn from(r: ReviewColumns) -> Self {
        // An approval older than the record's last edit no longer covers it.
        let edited = r.review_state == "approved" && r.reviewed_at.is_some_and(|at| r.updated_at > at);
        ReviewItem {
            record: r.record,
            model: r.model,
            kind: r.kind,
            occurred_on: r.occurred_on,
            author: r.author,
            state: if edited { "edited_after_approval".into() } else { r.review_state },
            reviewer: r.reviewer,
            comment: r.review_comment,
            updated_at: r.updated_at,
            conflicts: decode_conflicts(&r.conflicts),
        }
    }
}

/// How the read model keeps a record's conflicts: a JSON list.
fn encode_conflicts(conflicts: &[FieldConflict]) -> String {
    serde_json::to_string(conflicts).unwrap_or_else(|_| "[]".into())
}

fn decode_conflicts(stored: &str) -> Vec<FieldConflict> {
    serde_json::from_str(stored).unwrap_or_default()
}

/// How the read model keeps a record's incidents for the export: a JSON
/// list in position order (a deleted record keeps no `rm_incidents` rows,
/// yet the export still shows what it held).
fn encode_incidents(incidents: &[IncidentRow]) -> String {
    #[derive(serde::Serialize)]
    struct Stored<'a> {
        category: &'a str,
        outcome: &'a str,
        description: &'a str,
    }
    let stored: Vec<Stored<'_>> = incidents
        .iter()
        .map(|i| Stored { category: i.category, outcome: i.outcome, description: &i.description })
        .collect();
    serde_json::to_string(&stored).unwrap_or_else(|_| "[]".into())
}

pub(super) const RECORD_FACTS_COLUMNS: &str = "record, model, kind, occurred_on, review_state, author, deleted, note, \
     handed_to_police, supported_police, support_type, amount_vnd, workdays, revenue_vnd, attendees, patrol_start, \
     patrol_end, members_present, area, incident_list, giver, receiver_name, support_description, product, quantity, \
     quantity_unit, topic, photos";

#[derive(sqlx::FromRow)]
pub(super) struct RecordFactsColumns {
    record: String,
    model: String,
    kind: String,
    occurred_on: String,
    review_state: String,
    author: String,
    deleted: bool,
    note: String,
    handed_to_police: i64,
    supported_police: i64,
    support_type: Option<String>,
    amount_vnd: i64,
    workdays: f64,
    revenue_vnd: i64,
    attendees: i64,
    patrol_start: Option<String>,
    patrol_end: Option<String>,
    members_present: Option<i64>,
    area: Option<String>,
    incident_list: String,
    giver: Option<String>,
    receiver_name: Option<String>,
    support_description: Option<String>,
    product: Option<String>,
    quantity: Option<f64>,
    quantity_unit: Option<String>,
    topic: Option<String>,
    photos: String,
}

impl TryFrom<RecordFactsColumns> for RecordFacts {
    type Error = DirectoryError;

    fn try_from(r: RecordFactsColumns) -> Result<Self, DirectoryError> {
        let text = Option::unwrap_or_default;
        let details = match RecordKind::from_code(&r.kind).ok_or_else(|| corrupt("record kind", &r.kind))? {
            RecordKind::Patrol => RecordDetails::Patrol {
                start: text(r.patrol_start),
                end: text(r.patrol_end),
                members_present: r.members_present,
                area: text(r.area),
                incidents: serde_json::from_str::<Vec<IncidentFacts>>(&r.incident_list)
                    .map_err(|_| corrupt("incident list", &r.incident_list))?,
                handed_to_police: r.handed_to_police,
                supported_police: r.supported_police,
            },
            RecordKind::HouseholdSupport => RecordDetails::HouseholdSupport {
                giver: text(r.giver),
                receiver: text(r.receiver_name),
                support_type: text(r.support_type),
                amount_vnd: r.amount_vnd,
                workdays: r.workdays,
                quantity: r.quantity,
                unit: text(r.quantity_unit),
                description: text(r.support_description),
            },
            RecordKind::Production => RecordDetails::Production {
                product: text(r.product),
                quantity: r.quantity,
                unit: text(r.quantity_unit),
                revenue_vnd: r.revenue_vnd,
            },
            RecordKind::Meeting => RecordDetails::Meeting { topic: text(r.topic), attendees: r.attendees },
        };
        Ok(RecordFacts {
            record: r.record,
            model: r.model,
            occurred_on: r.occurred_on,
            review_state: r.review_state,
            author: r.author,
            deleted: r.deleted,
            note: r.note,
            photos: r.photos.split_whitespace().map(str::to_owned).collect(),
            details,
        })
    }
}

/// The columns of an `rm_records` row, in the order [`bind_record_row`]
/// binds them.
pub(super) const RECORD_ROW_COLUMNS: [&str; 36] = [
    "record",
    "model",
    "kind",
    "occurred_on",
    "deleted",
    "review_state",
    "author",
    "incidents",
    "handed_to_police",
    "supported_police",
    "receiver",
    "support_type",
    "amount_vnd",
    "workdays",
    "houses",
    "revenue_vnd",
    "attendees",
    "updated_at",
    "reviewer",
    "reviewed_at",
    "review_comment",
    "conflicts",
    "note",
    "patrol_start",
    "patrol_end",
    "members_present",
    "area",
    "incident_list",
    "giver",
    "receiver_name",
    "support_description",
    "product",
    "quantity",
    "quantity_unit",
    "topic",
    "photos",
];

/// Binds a record's row in the order of [`RECORD_ROW_COLUMNS`]: one list
/// for both backends, so no column is written on one and forgotten on the
/// other.
pub(super) fn bind_record_row<'q, DB>(
    q: sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>,
    r: &'q RecordRow,
) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>
where
    DB: sqlx::Database,
    &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<&'q str>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    bool: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<i64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    f64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<f64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let d = &r.details;
    q.bind(r.record.as_str())
        .bind(r.model.as_str())
        .bind(r.kind)
        .bind(r.occurred_on.as_str())
        .bind(r.deleted)
        .bind(r.review_state)
        .bind(r.author.as_str())
        .bind(r.incidents.len() as i64)
        .bind(r.handed_to_police)
        .bind(r.supported_police)
        .bind(r.receiver.as_deref())
        .bind(r.support_type)
        .bind(r.amount_vnd)
        .bind(r.workdays)
        .bind(r.houses)
        .bind(r.revenue_vnd)
        .bind(r.attendees)
        .bind(r.updated_at)
        .bind(r.reviewer.as_deref())
        .bind(r.reviewed_at)
        .bind(r.review_comment.as_str())
        .bind(encode_conflicts(&r.conflicts))
        .bind(r.note.as_str())
        .bind(d.patrol_start.as_deref())
        .bind(d.patrol_end.as_deref())
        .bind(d.members_present)
        .bind(d.area.as_deref())
        .bind(encode_incidents(&r.incidents))
        .bind(d.giver.as_deref())
        .bind(d.receiver_name.as_deref())
        .bind(d.support_description.as_deref())
        .bind(d.product.as_deref())
        .bind(d.quantity)
        .bind(d.quantity_unit.as_deref())
        .bind(d.topic.as_deref())
        .bind(d.photos.join(" "))
}

/// A record's attachment rows are replaced with the record's row: these
/// statements run on both backends as written (SQLite reads `$N` too).
pub(super) const DELETE_ATTACHMENTS: &str = "DELETE FROM rm_attachments WHERE record = $1";
pub(super) const INSERT_ATTACHMENT: &str = "INSERT INTO rm_attachments (record, attachment, model, doc_id, sha256, \
     media_type, bytes, width, height, taken_at, caption, deleted) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";

/// Binds one attachment of `r` for [`INSERT_ATTACHMENT`].
pub(super) fn bind_attachment<'q, DB>(
    q: sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>,
    r: &'q RecordRow,
    a: &'q crate::read_model::AttachmentRow,
) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>
where
    DB: sqlx::Database,
    &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    bool: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    q.bind(r.record.as_str())
        .bind(a.attachment.as_str())
        .bind(r.model.as_str())
        .bind(a.doc_id.as_str())
        .bind(a.sha256.as_str())
        .bind(a.media_type)
        .bind(a.bytes)
        .bind(a.width)
        .bind(a.height)
        .bind(a.taken_at)
        .bind(a.caption.as_str())
        .bind(a.deleted)
}

/// A device row with its token hash, for copies to another database.
#[derive(sqlx::FromRow)]
pub(super) struct DeviceSecretColumns {
    #[sqlx(flatten)]
    pub device: super::directory::DeviceRow,
    pub token_hash: Vec<u8>,
}

impl From<DeviceSecretColumns> for super::transfer::DeviceSecret {
    fn from(d: DeviceSecretColumns) -> Self {
        super::transfer::DeviceSecret { device: d.device, token_hash: d.token_hash }
    }
}

/// Binds an account in the order of [`ACCOUNT_COLUMNS`], for every statement that writes one.
pub(super) fn bind_account<'q, DB>(
    q: sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>,
    a: &'q AccountRow,
) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>
where
    DB: sqlx::Database,
    &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<&'q str>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    bool: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    q.bind(a.id.as_str())
        .bind(a.username.as_str())
        .bind(a.phone.as_deref())
        .bind(a.display_name.as_str())
        .bind(a.role.code())
        .bind(a.unit.as_str())
        .bind(a.secret_hash.as_str())
        .bind(a.disabled)
        .bind(a.created_at)
}

/// The columns [`bind_device`] binds, in its order.
pub(super) const DEVICE_INSERT_COLUMNS: &str =
    "id, account, token_hash, actor, label, created_at, last_seen, revoked_at";

/// Binds a device and its token hash in the order of [`DEVICE_INSERT_COLUMNS`].
pub(super) fn bind_device<'q, DB>(
    q: sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>,
    d: &'q super::directory::DeviceRow,
    token_hash: &'q [u8],
) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>
where
    DB: sqlx::Database,
    &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    &'q [u8]: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<i64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    q.bind(d.id.as_str())
        .bind(d.account.as_str())
        .bind(token_hash)
        .bind(d.actor.as_str())
        .bind(d.label.as_str())
        .bind(d.created_at)
        .bind(d.last_seen)
        .bind(d.revoked_at)
}

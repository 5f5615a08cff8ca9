//! Rows as both backends read them (sqlx `FromRow`, by column name), and the
//! rules that turn stored values into the directory's and the reports'
//! types. Each backend's SQL selects these columns under these names; what
//! a stored value means is decided here, once.

use std::str::FromStr;

use kheo_shared::codes::{Code, Role};
use kheo_shared::ids::DocId;
use kheo_shared::scalars::Day;
use kheo_shared::schema::conflicts::FieldConflict;

use super::directory::{AccountRow, DirectoryError, QUARANTINE_BYTES_PER_DEVICE, QuarantineEntry};
use super::reports::ReviewItem;
use super::{StoreError, Version};
use crate::org::{Level, Succession, Unit};

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
pub(super) fn encode_conflicts(conflicts: &[FieldConflict]) -> String {
    serde_json::to_string(conflicts).unwrap_or_else(|_| "[]".into())
}

fn decode_conflicts(stored: &str) -> Vec<FieldConflict> {
    serde_json::from_str(stored).unwrap_or_default()
}

//! Activity records (hoạt động): what volunteers log, one kind of detail per
//! kind of activity, plus the metadata every record carries (who, which
//! device, when, tombstone, review).

use std::collections::BTreeMap;

use autosurgeon::{Reconcile, Reconciler, reconcile::MapReconciler};
use serde::{Deserialize, Serialize};

use crate::evidence::{Attachment, AttachmentId, Location};

use crate::codes::{Code, IncidentCategory, IncidentOutcome, RecordKind, ReviewState, SupportType};
use crate::ids::RecordId;
use crate::scalars::{ClockTime, Day, Timestamp};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub id: RecordId,
    /// The day the activity happened; it decides the yearly log the record lives in.
    pub occurred_on: Day,
    /// Account that logged the record.
    pub author: String,
    /// Device the record was first logged on.
    pub device: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Deletes never erase: a deleted record stays as a tombstone.
    pub deleted: bool,
    pub note: String,
    pub review: Review,
    pub activity: Activity,
    /// Photos, each under its own key in the record (see [`crate::evidence`]).
    #[serde(default)]
    pub attachments: BTreeMap<AttachmentId, Attachment>,
}

impl Record {
    pub fn kind(&self) -> RecordKind {
        self.activity.kind()
    }

    /// The photos not removed, oldest first.
    pub fn photos(&self) -> impl Iterator<Item = (&AttachmentId, &Attachment)> {
        let mut live: Vec<_> = self.attachments.iter().filter(|(_, a)| !a.deleted).collect();
        live.sort_by_key(|(id, a)| (a.taken_at, **id));
        live.into_iter()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Activity {
    Patrol(Patrol),
    HouseholdSupport(HouseholdSupport),
    Production(Production),
    Meeting(Meeting),
}

impl Activity {
    pub fn kind(&self) -> RecordKind {
        match self {
            Activity::Patrol(_) => RecordKind::Patrol,
            Activity::HouseholdSupport(_) => RecordKind::HouseholdSupport,
            Activity::Production(_) => RecordKind::Production,
            Activity::Meeting(_) => RecordKind::Meeting,
        }
    }
}

/// Tuần tra: a patrol of a self-management team.
#[derive(Debug, Clone, PartialEq, Reconcile, Serialize, Deserialize)]
pub struct Patrol {
    pub start: ClockTime,
    /// Earlier than `start` when the patrol ran past midnight.
    pub end: ClockTime,
    pub members_present: u32,
    pub area: String,
    pub incidents: Vec<Incident>,
    /// Where the patrol was, when the volunteer asked the phone.
    #[serde(default)]
    pub location: Option<Location>,
}

#[derive(Debug, Clone, PartialEq, Reconcile, Serialize, Deserialize)]
pub struct Incident {
    /// Identity inside the list, so concurrent edits of two incidents never collide.
    #[key]
    pub id: String,
    pub category: IncidentCategory,
    pub description: String,
    pub outcome: IncidentOutcome,
    /// Where the incident was found, when the volunteer asked the phone.
    #[serde(default)]
    pub location: Option<Location>,
}

/// Hỗ trợ hộ gia đình: one household helping another.
#[derive(Debug, Clone, PartialEq, Reconcile, Serialize, Deserialize)]
pub struct HouseholdSupport {
    pub giver: String,
    pub receiver: String,
    pub support_type: SupportType,
    pub amount_vnd: i64,
    pub workdays: f64,
    pub quantity: f64,
    pub unit: String,
    pub description: String,
}

/// Sản xuất, tiêu thụ: production and sales.
#[derive(Debug, Clone, PartialEq, Reconcile, Serialize, Deserialize)]
pub struct Production {
    pub product: String,
    pub quantity: f64,
    pub unit: String,
    pub revenue_vnd: i64,
}

/// Họp, tuyên truyền: a meeting or outreach session.
#[derive(Debug, Clone, PartialEq, Reconcile, Serialize, Deserialize)]
pub struct Meeting {
    pub topic: String,
    pub attendees: u32,
}

/// Commune review of a record.
#[derive(Debug, Clone, PartialEq, Reconcile, Serialize, Deserialize)]
pub struct Review {
    pub state: ReviewState,
    pub reviewer: Option<String>,
    pub reviewed_at: Option<Timestamp>,
    pub comment: String,
}

impl Review {
    pub fn new_unreviewed() -> Self {
        Review { state: ReviewState::New, reviewer: None, reviewed_at: None, comment: String::new() }
    }
}

impl Reconcile for Record {
    type Key<'a> = autosurgeon::reconcile::NoKey;

    // Written by hand so the detail block sits under its kind's code; the
    // derive would nest an enum in a way JavaScript clients find awkward.
    fn reconcile<R: Reconciler>(&self, mut r: R) -> Result<(), R::Error> {
        let mut m = r.map()?;
        m.put("id", self.id)?;
        m.put("kind", self.kind())?;
        m.put("occurred_on", self.occurred_on)?;
        m.put("author", &self.author)?;
        m.put("device", &self.device)?;
        m.put("created_at", self.created_at)?;
        m.put("updated_at", self.updated_at)?;
        m.put("deleted", self.deleted)?;
        m.put("note", &self.note)?;
        m.put("review", &self.review)?;
        for (id, attachment) in &self.attachments {
            m.put(id.key(), attachment)?;
        }
        let kind = self.kind().code();
        match &self.activity {
            Activity::Patrol(d) => m.put(kind, d),
            Activity::HouseholdSupport(d) => m.put(kind, d),
            Activity::Production(d) => m.put(kind, d),
            Activity::Meeting(d) => m.put(kind, d),
        }
    }
}

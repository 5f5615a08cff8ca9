//! Well-formed sample values for tests, benchmarks, examples and demo data.

use crate::codes::{Field, IncidentCategory, IncidentOutcome, ModelStatus, SupportType};
use crate::ids::{ModelId, RecordId};
use crate::model::{ModelProfile, StatusYears};
use crate::record::{Activity, HouseholdSupport, Incident, Meeting, Patrol, Production, Record, Review};
use crate::scalars::{ClockTime, Day, Timestamp};

fn day(s: &str) -> Day {
    Day::parse(s).unwrap_or_else(|| panic!("testdata: {s:?} is not a YYYY-MM-DD day"))
}

fn base(id: RecordId, on: &str, activity: Activity) -> Record {
    Record {
        id,
        occurred_on: day(on),
        author: "volunteer.kimdoi".into(),
        device: "device-1".into(),
        created_at: Timestamp(1_700_000_000_000),
        updated_at: Timestamp(1_700_000_000_000),
        deleted: false,
        note: String::new(),
        review: Review::new_unreviewed(),
        activity,
        attachments: Default::default(),
    }
}

/// A night patrol of the Tam Thăng team with `incidents` incidents.
pub fn patrol(id: RecordId, on: &str, incidents: usize) -> Record {
    let incidents = (0..incidents)
        .map(|i| Incident {
            id: format!("{id}-{i}"),
            category: CATEGORIES[i % CATEGORIES.len()],
            description: "Phát hiện và lập biên bản".into(),
            outcome: if i % 2 == 0 { IncidentOutcome::HandedToPolice } else { IncidentOutcome::HandledByTeam },
            location: None,
        })
        .collect();
    base(
        id,
        on,
        Activity::Patrol(Patrol {
            start: ClockTime::hm(21, 0).unwrap_or_else(|| unreachable!()),
            end: ClockTime::hm(23, 30).unwrap_or_else(|| unreachable!()),
            members_present: 5,
            area: "Thôn Kim Đới, tuyến ven sông".into(),
            incidents,
            location: None,
        }),
    )
}

const CATEGORIES: [IncidentCategory; 4] = [
    IncidentCategory::Theft,
    IncidentCategory::IllegalSandMining,
    IncidentCategory::EnvironmentalPollution,
    IncidentCategory::Gambling,
];

pub fn household_support(id: RecordId, on: &str, amount_vnd: i64) -> Record {
    base(
        id,
        on,
        Activity::HouseholdSupport(HouseholdSupport {
            giver: "Hộ ông Nguyễn Văn An".into(),
            receiver: "Hộ bà Trần Thị Bình".into(),
            support_type: SupportType::Money,
            amount_vnd,
            workdays: 2.5,
            quantity: 0.0,
            unit: String::new(),
            description: "Hỗ trợ sửa mái nhà".into(),
        }),
    )
}

pub fn production(id: RecordId, on: &str, revenue_vnd: i64) -> Record {
    base(
        id,
        on,
        Activity::Production(Production {
            product: "Viên hoàn mật ong nghệ đen".into(),
            quantity: 12.5,
            unit: "kg".into(),
            revenue_vnd,
        }),
    )
}

pub fn meeting(id: RecordId, on: &str, attendees: u32) -> Record {
    base(id, on, Activity::Meeting(Meeting { topic: "Tuyên truyền phòng chống cờ bạc".into(), attendees }))
}

/// The record kinds in turn, so generated logs hold every kind.
pub fn any_record(id: RecordId, on: &str, n: usize) -> Record {
    match n % 4 {
        0 => patrol(id, on, n % 3),
        1 => household_support(id, on, 1_000_000 + n as i64),
        2 => production(id, on, 60_000_000),
        _ => meeting(id, on, 30),
    }
}

pub fn model(id: ModelId, unit: &str) -> ModelProfile {
    ModelProfile {
        id,
        name: "Tổ tự quản \"5 trong 1\"".into(),
        field: Field::SecurityOrder,
        unit: unit.into(),
        lead_organisation: "Ủy ban MTTQ xã Tam Thăng".into(),
        started_on: day("2022-03-01"),
        status: ModelStatus::Typical,
        status_years: StatusYears {
            building: Some(2022),
            recognised: Some(2023),
            typical: Some(2024),
            ..Default::default()
        },
        replicated_from: None,
        members: 169,
        households: 0,
        description: "Tổ tuần tra tự quản, \"3 không\"".into(),
        created_at: Timestamp(1_700_000_000_000),
        updated_at: Timestamp(1_700_000_000_000),
    }
}

/// A photo of `bytes` bytes whose hash is made from `seed` (not a real digest).
pub fn photo(seed: u8, bytes: u32) -> crate::evidence::Attachment {
    crate::evidence::Attachment {
        sha256: crate::evidence::ContentHash::from_digest(&[seed; 32]),
        media_type: crate::evidence::MediaType::Jpeg,
        bytes,
        width: 1280,
        height: 960,
        taken_at: Timestamp(1_700_000_100_000 + i64::from(seed)),
        caption: format!("Ảnh {seed}"),
        deleted: false,
    }
}

/// Where the Tam Thăng team patrols, to within 12 m.
pub fn location() -> crate::evidence::Location {
    crate::evidence::Location {
        latitude: 15.5736,
        longitude: 108.4741,
        accuracy_m: 12.0,
        taken_at: Timestamp(1_700_000_050_000),
    }
}

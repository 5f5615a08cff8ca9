//! Demo data for a newcomer: the three models the province brief describes,
//! with a year of illustrative activity each. The places are real, the
//! records are invented (the figures echo the brief but are not its data).
//! Seeded only into an empty store.

use automerge::{AutoCommit, transaction::CommitOptions};
use kheo_shared::codes::{Field, IncidentCategory, IncidentOutcome, ModelStatus, Role, SupportType};
use kheo_shared::ids::{DocId, ModelId, RecordId};
use kheo_shared::model::{ModelProfile, StatusYears};
use kheo_shared::record::{Activity, HouseholdSupport, Incident, Meeting, Patrol, Production, Record, Review};
use kheo_shared::scalars::{ClockTime, Day, Timestamp};
use kheo_shared::schema;
use uuid::Uuid;

use crate::accounts::{Accounts, NewAccount};
use crate::read_model::{ModelRow, ReadModelWrite, RecordRow};
use crate::store::{Committed, DocWrite, Store, StoreError, Version, WriteBatch};

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("demo accounts: {0}")]
    Accounts(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("demo data does not fit the schema: {0}")]
    Write(#[from] schema::WriteError),
}

/// Stable ids, so the demo reads the same on every machine.
fn id(n: u128) -> Uuid {
    Uuid::from_u128(0x6b68_656f_0000_4000_8000_0000_0000_0000 | n)
}

fn day(year: i32, month: u8, d: u8) -> Day {
    let month = time::Month::try_from(month).unwrap_or(time::Month::January);
    Day(time::Date::from_calendar_date(year, month, d).unwrap_or(time::Date::MIN))
}

fn clock(h: u8, m: u8) -> ClockTime {
    ClockTime::hm(h, m).unwrap_or(ClockTime(time::Time::MIDNIGHT))
}

const CREATED: Timestamp = Timestamp(1_735_689_600_000); // 2025-01-01T00:00Z

/// A model with the fields every demo model shares; callers fill in the rest.
fn model(n: u128, name: &str, field: Field, unit: &str) -> ModelProfile {
    ModelProfile {
        id: ModelId(id(n)),
        name: name.into(),
        field,
        unit: unit.into(),
        lead_organisation: String::new(),
        started_on: day(2025, 1, 1),
        status: ModelStatus::Building,
        status_years: StatusYears::default(),
        replicated_from: None,
        members: 0,
        households: 0,
        description: String::new(),
        created_at: CREATED,
        updated_at: CREATED,
    }
}

fn record(n: u128, on: Day, author: &str, activity: Activity) -> Record {
    Record {
        id: RecordId(id(n)),
        occurred_on: on,
        author: author.into(),
        device: "demo-seed".into(),
        created_at: CREATED,
        updated_at: CREATED,
        deleted: false,
        note: String::new(),
        review: Review::new_unreviewed(),
        activity,
        attachments: Default::default(),
    }
}

fn demo_models() -> Vec<(ModelProfile, Vec<Record>)> {
    let tam_thang = ModelProfile {
        lead_organisation: "Công an xã Tam Thăng".into(),
        started_on: day(2022, 3, 1),
        status_years: StatusYears {
            building: Some(2022),
            recognised: Some(2023),
            typical: Some(2024),
            ..Default::default()
        },
        status: ModelStatus::Typical,
        members: 169,
        households: 0,
        description: "Bắt đầu ở thôn Kim Đới với 20 thành viên, một năm sau nhân rộng ra 8 thôn. Tổ viên \"3 không\"."
            .into(),
        ..model(1, "Tổ tự quản \"5 trong 1\" xã Tam Thăng", Field::SecurityOrder, "QNA.TK.TT")
    };
    let categories = [
        IncidentCategory::Theft,
        IncidentCategory::IllegalSandMining,
        IncidentCategory::EnvironmentalPollution,
        IncidentCategory::Gambling,
    ];
    let patrols = (0..24u8)
        .map(|i| {
            let incidents = (0..(i % 3))
                .map(|k| Incident {
                    id: format!("demo-{i}-{k}"),
                    category: categories[usize::from(i + k) % categories.len()],
                    description: "Phát hiện, lập biên bản".into(),
                    outcome: if k == 0 { IncidentOutcome::HandedToPolice } else { IncidentOutcome::SupportedPolice },
                    location: None,
                })
                .collect();
            record(
                100 + u128::from(i),
                day(2025, 1 + i / 2, 5 + (i % 2) * 14),
                "to.truong.kimdoi",
                Activity::Patrol(Patrol {
                    start: clock(21, 0),
                    end: clock(23, 30),
                    members_present: 5 + u32::from(i % 4),
                    area: "Thôn Kim Đới, tuyến ven sông Tam Kỳ".into(),
                    incidents,
                    location: None,
                }),
            )
        })
        .collect();

    let dien_phuoc = ModelProfile {
        lead_organisation: "Ủy ban MTTQ xã Điện Phước".into(),
        started_on: day(2024, 2, 1),
        status_years: StatusYears { building: Some(2024), recognised: Some(2025), ..Default::default() },
        status: ModelStatus::Recognised,
        members: 0,
        households: 24,
        description: "Sửa, xây nhà; ngày công dời hàng rào, cổng ngõ, mở rộng đường; chuyển giao kỹ thuật.".into(),
        ..model(2, "Hộ khá giúp hộ nghèo xã Điện Phước", Field::SocialWelfare, "QNA.DB.DP")
    };
    let support = |n: u128, on: Day, support_type: SupportType, amount_vnd: i64, workdays: f64, what: &str| {
        record(
            n,
            on,
            "mttq.dienphuoc",
            Activity::HouseholdSupport(HouseholdSupport {
                giver: "Hộ ông Nguyễn Văn Hùng".into(),
                receiver: format!("Hộ nghèo số {}", n - 199),
                support_type,
                amount_vnd,
                workdays,
                quantity: 0.0,
                unit: String::new(),
                description: what.into(),
            }),
        )
    };
    let supports = vec![
        support(200, day(2025, 3, 10), SupportType::HouseRepair, 35_000_000, 12.0, "Sửa mái nhà"),
        support(201, day(2025, 4, 2), SupportType::HouseBuilding, 60_000_000, 30.0, "Xây nhà mới"),
        support(202, day(2025, 5, 18), SupportType::Workdays, 0, 8.0, "Dời hàng rào, mở rộng đường"),
        support(203, day(2025, 6, 7), SupportType::TechniqueTransfer, 0, 2.0, "Kỹ thuật chăn nuôi bò"),
        record(
            204,
            day(2025, 6, 20),
            "mttq.dienphuoc",
            Activity::Meeting(Meeting { topic: "Sơ kết 6 tháng mô hình".into(), attendees: 45 }),
        ),
    ];

    let tra_ka = ModelProfile {
        lead_organisation: "Hội Nông dân xã Trà Ka".into(),
        started_on: day(2021, 5, 1),
        status_years: StatusYears {
            building: Some(2021),
            recognised: Some(2022),
            typical: Some(2023),
            ..Default::default()
        },
        status: ModelStatus::Typical,
        members: 12,
        households: 12,
        description: "Nghệ đen trên hơn 1 ha đất bị lũ làm hư hại; bột, tinh bột và viên hoàn mật ong (OCOP 3 sao)."
            .into(),
        ..model(3, "Trồng dược liệu trên đất bỏ hoang, thôn 2 xã Trà Ka", Field::EconomicDevelopment, "QNA.BTM.TK.T2")
    };
    let sales = (0..6u8)
        .map(|i| {
            record(
                300 + u128::from(i),
                day(2025, 2 * i + 1, 15),
                "nhom.truong.thon2",
                Activity::Production(Production {
                    product: "Viên hoàn mật ong nghệ đen".into(),
                    quantity: 40.0 + f64::from(i) * 5.0,
                    unit: "hộp".into(),
                    revenue_vnd: 10_000_000 + i64::from(i) * 500_000,
                }),
            )
        })
        .collect();
    vec![(tam_thang, patrols), (dien_phuoc, supports), (tra_ka, sales)]
}

/// The demo accounts: (username, secret, role, unit, display name).
pub const DEMO_ACCOUNTS: &[(&str, &str, Role, &str, &str)] = &[
    ("admin", "quantri-2025", Role::Admin, "QNA", "Quản trị hệ thống"),
    ("tinh.danvan", "tinh-2025", Role::ProvinceStaff, "QNA", "Ban Dân vận Tỉnh ủy"),
    ("xa.tamthang", "xa-2025", Role::CommuneStaff, "QNA.TK.TT", "Cán bộ xã Tam Thăng"),
    ("tamthang.tv1", "111111", Role::Volunteer, "QNA.TK.TT", "Tổ viên Kim Đới 1"),
    ("tamthang.tv2", "222222", Role::Volunteer, "QNA.TK.TT", "Tổ viên Kim Đới 2"),
    ("xa.dienphuoc", "xa-2025", Role::CommuneStaff, "QNA.DB.DP", "Cán bộ xã Điện Phước"),
    ("traka.tv1", "333333", Role::Volunteer, "QNA.BTM.TK.T2", "Nhóm trưởng thôn 2 Trà Ka"),
];

/// Seeds what is missing of the demo: the organisation tree, the accounts
/// and the models, each only into an empty store.
pub async fn seed(store: &dyn Store, accounts: &Accounts) -> Result<(), DemoError> {
    if accounts.org().units().len() == 0 {
        accounts.replace_org(crate::org::demo()).await.map_err(|e| DemoError::Accounts(e.to_string()))?;
        tracing::info!("seeded the demo organisation tree (illustrative 2025 reform)");
    }
    if accounts.directory.accounts().await.map_err(|e| DemoError::Accounts(e.to_string()))?.is_empty() {
        for (username, secret, role, unit, name) in DEMO_ACCOUNTS {
            let new = NewAccount {
                username: (*username).into(),
                phone: None,
                display_name: (*name).into(),
                role: *role,
                unit: (*unit).into(),
                secret: (*secret).into(),
            };
            accounts.create_account(new).await.map_err(|e| DemoError::Accounts(e.to_string()))?;
        }
        tracing::info!(accounts = DEMO_ACCOUNTS.len(), "seeded the demo accounts");
    }
    if !store.doc_ids().await?.is_empty() {
        return Ok(());
    }
    let commit = || CommitOptions::default().with_time(CREATED.millis() / 1000);
    let mut batch = WriteBatch::default();
    let models = demo_models();
    for (profile, records) in &models {
        let mut doc = AutoCommit::new();
        schema::put_model(&mut doc, profile)?;
        doc.commit_with(commit());
        batch.docs.push(seeded(DocId::Model(profile.id), doc.save()));
        batch.model_units.push((profile.id, profile.unit.clone()));
        batch.read_model.push(ReadModelWrite::Model(ModelRow { profile: profile.clone() }));
        batch.read_model.extend(records.iter().map(|r| ReadModelWrite::Record(RecordRow::from_record(profile.id, r))));
        let mut logs: std::collections::BTreeMap<i32, AutoCommit> = Default::default();
        for r in records {
            let year = r.occurred_on.year();
            let log = logs.entry(year).or_default();
            schema::init_log(log, profile.id, year)?;
            schema::put_record(log, r)?;
            log.commit_with(commit());
        }
        for (year, mut log) in logs {
            let id = DocId::Log { model: profile.id, year };
            batch.docs.push(seeded(id, log.save()));
        }
    }
    if store.commit(&[batch]).await?.iter().any(|c| *c != Committed::Done) {
        // Another server process on the same database seeded them first.
        tracing::info!("the demo models were seeded meanwhile");
        return Ok(());
    }
    tracing::info!(models = models.len(), "seeded the demo models");
    Ok(())
}

/// A new document's first write, made by no server process.
fn seeded(doc: DocId, bytes: Vec<u8>) -> DocWrite {
    DocWrite::Snapshot { doc, bytes, base: Version::NONE, next: Version::NONE.next(0) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_data_passes_validation() {
        for (profile, records) in demo_models() {
            let mut doc = AutoCommit::new();
            schema::put_model(&mut doc, &profile).unwrap();
            assert_eq!(schema::read_model(&doc, profile.id).unwrap(), profile);
            let mut log = AutoCommit::new();
            schema::init_log(&mut log, profile.id, 2025).unwrap();
            for r in &records {
                schema::put_record(&mut log, r).unwrap();
            }
            let read = schema::read_log(&log, &DocId::Log { model: profile.id, year: 2025 }).unwrap();
            assert_eq!(read.records.len(), records.len());
        }
    }
}

//! A province-sized store of real documents, for measuring what staff
//! devices download and keep (issue 11, goal 7).
//!
//! Every model gets a profile document and one log per year of
//! [`YEARS`], each built with Automerge through the schema the app reads
//! (one change per record, as phones write them), and the read-model rows
//! a merge would have written beside them, all through [`Store::commit`]
//! before the server opens the store. Volume is realistic where a
//! measurement looks: the home commune [`HOME_UNIT`] gets its share of the
//! province's models with the brief's yearly volume per model, and one of
//! them the busy patrol team's log of [`Plan::busy_records`] records in
//! the last year. Everywhere else the models are all there but their logs
//! are thin, so the seed takes a minute, not an hour; [`Seeded::describe`]
//! says so.

use std::time::{Duration, Instant};

use automerge::AutoCommit;
use automerge::transaction::CommitOptions;
use kheo_server::org::{Level, OrgTree};
use kheo_server::read_model::{ModelRow, ReadModelWrite, RecordRow};
use kheo_server::store::{Committed, DocWrite, Store, StoreError, Version, WriteBatch, encode_heads};
use kheo_shared::codes::{Code, Field, ReviewState};
use kheo_shared::ids::{DocId, ModelId, RecordId};
use kheo_shared::model::ModelProfile;
use kheo_shared::record::{Record, Review};
use kheo_shared::scalars::{Day, Timestamp};
use kheo_shared::{schema, testdata};
use uuid::Uuid;

use crate::HOME_UNIT;

/// The models Quảng Nam built and evaluated between 2009 and 2024 (the brief).
pub const PROVINCE_MODELS: usize = 6_540;
/// Quảng Nam's commune-level units before the 2025 reform, over which its
/// models spread: a commune's share is about 27 models.
pub const PROVINCE_COMMUNES: usize = 241;
/// About 1,000,000 records a year over the province's models (the figure
/// the reports are sized for): about 150 per model and year.
pub const RECORDS_PER_MODEL_YEAR: usize = 1_000_000 / PROVINCE_MODELS;
/// The years of logs: two past years and this one.
pub const YEARS: [i32; 3] = [2024, 2025, 2026];
/// The busy team's name, unique in the province so a search finds it.
pub const BUSY_NAME: &str = "Tổ tự quản \"5 trong 1\" thôn Kim Đới (tuần tra hằng ngày)";

/// How much to seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// Models in the home commune and its villages.
    pub home_models: usize,
    /// Records a year in each of them.
    pub home_records: usize,
    /// Records of the busy model in the last of [`YEARS`] (its earlier years
    /// hold [`Plan::home_records`] like the others).
    pub busy_records: usize,
    /// Models everywhere else in the province.
    pub other_models: usize,
    /// Records a year in each of those.
    pub other_records: usize,
}

impl Plan {
    /// The province: 6,540 models, the home commune's share at full volume.
    pub fn province() -> Plan {
        let home_models = PROVINCE_MODELS.div_ceil(PROVINCE_COMMUNES);
        Plan {
            home_models,
            home_records: RECORDS_PER_MODEL_YEAR,
            busy_records: 2_000,
            other_models: PROVINCE_MODELS - home_models,
            other_records: 2,
        }
    }

    pub fn models(&self) -> usize {
        self.home_models + self.other_models
    }
}

/// What was seeded.
#[derive(Debug, Clone)]
pub struct Seeded {
    pub plan: Plan,
    /// The model with [`Plan::busy_records`] records in its last year.
    pub busy: ModelId,
    /// Every model of the home commune, the busy one first.
    pub home: Vec<ModelId>,
    pub documents: usize,
    pub records: usize,
    /// Saved Automerge bytes of the home commune's documents, and of all.
    pub home_bytes: usize,
    pub all_bytes: usize,
    pub took: Duration,
}

impl Seeded {
    /// One paragraph for a benchmark's or a test's output.
    pub fn describe(&self) -> String {
        let p = &self.plan;
        format!(
            "seeded {} models ({} in {HOME_UNIT} with {} records a year each, one with {} in {}; {} elsewhere with {} \
             a year each, thinner than real so the seed stays short), {} documents, {} records, {:.1} MB of Automerge \
             documents ({:.1} MB in {HOME_UNIT}), in {:.1} s",
            p.models(),
            p.home_models,
            p.home_records,
            p.busy_records,
            YEARS[YEARS.len() - 1],
            p.other_models,
            p.other_records,
            self.documents,
            self.records,
            self.all_bytes as f64 / 1e6,
            self.home_bytes as f64 / 1e6,
            self.took.as_secs_f64(),
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("a seeded document does not fit the schema: {0}")]
    Write(#[from] schema::WriteError),
    #[error("the organisation tree has no {0}")]
    Tree(String),
    #[error("the store already held a seeded document")]
    NotEmpty,
}

/// Documents per store transaction: bounded memory, few commits.
const BATCH_DOCS: usize = 2_000;

/// Seeds `store` (empty) along `plan`, the models spread over `tree`'s
/// communes and villages.
pub async fn seed(store: &dyn Store, tree: &OrgTree, plan: Plan) -> Result<Seeded, SeedError> {
    let started = Instant::now();
    let home_units = units(tree, |code| tree.is_within(code, HOME_UNIT));
    let other_units = units(tree, |code| !tree.is_within(code, HOME_UNIT));
    if home_units.is_empty() || other_units.is_empty() {
        return Err(SeedError::Tree(format!("communes inside and outside {HOME_UNIT}")));
    }
    let mut seeded = Seeded {
        plan,
        busy: model_id(0),
        home: Vec::new(),
        documents: 0,
        records: 0,
        home_bytes: 0,
        all_bytes: 0,
        took: Duration::ZERO,
    };
    let mut batch = WriteBatch::default();
    for n in 0..plan.models() {
        let home = n < plan.home_models;
        let id = model_id(n);
        let profile = profile(n, if home { &home_units } else { &other_units });
        let per_year = if home { plan.home_records } else { plan.other_records };
        let mut docs = vec![(DocId::Model(id), model_doc(&profile)?)];
        batch.model_units.push((id, profile.unit.clone()));
        batch.read_model.push(ReadModelWrite::Model(ModelRow { profile: profile.clone() }));
        for (y, &year) in YEARS.iter().enumerate() {
            let count = if n == 0 && y == YEARS.len() - 1 { plan.busy_records } else { per_year };
            if count == 0 {
                continue;
            }
            let records: Vec<Record> = (0..count).map(|k| record(n, year, k, count)).collect();
            batch.read_model.extend(records.iter().map(|r| ReadModelWrite::Record(RecordRow::from_record(id, r))));
            seeded.records += records.len();
            docs.push((DocId::Log { model: id, year }, log_doc(id, year, &records)?));
        }
        for (doc_id, mut doc) in docs {
            let bytes = doc.save();
            seeded.all_bytes += bytes.len();
            if home {
                seeded.home_bytes += bytes.len();
            }
            batch.heads.insert(doc_id, encode_heads(&doc.get_heads()));
            batch.docs.push(DocWrite::Snapshot {
                doc: doc_id,
                bytes,
                base: Version::NONE,
                next: Version::NONE.next(0),
            });
            seeded.documents += 1;
        }
        if home {
            seeded.home.push(id);
        }
        if batch.docs.len() >= BATCH_DOCS {
            commit(store, std::mem::take(&mut batch)).await?;
        }
    }
    commit(store, batch).await?;
    seeded.took = started.elapsed();
    Ok(seeded)
}

async fn commit(store: &dyn Store, batch: WriteBatch) -> Result<(), SeedError> {
    if batch.is_empty() {
        return Ok(());
    }
    if store.commit(&[batch]).await?.iter().any(|c| *c != Committed::Done) {
        return Err(SeedError::NotEmpty);
    }
    Ok(())
}

/// Communes and villages of the tree that `keep` accepts, in the tree's order.
fn units(tree: &OrgTree, keep: impl Fn(&str) -> bool) -> Vec<String> {
    tree.units()
        .filter(|u| matches!(u.level, Level::Commune | Level::Village) && keep(&u.code))
        .map(|u| u.code.clone())
        .collect()
}

/// Stable ids, so two runs seed the same province.
fn model_id(n: usize) -> ModelId {
    ModelId(Uuid::from_u128(0x6b68_656f_7072_4000_8000_0000_0000_0000 | n as u128))
}

fn record_id(model: usize, year: i32, k: usize) -> RecordId {
    let n = ((model as u128) << 32) | ((year as u128) << 20) | k as u128;
    RecordId(Uuid::from_u128(0x6b68_656f_7265_4000_8000_0000_0000_0000 | n))
}

fn profile(n: usize, units: &[String]) -> ModelProfile {
    let field = Field::ALL[n % Field::ALL.len()];
    let mut p = testdata::model(model_id(n), &units[n % units.len()]);
    p.field = field;
    p.name = format!("Mô hình {} số {n}", field.code().replace('_', " "));
    if n == 0 {
        // The busy team patrols: the Tam Thăng team's field.
        (p.name, p.field) = (BUSY_NAME.to_owned(), Field::SecurityOrder);
    }
    p
}

fn model_doc(profile: &ModelProfile) -> Result<AutoCommit, SeedError> {
    let mut doc = AutoCommit::new();
    schema::put_model(&mut doc, profile)?;
    doc.commit_with(CommitOptions::default().with_time(profile.created_at.millis() / 1000));
    Ok(doc)
}

/// A log with one change per record, as the phones that wrote it left it.
fn log_doc(model: ModelId, year: i32, records: &[Record]) -> Result<AutoCommit, SeedError> {
    let mut doc = AutoCommit::new();
    schema::init_log(&mut doc, model, year)?;
    for r in records {
        schema::put_record(&mut doc, r)?;
        doc.commit_with(CommitOptions::default().with_time(r.created_at.millis() / 1000));
    }
    Ok(doc)
}

/// Record `k` of `count` in a model's log of `year`, spread over the
/// year's first eleven months; past years' records are approved, a third
/// of this year's too, the rest wait for review.
fn record(model: usize, year: i32, k: usize, count: usize) -> Record {
    let first = time::Date::from_calendar_date(year, time::Month::January, 1).unwrap_or(time::Date::MIN);
    let on = first + time::Duration::days((k * 333 / count.max(1)) as i64);
    let day = Day(on);
    let mut r = testdata::any_record(record_id(model, year, k), &day.to_string(), k);
    let at = Timestamp(on.midnight().assume_utc().unix_timestamp() * 1000 + 20 * 3_600_000 + k as i64);
    r.created_at = at;
    r.updated_at = at;
    r.author = format!("tv{}.m{model}", k % 4);
    r.device = format!("phone-{}-m{model}", k % 4);
    if year < YEARS[YEARS.len() - 1] || k.is_multiple_of(3) {
        r.review = Review {
            state: ReviewState::Approved,
            reviewer: Some("canbo.xa".into()),
            reviewed_at: Some(Timestamp(at.0 + 86_400_000)),
            comment: String::new(),
        };
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_province_plan_is_the_briefs() {
        let plan = Plan::province();
        assert_eq!(plan.models(), PROVINCE_MODELS);
        assert_eq!(plan.home_models, 28);
        assert_eq!(plan.home_records, 152);
    }

    #[test]
    fn seeded_records_read_back_through_the_schema() {
        let id = model_id(3);
        let records: Vec<Record> = (0..10).map(|k| record(3, 2026, k, 10)).collect();
        let mut doc = log_doc(id, 2026, &records).expect("log builds");
        let read = schema::read_log(&doc, &DocId::Log { model: id, year: 2026 }).expect("log reads");
        assert_eq!(read.records.len(), 10);
        assert!(read.records.values().all(|r| r.occurred_on.year() == 2026));
        assert_eq!(read.records.values().filter(|r| r.review.state == ReviewState::Approved).count(), 4);
        assert_eq!(doc.get_changes(&[]).len(), 10, "one change per record, the header with the first");
    }
}

//! Consolidation: rollups of the read model over a period, grouped by field,
//! by unit at any level of the organisation tree, or by model; yearly
//! targets and progress; CSV and XLSX exports with Vietnamese column names.
//!
//! SQL aggregates the period's rows per model; grouping happens here, in
//! the organisation tree, because a model's unit may have ended: a report
//! maps each unit to its successor as of the period's last day (the 2025
//! reform) and lists the units it mapped, so readers know.

use std::collections::{BTreeMap, HashMap};

use kheo_shared::codes::{Code, ModelStatus, Role};
use kheo_shared::scalars::Day;
use serde::{Deserialize, Serialize};
use time::Date;

use crate::auth::Principal;
use crate::error::AppError;
use crate::org::{Level, OrgTree};
use crate::store::ReportStore;
use crate::store::reports::{IncidentFacts, ModelFacts, RecordDetails, RecordFacts};

/// A period of days, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Period {
    #[serde(serialize_with = "as_day")]
    #[schema(value_type = String, format = Date)]
    pub from: Date,
    #[serde(serialize_with = "as_day")]
    #[schema(value_type = String, format = Date)]
    pub to: Date,
}

fn as_day<S: serde::Serializer>(d: &Date, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&Day(*d))
}

impl Period {
    pub fn parse(from: &str, to: &str) -> Result<Period, AppError> {
        let day = |s: &str| {
            Day::parse(s).map(|d| d.0).ok_or_else(|| AppError::BadRequest(format!("{s:?} is not YYYY-MM-DD")))
        };
        let period = Period { from: day(from)?, to: day(to)? };
        if period.to < period.from {
            return Err(AppError::BadRequest("the period ends before it starts".into()));
        }
        Ok(period)
    }

    fn contains(&self, day: &str) -> bool {
        Day::parse(day).is_some_and(|d| self.from <= d.0 && d.0 <= self.to)
    }
}

/// How rows are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Grouping {
    Field,
    Model,
    Unit(Level),
}

impl Grouping {
    pub fn parse(s: &str) -> Result<Grouping, AppError> {
        match s {
            "field" => Ok(Grouping::Field),
            "model" => Ok(Grouping::Model),
            other => other
                .parse::<Level>()
                .map(Grouping::Unit)
                .map_err(|_| AppError::BadRequest(format!("group by field, model or a level, not {other:?}"))),
        }
    }
}

pub use kheo_shared::report::{Replication, RollupRow, Totals};

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Rollup {
    pub period: Period,
    pub grouping: Grouping,
    pub approved_only: bool,
    /// The unit the report covers (the reader's unit, or the whole province).
    pub scope: String,
    pub rows: Vec<RollupRow>,
    pub total: Totals,
    /// Units mapped to their successors as of the period's end: (old, new).
    #[schema(value_type = Vec<Vec<String>>)]
    pub mapped_units: Vec<(String, String)>,
}

/// Where a reader's reports stop: their unit, or everything for province staff.
pub fn report_scope(who: &Principal, org: &OrgTree) -> Option<String> {
    if who.is_at_least(Role::ProvinceStaff) {
        None
    } else {
        org.get(&who.unit).map(|u| u.code.clone()).or_else(|| Some(who.unit.clone()))
    }
}

/// The models of the read model in a scope (`None`: all), by id.
async fn models_in_scope(
    store: &dyn ReportStore,
    org: &OrgTree,
    scope: Option<&str>,
) -> Result<HashMap<String, ModelFacts>, AppError> {
    Ok(store
        .models()
        .await?
        .into_iter()
        .filter(|m| scope.is_none_or(|s| org.is_within(&m.unit, s)))
        .map(|m| (m.model.clone(), m))
        .collect())
}

/// The unit a model's unit stands for on `day`: itself while it exists,
/// else its successor(s) (the first, when a unit was split).
fn effective_unit<'a>(org: &'a OrgTree, unit: &'a str, day: Date) -> &'a str {
    if org.is_valid_on(unit, day) { unit } else { org.current_unit(unit, day).into_iter().next().unwrap_or(unit) }
}

fn at_level<'a>(org: &'a OrgTree, unit: &'a str, level: Level) -> Option<&'a str> {
    let this = org.get(unit)?;
    if this.level == level {
        return Some(&this.code);
    }
    org.ancestors(unit).into_iter().find(|u| u.level == level).map(|u| u.code.as_str())
}

pub async fn rollup(
    store: &dyn ReportStore,
    org: &OrgTree,
    scope: Option<&str>,
    period: Period,
    grouping: Grouping,
    approved_only: bool,
) -> Result<Rollup, AppError> {
    rollup_of(Figures::Monthly, store, org, scope, period, grouping, approved_only).await
}

/// Where a rollup's activity figures come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Figures {
    /// Whole months from the pre-aggregates, the rest from the record rows.
    Monthly,
    /// Every figure summed over the record rows alone, as before the
    /// pre-aggregates: what `Monthly` must equal (the tests' oracle) and
    /// the benchmark's baseline.
    Records,
}

pub async fn rollup_of(
    figures: Figures,
    store: &dyn ReportStore,
    org: &OrgTree,
    scope: Option<&str>,
    period: Period,
    grouping: Grouping,
    approved_only: bool,
) -> Result<Rollup, AppError> {
    let (from, to) = (Day(period.from).to_string(), Day(period.to).to_string());
    let models = models_in_scope(store, org, scope).await?;
    // Independent reads: run them side by side on the store's connections.
    let (activity, incidents) = match figures {
        Figures::Monthly => {
            tokio::try_join!(store.activity(&from, &to, approved_only), store.incidents(&from, &to, approved_only))?
        }
        Figures::Records => tokio::try_join!(
            store.activity_from_records(&from, &to, approved_only),
            store.incidents_from_records(&from, &to, approved_only)
        )?,
    };

    let mut mapped = BTreeMap::new();
    let mut key_of = |m: &ModelFacts| -> (String, String) {
        match grouping {
            Grouping::Field => (m.field.clone(), word("field", &m.field)),
            Grouping::Model => (m.model.clone(), m.name.clone()),
            Grouping::Unit(level) => {
                let unit = effective_unit(org, &m.unit, period.to);
                if unit != m.unit {
                    mapped.insert(m.unit.clone(), unit.to_owned());
                }
                match at_level(org, unit, level) {
                    Some(code) => (code.to_owned(), org.get(code).map(|u| u.name.clone()).unwrap_or_default()),
                    None => (String::new(), "(Không thuộc đơn vị cấp này)".to_owned()),
                }
            }
        }
    };

    let mut per_model: HashMap<&str, Totals> = HashMap::new();
    for m in models.values() {
        // A model counts once it has started, as it stands now.
        if m.started_on.as_str() > to.as_str() {
            continue;
        }
        let t = per_model.entry(&m.model).or_default();
        t.models = 1;
        t.models_by_status.insert(m.status.clone(), 1);
        t.new_models = i64::from(period.contains(&m.started_on));
        let typical =
            matches!(ModelStatus::from_code(&m.status), Some(ModelStatus::Typical | ModelStatus::Replicating));
        t.typical_models = i64::from(typical);
        t.replications = i64::from(m.replicated_from.is_some() && period.contains(&m.started_on));
    }
    for a in &activity {
        let Some(t) = models.get(&a.model).and_then(|m| per_model.get_mut(m.model.as_str())) else { continue };
        t.patrols += a.patrols;
        t.incidents += a.incidents;
        t.handed_to_police += a.handed_to_police;
        t.supported_police += a.supported_police;
        t.households_supported += a.households_supported;
        t.money_vnd += a.money_vnd;
        t.workdays += a.workdays;
        t.houses += a.houses;
        t.production_records += a.production_records;
        t.revenue_vnd += a.revenue_vnd;
        t.meetings += a.meetings;
        t.attendees += a.attendees;
    }
    for i in &incidents {
        let Some(t) = per_model.get_mut(i.model.as_str()) else { continue };
        *t.incidents_by_category.entry(i.category.clone()).or_default() += i.count;
        *t.incidents_by_outcome.entry(i.outcome.clone()).or_default() += i.count;
    }

    let mut groups: BTreeMap<String, RollupRow> = BTreeMap::new();
    let mut total = Totals::default();
    for (model, t) in &per_model {
        let Some(m) = models.get(*model) else { continue };
        let (key, label) = key_of(m);
        let row = groups.entry(key.clone()).or_insert_with(|| RollupRow { key, label, totals: Totals::default() });
        row.totals.add(t);
        total.add(t);
    }
    Ok(Rollup {
        period,
        grouping,
        approved_only,
        scope: scope.unwrap_or("*").to_owned(),
        rows: groups.into_values().collect(),
        total,
        mapped_units: mapped.into_iter().collect(),
    })
}

/// Progress of one unit against its targets for a year.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Progress {
    pub unit: String,
    pub name: String,
    pub level: Level,
    pub new_models_target: i64,
    pub new_models: i64,
    pub typical_target: i64,
    pub typical: i64,
    pub behind: bool,
}

/// The province's rule: every district-level unit (after the reform, the
/// communes directly under the province) builds 2 new models and selects 1
/// typical model a year; every provincial agency keeps 1 typical model
/// (2025-2030). A row in `targets` overrides the rule for a unit and year.
pub async fn progress(store: &dyn ReportStore, org: &OrgTree, year: i32) -> Result<Vec<Progress>, AppError> {
    let last_day = Date::from_calendar_date(year, time::Month::December, 31)
        .map_err(|_| AppError::BadRequest(format!("{year} is not a year")))?;
    let overrides: HashMap<String, (i64, i64)> =
        store.targets(year).await?.into_iter().map(|(u, n, t)| (u, (n, t))).collect();
    let models = store.models().await?;
    let mut rows = Vec::new();
    for unit in org.units().filter(|u| u.is_valid_on(last_day)) {
        let under_province =
            unit.parent.as_deref().and_then(|p| org.get(p)).is_some_and(|p| p.level == Level::Province);
        let default = match unit.level {
            Level::District => (2, 1),
            Level::Commune if under_province => (2, 1),
            Level::Agency if (2025..=2030).contains(&year) => (0, 1),
            _ => continue,
        };
        let (new_target, typical_target) = overrides.get(&unit.code).copied().unwrap_or(default);
        let within: Vec<&ModelFacts> = models.iter().filter(|m| org.is_within(&m.unit, &unit.code)).collect();
        let new_models = within.iter().filter(|m| m.started_on.starts_with(&format!("{year}-"))).count() as i64;
        let typical = if unit.level == Level::Agency {
            within
                .iter()
                .filter(|m| {
                    matches!(ModelStatus::from_code(&m.status), Some(ModelStatus::Typical | ModelStatus::Replicating))
                })
                .count() as i64
        } else {
            within.iter().filter(|m| m.typical_year == Some(year)).count() as i64
        };
        rows.push(Progress {
            unit: unit.code.clone(),
            name: unit.name.clone(),
            level: unit.level,
            new_models_target: new_target,
            new_models,
            typical_target,
            typical,
            behind: new_models < new_target || typical < typical_target,
        });
    }
    Ok(rows)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct TargetSetting {
    /// A unit code of the organisation tree.
    pub unit: String,
    #[schema(minimum = 2000, maximum = 2100)]
    pub year: i32,
    #[schema(minimum = 0, maximum = 1000)]
    pub new_models: i64,
    #[schema(minimum = 0, maximum = 1000)]
    pub typical: i64,
}

/// The columns of a rollup export, in Vietnamese.
pub const COLUMNS: [&str; 17] = [
    "Nhóm",
    "Mã",
    "Số mô hình",
    "Mô hình mới",
    "Mô hình điển hình",
    "Nhân rộng",
    "Số lần tuần tra",
    "Số vụ việc",
    "Chuyển công an xã",
    "Hỗ trợ công an",
    "Số hộ được giúp đỡ",
    "Tiền (đồng)",
    "Ngày công",
    "Nhà sửa, xây",
    "Doanh thu (đồng)",
    "Số buổi họp",
    "Số người tham dự",
];

fn cells(label: &str, key: &str, t: &Totals) -> Vec<String> {
    vec![
        label.to_owned(),
        key.to_owned(),
        t.models.to_string(),
        t.new_models.to_string(),
        t.typical_models.to_string(),
        t.replications.to_string(),
        t.patrols.to_string(),
        t.incidents.to_string(),
        t.handed_to_police.to_string(),
        t.supported_police.to_string(),
        t.households_supported.to_string(),
        t.money_vnd.to_string(),
        t.workdays.to_string(),
        t.houses.to_string(),
        t.revenue_vnd.to_string(),
        t.meetings.to_string(),
        t.attendees.to_string(),
    ]
}

fn table(r: &Rollup) -> Vec<Vec<String>> {
    let mut rows: Vec<Vec<String>> = r.rows.iter().map(|row| cells(&row.label, &row.key, &row.totals)).collect();
    rows.push(cells("Tổng cộng", "", &r.total));
    rows
}

pub fn to_csv(r: &Rollup) -> Result<Vec<u8>, AppError> {
    rows_to_csv(&COLUMNS, &table(r))
}

pub fn to_xlsx(r: &Rollup) -> Result<Vec<u8>, AppError> {
    rows_to_xlsx("Tổng hợp", &COLUMNS, &table(r), &COLUMNS[2..])
}

/// The columns of the raw records export, in Vietnamese: values in words,
/// with the code beside them where a machine reads them back. One row per
/// record; each kind's own columns are blank on the other kinds' rows.
pub const RECORD_COLUMNS: [&str; 39] = [
    "Mã bản ghi",
    "Mô hình",
    "Đơn vị",
    "Lĩnh vực",
    "Mã lĩnh vực",
    "Loại hoạt động",
    "Mã loại hoạt động",
    "Ngày",
    "Trạng thái duyệt",
    "Mã trạng thái duyệt",
    "Người ghi",
    "Tên đăng nhập người ghi",
    "Đã xóa",
    // The live photos: how many, and each one's address (`/api/v1/blobs/<sha256>`).
    "Số ảnh",
    "Ảnh",
    // Patrols.
    "Giờ bắt đầu",
    "Giờ kết thúc",
    "Số thành viên tham gia",
    "Địa bàn, tuyến tuần tra",
    "Số vụ việc",
    "Vụ việc (loại: kết quả xử lý)",
    "Mã vụ việc",
    "Chuyển công an xã",
    "Hỗ trợ công an",
    // Household support.
    "Hộ giúp đỡ",
    "Hộ được giúp đỡ",
    "Hình thức hỗ trợ",
    "Mã hình thức hỗ trợ",
    "Tiền (đồng)",
    "Ngày công",
    "Mô tả hỗ trợ",
    // Production; quantity and unit serve household support too.
    "Sản phẩm",
    "Số lượng",
    "Đơn vị tính",
    "Doanh thu (đồng)",
    // Meetings.
    "Nội dung họp, tuyên truyền",
    "Số người tham dự",
    "Ghi chú",
    "Mã mô hình",
];

/// The columns of [`RECORD_COLUMNS`] that hold numbers (for XLSX): named,
/// because text columns sit between them.
pub const RECORD_NUMBER_COLUMNS: [&str; 10] = [
    "Số ảnh",
    "Số thành viên tham gia",
    "Số vụ việc",
    "Chuyển công an xã",
    "Hỗ trợ công an",
    "Tiền (đồng)",
    "Ngày công",
    "Số lượng",
    "Doanh thu (đồng)",
    "Số người tham dự",
];

/// Every record of a period in the reader's scope, one row each; `names`
/// gives the display name of each login name (the login name when absent).
pub async fn record_rows(
    store: &dyn ReportStore,
    org: &OrgTree,
    scope: Option<&str>,
    period: Period,
    names: &HashMap<String, String>,
) -> Result<Vec<Vec<String>>, AppError> {
    let models = models_in_scope(store, org, scope).await?;
    let (from, to) = (Day(period.from).to_string(), Day(period.to).to_string());
    Ok(store
        .records(&from, &to)
        .await?
        .into_iter()
        .filter_map(|r| {
            let m = models.get(&r.model)?;
            let unit = org.get(&m.unit).map_or(m.unit.clone(), |u| u.name.clone());
            let author = names.get(&r.author).cloned().unwrap_or_else(|| r.author.clone());
            Some(record_row(r, m, unit, author))
        })
        .collect())
}

/// The position of `name` in [`RECORD_COLUMNS`], found while building: a
/// misspelled column does not compile.
const fn record_column(name: &str) -> usize {
    let mut at = 0;
    while at < RECORD_COLUMNS.len() {
        let (a, b) = (RECORD_COLUMNS[at].as_bytes(), name.as_bytes());
        let mut same = a.len() == b.len();
        let mut i = 0;
        while same && i < a.len() {
            same = a[i] == b[i];
            i += 1;
        }
        if same {
            return at;
        }
        at += 1;
    }
    panic!("not a column of the records export")
}

// Every number column is a column.
const _: () = {
    let mut i = 0;
    while i < RECORD_NUMBER_COLUMNS.len() {
        record_column(RECORD_NUMBER_COLUMNS[i]);
        i += 1;
    }
};

/// One row of the records export, each value put under its column's name:
/// the columns of one kind are blank on the others' rows.
fn record_row(r: RecordFacts, m: &ModelFacts, unit: String, author: String) -> Vec<String> {
    let mut row = vec![String::new(); RECORD_COLUMNS.len()];
    macro_rules! put {
        ($column:literal, $value:expr) => {
            row[const { record_column($column) }] = $value
        };
    }
    let kind = r.kind().code();
    put!("Mã bản ghi", r.record);
    put!("Mô hình", m.name.clone());
    put!("Đơn vị", unit);
    put!("Lĩnh vực", word("field", &m.field));
    put!("Mã lĩnh vực", m.field.clone());
    put!("Loại hoạt động", word("kind", kind));
    put!("Mã loại hoạt động", kind.to_owned());
    put!("Ngày", vietnamese_day(&r.occurred_on));
    put!("Trạng thái duyệt", review_word(&r.review_state));
    put!("Mã trạng thái duyệt", r.review_state);
    put!("Người ghi", author);
    put!("Tên đăng nhập người ghi", r.author);
    put!("Đã xóa", if r.deleted { "có".into() } else { "không".into() });
    put!("Số ảnh", r.photos.len().to_string());
    let photos: Vec<String> = r.photos.iter().map(|sha| format!("/api/v1/blobs/{sha}")).collect();
    put!("Ảnh", photos.join(" "));
    let number = |n: Option<f64>| n.map(|n| n.to_string()).unwrap_or_default();
    match r.details {
        RecordDetails::Patrol { start, end, members_present, area, incidents, handed_to_police, supported_police } => {
            put!("Giờ bắt đầu", start);
            put!("Giờ kết thúc", end);
            put!("Số thành viên tham gia", members_present.map(|n| n.to_string()).unwrap_or_default());
            put!("Địa bàn, tuyến tuần tra", area);
            put!("Số vụ việc", incidents.len().to_string());
            put!("Vụ việc (loại: kết quả xử lý)", incidents.iter().map(incident_words).collect::<Vec<_>>().join("; "));
            let codes: Vec<String> = incidents.iter().map(|i| format!("{}:{}", i.category, i.outcome)).collect();
            put!("Mã vụ việc", codes.join("; "));
            put!("Chuyển công an xã", handed_to_police.to_string());
            put!("Hỗ trợ công an", supported_police.to_string());
        }
        RecordDetails::HouseholdSupport {
            giver,
            receiver,
            support_type,
            amount_vnd,
            workdays,
            quantity,
            unit,
            description,
        } => {
            put!("Hộ giúp đỡ", giver);
            put!("Hộ được giúp đỡ", receiver);
            put!("Hình thức hỗ trợ", word("support", &support_type));
            put!("Mã hình thức hỗ trợ", support_type);
            put!("Tiền (đồng)", amount_vnd.to_string());
            put!("Ngày công", workdays.to_string());
            put!("Mô tả hỗ trợ", description);
            put!("Số lượng", number(quantity));
            put!("Đơn vị tính", unit);
        }
        RecordDetails::Production { product, quantity, unit, revenue_vnd } => {
            put!("Sản phẩm", product);
            put!("Số lượng", number(quantity));
            put!("Đơn vị tính", unit);
            put!("Doanh thu (đồng)", revenue_vnd.to_string());
        }
        RecordDetails::Meeting { topic, attendees } => {
            put!("Nội dung họp, tuyên truyền", topic);
            put!("Số người tham dự", attendees.to_string());
        }
    }
    put!("Ghi chú", r.note);
    put!("Mã mô hình", r.model);
    row
}

/// "Trộm cắp tài sản: Chuyển công an xã (what was written)".
fn incident_words(i: &IncidentFacts) -> String {
    let words = format!("{}: {}", word("category", &i.category), word("outcome", &i.outcome));
    match i.description.trim() {
        "" => words,
        description => format!("{words} ({description})"),
    }
}

/// `YYYY-MM-DD` as people write it, `dd/mm/yyyy`; anything else as it is.
fn vietnamese_day(day: &str) -> String {
    match Day::parse(day) {
        Some(Day(d)) => format!("{:02}/{:02}/{}", d.day(), u8::from(d.month()), d.year()),
        None => day.to_owned(),
    }
}

/// The app's words, the one place they are written (`app/locales/`).
static WORDS: std::sync::LazyLock<serde_json::Value> =
    std::sync::LazyLock::new(|| locale(include_str!("../../app/locales/vi.json")));
static WORDS_EN: std::sync::LazyLock<serde_json::Value> =
    std::sync::LazyLock::new(|| locale(include_str!("../../app/locales/en.json")));

fn locale(json: &str) -> serde_json::Value {
    serde_json::from_str(json).unwrap_or(serde_json::Value::Null)
}

/// The Vietnamese word for a code of a vocabulary of the app's locale
/// (`field`, `kind`, `status`, `category`, `outcome`, `support`); the code
/// itself when there is none.
pub fn word(vocabulary: &str, code: &str) -> String {
    word_in(false, vocabulary, code)
}

/// The same in English when `english`.
pub fn word_in(english: bool, vocabulary: &str, code: &str) -> String {
    let words = if english { &*WORDS_EN } else { &*WORDS };
    words[vocabulary][code].as_str().unwrap_or(code).to_owned()
}

/// A record's review state in words, as the review screen says it.
fn review_word(state: &str) -> String {
    let key = match state {
        "new" => "awaiting",
        "returned" => "returned_plain",
        other => other,
    };
    WORDS["review"][key].as_str().unwrap_or(state).to_owned()
}

pub async fn replications(
    store: &dyn ReportStore,
    org: &OrgTree,
    scope: Option<&str>,
    root: &str,
) -> Result<Vec<Replication>, AppError> {
    let models = store.models().await?;
    if !models.iter().any(|m| m.model == root && scope.is_none_or(|s| org.is_within(&m.unit, s))) {
        return Err(AppError::NotFound(format!("no model {root} in this account's scope")));
    }
    let mut out = Vec::new();
    let mut frontier = vec![root.to_owned()];
    let mut depth = 0;
    // Bounded by the number of models, so a cycle in bad data cannot loop forever.
    while !frontier.is_empty() && depth < models.len() {
        depth += 1;
        let next: Vec<&ModelFacts> =
            models.iter().filter(|m| m.replicated_from.as_ref().is_some_and(|f| frontier.contains(f))).collect();
        frontier = next.iter().map(|m| m.model.clone()).collect();
        out.extend(next.into_iter().filter(|m| scope.is_none_or(|s| org.is_within(&m.unit, s))).map(|m| Replication {
            model: m.model.clone(),
            name: m.name.clone(),
            unit: m.unit.clone(),
            unit_name: org.get(&m.unit).map(|u| u.name.clone()).unwrap_or_default(),
            started_on: m.started_on.clone(),
            depth,
        }));
    }
    out.sort_by(|a, b| (a.depth, &a.started_on, &a.unit).cmp(&(b.depth, &b.started_on, &b.unit)));
    Ok(out)
}

/// CSV in UTF-8 with a byte order mark first: Excel on Windows reads a
/// file without one in the local code page and garbles the Vietnamese.
pub fn rows_to_csv(header: &[&str], rows: &[Vec<String>]) -> Result<Vec<u8>, AppError> {
    let mut w = csv::Writer::from_writer("\u{feff}".as_bytes().to_vec());
    let fail = |e: csv::Error| AppError::Internal(e.to_string());
    w.write_record(header).map_err(fail)?;
    for row in rows {
        w.write_record(row.iter().map(|cell| inert_cell(cell))).map_err(fail)?;
    }
    w.into_inner().map_err(|e| AppError::Internal(e.to_string()))
}

/// A cell a spreadsheet shows as text, never runs: a volunteer's note
/// that starts like a formula (`=HYPERLINK(...)`, `+`, `-`, `@`, or a tab
/// or carriage return before one) would otherwise be a formula when staff
/// open the CSV in Excel. A leading apostrophe is what Excel itself uses
/// to mark text; numbers, negative ones included, stay as they are.
fn inert_cell(cell: &str) -> std::borrow::Cow<'_, [u8]> {
    let starts_like_formula = cell.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if starts_like_formula && cell.parse::<f64>().is_err() {
        format!("'{cell}").into_bytes().into()
    } else {
        cell.as_bytes().into()
    }
}

/// Excel keeps at most this many characters in a cell; the writer refuses
/// longer text, which 200 described incidents can reach.
const XLSX_CELL_CHARS: usize = 32_767;

/// A sheet with `header` in bold; the cells of the columns named in
/// `numbers` are written as numbers when they read as one, blank cells are
/// left empty.
pub fn rows_to_xlsx(
    sheet_name: &str,
    header: &[&str],
    rows: &[Vec<String>],
    numbers: &[&str],
) -> Result<Vec<u8>, AppError> {
    use rust_xlsxwriter::{Format, Workbook};
    let fail = |e: rust_xlsxwriter::XlsxError| AppError::Internal(e.to_string());
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name(sheet_name).map_err(fail)?;
    let bold = Format::new().set_bold();
    let numeric: Vec<bool> = header.iter().map(|name| numbers.contains(name)).collect();
    for (c, name) in header.iter().enumerate() {
        sheet.write_string_with_format(0, c as u16, *name, &bold).map_err(fail)?;
    }
    for (i, row) in rows.iter().enumerate() {
        for (c, value) in row.iter().enumerate() {
            let (row_n, col) = (i as u32 + 1, c as u16);
            if value.is_empty() {
                continue;
            }
            match value.parse::<f64>() {
                Ok(n) if numeric.get(c).copied().unwrap_or(false) && n.is_finite() => {
                    sheet.write_number(row_n, col, n).map_err(fail)?
                }
                _ => sheet.write_string(row_n, col, cell_text(value)).map_err(fail)?,
            };
        }
    }
    book.save_to_buffer().map_err(fail)
}

/// `value` cut to what a cell holds, marked with an ellipsis when cut.
fn cell_text(value: &str) -> std::borrow::Cow<'_, str> {
    match value.char_indices().nth(XLSX_CELL_CHARS) {
        None => value.into(),
        Some(_) => {
            let end = value.char_indices().nth(XLSX_CELL_CHARS - 1).map_or(value.len(), |(at, _)| at);
            format!("{}…", &value[..end]).into()
        }
    }
}

/// Filters of the review queue; every one is optional.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct QueueFilter {
    /// First day, `YYYY-MM-DD`.
    #[param(format = Date)]
    pub from: Option<String>,
    /// Last day, `YYYY-MM-DD`, not before `from`.
    #[param(format = Date)]
    pub to: Option<String>,
    /// A unit (typically a village): models of that unit and below.
    pub unit: Option<String>,
    /// A model id.
    pub model: Option<String>,
    /// A record kind code.
    pub kind: Option<String>,
    /// `new`, `approved`, `returned` or `edited_after_approval`.
    pub state: Option<String>,
    /// At most this many records (1 to 1000), the newest: a device that
    /// fetches the logs it lacks asks for a page, not a province.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
}

/// The largest `limit` of the review queue.
pub const MAX_QUEUE_LIMIT: usize = 1000;

/// A record in the queue, with where it comes from.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct QueueItem {
    #[serde(flatten)]
    pub item: crate::store::reports::ReviewItem,
    pub model_name: String,
    pub unit: String,
    pub unit_name: String,
}

/// The records synced from the reader's scope, for commune review.
pub async fn review_queue(
    store: &dyn ReportStore,
    org: &OrgTree,
    scope: Option<&str>,
    f: &QueueFilter,
) -> Result<Vec<QueueItem>, AppError> {
    let from = f.from.clone().unwrap_or_else(|| "2000-01-01".into());
    let to = f.to.clone().unwrap_or_else(|| "2100-12-31".into());
    Period::parse(&from, &to)?;
    let limit = match f.limit {
        None => usize::MAX,
        Some(n @ 1..=MAX_QUEUE_LIMIT) => n,
        Some(n) => return Err(AppError::BadRequest(format!("limit {n} is not between 1 and {MAX_QUEUE_LIMIT}"))),
    };
    let mut models = models_in_scope(store, org, scope).await?;
    models.retain(|_, m| {
        f.unit.as_deref().is_none_or(|u| org.is_within(&m.unit, u)) && f.model.as_deref().is_none_or(|id| m.model == id)
    });
    Ok(store
        .review_items(&from, &to)
        .await?
        .into_iter()
        .filter(|i| f.kind.as_deref().is_none_or(|k| i.kind == k))
        .filter(|i| f.state.as_deref().is_none_or(|s| i.state == s))
        .filter_map(|item| {
            let m = models.get(&item.model)?;
            Some(QueueItem {
                model_name: m.name.clone(),
                unit: m.unit.clone(),
                unit_name: org.get(&m.unit).map(|u| u.name.clone()).unwrap_or_default(),
                item,
            })
        })
        .take(limit)
        .collect())
}

/// Live records per month of a period in the reader's scope, oldest month first.
pub async fn records_by_month(
    store: &dyn ReportStore,
    org: &OrgTree,
    scope: Option<&str>,
    period: Period,
    approved_only: bool,
) -> Result<Vec<(String, i64)>, AppError> {
    let in_scope = models_in_scope(store, org, scope).await?;
    let (from, to) = (Day(period.from).to_string(), Day(period.to).to_string());
    let mut months: BTreeMap<String, i64> = BTreeMap::new();
    for (model, month, n) in store.monthly(&from, &to, approved_only).await? {
        if in_scope.contains_key(&model) {
            *months.entry(month).or_default() += n;
        }
    }
    Ok(months.into_iter().collect())
}

/// The latest month (`YYYY-MM`) with a live record in the reader's scope,
/// approved or not; `None` before anyone logged anything. The report screen
/// opens on it rather than on an empty current year.
pub async fn latest_month(
    store: &dyn ReportStore,
    org: &OrgTree,
    scope: Option<&str>,
) -> Result<Option<String>, AppError> {
    let in_scope = models_in_scope(store, org, scope).await?;
    Ok(store
        .monthly("2000-01-01", "2100-12-31", false)
        .await?
        .into_iter()
        .filter(|(model, _, n)| *n > 0 && in_scope.contains_key(model))
        .map(|(_, month, _)| month)
        .max())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kheo_shared::codes::{
        Field, IncidentCategory, IncidentOutcome, ModelStatus, RecordKind, ReviewState, SupportType,
    };

    fn every<C: Code>(vocabulary: &str) {
        for c in C::ALL {
            let w = word(vocabulary, c.code());
            assert!(!w.is_empty() && w != c.code(), "{vocabulary}.{} has no word", c.code());
        }
    }

    #[test]
    fn a_csv_cell_that_starts_like_a_formula_is_text() {
        let rows = vec![vec![
            "=HYPERLINK(\"http://x\")".to_owned(),
            "-5".to_owned(),
            "@SUM(A1)".to_owned(),
            "Tuần tra".to_owned(),
        ]];
        let csv = String::from_utf8(rows_to_csv(&["a", "b", "c", "d"], &rows).unwrap()).unwrap();
        assert!(csv.ends_with("\"'=HYPERLINK(\"\"http://x\"\")\",-5,'@SUM(A1),Tuần tra\n"), "{csv}");
    }

    #[test]
    fn every_code_has_its_vietnamese_word() {
        every::<Field>("field");
        every::<RecordKind>("kind");
        every::<ModelStatus>("status");
        every::<IncidentCategory>("category");
        every::<IncidentOutcome>("outcome");
        every::<SupportType>("support");
        assert_eq!(word("field", "security_order"), "Quốc phòng - an ninh, an ninh trật tự");
        assert_eq!(word("category", "illegal_sand_mining"), "Khai thác cát trái phép");
        let states: Vec<String> = ReviewState::ALL.iter().map(|s| review_word(s.code())).collect();
        assert_eq!(states, ["Chờ duyệt", "Đã duyệt", "Trả lại"]);
        assert_eq!(word("field", "no_such_code"), "no_such_code");
        assert_eq!(word_in(true, "category", "illegal_sand_mining"), "Illegal sand mining");
    }

    #[test]
    fn a_meeting_fills_only_its_own_columns() {
        let facts = RecordFacts {
            record: "r".into(),
            model: "m".into(),
            occurred_on: "2025-03-12".into(),
            review_state: "new".into(),
            author: "tt1".into(),
            deleted: false,
            note: String::new(),
            photos: vec!["ab".repeat(32)],
            details: RecordDetails::Meeting { topic: "Họp thôn".into(), attendees: 30 },
        };
        let model = ModelFacts {
            model: "m".into(),
            name: "Tổ tự quản".into(),
            field: "security_order".into(),
            unit: "QNA.TK.TT".into(),
            status: "typical".into(),
            started_on: "2022-03-01".into(),
            typical_year: None,
            replicated_from: None,
        };
        let row = record_row(facts, &model, "Xã Tam Thăng".into(), "Nguyễn Văn Tới".into());
        assert_eq!(row.len(), RECORD_COLUMNS.len());
        let first = RECORD_COLUMNS.iter().position(|c| *c == "Giờ bắt đầu").expect("the first detail column");
        let filled: Vec<&str> =
            RECORD_COLUMNS.iter().zip(&row).skip(first).filter(|(_, v)| !v.is_empty()).map(|(c, _)| *c).collect();
        assert_eq!(filled, ["Nội dung họp, tuyên truyền", "Số người tham dự", "Mã mô hình"]);
        let photos = RECORD_COLUMNS.iter().position(|c| *c == "Số ảnh").expect("the photo columns");
        assert_eq!(row[photos], "1");
        assert_eq!(row[photos + 1], format!("/api/v1/blobs/{}", "ab".repeat(32)));
    }

    #[test]
    fn incidents_read_in_words_with_what_was_written() {
        let theft = IncidentFacts {
            category: "theft".into(),
            outcome: "handed_to_police".into(),
            description: " Mất xe máy ".into(),
        };
        assert_eq!(incident_words(&theft), "Trộm cắp tài sản: Chuyển công an xã (Mất xe máy)");
        let plain = IncidentFacts { description: String::new(), ..theft };
        assert_eq!(incident_words(&plain), "Trộm cắp tài sản: Chuyển công an xã");
    }

    #[test]
    fn an_xlsx_cell_keeps_what_excel_holds() {
        let long = "ă".repeat(XLSX_CELL_CHARS + 10);
        let cut = cell_text(&long);
        assert_eq!(cut.chars().count(), XLSX_CELL_CHARS);
        assert!(cut.ends_with('…'));
        let exact = "ă".repeat(XLSX_CELL_CHARS);
        assert_eq!(cell_text(&exact), exact.as_str());
        let rows = vec![vec![long, "12.5".into(), String::new()]];
        assert!(rows_to_xlsx("Bản ghi", &["Vụ việc", "Số lượng", "Ghi chú"], &rows, &["Số lượng"]).is_ok());
    }

    #[test]
    fn days_read_dd_mm_yyyy() {
        assert_eq!(vietnamese_day("2025-03-09"), "09/03/2025");
        assert_eq!(vietnamese_day("not a day"), "not a day");
    }
}

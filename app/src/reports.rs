//! Consolidated reports as the app asks for them: the period a person picks
//! (a month, a quarter, a year or any range of days), the grouping, the
//! paths of the server's report endpoints (`docs/PROTOCOL.md` §12), and the
//! shapes of their answers. Reports are computed on the server from every
//! phone's synced data, so they need it; nothing here touches the network.

pub use kheo_shared::report::{Replication, RollupRow, Totals};
use kheo_shared::scalars::Day;
use serde::Deserialize;

/// How the period is picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeriodKind {
    Month,
    Quarter,
    Year,
    Custom,
}

impl PeriodKind {
    pub const ALL: [PeriodKind; 4] = [PeriodKind::Month, PeriodKind::Quarter, PeriodKind::Year, PeriodKind::Custom];

    pub fn code(self) -> &'static str {
        match self {
            PeriodKind::Month => "month",
            PeriodKind::Quarter => "quarter",
            PeriodKind::Year => "year",
            PeriodKind::Custom => "custom",
        }
    }

    pub fn from_code(code: &str) -> Option<PeriodKind> {
        PeriodKind::ALL.into_iter().find(|k| k.code() == code)
    }
}

/// A period as picked on the screen; `range` turns it into days.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeriodChoice {
    pub kind: PeriodKind,
    pub year: i32,
    /// 1..=12, for [`PeriodKind::Month`].
    pub month: u8,
    /// 1..=4, for [`PeriodKind::Quarter`].
    pub quarter: u8,
    /// `YYYY-MM-DD`, for [`PeriodKind::Custom`].
    pub from: String,
    pub to: String,
}

fn date(year: i32, month: u8, day: u8) -> Option<Day> {
    let month = time::Month::try_from(month).ok()?;
    time::Date::from_calendar_date(year, month, day).ok().map(Day)
}

fn last_day(year: i32, month: u8) -> Option<Day> {
    (28..=31).rev().find_map(|d| date(year, month, d))
}

impl PeriodChoice {
    /// First and last day, both included; `None` when the choice is not a
    /// period (a range that ends before it starts, a day that is no day).
    pub fn range(&self) -> Option<(Day, Day)> {
        if !(2000..=2100).contains(&self.year) && self.kind != PeriodKind::Custom {
            return None;
        }
        let (from, to) = match self.kind {
            PeriodKind::Month => (date(self.year, self.month, 1)?, last_day(self.year, self.month)?),
            PeriodKind::Quarter => {
                let q = self.quarter.clamp(1, 4);
                (date(self.year, q * 3 - 2, 1)?, last_day(self.year, q * 3)?)
            }
            PeriodKind::Year => (date(self.year, 1, 1)?, date(self.year, 12, 31)?),
            PeriodKind::Custom => (Day::parse(self.from.trim())?, Day::parse(self.to.trim())?),
        };
        (from <= to).then_some((from, to))
    }
}

/// How a rollup's rows are grouped: a field, a model, or a level of the
/// organisation tree (the server's `group` parameter).
pub const GROUPINGS: [&str; 7] = ["field", "district", "commune", "village", "agency", "model", "province"];

/// The groupings that make sense for a period ending on `last_day`: field,
/// model and province always; a level of the tree only when some unit of
/// that level still exists on that day (a rollup maps each model to the
/// unit standing for it then). Without a day (a period still being typed),
/// every grouping.
pub fn groupings_on(units: &[crate::org::Unit], last_day: Option<&str>) -> Vec<&'static str> {
    GROUPINGS
        .into_iter()
        .filter(|g| match (*g, last_day) {
            ("field" | "model" | "province", _) | (_, None) => true,
            (level, Some(day)) => {
                units.iter().any(|u| u.level == level && u.valid_to.as_deref().is_none_or(|end| end >= day))
            }
        })
        .collect()
}

/// What the report screen asks the server for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportQuery {
    pub from: Day,
    pub to: Day,
    pub group: String,
    pub approved_only: bool,
}

/// What a report can be downloaded as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Xlsx,
    Csv,
}

impl ExportFormat {
    pub fn code(self) -> &'static str {
        match self {
            ExportFormat::Xlsx => "xlsx",
            ExportFormat::Csv => "csv",
        }
    }
}

impl ReportQuery {
    /// The year targets are read for: the year the period ends in.
    pub fn year(&self) -> i32 {
        self.to.year()
    }

    fn period(&self) -> String {
        format!("from={}&to={}", self.from, self.to)
    }

    pub fn rollup_path(&self, format: Option<ExportFormat>) -> String {
        let mut path = format!("/api/v1/reports/rollup?{}&group={}", self.period(), self.group);
        if self.approved_only {
            path.push_str("&approved=true");
        }
        if let Some(f) = format {
            path.push_str("&format=");
            path.push_str(f.code());
        }
        path
    }

    /// The raw records of the period, for the spreadsheet.
    pub fn records_path(&self, format: ExportFormat) -> String {
        format!("/api/v1/reports/records?{}&format={}", self.period(), format.code())
    }

    pub fn targets_path(&self) -> String {
        format!("/api/v1/reports/targets?year={}", self.year())
    }

    /// `records.svg`, `incidents.svg` or `targets.svg`.
    /// A chart in the app's language (the server draws its words).
    pub fn chart_path(&self, chart: Chart, english: bool) -> String {
        let approved = if self.approved_only { "&approved=true" } else { "" };
        let lang = if english { "&lang=en" } else { "" };
        match chart {
            Chart::Records => format!("/api/v1/reports/charts/records.svg?{}{approved}{lang}", self.period()),
            Chart::Incidents => format!("/api/v1/reports/charts/incidents.svg?{}{approved}{lang}", self.period()),
            Chart::Targets => format!("/api/v1/reports/charts/targets.svg?year={}{lang}", self.year()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chart {
    Records,
    Incidents,
    Targets,
}

impl Chart {
    pub const ALL: [Chart; 3] = [Chart::Records, Chart::Incidents, Chart::Targets];

    /// The element id its container has on the screen.
    pub fn id(self) -> &'static str {
        match self {
            Chart::Records => "chart-records",
            Chart::Incidents => "chart-incidents",
            Chart::Targets => "chart-targets",
        }
    }
}

/// Where the reader's data ends (`GET`): `{"month": "YYYY-MM" | null}`.
pub const LATEST_PATH: &str = "/api/v1/reports/latest";

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Latest {
    pub month: Option<String>,
}

/// The year the report screen opens on: the year of the latest month with
/// records (`YYYY-MM`); before anyone logged anything, this year, or the
/// year before in January, when this one has hardly begun.
pub fn opening_year(this_year: i32, this_month: u8, latest: Option<&str>) -> i32 {
    let year = latest.and_then(|m| m.get(..4)).and_then(|y| y.parse::<i32>().ok());
    match year {
        Some(y) if (2000..=2100).contains(&y) => y,
        _ if this_month == 1 => this_year - 1,
        _ => this_year,
    }
}

pub fn replications_path(model: &str) -> String {
    format!("/api/v1/reports/replications/{model}")
}

/// The file name a download announces (`Content-Disposition`), if any.
pub fn attachment_name(disposition: &str) -> Option<String> {
    let (_, rest) = disposition.split_once("filename=")?;
    let name = rest.split(';').next()?.trim().trim_matches('"');
    (!name.is_empty() && !name.contains(['/', '\\'])).then(|| name.to_owned())
}

/// A rollup as the server answers it (the fields the screen shows).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Rollup {
    pub period: PeriodAnswer,
    pub approved_only: bool,
    pub scope: String,
    pub rows: Vec<RollupRow>,
    pub total: Totals,
    #[serde(default)]
    pub mapped_units: Vec<(String, String)>,
}

/// The period a rollup covers, `YYYY-MM-DD` both ends.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PeriodAnswer {
    pub from: String,
    pub to: String,
}

/// The columns of the rollup table, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Models,
    NewModels,
    TypicalModels,
    Replications,
    Patrols,
    Incidents,
    HandedToPolice,
    SupportedPolice,
    HouseholdsSupported,
    MoneyVnd,
    Workdays,
    Houses,
    ProductionRecords,
    RevenueVnd,
    Meetings,
    Attendees,
}

impl Column {
    pub const ALL: [Column; 16] = [
        Column::Models,
        Column::NewModels,
        Column::TypicalModels,
        Column::Replications,
        Column::Patrols,
        Column::Incidents,
        Column::HandedToPolice,
        Column::SupportedPolice,
        Column::HouseholdsSupported,
        Column::MoneyVnd,
        Column::Workdays,
        Column::Houses,
        Column::ProductionRecords,
        Column::RevenueVnd,
        Column::Meetings,
        Column::Attendees,
    ];

    /// A stable name for the cell's `data-col` (the server's field name).
    pub fn code(self) -> &'static str {
        match self {
            Column::Models => "models",
            Column::NewModels => "new_models",
            Column::TypicalModels => "typical_models",
            Column::Replications => "replications",
            Column::Patrols => "patrols",
            Column::Incidents => "incidents",
            Column::HandedToPolice => "handed_to_police",
            Column::SupportedPolice => "supported_police",
            Column::HouseholdsSupported => "households_supported",
            Column::MoneyVnd => "money_vnd",
            Column::Workdays => "workdays",
            Column::Houses => "houses",
            Column::ProductionRecords => "production_records",
            Column::RevenueVnd => "revenue_vnd",
            Column::Meetings => "meetings",
            Column::Attendees => "attendees",
        }
    }
}

/// A figure of a cell, to be written the Vietnamese way.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Figure {
    Count(i64),
    Money(i64),
    Decimal(f64),
}

/// One column's figure of a group, typed for how it is written.
pub trait Figures {
    fn figure(&self, c: Column) -> Figure;
}

impl Figures for Totals {
    fn figure(&self, c: Column) -> Figure {
        use Figure::*;
        match c {
            Column::Models => Count(self.models),
            Column::NewModels => Count(self.new_models),
            Column::TypicalModels => Count(self.typical_models),
            Column::Replications => Count(self.replications),
            Column::Patrols => Count(self.patrols),
            Column::Incidents => Count(self.incidents),
            Column::HandedToPolice => Count(self.handed_to_police),
            Column::SupportedPolice => Count(self.supported_police),
            Column::HouseholdsSupported => Count(self.households_supported),
            Column::MoneyVnd => Money(self.money_vnd),
            Column::Workdays => Decimal(self.workdays),
            Column::Houses => Count(self.houses),
            Column::ProductionRecords => Count(self.production_records),
            Column::RevenueVnd => Money(self.revenue_vnd),
            Column::Meetings => Count(self.meetings),
            Column::Attendees => Count(self.attendees),
        }
    }
}

/// Where province staff set a unit's targets for a year (`PUT`).
pub const TARGET_PATH: &str = "/api/v1/admin/targets";

/// A unit's targets for a year, as the server takes them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TargetSetting {
    pub unit: String,
    pub year: i32,
    pub new_models: i64,
    pub typical: i64,
}

/// Progress of one unit against its yearly targets.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Progress {
    pub unit: String,
    pub name: String,
    pub level: String,
    pub new_models_target: i64,
    pub new_models: i64,
    pub typical_target: i64,
    pub typical: i64,
    pub behind: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_period_after_the_reform_offers_no_districts() {
        let unit = |code: &str, level: &str, valid_to: Option<&str>| crate::org::Unit {
            code: code.into(),
            name: code.into(),
            level: level.into(),
            parent: None,
            valid_to: valid_to.map(str::to_owned),
        };
        let units = [
            unit("QNA", "province", None),
            unit("QNA.TK", "district", Some("2025-06-30")),
            unit("QNA.TK.TT", "commune", None),
            unit("QNA.TK.TT.KD", "village", None),
        ];
        assert_eq!(
            groupings_on(&units, Some("2024-12-31")),
            ["field", "district", "commune", "village", "model", "province"]
        );
        assert_eq!(
            groupings_on(&units, Some("2025-06-30")),
            ["field", "district", "commune", "village", "model", "province"]
        );
        assert_eq!(groupings_on(&units, Some("2025-12-31")), ["field", "commune", "village", "model", "province"]);
        assert_eq!(groupings_on(&units, None), GROUPINGS);
    }

    #[test]
    fn reports_open_on_the_year_of_the_latest_records() {
        assert_eq!(opening_year(2026, 12, Some("2025-06")), 2025, "the data ends last year");
        assert_eq!(opening_year(2026, 3, Some("2026-02")), 2026);
        assert_eq!(opening_year(2026, 1, Some("2025-12")), 2025);
        assert_eq!(opening_year(2026, 1, None), 2025, "January, nothing logged: last year");
        assert_eq!(opening_year(2026, 5, None), 2026);
        assert_eq!(opening_year(2026, 5, Some("garbage")), 2026);
    }

    fn choice(kind: PeriodKind) -> PeriodChoice {
        PeriodChoice { kind, year: 2024, month: 2, quarter: 3, from: String::new(), to: String::new() }
    }

    fn days(c: &PeriodChoice) -> Option<(String, String)> {
        c.range().map(|(a, b)| (a.to_string(), b.to_string()))
    }

    #[test]
    fn periods_become_days() {
        assert_eq!(days(&choice(PeriodKind::Month)), Some(("2024-02-01".into(), "2024-02-29".into())));
        assert_eq!(days(&choice(PeriodKind::Quarter)), Some(("2024-07-01".into(), "2024-09-30".into())));
        assert_eq!(days(&choice(PeriodKind::Year)), Some(("2024-01-01".into(), "2024-12-31".into())));
        let custom = PeriodChoice { from: "2025-06-01".into(), to: "2025-07-15".into(), ..choice(PeriodKind::Custom) };
        assert_eq!(days(&custom), Some(("2025-06-01".into(), "2025-07-15".into())));
        let backwards = PeriodChoice { from: "2025-06-01".into(), to: "2025-05-15".into(), ..custom.clone() };
        assert_eq!(days(&backwards), None);
        assert_eq!(days(&PeriodChoice { to: "hôm nay".into(), ..custom }), None);
        assert_eq!(days(&PeriodChoice { year: 99, ..choice(PeriodKind::Year) }), None);
        assert_eq!(PeriodKind::from_code("quarter"), Some(PeriodKind::Quarter));
    }

    #[test]
    fn paths_carry_the_query() {
        let (from, to) = choice(PeriodKind::Year).range().unwrap();
        let q = ReportQuery { from, to, group: "commune".into(), approved_only: true };
        assert_eq!(
            q.rollup_path(None),
            "/api/v1/reports/rollup?from=2024-01-01&to=2024-12-31&group=commune&approved=true"
        );
        assert!(q.rollup_path(Some(ExportFormat::Xlsx)).ends_with("&format=xlsx"));
        assert_eq!(q.targets_path(), "/api/v1/reports/targets?year=2024");
        assert_eq!(q.chart_path(Chart::Targets, false), "/api/v1/reports/charts/targets.svg?year=2024");
        assert_eq!(q.chart_path(Chart::Targets, true), "/api/v1/reports/charts/targets.svg?year=2024&lang=en");
        assert_eq!(
            q.chart_path(Chart::Incidents, false),
            "/api/v1/reports/charts/incidents.svg?from=2024-01-01&to=2024-12-31&approved=true"
        );
        assert_eq!(
            q.records_path(ExportFormat::Csv),
            "/api/v1/reports/records?from=2024-01-01&to=2024-12-31&format=csv"
        );
    }

    #[test]
    fn download_names_come_from_the_disposition() {
        assert_eq!(
            attachment_name("attachment; filename=\"tong-hop-2025-01-01-2025-12-31.xlsx\"").as_deref(),
            Some("tong-hop-2025-01-01-2025-12-31.xlsx")
        );
        assert_eq!(attachment_name("attachment"), None);
        assert_eq!(attachment_name("attachment; filename=\"../x\""), None);
    }

    #[test]
    fn a_rollup_answer_reads() {
        let json = r#"{"period":{"from":"2025-01-01","to":"2025-12-31"},"grouping":{"unit":"commune"},
            "approved_only":false,"scope":"*","rows":[{"key":"QNA.X.TT","label":"Xã Tam Thăng (mới)",
            "totals":{"models":2,"models_by_status":{"recognised":2},"new_models":1,"typical_models":0,
            "replications":0,"patrols":3,"incidents":4,"incidents_by_category":{"theft":4},
            "incidents_by_outcome":{"handed_to_police":4},"handed_to_police":4,"supported_police":0,
            "households_supported":0,"money_vnd":1500000,"workdays":2.5,"houses":0,"production_records":0,
            "revenue_vnd":0,"meetings":0,"attendees":0}}],"total":{"models":2,"patrols":3},
            "mapped_units":[["QNA.TK.TT","QNA.X.TT"]]}"#;
        let r: Rollup = serde_json::from_str(json).unwrap();
        assert_eq!(r.rows[0].totals.figure(Column::Patrols), Figure::Count(3));
        assert_eq!(r.rows[0].totals.figure(Column::MoneyVnd), Figure::Money(1_500_000));
        assert_eq!(r.rows[0].totals.figure(Column::Workdays), Figure::Decimal(2.5));
        assert_eq!(r.total.patrols, 3);
        assert_eq!(r.period.to, "2025-12-31");
        assert_eq!(r.mapped_units, vec![("QNA.TK.TT".to_owned(), "QNA.X.TT".to_owned())]);
        let p: Vec<Progress> = serde_json::from_str(
            r#"[{"unit":"QNA.TK","name":"Thành phố Tam Kỳ","level":"district","new_models_target":2,
            "new_models":1,"typical_target":1,"typical":0,"behind":true}]"#,
        )
        .unwrap();
        assert!(p[0].behind);
    }
}

//! Consolidated reports, from the server (they total every phone's synced
//! data, so they cannot be made on the phone): a period and a grouping, the
//! rollup table, progress against the yearly targets with the units behind
//! highlighted, the server's SVG charts, where a typical model was
//! replicated, and the exports. The server scopes everything to the account
//! (a commune sees its commune, the province sees all). With no network or
//! no server, the screen says that reports need the server, and keeps what
//! it last loaded, marked as such.

use kheo_shared::codes::{Code, Field, IncidentCategory, IncidentOutcome, ModelStatus, Role};
use kheo_shared::scalars::Day;
use leptos::prelude::*;
use leptos::task::spawn_local;

use super::format;
use super::labels::{self, I18n};
use crate::api::{self, ApiError, Download};
use crate::catalog;
use crate::device;
use crate::i18n::*;
use crate::reports::{
    Chart, Column, ExportFormat, Figure, Figures, LATEST_PATH, Latest, PeriodChoice, PeriodKind, Progress, Replication,
    ReportQuery, Rollup, TARGET_PATH, TargetSetting, groupings_on, opening_year, replications_path,
};
use crate::state::use_ui;

/// Why the screen has nothing (new) to show.
#[derive(Debug, Clone, PartialEq)]
enum Problem {
    /// No network, or the server did not answer.
    NeedsServer,
    /// The device's token is no longer accepted.
    Unauthorized,
    /// The server answered with an error of its own.
    Server,
    /// The server refused the request, saying why.
    Refused(String),
}

impl Problem {
    fn of(e: &ApiError) -> Problem {
        match e {
            ApiError::Network(_) => Problem::NeedsServer,
            ApiError::Unauthorized(_) => Problem::Unauthorized,
            ApiError::Server(_) => Problem::Server,
            ApiError::Refused { body, .. } => Problem::Refused(body.message.clone()),
        }
    }
}

/// Everything one query loaded, kept together so what is shown always
/// belongs to one period and grouping.
#[derive(Debug, Clone, PartialEq)]
struct Loaded {
    query: ReportQuery,
    rollup: Rollup,
    targets: Vec<Progress>,
    charts: Vec<(Chart, String)>,
    at: f64,
}

fn token() -> Option<String> {
    device::with(|d| d.session.token.clone())
}

async fn load(token: &str, query: &ReportQuery, english: bool) -> Result<Loaded, ApiError> {
    let paths = [Chart::Records, Chart::Incidents, Chart::Targets].map(|c| query.chart_path(c, english));
    let (rollup_path, targets_path) = (query.rollup_path(None), query.targets_path());
    let (rollup, targets, records, incidents, target_chart) = futures::join!(
        api::get_json::<Rollup>(token, &rollup_path),
        api::get_json::<Vec<Progress>>(token, &targets_path),
        api::get_text(token, &paths[0]),
        api::get_text(token, &paths[1]),
        api::get_text(token, &paths[2]),
    );
    Ok(Loaded {
        query: query.clone(),
        rollup: rollup?,
        targets: targets?,
        charts: vec![(Chart::Records, records?), (Chart::Incidents, incidents?), (Chart::Targets, target_chart?)],
        at: js_sys::Date::now(),
    })
}

#[component]
pub fn Reports() -> impl IntoView {
    let i18n = use_i18n();
    let ui = use_ui();
    let now = js_sys::Date::new_0();
    let this_year = now.get_full_year() as i32;
    let this_month = now.get_month() as u8 + 1;
    let kind = RwSignal::new(PeriodKind::Year);
    // The year of the latest records in the reader's scope, once the server
    // says which; until then nothing loads (no empty current year first).
    let first_year = opening_year(this_year, this_month, None).to_string();
    let year = RwSignal::new(first_year.clone());
    let opened = RwSignal::new(false);
    match token().filter(|_| ui.online.get_untracked()) {
        Some(token) => spawn_local(async move {
            if let Ok(latest) = api::get_json::<Latest>(&token, LATEST_PATH).await
                && year.try_get_untracked().as_deref() == Some(first_year.as_str())
            {
                year.set(opening_year(this_year, this_month, latest.month.as_deref()).to_string());
            }
            opened.try_set(true);
        }),
        None => opened.set(true),
    }
    let month = RwSignal::new(this_month);
    let quarter = RwSignal::new(this_month.div_ceil(3));
    let from = RwSignal::new(format!("{this_year}-01-01"));
    let to = RwSignal::new(format!("{this_year}-{this_month:02}-{:02}", now.get_date()));
    let group = RwSignal::new("field".to_owned());
    let approved = RwSignal::new(false);
    let refresh = RwSignal::new(0u32);
    // The target editor outlives a reload of the figures it changed.
    let editing = TargetEditing { open: RwSignal::new(false), status: RwSignal::new(None) };

    let period = Memo::new(move |_| {
        PeriodChoice {
            kind: kind.get(),
            year: year.get().trim().parse().unwrap_or(0),
            month: month.get(),
            quarter: quarter.get(),
            from: from.get(),
            to: to.get(),
        }
        .range()
    });
    // Only the levels the tree has on the period's last day (no districts
    // after the 2025 reform): a grouping by a level that no longer exists
    // would put everything in one row.
    let offered = Memo::new(move |_| {
        let end = period.get().map(|(_, to)| to.to_string());
        crate::org::with(|o| groupings_on(o.units(), end.as_deref()))
    });
    Effect::new(move |_| {
        let offered = offered.get();
        if !offered.iter().any(|g| group.with_untracked(|current| current == g)) {
            let fallback = if offered.contains(&"commune") { "commune" } else { "field" };
            group.set(fallback.to_owned());
        }
    });
    let query = Memo::new(move |_| {
        let (from, to) = period.get()?;
        Some(ReportQuery { from, to, group: group.get(), approved_only: approved.get() })
    });
    // A sync that completed may have brought new figures to the server.
    let synced_at = Memo::new(move |_| ui.sync.with(|s| s.last_ok));

    let loaded = RwSignal::new(None::<Loaded>);
    let problem = RwSignal::new(None::<Problem>);
    let loading = RwSignal::new(false);
    let generation = StoredValue::new(0u64);
    Effect::new(move |_| {
        if !opened.get() {
            return;
        }
        refresh.track();
        synced_at.track();
        let online = ui.online.get();
        // The charts' words are drawn by the server, in the app's language.
        let english = i18n.get_locale() == Locale::en;
        let query = query.get();
        let this = generation.get_value() + 1;
        generation.set_value(this);
        let Some(query) = query else {
            loading.set(false);
            return;
        };
        let Some(token) = token() else { return };
        if !online {
            loading.set(false);
            problem.set(Some(Problem::NeedsServer));
            return;
        }
        loading.set(true);
        spawn_local(async move {
            let result = load(&token, &query, english).await;
            // A newer query (or leaving the screen) makes this answer moot.
            if generation.try_get_value() != Some(this) {
                return;
            }
            loading.set(false);
            match result {
                Ok(l) => {
                    loaded.set(Some(l));
                    problem.set(None);
                }
                Err(e) => problem.set(Some(Problem::of(&e))),
            }
        });
    });

    let stale = move || problem.with(Option::is_some);
    view! {
        <h1>{t!(i18n, reports.title)}</h1>
        {move || problem.get().map(|p| match p {
            Problem::NeedsServer => view! {
                <div class="banner warn" id="reports-offline" role="status">
                    <strong>{t!(i18n, reports.needs_server)}</strong>
                    <p>{t!(i18n, reports.needs_server_hint)}</p>
                </div>
            }.into_any(),
            other => {
                let text = match other {
                    Problem::Unauthorized => t_string!(i18n, sync.err_auth).to_string(),
                    Problem::Server => t_string!(i18n, sync.err_server).to_string(),
                    Problem::Refused(reason) => t_string!(i18n, reports.refused, reason).to_string(),
                    Problem::NeedsServer => String::new(),
                };
                view! { <p class="banner error" id="reports-error" role="alert">{text}</p> }.into_any()
            }
        })}
        <section class="report-controls" id="report-controls">
            <div class="filters">
                <label>
                    <span>{t!(i18n, reports.period)}</span>
                    <select id="r-kind" on:change=move |ev| if let Some(k) = PeriodKind::from_code(&event_target_value(&ev)) { kind.set(k) }>
                        {PeriodKind::ALL.iter().map(|k| {
                            let k = *k;
                            view! { <option value=k.code() selected=move || kind.get() == k>{move || period_kind(i18n, k)}</option> }
                        }).collect_view()}
                    </select>
                </label>
                <Show when=move || kind.get() != PeriodKind::Custom>
                    <label>
                        <span>{t!(i18n, reports.year)}</span>
                        <input id="r-year" type="number" inputmode="numeric" min="2000" max="2100"
                            prop:value=move || year.get() on:input=move |ev| year.set(event_target_value(&ev))/>
                    </label>
                </Show>
                <Show when=move || kind.get() == PeriodKind::Month>
                    <label>
                        <span>{t!(i18n, reports.month)}</span>
                        <select id="r-month" on:change=move |ev| if let Ok(m) = event_target_value(&ev).parse() { month.set(m) }>
                            {(1..=12u8).map(|m| view! {
                                <option value=m.to_string() selected=move || month.get() == m>{move || t_string!(i18n, reports.month_n, n = m).to_string()}</option>
                            }).collect_view()}
                        </select>
                    </label>
                </Show>
                <Show when=move || kind.get() == PeriodKind::Quarter>
                    <label>
                        <span>{t!(i18n, reports.quarter)}</span>
                        <select id="r-quarter" on:change=move |ev| if let Ok(q) = event_target_value(&ev).parse() { quarter.set(q) }>
                            {(1..=4u8).map(|q| view! {
                                <option value=q.to_string() selected=move || quarter.get() == q>{move || t_string!(i18n, reports.quarter_n, n = roman(q)).to_string()}</option>
                            }).collect_view()}
                        </select>
                    </label>
                </Show>
                <Show when=move || kind.get() == PeriodKind::Custom>
                    <label>
                        <span>{t!(i18n, reports.from)}</span>
                        <input id="r-from" type="date" prop:value=move || from.get() on:input=move |ev| from.set(event_target_value(&ev))/>
                    </label>
                    <label>
                        <span>{t!(i18n, reports.to)}</span>
                        <input id="r-to" type="date" prop:value=move || to.get() on:input=move |ev| to.set(event_target_value(&ev))/>
                    </label>
                </Show>
                <label>
                    <span>{t!(i18n, reports.group)}</span>
                    <select id="r-group" on:change=move |ev| group.set(event_target_value(&ev))>
                        {move || offered.get().into_iter().map(|g| {
                            view! { <option value=g selected=move || group.get() == g>{move || grouping(i18n, g)}</option> }
                        }).collect_view()}
                    </select>
                </label>
            </div>
            <div class="control-row">
                <label class="check">
                    <input id="r-approved" type="checkbox" prop:checked=move || approved.get()
                        on:change=move |ev| approved.set(event_target_checked(&ev))/>
                    <span>{t!(i18n, reports.approved_only)}</span>
                </label>
                <button class="secondary small" id="r-refresh" on:click=move |_| refresh.update(|n| *n += 1)>{t!(i18n, reports.refresh)}</button>
            </div>
        </section>
        {move || query.with(Option::is_none).then(|| view! {
            <p class="banner warn" id="reports-bad-period">{t!(i18n, reports.bad_period)}</p>
        })}
        {move || loading.get().then(|| view! { <p class="hint" id="reports-loading">{t!(i18n, reports.loading)}</p> })}
        {move || loaded.get().map(|l| {
            let note = stale().then(|| {
                let at = format::local_time(l.at as i64);
                view! { <p class="hint" id="reports-stale">{move || t_string!(i18n, reports.stale, at = at.clone()).to_string()}</p> }
            });
            view! {
                <div class="report" class:stale=stale>
                    {note}
                    <RollupTable loaded=l.clone()/>
                    <Exports query=l.query.clone()/>
                    <Charts charts=l.charts.clone()/>
                    <Targets year=l.query.year() rows=l.targets.clone() refresh editing/>
                </div>
            }
        })}
        <Replications/>
    }
}

fn period_kind(i18n: I18n, k: PeriodKind) -> String {
    match k {
        PeriodKind::Month => t_string!(i18n, reports.kind_month).to_string(),
        PeriodKind::Quarter => t_string!(i18n, reports.kind_quarter).to_string(),
        PeriodKind::Year => t_string!(i18n, reports.kind_year).to_string(),
        PeriodKind::Custom => t_string!(i18n, reports.kind_custom).to_string(),
    }
}

fn grouping(i18n: I18n, g: &str) -> String {
    match g {
        "field" => t_string!(i18n, reports.by_field).to_string(),
        "district" => t_string!(i18n, reports.by_district).to_string(),
        "commune" => t_string!(i18n, reports.by_commune).to_string(),
        "village" => t_string!(i18n, reports.by_village).to_string(),
        "agency" => t_string!(i18n, reports.by_agency).to_string(),
        "model" => t_string!(i18n, reports.by_model).to_string(),
        _ => t_string!(i18n, reports.by_province).to_string(),
    }
}

fn roman(q: u8) -> &'static str {
    ["I", "II", "III", "IV"].get(usize::from(q.saturating_sub(1))).copied().unwrap_or("?")
}

fn column(i18n: I18n, c: Column) -> String {
    match c {
        Column::Models => t_string!(i18n, reports.col.models).to_string(),
        Column::NewModels => t_string!(i18n, reports.col.new_models).to_string(),
        Column::TypicalModels => t_string!(i18n, reports.col.typical_models).to_string(),
        Column::Replications => t_string!(i18n, reports.col.replications).to_string(),
        Column::Patrols => t_string!(i18n, reports.col.patrols).to_string(),
        Column::Incidents => t_string!(i18n, reports.col.incidents).to_string(),
        Column::HandedToPolice => t_string!(i18n, reports.col.handed_to_police).to_string(),
        Column::SupportedPolice => t_string!(i18n, reports.col.supported_police).to_string(),
        Column::HouseholdsSupported => t_string!(i18n, reports.col.households_supported).to_string(),
        Column::MoneyVnd => t_string!(i18n, reports.col.money_vnd).to_string(),
        Column::Workdays => t_string!(i18n, reports.col.workdays).to_string(),
        Column::Houses => t_string!(i18n, reports.col.houses).to_string(),
        Column::ProductionRecords => t_string!(i18n, reports.col.production_records).to_string(),
        Column::RevenueVnd => t_string!(i18n, reports.col.revenue_vnd).to_string(),
        Column::Meetings => t_string!(i18n, reports.col.meetings).to_string(),
        Column::Attendees => t_string!(i18n, reports.col.attendees).to_string(),
    }
}

fn figure(f: Figure) -> String {
    match f {
        Figure::Count(n) | Figure::Money(n) => format::grouped(n),
        Figure::Decimal(x) => format::decimal(x),
    }
}

/// A row's name: a field in words, a unit or model by name.
fn row_label(i18n: I18n, group: &str, key: &str, label: &str) -> String {
    match group {
        "field" => Field::from_code(key).map_or_else(|| label.to_owned(), |f| labels::field(i18n, f)),
        "model" => label.to_owned(),
        _ if key.is_empty() => t_string!(i18n, reports.no_unit).to_string(),
        _ => label.to_owned(),
    }
}

fn scope_name(i18n: I18n, scope: &str) -> String {
    if scope == "*" { t_string!(i18n, reports.whole_province).to_string() } else { crate::org::with(|o| o.name(scope)) }
}

#[component]
fn RollupTable(loaded: Loaded) -> impl IntoView {
    let i18n = use_i18n();
    let Loaded { query, rollup, .. } = loaded;
    let group = query.group.clone();
    let caption = {
        let day = |d: &str| Day::parse(d).map_or_else(|| d.to_owned(), format::day);
        let (from, to, scope) = (day(&rollup.period.from), day(&rollup.period.to), rollup.scope.clone());
        let approved_only = rollup.approved_only;
        move || {
            let text = t_string!(
                i18n,
                reports.caption,
                from = from.clone(),
                to = to.clone(),
                scope = scope_name(i18n, &scope)
            )
            .to_string();
            if approved_only { format!("{text} · {}", t_string!(i18n, reports.approved_only)) } else { text }
        }
    };
    let mapped = (!rollup.mapped_units.is_empty()).then(|| {
        let pairs = rollup
            .mapped_units
            .iter()
            .map(|(old, new)| crate::org::with(|o| format!("{} → {}", o.name(old), o.name(new))))
            .collect::<Vec<_>>()
            .join("; ");
        view! { <p class="hint" id="rollup-mapped">{move || t_string!(i18n, reports.mapped, pairs = pairs.clone()).to_string()}</p> }
    });
    let rows = rollup.rows.clone();
    let total = rollup.total.clone();
    let breakdown = rollup.total.clone();
    view! {
        <h2>{t!(i18n, reports.rollup)}</h2>
        <p class="muted" id="rollup-caption">{caption}</p>
        {mapped}
        {if rows.is_empty() {
            view! { <p class="hint" id="rollup-empty">{t!(i18n, reports.empty)}</p> }.into_any()
        } else {
            view! {
                <div class="table-scroll">
                    <table class="report-table" id="rollup">
                        <thead>
                            <tr>
                                <th class="name">{move || grouping(i18n, &query.group)}</th>
                                {Column::ALL.iter().map(|c| { let c = *c; view! { <th data-col=c.code()>{move || column(i18n, c)}</th> } }).collect_view()}
                            </tr>
                        </thead>
                        <tbody>
                            {rows.into_iter().map(|row| {
                                let (g, key, label) = (group.clone(), row.key.clone(), row.label.clone());
                                view! {
                                    <tr data-key=row.key.clone()>
                                        <th class="name">{move || row_label(i18n, &g, &key, &label)}</th>
                                        {Column::ALL.iter().map(|c| view! { <td data-col=c.code()>{figure(row.totals.figure(*c))}</td> }).collect_view()}
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                        <tfoot>
                            <tr>
                                <th class="name">{t!(i18n, reports.total)}</th>
                                {Column::ALL.iter().map(|c| view! { <td data-col=c.code()>{figure(total.figure(*c))}</td> }).collect_view()}
                            </tr>
                        </tfoot>
                    </table>
                </div>
            }.into_any()
        }}
        <Breakdown totals=breakdown/>
    }
}

/// The counts per status, incident category and outcome, for the whole report.
#[component]
fn Breakdown(totals: crate::reports::Totals) -> impl IntoView {
    let i18n = use_i18n();
    let status = totals.models_by_status.clone();
    let categories = totals.incidents_by_category.clone();
    let outcomes = totals.incidents_by_outcome.clone();
    let list = move |pairs: Vec<(String, i64)>| {
        pairs.into_iter().map(|(k, n)| format!("{k}: {}", format::grouped(n))).collect::<Vec<_>>().join(" · ")
    };
    view! {
        <dl class="breakdown" id="rollup-breakdown">
            <dt>{t!(i18n, reports.models_by_status)}</dt>
            <dd>{move || list(status.iter().map(|(k, n)| (ModelStatus::from_code(k).map_or_else(|| k.clone(), |s| labels::status(i18n, s)), *n)).collect())}</dd>
            <dt>{t!(i18n, reports.incidents_by_category)}</dt>
            <dd>{move || list(categories.iter().map(|(k, n)| (IncidentCategory::from_code(k).map_or_else(|| k.clone(), |c| labels::category(i18n, c)), *n)).collect())}</dd>
            <dt>{t!(i18n, reports.incidents_by_outcome)}</dt>
            <dd>{move || list(outcomes.iter().map(|(k, n)| (IncidentOutcome::from_code(k).map_or_else(|| k.clone(), |o| labels::outcome(i18n, o)), *n)).collect())}</dd>
        </dl>
    }
}

#[component]
fn Charts(charts: Vec<(Chart, String)>) -> impl IntoView {
    let i18n = use_i18n();
    view! {
        <h2>{t!(i18n, reports.charts)}</h2>
        {charts.into_iter().map(|(chart, svg)| view! {
            // Our own server's SVG, drawn from the figures above (no script in it).
            <figure class="chart" id=chart.id() inner_html=svg></figure>
        }).collect_view()}
    }
}

#[component]
fn Targets(year: i32, rows: Vec<Progress>, refresh: RwSignal<u32>, editing: TargetEditing) -> impl IntoView {
    let i18n = use_i18n();
    let behind = rows.iter().filter(|r| r.behind).count();
    // Province staff (and admins) set each unit's targets; the rule is the default.
    let editor = (super::role() >= Role::ProvinceStaff && !rows.is_empty())
        .then(|| view! { <TargetEditor year rows=rows.clone() refresh editing/> });
    view! {
        <h2>{move || t_string!(i18n, reports.targets, year).to_string()}</h2>
        {if rows.is_empty() {
            view! { <p class="hint" id="targets-empty">{t!(i18n, reports.no_targets)}</p> }.into_any()
        } else {
            view! {
                <p class="muted" id="targets-summary">{move || t_string!(i18n, reports.behind_count, n = behind).to_string()}</p>
                <div class="table-scroll">
                    <table class="report-table" id="targets">
                        <thead>
                            <tr>
                                <th class="name">{t!(i18n, models.unit)}</th>
                                <th>{t!(i18n, reports.col.new_models)}</th>
                                <th>{t!(i18n, reports.col.typical_models)}</th>
                                <th>{t!(i18n, reports.result)}</th>
                            </tr>
                        </thead>
                        <tbody>
                            {rows.into_iter().map(|r| view! {
                                <tr class:behind=r.behind data-unit=r.unit.clone()>
                                    <th class="name">{r.name.clone()}</th>
                                    <td>{format!("{} / {}", r.new_models, r.new_models_target)}</td>
                                    <td>{format!("{} / {}", r.typical, r.typical_target)}</td>
                                    <td class="result">{move || if r.behind { t_string!(i18n, reports.behind).to_string() } else { t_string!(i18n, reports.achieved).to_string() }}</td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                </div>
            }.into_any()
        }}
        {editor}
    }
}

/// The targets of each unit for the year, to change: two numbers and a
/// save a unit; the figures above follow once saved.
/// Whether the target editor is open and what its last save said: kept by
/// the screen, since saving reloads the figures and redraws the editor.
#[derive(Clone, Copy)]
struct TargetEditing {
    open: RwSignal<bool>,
    status: RwSignal<Option<Result<String, String>>>,
}

#[component]
fn TargetEditor(year: i32, rows: Vec<Progress>, refresh: RwSignal<u32>, editing: TargetEditing) -> impl IntoView {
    let i18n = use_i18n();
    let status = editing.status;
    let save = move |unit: String, name: String, new_models: String, typical: String| {
        let (Ok(new_models), Ok(typical)) = (new_models.trim().parse::<i64>(), typical.trim().parse::<i64>()) else {
            status.set(Some(Err(t_string!(i18n, reports.target_bad).to_string())));
            return;
        };
        let Some(token) = token() else { return };
        let setting = TargetSetting { unit, year, new_models, typical };
        spawn_local(async move {
            let result = api::put_json(&token, TARGET_PATH, &setting).await;
            let said = match result {
                Ok(()) => Ok(t_string!(i18n, reports.target_saved, name).to_string()),
                Err(ApiError::Network(_)) => Err(t_string!(i18n, reports.needs_server).to_string()),
                Err(ApiError::Refused { body, .. }) => Err(body.message),
                Err(e) => Err(e.to_string()),
            };
            let saved = said.is_ok();
            if status.try_set(Some(said)).is_none() && saved {
                refresh.try_update(|n| *n += 1);
            }
        });
    };
    view! {
        <details class="more-filters target-editor" id="targets-edit" prop:open=move || editing.open.get_untracked()
            on:toggle=move |ev| editing.open.set(event_target::<web_sys::HtmlDetailsElement>(&ev).open())>
            <summary>{move || t_string!(i18n, reports.set_targets, year).to_string()}</summary>
            <p class="hint">{t!(i18n, reports.target_rule)}</p>
            <ul class="cards">
                {rows.into_iter().map(|r| {
                    let new_models = RwSignal::new(r.new_models_target.to_string());
                    let typical = RwSignal::new(r.typical_target.to_string());
                    let (unit, name) = (r.unit.clone(), r.name.clone());
                    let ids = |what: &str| format!("target-{what}-{}", r.unit.replace('.', "-"));
                    let (new_id, typical_id, save_id) = (ids("new"), ids("typical"), ids("save"));
                    let (new_for, typical_for) = (new_id.clone(), typical_id.clone());
                    view! {
                        <li class="card target-unit" data-unit=r.unit.clone()>
                            <strong>{r.name.clone()}</strong>
                            <div class="two">
                                <label for=new_for>
                                    <span>{t!(i18n, reports.col.new_models)}</span>
                                    <input id=new_id type="number" inputmode="numeric" min="0" max="1000"
                                        prop:value=move || new_models.get() on:input=move |ev| new_models.set(event_target_value(&ev))/>
                                </label>
                                <label for=typical_for>
                                    <span>{t!(i18n, reports.col.typical_models)}</span>
                                    <input id=typical_id type="number" inputmode="numeric" min="0" max="1000"
                                        prop:value=move || typical.get() on:input=move |ev| typical.set(event_target_value(&ev))/>
                                </label>
                            </div>
                            <button class="secondary" id=save_id on:click=move |_| save(
                                unit.clone(), name.clone(), new_models.get_untracked(), typical.get_untracked())>
                                {t!(i18n, reports.save_target)}
                            </button>
                        </li>
                    }
                }).collect_view()}
            </ul>
            {move || status.get().map(|s| match s {
                Ok(text) => view! { <p class="hint" id="target-status" role="status">{text}</p> }.into_any(),
                Err(text) => view! { <p class="banner error" id="target-status" role="alert">{text}</p> }.into_any(),
            })}
        </details>
    }
}

/// Exports of the rollup and of the raw records of the period.
#[component]
fn Exports(query: ReportQuery) -> impl IntoView {
    let i18n = use_i18n();
    let status = RwSignal::new(None::<Result<String, String>>);
    let busy = RwSignal::new(false);
    let query = StoredValue::new(query);
    let export = move |path: String, fallback: String| {
        if busy.get_untracked() {
            return;
        }
        let Some(token) = token() else { return };
        busy.set(true);
        status.set(None);
        spawn_local(async move {
            let result = match api::get_file(&token, &path).await {
                Ok(file) => save_file(&file, &fallback),
                Err(e @ ApiError::Network(_)) => Err(format!("{}: {e}", t_string!(i18n, reports.needs_server))),
                Err(e) => Err(e.to_string()),
            };
            if busy.try_set(false).is_none() {
                status.set(Some(result));
            }
        });
    };
    let button = move |id: &'static str, label: String, (path, file): (String, String)| {
        view! {
            <button class="secondary" id=id disabled=move || busy.get() on:click=move |_| export(path.clone(), file.clone())>{label}</button>
        }
    };
    let (from, to) = query.with_value(|q| (q.from, q.to));
    let rollup = move |f: ExportFormat| {
        (query.with_value(|q| q.rollup_path(Some(f))), format!("tong-hop-{from}-{to}.{}", f.code()))
    };
    let records =
        move |f: ExportFormat| (query.with_value(|q| q.records_path(f)), format!("ban-ghi-{from}-{to}.{}", f.code()));
    // Each button says what it exports: the summary table or the records.
    view! {
        <h2>{t!(i18n, reports.exports)}</h2>
        <div class="export-buttons">
            {move || button("export-xlsx", t_string!(i18n, reports.export_rollup_xlsx).to_string(), rollup(ExportFormat::Xlsx))}
            {move || button("export-csv", t_string!(i18n, reports.export_rollup_csv).to_string(), rollup(ExportFormat::Csv))}
            {move || button("export-records-xlsx", t_string!(i18n, reports.export_records_xlsx).to_string(), records(ExportFormat::Xlsx))}
            {move || button("export-records-csv", t_string!(i18n, reports.export_records_csv).to_string(), records(ExportFormat::Csv))}
        </div>
        {move || status.get().map(|s| match s {
            Ok(name) => view! { <p class="hint" id="export-status">{move || t_string!(i18n, reports.downloaded, name = name.clone()).to_string()}</p> }.into_any(),
            Err(reason) => view! { <p class="banner error" id="export-status" role="alert">{move || t_string!(i18n, reports.export_failed, reason = reason.clone()).to_string()}</p> }.into_any(),
        })}
    }
}

/// Hands a downloaded file to the browser as a download (a Blob behind an
/// object URL, clicked through an `<a download>`); returns its name.
fn save_file(file: &Download, fallback: &str) -> Result<String, String> {
    use wasm_bindgen::JsCast;
    let name = file.name.clone().unwrap_or_else(|| fallback.to_owned());
    let fail = |e: wasm_bindgen::JsValue| format!("{e:?}");
    let parts = js_sys::Array::of1(&js_sys::Uint8Array::from(file.bytes.as_slice()));
    let options = web_sys::BlobPropertyBag::new();
    options.set_type(&file.content_type);
    let blob = web_sys::Blob::new_with_u8_array_sequence_and_options(&parts, &options).map_err(fail)?;
    let url = web_sys::Url::create_object_url_with_blob(&blob).map_err(fail)?;
    let document = web_sys::window().and_then(|w| w.document()).ok_or("no document")?;
    let link: web_sys::HtmlAnchorElement =
        document.create_element("a").map_err(fail)?.dyn_into().map_err(|_| "not a link".to_owned())?;
    link.set_href(&url);
    link.set_download(&name);
    let body = document.body().ok_or("no body")?;
    body.append_child(&link).map_err(fail)?;
    link.click();
    link.remove();
    // The browser has taken the file once the click is handled; free it a little later.
    spawn_local(async move {
        gloo_timers::future::sleep(std::time::Duration::from_secs(30)).await;
        let _ = web_sys::Url::revoke_object_url(&url);
    });
    Ok(name)
}

/// A typical (or replicating) model as the server's model list gives it.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
struct ListedModel {
    id: String,
    name: String,
    unit: String,
}

#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
struct ListedPage {
    models: Vec<ListedModel>,
}

/// A typical model and the models replicated from it. The typical models
/// are the phone's and, online, the server's (a province browser holds
/// only the models it opened).
#[component]
fn Replications() -> impl IntoView {
    let i18n = use_i18n();
    let ui = use_ui();
    let listed = RwSignal::new(Vec::<ListedModel>::new());
    Effect::new(move |_| {
        if !ui.online.get() {
            return;
        }
        let Some(token) = token() else { return };
        spawn_local(async move {
            let mut found = Vec::new();
            for status in ["typical", "replicating"] {
                let path = format!("/api/v1/models?status={status}&per_page=100");
                if let Ok(page) = api::get_json::<ListedPage>(&token, &path).await {
                    found.extend(page.models);
                }
            }
            listed.set(found);
        });
    });
    let typical = move || {
        ui.revision.track();
        let mut list = device::with(|d| {
            catalog::models(&d.replica)
                .into_iter()
                .filter(|m| crate::models::province_only(m.status))
                .map(|m| (m.id.to_string(), m.name, m.unit))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
        listed.with(|l| {
            for m in l {
                if !list.iter().any(|(id, _, _)| *id == m.id) {
                    list.push((m.id.clone(), m.name.clone(), m.unit.clone()));
                }
            }
        });
        list
    };
    let chosen = RwSignal::new(String::new());
    let answer = RwSignal::new(None::<Result<Vec<Replication>, Problem>>);
    let generation = StoredValue::new(0u64);
    Effect::new(move |_| {
        let model = chosen.get();
        let online = ui.online.get();
        let this = generation.get_value() + 1;
        generation.set_value(this);
        answer.set(None);
        if model.is_empty() {
            return;
        }
        if !online {
            answer.set(Some(Err(Problem::NeedsServer)));
            return;
        }
        let Some(token) = token() else { return };
        spawn_local(async move {
            let result = api::get_json::<Vec<Replication>>(&token, &replications_path(&model)).await;
            if generation.try_get_value() == Some(this) {
                answer.set(Some(result.map_err(|e| Problem::of(&e))));
            }
        });
    });
    view! {
        <h2>{t!(i18n, reports.replications)}</h2>
        {move || {
            let list = typical();
            if list.is_empty() {
                return view! { <p class="hint" id="no-typical">{t!(i18n, reports.no_typical)}</p> }.into_any();
            }
            view! {
                <label for="r-replication-model">{t!(i18n, reports.typical_model)}</label>
                <select id="r-replication-model" on:change=move |ev| chosen.set(event_target_value(&ev))>
                    <option value="" selected=move || chosen.get().is_empty()>{t!(i18n, reports.choose_model)}</option>
                    {list.into_iter().map(|(id, name, unit)| {
                        let value = id.clone();
                        let place = crate::org::with(|o| o.name(&unit));
                        view! { <option value=id selected=move || chosen.get() == value>{format!("{name} – {place}")}</option> }
                    }).collect_view()}
                </select>
            }.into_any()
        }}
        {move || answer.get().map(|a| match a {
            Err(Problem::NeedsServer) => view! { <p class="banner warn" id="replications-offline">{t!(i18n, reports.needs_server)}</p> }.into_any(),
            Err(Problem::Refused(reason)) => view! { <p class="banner error">{move || t_string!(i18n, reports.refused, reason = reason.clone()).to_string()}</p> }.into_any(),
            Err(_) => view! { <p class="banner error">{t!(i18n, sync.err_server)}</p> }.into_any(),
            Ok(list) if list.is_empty() => view! { <p class="hint" id="replications-empty">{t!(i18n, reports.no_replications)}</p> }.into_any(),
            Ok(list) => {
                let n = list.len();
                view! {
                    <p class="muted" id="replications-count">{move || t_string!(i18n, reports.replicated_to, n).to_string()}</p>
                    <ul class="cards" id="replications">
                        {list.into_iter().map(|r| {
                            let started = Day::parse(&r.started_on).map(format::day).unwrap_or(r.started_on.clone());
                            let depth = r.depth;
                            view! {
                                <li class="card replication" data-model=r.model.clone() data-depth=r.depth>
                                    <strong>{r.name.clone()}</strong>
                                    <span class="muted">{if r.unit_name.is_empty() { r.unit.clone() } else { r.unit_name.clone() }}</span>
                                    <span class="muted">{move || t_string!(i18n, reports.since, day = started.clone()).to_string()}</span>
                                    {(depth > 1).then(|| view! { <span class="badge">{move || t_string!(i18n, reports.indirect, n = depth).to_string()}</span> })}
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                }.into_any()
            }
        })}
    }
}

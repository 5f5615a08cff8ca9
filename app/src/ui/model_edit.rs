//! A model's profile form, for commune staff and above: create a model or
//! update its profile, its status and the year of each step, and which
//! model it was replicated from. Saved on the phone like a record (offline
//! first), checked against the server's rules before it is saved: only
//! province staff set the typical and replicating steps, so those are locked
//! for commune staff, with the reason shown.

use kheo_shared::codes::{Code, Field, ModelStatus, Role};
use kheo_shared::ids::ModelId;
use kheo_shared::model::StatusYears;
use kheo_shared::scalars::Day;
use leptos::prelude::*;

use super::labels::{self, I18n};
use super::record_form::{Choice, Input};
use super::{format, role};
use crate::catalog;
use crate::device::{self, WriteFailure};
use crate::i18n::*;
use crate::models::{self, ModelSaveError, ProfileFields, STEPS};
use crate::state::{Notice, Screen, use_ui};
use crate::store::StoreError;
use crate::sync;

#[component]
pub fn ModelEdit(model: Option<ModelId>) -> impl IntoView {
    let i18n = use_i18n();
    let ui = use_ui();
    // A notice about an earlier save is not about this form.
    ui.notice.set(None);
    let role = role();
    let existing = model.and_then(|id| device::with(|d| catalog::model(&d.replica, id)).flatten());
    let id = existing.as_ref().map_or_else(ModelId::new_random, |p| p.id);
    let base = existing.as_ref().map(ProfileFields::of);
    let saved_status = existing.as_ref().map(|p| p.status);
    let is_new = existing.is_none();
    let scope = ui.account.with_untracked(|a| a.as_ref().map(|a| a.unit.clone()).unwrap_or_default());
    let draft = Draft::new(base.as_ref(), &scope);
    let error = RwSignal::new(None::<String>);

    let back = move || match model {
        Some(m) => Screen::Model(m),
        None => Screen::Models,
    };
    if role < Role::CommuneStaff || (model.is_some() && is_new) {
        let text = if role < Role::CommuneStaff {
            t_string!(i18n, model_form.staff_only).to_string()
        } else {
            t_string!(i18n, model_form.not_found).to_string()
        };
        return view! {
            <nav class="crumbs">
                <button class="link" id="back" on:click=move |_| crate::route::back(ui, back())>"← " {t!(i18n, back)}</button>
            </nav>
            <p class="banner warn" id="model-form-denied">{text}</p>
        }
        .into_any();
    }

    let units = unit_options(&scope, existing.as_ref().map(|p| p.unit.as_str()));
    let sources: Vec<(String, String)> = device::with(|d| {
        let all = catalog::models(&d.replica);
        models::replication_sources(&all, id).into_iter().map(|m| (m.id.to_string(), m.name.clone())).collect()
    })
    .unwrap_or_default();
    let source_status: Vec<(String, ModelStatus)> =
        device::with(|d| catalog::models(&d.replica).into_iter().map(|m| (m.id.to_string(), m.status)).collect())
            .unwrap_or_default();

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let edited = match draft.read(i18n) {
            Ok(f) => f,
            Err(message) => {
                error.set(Some(message));
                return;
            }
        };
        let result = device::with(|d| {
            let now = device::now();
            let current = catalog::model(&d.replica, id);
            let profile = models::apply(id, base.as_ref(), &edited, current.as_ref(), now);
            let doc = models::save(&mut d.replica, role, &profile, now).map_err(Failure::Model)?;
            device::persist(d, doc).map_err(Failure::Storage)
        })
        .unwrap_or(Err(Failure::Storage(WriteFailure::NoSession)));
        match result {
            Ok(()) => {
                ui.notice.set(Some(Notice::Saved));
                ui.changed();
                sync::wake();
                // In place of the form: Back does not reopen it.
                if is_new {
                    crate::route::replace(ui, Screen::Model(id))
                } else {
                    crate::route::back(ui, Screen::Model(id))
                }
            }
            Err(e) => error.set(Some(explain(i18n, e))),
        }
    };

    // Choosing a status whose year is not filled in proposes this year.
    let status = draft.status;
    let on_status = move |ev| {
        let Some(s) = ModelStatus::from_code(&event_target_value(&ev)) else { return };
        status.set(s);
        let year = draft.year(s);
        if year.get_untracked().trim().is_empty() && models::may_set_year(role, s) {
            year.set(js_sys::Date::new_0().get_full_year().to_string());
        }
    };
    let province = role >= Role::ProvinceStaff;
    let source_label = move |code: &str, name: &str| {
        let status = source_status.iter().find(|(c, _)| c == code).map(|(_, s)| labels::status(i18n, *s));
        match status {
            Some(s) => format!("{name} ({s})"),
            None => name.to_owned(),
        }
    };
    let source_options = sources
        .into_iter()
        .map(|(code, name)| {
            let label = source_label(&code, &name);
            let value = code.clone();
            view! { <option value=code selected=move || draft.replicated_from.get() == value>{label}</option> }
        })
        .collect_view();

    view! {
        <nav class="crumbs">
            <button class="link" id="back" on:click=move |_| crate::route::back(ui, back())>"← " {t!(i18n, back)}</button>
        </nav>
        <h1>{move || if is_new { t_string!(i18n, model_form.new_title).to_string() } else { t_string!(i18n, model_form.edit_title).to_string() }}</h1>
        <form class="model-form" id="model-form" on:submit=submit>
            <Input id="m-name" value=draft.name>{t!(i18n, model_form.name)}</Input>
            <Choice id="m-field".to_string() value=draft.field label=labels::field>{t!(i18n, models.field)}</Choice>
            <label for="m-unit">{t!(i18n, models.unit)}</label>
            <select id="m-unit" on:change=move |ev| draft.unit.set(event_target_value(&ev))>
                {unit_groups(units.clone()).into_iter().map(|(ended, group)| view! {
                    <optgroup label=move || group_label(i18n, ended.as_deref())>
                        {group.into_iter().map(|u| {
                            let code = u.code.clone();
                            let value = u.code.clone();
                            view! { <option value=value selected=move || draft.unit.get() == code>{unit_label(&u)}</option> }
                        }).collect_view()}
                    </optgroup>
                }).collect_view()}
            </select>
            {move || {
                let chosen = draft.unit.get();
                let day = units.iter().find(|u| u.code == chosen).and_then(|u| u.ended.as_deref()).and_then(Day::parse)?;
                let day = format::day(day);
                Some(view! { <p class="hint" id="m-unit-ended">{move || t_string!(i18n, model_form.unit_ended, day = day.clone()).to_string()}</p> })
            }}
            <Input id="m-lead" value=draft.lead>{t!(i18n, models.lead)}</Input>
            <Input id="m-started" value=draft.started kind="date">{t!(i18n, model_form.started)}</Input>
            <label for="m-status">{t!(i18n, models.status)}</label>
            <select id="m-status" on:change=on_status>
                {STEPS.iter().map(|s| {
                    let s = *s;
                    view! {
                        <option value=s.code() selected=move || status.get() == s
                            disabled=!models::may_choose_status(role, s, saved_status)>
                            {move || labels::status(i18n, s)}
                        </option>
                    }
                }).collect_view()}
            </select>
            <fieldset class="years" id="m-years">
                <legend>{t!(i18n, model_form.years)}</legend>
                {STEPS.iter().map(|s| {
                    let s = *s;
                    let value = draft.year(s);
                    let id = format!("m-year-{}", s.code());
                    view! {
                        <div>
                            <label for=id.clone()>{move || labels::status(i18n, s)}</label>
                            <input id=id type="number" inputmode="numeric" min="2000" max="2100"
                                disabled=!models::may_set_year(role, s)
                                prop:value=move || value.get() on:input=move |ev| value.set(event_target_value(&ev))/>
                        </div>
                    }
                }).collect_view()}
            </fieldset>
            {(!province).then(|| view! { <p class="hint" id="m-province-only">{t!(i18n, model_form.province_only)}</p> })}
            <label for="m-replicated-from">{t!(i18n, models.replicated_from)}</label>
            <select id="m-replicated-from" on:change=move |ev| draft.replicated_from.set(event_target_value(&ev))>
                <option value="" selected=move || draft.replicated_from.get().is_empty()>{t!(i18n, model_form.no_source)}</option>
                {source_options}
            </select>
            <p class="hint">{t!(i18n, model_form.source_hint)}</p>
            <div class="two">
                <div><Input id="m-members" value=draft.members kind="number" inputmode="numeric">{t!(i18n, models.members)}</Input></div>
                <div><Input id="m-households" value=draft.households kind="number" inputmode="numeric">{t!(i18n, models.households)}</Input></div>
            </div>
            <label for="m-description">{t!(i18n, form.description)}</label>
            <textarea id="m-description" rows="3" prop:value=move || draft.description.get()
                on:input=move |ev| draft.description.set(event_target_value(&ev))></textarea>
            {move || error.get().map(|e| view! { <p class="banner error" id="model-form-error" role="alert">{e}</p> })}
            <div class="actions">
                <button class="primary" id="save-model" type="submit">{t!(i18n, save)}</button>
            </div>
        </form>
    }
    .into_any()
}

enum Failure {
    Model(ModelSaveError),
    Storage(WriteFailure),
}

fn explain(i18n: I18n, e: Failure) -> String {
    match e {
        Failure::Model(ModelSaveError::NeedsProvince) => t_string!(i18n, model_form.province_only).to_string(),
        Failure::Model(ModelSaveError::NeedsStaff) => t_string!(i18n, model_form.staff_only).to_string(),
        Failure::Model(e) => t_string!(i18n, form.invalid, reason = e).to_string(),
        Failure::Storage(WriteFailure::Storage(StoreError::Full)) => t_string!(i18n, storage_full).to_string(),
        Failure::Storage(WriteFailure::Storage(e)) => t_string!(i18n, storage_failed, reason = e).to_string(),
        Failure::Storage(e) => t_string!(i18n, form.invalid, reason = e).to_string(),
    }
}

/// The units of the account's scope as the phone knows the tree; the
/// scope itself (and the model's own unit) even before the tree arrives.
fn unit_options(scope: &str, own: Option<&str>) -> Vec<models::UnitChoice> {
    crate::org::with(|o| {
        let mut choices = models::unit_choices(o.units(), scope);
        for code in [Some(scope), own].into_iter().flatten() {
            if !code.is_empty() && !choices.iter().any(|c| c.code == code) {
                let ended = o.unit(code).and_then(|u| u.valid_to.clone());
                choices.push(models::UnitChoice { code: code.to_owned(), name: o.name(code), depth: 0, ended });
            }
        }
        choices
    })
}

/// A unit's name, indented under its parent. The name alone, so that the
/// closed select shows all of it on a 360 px phone; whether the unit has
/// ended is said by its group and under the select.
fn unit_label(u: &models::UnitChoice) -> String {
    format!("{}{}", "\u{a0}\u{a0}".repeat(u.depth), u.name)
}

/// The units in groups: those in existence first, then those ended by a
/// reform, by the day they ended; each group keeps the tree's order.
fn unit_groups(units: Vec<models::UnitChoice>) -> Vec<(Option<String>, Vec<models::UnitChoice>)> {
    let mut groups: Vec<(Option<String>, Vec<models::UnitChoice>)> = Vec::new();
    for u in units {
        match groups.iter_mut().find(|(ended, _)| *ended == u.ended) {
            Some((_, group)) => group.push(u),
            None => groups.push((u.ended.clone(), vec![u])),
        }
    }
    groups.sort_by(|a, b| (a.0.is_some(), &a.0).cmp(&(b.0.is_some(), &b.0)));
    groups
}

fn group_label(i18n: I18n, ended: Option<&str>) -> String {
    match ended.and_then(Day::parse) {
        Some(day) => t_string!(i18n, model_form.units_until, day = format::day(day)).to_string(),
        None => t_string!(i18n, model_form.units_current).to_string(),
    }
}

/// What the form holds, as typed.
#[derive(Clone, Copy)]
struct Draft {
    name: RwSignal<String>,
    field: RwSignal<Field>,
    unit: RwSignal<String>,
    lead: RwSignal<String>,
    started: RwSignal<String>,
    status: RwSignal<ModelStatus>,
    years: [RwSignal<String>; 5],
    replicated_from: RwSignal<String>,
    members: RwSignal<String>,
    households: RwSignal<String>,
    description: RwSignal<String>,
}

fn today() -> (String, i32) {
    let d = js_sys::Date::new_0();
    (format!("{}-{:02}-{:02}", d.get_full_year(), d.get_month() + 1, d.get_date()), d.get_full_year() as i32)
}

impl Draft {
    fn new(from: Option<&ProfileFields>, scope: &str) -> Self {
        let text = |s: String| RwSignal::new(s);
        let (today, this_year) = today();
        let years = match from {
            Some(p) => p.status_years.clone(),
            None => StatusYears { building: Some(this_year), ..StatusYears::default() },
        };
        let year_text = |s: ModelStatus| text(years.get(s).map(|y| y.to_string()).unwrap_or_default());
        Draft {
            name: text(from.map(|p| p.name.clone()).unwrap_or_default()),
            field: RwSignal::new(from.map_or(Field::EconomicDevelopment, |p| p.field)),
            unit: text(from.map_or_else(|| scope.to_owned(), |p| p.unit.clone())),
            lead: text(from.map(|p| p.lead_organisation.clone()).unwrap_or_default()),
            started: text(from.map_or(today, |p| p.started_on.to_string())),
            status: RwSignal::new(from.map_or(ModelStatus::Building, |p| p.status)),
            years: STEPS.map(year_text),
            replicated_from: text(from.and_then(|p| p.replicated_from).map(|m| m.to_string()).unwrap_or_default()),
            members: text(from.map(|p| p.members.to_string()).unwrap_or_default()),
            households: text(from.map(|p| p.households.to_string()).unwrap_or_default()),
            description: text(from.map(|p| p.description.clone()).unwrap_or_default()),
        }
    }

    fn year(&self, step: ModelStatus) -> RwSignal<String> {
        let i = STEPS.iter().position(|s| *s == step).unwrap_or(0);
        self.years[i]
    }

    /// The fields the form describes, or the first thing to fix, in words.
    fn read(self, i18n: I18n) -> Result<ProfileFields, String> {
        let name = self.name.get_untracked().trim().to_owned();
        if name.is_empty() {
            return Err(t_string!(i18n, form.required, field = t_string!(i18n, model_form.name)).to_string());
        }
        let unit = self.unit.get_untracked();
        if unit.is_empty() {
            return Err(t_string!(i18n, form.required, field = t_string!(i18n, models.unit)).to_string());
        }
        let started_on = Day::parse(self.started.get_untracked().trim())
            .ok_or_else(|| t_string!(i18n, form.bad_date).to_string())?;
        let mut status_years = StatusYears::default();
        for step in STEPS {
            let year = models::parse_year(&self.year(step).get_untracked()).map_err(|models::BadYear| {
                t_string!(i18n, model_form.bad_year, step = labels::status(i18n, step)).to_string()
            })?;
            status_years.set(step, year);
        }
        let status = self.status.get_untracked();
        if status_years.get(status).is_none() {
            return Err(t_string!(i18n, model_form.status_needs_year, step = labels::status(i18n, status)).to_string());
        }
        let ordered: Vec<i32> = STEPS[..4].iter().filter_map(|s| status_years.get(*s)).collect();
        if ordered.windows(2).any(|w| w[1] < w[0]) {
            return Err(t_string!(i18n, model_form.years_order).to_string());
        }
        let count = |s: RwSignal<String>, field: String| {
            format::parse_count(&s.get_untracked())
                .filter(|n| *n <= 100_000)
                .ok_or_else(|| t_string!(i18n, form.not_a_number, field).to_string())
        };
        let replicated_from = match self.replicated_from.get_untracked().as_str() {
            "" => None,
            text => Some(text.parse::<ModelId>().map_err(|_| t_string!(i18n, model_form.bad_source).to_string())?),
        };
        Ok(ProfileFields {
            name,
            field: self.field.get_untracked(),
            unit,
            lead_organisation: self.lead.get_untracked().trim().to_owned(),
            started_on,
            status,
            status_years,
            replicated_from,
            members: count(self.members, t_string!(i18n, models.members).to_string())?,
            households: count(self.households, t_string!(i18n, models.households).to_string())?,
            description: self.description.get_untracked().trim().to_owned(),
        })
    }
}

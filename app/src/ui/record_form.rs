//! The record form, one for every kind: large fields for a small touch
//! screen, numbers typed the Vietnamese way, any number of incidents on a
//! patrol. "Saved" is shown only once the document is in storage; when
//! storage refuses, the form keeps what was typed.

use kheo_shared::codes::{Code, IncidentCategory, IncidentOutcome, RecordKind, ReviewState, SupportType};
use kheo_shared::ids::{ModelId, RecordId};
use kheo_shared::record::{Activity, HouseholdSupport, Incident, Meeting, Patrol, Production, Record, Review};
use kheo_shared::scalars::{ClockTime, Day, Timestamp};
use leptos::prelude::*;

use super::format;
use super::labels::{self, I18n};
use crate::catalog;
use crate::device::{self, WriteFailure};
use crate::i18n::*;
use crate::state::{Notice, Screen, use_ui};
use crate::store::StoreError;
use crate::sync;

#[component]
pub fn RecordForm(model: ModelId, record: Option<RecordId>) -> impl IntoView {
    let i18n = use_i18n();
    let ui = use_ui();
    // A notice about an earlier save is not about this form.
    ui.notice.set(None);
    let existing = record.and_then(|id| device::with(|d| catalog::record(&d.replica, model, id)).flatten());
    let draft = Draft::new(existing.as_ref());
    let record_id = existing.as_ref().map(|r| r.id).unwrap_or_else(RecordId::new_random);
    let year_lock = existing.as_ref().map(|r| r.occurred_on.year());
    let is_new = existing.is_none();
    let review = existing.as_ref().map(|r| r.review.clone());
    let error = RwSignal::new(None::<String>);
    let saving = RwSignal::new(false);

    let finish = move |result: Result<(), WriteFailure>| match result {
        Ok(()) => {
            ui.notice.set(Some(Notice::Saved));
            ui.changed();
            sync::wake();
            ui.screen.set(Screen::Model(model));
        }
        Err(WriteFailure::Storage(StoreError::Full)) => error.set(Some(t_string!(i18n, storage_full).to_string())),
        Err(WriteFailure::Storage(e)) => error.set(Some(t_string!(i18n, storage_failed, reason = e).to_string())),
        Err(e) => error.set(Some(t_string!(i18n, form.invalid, reason = e).to_string())),
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if saving.get_untracked() {
            return;
        }
        match draft.to_record(i18n, record_id, year_lock) {
            Err(message) => error.set(Some(message)),
            Ok(record) => {
                saving.set(true);
                let result = device::save_record(model, record);
                saving.set(false);
                finish(result);
            }
        }
    };
    let delete = move |_| {
        let question = t_string!(i18n, confirm_delete).to_string();
        let sure = web_sys::window().and_then(|w| w.confirm_with_message(&question).ok()).unwrap_or(false);
        if sure {
            finish(device::delete_record(model, record_id));
        }
    };
    let kind = draft.kind;

    view! {
        <nav class="crumbs">
            <button class="link" id="back" on:click=move |_| ui.screen.set(Screen::Model(model))>"← " {t!(i18n, back)}</button>
        </nav>
        <h1>{move || if is_new { t_string!(i18n, form.new_title).to_string() } else { t_string!(i18n, form.edit_title).to_string() }}</h1>
        {review.filter(|r| r.state == ReviewState::Returned).map(|r| view! {
            <div class="banner warn" id="returned">
                {move || t_string!(i18n, review.returned, comment = r.comment.clone()).to_string()}
            </div>
        })}
        <form class="record-form" on:submit=submit>
            <label for="f-kind">{t!(i18n, form.kind)}</label>
            <select id="f-kind" disabled=!is_new
                on:change=move |ev| if let Some(k) = RecordKind::from_code(&event_target_value(&ev)) { kind.set(k) }>
                {RecordKind::ALL.iter().map(|k| view! {
                    <option value=k.code() selected=move || kind.get() == *k>{move || labels::kind(i18n, *k)}</option>
                }).collect_view()}
            </select>
            <Input id="f-date" value=draft.date kind="date">{t!(i18n, form.date)}</Input>
            {move || match kind.get() {
                RecordKind::Patrol => view! { <PatrolFields draft/> }.into_any(),
                RecordKind::HouseholdSupport => view! { <SupportFields draft/> }.into_any(),
                RecordKind::Production => view! { <ProductionFields draft/> }.into_any(),
                RecordKind::Meeting => view! { <MeetingFields draft/> }.into_any(),
            }}
            <label for="f-note">{t!(i18n, form.note)}</label>
            <textarea id="f-note" rows="2" prop:value=move || draft.note.get()
                on:input=move |ev| draft.note.set(event_target_value(&ev))></textarea>
            {move || error.get().map(|e| view! { <p class="banner error" id="form-error" role="alert">{e}</p> })}
            <div class="actions">
                <button class="primary" id="save" type="submit" disabled=move || saving.get()>
                    {move || if saving.get() { t_string!(i18n, saving).to_string() } else { t_string!(i18n, save).to_string() }}
                </button>
                {(!is_new).then(|| view! { <button class="danger" id="delete" type="button" on:click=delete>{t!(i18n, delete)}</button> })}
            </div>
        </form>
    }
}

/// A labelled one-line input bound to a text signal.
#[component]
pub(super) fn Input(
    id: &'static str,
    value: RwSignal<String>,
    #[prop(optional)] kind: Option<&'static str>,
    #[prop(optional)] inputmode: Option<&'static str>,
    children: Children,
) -> impl IntoView {
    view! {
        <label for=id>{children()}</label>
        <input id=id type=kind.unwrap_or("text") inputmode=inputmode
            prop:value=move || value.get() on:input=move |ev| value.set(event_target_value(&ev))/>
    }
}

/// A labelled choice among the codes of a vocabulary.
#[component]
pub(super) fn Choice<T: Code + Send + Sync>(
    id: String,
    value: RwSignal<T>,
    label: fn(I18n, T) -> String,
    children: Children,
) -> impl IntoView {
    let i18n = use_i18n();
    view! {
        <label for=id.clone()>{children()}</label>
        <select id=id on:change=move |ev| if let Some(v) = T::from_code(&event_target_value(&ev)) { value.set(v) }>
            {T::ALL.iter().map(|v| view! {
                <option value=v.code() selected=move || value.get() == *v>{move || label(i18n, *v)}</option>
            }).collect_view()}
        </select>
    }
}

#[component]
fn PatrolFields(draft: Draft) -> impl IntoView {
    let i18n = use_i18n();
    let next_key = StoredValue::new(draft.incidents.with_untracked(|v| v.len() as u32));
    let add = move |_| {
        let key = next_key.get_value();
        next_key.set_value(key + 1);
        draft.incidents.update(|v| v.push(IncidentDraft::new(key, None)));
    };
    view! {
        <div class="two">
            <div><Input id="f-start" value=draft.start kind="time">{t!(i18n, form.start)}</Input></div>
            <div><Input id="f-end" value=draft.end kind="time">{t!(i18n, form.end)}</Input></div>
        </div>
        <Input id="f-members" value=draft.members kind="number" inputmode="numeric">{t!(i18n, form.members_present)}</Input>
        <Input id="f-area" value=draft.area>{t!(i18n, form.area)}</Input>
        <fieldset class="incidents" id="incidents">
            <legend>{t!(i18n, form.incidents)}</legend>
            <For each=move || draft.incidents.get() key=|inc| inc.key let:inc>
                {
                    let position = move || draft.incidents.with(|v| v.iter().position(|i| i.key == inc.key).map_or(0, |p| p + 1));
                    let remove = move |_| draft.incidents.update(|v| v.retain(|i| i.key != inc.key));
                    view! {
                        <div class="incident" data-incident=inc.key>
                            <strong>{move || t_string!(i18n, form.incident_n, n = position()).to_string()}</strong>
                            <Choice id=format!("f-inc-{}-category", inc.key) value=inc.category label=labels::category>
                                {t!(i18n, form.category)}
                            </Choice>
                            <Choice id=format!("f-inc-{}-outcome", inc.key) value=inc.outcome label=labels::outcome>
                                {t!(i18n, form.outcome)}
                            </Choice>
                            <label for=format!("f-inc-{}-description", inc.key)>{t!(i18n, form.description)}</label>
                            <input id=format!("f-inc-{}-description", inc.key) prop:value=move || inc.description.get()
                                on:input=move |ev| inc.description.set(event_target_value(&ev))/>
                            <button type="button" class="link danger" on:click=remove>{t!(i18n, form.remove_incident)}</button>
                        </div>
                    }
                }
            </For>
            <button type="button" class="secondary" id="add-incident" on:click=add>"+ " {t!(i18n, form.add_incident)}</button>
        </fieldset>
    }
}

#[component]
fn SupportFields(draft: Draft) -> impl IntoView {
    let i18n = use_i18n();
    view! {
        <Input id="f-giver" value=draft.giver>{t!(i18n, form.giver)}</Input>
        <Input id="f-receiver" value=draft.receiver>{t!(i18n, form.receiver)}</Input>
        <Choice id="f-support-type".to_string() value=draft.support_type label=labels::support>{t!(i18n, form.support_type)}</Choice>
        <Input id="f-amount" value=draft.amount inputmode="numeric">{t!(i18n, form.amount_vnd)}</Input>
        <div class="two">
            <div><Input id="f-workdays" value=draft.workdays inputmode="decimal">{t!(i18n, form.workdays)}</Input></div>
            <div><Input id="f-quantity" value=draft.quantity inputmode="decimal">{t!(i18n, form.quantity)}</Input></div>
        </div>
        <Input id="f-unit" value=draft.unit>{t!(i18n, form.unit)}</Input>
        <Input id="f-description" value=draft.description>{t!(i18n, form.description)}</Input>
    }
}

#[component]
fn ProductionFields(draft: Draft) -> impl IntoView {
    let i18n = use_i18n();
    view! {
        <Input id="f-product" value=draft.product>{t!(i18n, form.product)}</Input>
        <div class="two">
            <div><Input id="f-quantity" value=draft.quantity inputmode="decimal">{t!(i18n, form.quantity)}</Input></div>
            <div><Input id="f-unit" value=draft.unit>{t!(i18n, form.unit)}</Input></div>
        </div>
        <Input id="f-revenue" value=draft.amount inputmode="numeric">{t!(i18n, form.revenue_vnd)}</Input>
    }
}

#[component]
fn MeetingFields(draft: Draft) -> impl IntoView {
    let i18n = use_i18n();
    view! {
        <Input id="f-topic" value=draft.topic>{t!(i18n, form.topic)}</Input>
        <Input id="f-attendees" value=draft.attendees kind="number" inputmode="numeric">{t!(i18n, form.attendees)}</Input>
    }
}

#[derive(Clone, Copy)]
struct IncidentDraft {
    key: u32,
    id: RwSignal<String>,
    category: RwSignal<IncidentCategory>,
    description: RwSignal<String>,
    outcome: RwSignal<IncidentOutcome>,
}

impl PartialEq for IncidentDraft {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl IncidentDraft {
    fn new(key: u32, from: Option<&Incident>) -> Self {
        IncidentDraft {
            key,
            id: RwSignal::new(from.map(|i| i.id.clone()).unwrap_or_else(|| uuid::Uuid::new_v4().to_string())),
            category: RwSignal::new(from.map_or(IncidentCategory::Theft, |i| i.category)),
            description: RwSignal::new(from.map(|i| i.description.clone()).unwrap_or_default()),
            outcome: RwSignal::new(from.map_or(IncidentOutcome::HandledByTeam, |i| i.outcome)),
        }
    }
}

/// What the form holds, as typed. Fields shared by several kinds (amount,
/// quantity, unit) share one signal, so switching kind keeps what was typed.
#[derive(Clone, Copy)]
struct Draft {
    kind: RwSignal<RecordKind>,
    date: RwSignal<String>,
    note: RwSignal<String>,
    start: RwSignal<String>,
    end: RwSignal<String>,
    members: RwSignal<String>,
    area: RwSignal<String>,
    incidents: RwSignal<Vec<IncidentDraft>>,
    giver: RwSignal<String>,
    receiver: RwSignal<String>,
    support_type: RwSignal<SupportType>,
    amount: RwSignal<String>,
    workdays: RwSignal<String>,
    quantity: RwSignal<String>,
    unit: RwSignal<String>,
    description: RwSignal<String>,
    product: RwSignal<String>,
    topic: RwSignal<String>,
    attendees: RwSignal<String>,
}

fn text(s: impl Into<String>) -> RwSignal<String> {
    RwSignal::new(s.into())
}

fn today() -> String {
    let d = js_sys::Date::new_0();
    format!("{}-{:02}-{:02}", d.get_full_year(), d.get_month() + 1, d.get_date())
}

impl Draft {
    fn new(from: Option<&Record>) -> Self {
        let d = Draft {
            kind: RwSignal::new(from.map_or(RecordKind::Patrol, Record::kind)),
            date: text(from.map_or_else(today, |r| r.occurred_on.to_string())),
            note: text(from.map(|r| r.note.clone()).unwrap_or_default()),
            start: text("21:00"),
            end: text("23:00"),
            members: text(""),
            area: text(""),
            incidents: RwSignal::new(Vec::new()),
            giver: text(""),
            receiver: text(""),
            support_type: RwSignal::new(SupportType::Money),
            amount: text(""),
            workdays: text(""),
            quantity: text(""),
            unit: text(""),
            description: text(""),
            product: text(""),
            topic: text(""),
            attendees: text(""),
        };
        match from.map(|r| &r.activity) {
            Some(Activity::Patrol(p)) => {
                d.start.set(p.start.to_string());
                d.end.set(p.end.to_string());
                d.members.set(p.members_present.to_string());
                d.area.set(p.area.clone());
                d.incidents
                    .set(p.incidents.iter().enumerate().map(|(k, i)| IncidentDraft::new(k as u32, Some(i))).collect());
            }
            Some(Activity::HouseholdSupport(h)) => {
                d.giver.set(h.giver.clone());
                d.receiver.set(h.receiver.clone());
                d.support_type.set(h.support_type);
                d.amount.set(format::grouped(h.amount_vnd));
                d.workdays.set(format::decimal(h.workdays));
                d.quantity.set(format::decimal(h.quantity));
                d.unit.set(h.unit.clone());
                d.description.set(h.description.clone());
            }
            Some(Activity::Production(p)) => {
                d.product.set(p.product.clone());
                d.quantity.set(format::decimal(p.quantity));
                d.unit.set(p.unit.clone());
                d.amount.set(format::grouped(p.revenue_vnd));
            }
            Some(Activity::Meeting(m)) => {
                d.topic.set(m.topic.clone());
                d.attendees.set(m.attendees.to_string());
            }
            None => {}
        }
        d
    }

    /// The record the form describes, or the first thing to fix, in words.
    fn to_record(self, i18n: I18n, id: RecordId, year_lock: Option<i32>) -> Result<Record, String> {
        let date = self.date.get_untracked();
        let occurred_on = Day::parse(date.trim()).ok_or_else(|| t_string!(i18n, form.bad_date).to_string())?;
        if let Some(year) = year_lock
            && occurred_on.year() != year
        {
            return Err(t_string!(i18n, form.same_year, year).to_string());
        }
        let count = |s: RwSignal<String>, field: String| {
            format::parse_count(&s.get_untracked()).ok_or_else(|| t_string!(i18n, form.not_a_number, field).to_string())
        };
        let amount = |s: RwSignal<String>, field: String| {
            format::parse_amount(&s.get_untracked())
                .ok_or_else(|| t_string!(i18n, form.not_a_number, field).to_string())
        };
        let decimal = |s: RwSignal<String>, field: String| {
            format::parse_decimal(&s.get_untracked())
                .ok_or_else(|| t_string!(i18n, form.not_a_number, field).to_string())
        };
        let required = |s: RwSignal<String>, field: String| {
            let v = s.get_untracked().trim().to_owned();
            if v.is_empty() { Err(t_string!(i18n, form.required, field).to_string()) } else { Ok(v) }
        };
        let time = |s: RwSignal<String>| {
            ClockTime::parse(s.get_untracked().trim()).ok_or_else(|| t_string!(i18n, form.bad_time).to_string())
        };
        let activity = match self.kind.get_untracked() {
            RecordKind::Patrol => Activity::Patrol(Patrol {
                start: time(self.start)?,
                end: time(self.end)?,
                members_present: count(self.members, t_string!(i18n, form.members_present).to_string())?,
                area: self.area.get_untracked().trim().to_owned(),
                incidents: self
                    .incidents
                    .get_untracked()
                    .iter()
                    .map(|i| Incident {
                        id: i.id.get_untracked(),
                        category: i.category.get_untracked(),
                        description: i.description.get_untracked().trim().to_owned(),
                        outcome: i.outcome.get_untracked(),
                    })
                    .collect(),
            }),
            RecordKind::HouseholdSupport => Activity::HouseholdSupport(HouseholdSupport {
                giver: required(self.giver, t_string!(i18n, form.giver).to_string())?,
                receiver: required(self.receiver, t_string!(i18n, form.receiver).to_string())?,
                support_type: self.support_type.get_untracked(),
                amount_vnd: amount(self.amount, t_string!(i18n, form.amount_vnd).to_string())?,
                workdays: decimal(self.workdays, t_string!(i18n, form.workdays).to_string())?,
                quantity: decimal(self.quantity, t_string!(i18n, form.quantity).to_string())?,
                unit: self.unit.get_untracked().trim().to_owned(),
                description: self.description.get_untracked().trim().to_owned(),
            }),
            RecordKind::Production => Activity::Production(Production {
                product: required(self.product, t_string!(i18n, form.product).to_string())?,
                quantity: decimal(self.quantity, t_string!(i18n, form.quantity).to_string())?,
                unit: self.unit.get_untracked().trim().to_owned(),
                revenue_vnd: amount(self.amount, t_string!(i18n, form.revenue_vnd).to_string())?,
            }),
            RecordKind::Meeting => Activity::Meeting(Meeting {
                topic: required(self.topic, t_string!(i18n, form.topic).to_string())?,
                attendees: count(self.attendees, t_string!(i18n, form.attendees).to_string())?,
            }),
        };
        Ok(Record {
            id,
            occurred_on,
            // Author, device and times are filled in by the device on save.
            author: String::new(),
            device: String::new(),
            created_at: Timestamp(0),
            updated_at: Timestamp(0),
            deleted: false,
            note: self.note.get_untracked().trim().to_owned(),
            review: Review::new_unreviewed(),
            activity,
        })
    }
}

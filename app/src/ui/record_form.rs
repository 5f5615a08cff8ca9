//! The record form, one for every kind: large fields for a small touch
//! screen, numbers typed the Vietnamese way, any number of incidents on a
//! patrol. "Saved" is shown only once the document is in storage; when
//! storage refuses, the form keeps what was typed.

use std::collections::BTreeSet;

use kheo_shared::codes::{Code, IncidentCategory, IncidentOutcome, RecordKind, ReviewState, SupportType};
use kheo_shared::evidence::{Attachment, AttachmentId, Location};
use kheo_shared::ids::{ModelId, RecordId};
use kheo_shared::record::{Activity, HouseholdSupport, Incident, Meeting, Patrol, Production, Record, Review};
use kheo_shared::scalars::{ClockTime, Day, Timestamp};
use leptos::prelude::*;

use super::format;
use super::labels::{self, I18n};
use super::location::LocationField;
use super::photos::PhotoField;
use crate::catalog::{self, SaveError};
use crate::device::{self, WriteFailure};
use crate::i18n::*;
use crate::state::{Notice, Screen, use_ui};
use crate::store::{self, StoreError};
use crate::sync;

#[component]
pub fn RecordForm(model: ModelId, record: Option<RecordId>) -> impl IntoView {
    let i18n = use_i18n();
    let ui = use_ui();
    // A notice about an earlier save is not about this form.
    ui.notice.set(None);
    // A form opened by a reload may come before the background load got to this model.
    device::with(|d| d.replica.load_now(|id| id.model() == model));
    let existing = record.and_then(|id| device::with(|d| catalog::record(&d.replica, model, id)).flatten());
    let draft = Draft::new(existing.as_ref());
    if existing.is_none() {
        draft.start_from_log(model);
    }
    // What the form started from; anything else on screen is unsaved work,
    // kept on the phone as a draft until it is saved or thrown away.
    let draft_key =
        StoredValue::new(format!("{model}.{}", record.map_or_else(|| "new".to_string(), |r| r.to_string())));
    let initial = StoredValue::new(draft.snapshot_untracked());
    let restored = RwSignal::new(None::<i64>);
    if let Some(kept) = draft_key.with_value(|k| store::load_draft::<Snapshot>(k))
        && kept.content != initial.get_value().content
    {
        restored.set(Some(kept.at));
        draft.restore(&kept);
    }
    let changed = move || draft.snapshot_untracked().content != initial.get_value().content;
    Effect::new(move |_| {
        let now = draft.snapshot();
        if now.content == initial.get_value().content {
            draft_key.with_value(|k| store::clear_draft(k));
        } else {
            draft_key.with_value(|k| store::save_draft(k, &now));
        }
    });
    let discard = move |_| {
        draft.restore(&initial.get_value());
        draft_key.with_value(|k| store::clear_draft(k));
        restored.set(None);
    };
    // The phone's Back, a reload or a killed tab keep the draft; the form's
    // own Back asks before it throws changes away.
    let leave = move |_| {
        if changed() {
            let question = t_string!(i18n, form.leave_changed).to_string();
            let sure = web_sys::window().and_then(|w| w.confirm_with_message(&question).ok()).unwrap_or(false);
            if !sure {
                return;
            }
            draft_key.with_value(|k| store::clear_draft(k));
        }
        crate::route::back(ui, Screen::Model(model));
    };
    let record_id = existing.as_ref().map(|r| r.id).unwrap_or_else(RecordId::new_random);
    let year_lock = existing.as_ref().map(|r| r.occurred_on.year());
    let is_new = existing.is_none();
    let review = existing.as_ref().map(|r| r.review.clone());
    let error = RwSignal::new(None::<FieldError>);
    provide_context(FieldErrors(error));
    let saving = RwSignal::new(false);

    let finish = move |result: Result<(), WriteFailure>| match result {
        Ok(()) => {
            draft_key.with_value(|k| store::clear_draft(k));
            ui.last_saved.set(Some(record_id));
            ui.notice.set(Some(Notice::Saved));
            ui.changed();
            sync::wake();
            // In place of the form: Back does not reopen it.
            crate::route::back(ui, Screen::Model(model));
        }
        Err(WriteFailure::Storage(StoreError::Full)) => {
            error.set(Some(FieldError::form(t_string!(i18n, storage_full).to_string())))
        }
        Err(WriteFailure::Storage(e)) => {
            error.set(Some(FieldError::form(t_string!(i18n, storage_failed, reason = e).to_string())))
        }
        // The form checks every rule of the schema first; should one slip
        // through, it is still told in words, at the field it names.
        Err(WriteFailure::Invalid(SaveError::Invalid(e))) => show(error, schema_problem(i18n, &e)),
        Err(WriteFailure::Invalid(SaveError::BadYear)) => show(error, FieldError::at("f-date", bad_year(i18n))),
        Err(e) => error.set(Some(FieldError::form(t_string!(i18n, form.invalid, reason = e).to_string()))),
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if saving.get_untracked() {
            return;
        }
        match draft.to_record(i18n, record_id, year_lock) {
            Err(problem) => show(error, problem),
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
    let saved_photos: BTreeSet<AttachmentId> =
        existing.as_ref().map(|r| r.attachments.keys().copied().collect()).unwrap_or_default();

    view! {
        <nav class="crumbs">
            <button class="link" id="back" on:click=leave>"← " {t!(i18n, back)}</button>
        </nav>
        <h1>{move || if is_new { t_string!(i18n, form.new_title).to_string() } else { t_string!(i18n, form.edit_title).to_string() }}</h1>
        {review.filter(|r| r.state == ReviewState::Returned).map(|r| view! {
            <div class="banner warn" id="returned">
                {move || t_string!(i18n, review.returned, comment = r.comment.clone()).to_string()}
            </div>
        })}
        {move || restored.get().map(|at| view! {
            <div class="banner warn draft-restored" id="draft-restored" role="status">
                <span>{t_string!(i18n, form.draft_restored, at = format::short_time(at)).to_string()}</span>
                <button type="button" class="link" id="draft-discard" on:click=discard>{t!(i18n, form.draft_discard)}</button>
            </div>
        })}
        <p class="hint required-hint" id="required-hint">{t!(i18n, form.required_hint)}</p>
        // The app's own checks speak the app's language; the browser's would not.
        <form class="record-form" novalidate on:submit=submit>
            <label for="f-kind">{t!(i18n, form.kind)}</label>
            <select id="f-kind" disabled=!is_new
                on:change=move |ev| if let Some(k) = RecordKind::from_code(&event_target_value(&ev)) { kind.set(k) }>
                {RecordKind::ALL.iter().map(|k| view! {
                    <option value=k.code() selected=move || kind.get() == *k>{move || labels::kind(i18n, *k)}</option>
                }).collect_view()}
            </select>
            <Input id="f-date" value=draft.date kind="date" required=true>{t!(i18n, form.date)}</Input>
            {move || match kind.get() {
                RecordKind::Patrol => view! { <PatrolFields draft/> }.into_any(),
                RecordKind::HouseholdSupport => view! { <SupportFields draft/> }.into_any(),
                RecordKind::Production => view! { <ProductionFields draft/> }.into_any(),
                RecordKind::Meeting => view! { <MeetingFields draft/> }.into_any(),
            }}
            <PhotoField photos=draft.photos saved=saved_photos/>
            <label for="f-note">{t!(i18n, form.note)}</label>
            <textarea id="f-note" rows="2" prop:value=move || draft.note.get()
                aria-invalid=move || invalid(error, "f-note").then_some("true")
                on:input=move |ev| draft.note.set(event_target_value(&ev))></textarea>
            <FieldMessage id="f-note"/>
            {move || error.get().filter(|e| e.field.is_empty()).map(|e| view! {
                <p class="banner error" id="form-error" role="alert">{e.message}</p>
            })}
            <div class="actions">
                <button class="primary" id="save" type="submit" disabled=move || saving.get()>
                    {move || if saving.get() { t_string!(i18n, saving).to_string() } else { t_string!(i18n, save).to_string() }}
                </button>
                {(!is_new).then(|| view! { <button class="danger" id="delete" type="button" on:click=delete>{t!(i18n, delete)}</button> })}
            </div>
        </form>
    }
}

/// A problem with what the form holds: the field it is about (its element
/// id; empty for the form as a whole) and what to do, in words.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn at(field: impl Into<String>, message: String) -> Self {
        FieldError { field: field.into(), message }
    }

    pub fn form(message: String) -> Self {
        FieldError { field: String::new(), message }
    }
}

/// The form's current problem, for the fields to show next to themselves.
#[derive(Clone, Copy)]
pub(super) struct FieldErrors(pub RwSignal<Option<FieldError>>);

fn invalid(error: RwSignal<Option<FieldError>>, id: &str) -> bool {
    error.with(|e| e.as_ref().is_some_and(|e| e.field == id))
}

/// Shows a problem next to its field and puts the cursor there.
pub(super) fn show(error: RwSignal<Option<FieldError>>, problem: FieldError) {
    let field = problem.field.clone();
    error.set(Some(problem));
    if field.is_empty() {
        return;
    }
    request_animation_frame(move || {
        let Some(element) = web_sys::window().and_then(|w| w.document()).and_then(|d| d.get_element_by_id(&field))
        else {
            return;
        };
        let options = web_sys::ScrollIntoViewOptions::new();
        options.set_block(web_sys::ScrollLogicalPosition::Center);
        element.scroll_into_view_with_scroll_into_view_options(&options);
        if let Ok(element) = wasm_bindgen::JsCast::dyn_into::<web_sys::HtmlElement>(element) {
            let _ = element.focus();
        }
    });
}

/// The message about field `id`, under it, when there is one.
#[component]
pub(super) fn FieldMessage(#[prop(into)] id: String) -> impl IntoView {
    let errors = use_context::<FieldErrors>();
    move || {
        let errors = errors?;
        let message = errors.0.with(|e| e.as_ref().filter(|e| e.field == id).map(|e| e.message.clone()))?;
        Some(view! { <p class="field-error" id=format!("{id}-error") role="alert">{message}</p> })
    }
}

/// A labelled one-line input bound to a text signal. A required field is
/// marked before anyone taps Save; a date or a time also reads back as
/// dd/mm/yyyy or 24-hour HH:MM in the app's language, whatever language
/// the phone's own picker speaks.
#[component]
pub(super) fn Input(
    id: &'static str,
    value: RwSignal<String>,
    #[prop(optional)] kind: Option<&'static str>,
    #[prop(optional)] inputmode: Option<&'static str>,
    #[prop(optional, into)] required: Option<Signal<bool>>,
    children: Children,
) -> impl IntoView {
    let i18n = use_i18n();
    let required = move || required.is_some_and(|r| r.get());
    let errors = use_context::<FieldErrors>();
    let invalid = move || errors.is_some_and(|e| invalid(e.0, id));
    let kind = kind.unwrap_or("text");
    let shown = move || match kind {
        "date" => Day::parse(value.get().trim()).map(|d| format::day_long(i18n, d)),
        "time" => ClockTime::parse(value.get().trim()).map(|t| t.to_string()),
        _ => None,
    };
    view! {
        <label for=id class="field-label">
            <span>
                {children()}
                {move || required().then(|| view! {
                    <span class="req" title=move || t_string!(i18n, form.required_mark).to_string()>" *"</span>
                })}
            </span>
            {move || shown().map(|text| view! { <span class="picked" id=format!("{id}-shown")>{text}</span> })}
        </label>
        <input id=id type=kind inputmode=inputmode
            aria-required=move || required().then_some("true")
            aria-invalid=move || invalid().then_some("true")
            aria-describedby=move || invalid().then(|| format!("{id}-error"))
            prop:value=move || value.get() on:input=move |ev| value.set(event_target_value(&ev))/>
        <FieldMessage id=id/>
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
    let add = move |_| {
        let key = next_incident_key(draft.incidents);
        draft.incidents.update(|v| v.push(IncidentDraft::new(key, None)));
    };
    view! {
        <div class="two">
            <div><Input id="f-start" value=draft.start kind="time" required=true>{t!(i18n, form.start)}</Input></div>
            <div><Input id="f-end" value=draft.end kind="time" required=true>{t!(i18n, form.end)}</Input></div>
        </div>
        <Input id="f-members" value=draft.members kind="number" inputmode="numeric" required=true>
            {t!(i18n, form.members_present)}
        </Input>
        <Input id="f-area" value=draft.area>{t!(i18n, form.area)}</Input>
        <LocationField id="f-location".to_string() value=draft.location/>
        <fieldset class="incidents" id="incidents">
            <legend>{t!(i18n, form.incidents)}</legend>
            <For each=move || draft.incidents.get() key=|inc| inc.key let:inc>
                {
                    let position = move || draft.incidents.with(|v| v.iter().position(|i| i.key == inc.key).map_or(0, |p| p + 1));
                    let remove = move |_| draft.incidents.update(|v| v.retain(|i| i.key != inc.key));
                    view! {
                        <div class="incident" data-incident=inc.key>
                            // Removing sits by the incident's title, away from "+ Add".
                            <div class="incident-head">
                                <strong>{move || t_string!(i18n, form.incident_n, n = position()).to_string()}</strong>
                                <button type="button" class="link danger remove-incident" on:click=remove>
                                    {t!(i18n, form.remove_incident)}
                                </button>
                            </div>
                            <Choice id=format!("f-inc-{}-category", inc.key) value=inc.category label=labels::category>
                                {t!(i18n, form.category)}
                            </Choice>
                            <Choice id=format!("f-inc-{}-outcome", inc.key) value=inc.outcome label=labels::outcome>
                                {t!(i18n, form.outcome)}
                            </Choice>
                            <label for=format!("f-inc-{}-description", inc.key)>{t!(i18n, form.description)}</label>
                            <input id=format!("f-inc-{}-description", inc.key) prop:value=move || inc.description.get()
                                on:input=move |ev| inc.description.set(event_target_value(&ev))/>
                            <FieldMessage id=format!("f-inc-{}-description", inc.key)/>
                            <LocationField id=format!("f-inc-{}-location", inc.key) value=inc.location/>
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
        <Input id="f-giver" value=draft.giver required=true>{t!(i18n, form.giver)}</Input>
        <Input id="f-receiver" value=draft.receiver required=true>{t!(i18n, form.receiver)}</Input>
        <Choice id="f-support-type".to_string() value=draft.support_type label=labels::support>{t!(i18n, form.support_type)}</Choice>
        <Input id="f-amount" value=draft.amount inputmode="numeric"
            required=Signal::derive(move || draft.support_type.get() == SupportType::Money)>
            {t!(i18n, form.amount_vnd)}
        </Input>
        <div class="two">
            <div>
                <Input id="f-workdays" value=draft.workdays inputmode="decimal"
                    required=Signal::derive(move || draft.support_type.get() == SupportType::Workdays)>
                    {t!(i18n, form.workdays)}
                </Input>
            </div>
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
        <Input id="f-product" value=draft.product required=true>{t!(i18n, form.product)}</Input>
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
        <Input id="f-topic" value=draft.topic required=true>{t!(i18n, form.topic)}</Input>
        <Input id="f-attendees" value=draft.attendees kind="number" inputmode="numeric">{t!(i18n, form.attendees)}</Input>
    }
}

/// A key no incident on screen has.
fn next_incident_key(incidents: RwSignal<Vec<IncidentDraft>>) -> u32 {
    incidents.with_untracked(|v| v.iter().map(|i| i.key + 1).max().unwrap_or(0))
}

#[derive(Clone, Copy)]
struct IncidentDraft {
    key: u32,
    id: RwSignal<String>,
    category: RwSignal<IncidentCategory>,
    description: RwSignal<String>,
    outcome: RwSignal<IncidentOutcome>,
    location: RwSignal<Option<Location>>,
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
            location: RwSignal::new(from.and_then(|i| i.location)),
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
    /// The patrol's own location.
    location: RwSignal<Option<Location>>,
    /// Every attachment of the record, removed ones included (their
    /// tombstones are saved as they are), in the order they were added.
    photos: RwSignal<Vec<(AttachmentId, Attachment)>>,
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

/// A record's attachments, removed ones included, in the order they were taken.
fn photos_in_order(r: &Record) -> Vec<(AttachmentId, Attachment)> {
    let mut all: Vec<_> = r.attachments.clone().into_iter().collect();
    all.sort_by_key(|(id, a)| (a.taken_at, *id));
    all
}

fn text(s: impl Into<String>) -> RwSignal<String> {
    RwSignal::new(s.into())
}

fn today() -> String {
    let d = js_sys::Date::new_0();
    format!("{}-{:02}-{:02}", d.get_full_year(), d.get_month() + 1, d.get_date())
}

/// What a form holds, as stored in its draft: every field as typed, codes
/// by their stable spelling.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Snapshot {
    /// When it was kept (ms since the epoch).
    at: i64,
    content: SnapshotContent,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct SnapshotContent {
    kind: String,
    texts: Vec<String>,
    support_type: String,
    /// id, category, description, outcome.
    incidents: Vec<(String, String, String, String)>,
    /// Each incident's location, in the order of `incidents` (a field of
    /// its own so that drafts kept before locations still read).
    #[serde(default)]
    incident_locations: Vec<Option<Location>>,
    #[serde(default)]
    location: Option<Location>,
    /// The photos' references only; their bytes are in IndexedDB.
    #[serde(default)]
    photos: Vec<(AttachmentId, Attachment)>,
}

impl Draft {
    /// The free-text fields, in one fixed order (the draft's `texts`).
    fn texts(&self) -> [RwSignal<String>; 16] {
        [
            self.date,
            self.note,
            self.start,
            self.end,
            self.members,
            self.area,
            self.giver,
            self.receiver,
            self.amount,
            self.workdays,
            self.quantity,
            self.unit,
            self.description,
            self.product,
            self.topic,
            self.attendees,
        ]
    }

    /// The form's content now, tracked (an effect that reads it follows every keystroke).
    fn snapshot(&self) -> Snapshot {
        Snapshot {
            at: js_sys::Date::now() as i64,
            content: SnapshotContent {
                kind: self.kind.get().code().to_owned(),
                texts: self.texts().iter().map(|s| s.get()).collect(),
                support_type: self.support_type.get().code().to_owned(),
                incidents: self
                    .incidents
                    .get()
                    .iter()
                    .map(|i| {
                        (
                            i.id.get(),
                            i.category.get().code().to_owned(),
                            i.description.get(),
                            i.outcome.get().code().to_owned(),
                        )
                    })
                    .collect(),
                incident_locations: self.incidents.get().iter().map(|i| i.location.get()).collect(),
                location: self.location.get(),
                photos: self.photos.get(),
            },
        }
    }

    fn snapshot_untracked(&self) -> Snapshot {
        leptos::prelude::untrack(|| self.snapshot())
    }

    /// Puts a kept draft back into the form.
    fn restore(&self, kept: &Snapshot) {
        let c = &kept.content;
        if let Some(kind) = RecordKind::from_code(&c.kind) {
            self.kind.set(kind);
        }
        for (signal, text) in self.texts().iter().zip(&c.texts) {
            signal.set(text.clone());
        }
        if let Some(t) = SupportType::from_code(&c.support_type) {
            self.support_type.set(t);
        }
        // Keys unused on screen, so the list renders the restored incidents anew.
        let base = next_incident_key(self.incidents);
        let incidents = c
            .incidents
            .iter()
            .enumerate()
            .map(|(n, (id, category, description, outcome))| {
                let i = IncidentDraft::new(base + n as u32, None);
                i.location.set(c.incident_locations.get(n).copied().flatten());
                i.id.set(id.clone());
                if let Some(v) = IncidentCategory::from_code(category) {
                    i.category.set(v);
                }
                i.description.set(description.clone());
                if let Some(v) = IncidentOutcome::from_code(outcome) {
                    i.outcome.set(v);
                }
                i
            })
            .collect();
        self.incidents.set(incidents);
        self.location.set(c.location);
        self.photos.set(c.photos.clone());
    }

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
            location: RwSignal::new(None),
            photos: RwSignal::new(from.map(photos_in_order).unwrap_or_default()),
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
                d.location.set(p.location);
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

    /// A new record starts from what the model records: the kind of its
    /// latest record (or the one its field suggests, for a model with none
    /// yet), and for a patrol the team's last patrol: times, members, area.
    fn start_from_log(self, model: ModelId) {
        use kheo_shared::codes::Field;
        let (field, records) = device::with(|d| {
            let field = catalog::model(&d.replica, model).map(|m| m.field);
            (field, catalog::records(&d.replica, model, catalog::Filter::default()))
        })
        .unwrap_or_default();
        let kind = records.first().map(Record::kind).unwrap_or(match field {
            Some(Field::SecurityOrder) => RecordKind::Patrol,
            Some(Field::EconomicDevelopment) => RecordKind::Production,
            Some(Field::SocialWelfare | Field::PovertyReduction | Field::TemporaryHousing) => {
                RecordKind::HouseholdSupport
            }
            Some(_) => RecordKind::Meeting,
            None => RecordKind::Patrol,
        });
        self.kind.set(kind);
        let last_patrol = records.iter().find_map(|r| match &r.activity {
            Activity::Patrol(p) => Some(p.clone()),
            _ => None,
        });
        if let Some(p) = last_patrol {
            self.start.set(p.start.to_string());
            self.end.set(p.end.to_string());
            self.members.set(p.members_present.to_string());
            self.area.set(p.area.clone());
        }
    }

    /// The record the form describes, or the first thing to fix: the
    /// schema's rules (`kheo_shared::schema`), checked field by field and
    /// told in words, at the field.
    fn to_record(self, i18n: I18n, id: RecordId, year_lock: Option<i32>) -> Result<Record, FieldError> {
        use kheo_shared::ids::{MAX_YEAR, MIN_YEAR};
        use kheo_shared::schema::limits::*;
        let date = self.date.get_untracked();
        let date = date.trim();
        if date.is_empty() {
            return Err(FieldError::at(
                "f-date",
                t_string!(i18n, form.required, field = t_string!(i18n, form.date).to_string()).to_string(),
            ));
        }
        let occurred_on =
            Day::parse(date).ok_or_else(|| FieldError::at("f-date", t_string!(i18n, form.bad_date).to_string()))?;
        if !(MIN_YEAR..=MAX_YEAR).contains(&occurred_on.year()) {
            return Err(FieldError::at("f-date", bad_year(i18n)));
        }
        if let Some(year) = year_lock
            && occurred_on.year() != year
        {
            return Err(FieldError::at("f-date", t_string!(i18n, form.same_year, year).to_string()));
        }
        // Each check names its field by its label, as the person sees it.
        let whole = |s: RwSignal<String>, id: &'static str, field: String, min: i64, max: i64| {
            let typed = s.get_untracked();
            if typed.trim().is_empty() && min > 0 {
                return Err(FieldError::at(id, t_string!(i18n, form.required, field).to_string()));
            }
            let n = format::parse_count(&typed).ok_or_else(|| {
                FieldError::at(id, t_string!(i18n, form.not_a_whole_number, field = field.clone()).to_string())
            })?;
            if !(min..=max).contains(&i64::from(n)) {
                let (min, max) = (format::grouped(min), format::grouped(max));
                return Err(FieldError::at(id, t_string!(i18n, form.out_of_range, field, min, max).to_string()));
            }
            Ok(n)
        };
        let amount = |s: RwSignal<String>, id: &'static str, field: String| {
            let n = format::parse_amount(&s.get_untracked()).ok_or_else(|| {
                FieldError::at(id, t_string!(i18n, form.not_a_whole_number, field = field.clone()).to_string())
            })?;
            if !(0..=MAX_VND).contains(&n) {
                let (min, max) = ("0".to_string(), format::grouped(MAX_VND));
                return Err(FieldError::at(id, t_string!(i18n, form.out_of_range, field, min, max).to_string()));
            }
            Ok(n)
        };
        let decimal = |s: RwSignal<String>, id: &'static str, field: String, max: f64| {
            let x = format::parse_decimal(&s.get_untracked()).ok_or_else(|| {
                FieldError::at(id, t_string!(i18n, form.not_a_number, field = field.clone()).to_string())
            })?;
            if !(0.0..=max).contains(&x) {
                let (min, max) = ("0".to_string(), format::grouped(max as i64));
                return Err(FieldError::at(id, t_string!(i18n, form.out_of_range, field, min, max).to_string()));
            }
            Ok(x)
        };
        let text = |s: RwSignal<String>, id: String, field: String, max: usize, required: bool| {
            let v = s.get_untracked().trim().to_owned();
            if required && v.is_empty() {
                return Err(FieldError::at(id, t_string!(i18n, form.required, field).to_string()));
            }
            if v.chars().count() > max {
                return Err(FieldError::at(id, t_string!(i18n, form.too_long, field, max).to_string()));
            }
            Ok(v)
        };
        let time = |s: RwSignal<String>, id: &'static str, field: String| {
            let typed = s.get_untracked();
            if typed.trim().is_empty() {
                return Err(FieldError::at(id, t_string!(i18n, form.required, field).to_string()));
            }
            ClockTime::parse(typed.trim())
                .ok_or_else(|| FieldError::at(id, t_string!(i18n, form.bad_time, field).to_string()))
        };
        // Support and production share these two fields.
        let quantity =
            || decimal(self.quantity, "f-quantity", t_string!(i18n, form.quantity).to_string(), MAX_QUANTITY);
        let unit = || text(self.unit, "f-unit".into(), t_string!(i18n, form.unit).to_string(), SHORT_TEXT, false);
        let activity = match self.kind.get_untracked() {
            RecordKind::Patrol => {
                let start = time(self.start, "f-start", t_string!(i18n, form.start).to_string())?;
                let end = time(self.end, "f-end", t_string!(i18n, form.end).to_string())?;
                let members =
                    whole(self.members, "f-members", t_string!(i18n, form.members_present).to_string(), 1, MAX_PEOPLE)?;
                let area = text(self.area, "f-area".into(), t_string!(i18n, form.area).to_string(), SHORT_TEXT, false)?;
                let incidents = self.incidents.get_untracked();
                if incidents.len() > MAX_INCIDENTS {
                    return Err(FieldError::at(
                        "add-incident",
                        t_string!(i18n, form.too_many_incidents, max = MAX_INCIDENTS).to_string(),
                    ));
                }
                let incidents = incidents
                    .iter()
                    .map(|i| {
                        Ok(Incident {
                            id: i.id.get_untracked(),
                            category: i.category.get_untracked(),
                            description: text(
                                i.description,
                                format!("f-inc-{}-description", i.key),
                                t_string!(i18n, form.description).to_string(),
                                LONG_TEXT,
                                false,
                            )?,
                            outcome: i.outcome.get_untracked(),
                            location: i.location.get_untracked(),
                        })
                    })
                    .collect::<Result<Vec<_>, FieldError>>()?;
                Activity::Patrol(Patrol {
                    start,
                    end,
                    members_present: members,
                    area,
                    incidents,
                    location: self.location.get_untracked(),
                })
            }
            RecordKind::HouseholdSupport => {
                let support_type = self.support_type.get_untracked();
                let support = HouseholdSupport {
                    giver: text(
                        self.giver,
                        "f-giver".into(),
                        t_string!(i18n, form.giver).to_string(),
                        SHORT_TEXT,
                        true,
                    )?,
                    receiver: text(
                        self.receiver,
                        "f-receiver".into(),
                        t_string!(i18n, form.receiver).to_string(),
                        SHORT_TEXT,
                        true,
                    )?,
                    support_type,
                    amount_vnd: amount(self.amount, "f-amount", t_string!(i18n, form.amount_vnd).to_string())?,
                    workdays: decimal(
                        self.workdays,
                        "f-workdays",
                        t_string!(i18n, form.workdays).to_string(),
                        MAX_WORKDAYS,
                    )?,
                    quantity: quantity()?,
                    unit: unit()?,
                    description: text(
                        self.description,
                        "f-description".into(),
                        t_string!(i18n, form.description).to_string(),
                        LONG_TEXT,
                        false,
                    )?,
                };
                let kind = labels::support(i18n, support_type);
                if support_type == SupportType::Money && support.amount_vnd == 0 {
                    let field = t_string!(i18n, form.amount_vnd).to_string();
                    return Err(FieldError::at("f-amount", t_string!(i18n, form.needed_for, kind, field).to_string()));
                }
                if support_type == SupportType::Workdays && support.workdays == 0.0 {
                    let field = t_string!(i18n, form.workdays).to_string();
                    return Err(FieldError::at(
                        "f-workdays",
                        t_string!(i18n, form.needed_for, kind, field).to_string(),
                    ));
                }
                Activity::HouseholdSupport(support)
            }
            RecordKind::Production => Activity::Production(Production {
                product: text(
                    self.product,
                    "f-product".into(),
                    t_string!(i18n, form.product).to_string(),
                    SHORT_TEXT,
                    true,
                )?,
                quantity: quantity()?,
                unit: unit()?,
                revenue_vnd: amount(self.amount, "f-revenue", t_string!(i18n, form.revenue_vnd).to_string())?,
            }),
            RecordKind::Meeting => Activity::Meeting(Meeting {
                topic: text(self.topic, "f-topic".into(), t_string!(i18n, form.topic).to_string(), SHORT_TEXT, true)?,
                attendees: whole(
                    self.attendees,
                    "f-attendees",
                    t_string!(i18n, form.attendees).to_string(),
                    0,
                    MAX_PEOPLE,
                )?,
            }),
        };
        let note = text(self.note, "f-note".into(), t_string!(i18n, form.note).to_string(), LONG_TEXT, false)?;
        Ok(Record {
            id,
            occurred_on,
            // Author, device and times are filled in by the device on save.
            author: String::new(),
            device: String::new(),
            created_at: Timestamp(0),
            updated_at: Timestamp(0),
            deleted: false,
            note,
            review: Review::new_unreviewed(),
            activity,
            attachments: self.photos.get_untracked().into_iter().collect(),
        })
    }
}

fn bad_year(i18n: I18n) -> String {
    use kheo_shared::ids::{MAX_YEAR, MIN_YEAR};
    t_string!(i18n, form.bad_year, min = MIN_YEAR, max = MAX_YEAR).to_string()
}

/// A rule of the schema the form's own checks missed, at the field whose
/// key ends the path (`<record id>/patrol/members_present`), in words.
fn schema_problem(i18n: I18n, e: &kheo_shared::schema::SchemaError) -> FieldError {
    let mut keys = e.path.rsplit('/');
    let (key, parent) = (keys.next().unwrap_or_default(), keys.next().unwrap_or_default());
    let (id, label) = match (parent, key) {
        (_, "occurred_on") => ("f-date", t_string!(i18n, form.date).to_string()),
        (_, "note") => ("f-note", t_string!(i18n, form.note).to_string()),
        (_, "start") => ("f-start", t_string!(i18n, form.start).to_string()),
        (_, "end") => ("f-end", t_string!(i18n, form.end).to_string()),
        (_, "members_present") => ("f-members", t_string!(i18n, form.members_present).to_string()),
        (_, "area") => ("f-area", t_string!(i18n, form.area).to_string()),
        (_, "giver") => ("f-giver", t_string!(i18n, form.giver).to_string()),
        (_, "receiver") => ("f-receiver", t_string!(i18n, form.receiver).to_string()),
        ("production", "revenue_vnd") => ("f-revenue", t_string!(i18n, form.revenue_vnd).to_string()),
        (_, "amount_vnd") => ("f-amount", t_string!(i18n, form.amount_vnd).to_string()),
        (_, "workdays") => ("f-workdays", t_string!(i18n, form.workdays).to_string()),
        (_, "quantity") => ("f-quantity", t_string!(i18n, form.quantity).to_string()),
        (_, "unit") => ("f-unit", t_string!(i18n, form.unit).to_string()),
        ("household_support", "description") => ("f-description", t_string!(i18n, form.description).to_string()),
        (_, "product") => ("f-product", t_string!(i18n, form.product).to_string()),
        (_, "topic") => ("f-topic", t_string!(i18n, form.topic).to_string()),
        (_, "attendees") => ("f-attendees", t_string!(i18n, form.attendees).to_string()),
        _ => return FieldError::form(t_string!(i18n, form.invalid_plain).to_string()),
    };
    FieldError::at(id, t_string!(i18n, form.invalid_field, field = label).to_string())
}

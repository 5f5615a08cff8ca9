//! One model: its profile, the server's refusals if any, and its activity
//! log newest first, filtered by kind, month and review state.

use kheo_shared::codes::{Code, RecordKind, ReviewState, Role};
use kheo_shared::ids::ModelId;
use leptos::prelude::*;

use super::earlier_years::{Arriving, EarlierYears};
use super::record_item::RecordItem;
use super::{format, labels};
use crate::catalog::{self, Filter};
use crate::device;
use crate::i18n::*;
use crate::review::QueueState;
use crate::state::{Screen, use_ui};

/// Records shown at first, and added by each "show more": a screenful
/// several times over, a fraction of a busy year.
const PAGE: usize = 50;

#[component]
pub fn ModelPage(model: ModelId) -> impl IntoView {
    let i18n = use_i18n();
    let ui = use_ui();
    let kind = RwSignal::new(None::<RecordKind>);
    let month = RwSignal::new(None::<(i32, u8)>);
    let review = RwSignal::new(None::<QueueState>);
    crate::held::open_model(model);
    let profile = move || {
        ui.revision.track();
        device::with(|d| catalog::model(&d.replica, model)).flatten()
    };
    // The log read once per revision (a sync or a save moves it): the list,
    // the months and the review filter all come from this one reading.
    let model_log = Memo::new(move |_| {
        ui.revision.track();
        ui.sync.track();
        device::with(|d| catalog::ModelLog::read(&mut d.replica, model)).unwrap_or_default()
    });
    // A busy team logs thousands of records a year: the newest page shows
    // first, and more on request.
    let shown = RwSignal::new(PAGE);
    // The record just saved comes first, wherever its day puts it in the
    // log. Only the records shown are read in full; the review filter needs
    // whole records (edits since a decision), so it reads what it filters.
    let records = move || {
        // An edit that moves no entry (a note, a figure) still shows.
        ui.revision.track();
        ui.sync.track();
        let filter = Filter { kind: kind.get(), month: month.get(), include_deleted: false };
        let wanted = review.get();
        let saved = ui.last_saved.get();
        let limit = shown.get();
        model_log.with(|log| {
            device::with(|d| {
                let mut entries: Vec<&catalog::Entry> = log.filtered(&filter).collect();
                if let Some(saved) = saved
                    && let Some(at) = entries.iter().position(|e| e.id == saved)
                {
                    let entry = entries.remove(at);
                    entries.insert(0, entry);
                }
                let (page, total) = match wanted {
                    None => {
                        (catalog::ModelLog::records(&d.replica, entries.iter().copied().take(limit)), entries.len())
                    }
                    Some(wanted) => {
                        let mut all = catalog::ModelLog::records(&d.replica, entries);
                        all.retain(|r| QueueState::of(r).passes(wanted, r));
                        let total = all.len();
                        all.truncate(limit);
                        (all, total)
                    }
                };
                let page = page.into_iter().map(|r| (log.unsynced.contains(&r.id), r)).collect::<Vec<_>>();
                (page, total)
            })
            .unwrap_or_default()
        })
    };
    on_cleanup(move || ui.last_saved.set(None));
    // The review filter once there is a review to filter by; until then the
    // log keeps its room on a small screen.
    let reviewed = move || model_log.with(|log| log.entries.iter().any(|e| e.review != ReviewState::New));
    let months = move || model_log.with(catalog::ModelLog::months);
    // Commune staff and above manage models (the server's `model_needs_staff`).
    let staff = super::role() >= Role::CommuneStaff;
    let rejections = move || {
        ui.revision.track();
        let mut all = device::with(|d| catalog::rejections(&mut d.replica, model)).unwrap_or_default();
        // The profile and a log refused for one reason are one thing to tell.
        all.sort_by(|a, b| (&a.1.rule, &a.1.error).cmp(&(&b.1.rule, &b.1.error)));
        all.dedup_by(|a, b| (&a.1.rule, &a.1.error) == (&b.1.rule, &b.1.error));
        all
    };
    view! {
        <nav class="crumbs">
            <button class="link" id="back" on:click=move |_| crate::route::back(ui, Screen::Models)>"← " {t!(i18n, back)}</button>
            {staff.then(|| view! {
                <button class="secondary small" id="edit-model"
                    on:click=move |_| ui.screen.set(Screen::ModelEdit { model: Some(model) })>
                    {t!(i18n, model_form.edit_button)}
                </button>
            })}
        </nav>
        {move || profile().map(|p| view! {
            <h1 id="model-name">{p.name.clone()}</h1>
            <details class="profile">
                <summary>{t!(i18n, models.profile)}</summary>
                <dl>
                    <dt>{t!(i18n, models.field)}</dt><dd>{labels::field(i18n, p.field)}</dd>
                    <dt>{t!(i18n, models.status)}</dt><dd>{labels::status(i18n, p.status)}</dd>
                    <dt>{t!(i18n, models.unit)}</dt><dd>{crate::org::with(|o| o.name(&p.unit))}</dd>
                    <dt>{t!(i18n, models.lead)}</dt><dd>{p.lead_organisation.clone()}</dd>
                    <dt>{t!(i18n, models.started)}</dt><dd>{format::day(p.started_on)}</dd>
                    <dt>{t!(i18n, models.members)}</dt><dd>{p.members}</dd>
                    <dt>{t!(i18n, models.households)}</dt><dd>{p.households}</dd>
                    {p.replicated_from.map(|source| {
                        let name = device::with(|d| catalog::model(&d.replica, source)).flatten()
                            .map_or_else(|| source.to_string(), |m| m.name);
                        view! { <dt>{t!(i18n, models.replicated_from)}</dt><dd id="model-source">{name}</dd> }
                    })}
                </dl>
                <p>{p.description.clone()}</p>
            </details>
        })}
        <Arriving model/>
        {move || rejections().into_iter().map(|(_, r)| {
            let rule = r.rule.clone().unwrap_or_default();
            let (code, error) = (r.rule.clone(), r.error.clone());
            let reason = move || labels::refusal(i18n, code.as_deref(), &error);
            view! {
                <div class="banner error rejected" role="alert" data-rule=rule>
                    <strong>{move || t_string!(i18n, models.rejected, reason = reason()).to_string()}</strong>
                    <p>{t!(i18n, models.rejected_hint)}</p>
                    <p class="muted">{r.message.clone()}</p>
                </div>
            }
        }).collect_view()}
        <button class="primary wide" id="add-record"
            on:click=move |_| ui.screen.set(Screen::Record { model, record: None })>
            "+ " {t!(i18n, log.add)}
        </button>
        <h2>{t!(i18n, models.log)}</h2>
        <div class="filters">
            <label>
                <span>{t!(i18n, log.filter_kind)}</span>
                <select id="filter-kind" on:change=move |ev| kind.set(RecordKind::from_code(&event_target_value(&ev)))>
                    <option value="">{t!(i18n, log.all_kinds)}</option>
                    {RecordKind::ALL.iter().map(|k| view! {
                        <option value=k.code()>{move || labels::kind(i18n, *k)}</option>
                    }).collect_view()}
                </select>
            </label>
            <label>
                <span>{t!(i18n, log.filter_month)}</span>
                <select id="filter-month" on:change=move |ev| month.set(parse_month(&event_target_value(&ev)))>
                    <option value="">{t!(i18n, log.all_months)}</option>
                    {move || months().into_iter().map(|(y, m)| view! {
                        <option value=format!("{y}-{m:02}") selected=move || month.get() == Some((y, m))>{format::month(y, m)}</option>
                    }).collect_view()}
                </select>
            </label>
            <Show when=move || reviewed() || review.get().is_some()>
                <label>
                    <span>{t!(i18n, log.filter_review)}</span>
                    <select id="filter-review" on:change=move |ev| review.set(QueueState::from_code(&event_target_value(&ev)))>
                        <option value="">{t!(i18n, log.all_reviews)}</option>
                        {QueueState::ALL.into_iter().map(|s| view! {
                            <option value=s.code() selected=move || review.get() == Some(s)>{move || labels::queue_state(i18n, s)}</option>
                        }).collect_view()}
                    </select>
                </label>
            </Show>
        </div>
        {move || {
            let (list, total) = records();
            if list.is_empty() {
                view! { <p class="hint" id="no-records">{t!(i18n, log.empty)}</p> }.into_any()
            } else {
                let more = total - list.len();
                view! {
                    <ul class="cards" id="records" data-total=total>
                        {list.into_iter().map(|(unsynced, r)| {
                            let just_saved = ui.last_saved.get_untracked() == Some(r.id);
                            view! { <RecordItem model record=r unsynced just_saved/> }
                        }).collect_view()}
                    </ul>
                    {(more > 0).then(|| view! {
                        <button class="secondary wide" id="records-more" on:click=move |_| shown.update(|n| *n += PAGE)>
                            {move || t_string!(i18n, log.show_more, n = more.min(PAGE), total = total).to_string()}
                        </button>
                    })}
                }.into_any()
            }
        }}
        <EarlierYears model/>
    }
}

fn parse_month(value: &str) -> Option<(i32, u8)> {
    let (y, m) = value.split_once('-')?;
    Some((y.parse().ok()?, m.parse().ok()?))
}

//! Commune review of the records on the phone: filters, a list to pick
//! records from (one by one or every one shown), and a comment box with
//! "approve" and "return" acting on the selection. Everything it shows and
//! writes is on the phone, so it works with no network; decisions sync
//! back to the volunteers in the background. A staff device that keeps
//! only part of its scope fetches the logs the server's queue names
//! ([`super::review_gap`]).

use std::collections::BTreeSet;

use kheo_shared::codes::{Code, RecordKind, Role};
use kheo_shared::ids::{ModelId, RecordId};
use kheo_shared::scalars::Day;
use kheo_shared::schema::conflicts::FieldConflict;
use leptos::prelude::*;

use super::labels::{self, I18n};
use super::photos::PhotoStrip;
use super::record_item::summary;
use super::review_gap::ServerRecords;
use super::{format, role};
use crate::catalog;
use crate::device::{self, WriteFailure};
use crate::i18n::*;
use crate::review::{self, ApplyError, DecideError, QueueFilter, QueueItem, QueueState, Stopped, Verdict};
use crate::state::{Notice, use_ui};
use crate::store::StoreError;
use crate::sync;

#[component]
pub fn ReviewQueue() -> impl IntoView {
    let i18n = use_i18n();
    if role() < Role::CommuneStaff {
        return view! { <p class="hint" id="review-staff-only">{t!(i18n, review.staff_only)}</p> }.into_any();
    }
    let ui = use_ui();
    // The queue reads every log: those the phone has not loaded yet load now.
    device::with(|d| d.replica.load_now(|_| true));
    // Opens on what awaits a decision, not on everything ever reviewed.
    let filter = RwSignal::new(QueueFilter::awaiting());
    let selected = RwSignal::new(BTreeSet::<RecordId>::new());
    let comment = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);

    let items = Memo::new(move |_| {
        ui.revision.track();
        let f = filter.get();
        device::with(|d| crate::org::with(|o| review::queue(&d.replica, o, &f))).unwrap_or_default()
    });
    // Only what is shown can be acted on: a filter hides a selection.
    let chosen = Memo::new(move |_| {
        items.with(|list| {
            selected.with(|s| {
                list.iter().filter(|i| s.contains(&i.record.id)).map(|i| (i.log, i.record.id)).collect::<Vec<_>>()
            })
        })
    });
    let all_chosen = move || {
        let shown = items.with(Vec::len);
        shown > 0 && chosen.with(Vec::len) == shown
    };
    let toggle_all = move |_| {
        let every = all_chosen();
        let shown: Vec<RecordId> = items.with(|list| list.iter().map(|i| i.record.id).collect());
        selected.update(|s| {
            for id in shown {
                if every {
                    s.remove(&id);
                } else {
                    s.insert(id);
                }
            }
        });
    };
    let act = move |verdict: Verdict| {
        let targets = chosen.get_untracked();
        let text = comment.get_untracked();
        match review::apply(&targets, verdict, &text) {
            Ok(_) => {
                selected.set(BTreeSet::new());
                comment.set(String::new());
                error.set(None);
                ui.notice.set(Some(Notice::Saved));
                ui.changed();
                sync::wake();
            }
            Err(Stopped { saved, cause }) => {
                if saved > 0 {
                    ui.changed();
                    sync::wake();
                }
                error.set(Some(failure(i18n, saved, cause)));
            }
        }
    };

    view! {
        <h1>{t!(i18n, review.title)}</h1>
        <Filters filter/>
        <ServerRecords filter/>
        <div class="review-bar">
            <label class="check" for="review-select-all">
                <input type="checkbox" id="review-select-all" prop:checked=all_chosen
                    disabled=move || items.with(Vec::is_empty) on:change=toggle_all/>
                <span>{move || t_string!(i18n, review.select_all, n = items.with(Vec::len)).to_string()}</span>
            </label>
            <span class="muted" id="review-selected" data-selected=move || chosen.with(Vec::len)>
                {move || t_string!(i18n, review.selected, n = chosen.with(Vec::len)).to_string()}
            </span>
        </div>
        {move || {
            if items.with(Vec::is_empty) {
                return view! { <p class="hint" id="review-empty">{t!(i18n, review.empty)}</p> }.into_any();
            }
            view! {
                <ul class="cards" id="review-list">
                    {items.get().into_iter().map(|item| view! { <Item item selected/> }).collect_view()}
                </ul>
            }.into_any()
        }}
        <Show when=move || !chosen.with(Vec::is_empty)
            fallback=move || view! { <p class="hint" id="review-hint">{t!(i18n, review.hint)}</p> }>
            <div class="review-actions" id="review-actions">
                <label for="review-comment">{t!(i18n, review.comment)}</label>
                <textarea id="review-comment" rows="2" placeholder=move || t_string!(i18n, review.comment_hint).to_string()
                    prop:value=move || comment.get() on:input=move |ev| {
                        comment.set(event_target_value(&ev));
                        error.set(None);
                    }></textarea>
                {move || error.get().map(|e| view! { <p class="banner error" id="review-error" role="alert">{e}</p> })}
                <div class="actions">
                    <button class="primary" id="review-approve" on:click=move |_| act(Verdict::Approve)>
                        {move || t_string!(i18n, review.approve_n, n = chosen.with(Vec::len)).to_string()}
                    </button>
                    <button class="danger" id="review-return" on:click=move |_| act(Verdict::Return)>
                        {move || t_string!(i18n, review.return_n, n = chosen.with(Vec::len)).to_string()}
                    </button>
                </div>
            </div>
        </Show>
    }
    .into_any()
}

/// What went wrong with a decision, and how much of it was saved.
fn failure(i18n: I18n, saved: usize, cause: ApplyError) -> String {
    let reason = match cause {
        ApplyError::Decide(DecideError::CommentRequired) => t_string!(i18n, review.comment_required).to_string(),
        ApplyError::Decide(DecideError::NothingSelected) => t_string!(i18n, review.nothing_selected).to_string(),
        ApplyError::Write(WriteFailure::Storage(StoreError::Full)) => t_string!(i18n, storage_full).to_string(),
        ApplyError::Write(WriteFailure::Storage(e)) => t_string!(i18n, storage_failed, reason = e).to_string(),
        other => t_string!(i18n, form.invalid, reason = other).to_string(),
    };
    if saved > 0 { t_string!(i18n, review.partial, n = saved, reason).to_string() } else { reason }
}

/// The filters: state and village always in view, the rest folded away
/// to leave the small screen to the list.
#[component]
fn Filters(filter: RwSignal<QueueFilter>) -> impl IntoView {
    let i18n = use_i18n();
    let ui = use_ui();
    let units = move || {
        ui.revision.track();
        let scope = ui.account.with(|a| a.as_ref().map(|a| a.unit.clone()).unwrap_or_default());
        device::with(|d| crate::org::with(|o| review::units(&d.replica, o, &scope))).unwrap_or_default()
    };
    let models = move || {
        ui.revision.track();
        let scope = filter.with(|f| f.unit.clone());
        device::with(|d| {
            let list = catalog::models(&d.replica);
            crate::org::with(|o| {
                list.into_iter().filter(|m| scope.as_deref().is_none_or(|s| o.within(&m.unit, s))).collect::<Vec<_>>()
            })
        })
        .unwrap_or_default()
    };
    let set_unit = move |ev| {
        let value = event_target_value(&ev);
        // A model chosen under another village would hide everything.
        filter.update(|f| {
            f.unit = (!value.is_empty()).then_some(value);
            f.model = None;
        });
    };
    let day = |ev| Day::parse(&event_target_value(&ev));
    view! {
        <div class="filters review-filters">
            <label>
                <span>{t!(i18n, review.filter_state)}</span>
                <select id="review-state" on:change=move |ev| {
                    let state = QueueState::from_code(&event_target_value(&ev));
                    filter.update(|f| f.state = state);
                }>
                    <option value="" selected=move || filter.with(|f| f.state.is_none())>{t!(i18n, review.all_states)}</option>
                    {QueueState::ALL.into_iter().map(|s| view! {
                        <option value=s.code() selected=move || filter.with(|f| f.state == Some(s))>{move || labels::queue_state(i18n, s)}</option>
                    }).collect_view()}
                </select>
            </label>
            <label>
                <span>{t!(i18n, review.filter_unit)}</span>
                <select id="review-unit" on:change=set_unit>
                    <option value="">{t!(i18n, review.all_units)}</option>
                    {move || units().into_iter().map(|(code, name)| {
                        let value = code.clone();
                        view! {
                            <option value=code selected=move || filter.with(|f| f.unit.as_deref() == Some(value.as_str()))>
                                {name}
                            </option>
                        }
                    }).collect_view()}
                </select>
            </label>
        </div>
        <details class="more-filters" id="review-more">
            <summary>{t!(i18n, review.more_filters)}</summary>
            <div class="filters">
                <label>
                    <span>{t!(i18n, review.filter_model)}</span>
                    <select id="review-model" on:change=move |ev| {
                        let model = event_target_value(&ev).parse::<ModelId>().ok();
                        filter.update(|f| f.model = model);
                    }>
                        <option value="">{t!(i18n, review.all_models)}</option>
                        {move || models().into_iter().map(|m| {
                            let id = m.id;
                            view! {
                                <option value=id.to_string() selected=move || filter.with(|f| f.model == Some(id))>
                                    {m.name.clone()}
                                </option>
                            }
                        }).collect_view()}
                    </select>
                </label>
                <label>
                    <span>{t!(i18n, log.filter_kind)}</span>
                    <select id="review-kind" on:change=move |ev| {
                        let kind = RecordKind::from_code(&event_target_value(&ev));
                        filter.update(|f| f.kind = kind);
                    }>
                        <option value="">{t!(i18n, log.all_kinds)}</option>
                        {RecordKind::ALL.iter().map(|k| view! {
                            <option value=k.code()>{move || labels::kind(i18n, *k)}</option>
                        }).collect_view()}
                    </select>
                </label>
                <label>
                    <span>{t!(i18n, review.from)}</span>
                    <input type="date" id="review-from" on:change=move |ev| filter.update(|f| f.from = day(ev))/>
                </label>
                <label>
                    <span>{t!(i18n, review.to)}</span>
                    <input type="date" id="review-to" on:change=move |ev| filter.update(|f| f.to = day(ev))/>
                </label>
            </div>
        </details>
    }
}

/// One record: tapping anywhere on it selects it.
#[component]
fn Item(item: QueueItem, selected: RwSignal<BTreeSet<RecordId>>) -> impl IntoView {
    let i18n = use_i18n();
    let QueueItem { model_name, unit, state, conflicts, record, .. } = item;
    let id = record.id;
    let kind = record.kind();
    let (check_id, label_for) = (format!("review-pick-{id}"), format!("review-pick-{id}"));
    let is_selected = move || selected.with(|s| s.contains(&id));
    let toggle = move |ev| {
        let on = event_target_checked(&ev);
        selected.update(|s| {
            if on {
                s.insert(id);
            } else {
                s.remove(&id);
            }
        });
    };
    let place = {
        let unit_name = if unit.is_empty() { String::new() } else { crate::org::with(|o| o.name(&unit)) };
        move || {
            let model = if model_name.is_empty() {
                t_string!(i18n, review.unknown_model).to_string()
            } else {
                model_name.clone()
            };
            if unit_name.is_empty() { model } else { format!("{model} · {unit_name}") }
        }
    };
    let rev = record.review.clone();
    let comment = rev.comment.clone();
    let badge = move || {
        let (class, text) = match state {
            QueueState::New => ("badge", t_string!(i18n, review.awaiting).to_string()),
            QueueState::Approved => ("badge ok", t_string!(i18n, review.approved).to_string()),
            QueueState::EditedAfterApproval => {
                ("badge warn", t_string!(i18n, review.edited_after_approval).to_string())
            }
            QueueState::Returned if comment.is_empty() => {
                ("badge warn", t_string!(i18n, review.returned_plain).to_string())
            }
            QueueState::Returned => {
                ("badge warn", t_string!(i18n, review.returned, comment = comment.clone()).to_string())
            }
        };
        view! { <span class=class data-review=state.code()>{text}</span> }
    };
    let fixed_since_return = state == QueueState::Returned && review::edited_since_review(&record);
    let reviewed = rev.reviewer.as_deref().map(crate::people::name).zip(rev.reviewed_at).map(|(name, at)| {
        let at = format::local_time(at.millis());
        let approved_comment = (state != QueueState::Returned && !rev.comment.is_empty()).then(|| rev.comment.clone());
        view! {
            <span class="muted reviewed">
                {move || t_string!(i18n, review.reviewed_by, name = name.clone(), at = at.clone()).to_string()}
                {approved_comment.map(|c| view! { <br/>{move || t_string!(i18n, review.comment_was, comment = c.clone()).to_string()} })}
            </span>
        }
    });
    let author = crate::people::name(&record.author);
    let photos: Vec<_> = record.photos().map(|(_, a)| a.clone()).collect();
    view! {
        <li class="review-item" class:selected=is_selected data-record=id.to_string() data-kind=kind.code()
            data-state=state.code()>
            <label class="review-pick" for=label_for>
                <input type="checkbox" class="review-select" id=check_id prop:checked=is_selected on:change=toggle/>
                <span class="review-body">
                    <span class="line">
                        <strong>{move || labels::kind(i18n, kind)}</strong>
                        <span class="muted">{format::day(record.occurred_on)}</span>
                    </span>
                    <span class="muted place">{place}</span>
                    <span class="summary">{summary(i18n, record.activity.clone())}</span>
                    {(!record.note.is_empty()).then(|| view! { <span class="muted note">{record.note.clone()}</span> })}
                    <span class="muted">{move || t_string!(i18n, log.by, name = author.clone()).to_string()}</span>
                    <span class="line">
                        {badge}
                        {fixed_since_return.then(|| view! {
                            <span class="badge" data-edited="1">{t!(i18n, review.edited_after_return)}</span>
                        })}
                    </span>
                    {reviewed}
                    {(!conflicts.is_empty()).then(|| view! { <Conflicts conflicts/> })}
                </span>
            </label>
            <PhotoStrip photos=photos zoom=true/>
        </li>
    }
}

/// Fields two phones changed at once, with every value (none is lost;
/// the first is the one the record shows).
#[component]
fn Conflicts(conflicts: Vec<FieldConflict>) -> impl IntoView {
    let i18n = use_i18n();
    let n = conflicts.len();
    view! {
        <div class="conflicts" data-conflicts=n>
            <strong>{t!(i18n, review.conflicts)}</strong>
            <ul>
                {conflicts.into_iter().map(|c| {
                    let path = c.path.clone();
                    view! {
                        <li class="conflict" data-path=c.path.clone()>
                            <span class="field">{move || field_label(i18n, &path)}": "</span>
                            {c.values.into_iter().enumerate().map(|(i, v)| view! {
                                {(i > 0).then_some(" | ")}
                                <span class="conflict-value">{v}</span>
                            }).collect_view()}
                        </li>
                    }
                }).collect_view()}
            </ul>
        </div>
    }
}

/// The form's word for a field of a record, from its path in the document
/// (`patrol/members_present`); the path itself when there is none.
fn field_label(i18n: I18n, path: &str) -> String {
    let name = path.rsplit('/').next().unwrap_or(path);
    match (path, name) {
        ("review/state", _) => t_string!(i18n, review.filter_state).to_string(),
        ("review/comment", _) => t_string!(i18n, review.comment).to_string(),
        ("review/reviewer", _) => t_string!(i18n, review.reviewer).to_string(),
        (_, "occurred_on") => t_string!(i18n, form.date).to_string(),
        (_, "note") => t_string!(i18n, form.note).to_string(),
        (_, "deleted") => t_string!(i18n, log.deleted).to_string(),
        (_, "start") => t_string!(i18n, form.start).to_string(),
        (_, "end") => t_string!(i18n, form.end).to_string(),
        (_, "members_present") => t_string!(i18n, form.members_present).to_string(),
        (_, "area") => t_string!(i18n, form.area).to_string(),
        (_, "giver") => t_string!(i18n, form.giver).to_string(),
        (_, "receiver") => t_string!(i18n, form.receiver).to_string(),
        (_, "support_type") => t_string!(i18n, form.support_type).to_string(),
        (_, "amount_vnd") => t_string!(i18n, form.amount_vnd).to_string(),
        (_, "workdays") => t_string!(i18n, form.workdays).to_string(),
        (_, "quantity") => t_string!(i18n, form.quantity).to_string(),
        (_, "unit") => t_string!(i18n, form.unit).to_string(),
        (_, "description") => t_string!(i18n, form.description).to_string(),
        (_, "product") => t_string!(i18n, form.product).to_string(),
        (_, "revenue_vnd") => t_string!(i18n, form.revenue_vnd).to_string(),
        (_, "topic") => t_string!(i18n, form.topic).to_string(),
        (_, "attendees") => t_string!(i18n, form.attendees).to_string(),
        _ => path.to_owned(),
    }
}

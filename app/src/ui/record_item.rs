//! One record in a model's log: kind, day, a one-line summary (with the
//! patrol's location), its photos' thumbnails, whether it has left the
//! phone yet and then where it stands in review.

use kheo_shared::codes::{ReviewState, SupportType};
use kheo_shared::record::{Activity, Record};
use leptos::prelude::*;

use super::photos::PhotoStrip;
use super::{format, labels};
use crate::i18n::*;
use crate::state::{Screen, use_ui};

#[component]
pub fn RecordItem(
    model: kheo_shared::ids::ModelId,
    record: Record,
    /// Still only on this phone: the commune cannot see it yet.
    unsynced: bool,
    /// Saved a moment ago: shown first and marked.
    #[prop(optional)]
    just_saved: bool,
) -> impl IntoView {
    let i18n = use_i18n();
    let ui = use_ui();
    let id = record.id;
    let kind = record.kind();
    let summary = summary(i18n, record.activity.clone());
    let review = record.review.clone();
    let deleted = record.deleted;
    let photos: Vec<_> = record.photos().map(|(_, a)| a.clone()).collect();
    // Who logged it, by name, when it was someone else: a team shares one log.
    let own = ui.account.with_untracked(|a| a.as_ref().is_some_and(|a| a.username == record.author));
    let author = (!own).then(|| crate::people::name(&record.author));
    let edited_after_approval =
        review.state == ReviewState::Approved && review.reviewed_at.is_some_and(|at| record.updated_at > at);
    // Fixed after a return: the reviewer has yet to look again.
    let fixed_since_return =
        review.state == ReviewState::Returned && review.reviewed_at.is_some_and(|at| record.updated_at > at);
    let review_badge = move || {
        let (class, text) = match review.state {
            ReviewState::New => ("badge", t_string!(i18n, review.awaiting).to_string()),
            ReviewState::Approved if edited_after_approval => {
                ("badge warn", t_string!(i18n, review.edited_after_approval).to_string())
            }
            ReviewState::Approved => ("badge ok", t_string!(i18n, review.approved).to_string()),
            ReviewState::Returned if review.comment.is_empty() => {
                ("badge warn", t_string!(i18n, review.returned_plain).to_string())
            }
            ReviewState::Returned => {
                ("badge warn", t_string!(i18n, review.returned, comment = review.comment.clone()).to_string())
            }
        };
        view! { <span class=class data-review=review.state.to_string()>{text}</span> }
    };
    // A new record the commune has not received has no review to speak of yet.
    let review_badge = (!unsynced || review.state != ReviewState::New).then_some(review_badge);
    let sync_badge = if unsynced {
        view! { <span class="badge local" data-sync="local">{t!(i18n, log.unsynced)}</span> }.into_any()
    } else {
        view! { <span class="badge synced" data-sync="synced">{t!(i18n, log.synced)}</span> }.into_any()
    };
    view! {
        <li class="record" class:deleted=deleted class:just-saved=just_saved data-record=id.to_string()
            data-kind=kind.to_string() data-sync=if unsynced { "local" } else { "synced" }>
            <button class="card" on:click=move |_| ui.screen.set(Screen::Record { model, record: Some(id) })>
                {just_saved.then(|| view! { <span class="saved-mark" id="just-saved">{t!(i18n, log.just_saved)}</span> })}
                <span class="line">
                    <strong>{move || labels::kind(i18n, kind)}</strong>
                    <span class="muted">{format::day(record.occurred_on)}</span>
                </span>
                <span class="summary">{summary}</span>
                {(!record.note.is_empty()).then(|| view! { <span class="muted note">{record.note.clone()}</span> })}
                // Inside the card's button: a tap opens the record, where
                // each photo opens full size.
                <PhotoStrip photos=photos/>
                {author.map(|name| view! {
                    <span class="muted author">{move || t_string!(i18n, log.by, name = name.clone()).to_string()}</span>
                })}
                <span class="line badges">
                    {sync_badge}
                    {review_badge}
                    {fixed_since_return.then(|| view! { <span class="badge" data-fixed="1">{t!(i18n, review.fixed_waiting)}</span> })}
                    {deleted.then(|| view! { <span class="badge">{t!(i18n, log.deleted)}</span> })}
                </span>
            </button>
        </li>
    }
}

/// One line saying what happened, in the language chosen when rendered.
pub(super) fn summary(i18n: labels::I18n, activity: Activity) -> impl Fn() -> String + Send + Sync + 'static {
    move || match &activity {
        Activity::Patrol(p) => {
            let mut parts =
                vec![format!("{}–{}", p.start, p.end), t_string!(i18n, log.members, n = p.members_present).to_string()];
            if !p.area.is_empty() {
                parts.push(p.area.clone());
            }
            if !p.incidents.is_empty() {
                parts.push(format!("{}: {}", t_string!(i18n, form.incidents), p.incidents.len()));
            }
            if let Some(l) = &p.location {
                parts.push(format!("{}: {}", t_string!(i18n, location.label), super::location::coordinates(l)));
            }
            parts.join(" · ")
        }
        Activity::HouseholdSupport(h) => {
            let mut parts = vec![format!("{} → {}", h.giver, h.receiver), labels::support(i18n, h.support_type)];
            if h.amount_vnd > 0 || h.support_type == SupportType::Money {
                parts.push(format::vnd(h.amount_vnd));
            }
            if h.workdays > 0.0 {
                parts.push(format!("{} {}", format::decimal(h.workdays), t_string!(i18n, form.workdays)));
            }
            parts.join(" · ")
        }
        Activity::Production(p) => {
            format!("{} · {} {} · {}", p.product, format::decimal(p.quantity), p.unit, format::vnd(p.revenue_vnd))
        }
        Activity::Meeting(m) => format!("{} · {} {}", m.topic, m.attendees, t_string!(i18n, form.attendees)),
    }
}

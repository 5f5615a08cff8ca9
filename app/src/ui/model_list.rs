//! The volunteer's models: every model on the phone, by name, with how
//! many records it holds and how many the commune returned to be fixed.

use kheo_shared::codes::{ReviewState, Role};
use kheo_shared::record::Record;
use leptos::prelude::*;

use super::labels;
use crate::catalog::{self, Filter};
use crate::device;
use crate::i18n::*;
use crate::state::{Screen, use_ui};

/// A record the commune sent back and its volunteer has yet to fix.
fn to_fix(record: &Record) -> bool {
    record.review.state == ReviewState::Returned && !crate::review::edited_since_review(record)
}

#[component]
pub fn ModelList() -> impl IntoView {
    let i18n = use_i18n();
    let ui = use_ui();
    // Commune staff and above build models (the server's `model_needs_staff`)
    // and may see thousands: their list is searched and paged by the server.
    let staff = super::role() >= Role::CommuneStaff;
    let models = move || {
        if staff {
            return Vec::new();
        }
        ui.revision.track();
        device::with(|d| {
            catalog::models(&d.replica)
                .into_iter()
                .map(|m| {
                    let records = catalog::records(&d.replica, m.id, Filter::default());
                    let returned = records.iter().filter(|r| to_fix(r)).count();
                    (m, records.len(), returned)
                })
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
    };
    // A volunteer with one model has nowhere else to go: the app opens in
    // it, once per start (Back still shows this list).
    Effect::new(move |_| {
        let list = models();
        if list.is_empty() || ui.landed.get_untracked() {
            return;
        }
        ui.landed.set(true);
        if let [(only, _, _)] = list.as_slice()
            && !staff
            && ui.screen.get_untracked() == Screen::Models
        {
            ui.screen.set(Screen::Model(only.id));
        }
    });
    view! {
        <h1>{move || if staff { t_string!(i18n, models.title_staff).to_string() } else { t_string!(i18n, models.title).to_string() }}</h1>
        {staff.then(|| view! {
            <button class="primary wide" id="add-model" on:click=move |_| ui.screen.set(Screen::ModelEdit { model: None })>
                "+ " {t!(i18n, model_form.add_button)}
            </button>
        })}
        {staff.then(|| view! { <super::staff_models::StaffModels/> })}
        {(!staff).then_some(move || {
            let list = models();
            if list.is_empty() {
                return view! { <p class="hint" id="no-models">{t!(i18n, models.empty)}</p> }.into_any();
            }
            view! {
                <ul class="cards" id="models">
                    {list.into_iter().map(|(m, n, returned)| {
                        let id = m.id;
                        view! {
                            <li>
                                <button class="card model-card" data-model=id.to_string()
                                    on:click=move |_| ui.screen.set(Screen::Model(id))>
                                    <strong>{m.name.clone()}</strong>
                                    <span class="muted">{move || labels::field(i18n, m.field)}</span>
                                    <span class="muted">{move || labels::status(i18n, m.status)}</span>
                                    <CardCounts records=n as i64 returned=returned as i64/>
                                </button>
                            </li>
                        }
                    }).collect_view()}
                </ul>
            }.into_any()
        })}
    }
}

/// A model card's counts: its records, and those returned to be fixed.
#[component]
pub(super) fn CardCounts(records: i64, returned: i64) -> impl IntoView {
    let i18n = use_i18n();
    view! {
        <span class="count">{move || t_string!(i18n, models.records_count, n = records).to_string()}</span>
        {(returned > 0).then(|| view! {
            <span class="badge warn returned-count" data-returned=returned>
                {move || t_string!(i18n, models.returned_count, n = returned).to_string()}
            </span>
        })}
    }
}

//! The parts of a model page that a staff device fetches (see
//! [`crate::held`]): a line while the model is on its way, and "earlier
//! years", one year per press, newest first, down to the year the model
//! started. A volunteer's phone holds every year and shows neither.

use kheo_shared::ids::{DocId, ModelId};
use leptos::prelude::*;

use crate::catalog;
use crate::device;
use crate::held;
use crate::i18n::*;
use crate::state::use_ui;

/// Says that the model is being fetched, until its profile arrives.
#[component]
pub fn Arriving(model: ModelId) -> impl IntoView {
    let i18n = use_i18n();
    let ui = use_ui();
    let waiting = move || {
        ui.revision.track();
        ui.sync.track();
        held::on_its_way(&DocId::Model(model))
    };
    view! {
        <Show when=waiting>
            <p class="hint" id="model-arriving" role="status">{t!(i18n, log.arriving)}</p>
        </Show>
    }
}

/// "Show the records of 2024": fetches the newest year not held yet.
#[component]
pub fn EarlierYears(model: ModelId) -> impl IntoView {
    let i18n = use_i18n();
    let ui = use_ui();
    let asked = RwSignal::new(Vec::<i32>::new());
    let this_year = js_sys::Date::new_0().get_full_year() as i32;
    // (the year a press would fetch, the years asked for and not here yet)
    let state = move || {
        ui.revision.track();
        ui.sync.track();
        device::with(|d| {
            d.replica.keep()?;
            let started = catalog::model(&d.replica, model).map(|p| p.started_on.year());
            let asked = asked.get();
            let next = held::earlier_years(started, this_year)
                .into_iter()
                .find(|y| !asked.contains(y) && DocId::log(model, *y).is_ok_and(|id| d.replica.doc(&id).is_none()));
            let loading: Vec<i32> = asked
                .iter()
                .copied()
                .filter(|y| DocId::log(model, *y).is_ok_and(|id| held::waiting(&mut d.replica, &id)))
                .collect();
            Some((next, loading))
        })
        .flatten()
    };
    move || {
        let (next, loading) = state()?;
        Some(view! {
            {loading.into_iter().map(|year| view! {
                <p class="hint year-loading" role="status">{t_string!(i18n, log.loading_year, year = year).to_string()}</p>
            }).collect_view()}
            {next.map(|year| view! {
                <button class="secondary wide" id="earlier-year" data-year=year
                    on:click=move |_| {
                        asked.update(|a| a.push(year));
                        held::load_year(model, year);
                    }>
                    {t_string!(i18n, log.earlier, year = year).to_string()}
                </button>
            })}
        })
    }
}

//! The records a staff device's review queue lacks: the device keeps only
//! part of its scope ([`crate::held`]), so while online the screen asks the
//! server's queue for the same filter, a page at a time, fetches the logs
//! holding those records (a few at a time) and says so; once synced they
//! are in the phone's own queue, where decisions are written as always.

use std::cell::Cell;

use kheo_shared::ids::DocId;
use leptos::prelude::*;
use leptos::task::spawn_local;
use serde::Deserialize;

use crate::api;
use crate::device;
use crate::held;
use crate::i18n::*;
use crate::review::{self, QueueFilter};
use crate::state::use_ui;

/// Records per answer of the server's queue.
const PAGE: usize = 500;
/// Logs fetched for one filter: enough for a commune's week of work,
/// and a small download on a weak link.
const MAX_LOGS: usize = 20;

#[derive(Debug, Clone, Deserialize)]
struct Named {
    model: String,
    occurred_on: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
struct Gap {
    fetched: Vec<DocId>,
    /// The server named more than one look fetches: a narrower filter gets the rest.
    more: bool,
}

thread_local! {
    /// Which filter's answer may still be shown: a later filter wins.
    static ASKED: Cell<u64> = const { Cell::new(0) };
}

#[component]
pub fn ServerRecords(filter: RwSignal<QueueFilter>) -> impl IntoView {
    let i18n = use_i18n();
    let ui = use_ui();
    let gap = RwSignal::new(Gap::default());
    Effect::new(move |_| {
        let f = filter.get();
        let online = ui.online.get();
        let generation = ASKED.with(|a| {
            a.set(a.get().wrapping_add(1));
            a.get()
        });
        gap.set(Gap::default());
        let asking = device::with(|d| d.replica.keep().is_some().then(|| d.session.token.clone())).flatten();
        let (Some(token), true) = (asking, online) else { return };
        spawn_local(async move {
            let mut named = Vec::new();
            let mut full_page = false;
            for path in review::server_queries(&f, PAGE) {
                // Offline, refused or old server: the phone's own queue stands.
                let Ok(page) = api::get_json::<Vec<Named>>(&token, &path).await else { return };
                full_page |= page.len() == PAGE;
                named.extend(page);
            }
            if ASKED.with(Cell::get) != generation {
                return;
            }
            let lacking = device::with(|d| {
                review::logs_lacking(named.iter().map(|n| (n.model.as_str(), n.occurred_on.as_str())), |id| {
                    d.replica.doc(id).is_some()
                })
            })
            .unwrap_or_default();
            let more = full_page || lacking.len() > MAX_LOGS;
            let fetched: Vec<DocId> = lacking.into_iter().take(MAX_LOGS).collect();
            held::fetch_for_review(&fetched);
            gap.set(Gap { fetched, more });
        });
    });
    let waiting = move || {
        ui.revision.track();
        ui.sync.track();
        gap.with(|g| g.fetched.iter().filter(|id| held::on_its_way(id)).count())
    };
    view! {
        <Show when=move || { waiting() > 0 }>
            <p class="hint" id="review-fetching" role="status">
                {move || t_string!(i18n, review.fetching, n = waiting()).to_string()}
            </p>
        </Show>
        <Show when=move || gap.with(|g| g.more)>
            <p class="hint" id="review-more" role="status">{t!(i18n, review.more_on_server)}</p>
        </Show>
    }
}

//! Commune review of the records on the phone (being written).

use leptos::prelude::*;

#[component]
pub fn ReviewQueue() -> impl IntoView {
    view! { <p class="hint">"…"</p> }
}

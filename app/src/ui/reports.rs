//! Consolidated reports from the server (being written).

use leptos::prelude::*;

#[component]
pub fn Reports() -> impl IntoView {
    view! { <p class="hint">"…"</p> }
}

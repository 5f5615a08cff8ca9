//! A model's profile form for commune staff (being written).

use kheo_shared::ids::ModelId;
use leptos::prelude::*;

#[component]
pub fn ModelEdit(model: Option<ModelId>) -> impl IntoView {
    let _ = model;
    view! { <p class="hint">"…"</p> }
}

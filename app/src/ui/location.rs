//! The optional location of a patrol or an incident: one button that asks
//! the phone's GPS (no network needed), the fix shown as coordinates with
//! its precision, and a way to clear it. Never required; a refusal or no
//! fix is told calmly, and the record saves without it.

use kheo_shared::evidence::Location;
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::geo::{self, GeoError};
use crate::i18n::*;

/// Degrees with five decimals (about a metre) and the radius in metres, in
/// the form map apps take: `10.76262, 106.66017 ± 12 m`.
pub fn coordinates(l: &Location) -> String {
    format!("{:.5}, {:.5} ± {} m", l.latitude, l.longitude, l.accuracy_m.round() as i64)
}

#[component]
pub fn LocationField(id: String, value: RwSignal<Option<Location>>) -> impl IntoView {
    let i18n = use_i18n();
    let busy = RwSignal::new(false);
    let problem = RwSignal::new(None::<GeoError>);
    let locate = move |_| {
        if busy.get_untracked() {
            return;
        }
        busy.set(true);
        problem.set(None);
        spawn_local(async move {
            let fix = geo::locate().await;
            let _ = busy.try_set(false);
            match fix {
                Ok(l) => {
                    let _ = value.try_set(Some(l));
                }
                Err(e) => {
                    let _ = problem.try_set(Some(e));
                }
            }
        });
    };
    view! {
        <div class="location" id=id.clone() data-located=move || value.with(|v| v.is_some()).then_some("1")>
            {move || match value.get() {
                Some(l) => view! {
                    <span class="coords">{t!(i18n, location.label)} ": " {coordinates(&l)}</span>
                    <button type="button" class="link clear-location" on:click=move |_| value.set(None)>
                        {t!(i18n, location.clear)}
                    </button>
                }
                .into_any(),
                None => view! {
                    <button type="button" class="secondary get-location" on:click=locate disabled=move || busy.get()>
                        {move || if busy.get() { t_string!(i18n, location.working).to_string() } else { t_string!(i18n, location.get).to_string() }}
                    </button>
                }
                .into_any(),
            }}
            {move || problem.get().map(|p| {
                let text = match p {
                    GeoError::Denied => t_string!(i18n, location.denied).to_string(),
                    GeoError::Timeout => t_string!(i18n, location.timeout).to_string(),
                    GeoError::Unavailable => t_string!(i18n, location.unavailable).to_string(),
                };
                view! { <p class="hint location-problem" role="status">{text}</p> }
            })}
        </div>
    }
}

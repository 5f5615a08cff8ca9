//! The screens. [`App`] picks the language, opens the device of a stored
//! login (or shows the login form), and starts background sync; the shell
//! then shows the sync bar over one screen at a time (see
//! [`crate::state::Screen`]). [`LoginOnly`] is the login form alone, what
//! the first module of a phone with no login shows (`kheo-login`, see
//! [`crate::boot`]).

mod earlier_years;
mod format;
mod labels;
mod location;
mod login;
mod model_edit;
mod model_list;
mod model_page;
mod photos;
mod record_form;
mod record_item;
mod reports;
mod review;
mod review_gap;
mod staff_models;
mod sync_bar;

use kheo_shared::codes::Role;
use leptos::prelude::*;

use crate::i18n::*;
use crate::state::{Notice, Screen, Ui, use_ui};
use crate::{device, store, sync};

#[component]
pub fn App() -> impl IntoView {
    view! {
        <I18nContextProvider>
            <Root/>
        </I18nContextProvider>
    }
}

/// The login form alone, in the language chosen on this phone; `on_login`
/// gets the stored session.
#[component]
pub fn LoginOnly(on_login: login::OnLogin) -> impl IntoView {
    view! {
        <I18nContextProvider>
            <LoginRoot on_login/>
        </I18nContextProvider>
    }
}

#[component]
fn LoginRoot(on_login: login::OnLogin) -> impl IntoView {
    let i18n = use_i18n();
    keep_chosen_language(i18n);
    let storage_ok = store::available();
    view! {
        <Show when=move || storage_ok fallback=move || view! { <p class="banner error">{t!(i18n, storage_unavailable)}</p> }>
            <login::Login on_login=on_login.clone()/>
        </Show>
    }
}

/// Vietnamese unless the user chose otherwise on this phone; the browser's
/// own language says little about who holds the phone. Set in an effect
/// because the provider's own effect first applies the browser's language,
/// and effects run in the order they were made.
fn keep_chosen_language(i18n: labels::I18n) {
    let chosen = match store::locale().as_deref() {
        Some("en") => Locale::en,
        _ => Locale::vi,
    };
    Effect::new(move |_| i18n.set_locale(chosen));
}

#[component]
fn Root() -> impl IntoView {
    let i18n = use_i18n();
    keep_chosen_language(i18n);
    let ui = Ui::new();
    provide_context(ui);
    sync::watch_network(ui);
    #[cfg(target_arch = "wasm32")]
    crate::route::start(ui);
    if let Some(session) = store::load_session() {
        open_device(ui, session);
    }
    let storage_ok = store::available();
    view! {
        <Show when=move || storage_ok fallback=move || view! { <p class="banner error">{t!(i18n, storage_unavailable)}</p> }>
            <Show when=move || ui.account.with(Option::is_some) fallback=move || view! { <login::Login on_login=std::sync::Arc::new(move |session| open_device(ui, session))/> }>
                <Shell/>
            </Show>
        </Show>
    }
}

/// Opens the device of a session and starts syncing it.
pub(crate) fn open_device(ui: Ui, session: store::Session) {
    let account = session.account.clone();
    crate::people::remember(&account);
    let damaged = device::open(session);
    if !damaged.is_empty() {
        ui.notice.set(Some(Notice::Error(damaged.join(", "))));
    }
    ui.sync.update(|s| s.last_ok = store::last_sync());
    ui.account.set(Some(account));
    ui.screen.set(crate::route::initial());
    ui.changed();
    // The photo sweep runs once every log is loaded (`device::load_rest`).
    sync::start(ui);
}

#[component]
fn Shell() -> impl IntoView {
    let i18n = use_i18n();
    let ui = use_ui();
    let switch_language = move |_| {
        let next = match i18n.get_locale_untracked() {
            Locale::vi => Locale::en,
            Locale::en => Locale::vi,
        };
        i18n.set_locale(next);
        let _ = store::save_locale(next.as_str());
    };
    let logout = move |_| {
        let pending = ui.sync.with_untracked(|s| s.pending);
        if pending > 0 {
            let question = t_string!(i18n, login.logout_unsynced, n = pending).to_string();
            let sure = web_sys::window().and_then(|w| w.confirm_with_message(&question).ok()).unwrap_or(false);
            if !sure {
                return;
            }
        }
        sync::stop();
        let session = device::with(|d| (d.session.token.clone(), d.session.device_id.clone()));
        device::close();
        store::clear_device();
        leptos::task::spawn_local(crate::photo_store::clear());
        crate::people::forget();
        ui.account.set(None);
        crate::route::replace(ui, Screen::Models);
        // A phone passed to someone else must not keep working as this
        // account. Offline, the token stays valid until an admin revokes it.
        if let Some((token, device_id)) = session {
            leptos::task::spawn_local(async move {
                if let Err(e) = crate::api::revoke_device(&token, &device_id).await {
                    web_sys::console::warn_1(&format!("the device token was not revoked: {e}").into());
                }
            });
        }
    };
    // Each screen opens at its top (a saved record is shown first in its
    // log), not at the scroll position of the screen before.
    Effect::new(move |_| {
        ui.screen.track();
        if let Some(window) = web_sys::window() {
            window.scroll_to_with_x_and_y(0.0, 0.0);
        }
    });
    let who = move || ui.account.with(|a| a.as_ref().map(|a| a.display_name.clone()).unwrap_or_default());
    view! {
        <header class="top">
            <span class="identity">
                <span class="brand">{t!(i18n, app_name)}</span>
                <span class="who" id="who">{who}</span>
            </span>
            <button class="link" id="language" on:click=switch_language>{t!(i18n, language)}</button>
            <button class="link" id="logout" on:click=logout>{t!(i18n, login.logout)}</button>
        </header>
        <sync_bar::SyncBar/>
        <Tabs/>
        <NoticeBar/>
        <main>
            {move || match ui.screen.get() {
                Screen::Models => view! { <model_list::ModelList/> }.into_any(),
                Screen::Model(model) => view! { <model_page::ModelPage model/> }.into_any(),
                Screen::Record { model, record } => view! { <record_form::RecordForm model record/> }.into_any(),
                Screen::Review => view! { <review::ReviewQueue/> }.into_any(),
                Screen::ModelEdit { model } => view! { <model_edit::ModelEdit model/> }.into_any(),
                Screen::Reports => view! { <reports::Reports/> }.into_any(),
            }}
        </main>
        <Show when=move || ui.screen.get() == Screen::Models>
            <Settings/>
        </Show>
    }
}

/// The role of the logged-in account (volunteer when unknown).
/// The phone's own settings, under the model list.
#[component]
fn Settings() -> impl IntoView {
    let i18n = use_i18n();
    let ui = use_ui();
    let wifi_only = RwSignal::new(store::photos_wifi_only());
    let toggle = move |ev: leptos::ev::Event| {
        let on = event_target_checked(&ev);
        if store::save_photos_wifi_only(on).is_ok() {
            wifi_only.set(on);
        }
        ui.changed();
        // Turned off on a mobile network: what waited may go now.
        sync::wake();
    };
    view! {
        <footer class="settings">
            <label class="check" for="photos-wifi-only">
                <input type="checkbox" id="photos-wifi-only" prop:checked=move || wifi_only.get() on:change=toggle/>
                <span>{t!(i18n, photos.wifi_only)}</span>
            </label>
        </footer>
    }
}

pub(crate) fn role() -> Role {
    use_ui().account.with(|a| a.as_ref().map_or(Role::Volunteer, |a| a.role))
}

/// Staff see their work areas; a volunteer has only the models, so no tabs.
#[component]
fn Tabs() -> impl IntoView {
    let i18n = use_i18n();
    let ui = use_ui();
    let staff = move || role() >= Role::CommuneStaff;
    let tab = move |id: &'static str, target: Screen, label: String| {
        let current = move || match (ui.screen.get(), target) {
            (Screen::Model(_) | Screen::Record { .. } | Screen::ModelEdit { .. }, Screen::Models) => true,
            (a, b) => a == b,
        };
        view! {
            <button id=id class="tab" class:current=current on:click=move |_| ui.screen.set(target)>{label}</button>
        }
    };
    view! {
        <Show when=staff>
            <nav class="tabs">
                {move || tab("tab-models", Screen::Models, t_string!(i18n, nav.models).to_string())}
                {move || tab("tab-review", Screen::Review, t_string!(i18n, nav.review).to_string())}
                {move || tab("tab-reports", Screen::Reports, t_string!(i18n, nav.reports).to_string())}
            </nav>
        </Show>
    }
}

#[component]
fn NoticeBar() -> impl IntoView {
    let i18n = use_i18n();
    let ui = use_ui();
    let dismiss = move |_| ui.notice.set(None);
    // "Saved" is news for a moment, not a state: it goes after a few
    // seconds, so it never stands over the next form as if that were saved.
    let shown = StoredValue::new(0u64);
    Effect::new(move |_| {
        if ui.notice.with(|n| n == &Some(Notice::Saved)) {
            let generation = shown.get_value() + 1;
            shown.set_value(generation);
            leptos::task::spawn_local(async move {
                gloo_timers::future::sleep(std::time::Duration::from_secs(4)).await;
                if shown.get_value() == generation && ui.notice.with_untracked(|n| n == &Some(Notice::Saved)) {
                    ui.notice.set(None);
                }
            });
        }
    });
    move || {
        ui.notice.get().map(|notice| {
            let (class, text) = match notice {
                Notice::Saved => ("notice ok", t_string!(i18n, saved).to_string()),
                Notice::StorageFull => ("notice error", t_string!(i18n, storage_full).to_string()),
                Notice::Error(reason) => ("notice error", t_string!(i18n, storage_failed, reason).to_string()),
            };
            view! {
                <div class=class id="notice" role="status" on:click=dismiss>
                    {text}
                </div>
            }
        })
    }
}

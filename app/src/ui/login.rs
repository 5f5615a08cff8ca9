//! The login form: the one step that needs the network. A successful login
//! stores the session and hands it on (`on_login`): the whole app opens the
//! device; the login module a first visit downloads (`kheo-login`) hands
//! over to the whole app. Everything after works offline.

use std::sync::Arc;

use kheo_shared::protocol::LoginRequest;
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api::{self, ApiError};
use crate::i18n::*;
use crate::store::{self, Session};

/// What a successful login does with the session it stored.
pub type OnLogin = Arc<dyn Fn(Session) + Send + Sync>;

#[component]
pub fn Login(on_login: OnLogin) -> impl IntoView {
    let i18n = use_i18n();
    let login = RwSignal::new(String::new());
    let secret = RwSignal::new(String::new());
    let working = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    // Volunteers log in with a PIN: the number pad first, letters a tap away
    // for the staff's passwords.
    let digits = RwSignal::new(true);

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if working.get_untracked() {
            return;
        }
        working.set(true);
        error.set(None);
        let device_label = format!("{} ({})", t_string!(i18n, login.device_label), platform());
        let request = LoginRequest {
            login: login.get_untracked().trim().to_owned(),
            secret: secret.get_untracked(),
            device_label,
        };
        let on_login = on_login.clone();
        spawn_local(async move {
            let result = api::login(&request).await;
            working.set(false);
            match result {
                Ok(r) => {
                    let session =
                        Session { token: r.token, device_id: r.device_id, actor: r.actor, account: r.account };
                    store::clear_device();
                    if let Err(e) = store::save_session(&session) {
                        error.set(Some(t_string!(i18n, login.failed, reason = e).to_string()));
                        return;
                    }
                    secret.set(String::new());
                    on_login(session);
                }
                Err(e) => error.set(Some(explain(i18n, &e))),
            }
        });
    };

    view! {
        <main class="login">
            <h1>{t!(i18n, app_name)}</h1>
            <h2>{t!(i18n, login.title)}</h2>
            <p class="hint">{t!(i18n, login.intro)}</p>
            <form on:submit=submit>
                <label for="login-user">{t!(i18n, login.username)}</label>
                <input id="login-user" name="username" autocomplete="username" autocapitalize="none" required
                    prop:value=move || login.get() on:input=move |ev| login.set(event_target_value(&ev))/>
                <label for="login-secret">{t!(i18n, login.secret)}</label>
                <div class="secret-row">
                    <input id="login-secret" name="password" type="password" autocomplete="current-password" required
                        inputmode=move || if digits.get() { "numeric" } else { "text" }
                        prop:value=move || secret.get() on:input=move |ev| secret.set(event_target_value(&ev))/>
                    <button type="button" class="secondary" id="login-keyboard"
                        on:click=move |_| {
                            digits.update(|d| *d = !*d);
                            focus_secret();
                        }>
                        {move || if digits.get() { t_string!(i18n, login.letters).to_string() } else { t_string!(i18n, login.digits).to_string() }}
                    </button>
                </div>
                <button id="login-submit" class="primary" type="submit" disabled=move || working.get()>
                    {move || if working.get() { t_string!(i18n, login.working).to_string() } else { t_string!(i18n, login.submit).to_string() }}
                </button>
            </form>
            {move || error.get().map(|e| view! { <p class="banner error" id="login-error">{e}</p> })}
        </main>
    }
}

fn explain(i18n: super::labels::I18n, e: &ApiError) -> String {
    match e {
        ApiError::Network(_) => t_string!(i18n, login.offline).to_string(),
        ApiError::Unauthorized(_) => t_string!(i18n, login.wrong).to_string(),
        ApiError::Refused { status: 429, .. } => t_string!(i18n, login.throttled).to_string(),
        ApiError::Refused { status: 403, .. } => t_string!(i18n, login.disabled).to_string(),
        other => t_string!(i18n, login.failed, reason = other).to_string(),
    }
}

/// Back to the secret field, so the phone opens the keyboard just chosen.
fn focus_secret() {
    let field = web_sys::window().and_then(|w| w.document()).and_then(|d| d.get_element_by_id("login-secret"));
    if let Some(field) = field.and_then(|f| wasm_bindgen::JsCast::dyn_into::<web_sys::HtmlElement>(f).ok()) {
        let _ = field.blur();
        let _ = field.focus();
    }
}

fn platform() -> String {
    web_sys::window().and_then(|w| w.navigator().platform().ok()).unwrap_or_default()
}

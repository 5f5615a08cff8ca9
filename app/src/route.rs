//! Each screen its own address in the browser's history, so the phone's
//! Back button goes back a screen (not out of the app) and a reload stays
//! where the person was. [`Screen`] is the route: [`path`] and [`parse`]
//! are its two spellings (pure, tested natively); [`start`] follows the
//! screen into the history and the history's Back and Forward into the
//! screen. Every address is served the app (the server's SPA fallback, the
//! service worker's cached shell for a navigation offline).

use kheo_shared::ids::ModelId;

use crate::state::{Screen, Ui};

/// The address of a screen.
pub fn path(screen: Screen) -> String {
    match screen {
        Screen::Models => "/".into(),
        Screen::Model(m) => format!("/models/{m}"),
        Screen::Record { model, record: None } => format!("/models/{model}/new"),
        Screen::Record { model, record: Some(r) } => format!("/models/{model}/records/{r}"),
        Screen::ModelEdit { model: None } => "/models/new".into(),
        Screen::ModelEdit { model: Some(m) } => format!("/models/{m}/edit"),
        Screen::Review => "/review".into(),
        Screen::Reports => "/reports".into(),
    }
}

/// The screen an address names, if any.
pub fn parse(path: &str) -> Option<Screen> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let model = |s: &str| s.parse::<ModelId>().ok();
    Some(match parts.as_slice() {
        [] | ["index.html"] => Screen::Models,
        ["review"] => Screen::Review,
        ["reports"] => Screen::Reports,
        ["models", "new"] => Screen::ModelEdit { model: None },
        ["models", m] => Screen::Model(model(m)?),
        ["models", m, "new"] => Screen::Record { model: model(m)?, record: None },
        ["models", m, "edit"] => Screen::ModelEdit { model: Some(model(m)?) },
        ["models", m, "records", r] => Screen::Record { model: model(m)?, record: Some(r.parse().ok()?) },
        _ => return None,
    })
}

#[cfg(target_arch = "wasm32")]
mod browser {
    use leptos::prelude::*;
    use wasm_bindgen::JsValue;

    use super::{Screen, Ui, parse, path};

    fn history() -> Option<web_sys::History> {
        web_sys::window()?.history().ok()
    }

    fn current_path() -> String {
        web_sys::window().and_then(|w| w.location().pathname().ok()).unwrap_or_else(|| "/".into())
    }

    /// How many screens of the app lie behind the current entry (0 when the
    /// app was opened here: Back would leave it).
    fn depth() -> u32 {
        history().and_then(|h| h.state().ok()).and_then(|s| s.as_f64()).map_or(0, |d| d as u32)
    }

    /// The screen the address names (a reload, a bookmark), or the models.
    pub fn initial() -> Screen {
        parse(&current_path()).unwrap_or(Screen::Models)
    }

    /// Follows the screen into the history, and Back and Forward into the screen.
    pub fn start(ui: Ui) {
        if let Some(h) = history() {
            // The address in its one spelling, for an address the app does not know.
            let _ = h.replace_state_with_url(&JsValue::from(depth()), "", Some(&path(initial())));
        }
        Effect::new(move |_| {
            let target = path(ui.screen.get());
            if target != current_path()
                && let Some(h) = history()
            {
                let _ = h.push_state_with_url(&JsValue::from(depth() + 1), "", Some(&target));
            }
        });
        if let Some(window) = web_sys::window() {
            gloo_events::EventListener::new(&window, "popstate", move |_| {
                if let Some(screen) = parse(&current_path()) {
                    ui.screen.set(screen);
                }
            })
            .forget();
        }
    }

    /// Back where the person came from in the app, or to `parent` when the
    /// app was opened on this screen.
    pub fn back(ui: Ui, parent: Screen) {
        match history() {
            Some(h) if depth() > 0 => {
                let _ = h.back();
            }
            _ => replace(ui, parent),
        }
    }

    /// Goes to `screen` in place of the current entry: after a save, Back
    /// does not reopen the form.
    pub fn replace(ui: Ui, screen: Screen) {
        if let Some(h) = history() {
            let _ = h.replace_state_with_url(&JsValue::from(depth()), "", Some(&path(screen)));
        }
        ui.screen.set(screen);
    }
}

#[cfg(target_arch = "wasm32")]
pub use browser::{back, initial, replace, start};

/// Off the browser (native unit tests) there is no history: the screen is all.
#[cfg(not(target_arch = "wasm32"))]
pub fn initial() -> Screen {
    Screen::Models
}

#[cfg(not(target_arch = "wasm32"))]
pub fn back(ui: Ui, parent: Screen) {
    use leptos::prelude::Set;
    ui.screen.set(parent);
}

#[cfg(not(target_arch = "wasm32"))]
pub fn replace(ui: Ui, screen: Screen) {
    use leptos::prelude::Set;
    ui.screen.set(screen);
}

#[cfg(test)]
mod tests {
    use super::*;
    use kheo_shared::ids::RecordId;

    #[test]
    fn every_screen_has_one_address_that_reads_back() {
        let (m, r) = (ModelId::new_random(), RecordId::new_random());
        let screens = [
            Screen::Models,
            Screen::Model(m),
            Screen::Record { model: m, record: None },
            Screen::Record { model: m, record: Some(r) },
            Screen::ModelEdit { model: None },
            Screen::ModelEdit { model: Some(m) },
            Screen::Review,
            Screen::Reports,
        ];
        for screen in screens {
            assert_eq!(parse(&path(screen)), Some(screen), "{}", path(screen));
        }
        let distinct: std::collections::BTreeSet<String> = screens.iter().map(|s| path(*s)).collect();
        assert_eq!(distinct.len(), screens.len());
    }

    #[test]
    fn unknown_addresses_name_no_screen() {
        assert_eq!(parse("/models/not-a-uuid"), None);
        assert_eq!(parse("/nowhere"), None);
        assert_eq!(parse("/models/"), None);
        assert_eq!(parse("/index.html"), Some(Screen::Models));
        assert_eq!(parse("//"), Some(Screen::Models));
    }
}

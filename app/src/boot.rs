//! How the app starts in the page. A phone with a stored login loads the
//! whole app (`kheo_app`), which mounts [`crate::ui::App`]. A phone without
//! one (a first visit) loads the login module first (`kheo_login`, the
//! `kheo-login` crate: this crate's login form and little else, a fraction
//! of the whole app's bytes), which mounts [`crate::ui::LoginOnly`] through
//! [`mount_login`] while `index.html` downloads the whole app behind it.
//! Once the login is stored, the login module takes its screen down and
//! fires [`LOGGED_IN_EVENT`] on the window; `index.html` then starts the
//! whole app, which finds the stored session and opens the device.

/// The window event the login module fires once the session is stored.
pub const LOGGED_IN_EVENT: &str = "kheo-logged-in";

#[cfg(target_arch = "wasm32")]
mod browser {
    use std::any::Any;
    use std::cell::RefCell;
    use std::sync::Arc;

    use leptos::prelude::*;

    use super::LOGGED_IN_EVENT;
    use crate::ui::LoginOnly;

    thread_local! {
        /// The mounted login screen, taken down when the whole app takes over.
        static MOUNTED: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
    }

    /// Mounts the login form alone; a stored login hands over to the whole app.
    pub fn mount_login() {
        let body = leptos::tachys::dom::body();
        let handle = leptos::mount::mount_to(body, || view! { <LoginOnly on_login=Arc::new(|_| hand_over())/> });
        MOUNTED.with(|m| *m.borrow_mut() = Some(Box::new(handle)));
    }

    fn hand_over() {
        // Later, not inside the login's own task: unmounting disposes the
        // form's signals, which that task may still touch as it returns.
        leptos::task::spawn_local(async {
            drop(MOUNTED.with(|m| m.borrow_mut().take()));
            if let (Some(window), Ok(event)) = (web_sys::window(), web_sys::Event::new(LOGGED_IN_EVENT)) {
                let _ = window.dispatch_event(&event);
            }
        });
    }
}

#[cfg(target_arch = "wasm32")]
pub use browser::mount_login;

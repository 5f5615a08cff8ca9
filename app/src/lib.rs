//! # kheo-app
//!
//! The offline-first web app a village volunteer holds: Leptos compiled to
//! WebAssembly. Every record lives first in an Automerge document in the
//! browser's storage; sync with the server runs in the background whenever
//! the network allows.
//!
//! ## Layout
//!
//! * [`store`]: what survives a reload (session, documents with their sync
//!   state, refusals), one atomic storage entry per document;
//! * [`device`]: the logged-in device (session + [`kheo_shared::client::Replica`])
//!   and the writes screens make, saved before they are reported;
//! * [`catalog`]: reading models and records out of the replica and
//!   writing a record into its yearly log (pure, tested natively);
//! * [`api`]: the server's login and sync endpoints over `fetch`;
//! * [`sync`]: the background sync task, its triggers and its backoff;
//! * [`org`]: the organisation tree, cached for names and scopes offline;
//! * [`people`]: the display names of the people whose records the phone shows;
//! * [`models`]: model management for staff: the profile form's edit applied
//!   over the current profile, the write rules, the units and sources offered;
//! * [`reports`]: periods, paths and answers of the server's consolidated reports;
//! * [`review`]: the commune's review queue over every record on the phone,
//!   its filters, and approving or returning records (pure, tested natively);
//! * [`route`]: each screen's address in the browser's history (Back, reload);
//! * [`state`]: the signals screens render from;
//! * `ui`: the screens, in Vietnamese by default (leptos_i18n, `locales/`);
//! * [`boot`]: how the page starts the app: the whole app, or the login
//!   module first (`kheo-login`) and the whole app after the login.
//!
//! The shell (`static/`: page, service worker, manifest) is assembled with
//! the WebAssembly by `cargo xtask build-app`.

include!(concat!(env!("OUT_DIR"), "/i18n/mod.rs"));

pub mod api;
pub mod boot;
pub mod catalog;
pub mod device;
pub mod geo;
pub mod held;
pub mod models;
pub mod org;
pub mod people;
pub mod photo_store;
pub mod photos;
pub mod reports;
pub mod review;
pub mod route;
pub mod state;
pub mod store;
pub mod sync;
pub mod ui;
pub mod uploads;

/// The whole app's entry point; off (the `start` feature) in the login
/// module, which has an entry point of its own and would otherwise link
/// the whole app in with it.
#[cfg(all(target_arch = "wasm32", feature = "start"))]
#[wasm_bindgen::prelude::wasm_bindgen(start)]
pub fn start() {
    leptos::mount::mount_to_body(ui::App);
}

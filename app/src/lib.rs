//! # kheo-app
//!
//! The offline-first web app a village volunteer holds: Leptos compiled to
//! WebAssembly, documents in browser storage, background sync with the
//! server through [`kheo_shared::client::Replica`]. It arrives with the app
//! issue; until then this crate only pins the dependency on `kheo-shared` so
//! that `shared` keeps building for the app's needs.

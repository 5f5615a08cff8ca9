//! # kheo-login
//!
//! The login module: the WebAssembly a phone with no stored login downloads
//! first, so a volunteer on a weak link can log in long before the whole app
//! (`kheo-app`, with Automerge and every screen) has arrived. It is
//! `kheo-app`'s own login form, linked alone: what the form does not reach
//! is left out of this module. `index.html` downloads the whole app behind
//! it and starts it once the login is stored (see `kheo_app::boot`).

#[cfg(target_arch = "wasm32")]
#[wasm_bindgen::prelude::wasm_bindgen(start)]
pub fn start() {
    kheo_app::boot::mount_login();
}

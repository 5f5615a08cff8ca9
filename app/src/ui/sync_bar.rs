//! The sync bar: one calm line saying whether the phone has a network, how
//! many changes wait, how many photos wait (apart: they follow the
//! changes and may wait for Wi-Fi) and when the last sync happened. Being offline is
//! normal for a volunteer, so it is said plainly, not as an error; only
//! what needs the person's action (a refusal, a device no longer allowed to
//! sync) stands out in red.

use leptos::prelude::*;

use super::format;
use crate::i18n::*;
use crate::state::{SyncProblem, use_ui};
use crate::sync;

#[component]
pub fn SyncBar() -> impl IntoView {
    let i18n = use_i18n();
    let ui = use_ui();
    let status = move || ui.sync.get();
    // The browser's flag says only that some network is up; a server that
    // cannot be reached is no network to a volunteer either.
    let online = move || ui.online.get() && ui.sync.with(|s| s.problem != Some(SyncProblem::Unreachable));
    // A server in trouble retries by itself: said calmly, like offline.
    let server_trouble = move || ui.sync.with(|s| s.problem == Some(SyncProblem::Server));
    let running = move || online() && ui.sync.with(|s| s.running);
    let pending = move || ui.sync.with(|s| s.pending);
    let photos = move || ui.sync.with(|s| s.photos_pending);
    view! {
        <section class="syncbar" id="sync-bar" class:offline=move || !online() || server_trouble()
            data-running=move || if ui.sync.with(|s| s.running) { "1" } else { "0" }
            data-synced=move || if ui.sync.with(|s| s.last_ok.is_some()) { "1" } else { "0" }>
            <div class="row">
                <span class="dot" class:on=move || online() && !server_trouble()></span>
                <span class="line" id="sync-line">
                    <span id="net-state" class:sr-only=move || online() && !server_trouble()>
                        {move || if !online() {
                            t_string!(i18n, sync.offline).to_string()
                        } else if server_trouble() {
                            t_string!(i18n, sync.server_busy).to_string()
                        } else {
                            t_string!(i18n, sync.online).to_string()
                        }}
                    </span>
                    {move || (!online() || server_trouble()).then_some(" · ")}
                    <span id="sync-pending" data-pending=move || pending().to_string()>
                        {move || if running() {
                            t_string!(i18n, sync.running).to_string()
                        } else if pending() > 0 {
                            t_string!(i18n, sync.waiting, n = pending()).to_string()
                        } else {
                            String::new()
                        }}
                    </span>
                    // Photos go after the changes, and may wait for Wi-Fi:
                    // counted apart, so "0 changes" stays true of records.
                    <span id="sync-photos" data-pending=move || photos().to_string()
                        data-bytes=move || ui.sync.with(|s| s.photo_bytes_sent).to_string()>
                        {move || (photos() > 0).then(|| if ui.sync.with(|s| s.photos_held) {
                            t_string!(i18n, sync.photos_wifi, n = photos()).to_string()
                        } else {
                            t_string!(i18n, sync.photos_waiting, n = photos()).to_string()
                        })}
                    </span>
                    <span id="sync-last" class:muted=move || !online()>
                        {move || (!running() && pending() == 0).then(|| match status().last_ok {
                            Some(at) => t_string!(i18n, sync.last, at = format::short_time(at)).to_string(),
                            None => t_string!(i18n, sync.never).to_string(),
                        })}
                    </span>
                </span>
                // With no network at all there is nothing to try; the
                // phone syncs by itself when the network returns.
                <Show when=move || ui.online.get()>
                    <button class="small" id="sync-now" on:click=move |_| sync::wake() disabled=running>
                        {t!(i18n, sync.now)}
                    </button>
                </Show>
            </div>
            {move || {
                let s = status();
                // A refusal outlasts the session that met it: it stays until the data is fixed.
                s.problem.or((s.rejected > 0).then_some(SyncProblem::Rejected))
            }.and_then(|p| {
                let text = match p {
                    SyncProblem::Unreachable | SyncProblem::Server => return None,
                    SyncProblem::Unauthorized => t_string!(i18n, sync.err_auth).to_string(),
                    SyncProblem::Rejected => t_string!(i18n, sync.err_rejected).to_string(),
                    SyncProblem::Other(reason) => t_string!(i18n, sync.err_other, reason).to_string(),
                };
                Some(view! { <div class="row error" id="sync-error" role="alert">{text}</div> })
            })}
            {move || ui.sync.with(|s| s.photos_refused.clone()).map(|(n, reason)| view! {
                <div class="row error" id="photos-refused" role="alert">
                    {t_string!(i18n, sync.photos_refused, n, reason).to_string()}
                </div>
            })}
        </section>
    }
}

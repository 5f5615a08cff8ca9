//! The sync bar: online or offline, how many changes wait, when the last
//! sync happened, and the last error in words a volunteer understands.

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
    view! {
        <section class="syncbar" id="sync-bar" class:offline=move || !online()>
            <div class="row">
                <span class="dot" class:on=online></span>
                <span id="net-state">
                    {move || if online() { t_string!(i18n, sync.online).to_string() } else { t_string!(i18n, sync.offline).to_string() }}
                </span>
                <span id="sync-pending" data-pending=move || status().pending.to_string()>
                    {move || {
                        let s = status();
                        if s.running {
                            t_string!(i18n, sync.running).to_string()
                        } else if s.pending > 0 {
                            t_string!(i18n, sync.waiting, n = s.pending).to_string()
                        } else {
                            t_string!(i18n, sync.all_synced).to_string()
                        }
                    }}
                </span>
                <button class="small" id="sync-now" on:click=move |_| sync::wake() disabled=move || status().running>
                    {t!(i18n, sync.now)}
                </button>
            </div>
            <div class="row muted" id="sync-last">
                {move || match status().last_ok {
                    Some(at) => t_string!(i18n, sync.last, at = format::local_time(at)).to_string(),
                    None => t_string!(i18n, sync.never).to_string(),
                }}
            </div>
            {move || {
                let s = status();
                // A refusal outlasts the session that met it: it stays until the data is fixed.
                s.problem.or((s.rejected > 0).then_some(SyncProblem::Rejected))
            }.map(|p| {
                let text = match p {
                    SyncProblem::Unreachable => t_string!(i18n, sync.err_offline).to_string(),
                    SyncProblem::Server => t_string!(i18n, sync.err_server).to_string(),
                    SyncProblem::Unauthorized => t_string!(i18n, sync.err_auth).to_string(),
                    SyncProblem::Rejected => t_string!(i18n, sync.err_rejected).to_string(),
                    SyncProblem::Other(reason) => t_string!(i18n, sync.err_other, reason).to_string(),
                };
                view! { <div class="row error" id="sync-error" role="alert">{text}</div> }
            })}
        </section>
    }
}

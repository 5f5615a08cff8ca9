//! Sending photos' bytes (`docs/PROTOCOL.md` §13), after each document
//! sync: records never wait for photos, and the server has learnt of each
//! attachment from the sync before its bytes arrive. For every photo on the
//! phone's records whose bytes are here and not yet confirmed, it asks the
//! server where the upload stands and sends the rest in 64 KiB parts, so a
//! cut connection costs at most the part in flight. The server's "stored"
//! is remembered in IndexedDB ([`photo_store`]). A photo the server refuses
//! for good is said in the sync bar and kept, not sent again this session.
//!
//! With the "photos on Wi-Fi only" setting, photos wait while the browser
//! says the phone is on another kind of network (`navigator.connection.type`,
//! known on Chrome for Android); where it says nothing, they go.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

use kheo_shared::evidence::Attachment;
use leptos::prelude::*;

use crate::api::{self, ApiError};
use crate::photo_store::{self, FULL};
use crate::state::Ui;
use crate::{catalog, device, store};

/// The app's part size (the server takes up to 256 KiB).
const PART: usize = 64 * 1024;

thread_local! {
    /// Recounts asked for while one runs fold into one more.
    static COUNTING: Cell<(bool, bool)> = const { Cell::new((false, false)) };
    /// Photos the server refused for good (too large, not an image, over
    /// the device's quota), with the error: not sent again until the app
    /// opens again, so a poor link does not carry a refused part at every
    /// sync. They stay on the phone.
    static REFUSED: RefCell<BTreeMap<String, String>> = const { RefCell::new(BTreeMap::new()) };
}

/// The person asked that photos wait for Wi-Fi, and the browser says this
/// is not Wi-Fi (nor a cable).
pub fn held_for_wifi() -> bool {
    store::photos_wifi_only() && connection_type().is_some_and(|t| !matches!(t.as_str(), "wifi" | "ethernet"))
}

fn connection_type() -> Option<String> {
    let navigator = web_sys::window()?.navigator();
    let connection = js_sys::Reflect::get(&navigator, &"connection".into()).ok()?;
    let kind = js_sys::Reflect::get(&connection, &"type".into()).ok()?.as_string()?;
    // "unknown" says as little as no answer.
    (kind != "unknown").then_some(kind)
}

/// Photos on the phone's records whose bytes are here and not confirmed.
async fn waiting() -> Vec<Attachment> {
    let photos = device::with(|d| catalog::photos(&d.replica)).unwrap_or_default();
    let mut out = Vec::new();
    for photo in photos {
        let sha = photo.sha256.as_str();
        if REFUSED.with(|r| r.borrow().contains_key(sha)) {
            continue;
        }
        if !photo_store::is_sent(sha).await && photo_store::has(FULL, sha).await {
            out.push(photo);
        }
    }
    out
}

/// Frees what no record or draft names. Run when the device opens, before
/// any form can be halfway through keeping a photo it has not named yet.
pub fn sweep() {
    // A new login is another device, with a quota of its own.
    REFUSED.with(|r| r.borrow_mut().clear());
    // A log that does not read may name photos too: keep everything then.
    let Some(named) =
        device::with(|d| catalog::every_log_readable(&d.replica).then(|| catalog::photos(&d.replica))).flatten()
    else {
        return;
    };
    let named: std::collections::BTreeSet<String> = named.into_iter().map(|a| a.sha256.into()).collect();
    let drafts = store::drafts_text();
    leptos::task::spawn_local(photo_store::sweep(move |sha| named.contains(sha) || drafts.contains(sha)));
}

/// Recounts the photos that wait, for the sync bar.
pub fn recount(ui: Ui) {
    let (running, _) = COUNTING.get();
    COUNTING.set((true, running));
    if running {
        return;
    }
    leptos::task::spawn_local(async move {
        loop {
            let n = waiting().await.len();
            let refused = REFUSED.with(|r| r.borrow().values().next().cloned().map(|e| (r.borrow().len(), e)));
            ui.sync.update(|s| {
                s.photos_pending = n;
                s.photos_held = n > 0 && held_for_wifi();
                s.photos_refused = refused;
            });
            let (_, again) = COUNTING.get();
            if !again {
                COUNTING.set((false, false));
                return;
            }
            COUNTING.set((true, false));
        }
    });
}

/// Sends every photo that waits. A network or server failure ends the pass
/// (the sync's backoff retries it); a refusal of one photo moves on to the
/// next, as the others may go.
pub async fn send_all(ui: Ui, token: &str) -> Result<(), ApiError> {
    if held_for_wifi() {
        recount(ui);
        return Ok(());
    }
    let mut outcome = Ok(());
    for photo in waiting().await {
        match send(ui, token, &photo).await {
            Ok(()) => {}
            Err(e) if e.is_transient() || matches!(e, ApiError::Unauthorized(_)) => {
                outcome = Err(e);
                break;
            }
            Err(ApiError::Refused { status: 400 | 413 | 415, body }) => {
                REFUSED.with(|r| r.borrow_mut().insert(photo.sha256.to_string(), body.error));
            }
            // Not referenced yet (a record saved since the sync): the
            // next pass asks again.
            Err(e) => web_sys::console::warn_1(&format!("photo {}: {e}", photo.sha256).into()),
        }
        recount(ui);
    }
    recount(ui);
    photo_store::free_space().await;
    outcome
}

async fn send(ui: Ui, token: &str, photo: &Attachment) -> Result<(), ApiError> {
    let sha = photo.sha256.as_str();
    let Some(bytes) = photo_store::get(FULL, sha).await else { return Ok(()) };
    let total = bytes.len() as u32;
    let mut at = api::blob_resume(token, sha).await?;
    // Each step either ends or moves forward; the bound only guards
    // against a server that answers the same `received` for ever.
    for _ in 0..(bytes.len() / PART + 8) {
        if at.stored {
            let _ = photo_store::mark_sent(sha).await;
            return Ok(());
        }
        let first = (at.received as usize).min(bytes.len());
        let part = &bytes[first..(first + PART).min(bytes.len())];
        match api::blob_put(token, sha, photo.media_type.mime(), part, first as u32, total).await {
            Ok(next) => {
                ui.sync.update(|s| s.photo_bytes_sent += part.len() as u64);
                at = next;
            }
            // Another tab or a lost answer moved the upload on: ask again.
            Err(ApiError::Refused { status: 409, .. }) => at = api::blob_resume(token, sha).await?,
            Err(e) => return Err(e),
        }
    }
    Err(ApiError::Server("the upload does not move forward".into()))
}

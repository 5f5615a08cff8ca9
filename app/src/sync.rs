//! Background sync: one task per page that runs a sync session when
//! something may have changed (a save, the browser's `online` event, the
//! "sync now" button, the server's "anything new?" answer) and every few
//! minutes otherwise, retrying failures with exponential backoff and jitter.
//!
//! Beside it, a listener keeps one "anything new?" long-poll open
//! (`GET /api/v1/changes`, see the server's `changes` module) while the
//! app is online and in view, and wakes the sync when the answer says
//! another phone changed something in the account's scope: a record logged
//! on another phone of the commune shows within seconds. Offline or in the
//! background it only looks again now and then, without the network.
//!
//! A session batches every document in each request (see
//! [`kheo_shared::client::Replica::request`]); each response's documents
//! are saved with their sync state before the next request, so a session
//! cut off anywhere resumes from what storage holds and neither loses nor
//! repeats anything. After a session that succeeded, the photos that wait
//! go ([`crate::uploads`]).

use std::cell::{Cell, RefCell};
use std::time::Duration;

use futures::channel::mpsc::{UnboundedReceiver, UnboundedSender, unbounded};
use futures::{FutureExt, StreamExt};
use gloo_timers::future::sleep;
use kheo_shared::ids::DocId;
use kheo_shared::protocol::PACKED_VERSION;
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api::{self, ApiError};
use crate::device;
use crate::state::{Notice, SyncProblem, Ui};
use crate::store;

/// Between successful sessions, to pick up what others synced.
const PERIOD: Duration = Duration::from_secs(120);
const FIRST_RETRY: Duration = Duration::from_secs(2);
const MAX_RETRY: Duration = Duration::from_secs(300);
/// Rounds per session; what is left goes in the next session.
const MAX_ROUNDS: usize = 12;
/// How long one "anything new?" poll waits on the server (its limit is 25 s).
const LISTEN_WAIT_SECS: u32 = 20;
/// Offline or out of view, how often the listener looks again (no network).
const LISTEN_IDLE: Duration = Duration::from_secs(3);

thread_local! {
    static WAKE: RefCell<Option<UnboundedSender<()>>> = const { RefCell::new(None) };
    /// Which login the running listener belongs to; a logout or a new
    /// login moves it and the old listener ends after its poll.
    static LISTENER: Cell<u64> = const { Cell::new(0) };
}

/// Asks for a sync soon (coalesced with any already asked for).
pub fn wake() {
    WAKE.with(|w| {
        if let Some(tx) = w.borrow().as_ref() {
            let _ = tx.unbounded_send(());
        }
    });
}

/// Starts the sync task and the network listeners. Called once per login.
pub fn start(ui: Ui) {
    let (tx, rx) = unbounded();
    let previous = WAKE.with(|w| w.borrow_mut().replace(tx));
    // A previous task (before a logout) ends when its channel closes.
    drop(previous);
    spawn_local(run(ui, rx));
    spawn_local(listen(ui, next_listener()));
}

/// Stops the sync task and the listener (logout).
pub fn stop() {
    WAKE.with(|w| w.borrow_mut().take());
    next_listener();
}

fn next_listener() -> u64 {
    LISTENER.with(|l| {
        l.set(l.get().wrapping_add(1));
        l.get()
    })
}

/// Keeps an "anything new?" poll open while online and in view; wakes the
/// sync when another phone changed something in scope.
async fn listen(ui: Ui, generation: u64) {
    let current = || LISTENER.with(|l| l.get()) == generation;
    // Kept while offline or out of view: the first poll after that says
    // at once whether anything changed meanwhile.
    let mut cursor: Option<String> = None;
    let mut failures: u32 = 0;
    while current() {
        if !ui.online.get_untracked() || !in_view() {
            sleep(LISTEN_IDLE).await;
            continue;
        }
        let Some((token, keep)) = device::with(|d| (d.session.token.clone(), d.replica.keep().cloned())) else {
            return;
        };
        // Without a cursor the server answers at once with one.
        let wait = if cursor.is_some() { LISTEN_WAIT_SECS } else { 0 };
        match api::changes(&token, cursor.as_deref(), wait, keep.as_ref()).await {
            Ok(answer) => {
                failures = 0;
                if answer.changed && current() {
                    wake();
                }
                cursor = Some(answer.cursor);
            }
            // The sync task shows a revoked or expired login.
            Err(ApiError::Unauthorized(_)) => return,
            Err(e) => {
                // A cursor the server does not take (or a server without
                // this endpoint): start again from a fresh one, slowly.
                if matches!(e, ApiError::Refused { .. }) {
                    cursor = None;
                }
                failures = failures.saturating_add(1);
                sleep(backoff(failures)).await;
            }
        }
    }
}

/// The page is shown (not a background tab, not a locked screen).
fn in_view() -> bool {
    web_sys::window().and_then(|w| w.document()).is_none_or(|d| !d.hidden())
}

/// Keeps the online flag current and syncs when the network comes back.
pub fn watch_network(ui: Ui) {
    let Some(window) = web_sys::window() else { return };
    gloo_events::EventListener::new(&window, "online", move |_| {
        ui.online.set(true);
        wake();
    })
    .forget();
    gloo_events::EventListener::new(&window, "offline", move |_| ui.online.set(false)).forget();
}

async fn run(ui: Ui, mut wakes: UnboundedReceiver<()>) {
    // A request loads every document at once: let the first screen paint first.
    device::load_rest(ui).await;
    let mut failures: u32 = 0;
    loop {
        // Photos go after the documents that name them, so records never
        // wait for photos; a photo cut off retries with the same backoff.
        let outcome = match session(ui).await {
            Ok(()) => send_photos(ui).await,
            Err(e) => Err(e),
        };
        let delay = match outcome {
            Ok(()) => {
                failures = 0;
                PERIOD
            }
            Err(_) => {
                failures = failures.saturating_add(1);
                backoff(failures)
            }
        };
        let retry_at = (failures > 0).then(|| js_sys::Date::now() as i64 + delay.as_millis() as i64);
        ui.sync.update(|s| s.retry_at = retry_at);
        futures::select! {
            woken = wakes.next() => if woken.is_none() { return },
            () = sleep(delay).fuse() => {}
        }
        // Several wakes while waiting are one reason to sync.
        while let Ok(()) = wakes.try_recv() {}
    }
}

async fn send_photos(ui: Ui) -> Result<(), SyncProblem> {
    let Some(token) = device::with(|d| d.session.token.clone()) else {
        return Err(SyncProblem::Unauthorized);
    };
    crate::uploads::send_all(ui, &token).await.map_err(problem)
}

/// Exponential, capped, with ±50% jitter so that phones coming back
/// together (after a cell tower returns) do not retry in step.
fn backoff(failures: u32) -> Duration {
    let exp = FIRST_RETRY.saturating_mul(1u32 << failures.saturating_sub(1).min(16)).min(MAX_RETRY);
    exp.mul_f64(0.5 + js_sys::Math::random())
}

async fn session(ui: Ui) -> Result<(), SyncProblem> {
    let Some(token) = device::with(|d| d.session.token.clone()) else {
        return Err(SyncProblem::Unauthorized);
    };
    ui.sync.update(|s| s.running = true);
    let result = rounds(ui, &token).await;
    if result.is_err() {
        device::with(|d| d.replica.abort_session());
    }
    ui.sync.update(|s| {
        s.running = false;
        s.problem = result.clone().err();
        if result.is_ok() {
            s.last_ok = Some(js_sys::Date::now() as i64);
        }
    });
    if result.is_ok() {
        crate::held::tidy();
        let _ = store::save_last_sync(js_sys::Date::now() as i64);
        crate::org::refresh_if_stale(&token).await;
        crate::people::refresh_if_stale(&token).await;
    }
    ui.changed();
    result
}

async fn rounds(ui: Ui, token: &str) -> Result<(), SyncProblem> {
    // Whether every answer of this session reached storage: only then may
    // the session's cursor say the phone holds all the server sent.
    let mut all_saved = true;
    let mut round = 0;
    while round < MAX_ROUNDS {
        let first = round == 0;
        round += 1;
        let Some(request) = device::with(|d| {
            if first {
                d.replica.start_session();
            }
            d.replica.request(first)
        }) else {
            return Err(SyncProblem::Unauthorized);
        };
        if !first && request.docs.is_empty() {
            device::with(|d| {
                if !all_saved {
                    store::forget_quiet_cursor(&mut d.replica);
                } else if d.replica.finish_session() {
                    let _ = store::save_quiet_cursor(&d.replica);
                }
            });
            return Ok(());
        }
        match api::sync(token, &request).await {
            Ok(response) => all_saved &= receive(ui, response)?,
            // The account's scope changed since the cursor: the next session lists everything.
            Err(ApiError::Refused { body, .. }) if body.error == "stale_cursor" => {
                device::with(|d| {
                    d.replica.abort_session();
                    store::forget_quiet_cursor(&mut d.replica);
                });
                wake();
                return Ok(());
            }
            // The server could not take packed changes (one older than version 2, or a pack
            // it rebuilt otherwise): the same changes go again as Automerge wrote them.
            Err(ApiError::Refused { body, .. })
                if request.v == PACKED_VERSION
                    && matches!(body.error.as_str(), "bad_packed" | "unsupported_version") =>
            {
                device::with(|d| {
                    d.replica.abort_session();
                    d.replica.stop_packing();
                });
                // The session starts over, unpacked: this arm cannot come twice.
                round = 0;
                continue;
            }
            // A change the server cannot take (`bad_change`) sits out like a rule's refusal:
            // retried unchanged it would be refused forever.
            Err(ApiError::Refused { status, body })
                if body.doc.is_some() && (matches!(status, 403 | 422) || body.error == "bad_change") =>
            {
                let refused = body.doc.as_deref().and_then(|d| DocId::parse(d).ok());
                device::with(|d| {
                    d.replica.abort_session();
                    if let Some(id) = refused {
                        d.replica.reject(id, &body.error, body.rule.as_deref(), &body.message);
                    }
                    let _ = store::save_rejections(&mut d.replica);
                });
                // The refused document now sits out; the others go in the next session.
                wake();
                return Err(SyncProblem::Rejected);
            }
            Err(e) => return Err(problem(e)),
        }
    }
    // More to say than one session carries: finish in the next one.
    device::with(|d| d.replica.abort_session());
    wake();
    Ok(())
}

/// Applies and saves an answer; `false` when some of it could not be saved.
fn receive(ui: Ui, response: kheo_shared::protocol::SyncResponse) -> Result<bool, SyncProblem> {
    let mut touched: Vec<String> = response.docs.iter().map(|m| m.id.clone()).collect();
    touched.extend(response.missing.iter().map(|id| id.to_string()));
    let outcome = device::with(|d| {
        d.replica.receive(response).map_err(|e| SyncProblem::Other(e.to_string()))?;
        let mut storage = Ok(());
        for id in touched.iter().filter_map(|t| DocId::parse(t).ok()) {
            if let Err(e) = store::save_doc(&mut d.replica, &id) {
                storage = Err(e);
            }
        }
        // The server confirmed the releases the request named.
        let _ = store::save_releasing(&d.replica);
        Ok(storage)
    })
    .unwrap_or(Err(SyncProblem::Unauthorized))?;
    let saved = outcome.is_ok();
    if let Err(e) = outcome {
        // What arrived is still held by the server and comes again.
        ui.notice.set(Some(match e {
            store::StoreError::Full => Notice::StorageFull,
            other => Notice::Error(other.to_string()),
        }));
    }
    ui.changed();
    Ok(saved)
}

fn problem(e: ApiError) -> SyncProblem {
    match e {
        ApiError::Network(_) => SyncProblem::Unreachable,
        ApiError::Server(_) => SyncProblem::Server,
        ApiError::Unauthorized(_) => SyncProblem::Unauthorized,
        ApiError::Refused { body, .. } if matches!(body.error.as_str(), "token_revoked" | "account_disabled") => {
            SyncProblem::Unauthorized
        }
        ApiError::Refused { body, .. } => SyncProblem::Other(body.message),
    }
}

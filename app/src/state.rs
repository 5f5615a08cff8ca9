//! The reactive state screens render from: which screen is open, who is
//! logged in, the sync status, and a revision counter that moves whenever
//! the device's documents change (a save, or changes from the server).
//! All of it is `Copy` signals, handed around through Leptos context.

use kheo_shared::ids::{ModelId, RecordId};
use kheo_shared::protocol::AccountInfo;
use leptos::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    Models,
    Model(ModelId),
    /// A record form: a new record when `record` is `None`.
    Record {
        model: ModelId,
        record: Option<RecordId>,
    },
    /// Commune review of the records on the phone (commune staff and above).
    Review,
    /// A model's profile form: a new model when `model` is `None` (commune staff and above).
    ModelEdit {
        model: Option<ModelId>,
    },
    /// Consolidated reports from the server (commune staff and above).
    Reports,
}

/// Why the last sync failed, in the terms the sync bar explains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncProblem {
    /// No answer: no network or the server is down.
    Unreachable,
    /// The server answered with an error of its own (5xx).
    Server,
    /// The device's token is no longer accepted.
    Unauthorized,
    /// The server refused some documents; the rest synced.
    Rejected,
    Other(String),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncStatus {
    pub running: bool,
    /// Local changes the server does not hold yet.
    pub pending: usize,
    /// Documents the server refused, kept on the phone until fixed.
    pub rejected: usize,
    /// When the last sync completed (ms since the epoch).
    pub last_ok: Option<i64>,
    pub problem: Option<SyncProblem>,
    /// When the next automatic attempt is due after a failure.
    pub retry_at: Option<i64>,
    /// Photos whose bytes the server has not confirmed yet.
    pub photos_pending: usize,
    /// They wait for Wi-Fi, as the person asked.
    pub photos_held: bool,
    /// Photos the server refused for good: how many, and one error code.
    pub photos_refused: Option<(usize, String)>,
    /// Photo bytes sent since the page opened (what the link carried).
    pub photo_bytes_sent: u64,
}

/// A message over the current screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    Saved,
    StorageFull,
    Error(String),
}

#[derive(Clone, Copy)]
pub struct Ui {
    pub screen: RwSignal<Screen>,
    pub account: RwSignal<Option<AccountInfo>>,
    pub revision: RwSignal<u64>,
    pub sync: RwSignal<SyncStatus>,
    pub online: RwSignal<bool>,
    pub notice: RwSignal<Option<Notice>>,
    /// The record saved last, shown first and marked in its model's log
    /// until the person moves on.
    pub last_saved: RwSignal<Option<RecordId>>,
    /// No landing in a volunteer's only model (any more): the model list
    /// was shown with models since the app started, or the app opened on
    /// another screen (a reload there, then Back, shows the list).
    pub landed: RwSignal<bool>,
}

impl Ui {
    pub fn new() -> Self {
        Ui {
            screen: RwSignal::new(crate::route::initial()),
            account: RwSignal::new(None),
            revision: RwSignal::new(0),
            sync: RwSignal::new(SyncStatus::default()),
            online: RwSignal::new(navigator_online()),
            notice: RwSignal::new(None),
            last_saved: RwSignal::new(None),
            landed: RwSignal::new(crate::route::initial() != Screen::Models),
        }
    }

    /// The device's documents changed: re-read what is shown, recount what waits.
    pub fn changed(&self) {
        self.revision.update(|r| *r += 1);
        let (pending, rejected) =
            crate::device::with(|d| (d.replica.unsynced_changes(), d.replica.rejections().len())).unwrap_or((0, 0));
        self.sync.update(|s| {
            s.pending = pending;
            s.rejected = rejected;
        });
        crate::uploads::recount(*self);
    }
}

impl Default for Ui {
    fn default() -> Self {
        Self::new()
    }
}

pub fn use_ui() -> Ui {
    expect_context::<Ui>()
}

pub fn navigator_online() -> bool {
    web_sys::window().map(|w| w.navigator().on_line()).unwrap_or(true)
}

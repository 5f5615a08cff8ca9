//! "Anything new?" for a phone with the app open: a [`Cursor`] that names
//! the stored version of every document in the account's scope, and a
//! long-poll ([`ChangeFeed::wait`]) that answers as soon as the cursor
//! moves, or when its wait is over.
//!
//! A phone asks `GET /api/v1/changes?since=<cursor>&wait=<seconds>` in a
//! loop while it is online and in view, and syncs when the answer says
//! `changed`. Between two answers it costs one idle connection, and the
//! server one small indexed query every [`CHECK_EVERY`]; a change by
//! anyone in its scope reaches it within about that time, instead of at
//! its next periodic sync.
//!
//! The cursor is computed from the database at every check (the versions
//! the store keeps per document, see [`crate::store::Version`]), so a write
//! through any server process moves it for a poll waiting on any other:
//! nothing kept by one process decides what is new. A poll only ever says
//! "look now"; what the phone receives is still decided by the sync.
//!
//! A staff device that keeps only part of its scope (`Keep`, the same rule
//! its syncs send) names it in the poll, and hears only of what it would
//! be offered: a province browser that holds the ten models it opened is
//! not woken, nor made to read the province's versions every check, by
//! every phone's sync.
//!
//! A device keeps at most one waiting poll per process: a new one ends the
//! one before (answered unchanged), so a phone that reconnects is never
//! refused and a stolen token cannot pile up checks.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use kheo_shared::codes::Role;
use kheo_shared::ids::DocId;
use kheo_shared::protocol::Keep;
use sha2::{Digest, Sha256};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use crate::access::Scope;
use crate::auth::Principal;
use crate::org::OrgTree;
use crate::store::{Store, StoreError};

/// The longest a poll may wait: under the graceful shutdown's grace and
/// the idle timeouts of proxies in front of the server.
pub const MAX_WAIT: Duration = Duration::from_secs(25);

/// How often a waiting poll reads the versions again (±25%, so that polls
/// that started together spread out).
pub const CHECK_EVERY: Duration = Duration::from_secs(2);

/// A digest of the (id, version) of every stored document in a scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor([u8; 16]);

impl Cursor {
    /// The cursor of these versions, in the order the store gives (by id).
    pub(crate) fn of(versions: &[(kheo_shared::ids::DocId, crate::store::Version)]) -> Cursor {
        let mut hash = Sha256::new();
        for (id, v) in versions {
            hash.update(id.to_string().as_bytes());
            hash.update(v.n.to_le_bytes());
            hash.update(v.writer.to_le_bytes());
        }
        let mut out = [0; 16];
        out.copy_from_slice(&hash.finalize()[..16]);
        Cursor(out)
    }

    pub(crate) fn bytes(&self) -> [u8; 16] {
        self.0
    }

    pub(crate) fn from_bytes(bytes: [u8; 16]) -> Cursor {
        Cursor(bytes)
    }

    /// A cursor as a previous answer gave it: 22 characters of URL-safe base64.
    pub fn parse(s: &str) -> Result<Cursor, String> {
        let bad = || format!("since must be a cursor from a previous answer (22 characters), not {s:?}");
        if s.len() != 22 {
            return Err(bad());
        }
        let bytes = URL_SAFE_NO_PAD.decode(s).map_err(|_| bad())?;
        bytes.try_into().map(Cursor).map_err(|_| bad())
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&URL_SAFE_NO_PAD.encode(self.0))
    }
}

/// What a poll answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    pub cursor: Cursor,
    /// The cursor is not the one the poll named.
    pub changed: bool,
}

pub struct ChangeFeed {
    store: Arc<dyn Store>,
    /// device → (its latest poll's number, how to end that poll).
    waiting: Mutex<HashMap<String, (u64, Arc<Notify>)>>,
    next_poll: AtomicU64,
    /// Becomes true when the server shuts down: waiting polls answer at once.
    closing: watch::Receiver<bool>,
}

impl ChangeFeed {
    pub fn new(store: Arc<dyn Store>, closing: watch::Receiver<bool>) -> ChangeFeed {
        ChangeFeed { store, waiting: Mutex::new(HashMap::new()), next_poll: AtomicU64::new(0), closing }
    }

    /// The cursor of `who`'s scope now, of what `keep` offers in it.
    pub async fn cursor(&self, org: &OrgTree, who: &Principal, keep: Option<&Keep>) -> Result<Cursor, StoreError> {
        scope_cursor(self.store.as_ref(), org, who, keep).await
    }

    /// Answers when the scope's cursor is no longer `since`, or after
    /// `wait` (at most [`MAX_WAIT`]). Without `since`, answers at once.
    pub async fn wait(
        &self,
        org: &OrgTree,
        who: &Principal,
        keep: Option<&Keep>,
        since: Option<Cursor>,
        wait: Duration,
    ) -> Result<Answer, StoreError> {
        // Without a cursor the answer is at once: it takes no slot, so it
        // does not end the device's poll that is waiting.
        let Some(since) = since else {
            return Ok(Answer { cursor: self.cursor(org, who, keep).await?, changed: false });
        };
        let deadline = Instant::now() + wait.min(MAX_WAIT);
        let slot = self.enter(&who.device_id);
        let mut closing = self.closing.clone();
        loop {
            let cursor = self.cursor(org, who, keep).await?;
            if cursor != since {
                return Ok(Answer { cursor, changed: true });
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || *closing.borrow_and_update() {
                return Ok(Answer { cursor, changed: false });
            }
            let pause = CHECK_EVERY.mul_f64(0.75 + rand::random::<f64>() / 2.0).min(left);
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                // A newer poll of the same device, or the server closing.
                () = slot.ended.notified() => return Ok(Answer { cursor, changed: false }),
                _ = closing.changed() => return Ok(Answer { cursor, changed: false }),
            }
        }
    }

    /// Registers a poll of `device`, ending the one it had waiting.
    fn enter(&self, device: &str) -> Slot<'_> {
        let number = self.next_poll.fetch_add(1, Ordering::Relaxed);
        let ended = Arc::new(Notify::new());
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, previous)) = waiting.insert(device.to_owned(), (number, ended.clone())) {
            // notify_one keeps a permit, so the previous poll ends even if it
            // is between two checks rather than waiting.
            previous.notify_one();
        }
        Slot { feed: self, device: device.to_owned(), number, ended }
    }

    /// Polls waiting in this process (for tests and metrics).
    pub fn waiting(&self) -> usize {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// A poll's place in [`ChangeFeed::waiting`], given up when the poll ends.
struct Slot<'a> {
    feed: &'a ChangeFeed,
    device: String,
    number: u64,
    ended: Arc<Notify>,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut waiting = self.feed.waiting.lock().unwrap_or_else(|e| e.into_inner());
        if waiting.get(&self.device).is_some_and(|(n, _)| *n == self.number) {
            waiting.remove(&self.device);
        }
    }
}

/// The cursor of `who`'s scope as the store holds it now: of every
/// document in it, or of those `keep` offers (the synced ones, and the
/// rest its rule names, as a sync offers them).
pub async fn scope_cursor(
    store: &dyn Store,
    org: &OrgTree,
    who: &Principal,
    keep: Option<&Keep>,
) -> Result<Cursor, StoreError> {
    let units = scope_units(org, who);
    let Some(keep) = keep.filter(|k| k.only_synced || k.logs_from.is_some()) else {
        return Ok(Cursor::of(&store.versions_in_units(units.as_deref()).await?));
    };
    let synced = store.versions_synced_by(&who.device_id).await?;
    let versions = if keep.only_synced {
        // The device's own documents, still in its scope: one small read
        // for a province browser, whose scope is everything.
        match units {
            None => synced,
            Some(units) => {
                let scoped: HashSet<DocId> =
                    store.versions_in_units(Some(&units)).await?.into_iter().map(|(id, _)| id).collect();
                synced.into_iter().filter(|(id, _)| scoped.contains(id)).collect()
            }
        }
    } else {
        let synced: HashSet<DocId> = synced.into_iter().map(|(id, _)| id).collect();
        let scoped = store.versions_in_units(units.as_deref()).await?;
        scoped.into_iter().filter(|(id, _)| keep.offers(id, synced.contains(id))).collect()
    };
    Ok(Cursor::of(&versions))
}

/// The units whose models `who` may read, or `None` for all of them.
pub fn scope_units(org: &OrgTree, who: &Principal) -> Option<Vec<String>> {
    if who.is_at_least(Role::ProvinceStaff) {
        return None;
    }
    let scope = Scope { who, org };
    Some(org.units().filter(|u| scope.covers(&u.code)).map(|u| u.code.clone()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_and_nothing_else_does() {
        let cursor = Cursor::of(&[]);
        assert_eq!(Cursor::parse(&cursor.to_string()), Ok(cursor));
        for bad in ["", "abc", "!!!!!!!!!!!!!!!!!!!!!!", &"A".repeat(23), &"A".repeat(10_000)] {
            assert!(Cursor::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_cursor_moves_with_any_version() {
        use crate::store::Version;
        use kheo_shared::ids::{DocId, ModelId};
        let id = DocId::Model(ModelId::new_random());
        let at = |n, writer| Cursor::of(&[(id, Version { n, writer })]);
        assert_eq!(at(1, 7), at(1, 7));
        assert_ne!(at(1, 7), at(2, 7));
        assert_ne!(at(1, 7), at(1, 8));
        assert_ne!(at(1, 7), Cursor::of(&[]));
    }
}

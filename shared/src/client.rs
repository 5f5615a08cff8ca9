//! The device side of sync, with no IO: a [`Replica`] holds a device's
//! documents and its sync state with the server, builds requests and applies
//! responses. Whoever owns the network (the app, a test, a benchmark) moves
//! the bytes; the logic here is the same for all of them.
//!
//! ```
//! use kheo_shared::{client::Replica, ids::*, schema, scalars::Timestamp, testdata};
//!
//! let mut phone = Replica::new(automerge::ActorId::random());
//! let log = DocId::log(ModelId::new_random(), 2025).unwrap();
//! phone.edit(log, Timestamp(1), |doc| {
//!     let DocId::Log { model, year } = log else { unreachable!() };
//!     schema::init_log(doc, model, year)?;
//!     schema::put_record(doc, &testdata::meeting(RecordId::new_random(), "2025-05-01", 40))
//! }).unwrap();
//!
//! // One sync session: requests until the replica has nothing more to say.
//! phone.start_session();
//! let request = phone.request(true);
//! assert_eq!(request.docs.len(), 1);
//! // ... POST it, then `phone.receive(response)` and ask again until
//! // `request(false)` carries no documents.
//! ```
//!
//! A device that synced before sends its new changes in the first request
//! of a session (after the heads it shares with the server), so a
//! reconnect that pushes and receives takes one round trip. Those changes
//! go packed ([`crate::packed`], protocol version 2) when they are all the
//! device's own and rebuild exactly; a server that cannot take packs
//! answers `bad_packed` or `unsupported_version`, and after
//! [`Replica::stop_packing`] they go as Automerge wrote them.
//!
//! A session's transient state (what was sent, what is in flight) lives in
//! memory only. When a request fails or is cut off, [`Replica::abort_session`]
//! drops it and the next attempt starts again from the persisted state, so a
//! retry at any point neither loses nor duplicates anything.

use std::collections::BTreeMap;

use automerge::sync::{self, SyncDoc};
use automerge::{ActorId, AutoCommit, transaction::CommitOptions};

use crate::ids::DocId;
use crate::protocol::{
    DocMessage, Keep, MAX_CHANGES_PER_REQUEST, MAX_DOCS_PER_REQUEST, MAX_OPS_PER_REQUEST, MAX_RELEASE, PACKED_VERSION,
    PROTOCOL_VERSION, SyncRequest, SyncResponse,
};
use crate::scalars::Timestamp;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the server sent a malformed document id: {0}")]
    BadId(#[from] crate::ids::IdError),
    #[error("the server sent a malformed sync message for {doc}: {source}")]
    BadMessage { doc: DocId, source: automerge::sync::ReadMessageError },
    #[error("could not apply the server's changes to {doc}: {source}")]
    Apply { doc: DocId, source: Box<automerge::AutomergeError> },
    #[error("stored data for {doc} is unreadable: {reason}")]
    Corrupt { doc: DocId, reason: String },
}

/// One device's documents and its sync state with the server.
pub struct Replica {
    actor: ActorId,
    docs: BTreeMap<DocId, AutoCommit>,
    /// Sync state as persisted: only what survives a reconnect.
    saved: BTreeMap<DocId, sync::State>,
    /// Live sync state of the current session.
    session: BTreeMap<DocId, sync::State>,
    /// Documents whose latest changes the server refused.
    rejected: BTreeMap<DocId, Rejection>,
    /// The cursor this device is caught up to (see [`Replica::finish_session`]).
    quiet: Option<String>,
    /// The current session's first request has gone out.
    opened: bool,
    /// The current session's first answer has arrived.
    answered: bool,
    /// The cursor of the current session's first answer.
    session_cursor: Option<String>,
    /// The current session opened with a quiet request: its later rounds
    /// carry only the documents already in play.
    quiet_session: bool,
    /// Documents in play this session: sent, or named by the server.
    engaged: std::collections::BTreeSet<DocId>,
    /// What this device keeps of its scope; `None`, all of it.
    keep: Option<Keep>,
    /// Documents dropped from the device that the server has not yet been
    /// told about, and those told in the request now in flight.
    releasing: std::collections::BTreeSet<DocId>,
    release_sent: Vec<DocId>,
    /// Stored documents not loaded yet ([`Replica::import_later`]): every
    /// method that reads or changes one loads it first, so nothing can
    /// replace what storage holds with a fresh document.
    unloaded: BTreeMap<DocId, Vec<u8>>,
    /// Documents whose stored bytes failed to load late: the caller sets
    /// their storage entries aside before writing them again.
    damaged: std::collections::BTreeSet<DocId>,
    /// Whether requests may carry packed changes (version 2): off once a
    /// server refused them ([`Replica::stop_packing`]).
    packing: bool,
}

/// The server refused a document's changes. They stay on the device, shown
/// with the reason; the document is left out of sync until it changes
/// again (a fix), so a refused change is not retried forever.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The error code (`forbidden`, `schema_violation`, ...).
    pub error: String,
    /// The rule broken, for a `forbidden` refusal.
    pub rule: Option<String>,
    /// Words for people.
    pub message: String,
    /// The document's heads when it was refused.
    pub heads: Vec<automerge::ChangeHash>,
}

impl Replica {
    pub fn new(actor: ActorId) -> Self {
        Replica {
            actor,
            docs: BTreeMap::new(),
            saved: BTreeMap::new(),
            session: BTreeMap::new(),
            rejected: BTreeMap::new(),
            quiet: None,
            opened: false,
            answered: false,
            session_cursor: None,
            quiet_session: false,
            engaged: Default::default(),
            keep: None,
            releasing: Default::default(),
            release_sent: Vec::new(),
            unloaded: BTreeMap::new(),
            damaged: Default::default(),
            packing: true,
        }
    }

    /// Sends changes as Automerge writes them from now on: the server
    /// speaks version 1 only, or could not rebuild a pack (`bad_packed`).
    /// The session in flight is to be aborted and started again.
    pub fn stop_packing(&mut self) {
        self.packing = false;
    }

    /// Sets what this device keeps of its scope (its `release` list is
    /// the replica's own business and is ignored here).
    pub fn set_keep(&mut self, keep: Option<Keep>) {
        self.keep = keep.map(|k| Keep { release: Vec::new(), ..k });
    }

    /// Asks for a document this device does not hold: it is created empty,
    /// so that the next request asks the server for it.
    pub fn fetch(&mut self, id: DocId) {
        self.load(&id);
        self.releasing.remove(&id);
        let actor = &self.actor;
        self.docs.entry(id).or_insert_with(|| AutoCommit::new().with_actor(actor.clone()));
    }

    /// Drops a document the server holds all of, and tells the server in
    /// the next request, so that it is no longer offered. Refuses (returns
    /// false) while the document holds anything the server is not known to
    /// hold, or a refusal the device still shows: nothing is lost by it.
    pub fn release(&mut self, id: &DocId) -> bool {
        self.load(id);
        let synced = self.synced(id);
        let Some(doc) = self.docs.get_mut(id) else { return false };
        if !synced || self.rejected.contains_key(id) || has_news(doc, self.saved.get(id)) {
            return false;
        }
        self.docs.remove(id);
        self.saved.remove(id);
        self.session.remove(id);
        self.engaged.remove(id);
        self.releasing.insert(*id);
        true
    }

    /// Released documents the server has not yet confirmed forgetting.
    pub fn pending_releases(&self) -> impl Iterator<Item = &DocId> {
        self.releasing.iter()
    }

    /// Restores a release that storage recorded and the server may not
    /// have heard of (the page closed first). A document held again since
    /// (opened, or its storage entry outlived the record) is not released.
    pub fn resume_release(&mut self, id: DocId) {
        if !self.docs.contains_key(&id) && !self.unloaded.contains_key(&id) {
            self.releasing.insert(id);
        }
    }

    /// Whether the current session sent `id` or heard about it: a document
    /// asked for that is still empty after such a session does not exist.
    pub fn in_session(&self, id: &DocId) -> bool {
        self.engaged.contains(id)
    }

    /// What this device keeps of its scope, as set by [`Replica::set_keep`].
    pub fn keep(&self) -> Option<&Keep> {
        self.keep.as_ref()
    }

    /// Whether the server is known to hold some of the document (it has
    /// been through a sync that shared heads with the server).
    pub fn synced(&self, id: &DocId) -> bool {
        self.saved.get(id).is_some_and(|s| !s.shared_heads.is_empty())
    }

    /// Records that the server refused `id` as it is now.
    pub fn reject(&mut self, id: DocId, error: &str, rule: Option<&str>, message: &str) {
        let heads = self.heads(&id);
        let rejection =
            Rejection { error: error.to_owned(), rule: rule.map(str::to_owned), message: message.to_owned(), heads };
        self.rejected.insert(id, rejection);
    }

    /// Documents refused by the server and not changed since.
    pub fn rejections(&mut self) -> BTreeMap<DocId, Rejection> {
        let refused: Vec<DocId> = self.rejected.keys().copied().collect();
        for id in &refused {
            self.load(id);
        }
        let current: Vec<(DocId, Vec<automerge::ChangeHash>)> = self
            .rejected
            .keys()
            .map(|id| (*id, self.docs.get_mut(id).map(|d| d.get_heads()).unwrap_or_default()))
            .collect();
        for (id, heads) in current {
            if self.rejected.get(&id).is_some_and(|r| r.heads != heads) {
                self.rejected.remove(&id);
            }
        }
        self.rejected.clone()
    }

    pub fn actor(&self) -> &ActorId {
        &self.actor
    }

    pub fn doc(&self, id: &DocId) -> Option<&AutoCommit> {
        self.docs.get(id)
    }

    pub fn doc_ids(&self) -> impl Iterator<Item = &DocId> {
        self.docs.keys()
    }

    /// Applies a local edit to a document (created if absent) as one change
    /// stamped with `now` (Automerge change times are in seconds).
    pub fn edit<R, E>(
        &mut self,
        id: DocId,
        now: Timestamp,
        f: impl FnOnce(&mut AutoCommit) -> Result<R, E>,
    ) -> Result<R, E> {
        self.load(&id);
        let actor = &self.actor;
        let doc = self.docs.entry(id).or_insert_with(|| AutoCommit::new().with_actor(actor.clone()));
        match f(doc) {
            Ok(r) => {
                doc.commit_with(CommitOptions::default().with_time(now.millis() / 1000));
                Ok(r)
            }
            Err(e) => {
                doc.rollback();
                Err(e)
            }
        }
    }

    /// Starts a sync session from the persisted state.
    pub fn start_session(&mut self) {
        self.session = self.saved.clone();
        self.opened = false;
        self.answered = false;
        self.session_cursor = None;
        self.quiet_session = false;
        self.engaged.clear();
        self.release_sent.clear();
    }

    /// Drops whatever a failed or cut-off request left in flight. The
    /// cursor the device is caught up to stays: it only ever gained since.
    pub fn abort_session(&mut self) {
        self.start_session();
    }

    /// Ends a session that has nothing left to say: everything the server
    /// held when it made the session's first answer is now here, so that
    /// answer's cursor becomes the device's `quiet` cursor. Returns whether
    /// it moved (the caller persists it).
    pub fn finish_session(&mut self) -> bool {
        let cursor = self.session_cursor.take();
        if cursor.is_none() || cursor == self.quiet {
            return false;
        }
        self.quiet = cursor;
        true
    }

    /// The cursor the device is caught up to, as persisted.
    pub fn quiet_cursor(&self) -> Option<&str> {
        self.quiet.as_deref()
    }

    /// Restores the persisted cursor (or forgets it with `None`, which makes
    /// the next session list every document again).
    pub fn set_quiet_cursor(&mut self, cursor: Option<String>) {
        self.quiet = cursor.filter(|c| c.len() <= crate::protocol::MAX_CURSOR_LEN);
    }

    /// The next request of this session. `full` lists every document, so
    /// the server can name the ones this device lacks; a request with no
    /// documents and `full == false` need not be sent: the session is done.
    ///
    /// A request carries messages for at most [`MAX_DOCS_PER_REQUEST`]
    /// documents, and at most [`MAX_CHANGES_PER_REQUEST`] changes and
    /// [`MAX_OPS_PER_REQUEST`] operations over all of them (the server
    /// refuses more); the others wait for the next round of the session. A
    /// `full` request names the rest in `held`.
    ///
    /// A `full` first request of a device that knows its `quiet` cursor is
    /// a quiet request instead: it carries only the documents with changes
    /// of this device's own (or never synced) and leaves the rest to the
    /// server, which answers for every document it holds news in.
    pub fn request(&mut self, full: bool) -> SyncRequest {
        self.load_all();
        let rejected = self.rejections();
        let quiet = if full && !self.opened { self.quiet.clone() } else { None };
        let full = full && quiet.is_none();
        self.opened = true;
        self.quiet_session |= quiet.is_some();
        let mut docs = Vec::new();
        let mut held = Vec::new();
        let mut budget = Budget { changes: MAX_CHANGES_PER_REQUEST, ops: MAX_OPS_PER_REQUEST };
        for (id, doc) in &mut self.docs {
            if rejected.contains_key(id) || docs.len() == MAX_DOCS_PER_REQUEST {
                if full {
                    held.push(id.to_string());
                }
                continue;
            }
            // A quiet session leaves the quiet documents to the server.
            if self.quiet_session && !self.engaged.contains(id) && !has_news(doc, self.saved.get(id)) {
                continue;
            }
            let state = self.session.entry(*id).or_default();
            let generated = doc.sync().generate_sync_message(state);
            match generated {
                Some(msg) => {
                    let msg = budget.fit(push_first(doc, state, msg), state);
                    docs.push(if self.packing { packed(*id, msg) } else { DocMessage::new(*id, msg.encode()) });
                    self.engaged.insert(*id);
                }
                None if full => held.push(id.to_string()),
                None => {}
            }
        }
        let keep = self.keep.clone().map(|mut keep| {
            self.release_sent = self.releasing.iter().take(MAX_RELEASE).copied().collect();
            keep.release = self.release_sent.iter().map(DocId::to_string).collect();
            keep
        });
        let v = if docs.iter().any(|d| d.packed.is_some()) { PACKED_VERSION } else { PROTOCOL_VERSION };
        SyncRequest { v, docs, full, held, quiet, keep }
    }

    /// Applies the server's answer. Documents the server names as missing
    /// are created empty so that the next request asks for them.
    pub fn receive(&mut self, response: SyncResponse) -> Result<(), ClientError> {
        for id in std::mem::take(&mut self.release_sent) {
            self.releasing.remove(&id);
        }
        if !self.answered {
            // Only the first answer's cursor covers what the session then
            // delivers; a later one may name writes no round carried.
            self.answered = true;
            self.session_cursor = response.cursor.clone().filter(|c| c.len() <= crate::protocol::MAX_CURSOR_LEN);
        }
        self.load_all();
        for m in response.docs {
            let id = m.doc_id()?;
            let msg = sync::Message::decode(&m.msg).map_err(|source| ClientError::BadMessage { doc: id, source })?;
            let actor = &self.actor;
            let doc = self.docs.entry(id).or_insert_with(|| AutoCommit::new().with_actor(actor.clone()));
            let state = self.session.entry(id).or_default();
            self.engaged.insert(id);
            doc.sync()
                .receive_sync_message(state, msg)
                .map_err(|source| ClientError::Apply { doc: id, source: Box::new(source) })?;
            self.saved.insert(id, persisted(state));
        }
        for id in response.missing {
            self.engaged.insert(id);
            let actor = &self.actor;
            self.docs.entry(id).or_insert_with(|| AutoCommit::new().with_actor(actor.clone()));
        }
        Ok(())
    }

    /// Local changes the server is not yet known to hold, over the loaded
    /// documents (the others count once [`Replica::load_some`] reached them).
    pub fn unsynced_changes(&mut self) -> usize {
        self.docs
            .iter_mut()
            .map(|(id, doc)| {
                let shared = self.saved.get(id).map(|s| s.shared_heads.clone()).unwrap_or_default();
                let actor = self.actor.clone();
                doc.get_changes(&shared).iter().filter(|c| *c.actor_id() == actor).count()
            })
            .sum()
    }

    /// The heads of a document this device and the server are known to
    /// share (empty before its first sync): what is past them is only here.
    pub fn shared_heads(&self, id: &DocId) -> Vec<automerge::ChangeHash> {
        self.saved.get(id).map(|s| s.shared_heads.clone()).unwrap_or_default()
    }

    /// Storage form of one document and of its sync state.
    pub fn export(&mut self, id: &DocId) -> Option<(Vec<u8>, Vec<u8>)> {
        self.load(id);
        let doc = self.docs.get_mut(id)?;
        let state = self.saved.get(id).map(sync::State::encode).unwrap_or_else(|| sync::State::new().encode());
        Some((doc.save(), state))
    }

    /// Restores a document and its sync state from storage.
    pub fn import(&mut self, id: DocId, doc: &[u8], state: &[u8]) -> Result<(), ClientError> {
        let corrupt = |reason: String| ClientError::Corrupt { doc: id, reason };
        let doc = AutoCommit::load(doc).map_err(|e| corrupt(e.to_string()))?.with_actor(self.actor.clone());
        let state = sync::State::decode(state).map_err(|e| corrupt(e.to_string()))?;
        self.unloaded.remove(&id);
        self.damaged.remove(&id);
        self.docs.insert(id, doc);
        self.saved.insert(id, state);
        Ok(())
    }

    /// Restores a document's sync state from storage now and the document
    /// when it is first needed (or [`Replica::load_some`] gets to it): a
    /// phone opens on its model list without loading every log first.
    /// Until then [`Replica::doc`] does not show it.
    pub fn import_later(&mut self, id: DocId, doc: Vec<u8>, state: &[u8]) -> Result<(), ClientError> {
        let state = sync::State::decode(state).map_err(|e| ClientError::Corrupt { doc: id, reason: e.to_string() })?;
        self.docs.remove(&id);
        self.saved.insert(id, state);
        self.unloaded.insert(id, doc);
        Ok(())
    }

    /// Loads up to `n` documents left by [`Replica::import_later`]; how
    /// many are still left.
    pub fn load_some(&mut self, n: usize) -> usize {
        let ids: Vec<DocId> = self.unloaded.keys().take(n).copied().collect();
        ids.iter().for_each(|id| self.load(id));
        self.unloaded.len()
    }

    /// Loads now the documents left for later that `wanted` picks (a
    /// model's logs, as its page opens).
    pub fn load_now(&mut self, wanted: impl Fn(&DocId) -> bool) {
        let ids: Vec<DocId> = self.unloaded.keys().filter(|id| wanted(id)).copied().collect();
        ids.iter().for_each(|id| self.load(id));
    }

    /// Whether every stored document is loaded: only then do the documents
    /// shown name everything the device holds.
    pub fn all_loaded(&self) -> bool {
        self.unloaded.is_empty()
    }

    /// Documents whose stored bytes failed to load late, since the last call.
    pub fn take_damaged(&mut self) -> Vec<DocId> {
        std::mem::take(&mut self.damaged).into_iter().collect()
    }

    fn load_all(&mut self) {
        self.load_some(usize::MAX);
    }

    fn load(&mut self, id: &DocId) {
        let Some(bytes) = self.unloaded.remove(id) else { return };
        match AutoCommit::load(&bytes) {
            Ok(doc) => {
                self.docs.insert(*id, doc.with_actor(self.actor.clone()));
            }
            Err(_) => {
                // As if never stored: the server sends it again, and the
                // caller sets the stored bytes aside before saving over them.
                self.saved.remove(id);
                self.damaged.insert(*id);
            }
        }
    }

    /// Drops a document and its sync state from memory: the undo of a new
    /// document whose first save failed. Storage is the caller's business.
    pub fn forget(&mut self, id: &DocId) {
        self.unloaded.remove(id);
        self.docs.remove(id);
        self.saved.remove(id);
        self.session.remove(id);
        self.rejected.remove(id);
    }

    /// Heads of a document, empty when absent.
    pub fn heads(&mut self, id: &DocId) -> Vec<automerge::ChangeHash> {
        self.load(id);
        self.docs.get_mut(id).map(|d| d.get_heads()).unwrap_or_default()
    }
}

/// What is left of one request's allowance of changes and operations.
struct Budget {
    changes: usize,
    ops: u64,
}

impl Budget {
    /// Keeps the changes of `msg` that fit, in the order Automerge listed
    /// them (dependencies first), and forgets having sent the rest, so that
    /// the next message of the session carries them.
    fn fit(&mut self, mut msg: sync::Message, state: &mut sync::State) -> sync::Message {
        let mut kept = Vec::new();
        let mut full = false;
        for raw in msg.changes.iter() {
            let change = automerge::Change::from_bytes(raw.to_vec()).ok();
            let ops = change.as_ref().map_or(1, |c| c.len() as u64);
            if !full && self.changes > 0 && ops <= self.ops {
                self.changes -= 1;
                self.ops -= ops;
                kept.push(raw.to_vec());
            } else {
                // Past the budget nothing more goes, so what goes stays in order.
                full = true;
                if let Some(c) = change {
                    state.sent_hashes.remove(&c.hash());
                }
            }
        }
        if full {
            msg.changes = kept.into();
        }
        msg
    }
}

/// The first message of a session carries the changes the server is not
/// known to hold, so that a reconnect takes one round trip, not two.
///
/// Automerge's own first message after a reconnect sends only heads and a
/// Bloom filter (it no longer knows the peer's heads), and the changes
/// follow in the second round. But the persisted shared heads already say
/// what the server had at the end of the last session: everything after
/// them goes now. The server merges it as any message with changes; if it
/// lacks a dependency after all (its store was restored, say), it asks in
/// its answer and the second round supplies it, as before. A device with
/// no shared heads yet (its first sync) negotiates first, so nothing the
/// server already holds is sent. Servers need nothing new: to them this is
/// a version-1 message that carries changes early.
fn push_first(doc: &mut AutoCommit, state: &mut sync::State, mut msg: sync::Message) -> sync::Message {
    let first_of_session = state.their_heads.is_none();
    if !first_of_session || state.shared_heads.is_empty() || !msg.changes.is_empty() {
        return msg;
    }
    let changes = doc.get_changes(&state.shared_heads);
    if changes.is_empty() {
        return msg;
    }
    for c in &changes {
        state.sent_hashes.insert(c.hash());
    }
    msg.changes = changes.iter().map(|c| c.raw_bytes().to_vec()).collect::<Vec<_>>().into();
    msg
}

/// A document's message with its changes packed when they are all this
/// device's and pack exactly; as it is otherwise.
fn packed(id: DocId, mut msg: sync::Message) -> DocMessage {
    let changes: Option<Vec<automerge::Change>> =
        msg.changes.iter().map(|raw| automerge::Change::from_bytes(raw.to_vec()).ok()).collect();
    let pack = changes.filter(|c| !c.is_empty()).and_then(|c| crate::packed::pack(&c));
    match pack {
        Some(pack) => {
            msg.changes = sync::ChunkList::empty();
            DocMessage { packed: Some(serde_bytes::ByteBuf::from(pack)), ..DocMessage::new(id, msg.encode()) }
        }
        None => DocMessage::new(id, msg.encode()),
    }
}

/// Whether a document has something of this device's own that the server
/// is not known to hold: it was never synced, or it moved past the heads
/// the two last shared.
fn has_news(doc: &mut AutoCommit, saved: Option<&sync::State>) -> bool {
    let Some(saved) = saved else { return true };
    if saved.shared_heads.is_empty() {
        return true;
    }
    let mut heads = doc.get_heads();
    heads.sort();
    let mut shared = saved.shared_heads.clone();
    shared.sort();
    heads != shared
}

/// The part of a sync state worth keeping across sessions.
fn persisted(state: &sync::State) -> sync::State {
    sync::State::decode(&state.encode()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{ModelId, RecordId};
    use crate::{schema, testdata};

    // Sessions against the server's real pipeline (convergence, the
    // reconnect's round trips, a backlog over several requests, an aborted
    // session) are in `kheo-server`'s `sync::tests`; these need no server.

    #[test]
    fn a_request_carries_at_most_the_limit_and_names_the_rest() {
        let mut phone = Replica::new(ActorId::random());
        let extra = 5;
        for _ in 0..MAX_DOCS_PER_REQUEST + extra {
            let log = DocId::log(ModelId::new_random(), 2025).unwrap();
            let DocId::Log { model, year } = log else { unreachable!() };
            phone.edit(log, Timestamp(0), |d| schema::init_log(d, model, year)).unwrap();
        }
        phone.start_session();
        let first = phone.request(true);
        assert_eq!(first.docs.len(), MAX_DOCS_PER_REQUEST);
        assert_eq!(first.held.len(), extra);
        // The next round carries the rest, even before the first is answered.
        let second = phone.request(false);
        assert_eq!(second.docs.len(), extra);
        assert!(second.held.is_empty());
    }

    #[test]
    fn a_rejected_document_waits_for_a_fix() {
        let log = DocId::log(ModelId::new_random(), 2025).unwrap();
        let DocId::Log { model, year } = log else { unreachable!() };
        let mut phone = Replica::new(ActorId::random());
        phone.edit(log, Timestamp(0), |d| schema::init_log(d, model, year)).unwrap();
        phone.start_session();
        assert_eq!(phone.request(true).docs.len(), 1);
        phone.abort_session();
        phone.reject(log, "forbidden", Some("out_of_scope"), "not yours");
        assert_eq!(phone.rejections()[&log].rule.as_deref(), Some("out_of_scope"));
        assert!(phone.request(true).docs.is_empty(), "left out while unchanged");
        let r = testdata::meeting(RecordId::new_random(), "2025-01-01", 3);
        phone.edit(log, Timestamp(1), |d| schema::put_record(d, &r)).unwrap();
        assert!(phone.rejections().is_empty(), "a new edit clears the rejection");
        assert_eq!(phone.request(false).docs.len(), 1);
    }

    #[test]
    fn a_document_is_released_only_once_the_server_holds_all_of_it() {
        let log = DocId::log(ModelId::new_random(), 2025).unwrap();
        let DocId::Log { model, year } = log else { unreachable!() };
        let mut phone = Replica::new(ActorId::random());
        phone.set_keep(Some(Keep { only_synced: true, ..Keep::default() }));
        phone.edit(log, Timestamp(0), |d| schema::init_log(d, model, year)).unwrap();
        assert!(!phone.release(&log), "never synced: the server may lack it");
        // As if a session had ended with the server holding these heads.
        let heads = phone.heads(&log);
        let mut state = sync::State::new();
        state.shared_heads = heads;
        phone.saved.insert(log, state);
        let r = testdata::meeting(RecordId::new_random(), "2025-01-01", 3);
        phone.edit(log, Timestamp(1), |d| schema::put_record(d, &r)).unwrap();
        assert!(!phone.release(&log), "a record the server lacks stays");
        let heads = phone.heads(&log);
        phone.saved.get_mut(&log).unwrap().shared_heads = heads;
        assert!(phone.release(&log));
        assert!(phone.doc(&log).is_none());

        phone.start_session();
        let request = phone.request(true);
        assert_eq!(request.keep.as_ref().unwrap().release, [log.to_string()]);
        assert!(request.keep.unwrap().only_synced);
        phone.abort_session();
        assert_eq!(phone.request(true).keep.unwrap().release.len(), 1, "a cut-off request is told again");
        phone.receive(SyncResponse { v: 1, docs: vec![], missing: vec![], cursor: None }).unwrap();
        assert_eq!(phone.pending_releases().count(), 0, "answered: the server forgot it");
        assert!(phone.request(false).keep.unwrap().release.is_empty());
        phone.fetch(log);
        assert!(phone.doc(&log).is_some(), "asked for again, it comes back empty until the next sync");
    }

    #[test]
    fn a_release_storage_recorded_is_told_again_unless_the_document_is_back() {
        let (gone, back) = (DocId::log(ModelId::new_random(), 2024).unwrap(), DocId::Model(ModelId::new_random()));
        let mut phone = Replica::new(ActorId::random());
        phone.set_keep(Some(Keep { only_synced: true, ..Keep::default() }));
        phone.fetch(back);
        phone.resume_release(gone);
        phone.resume_release(back);
        assert_eq!(phone.pending_releases().collect::<Vec<_>>(), [&gone]);
        phone.start_session();
        assert_eq!(phone.request(true).keep.unwrap().release, [gone.to_string()]);
    }

    #[test]
    fn a_document_imported_later_is_loaded_before_anything_reads_or_changes_it() {
        let log = DocId::log(ModelId::new_random(), 2025).unwrap();
        let DocId::Log { model, year } = log else { unreachable!() };
        let actor = ActorId::random();
        let mut phone = Replica::new(actor.clone());
        phone.edit(log, Timestamp(0), |d| schema::init_log(d, model, year)).unwrap();
        let first = testdata::meeting(RecordId::new_random(), "2025-01-01", 3);
        phone.edit(log, Timestamp(1), |d| schema::put_record(d, &first)).unwrap();
        let (doc, state) = phone.export(&log).unwrap();

        let mut reopened = Replica::new(actor.clone());
        reopened.import_later(log, doc.clone(), &state).unwrap();
        assert!(reopened.doc(&log).is_none(), "not shown before it is loaded");
        let second = testdata::meeting(RecordId::new_random(), "2025-01-02", 4);
        reopened.edit(log, Timestamp(2), |d| schema::put_record(d, &second)).unwrap();
        let records = schema::read_log(reopened.doc(&log).unwrap(), &log).unwrap().records;
        assert_eq!(records.len(), 2, "an edit lands on what storage held, never on a fresh document");

        let mut later = Replica::new(actor.clone());
        later.import_later(log, doc.clone(), &state).unwrap();
        later.start_session();
        assert_eq!(later.request(true).docs.len(), 1, "a request loads every document first");
        let mut picked = Replica::new(actor.clone());
        picked.import_later(log, doc.clone(), &state).unwrap();
        picked.load_now(|id| id.model() == ModelId::new_random());
        assert!(picked.doc(&log).is_none(), "another model's log waits");
        picked.load_now(|id| id.model() == model);
        assert!(picked.doc(&log).is_some(), "its model's page loads it at once");
        let mut stepwise = Replica::new(actor.clone());
        stepwise.import_later(log, doc, &state).unwrap();
        assert!(!stepwise.all_loaded());
        assert_eq!(stepwise.load_some(1), 0);
        assert!(stepwise.doc(&log).is_some() && stepwise.all_loaded());

        let mut damaged = Replica::new(actor);
        damaged.import_later(log, b"garbage".to_vec(), &state).unwrap();
        assert_eq!(damaged.load_some(8), 0);
        assert!(damaged.doc(&log).is_none() && !damaged.synced(&log), "as if never stored");
        assert_eq!(damaged.take_damaged(), [log], "named, for the caller to set aside");
        assert!(damaged.take_damaged().is_empty());
    }

    #[test]
    fn export_and_import_keep_doc_and_state() {
        let log = DocId::log(ModelId::new_random(), 2025).unwrap();
        let DocId::Log { model, year } = log else { unreachable!() };
        let actor = ActorId::random();
        let mut phone = Replica::new(actor.clone());
        phone.edit(log, Timestamp(0), |d| schema::init_log(d, model, year)).unwrap();
        let (doc, state) = phone.export(&log).unwrap();
        let mut reopened = Replica::new(actor);
        reopened.import(log, &doc, &state).unwrap();
        assert_eq!(reopened.unsynced_changes(), phone.unsynced_changes());
        assert_eq!(reopened.heads(&log), phone.heads(&log));
        assert!(reopened.import(log, b"garbage", &state).is_err());
    }
}

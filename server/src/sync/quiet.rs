//! A quiet sync: the server's half of "nothing new here since this cursor".
//!
//! A phone that ended its last session with nothing left to say holds
//! everything the server held when that session's first answer was made;
//! the answer's cursor ([`crate::changes::Cursor`], a digest of the stored
//! version of every document in the scope) names that moment. Its next
//! session opens with a *quiet* request: that cursor, and messages only for
//! the documents it changed itself. The server then:
//!
//! 1. computes the scope's cursor now; equal to the phone's, nothing in the
//!    scope was written since, and the phone lacks nothing (one request of
//!    a few dozen bytes each way, however many documents it holds);
//! 2. otherwise reads, in one query, every scope document's stored heads
//!    next to this device's sync state with it ([`news`]): a document whose
//!    heads are not the heads the two last shared has news for the phone,
//!    and so has one the device never synced;
//! 3. answers for each document with news with a message that carries the
//!    changes after the shared heads ([`tell`]), as a phone's first message
//!    does (`shared/src/client.rs`, `push_first`), so the news arrive in
//!    the first answer.
//!
//! Nothing here decides what a phone may read beyond its scope's units, and
//! no process's memory decides what is new: heads and sync states are read
//! from the store, and heads unknown (a document written before they were
//! kept) count as news. A cursor that is stale or forged only costs step 2.

use std::collections::BTreeSet;

use automerge::ChangeHash;
use automerge::sync::{Message, State, SyncDoc};
use kheo_shared::ids::DocId;
use kheo_shared::protocol::{DocMessage, MAX_DOCS_PER_REQUEST};

use crate::auth::Principal;
use crate::changes::Cursor;
use crate::docs::HotDoc;
use crate::error::AppError;
use crate::store::{ScopeDoc, encode_heads};

use super::merge::guarded;

/// The cursor a sync answer gives: the scope's [`Cursor`] and a tag of
/// the scope it was made for (the account's role and unit). A phone whose
/// account moved holds documents of its old scope; a quiet request would
/// never name them, so a cursor of another scope is refused
/// ([`AppError::StaleCursor`]) and the phone syncs in full, where its old
/// documents meet the scope check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietCursor {
    pub scope: [u8; 8],
    pub versions: Cursor,
}

impl QuietCursor {
    pub fn new(who: &Principal, versions: Cursor) -> Self {
        QuietCursor { scope: scope_tag(who), versions }
    }

    /// Whether it was made for `who`'s scope as it is now.
    pub fn is_for(&self, who: &Principal) -> bool {
        self.scope == scope_tag(who)
    }

    /// As an answer gave it: 32 characters of URL-safe base64.
    pub fn parse(s: &str) -> Result<Self, String> {
        use base64::Engine;
        let bad = || {
            format!("a cursor from a previous answer (32 characters), not {:?}", s.chars().take(40).collect::<String>())
        };
        if s.len() != 32 {
            return Err(bad());
        }
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).map_err(|_| bad())?;
        let bytes: [u8; 24] = bytes.try_into().map_err(|_| bad())?;
        let (scope, versions) = bytes.split_at(8);
        let scope: [u8; 8] = scope.try_into().map_err(|_| bad())?;
        let versions: [u8; 16] = versions.try_into().map_err(|_| bad())?;
        Ok(QuietCursor { scope, versions: Cursor::from_bytes(versions) })
    }
}

impl std::fmt::Display for QuietCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use base64::Engine;
        let mut bytes = [0u8; 24];
        bytes[..8].copy_from_slice(&self.scope);
        bytes[8..].copy_from_slice(&self.versions.bytes());
        f.write_str(&base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
    }
}

fn scope_tag(who: &Principal) -> [u8; 8] {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new().chain_update(who.role.to_string()).chain_update([0]).chain_update(&who.unit).finalize();
    let mut tag = [0; 8];
    tag.copy_from_slice(&digest[..8]);
    tag
}

/// The most bytes of changes one answer pushes to a quiet phone; past them
/// its messages carry heads only and the changes follow in later rounds.
pub const MAX_PUSH_BYTES: usize = 4 * 1024 * 1024;

/// What a quiet request lacks, from the scope's documents as stored.
#[derive(Debug, Default, PartialEq)]
pub struct News {
    /// Documents with something the phone lacks, with its sync state.
    pub tell: Vec<(DocId, State)>,
    /// Documents of the scope the device never synced, past what one
    /// answer carries (those within it are in `tell`, with a fresh state).
    pub missing: Vec<DocId>,
    /// More documents have news than one answer carries: the answer gives
    /// no cursor, so the phone's next session lists everything again.
    pub truncated: bool,
}

/// Sorts the scope's documents the request did not name into news and
/// missing ones.
pub fn news(scope: Vec<ScopeDoc>, named: &BTreeSet<DocId>) -> News {
    let mut out = News::default();
    for doc in scope.into_iter().filter(|d| !named.contains(&d.id)) {
        let room = out.tell.len() + named.len() < MAX_DOCS_PER_REQUEST;
        let Some(bytes) = doc.state else {
            // Sent whole while there is room, so it arrives in this answer;
            // named as missing past it, for the phone to ask.
            match room {
                true => out.tell.push((doc.id, State::new())),
                false => out.missing.push(doc.id),
            }
            continue;
        };
        // A state we cannot read costs a negotiation, never a miss.
        let state = State::decode(&bytes).unwrap_or_default();
        let shared = encode_heads(&state.shared_heads);
        if doc.heads.as_deref() == Some(shared.as_slice()) && !state.shared_heads.is_empty() {
            continue;
        }
        if !room {
            out.truncated = true;
            continue;
        }
        out.tell.push((doc.id, state));
    }
    out
}

/// The message that tells a quiet phone what `hot` holds past the heads
/// they last shared (all of it for a document new to the phone), with the
/// changes themselves while `budget` lasts.
pub fn tell(id: DocId, hot: &mut HotDoc, mut state: State, budget: &mut usize) -> Result<DocMessage, AppError> {
    guarded(id, "answer", || {
        let doc = &mut hot.doc;
        // A fresh state never answers `None`: it has heads to announce.
        let Some(mut msg) = doc.sync().generate_sync_message(&mut state) else {
            return Err(AppError::Internal(format!("{id}: no first message")));
        };
        if msg.changes.is_empty() {
            let shared: Vec<ChangeHash> = state.shared_heads.clone();
            let changes = doc.get_changes(&shared);
            let bytes: usize = changes.iter().map(|c| c.raw_bytes().len()).sum();
            if bytes <= *budget {
                *budget -= bytes;
                msg.changes = changes.iter().map(|c| c.raw_bytes().to_vec()).collect::<Vec<_>>().into();
            }
        }
        Ok(DocMessage::new(id, encode(msg)))
    })
}

/// Stores the heads of every document stored with them unknown (written
/// before heads were kept): until then each counts as news to every quiet
/// phone, and last year's logs are never written again. Each is kept only
/// while its document is still at the version it was read at, as the
/// read-model rebuild does; one another process wrote meanwhile has its
/// heads from that write. Returns how many were stored.
pub async fn backfill_heads(store: &dyn crate::store::Store) -> Result<usize, crate::store::StoreError> {
    use crate::store::{Committed, WriteBatch};
    let mut filled = 0;
    for part in store.docs_without_heads().await?.chunks(32) {
        let mut batches = Vec::with_capacity(part.len());
        for id in part {
            let Some(stored) = store.load_doc(id).await? else { continue };
            let heads = match stored.to_automerge() {
                Ok(doc) => encode_heads(&doc.get_heads()),
                Err(e) => {
                    tracing::error!(%id, error = %e, "a stored document does not load; its heads stay unknown");
                    continue;
                }
            };
            let mut batch = WriteBatch { unchanged: vec![(*id, stored.version)], ..WriteBatch::default() };
            batch.heads.insert(*id, heads);
            batches.push(batch);
        }
        filled += store.commit(&batches).await?.into_iter().filter(|c| *c == Committed::Done).count();
    }
    Ok(filled)
}

/// As every reply: no flags (see `finish::encode_reply`).
fn encode(mut msg: Message) -> Vec<u8> {
    msg.flags = None;
    msg.encode()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Version;
    use automerge::AutoCommit;
    use kheo_shared::ids::ModelId;

    fn doc_with_heads(n: usize) -> (AutoCommit, Vec<ChangeHash>) {
        let mut doc = AutoCommit::new();
        let mut heads = Vec::new();
        for i in 0..n {
            use automerge::transaction::Transactable;
            doc.put(automerge::ROOT, "n", i as i64).unwrap();
            doc.commit();
            heads = doc.get_heads();
        }
        (doc, heads)
    }

    fn state_sharing(heads: &[ChangeHash]) -> Vec<u8> {
        let mut s = State::new();
        s.shared_heads = heads.to_vec();
        s.encode()
    }

    #[test]
    fn only_documents_past_the_shared_heads_or_never_synced_are_news() {
        let (_, heads) = doc_with_heads(2);
        let id = |_: u8| DocId::Model(ModelId::new_random());
        let (same, moved, unknown, never, named) = (id(0), id(1), id(2), id(3), id(4));
        let row = |id, heads: Option<Vec<u8>>, state: Option<Vec<u8>>| ScopeDoc {
            id,
            version: Version { n: 1, writer: 1 },
            heads,
            state,
        };
        let (_, other) = doc_with_heads(3);
        let scope = vec![
            row(same, Some(encode_heads(&heads)), Some(state_sharing(&heads))),
            row(moved, Some(encode_heads(&other)), Some(state_sharing(&heads))),
            row(unknown, None, Some(state_sharing(&heads))),
            row(never, Some(encode_heads(&heads)), None),
            row(named, Some(encode_heads(&other)), Some(state_sharing(&heads))),
        ];
        let found = news(scope, &BTreeSet::from([named]));
        let told: BTreeSet<DocId> = found.tell.iter().map(|(id, _)| *id).collect();
        assert_eq!(told, BTreeSet::from([moved, unknown, never]));
        assert!(found.missing.is_empty(), "a document new to the phone goes whole while there is room");
        assert!(!found.truncated);
    }

    #[test]
    fn the_message_carries_the_changes_after_the_shared_heads_within_the_budget() {
        let (mut doc, heads) = doc_with_heads(1);
        let mut later = doc.fork();
        {
            use automerge::transaction::Transactable;
            later.put(automerge::ROOT, "x", "y").unwrap();
            later.commit();
        }
        let mut hot = HotDoc::empty(automerge::ActorId::random(), 1);
        hot.doc = later;
        let mut state = State::new();
        state.shared_heads = heads;
        let id = DocId::Model(ModelId::new_random());
        let mut budget = MAX_PUSH_BYTES;
        let msg = tell(id, &mut hot, state.clone(), &mut budget).unwrap();
        let decoded = Message::decode(&msg.msg).unwrap();
        assert_eq!(decoded.changes.len(), 1);
        assert!(budget < MAX_PUSH_BYTES);

        let mut none = 0;
        let msg = tell(id, &mut hot, state, &mut none).unwrap();
        assert!(Message::decode(&msg.msg).unwrap().changes.is_empty(), "past the budget, heads only");
    }
}

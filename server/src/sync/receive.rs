//! Taking one device's sync message into a document: the steps of
//! Automerge's `receive_sync_message` (automerge 0.12), in the same order,
//! with one cost removed.
//!
//! Automerge trims the hashes it sent in this session to those the peer
//! has not seen by walking every ancestor of the peer's heads, that is the
//! document's whole history, even when nothing was sent. The server's sync
//! state of a device is decoded from the store at the start of each request,
//! and a decoded state has sent nothing, so that walk is all the server got
//! from it: about half a millisecond per request in a log of 10,000
//! records, growing with the log. The walk is skipped only when there is
//! nothing to trim; otherwise Automerge's own receive runs.
//!
//! `tests` below run both on the same messages and compare the documents
//! and the states they leave.

use std::collections::HashSet;

use automerge::sync::{Capability, Message, MessageFlags, State, SyncDoc};
use automerge::{AutoCommit, AutomergeError, ChangeHash};

/// Applies `message` to `doc` and moves `state` as Automerge's
/// `receive_sync_message` would.
pub fn receive(doc: &mut AutoCommit, state: &mut State, message: Message) -> Result<(), AutomergeError> {
    if !state.sent_hashes.is_empty() {
        return doc.sync().receive_sync_message(state, message);
    }
    state.in_flight = false;
    let before_heads = doc.get_heads();
    let Message { heads: message_heads, changes, need, have, flags, .. } = message;

    if let Some(flags) = flags {
        // A peer that sends flags reads version-2 messages.
        let mut caps = vec![Capability::MessageV2];
        if flags.contains(MessageFlags::SUPPORTS_SYNC_RESET) {
            caps.push(Capability::SyncReset);
        }
        state.their_capabilities = Some(caps);
        // A reset clears the sent hashes, which are empty here already.
        state.peer_read_only = flags.contains(MessageFlags::READ_ONLY);
    }

    let changes_is_empty = changes.is_empty();
    if !changes_is_empty && !state.read_only {
        let joined: Vec<u8> = changes.iter().flatten().copied().collect();
        doc.load_incremental(&joined)?;
        let after: HashSet<ChangeHash> = doc.get_heads().into_iter().collect();
        state.shared_heads = advance_heads(&before_heads, &after, &state.shared_heads);
    }

    if changes_is_empty && message_heads == before_heads {
        state.last_sent_heads.clone_from(&message_heads);
    }

    let known: Vec<ChangeHash> =
        message_heads.iter().filter(|h| doc.get_change_meta_by_hash(h).is_some()).copied().collect();
    if known.len() == message_heads.len() {
        state.shared_heads.clone_from(&message_heads);
        // A peer that lost all its data starts over.
        if message_heads.is_empty() {
            state.last_sent_heads = Vec::new();
            state.sent_hashes = Default::default();
        }
    } else {
        let mut shared = state.shared_heads.clone();
        shared.extend(known);
        shared.sort();
        shared.dedup();
        state.shared_heads = shared;
    }

    state.their_have = Some(have);
    state.their_heads = Some(message_heads);
    state.their_need = Some(need);
    Ok(())
}

/// The shared heads after applying changes: our new heads, and the old
/// shared heads that are still heads.
fn advance_heads(old: &[ChangeHash], new: &HashSet<ChangeHash>, shared: &[ChangeHash]) -> Vec<ChangeHash> {
    let old: HashSet<&ChangeHash> = old.iter().collect();
    let mut advanced: Vec<ChangeHash> =
        new.iter().filter(|h| !old.contains(h)).chain(shared.iter().filter(|h| new.contains(*h))).copied().collect();
    advanced.sort();
    advanced.dedup();
    advanced
}

#[cfg(test)]
mod tests {
    use automerge::sync::{Message, State, SyncDoc};
    use automerge::transaction::Transactable;
    use automerge::{AutoCommit, ReadDoc};

    use super::receive;

    fn doc_with(actor: &str, keys: &[&str]) -> AutoCommit {
        let mut doc = AutoCommit::new().with_actor(automerge::ActorId::from(actor.as_bytes()));
        for k in keys {
            doc.put(automerge::ROOT, *k, 1_i64).expect("put");
            doc.commit();
        }
        doc
    }

    /// Drives a sync between a phone and a server copy, the server taking
    /// each message both ways (Automerge's receive and this one); the two
    /// server copies and states must stay alike at every step.
    fn compare(mut phone: AutoCommit, server: AutoCommit, mut reset_state_each_round: bool) {
        let (mut ours, mut theirs) = (server.clone(), server);
        let (mut ps, mut ours_state, mut theirs_state) = (State::new(), State::new(), State::new());
        for _ in 0..8 {
            let Some(m) = phone.sync().generate_sync_message(&mut ps) else { break };
            let bytes = m.encode();
            if reset_state_each_round {
                // As the server does: the state comes back from the store.
                ours_state = State::decode(&ours_state.encode()).expect("state");
                theirs_state = State::decode(&theirs_state.encode()).expect("state");
            }
            receive(&mut ours, &mut ours_state, Message::decode(&bytes).expect("msg")).expect("ours");
            theirs.sync().receive_sync_message(&mut theirs_state, Message::decode(&bytes).expect("msg")).expect("am");
            assert_eq!(ours.get_heads(), theirs.get_heads());
            assert_eq!(ours_state.shared_heads, theirs_state.shared_heads);
            assert_eq!(ours_state.last_sent_heads, theirs_state.last_sent_heads);
            assert_eq!(ours_state.their_heads, theirs_state.their_heads);
            assert_eq!(ours_state.their_need, theirs_state.their_need);
            assert_eq!(ours_state.sent_hashes, theirs_state.sent_hashes);
            assert_eq!(ours_state.in_flight, theirs_state.in_flight);
            let reply = ours.sync().generate_sync_message(&mut ours_state);
            let same = theirs.sync().generate_sync_message(&mut theirs_state);
            assert_eq!(reply.as_ref().map(|m| m.clone().encode()), same.map(|m| m.encode()));
            match reply {
                Some(r) => phone.sync().receive_sync_message(&mut ps, r).expect("phone"),
                None => reset_state_each_round = false,
            }
        }
        assert_eq!(ours.get_heads(), phone.get_heads());
        assert_eq!(ours.length(automerge::ROOT), phone.length(automerge::ROOT));
    }

    #[test]
    fn a_first_sync_matches_automerge() {
        compare(doc_with("aa", &["a", "b", "c"]), AutoCommit::new(), true);
    }

    #[test]
    fn a_push_into_a_shared_history_matches_automerge() {
        let mut server = doc_with("bb", &["x", "y"]);
        let mut phone = server.fork().with_actor(automerge::ActorId::from(b"aa".as_slice()));
        for k in ["p", "q", "r"] {
            phone.put(automerge::ROOT, k, "v").expect("put");
            phone.commit();
        }
        server.put(automerge::ROOT, "z", 2_i64).expect("put");
        server.commit();
        compare(phone, server.clone(), true);
        compare(doc_with("cc", &["only"]), server, false);
    }
}

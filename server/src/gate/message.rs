//! One Automerge sync message from a phone, read by the project's own code.
//!
//! The layout (Automerge's `sync::Message::encode`):
//! `type (0x42 | 0x43) | heads | need | have* | changes* | [flags]`, where
//! hash lists are a count and 32 bytes each, a `have` is a hash list and a
//! length-prefixed Bloom filter, and `changes` are length-prefixed chunks.
//! Nothing may follow the flags.
//!
//! A Bloom filter is `entries | bits per entry | probes | bits`, or empty.
//! Automerge sizes its work by these numbers as sent (probes per lookup,
//! a division by the bit count), so only the parameters Automerge itself
//! writes are accepted: 10 bits per entry, 7 probes, and exactly the bytes
//! those imply.
//!
//! What passes is re-encoded with its changes inflated, and only that is
//! given to Automerge.

use automerge::ChangeHash;
use automerge::sync::Message;

use super::bytes::{ReadError, Reader, put_uleb};
use super::change::{GatedChange, read_chunks};
use super::limits::Limits;

const SYNC_V1: u8 = 0x42;
const SYNC_V2: u8 = 0x43;
const BITS_PER_ENTRY: u64 = 10;
const PROBES: u64 = 7;
const MAX_FLAG_BYTES: usize = 16;

/// A sync message that passed the gate.
#[derive(Debug)]
pub struct GatedMessage {
    pub heads: Vec<ChangeHash>,
    pub changes: Vec<GatedChange>,
    /// The message for Automerge: the same fields, changes uncompressed.
    pub message: Message,
}

/// Why a message was refused: its framing, or one of its changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Message(ReadError),
    Change(ReadError),
}

/// Reads a message, with `more` changes (rebuilt from a pack) as if they
/// followed its own.
pub fn read_message(bytes: &[u8], more: &[Vec<u8>], limits: &Limits) -> Result<GatedMessage, Refusal> {
    let mut r = Reader::new(bytes);
    let framing = Refusal::Message;
    let kind = r.byte().map_err(framing)?;
    if kind != SYNC_V1 && kind != SYNC_V2 {
        return Err(framing(ReadError { at: 0, what: format!("not a sync message (first byte {kind:#04x})") }));
    }
    let mut clean = vec![kind];
    let heads = r.hashes("heads", limits.max_hashes).map_err(framing)?;
    put_hashes(&mut clean, &heads);
    let need = r.hashes("need", limits.max_hashes).map_err(framing)?;
    put_hashes(&mut clean, &need);
    let haves = r.count("have", limits.max_haves).map_err(framing)?;
    put_uleb(&mut clean, haves as u64);
    for _ in 0..haves {
        let last_sync = r.hashes("have.last_sync", limits.max_hashes).map_err(framing)?;
        put_hashes(&mut clean, &last_sync);
        let bloom = r.prefixed("have.bloom", usize::MAX).map_err(framing)?;
        check_bloom(bloom, limits).map_err(|what| framing(ReadError { at: r.position(), what }))?;
        put_uleb(&mut clean, bloom.len() as u64);
        clean.extend(bloom);
    }
    let entries = r.count("changes", limits.max_changes_per_request).map_err(framing)?;
    let mut changes = Vec::new();
    // Each chunk list read, from the message or rebuilt from its pack, and
    // the count checked after each, so that no list is read past the limit.
    let mut take = |read: Vec<GatedChange>, at: usize| {
        changes.extend(read);
        if changes.len() > limits.max_changes_per_request {
            return Err(framing(ReadError {
                at,
                what: format!("more than {} changes", limits.max_changes_per_request),
            }));
        }
        Ok(())
    };
    for _ in 0..entries {
        let at = r.position();
        let entry = r.prefixed("change", usize::MAX).map_err(framing)?;
        take(read_chunks(entry, limits).map_err(|e| Refusal::Change(ReadError { at: at + e.at, what: e.what }))?, at)?;
    }
    for chunk in more {
        take(read_chunks(chunk, limits).map_err(Refusal::Change)?, r.position())?;
    }
    put_uleb(&mut clean, changes.len() as u64);
    for c in &changes {
        put_uleb(&mut clean, c.chunk.len() as u64);
        clean.extend(&c.chunk);
    }
    if !r.is_empty() {
        let flags = r.prefixed("flags", MAX_FLAG_BYTES).map_err(framing)?;
        put_uleb(&mut clean, flags.len() as u64);
        clean.extend(flags);
    }
    if !r.is_empty() {
        return Err(framing(ReadError { at: r.position(), what: "bytes after the end of the message".into() }));
    }
    let message = Message::decode(&clean)
        .map_err(|e| framing(ReadError { at: 0, what: format!("Automerge could not read it: {e}") }))?;
    Ok(GatedMessage { heads, changes, message })
}

fn put_hashes(out: &mut Vec<u8>, hashes: &[ChangeHash]) {
    put_uleb(out, hashes.len() as u64);
    for h in hashes {
        out.extend(h.0);
    }
}

fn check_bloom(bytes: &[u8], limits: &Limits) -> Result<(), String> {
    if bytes.is_empty() {
        return Ok(());
    }
    let mut r = Reader::new(bytes);
    let entries = r.uleb("bloom entries").map_err(|e| e.what)?;
    let bits = r.uleb("bloom bits per entry").map_err(|e| e.what)?;
    let probes = r.uleb("bloom probes").map_err(|e| e.what)?;
    if entries == 0 || entries > limits.max_bloom_entries {
        return Err(format!("a Bloom filter of {entries} entries (1 to {} allowed)", limits.max_bloom_entries));
    }
    if bits != BITS_PER_ENTRY || probes != PROBES {
        return Err(format!(
            "Bloom filter with {bits} bits per entry and {probes} probes; only {BITS_PER_ENTRY} and {PROBES} are accepted"
        ));
    }
    let expected = (entries * BITS_PER_ENTRY).div_ceil(8);
    if r.remaining() as u64 != expected {
        return Err(format!("Bloom filter of {entries} entries must have {expected} bytes, not {}", r.remaining()));
    }
    Ok(())
}

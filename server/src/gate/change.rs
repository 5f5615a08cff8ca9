//! One change chunk from a phone, checked field by field.
//!
//! A chunk is `magic (4) | checksum (4) | type (1) | uleb length | body`.
//! Only change chunks (type 1) and compressed change chunks (type 2, the
//! body deflated) are accepted here: a phone has no reason to send a whole
//! document or a bundle, and the server never advertises the message
//! version that would let Automerge send one. A compressed chunk is inflated
//! here, with a cap, and handed on uncompressed, so Automerge never inflates
//! anything a phone sent.
//!
//! The body is `deps | actor | seq | start_op | time | message | other
//! actors | op column layout | op columns | extra bytes`. Every count in it
//! is checked against [`Limits`] before use, the checksum is verified, and
//! the op columns are counted by [`super::columns`].

use std::io::Read;

use automerge::{ActorId, ChangeHash};
use sha2::{Digest, Sha256};

use super::bytes::{ReadError, Reader, put_uleb};
use super::columns::ColumnLayout;
use super::limits::Limits;

const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
const CHANGE: u8 = 1;
const COMPRESSED: u8 = 2;

/// A change that passed the gate, as an uncompressed chunk.
#[derive(Debug, Clone, PartialEq)]
pub struct GatedChange {
    pub hash: ChangeHash,
    pub actor: ActorId,
    /// Operations in the change.
    pub ops: u64,
    /// The chunk as Automerge will read it (inflated if it came compressed).
    pub chunk: Vec<u8>,
}

/// Reads the chunks of one `changes` entry of a sync message (Automerge
/// concatenates what it receives, so one entry may hold several chunks).
pub fn read_chunks(bytes: &[u8], limits: &Limits) -> Result<Vec<GatedChange>, ReadError> {
    let mut r = Reader::new(bytes);
    let mut out = Vec::new();
    while !r.is_empty() {
        out.push(read_chunk(&mut r, limits)?);
    }
    Ok(out)
}

fn read_chunk(r: &mut Reader<'_>, limits: &Limits) -> Result<GatedChange, ReadError> {
    if r.take(4, "chunk magic")? != MAGIC {
        return r.fail("not an Automerge chunk (wrong magic bytes)");
    }
    let checksum: [u8; 4] = r.take(4, "checksum")?.try_into().unwrap_or_default();
    let kind = r.byte()?;
    let len = r.count("chunk length", limits.max_change_bytes)?;
    let start = r.position();
    let data = r.take(len, "chunk body")?;
    let body = match kind {
        CHANGE => data.to_vec(),
        COMPRESSED => inflate(data, limits.max_change_bytes).map_err(|what| ReadError { at: start, what })?,
        0 => return r.fail("a document chunk; send changes, not a saved document"),
        3 => return r.fail("a bundle chunk; send changes one by one"),
        other => return r.fail(format!("unknown chunk type {other}")),
    };
    let mut header = vec![CHANGE];
    put_uleb(&mut header, body.len() as u64);
    let hash: [u8; 32] = Sha256::new().chain_update(&header).chain_update(&body).finalize().into();
    if hash[..4] != checksum {
        return r.fail("checksum does not match the change");
    }
    let fields = read_body(&body, limits).map_err(|e| ReadError { at: start + e.at, what: e.what })?;
    let mut chunk = Vec::with_capacity(13 + body.len());
    chunk.extend(MAGIC);
    chunk.extend(checksum);
    chunk.extend(header);
    chunk.extend(&body);
    Ok(GatedChange { hash: ChangeHash(hash), chunk, ..fields })
}

/// Inflates at most `cap` bytes; more is an error, not a bigger buffer.
fn inflate(data: &[u8], cap: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut decoder = flate2::read::DeflateDecoder::new(data).take(cap as u64 + 1);
    decoder.read_to_end(&mut out).map_err(|e| format!("compressed change does not inflate: {e}"))?;
    if out.len() > cap {
        return Err(format!("compressed change inflates past {cap} bytes"));
    }
    Ok(out)
}

fn read_body(body: &[u8], limits: &Limits) -> Result<GatedChange, ReadError> {
    let mut r = Reader::new(body);
    r.hashes("dependencies", limits.max_deps)?;
    let actor = r.prefixed("actor", limits.max_actor_bytes)?;
    if actor.is_empty() {
        return r.fail("empty actor id");
    }
    let actor = ActorId::from(actor);
    let seq = r.uleb("seq")?;
    if seq == 0 || seq > u64::from(u32::MAX) {
        return r.fail(format!("seq {seq} out of range"));
    }
    let start_op = r.uleb("start op")?;
    if start_op == 0 || start_op > u64::from(u32::MAX) {
        return r.fail(format!("start op {start_op} out of range"));
    }
    r.sleb("time")?;
    let message = r.prefixed("message", limits.max_message_bytes)?;
    if std::str::from_utf8(message).is_err() {
        return r.fail("change message is not UTF-8");
    }
    let others = r.count("other actors", limits.max_other_actors)?;
    for _ in 0..others {
        if r.prefixed("other actor", limits.max_actor_bytes)?.is_empty() {
            return r.fail("empty actor id");
        }
    }
    let column_bytes = r.remaining();
    let layout = ColumnLayout::parse(&mut r, limits.max_columns, column_bytes)?;
    let at = r.position();
    let data = r.take(layout.total_len(), "op columns")?;
    let ops =
        layout.count_rows(data, limits.max_ops_per_change).map_err(|e| ReadError { at: at + e.at, what: e.what })?;
    // Op counters must stay within 32 bits, as Automerge requires.
    if start_op + ops > u64::from(u32::MAX) {
        return r.fail("op counters past 32 bits");
    }
    // Whatever follows the columns (Automerge's extra bytes) is kept as sent.
    r.rest();
    Ok(GatedChange { hash: ChangeHash([0; 32]), actor, ops, chunk: Vec::new() })
}

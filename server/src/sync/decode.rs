//! Step one: the request's envelope checked and every message through the
//! gate, before anything is locked.

use std::collections::{BTreeMap, BTreeSet};

use kheo_shared::ids::DocId;
use kheo_shared::protocol::{
    DocMessage, Keep, MAX_DOCS_PER_REQUEST, MAX_HELD, PACKED_VERSION, PROTOCOL_VERSION, SyncRequest,
};

use crate::error::AppError;
use crate::gate::{Gate, GateError, GatedMessage};

/// A request whose messages all passed the gate.
pub struct Decoded {
    /// The gated message of each document, in id order (the lock order).
    pub messages: BTreeMap<DocId, GatedMessage>,
    /// Every document the device named: with a message or in `held`.
    pub requested: BTreeSet<DocId>,
    /// Whether the device wants the documents it lacks named.
    pub full: bool,
    /// A quiet request's cursor (see [`super::quiet`]).
    pub quiet: Option<super::quiet::QuietCursor>,
    /// What the device keeps of its scope (its `release` list emptied
    /// into `released`); `None`, all of it.
    pub keep: Option<Keep>,
    /// Documents the device dropped: their sync states go with this
    /// request's write, and they are no longer offered.
    pub released: BTreeSet<DocId>,
}

/// Checks the version and the counts, and gates every message with one
/// budget for the request.
pub fn decode(request: SyncRequest) -> Result<Decoded, AppError> {
    if request.v != PROTOCOL_VERSION && request.v != PACKED_VERSION {
        return Err(AppError::UnsupportedVersion(request.v));
    }
    if request.v == PROTOCOL_VERSION && request.docs.iter().any(|d| d.packed.is_some()) {
        return Err(AppError::MalformedBody(format!("packed changes need protocol version {PACKED_VERSION}")));
    }
    if request.docs.len() > MAX_DOCS_PER_REQUEST {
        return Err(AppError::TooManyDocuments(format!(
            "{} documents in one request; at most {MAX_DOCS_PER_REQUEST}",
            request.docs.len()
        )));
    }
    if request.held.len() > MAX_HELD {
        return Err(AppError::TooManyDocuments(format!("{} held ids; at most {MAX_HELD}", request.held.len())));
    }
    let quiet = match request.quiet.as_deref() {
        None => None,
        Some(c) => Some(
            super::quiet::QuietCursor::parse(c).map_err(|e| AppError::MalformedBody(format!("quiet must be {e}")))?,
        ),
    };
    if quiet.is_some() && (request.full || !request.held.is_empty()) {
        return Err(AppError::MalformedBody("a quiet request lists no held documents and is not full".into()));
    }
    let messages = decode_messages(request.docs, &mut Gate::default())?;
    let mut requested: BTreeSet<DocId> = messages.keys().copied().collect();
    for id in &request.held {
        requested.insert(DocId::parse(id).map_err(|e| AppError::BadDocumentId(e.to_string()))?);
    }
    let mut keep = request.keep;
    let mut released = BTreeSet::new();
    for id in keep.as_mut().map(|k| std::mem::take(&mut k.release)).unwrap_or_default() {
        let id = DocId::parse(&id).map_err(|e| AppError::BadDocumentId(e.to_string()))?;
        if messages.contains_key(&id) {
            return Err(AppError::MalformedBody(format!("{id} is both released and sent")));
        }
        released.insert(id);
    }
    Ok(Decoded { messages, requested, full: request.full, quiet, keep, released })
}

fn decode_messages(docs: Vec<DocMessage>, gate: &mut Gate) -> Result<BTreeMap<DocId, GatedMessage>, AppError> {
    let mut messages = BTreeMap::new();
    for m in docs {
        let id = m.doc_id().map_err(|e| AppError::BadDocumentId(e.to_string()))?;
        // A pack is rebuilt into the changes it stands for, within what is
        // left of the request's budget, and they pass the gate as any others.
        let rebuilt = match &m.packed {
            Some(pack) => kheo_shared::packed::unpack(pack, &gate.pack_budget())
                .map_err(|e| AppError::BadPacked { doc: m.id.clone(), reason: e.to_string() })?,
            None => Vec::new(),
        };
        let gated = gate.message_with(&m.msg, &rebuilt).map_err(|e| match e {
            GateError::Message(e) => AppError::BadSyncMessage { doc: m.id.clone(), reason: e.to_string() },
            GateError::Change(e) => AppError::BadChange { doc: m.id.clone(), reason: e.to_string() },
            GateError::OverBudget(message) => AppError::OverBudget(message),
        })?;
        if messages.insert(id, gated).is_some() {
            return Err(AppError::DuplicateDocument(m.id));
        }
    }
    Ok(messages)
}

//! The sync protocol's wire format: one `POST /api/v1/sync` carries standard
//! Automerge sync messages for many documents, as gzip-compressed CBOR.
//!
//! The pipeline on either side is bytes → gzip → CBOR → typed message, and
//! back. Decoding is strict and bounded: a body that inflates past
//! [`MAX_INFLATED_BYTES`] is refused before it is fully inflated, so a small
//! "zip bomb" cannot exhaust memory. `docs/PROTOCOL.md` is the normative text.

use std::io::{Read, Write};

use flate2::{Compression, read::GzDecoder, write::GzEncoder};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::ids::DocId;

pub const PROTOCOL_VERSION: u32 = 1;
/// The version of a request whose messages may carry [`DocMessage::packed`]
/// changes. Everything else is as in version 1, which servers still take.
pub const PACKED_VERSION: u32 = 2;
pub const SYNC_PATH: &str = "/api/v1/sync";
pub const CONTENT_TYPE: &str = "application/cbor";

/// Largest compressed request body the server reads.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;
/// Largest body after inflating.
pub const MAX_INFLATED_BYTES: usize = 32 * 1024 * 1024;
/// Most documents one request may carry messages for.
pub const MAX_DOCS_PER_REQUEST: usize = 2_000;
/// Most ids a `held` list may name.
pub const MAX_HELD: usize = 200_000;
/// Most changes one request may carry, over all its documents. A device
/// with more to send spreads them over several requests of a session.
pub const MAX_CHANGES_PER_REQUEST: usize = 500;
/// Most operations one request may carry (a record is a few dozen), so
/// that no request holds a document for much more than a second.
pub const MAX_OPS_PER_REQUEST: u64 = 50_000;

/// One request from a device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncRequest {
    pub v: u32,
    /// One sync message per document, at most one entry per document.
    #[serde(deserialize_with = "bounded::seq::<_, _, MAX_DOCS_PER_REQUEST>")]
    pub docs: Vec<DocMessage>,
    /// True when `docs` and `held` together name every document the device
    /// holds, so the server can answer with the documents of its scope the
    /// device lacks.
    #[serde(default)]
    pub full: bool,
    /// With `full`: the ids of held documents that carry no message in this
    /// request (a device may hold more documents than one request carries).
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "bounded::seq::<_, _, MAX_HELD>")]
    pub held: Vec<String>,
    /// "Nothing new here since this cursor": the `cursor` of the first
    /// answer of the device's last completed session. The request then
    /// carries messages only for the documents with changes of the
    /// device's own, and the server adds a message for every other
    /// document of the scope it holds something new in (and names in
    /// `missing` those the device lacks). A device with 1,000 quiet
    /// documents sends one small request instead of 1,000 messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiet: Option<String>,
    /// What the device keeps of its scope; absent, all of it. A staff
    /// device at province scale cannot hold the province (§6 *What a
    /// device keeps*).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep: Option<Keep>,
}

impl SyncRequest {
    /// A request with only these messages (a session's later rounds).
    pub fn of(docs: Vec<DocMessage>) -> Self {
        SyncRequest { v: PROTOCOL_VERSION, docs, full: false, held: Vec::new(), quiet: None, keep: None }
    }
}

/// Most ids one request may release.
pub const MAX_RELEASE: usize = MAX_DOCS_PER_REQUEST;

/// The part of its scope a device keeps: what the server names in
/// `missing` and tells a quiet device about. A document the device has
/// synced (and not released) is always kept; a document outside the rest
/// of the rule reaches the device when it sends a message for it (opening a
/// model fetches it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Keep {
    /// Activity logs of years before this one are not offered (model
    /// profiles always are, unless `only_synced`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs_from: Option<i32>,
    /// Only the documents this device has synced are offered.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub only_synced: bool,
    /// Documents the device has dropped from its storage: the server
    /// forgets its sync state with each, so they are no longer offered. A
    /// released id cannot also carry a message in the same request.
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "bounded::seq::<_, _, MAX_RELEASE>")]
    pub release: Vec<String>,
}

impl Keep {
    /// Whether the rule offers `id` to a device that has (`synced`) or has
    /// not synced it.
    pub fn offers(&self, id: &DocId, synced: bool) -> bool {
        if synced {
            return true;
        }
        if self.only_synced {
            return false;
        }
        match (id, self.logs_from) {
            (DocId::Log { year, .. }, Some(from)) => *year >= from,
            _ => true,
        }
    }
}

/// The longest cursor a server gives (22 characters today).
pub const MAX_CURSOR_LEN: usize = 64;

/// Lists whose length is checked while they are decoded: a gzip'd body of
/// 32 KB inflates to 32 MiB, which as CBOR is 32 million empty strings, so
/// a limit checked after decoding comes after the memory is spent.
mod bounded {
    use std::fmt;
    use std::marker::PhantomData;

    use serde::Deserialize;
    use serde::de::{self, Deserializer, SeqAccess, Visitor};

    /// The start of the decode error a list over its limit causes.
    pub const TOO_MANY: &str = "list longer than allowed: ";

    pub fn seq<'de, D, T, const MAX: usize>(d: D) -> Result<Vec<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de>,
    {
        struct Bounded<T, const MAX: usize>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>, const MAX: usize> Visitor<'de> for Bounded<T, MAX> {
            type Value = Vec<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "a list of at most {MAX} entries")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
                // The announced length is the sender's word: reserve little.
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(MAX).min(1024));
                while let Some(item) = seq.next_element()? {
                    if out.len() == MAX {
                        return Err(de::Error::custom(format!("{TOO_MANY}more than {MAX} entries")));
                    }
                    out.push(item);
                }
                Ok(out)
            }
        }
        d.deserialize_seq(Bounded::<T, MAX>(PhantomData))
    }
}

/// The server's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncResponse {
    pub v: u32,
    /// A reply message for each document the server has something to say about.
    pub docs: Vec<DocMessage>,
    /// With `full` requests: documents in the device's scope it does not hold yet.
    #[serde(default)]
    pub missing: Vec<DocId>,
    /// With `full` and `quiet` requests: where the scope's documents stood
    /// before this answer was made. Once the session it opened has ended
    /// with nothing left to say, the device holds everything up to it and
    /// sends it as `quiet` next time. Absent when the server could not
    /// answer for the whole scope in one go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocMessage {
    /// A document id in its text form. Kept as text on the wire so that a
    /// malformed id is reported as such, not as an undecodable body.
    pub id: String,
    /// An encoded `automerge::sync::Message`.
    pub msg: ByteBuf,
    /// Version 2, device to server: more changes of the message, packed
    /// ([`crate::packed`]); the server rebuilds them and reads them as if
    /// they were in `msg`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packed: Option<ByteBuf>,
}

impl DocMessage {
    pub fn new(id: DocId, msg: Vec<u8>) -> Self {
        DocMessage { id: id.to_string(), msg: ByteBuf::from(msg), packed: None }
    }

    pub fn doc_id(&self) -> Result<DocId, crate::ids::IdError> {
        DocId::parse(&self.id)
    }
}

pub const LOGIN_PATH: &str = "/api/v1/login";

/// `POST /api/v1/login` (JSON): a username or phone number and a password or PIN.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoginRequest {
    pub login: String,
    pub secret: String,
    /// What the user calls this phone or browser, shown in device lists.
    #[serde(default)]
    pub device_label: String,
}

/// A successful login registers a device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoginResponse {
    /// Bearer token for every later request; shown once, stored hashed.
    pub token: String,
    pub device_id: String,
    /// The Automerge actor id (hex) this device must write every change with.
    pub actor: String,
    pub account: AccountInfo,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AccountInfo {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub role: crate::codes::Role,
    /// The organisation unit the account is bound to.
    pub unit: String,
    pub disabled: bool,
}

/// JSON body of every error response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// A stable code (`docs/PROTOCOL.md` §9), e.g. `bad_query`.
    pub error: String,
    /// For people; its wording may change.
    pub message: String,
    /// The document the error is about, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc: Option<String>,
    /// Where in the document, for schema errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The write rule a refused change breaks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("body is not gzip data or is truncated: {0}")]
    Gzip(std::io::Error),
    #[error("body inflates past {MAX_INFLATED_BYTES} bytes")]
    TooLarge,
    #[error("body is not the expected CBOR message: {0}")]
    Cbor(String),
    /// A body is one CBOR value: bytes after it could be read differently
    /// by another decoder, so they are refused rather than ignored.
    #[error("body has {0} bytes after its CBOR message")]
    TrailingBytes(usize),
    /// `docs` or `held` is longer than a request may be.
    #[error("{0}")]
    TooMany(String),
}

/// Encodes a message as gzip-compressed CBOR.
pub fn encode<T: Serialize>(message: &T) -> Vec<u8> {
    let mut cbor = Vec::new();
    // Writing CBOR to a Vec fails only for types serde cannot express, which none of ours are.
    ciborium::into_writer(message, &mut cbor).unwrap_or_else(|e| unreachable!("CBOR into Vec: {e}"));
    gzip(&cbor)
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::with_capacity(bytes.len() / 2 + 64), Compression::default());
    enc.write_all(bytes).unwrap_or_else(|e| unreachable!("gzip into Vec: {e}"));
    enc.finish().unwrap_or_else(|e| unreachable!("gzip into Vec: {e}"))
}

/// Inflates gzip data, refusing more than `limit` bytes of output.
pub fn gunzip(bytes: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::with_capacity(bytes.len().saturating_mul(4).min(limit));
    GzDecoder::new(bytes).take(limit as u64 + 1).read_to_end(&mut out).map_err(DecodeError::Gzip)?;
    if out.len() > limit {
        return Err(DecodeError::TooLarge);
    }
    Ok(out)
}

/// Decodes a response body a browser has already inflated: `fetch` undoes
/// `Content-Encoding: gzip` itself. Bodies still compressed (a client that
/// does not) are inflated here, so both kinds of caller can use it.
pub fn decode_inflated<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, DecodeError> {
    if body.starts_with(&[0x1f, 0x8b]) {
        return decode(body);
    }
    from_cbor(body)
}

/// Decodes gzip-compressed CBOR.
pub fn decode<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, DecodeError> {
    let cbor = gunzip(body, MAX_INFLATED_BYTES)?;
    from_cbor(&cbor)
}

/// Exactly one CBOR value, with nothing after it.
fn from_cbor<T: for<'de> Deserialize<'de>>(cbor: &[u8]) -> Result<T, DecodeError> {
    let mut rest = cbor;
    let value = ciborium::from_reader(&mut rest).map_err(|e| {
        let text = e.to_string();
        match text.find(bounded::TOO_MANY) {
            Some(at) => DecodeError::TooMany(text[at + bounded::TOO_MANY.len()..].to_owned()),
            None => DecodeError::Cbor(text),
        }
    })?;
    if !rest.is_empty() {
        return Err(DecodeError::TrailingBytes(rest.len()));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {

    #[test]
    fn lists_past_their_limit_are_refused_while_decoding() {
        let request = SyncRequest {
            v: 1,
            docs: vec![],
            full: true,
            held: vec![String::new(); MAX_HELD + 1],
            quiet: None,
            keep: None,
        };
        match decode::<SyncRequest>(&encode(&request)) {
            Err(DecodeError::TooMany(message)) => assert!(message.contains("200000"), "{message}"),
            other => panic!("{other:?}"),
        }
        let request = SyncRequest {
            v: 1,
            docs: vec![],
            full: true,
            held: vec![String::new(); MAX_HELD],
            quiet: None,
            keep: None,
        };
        assert_eq!(decode::<SyncRequest>(&encode(&request)).unwrap().held.len(), MAX_HELD);
    }
    use super::*;
    use crate::ids::ModelId;

    #[test]
    fn inflated_bodies_decode_either_way() {
        let msg = sample();
        let gz = encode(&msg);
        let plain = gunzip(&gz, MAX_INFLATED_BYTES).unwrap();
        assert_eq!(decode_inflated::<SyncRequest>(&gz).unwrap(), msg);
        assert_eq!(decode_inflated::<SyncRequest>(&plain).unwrap(), msg);
        assert!(decode_inflated::<SyncRequest>(b"not cbor").is_err());
    }

    fn sample() -> SyncRequest {
        let id = DocId::log(ModelId::new_random(), 2025).unwrap();
        SyncRequest {
            v: 1,
            docs: vec![DocMessage::new(id, vec![0x42, 1, 2, 3])],
            full: true,
            held: Vec::new(),
            quiet: None,
            keep: Some(Keep { logs_from: Some(2025), only_synced: false, release: vec!["model/x".into()] }),
        }
    }

    #[test]
    fn keep_offers_what_the_device_synced_and_what_its_rule_names() {
        let model = ModelId::new_random();
        let (profile, old, new) =
            (DocId::Model(model), DocId::log(model, 2023).unwrap(), DocId::log(model, 2025).unwrap());
        let all = Keep::default();
        assert!([profile, old, new].iter().all(|id| all.offers(id, false)));
        let recent = Keep { logs_from: Some(2024), ..Keep::default() };
        assert!(recent.offers(&profile, false) && recent.offers(&new, false));
        assert!(!recent.offers(&old, false), "an older year is not offered");
        assert!(recent.offers(&old, true), "unless the device synced it");
        let opened = Keep { only_synced: true, ..Keep::default() };
        assert!([profile, old, new].iter().all(|id| !opened.offers(id, false) && opened.offers(id, true)));
    }

    #[test]
    fn a_release_past_its_limit_is_refused_while_decoding() {
        let keep = Keep { release: vec![String::new(); MAX_RELEASE + 1], ..Keep::default() };
        let request = SyncRequest { keep: Some(keep), ..SyncRequest::of(Vec::new()) };
        assert!(matches!(decode::<SyncRequest>(&encode(&request)), Err(DecodeError::TooMany(_))));
    }

    #[test]
    fn round_trips() {
        let req = sample();
        assert_eq!(decode::<SyncRequest>(&encode(&req)).unwrap(), req);
    }

    #[test]
    fn truncated_and_garbage_bodies_fail() {
        let bytes = encode(&sample());
        for cut in [0, 1, 10, bytes.len() / 2, bytes.len() - 1] {
            assert!(decode::<SyncRequest>(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        assert!(matches!(decode::<SyncRequest>(b"not gzip at all"), Err(DecodeError::Gzip(_))));
        assert!(matches!(decode::<SyncRequest>(&gzip(b"\xff\xff not cbor")), Err(DecodeError::Cbor(_))));
    }

    #[test]
    fn bytes_after_the_cbor_message_are_refused() {
        let request = sample();
        let mut cbor = gunzip(&encode(&request), MAX_INFLATED_BYTES).unwrap();
        assert_eq!(decode::<SyncRequest>(&gzip(&cbor)).unwrap(), request);
        // A second message, a single zero byte, junk: all refused, compressed or not.
        let second = cbor.clone();
        for tail in [second.as_slice(), &[0u8][..], b"junk"] {
            let mut body = cbor.clone();
            body.extend_from_slice(tail);
            assert!(
                matches!(decode::<SyncRequest>(&gzip(&body)), Err(DecodeError::TrailingBytes(n)) if n == tail.len()),
                "{} trailing bytes",
                tail.len()
            );
            assert!(matches!(decode_inflated::<SyncRequest>(&body), Err(DecodeError::TrailingBytes(_))));
        }
        cbor.push(0);
        let err = decode::<SyncRequest>(&gzip(&cbor)).unwrap_err();
        assert!(err.to_string().contains("1 bytes after"), "{err}");
    }

    #[test]
    fn bad_document_id_is_reported_as_such() {
        #[derive(Serialize)]
        struct RawDoc<'a> {
            id: &'a str,
            msg: ByteBuf,
        }
        #[derive(Serialize)]
        struct RawRequest<'a> {
            v: u32,
            docs: Vec<RawDoc<'a>>,
        }
        let raw = RawRequest { v: 1, docs: vec![RawDoc { id: "model/NOT-A-UUID", msg: ByteBuf::new() }] };
        let req = decode::<SyncRequest>(&encode(&raw)).unwrap();
        let err = req.docs[0].doc_id().unwrap_err();
        assert!(err.to_string().contains("UUID"), "{err}");
    }

    #[test]
    fn zip_bomb_is_refused() {
        let bomb = gzip(&vec![0u8; MAX_INFLATED_BYTES + 1]);
        assert!(bomb.len() < 100_000);
        assert!(matches!(decode::<SyncRequest>(&bomb), Err(DecodeError::TooLarge)));
    }
}

//! Evidence on a record: photos, referenced by the hash of their bytes, and
//! the place an activity happened.
//!
//! A document never holds a photo's bytes. A record lists its photos as
//! [`Attachment`]s: the SHA-256 of the bytes, their type, size and
//! dimensions, when the photo was taken and an optional caption. The bytes
//! travel separately (`PUT /api/v1/blobs/{sha256}`, see `docs/PROTOCOL.md`),
//! after the documents, so records never wait for photos.
//!
//! Each attachment sits in the record's map under its own key,
//! `photo:<attachment id>`, not in a `photos` map: two phones adding the
//! first photo to the same record offline would each create that map, and
//! Automerge would hide one of them with the photos it holds. A key per
//! attachment is created by one phone only. Removing a photo sets its
//! `deleted` flag; keys are never removed, like records.
//!
//! ```
//! use kheo_shared::evidence::{ContentHash, MediaType};
//!
//! let hash = ContentHash::parse(&"ab".repeat(32)).unwrap();
//! assert_eq!(hash.as_str().len(), 64);
//! assert!(ContentHash::parse(&"AB".repeat(32)).is_err());
//! assert_eq!(MediaType::Jpeg.mime(), "image/jpeg");
//! ```

use std::fmt;
use std::str::FromStr;

use autosurgeon::Reconcile;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::codes::Code;
use crate::scalars::Timestamp;

/// Bounds on what a record may say about its evidence.
pub mod limits {
    /// The largest photo the server keeps. The phone shrinks each photo to
    /// about 150 KB; the bound leaves room for other clients' encoders.
    pub const MAX_PHOTO_BYTES: u32 = 1024 * 1024;
    /// The longest side of a photo, in pixels (the phone sends at most 1,280).
    pub const MAX_PHOTO_SIDE: u32 = 4096;
    /// Photos on one record that are not deleted.
    pub const MAX_PHOTOS: usize = 6;
    /// Attachment entries on one record, deleted ones included, so that a
    /// phone adding and removing photos cannot grow a record without bound.
    pub const MAX_ATTACHMENT_ENTRIES: usize = 24;
    /// A fix less precise than this says nothing about where a team was.
    pub const MAX_ACCURACY_M: f64 = 100_000.0;
}

/// The key prefix of an attachment inside its record's map.
pub const ATTACHMENT_KEY_PREFIX: &str = "photo:";

/// The SHA-256 of a blob's bytes as 64 lowercase hexadecimal digits: the
/// blob's name on the server and in documents. One spelling only, so a hash
/// is a unique key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ContentHash(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a SHA-256 in 64 lowercase hexadecimal digits: {0:?}")]
pub struct BadHash(pub String);

impl ContentHash {
    pub fn parse(s: &str) -> Result<Self, BadHash> {
        if s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            Ok(ContentHash(s.to_owned()))
        } else {
            Err(BadHash(s.chars().take(80).collect()))
        }
    }

    /// The hash of a 32-byte digest.
    pub fn from_digest(digest: &[u8; 32]) -> Self {
        use fmt::Write;
        let mut s = String::with_capacity(64);
        for b in digest {
            let _ = write!(s, "{b:02x}");
        }
        ContentHash(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for ContentHash {
    type Err = BadHash;
    fn from_str(s: &str) -> Result<Self, BadHash> {
        ContentHash::parse(s)
    }
}

impl TryFrom<String> for ContentHash {
    type Error = BadHash;
    fn try_from(s: String) -> Result<Self, BadHash> {
        ContentHash::parse(&s)
    }
}

impl From<ContentHash> for String {
    fn from(h: ContentHash) -> String {
        h.0
    }
}

impl Reconcile for ContentHash {
    type Key<'a> = autosurgeon::reconcile::NoKey;
    fn reconcile<R: autosurgeon::Reconciler>(&self, mut r: R) -> Result<(), R::Error> {
        r.str(&self.0)
    }
}

/// Identity of one attachment on a record (a photo added twice is two
/// attachments with one hash).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AttachmentId(pub Uuid);

impl AttachmentId {
    pub fn new_random() -> Self {
        Self(Uuid::new_v4())
    }

    /// The attachment's key in its record's map.
    pub fn key(&self) -> String {
        format!("{ATTACHMENT_KEY_PREFIX}{self}")
    }

    /// The attachment id of a record key, when the key names an attachment.
    pub fn from_key(key: &str) -> Option<Result<Self, crate::ids::IdError>> {
        key.strip_prefix(ATTACHMENT_KEY_PREFIX).map(str::parse)
    }
}

impl fmt::Display for AttachmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl FromStr for AttachmentId {
    type Err = crate::ids::IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        crate::ids::parse_canonical_uuid(s).map(Self)
    }
}

crate::codes::code_enum! {
    /// The encodings a photo may be kept in.
    MediaType {
        Jpeg,
        Webp,
    }
}

impl MediaType {
    pub fn mime(self) -> &'static str {
        match self {
            MediaType::Jpeg => "image/jpeg",
            MediaType::Webp => "image/webp",
        }
    }

    pub fn from_mime(mime: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|t| t.mime().eq_ignore_ascii_case(mime.trim()))
    }
}

/// One photo on a record.
#[derive(Debug, Clone, PartialEq, Reconcile, Serialize, Deserialize)]
pub struct Attachment {
    pub sha256: ContentHash,
    pub media_type: MediaType,
    /// The size of the bytes the hash names.
    pub bytes: u32,
    pub width: u32,
    pub height: u32,
    pub taken_at: Timestamp,
    pub caption: String,
    /// Removed from the record; the key stays, like a deleted record.
    pub deleted: bool,
}

/// Where an activity happened, as the phone's GPS reported it.
#[derive(Debug, Clone, Copy, PartialEq, Reconcile, Serialize, Deserialize)]
pub struct Location {
    /// Degrees north, −90 to 90 (WGS 84, as browsers report).
    pub latitude: f64,
    /// Degrees east, −180 to 180.
    pub longitude: f64,
    /// The radius, in metres, the fix is within with 95% confidence.
    pub accuracy_m: f64,
    pub taken_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_have_one_spelling() {
        let good = "0123456789abcdef".repeat(4);
        assert!(ContentHash::parse(&good).is_ok());
        for bad in [String::new(), good.to_uppercase(), format!("{good}0"), good[1..].to_owned(), "g".repeat(64)] {
            assert!(ContentHash::parse(&bad).is_err(), "{bad}");
        }
        let digest = [0xabu8; 32];
        assert_eq!(ContentHash::from_digest(&digest).as_str(), "ab".repeat(32));
    }

    #[test]
    fn attachment_keys_round_trip() {
        let id = AttachmentId::new_random();
        assert_eq!(AttachmentId::from_key(&id.key()), Some(Ok(id)));
        assert_eq!(AttachmentId::from_key("note"), None);
        assert!(matches!(AttachmentId::from_key("photo:nope"), Some(Err(_))));
    }

    #[test]
    fn media_types_by_mime() {
        assert_eq!(MediaType::from_mime("image/JPEG"), Some(MediaType::Jpeg));
        assert_eq!(MediaType::from_mime("image/webp"), Some(MediaType::Webp));
        assert_eq!(MediaType::from_mime("image/png"), None);
    }
}

//! Identifiers: models, records and the documents that hold them.
//!
//! A [`DocId`] names one Automerge document. Its text form is what travels in
//! the sync protocol and what the server stores, so [`DocId::parse`] is strict:
//! lowercase hyphenated UUIDs only, a year in range, nothing trailing. Two
//! spellings of the same document would be two documents.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Years an activity log may cover. Records before the movement's digital
/// records or far in the future are typing mistakes, not data.
pub const MIN_YEAR: i32 = 2000;
pub const MAX_YEAR: i32 = 2100;

/// Identity of a model (mô hình).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ModelId(pub Uuid);

/// Identity of an activity record; also its key in the log document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RecordId(pub Uuid);

impl ModelId {
    pub fn new_random() -> Self {
        Self(Uuid::new_v4())
    }
}

impl RecordId {
    pub fn new_random() -> Self {
        Self(Uuid::new_v4())
    }
}

impl fmt::Display for ModelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

macro_rules! reconcile_as_string {
    ($t:ty) => {
        impl autosurgeon::Reconcile for $t {
            type Key<'a> = autosurgeon::reconcile::NoKey;
            fn reconcile<R: autosurgeon::Reconciler>(&self, mut r: R) -> Result<(), R::Error> {
                r.str(self.to_string())
            }
        }
    };
}
reconcile_as_string!(ModelId);
reconcile_as_string!(RecordId);

impl FromStr for ModelId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        parse_canonical_uuid(s).map(Self)
    }
}

impl FromStr for RecordId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        parse_canonical_uuid(s).map(Self)
    }
}

/// One Automerge document.
///
/// * `model/<uuid>`: the profile of one model;
/// * `log/<uuid>/<year>`: the activity records of one model in one calendar
///   year, so that no document grows without bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DocId {
    Model(ModelId),
    Log { model: ModelId, year: i32 },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("not a lowercase hyphenated UUID: {0:?}")]
    BadUuid(String),
    #[error("document id must be model/<uuid> or log/<uuid>/<year>, got {0:?}")]
    BadShape(String),
    #[error("year {0} is outside {MIN_YEAR}..={MAX_YEAR}")]
    BadYear(i32),
}

pub(crate) fn parse_canonical_uuid(s: &str) -> Result<Uuid, IdError> {
    let uuid = Uuid::try_parse(s).map_err(|_| IdError::BadUuid(s.to_owned()))?;
    // Only one spelling is accepted so that a document id is a unique key;
    // the nil UUID is what an uninitialised id looks like, never a real one.
    if uuid.is_nil() || uuid.hyphenated().to_string() != s {
        return Err(IdError::BadUuid(s.to_owned()));
    }
    Ok(uuid)
}

impl DocId {
    /// Longest text form (a log id); anything longer is rejected unread.
    pub const MAX_LEN: usize = "log/".len() + 36 + "/2000".len();

    pub fn log(model: ModelId, year: i32) -> Result<Self, IdError> {
        if !(MIN_YEAR..=MAX_YEAR).contains(&year) {
            return Err(IdError::BadYear(year));
        }
        Ok(DocId::Log { model, year })
    }

    pub fn parse(s: &str) -> Result<Self, IdError> {
        if s.len() > Self::MAX_LEN {
            return Err(IdError::BadShape(s.chars().take(Self::MAX_LEN).collect()));
        }
        let mut parts = s.split('/');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some("model"), Some(uuid), None, None) => Ok(DocId::Model(uuid.parse()?)),
            (Some("log"), Some(uuid), Some(year), None) => {
                let digits_only = year.len() == 4 && year.bytes().all(|b| b.is_ascii_digit());
                let year: i32 = match year.parse() {
                    Ok(y) if digits_only => y,
                    _ => return Err(IdError::BadShape(s.to_owned())),
                };
                DocId::log(uuid.parse()?, year)
            }
            _ => Err(IdError::BadShape(s.to_owned())),
        }
    }

    pub fn model(&self) -> ModelId {
        match self {
            DocId::Model(m) | DocId::Log { model: m, .. } => *m,
        }
    }
}

impl fmt::Display for DocId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DocId::Model(m) => write!(f, "model/{m}"),
            DocId::Log { model, year } => write!(f, "log/{model}/{year}"),
        }
    }
}

impl FromStr for DocId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        DocId::parse(s)
    }
}

impl Serialize for DocId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DocId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        DocId::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const U: &str = "0b6f2c1e-8a4d-4c1b-9a57-3f1e2d4c5b6a";

    #[test]
    fn round_trips_both_shapes() {
        for s in [format!("model/{U}"), format!("log/{U}/2025")] {
            assert_eq!(DocId::parse(&s).unwrap().to_string(), s);
        }
    }

    #[test]
    fn rejects_other_spellings() {
        let bad = [
            String::new(),
            format!("model/{}", U.to_uppercase()),
            format!("model/{}", U.replace('-', "")),
            format!("model/{U}/"),
            format!("log/{U}"),
            format!("log/{U}/+2025"),
            format!("log/{U}/1999"),
            format!("log/{U}/2025/x"),
            format!("records/{U}"),
            format!("model/{U}{}", "x".repeat(5000)),
        ];
        for s in bad {
            assert!(DocId::parse(&s).is_err(), "{s:?} should be rejected");
        }
    }
}

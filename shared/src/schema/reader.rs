//! Typed reading of a document object, with the path of whatever is wrong.
//!
//! Hydration is written against this reader rather than autosurgeon's
//! `Hydrate` because a rejected sync must say *where* the document breaks the
//! schema (`<record id>/patrol/members_present: expected integer, found
//! string`) and the phone shows the same words.

use std::borrow::Cow;

use automerge::{ObjId, ObjType, ReadDoc, ScalarValue, Value};

use crate::codes::Code;
use crate::scalars::{ClockTime, Day, Timestamp};

/// What is wrong with a document, and where.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{path}: {problem}")]
pub struct SchemaError {
    /// Slash-separated keys from the document root, e.g. `<record id>/review/state`.
    pub path: String,
    pub problem: Problem,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Problem {
    #[error("missing")]
    Missing,
    #[error("expected {expected}, found {found}")]
    WrongType { expected: &'static str, found: String },
    #[error("{value} is out of range {min}..={max}")]
    OutOfRange { value: String, min: String, max: String },
    #[error("{0}")]
    Invalid(String),
    #[error("schema version {found} is not supported (this build reads up to {supported})")]
    UnsupportedVersion { found: i64, supported: i64 },
}

impl SchemaError {
    pub fn new(path: impl Into<String>, problem: Problem) -> Self {
        SchemaError { path: path.into(), problem }
    }

    pub fn out_of_range<T: ToString>(path: impl Into<String>, value: T, min: T, max: T) -> Self {
        Self::new(path, Problem::OutOfRange { value: value.to_string(), min: min.to_string(), max: max.to_string() })
    }

    pub fn invalid(path: impl Into<String>, why: impl Into<String>) -> Self {
        Self::new(path, Problem::Invalid(why.into()))
    }
}

pub type Result<T> = std::result::Result<T, SchemaError>;

/// 2^53: beyond it a float no longer tells consecutive integers apart
/// (`Number.MAX_SAFE_INTEGER` is 2^53 - 1).
pub const MAX_SAFE_FLOAT: f64 = 9_007_199_254_740_992.0;

/// The integer a float stands for: finite, whole and within ±2^53.
fn integral(f: f64) -> Option<i64> {
    (f.is_finite() && f.fract() == 0.0 && f.abs() <= MAX_SAFE_FLOAT).then_some(f as i64)
}

/// A map object of a document, with its path for error messages.
pub struct MapReader<'a, D> {
    doc: &'a D,
    path: String,
    /// The map's entries, read in one pass: one lookup per field would walk
    /// the document's columns again for every key.
    entries: Vec<(String, Value<'static>, ObjId)>,
}

fn describe(value: &Value<'_>) -> String {
    match value {
        Value::Object(t) => match t {
            ObjType::Map | ObjType::Table => "map".into(),
            ObjType::List => "list".into(),
            ObjType::Text => "text".into(),
        },
        Value::Scalar(s) => match s.as_ref() {
            ScalarValue::Str(_) => "string".into(),
            ScalarValue::Int(_) | ScalarValue::Uint(_) => "integer".into(),
            ScalarValue::F64(_) => "number".into(),
            ScalarValue::Boolean(_) => "boolean".into(),
            ScalarValue::Timestamp(_) => "timestamp".into(),
            ScalarValue::Null => "null".into(),
            ScalarValue::Bytes(_) => "bytes".into(),
            ScalarValue::Counter(_) => "counter".into(),
            ScalarValue::Unknown { .. } => "unknown value".into(),
        },
    }
}

impl<'a, D: ReadDoc> MapReader<'a, D> {
    pub fn root(doc: &'a D) -> Self {
        Self::open(doc, automerge::ROOT, String::new())
    }

    /// The root with only `keys` read, one lookup each: a log's root holds
    /// every record of the year, so reading all of it would cost the whole
    /// log for a check of a few records.
    pub fn root_keys<'k>(doc: &'a D, keys: impl IntoIterator<Item = &'k str>) -> Self {
        let mut entries: Vec<(String, Value<'static>, ObjId)> = keys
            .into_iter()
            .filter_map(|key| match doc.get(automerge::ROOT, key) {
                Ok(Some((value, id))) => Some((key.to_owned(), value.into_owned(), id)),
                _ => None,
            })
            .collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        entries.dedup_by(|a, b| a.0 == b.0);
        MapReader { doc, path: String::new(), entries }
    }

    fn open(doc: &'a D, obj: ObjId, path: String) -> Self {
        let entries = doc
            .map_range(&obj, ..)
            .map(|item| (item.key.to_string(), Value::from(item.value.clone()), item.id()))
            .collect();
        MapReader { doc, path, entries }
    }

    /// This map's own path from the document root.
    pub fn path(&self) -> String {
        self.path.clone()
    }

    pub fn path_of(&self, key: &str) -> String {
        if self.path.is_empty() { key.to_owned() } else { format!("{}/{key}", self.path) }
    }

    fn wrong(&self, key: &str, expected: &'static str, found: &Value<'_>) -> SchemaError {
        SchemaError::new(self.path_of(key), Problem::WrongType { expected, found: describe(found) })
    }

    /// The value under `key`, `None` when absent or null.
    pub fn value(&self, key: &str) -> Result<Option<(Value<'a>, ObjId)>> {
        // `map_range` yields keys in order, so the entries are sorted.
        let Ok(i) = self.entries.binary_search_by(|(k, _, _)| k.as_str().cmp(key)) else {
            return Ok(None);
        };
        match &self.entries[i] {
            (_, Value::Scalar(s), _) if matches!(s.as_ref(), ScalarValue::Null) => Ok(None),
            (_, v, id) => Ok(Some((v.clone(), id.clone()))),
        }
    }

    fn required(&self, key: &str) -> Result<(Value<'a>, ObjId)> {
        self.value(key)?.ok_or_else(|| SchemaError::new(self.path_of(key), Problem::Missing))
    }

    /// Every key of this map, in the document's (sorted) order.
    pub fn keys(&self) -> impl Iterator<Item = String> + '_ {
        self.entries.iter().map(|(k, _, _)| k.clone())
    }

    pub fn map(&self, key: &str) -> Result<MapReader<'a, D>> {
        match self.required(key)? {
            (Value::Object(ObjType::Map), id) => Ok(MapReader::open(self.doc, id, self.path_of(key))),
            (other, _) => Err(self.wrong(key, "map", &other)),
        }
    }

    /// The map under `key`, `None` when absent or null.
    pub fn opt_map(&self, key: &str) -> Result<Option<MapReader<'a, D>>> {
        match self.value(key)? {
            None => Ok(None),
            Some(_) => self.map(key).map(Some),
        }
    }

    /// The maps of a list, in order.
    pub fn list_of_maps(&self, key: &str) -> Result<Vec<MapReader<'a, D>>> {
        let list = match self.required(key)? {
            (Value::Object(ObjType::List), id) => id,
            (other, _) => return Err(self.wrong(key, "list", &other)),
        };
        let path = self.path_of(key);
        (0..self.doc.length(&list))
            .map(|i| match self.doc.get(&list, i) {
                Ok(Some((Value::Object(ObjType::Map), id))) => Ok(MapReader::open(self.doc, id, format!("{path}/{i}"))),
                Ok(Some((other, _))) => Err(SchemaError::new(
                    format!("{path}/{i}"),
                    Problem::WrongType { expected: "map", found: describe(&other) },
                )),
                Ok(None) => Err(SchemaError::new(format!("{path}/{i}"), Problem::Missing)),
                Err(e) => Err(SchemaError::invalid(format!("{path}/{i}"), e.to_string())),
            })
            .collect()
    }

    fn scalar(&self, key: &str) -> Result<Option<Cow<'a, ScalarValue>>> {
        match self.value(key)? {
            None => Ok(None),
            Some((Value::Scalar(s), _)) => Ok(Some(s)),
            Some((other, _)) => Err(self.wrong(key, "a scalar", &other)),
        }
    }

    pub fn opt_str(&self, key: &str) -> Result<Option<String>> {
        match self.value(key)? {
            None => Ok(None),
            Some((Value::Scalar(s), _)) if s.is_str() => Ok(s.as_str().map(str::to_owned)),
            // Clients that model free text as collaborative text (e.g. JS
            // `next` API defaults) still produce a valid document.
            Some((Value::Object(ObjType::Text), id)) => {
                self.doc.text(&id).map(Some).map_err(|e| SchemaError::invalid(self.path_of(key), e.to_string()))
            }
            Some((other, _)) => Err(self.wrong(key, "string", &other)),
        }
    }

    pub fn str(&self, key: &str) -> Result<String> {
        self.opt_str(key)?.ok_or_else(|| SchemaError::new(self.path_of(key), Problem::Missing))
    }

    /// Free text that may be absent (read as empty).
    pub fn text_or_empty(&self, key: &str) -> Result<String> {
        Ok(self.opt_str(key)?.unwrap_or_default())
    }

    /// An integer: an `int` or `uint` scalar, or an `f64` holding a whole
    /// number within ±2^53. Some JavaScript writers (`@automerge/automerge`
    /// 3.2.5 to 3.5.0) store `0` and negative integers inside nested object
    /// literals as floats; every such float stands for exactly one integer.
    pub fn opt_int(&self, key: &str) -> Result<Option<i64>> {
        match self.scalar(key)? {
            None => Ok(None),
            Some(s) => match s.as_ref() {
                ScalarValue::Int(i) => Ok(Some(*i)),
                ScalarValue::Uint(u) => i64::try_from(*u)
                    .map(Some)
                    .map_err(|_| SchemaError::out_of_range(self.path_of(key), *u, 0, i64::MAX as u64)),
                ScalarValue::F64(f) => integral(*f).map(Some).ok_or_else(|| {
                    if f.is_finite() && f.fract() == 0.0 {
                        SchemaError::out_of_range(self.path_of(key), *f, -MAX_SAFE_FLOAT, MAX_SAFE_FLOAT)
                    } else {
                        SchemaError::new(
                            self.path_of(key),
                            Problem::WrongType { expected: "integer", found: format!("number {f}") },
                        )
                    }
                }),
                _ => Err(self.wrong(key, "integer", &Value::Scalar(s))),
            },
        }
    }

    pub fn int(&self, key: &str) -> Result<i64> {
        self.opt_int(key)?.ok_or_else(|| SchemaError::new(self.path_of(key), Problem::Missing))
    }

    /// An integer within `min..=max`, converted to the target type.
    pub fn int_in<T: TryFrom<i64>>(&self, key: &str, min: i64, max: i64) -> Result<T> {
        let v = self.int(key)?;
        if !(min..=max).contains(&v) {
            return Err(SchemaError::out_of_range(self.path_of(key), v, min, max));
        }
        T::try_from(v).map_err(|_| SchemaError::out_of_range(self.path_of(key), v, min, max))
    }

    pub fn opt_int_in<T: TryFrom<i64>>(&self, key: &str, min: i64, max: i64) -> Result<Option<T>> {
        match self.opt_int(key)? {
            None => Ok(None),
            Some(_) => self.int_in(key, min, max).map(Some),
        }
    }

    /// A number (integer or float) within `0..=max`; JavaScript clients
    /// write whole numbers as integers.
    pub fn number_in(&self, key: &str, max: f64) -> Result<f64> {
        let Some(s) = self.scalar(key)? else {
            return Ok(0.0);
        };
        let v = match s.as_ref() {
            ScalarValue::F64(f) => *f,
            ScalarValue::Int(i) => *i as f64,
            ScalarValue::Uint(u) => *u as f64,
            _ => return Err(self.wrong(key, "number", &Value::Scalar(s))),
        };
        if !v.is_finite() || !(0.0..=max).contains(&v) {
            return Err(SchemaError::out_of_range(self.path_of(key), v, 0.0, max));
        }
        Ok(v)
    }

    /// A required number (integer or float) within `min..=max`.
    pub fn float_in(&self, key: &str, min: f64, max: f64) -> Result<f64> {
        let Some(s) = self.scalar(key)? else {
            return Err(SchemaError::new(self.path_of(key), Problem::Missing));
        };
        let v = match s.as_ref() {
            ScalarValue::F64(f) => *f,
            ScalarValue::Int(i) => *i as f64,
            ScalarValue::Uint(u) => *u as f64,
            _ => return Err(self.wrong(key, "number", &Value::Scalar(s))),
        };
        if !v.is_finite() || !(min..=max).contains(&v) {
            return Err(SchemaError::out_of_range(self.path_of(key), v, min, max));
        }
        Ok(v)
    }

    pub fn bool_or_false(&self, key: &str) -> Result<bool> {
        match self.scalar(key)? {
            None => Ok(false),
            Some(s) => match s.as_ref() {
                ScalarValue::Boolean(b) => Ok(*b),
                _ => Err(self.wrong(key, "boolean", &Value::Scalar(s))),
            },
        }
    }

    pub fn opt_timestamp(&self, key: &str) -> Result<Option<Timestamp>> {
        match self.scalar(key)? {
            None => Ok(None),
            Some(s) => match s.as_ref() {
                ScalarValue::Timestamp(t) => Ok(Some(Timestamp(*t))),
                _ => Err(self.wrong(key, "timestamp", &Value::Scalar(s))),
            },
        }
    }

    pub fn timestamp(&self, key: &str) -> Result<Timestamp> {
        self.opt_timestamp(key)?.ok_or_else(|| SchemaError::new(self.path_of(key), Problem::Missing))
    }

    pub fn day(&self, key: &str) -> Result<Day> {
        let s = self.str(key)?;
        Day::parse(&s).ok_or_else(|| SchemaError::invalid(self.path_of(key), format!("{s:?} is not a YYYY-MM-DD date")))
    }

    pub fn clock(&self, key: &str) -> Result<ClockTime> {
        let s = self.str(key)?;
        ClockTime::parse(&s)
            .ok_or_else(|| SchemaError::invalid(self.path_of(key), format!("{s:?} is not an HH:MM time")))
    }

    pub fn code<T: Code>(&self, key: &str) -> Result<T> {
        let s = self.str(key)?;
        T::from_code(&s).ok_or_else(|| {
            let allowed: Vec<&str> = T::ALL.iter().map(|c| c.code()).collect();
            SchemaError::invalid(self.path_of(key), format!("{s:?} is not one of {}", allowed.join(", ")))
        })
    }

    /// Text of at most `max_chars` characters; `required` text must not be blank.
    pub fn text(&self, key: &str, max_chars: usize, required: bool) -> Result<String> {
        let s = if required { self.str(key)? } else { self.text_or_empty(key)? };
        if required && s.trim().is_empty() {
            return Err(SchemaError::invalid(self.path_of(key), "must not be empty"));
        }
        let n = s.chars().count();
        if n > max_chars {
            return Err(SchemaError::invalid(
                self.path_of(key),
                format!("{n} characters, at most {max_chars} allowed"),
            ));
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use automerge::transaction::Transactable;
    use automerge::{AutoCommit, ROOT};

    use super::*;

    fn doc_with(value: impl Into<ScalarValue>) -> AutoCommit {
        let mut doc = AutoCommit::new();
        doc.put(ROOT, "n", value.into()).unwrap();
        doc
    }

    #[test]
    fn whole_floats_within_2_pow_53_are_integers() {
        for (f, i) in
            [(0.0, 0), (-0.0, 0), (-7.0, -7), (42.0, 42), (MAX_SAFE_FLOAT, 1 << 53), (-MAX_SAFE_FLOAT, -(1 << 53))]
        {
            let doc = doc_with(f);
            assert_eq!(MapReader::root(&doc).int("n").unwrap(), i, "{f}");
        }
        let doc = doc_with(0.0);
        assert_eq!(MapReader::root(&doc).int_in::<u32>("n", 0, 10).unwrap(), 0);
    }

    #[test]
    fn other_floats_are_not() {
        for f in [0.5, -1.5, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let doc = doc_with(f);
            let err = MapReader::root(&doc).int("n").unwrap_err();
            assert!(matches!(err.problem, Problem::WrongType { expected: "integer", .. }), "{f}: {err}");
        }
        for f in [MAX_SAFE_FLOAT * 2.0, -MAX_SAFE_FLOAT * 2.0, 1e300] {
            let doc = doc_with(f);
            let err = MapReader::root(&doc).int("n").unwrap_err();
            assert!(matches!(err.problem, Problem::OutOfRange { .. }), "{f}: {err}");
        }
        // Within ±2^53 but outside the target type or the field's range.
        let doc = doc_with(-1.0);
        assert!(matches!(
            MapReader::root(&doc).int_in::<u32>("n", 0, 10).unwrap_err().problem,
            Problem::OutOfRange { .. }
        ));
        let doc = doc_with(5e9);
        assert!(MapReader::root(&doc).int_in::<i32>("n", 0, i64::MAX).is_err());
    }

    #[test]
    fn counters_and_strings_are_still_refused() {
        let doc = doc_with(ScalarValue::counter(3));
        assert!(MapReader::root(&doc).int("n").is_err());
        let doc = doc_with("3");
        assert!(MapReader::root(&doc).int("n").is_err());
    }
}

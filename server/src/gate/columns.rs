//! The op columns of a change, counted without being expanded.
//!
//! A change stores its operations column by column, each column compressed
//! with run-length encoding: a run of a million equal values costs a few
//! bytes. Automerge expands runs while applying a change, so a run length
//! chosen by a client is work chosen by the client. This module walks each
//! column's runs and adds up the rows they stand for, stopping as soon as a
//! column passes the limit, so a change's real size is known before
//! Automerge sees it.
//!
//! A column's spec is `id << 4 | deflate << 3 | type`. Changes written by
//! Automerge never deflate their columns (only whole chunks), so a deflated
//! column is refused rather than inflated.

use super::bytes::{ReadError, Reader};

const DEFLATE_BIT: u32 = 0b1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ColumnType {
    Group,
    Actor,
    Integer,
    DeltaInteger,
    Boolean,
    String,
    ValueMetadata,
    Value,
}

impl ColumnType {
    fn of(spec: u32) -> Self {
        match spec & 0b111 {
            0 => ColumnType::Group,
            1 => ColumnType::Actor,
            2 => ColumnType::Integer,
            3 => ColumnType::DeltaInteger,
            4 => ColumnType::Boolean,
            5 => ColumnType::String,
            6 => ColumnType::ValueMetadata,
            _ => ColumnType::Value,
        }
    }
}

/// The column layout of a change: `(spec, length)` pairs, in order.
pub struct ColumnLayout {
    pub columns: Vec<(u32, usize)>,
}

impl ColumnLayout {
    pub fn parse(r: &mut Reader<'_>, max_columns: usize, max_bytes: usize) -> Result<Self, ReadError> {
        let n = r.count("number of op columns", max_columns)?;
        let mut columns = Vec::with_capacity(n);
        let mut total = 0usize;
        let mut previous: Option<u32> = None;
        for _ in 0..n {
            let spec = r.uleb("column spec")?;
            let Ok(spec) = u32::try_from(spec) else {
                return r.fail(format!("column spec {spec} does not fit 32 bits"));
            };
            if spec & DEFLATE_BIT != 0 {
                return r.fail("a deflated column inside a change (Automerge never writes one)");
            }
            if previous.is_some_and(|p| p >= spec) {
                return r.fail("op columns out of order or repeated");
            }
            previous = Some(spec);
            let len = r.count("column length", max_bytes)?;
            total = total.saturating_add(len);
            if total > max_bytes {
                return r.fail(format!("op columns longer than the {max_bytes} bytes of the change"));
            }
            columns.push((spec, len));
        }
        Ok(ColumnLayout { columns })
    }

    pub fn total_len(&self) -> usize {
        self.columns.iter().map(|(_, len)| len).sum()
    }

    /// The number of operations: the longest column, each column checked
    /// against `max_rows` (and each group's counts too, since Automerge
    /// reads that many entries from the grouped columns).
    pub fn count_rows(&self, data: &[u8], max_rows: u64) -> Result<u64, ReadError> {
        let mut at = 0usize;
        let mut most = 0u64;
        for &(spec, len) in &self.columns {
            let bytes = &data[at..at + len];
            let rows = rows_of(ColumnType::of(spec), bytes, max_rows)
                .map_err(|e| ReadError { at: at + e.at, what: format!("column {spec}: {}", e.what) })?;
            most = most.max(rows);
            at += len;
        }
        Ok(most)
    }
}

fn rows_of(kind: ColumnType, bytes: &[u8], max_rows: u64) -> Result<u64, ReadError> {
    let mut r = Reader::new(bytes);
    let mut rows = 0u64;
    let add = |rows: &mut u64, n: u64, r: &Reader<'_>| -> Result<(), ReadError> {
        *rows = rows.saturating_add(n);
        if *rows > max_rows { r.fail(format!("more than {max_rows} rows")) } else { Ok(()) }
    };
    match kind {
        // Raw bytes, addressed by the value metadata column.
        ColumnType::Value => return Ok(0),
        // Alternating runs of false and true.
        ColumnType::Boolean => {
            while !r.is_empty() {
                let n = r.uleb("boolean run")?;
                add(&mut rows, n, &r)?;
            }
        }
        _ => {
            while !r.is_empty() {
                let run = r.sleb("run length")?;
                if run > 0 {
                    add(&mut rows, run.unsigned_abs(), &r)?;
                    value(kind, &mut r, max_rows)?;
                } else if run < 0 {
                    let literals = run.unsigned_abs();
                    add(&mut rows, literals, &r)?;
                    for _ in 0..literals {
                        value(kind, &mut r, max_rows)?;
                    }
                } else {
                    let nulls = r.uleb("null run")?;
                    add(&mut rows, nulls, &r)?;
                }
            }
        }
    }
    Ok(rows)
}

fn value(kind: ColumnType, r: &mut Reader<'_>, max_rows: u64) -> Result<(), ReadError> {
    match kind {
        ColumnType::DeltaInteger => r.sleb("delta").map(drop),
        ColumnType::String => {
            let s = r.prefixed("string", usize::MAX)?;
            match std::str::from_utf8(s) {
                Ok(_) => Ok(()),
                Err(_) => r.fail("string column value is not UTF-8"),
            }
        }
        ColumnType::Group => {
            // The number of entries in a group (e.g. an op's predecessors).
            let n = r.uleb("group count")?;
            if n > max_rows { r.fail(format!("a group of {n} entries")) } else { Ok(()) }
        }
        _ => r.uleb("value").map(drop),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::bytes::put_uleb;

    fn sleb(out: &mut Vec<u8>, n: i64) {
        let _ = leb128::write::signed(out, n);
    }

    #[test]
    fn runs_literals_and_nulls_add_up() {
        let mut col = Vec::new();
        sleb(&mut col, 3); // three times the value 7
        put_uleb(&mut col, 7);
        sleb(&mut col, -2); // two literals
        put_uleb(&mut col, 1);
        put_uleb(&mut col, 2);
        sleb(&mut col, 0); // four nulls
        put_uleb(&mut col, 4);
        assert_eq!(rows_of(ColumnType::Integer, &col, 100), Ok(9));
        let mut bools = Vec::new();
        put_uleb(&mut bools, 2);
        put_uleb(&mut bools, 5);
        assert_eq!(rows_of(ColumnType::Boolean, &bools, 100), Ok(7));
    }

    #[test]
    fn a_huge_run_is_refused_without_being_walked() {
        let mut col = Vec::new();
        sleb(&mut col, i64::MAX);
        put_uleb(&mut col, 1);
        assert!(rows_of(ColumnType::Integer, &col, 100_000).is_err());
        let mut nulls = Vec::new();
        sleb(&mut nulls, 0);
        put_uleb(&mut nulls, u64::MAX);
        assert!(rows_of(ColumnType::Actor, &nulls, 100_000).is_err());
        let mut bools = Vec::new();
        put_uleb(&mut bools, 1 << 50);
        assert!(rows_of(ColumnType::Boolean, &bools, 100_000).is_err());
        let mut group = Vec::new();
        sleb(&mut group, 1);
        put_uleb(&mut group, 1 << 40);
        assert!(rows_of(ColumnType::Group, &group, 100_000).is_err(), "a group count is a row count too");
    }

    #[test]
    fn a_truncated_column_is_refused() {
        let mut col = Vec::new();
        sleb(&mut col, -3);
        put_uleb(&mut col, 1);
        assert!(rows_of(ColumnType::Integer, &col, 100).is_err());
    }

    #[test]
    fn deflated_or_unordered_columns_are_refused() {
        let mut meta = Vec::new();
        put_uleb(&mut meta, 1);
        put_uleb(&mut meta, (4 << 4) | DEFLATE_BIT as u64 | 2);
        put_uleb(&mut meta, 0);
        assert!(ColumnLayout::parse(&mut Reader::new(&meta), 64, 100).is_err());
        let mut meta = Vec::new();
        put_uleb(&mut meta, 2);
        for spec in [0x42u64, 0x41] {
            put_uleb(&mut meta, spec);
            put_uleb(&mut meta, 0);
        }
        assert!(ColumnLayout::parse(&mut Reader::new(&meta), 64, 100).is_err());
    }
}

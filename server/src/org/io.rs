//! Import and export of an [`OrgTree`]: one JSON document
//! (`{"units": [...], "successions": [...]}`) or two CSV tables
//! (`code,name,level,parent,valid_from,valid_to` and `old,new,effective`).
//!
//! Administrators keep the tree in spreadsheets, so CSV is the format that
//! matters: UTF-8 (an Excel byte-order mark is accepted), names kept byte for
//! byte (no trimming, no Unicode normalisation), dates `YYYY-MM-DD`, an empty
//! field for "none". Parsing is the `csv` crate's; every import ends with the
//! same validation as [`OrgTree::new`], and every error says which CSV line
//! or JSON entry it is about.

use std::fmt;
use std::io::{Read, Write};

use serde::{Deserialize, Serialize};
use time::Date;
use time::macros::format_description;

use super::tree::Entry;
use super::{OrgError, OrgTree, Succession, Unit};

pub const UNITS_CSV_HEADER: [&str; 6] = ["code", "name", "level", "parent", "valid_from", "valid_to"];
pub const SUCCESSIONS_CSV_HEADER: [&str; 3] = ["old", "new", "effective"];

/// The JSON form of a tree.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrgDocument {
    pub units: Vec<Unit>,
    #[serde(default)]
    pub successions: Vec<Succession>,
}

/// The two tables a tree is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Units,
    Successions,
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Table::Units => "units",
            Table::Successions => "successions",
        })
    }
}

/// Where in the imported data an entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// 1-based line of the CSV file (the header is line 1).
    CsvLine { table: Table, line: u64 },
    /// 0-based index into the JSON document's `units` or `successions`.
    JsonEntry { table: Table, index: usize },
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::CsvLine { table, line } => write!(f, "{table} CSV line {line}"),
            Location::JsonEntry { table, index } => write!(f, "JSON {table}[{index}]"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{table} CSV: the first line must be the header `{expected}`, found `{found}`")]
    CsvHeader { table: Table, expected: String, found: String },
    #[error("{table} CSV line {line}: {message}")]
    CsvRecord { table: Table, line: u64, message: String },
    #[error("{table} CSV: {source}")]
    CsvRead { table: Table, source: csv::Error },
    #[error("JSON document: {0}")]
    Json(#[from] serde_json::Error),
    /// Well-formed, but not a valid tree.
    #[error("{at}: {error}")]
    Invalid { at: Location, error: OrgError },
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("writing CSV: {0}")]
    Csv(#[from] csv::Error),
    #[error("writing CSV: {0}")]
    Io(#[from] std::io::Error),
    #[error("writing JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// The whole tree as one pretty-printed JSON document.
pub fn to_json(tree: &OrgTree) -> Result<String, ExportError> {
    #[derive(Serialize)]
    struct DocumentRef<'a> {
        units: Vec<&'a Unit>,
        successions: Vec<&'a Succession>,
    }
    let document = DocumentRef { units: tree.units().collect(), successions: tree.successions().collect() };
    Ok(serde_json::to_string_pretty(&document)?)
}

/// Parses and validates a JSON document.
pub fn from_json(text: &str) -> Result<OrgTree, ImportError> {
    let OrgDocument { units, successions } = serde_json::from_str(text)?;
    OrgTree::build(units, successions).map_err(|(entry, error)| {
        let at = match entry {
            Entry::Unit(index) => Location::JsonEntry { table: Table::Units, index },
            Entry::Succession(index) => Location::JsonEntry { table: Table::Successions, index },
        };
        ImportError::Invalid { at, error }
    })
}

/// Writes the units table, header first (also when there are no units).
pub fn units_to_csv<W: Write>(tree: &OrgTree, out: W) -> Result<(), ExportError> {
    write_csv(&UNITS_CSV_HEADER, tree.units(), out)
}

/// Writes the successions table, header first.
pub fn successions_to_csv<W: Write>(tree: &OrgTree, out: W) -> Result<(), ExportError> {
    write_csv(&SUCCESSIONS_CSV_HEADER, tree.successions(), out)
}

/// Parses a units table. This only checks each line on its own; use
/// [`from_csv`] for a validated tree.
pub fn units_from_csv<R: Read>(input: R) -> Result<Vec<Unit>, ImportError> {
    Ok(read_csv(Table::Units, &UNITS_CSV_HEADER, unit_from_record, input)?.into_iter().map(|(_, u)| u).collect())
}

/// Parses a successions table. This only checks each line on its own; use
/// [`from_csv`] for a validated tree.
pub fn successions_from_csv<R: Read>(input: R) -> Result<Vec<Succession>, ImportError> {
    let rows = read_csv(Table::Successions, &SUCCESSIONS_CSV_HEADER, succession_from_record, input)?;
    Ok(rows.into_iter().map(|(_, s)| s).collect())
}

/// Parses both tables and validates the tree they make.
pub fn from_csv<U: Read, S: Read>(units: U, successions: S) -> Result<OrgTree, ImportError> {
    let (unit_lines, units): (Vec<u64>, Vec<Unit>) =
        read_csv(Table::Units, &UNITS_CSV_HEADER, unit_from_record, units)?.into_iter().unzip();
    let (succession_lines, successions): (Vec<u64>, Vec<Succession>) =
        read_csv(Table::Successions, &SUCCESSIONS_CSV_HEADER, succession_from_record, successions)?.into_iter().unzip();
    OrgTree::build(units, successions).map_err(|(entry, error)| {
        let (table, lines, index) = match entry {
            Entry::Unit(index) => (Table::Units, &unit_lines, index),
            Entry::Succession(index) => (Table::Successions, &succession_lines, index),
        };
        let line = lines.get(index).copied().unwrap_or_default();
        ImportError::Invalid { at: Location::CsvLine { table, line }, error }
    })
}

fn write_csv<'a, T: Serialize + 'a, W: Write>(
    header: &[&str],
    rows: impl Iterator<Item = &'a T>,
    out: W,
) -> Result<(), ExportError> {
    // The header is written by hand: serde would only write it with the
    // first row, and an empty table still needs one.
    let mut writer = csv::WriterBuilder::new().has_headers(false).from_writer(out);
    writer.write_record(header)?;
    for row in rows {
        writer.serialize(row)?;
    }
    writer.flush()?;
    Ok(())
}

/// Reads a table whose header must be exactly `header`: a misspelt or
/// missing column would otherwise surface as a confusing error on every
/// line, or an extra one be silently dropped. Fields are converted by hand
/// rather than through serde so that an error can name its column (serde's
/// messages from inside a field do not).
fn read_csv<T, R: Read>(
    table: Table,
    header: &[&str],
    convert: fn(&csv::StringRecord) -> Result<T, String>,
    mut input: R,
) -> Result<Vec<(u64, T)>, ImportError> {
    // Read whole (a tree is a few thousand lines at most) so that lines can
    // be counted exactly; see `Lines`.
    let mut data = Vec::new();
    input.read_to_end(&mut data).map_err(|error| ImportError::CsvRead { table, source: error.into() })?;
    let mut lines = Lines { data: &data, offset: 0, line: 1 };
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::Headers).from_reader(&data[..]);
    let found = reader.headers().map_err(|error| record_error(table, &mut lines, error))?;
    if found.iter().ne(header.iter().copied()) {
        let (expected, found) = (header.join(","), found.iter().collect::<Vec<_>>().join(","));
        return Err(ImportError::CsvHeader { table, expected, found });
    }
    let mut rows = Vec::new();
    let mut record = csv::StringRecord::new();
    while reader.read_record(&mut record).map_err(|error| record_error(table, &mut lines, error))? {
        let line = lines.at(record.position());
        let row = convert(&record).map_err(|message| ImportError::CsvRecord { table, line, message })?;
        rows.push((line, row));
    }
    Ok(rows)
}

/// Line numbers as a person counts them in an editor. The `csv` reader's own
/// position of a record is where it started looking for it, which is before
/// any blank lines it skipped; this moves past those.
struct Lines<'a> {
    data: &'a [u8],
    /// A byte offset, and the 1-based line it is on.
    offset: usize,
    line: u64,
}

impl Lines<'_> {
    /// The line of the first record that starts at or after `position`;
    /// positions must come in increasing order, as records do.
    fn at(&mut self, position: Option<&csv::Position>) -> u64 {
        let Some(position) = position else { return self.line };
        let mut start = usize::try_from(position.byte()).map_or(self.data.len(), |b| b.min(self.data.len()));
        while matches!(self.data.get(start), Some(b'\r' | b'\n')) {
            start += 1;
        }
        if start > self.offset {
            let newlines = self.data[self.offset..start].iter().filter(|&&b| b == b'\n').count();
            self.line += u64::try_from(newlines).unwrap_or(u64::MAX);
            self.offset = start;
        }
        self.line
    }
}

/// Turns a `csv` error into one that names the line.
fn record_error(table: Table, lines: &mut Lines<'_>, error: csv::Error) -> ImportError {
    let line = lines.at(error.position());
    let message = match error.kind() {
        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
            format!("expected {expected_len} fields, found {len}")
        }
        csv::ErrorKind::Utf8 { .. } => "not valid UTF-8: save the file as \"CSV UTF-8\"".to_owned(),
        _ => return ImportError::CsvRead { table, source: error },
    };
    ImportError::CsvRecord { table, line, message }
}

// The reader has checked that every record has as many fields as the header,
// so the field indexes below are in range.

fn unit_from_record(record: &csv::StringRecord) -> Result<Unit, String> {
    let field = |i: usize| record.get(i).unwrap_or_default();
    Ok(Unit {
        code: field(0).to_owned(),
        name: field(1).to_owned(),
        level: field(2).parse().map_err(|error| format!("column level: {error}"))?,
        parent: Some(field(3)).filter(|parent| !parent.is_empty()).map(str::to_owned),
        valid_from: parse_date("valid_from", field(4))?,
        valid_to: match field(5) {
            "" => None,
            text => Some(parse_date("valid_to", text)?),
        },
    })
}

fn succession_from_record(record: &csv::StringRecord) -> Result<Succession, String> {
    let field = |i: usize| record.get(i).unwrap_or_default();
    Ok(Succession { old: field(0).to_owned(), new: field(1).to_owned(), effective: parse_date("effective", field(2))? })
}

fn parse_date(column: &str, text: &str) -> Result<Date, String> {
    Date::parse(text, format_description!("[year]-[month]-[day]"))
        .map_err(|_| format!("column {column}: {text:?} is not a date written YYYY-MM-DD, e.g. 2025-07-01"))
}

#[cfg(test)]
mod tests {
    use time::macros::date;

    use super::*;
    use crate::org::{Level, demo};

    fn csv_pair(tree: &OrgTree) -> (String, String) {
        let (mut units, mut successions) = (Vec::new(), Vec::new());
        units_to_csv(tree, &mut units).unwrap();
        successions_to_csv(tree, &mut successions).unwrap();
        (String::from_utf8(units).unwrap(), String::from_utf8(successions).unwrap())
    }

    fn assert_same(a: &OrgTree, b: &OrgTree) {
        assert_eq!(a.units().collect::<Vec<_>>(), b.units().collect::<Vec<_>>());
        assert_eq!(a.successions().collect::<Vec<_>>(), b.successions().collect::<Vec<_>>());
    }

    const UNITS: &str = "code,name,level,parent,valid_from,valid_to
QNA,Tỉnh Quảng Nam,province,,2009-01-01,
QNA.TK,Thành phố Tam Kỳ,district,QNA,2009-01-01,2025-06-30
QNA.TK.TT,Xã Tam Thăng,commune,QNA.TK,2009-01-01,2025-06-30
QNA.X.TT,Xã Tam Thăng (mới),commune,QNA,2025-07-01,
";
    const SUCCESSIONS: &str = "old,new,effective\nQNA.TK.TT,QNA.X.TT,2025-07-01\n";

    #[test]
    fn json_round_trip_keeps_diacritics() {
        let tree = demo();
        let json = to_json(&tree).unwrap();
        assert!(json.contains("\"name\": \"Xã Tam Thăng\""), "{json}");
        assert!(json.contains("\"valid_to\": \"2025-06-30\""), "{json}");
        assert!(json.contains("\"level\": \"village\""), "{json}");
        assert_same(&tree, &from_json(&json).unwrap());
    }

    #[test]
    fn csv_round_trip_keeps_diacritics() {
        let tree = demo();
        let (units, successions) = csv_pair(&tree);
        assert!(units.starts_with("code,name,level,parent,valid_from,valid_to\n"), "{units}");
        assert!(units.contains("\nQNA,Tỉnh Quảng Nam,province,,2009-01-01,\n"), "{units}");
        assert!(units.contains("\nQNA.TK.TT.KD,Thôn Kim Đới,village,QNA.TK.TT,2009-01-01,2025-06-30\n"), "{units}");
        assert!(successions.starts_with("old,new,effective\nQNA.BTM.TK,QNA.X.TK,2025-07-01\n"), "{successions}");
        let back = from_csv(units.as_bytes(), successions.as_bytes()).unwrap();
        assert_same(&tree, &back);
    }

    #[test]
    fn names_round_trip_byte_for_byte() {
        // Decomposed (NFD) "Điện Phước", quotes, a comma and outer spaces: all
        // kept, since a renamed unit would no longer match its paper records.
        let awkward = " Xã Đie\u{0323}\u{0302}n Phu\u{031b}o\u{031b}\u{0301}c, \"cũ\" ";
        let mut units = units_from_csv(UNITS.as_bytes()).unwrap();
        units[2].name = awkward.into();
        let tree = OrgTree::new(units, successions_from_csv(SUCCESSIONS.as_bytes()).unwrap()).unwrap();
        let (units_csv, successions_csv) = csv_pair(&tree);
        let back = from_csv(units_csv.as_bytes(), successions_csv.as_bytes()).unwrap();
        assert_eq!(back.get("QNA.TK.TT").unwrap().name.as_bytes(), awkward.as_bytes());
        let back = from_json(&to_json(&tree).unwrap()).unwrap();
        assert_eq!(back.get("QNA.TK.TT").unwrap().name.as_bytes(), awkward.as_bytes());
    }

    #[test]
    fn empty_fields_are_none() {
        let units = units_from_csv(UNITS.as_bytes()).unwrap();
        assert_eq!(units[0].parent, None);
        assert_eq!(units[0].valid_to, None);
        assert_eq!(units[1].parent.as_deref(), Some("QNA"));
        assert_eq!(units[1].valid_to, Some(date!(2025 - 06 - 30)));
        assert_eq!(units[3].level, Level::Commune);
        let successions = successions_from_csv(SUCCESSIONS.as_bytes()).unwrap();
        assert_eq!(
            successions,
            [Succession { old: "QNA.TK.TT".into(), new: "QNA.X.TT".into(), effective: date!(2025 - 07 - 01) }]
        );
    }

    #[test]
    fn accepts_an_excel_byte_order_mark_and_blank_lines() {
        let with_bom = format!("\u{feff}{UNITS}\n");
        let tree = from_csv(with_bom.as_bytes(), SUCCESSIONS.as_bytes()).unwrap();
        assert_eq!(tree.units().len(), 4);
    }

    #[test]
    fn empty_tables_still_have_headers() {
        let tree = OrgTree::new(Vec::new(), Vec::new()).unwrap();
        assert_eq!(csv_pair(&tree), (format!("{}\n", UNITS_CSV_HEADER.join(",")), "old,new,effective\n".into()));
    }

    #[test]
    fn csv_errors_name_the_line() {
        let err = |units: &str| from_csv(units.as_bytes(), SUCCESSIONS.as_bytes()).unwrap_err().to_string();

        let bad_date = UNITS.replace(
            "QNA.TK.TT,Xã Tam Thăng,commune,QNA.TK,2009-01-01",
            "QNA.TK.TT,Xã Tam Thăng,commune,QNA.TK,01/01/2009",
        );
        let message = err(&bad_date);
        assert_eq!(
            message,
            "units CSV line 4: column valid_from: \"01/01/2009\" is not a date written YYYY-MM-DD, e.g. 2025-07-01"
        );

        let message = err(&UNITS.replace("district", "huyen"));
        assert!(message.starts_with("units CSV line 3: column level: unknown level \"huyen\""), "{message}");
        let message = err(&UNITS.replace("2025-06-30\nQNA.TK.TT", "2025-02-30\nQNA.TK.TT"));
        assert!(message.starts_with("units CSV line 3: column valid_to: \"2025-02-30\""), "{message}");

        let message = err(&UNITS.replace("Thành phố Tam Kỳ,district", "Thành phố Tam Kỳ,district,extra"));
        assert_eq!(message, "units CSV line 3: expected 6 fields, found 7");

        let message = err(&UNITS.replace(",QNA.TK,2009", ",QNA.TX,2009"));
        assert_eq!(message, "units CSV line 4: unit QNA.TK.TT: parent QNA.TX does not exist");

        let message = err(&UNITS.replace("valid_to", "valid_until"));
        assert!(message.starts_with("units CSV: the first line must be the header `code,name"), "{message}");
        assert!(matches!(
            from_csv(&b""[..], SUCCESSIONS.as_bytes()),
            Err(ImportError::CsvHeader { table: Table::Units, .. })
        ));

        let mut not_utf8 = UNITS.as_bytes().to_vec();
        not_utf8.extend_from_slice(b"QNA.BDV,Ban D\xe2n v\xe2n,agency,QNA,2009-01-01,\n");
        let message = from_csv(&not_utf8[..], SUCCESSIONS.as_bytes()).unwrap_err().to_string();
        assert!(message.starts_with("units CSV line 6: not valid UTF-8"), "{message}");

        // Lines as an editor counts them: blank lines, CRLF, a name over two lines.
        let units = UNITS.replace('\n', "\r\n").replace("Thành phố Tam Kỳ", "\"Thành phố\r\nTam Kỳ\"");
        let units = units.replace("QNA.TK.TT,", "\r\n\r\nQNA.TK.TT,").replace(",QNA.TK,2009", ",QNA.TX,2009");
        let message = err(&units);
        assert_eq!(message, "units CSV line 7: unit QNA.TK.TT: parent QNA.TX does not exist");
        let message = err(UNITS.trim_end().replace(",QNA,2025-07-01,", ",QNA,2025-07-01,,").as_str());
        assert_eq!(message, "units CSV line 5: expected 6 fields, found 7");

        let successions = "old,new,effective\n\nQNA.TK.TT,QNA.X.TT,2025-06-30\n";
        let message = from_csv(UNITS.as_bytes(), successions.as_bytes()).unwrap_err().to_string();
        assert!(
            message.starts_with("successions CSV line 3: succession QNA.TK.TT -> QNA.X.TT: effective"),
            "{message}"
        );
    }

    #[test]
    fn json_errors_name_the_entry() {
        let tree = from_csv(UNITS.as_bytes(), SUCCESSIONS.as_bytes()).unwrap();
        let mut document: serde_json::Value = serde_json::from_str(&to_json(&tree).unwrap()).unwrap();
        document["units"][2]["name"] = "".into();
        let err = from_json(&document.to_string()).unwrap_err();
        assert_eq!(err.to_string(), "JSON units[2]: unit QNA.TK.TT: the name is empty");

        document["units"][2]["name"] = "Xã Tam Thăng".into();
        document["successions"][0]["new"] = "QNA.X.TX".into();
        let err = from_json(&document.to_string()).unwrap_err();
        assert!(matches!(
            err,
            ImportError::Invalid { at: Location::JsonEntry { table: Table::Successions, index: 0 }, .. }
        ));

        let misspelt = r#"{"units": [{"code": "QNA", "name": "Quảng Nam", "level": "province",
            "valid_from": "2009-01-01", "valid_form": "2010-01-01"}]}"#;
        let err = from_json(misspelt).unwrap_err();
        assert!(err.to_string().contains("unknown field `valid_form`"), "{err}");
        let err = from_json(
            r#"{"units": [{"code": "QNA", "name": "Quảng Nam", "level": "province", "valid_from": "2009-1-1"}]}"#,
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("JSON document: "), "{err}");
        assert!(err.to_string().contains("line 1"), "{err}");

        // Optional fields may be left out; successions too.
        let tree = from_json(
            r#"{"units": [{"code": "QNA", "name": "Quảng Nam", "level": "province", "valid_from": "2009-01-01"}]}"#,
        )
        .unwrap();
        assert_eq!(tree.get("QNA").unwrap().valid_to, None);
    }
}

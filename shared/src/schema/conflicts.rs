//! Fields of a record that two devices changed concurrently.
//!
//! Automerge keeps every concurrent value of a key and picks one
//! deterministically; nothing is lost, but a reviewer should see that two
//! phones disagreed, and on what. A conflict lasts until someone writes the
//! field again.

use automerge::{ObjId, ObjType, ReadDoc, Value};
use serde::{Deserialize, Serialize};

/// One field with more than one concurrent value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FieldConflict {
    /// Path inside the record, e.g. `patrol/members_present`.
    pub path: String,
    /// Every concurrent value, the one Automerge shows first.
    pub values: Vec<String>,
}

fn show(v: &Value<'_>) -> String {
    match v {
        Value::Scalar(s) => match s.as_ref() {
            automerge::ScalarValue::Str(t) => t.to_string(),
            other => other.to_string(),
        },
        Value::Object(t) => format!("({t})"),
    }
}

fn walk<D: ReadDoc>(doc: &D, obj: &ObjId, path: &str, out: &mut Vec<FieldConflict>) {
    for key in doc.keys(obj) {
        let here = if path.is_empty() { key.clone() } else { format!("{path}/{key}") };
        let Ok(values) = doc.get_all(obj, key.as_str()) else { continue };
        if values.len() > 1 {
            let (winner, _) = match doc.get(obj, key.as_str()) {
                Ok(Some(w)) => w,
                _ => continue,
            };
            let first = show(&winner);
            let others: Vec<String> = values.iter().map(|(v, _)| show(v)).filter(|v| *v != first).collect();
            let shown: Vec<String> = std::iter::once(first).chain(others).collect();
            out.push(FieldConflict { path: here.clone(), values: shown });
        }
        if let Some((Value::Object(ObjType::Map), child)) = values.last().cloned() {
            walk(doc, &child, &here, out);
        }
    }
}

/// The conflicting fields of the record stored under `record_key` at the root.
pub fn record_conflicts<D: ReadDoc>(doc: &D, record_key: &str) -> Vec<FieldConflict> {
    let mut out = Vec::new();
    if let Ok(Some((Value::Object(ObjType::Map), record))) = doc.get(automerge::ROOT, record_key) {
        walk(doc, &record, "", &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{ModelId, RecordId};
    use crate::{schema, testdata};

    #[test]
    fn concurrent_edits_of_one_field_are_reported_with_both_values() {
        let model = ModelId::new_random();
        let mut a = automerge::AutoCommit::new();
        schema::init_log(&mut a, model, 2025).unwrap();
        let r = testdata::meeting(RecordId::new_random(), "2025-01-01", 10);
        schema::put_record(&mut a, &r).unwrap();
        a.commit();
        let mut b = a.fork();
        let (mut ra, mut rb) = (r.clone(), r.clone());
        ra.note = "30 người".into();
        rb.note = "35 người".into();
        schema::put_record(&mut a, &ra).unwrap();
        schema::put_record(&mut b, &rb).unwrap();
        assert!(record_conflicts(&a, &r.id.to_string()).is_empty());
        a.merge(&mut b).unwrap();
        let found = record_conflicts(&a, &r.id.to_string());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].path, "note");
        let mut values = found[0].values.clone();
        values.sort();
        assert_eq!(values, vec!["30 người".to_string(), "35 người".to_string()]);
        // Writing the field again resolves it.
        ra.note = "33 người".into();
        schema::put_record(&mut a, &ra).unwrap();
        assert!(record_conflicts(&a, &r.id.to_string()).is_empty());
    }
}

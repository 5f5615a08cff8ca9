use automerge::{AutoCommit, ROOT, transaction::Transactable};

use super::*;
use crate::codes::IncidentCategory;
use crate::testdata;

fn log_with(records: &[Record]) -> (AutoCommit, DocId) {
    let model = ModelId::new_random();
    let id = DocId::log(model, 2025).unwrap();
    let mut doc = AutoCommit::new();
    init_log(&mut doc, model, 2025).unwrap();
    for r in records {
        put_record(&mut doc, r).unwrap();
    }
    (doc, id)
}

fn record_obj(doc: &AutoCommit, r: &Record) -> automerge::ObjId {
    doc.get(ROOT, r.id.to_string()).unwrap().unwrap().1
}

fn detail_obj(doc: &AutoCommit, r: &Record) -> automerge::ObjId {
    let rec = record_obj(doc, r);
    doc.get(&rec, r.kind().code()).unwrap().unwrap().1
}

#[test]
fn every_kind_round_trips() {
    let on = "2025-07-14";
    let records: Vec<Record> = (0..8).map(|n| testdata::any_record(RecordId::new_random(), on, n)).collect();
    let (doc, id) = log_with(&records);
    let log = read_log(&doc, &id).unwrap();
    assert_eq!(log.records.len(), 8);
    for r in &records {
        assert_eq!(&log.records[&r.id], r);
    }
}

#[test]
fn model_round_trips_and_edits_touch_only_changed_fields() {
    let id = ModelId::new_random();
    let mut doc = AutoCommit::new();
    let mut profile = testdata::model(id, "QNA.TK.TT");
    put_model(&mut doc, &profile).unwrap();
    doc.commit();
    assert_eq!(read_model(&doc, id).unwrap(), profile);

    let before = doc.get_heads();
    profile.members = 170;
    put_model(&mut doc, &profile).unwrap();
    doc.commit();
    let change = doc.get_changes(&before);
    assert_eq!(change.len(), 1);
    assert_eq!(change[0].len(), 1, "one field changed, one operation");
}

#[test]
fn missing_field_is_named() {
    let r = testdata::patrol(RecordId::new_random(), "2025-01-02", 1);
    let (mut doc, id) = log_with(std::slice::from_ref(&r));
    let detail = detail_obj(&doc, &r);
    doc.delete(&detail, "members_present").unwrap();
    let err = read_log(&doc, &id).unwrap_err();
    assert_eq!(err.problem, Problem::Missing);
    assert_eq!(err.path, format!("{}/patrol/members_present", r.id));
}

#[test]
fn wrong_type_is_named() {
    let r = testdata::meeting(RecordId::new_random(), "2025-01-02", 10);
    let (mut doc, id) = log_with(std::slice::from_ref(&r));
    let detail = detail_obj(&doc, &r);
    doc.put(&detail, "attendees", "many").unwrap();
    let err = read_log(&doc, &id).unwrap_err();
    assert_eq!(err.problem, Problem::WrongType { expected: "integer", found: "string".into() });
}

#[test]
fn out_of_range_values_are_refused() {
    let r = testdata::household_support(RecordId::new_random(), "2025-01-02", 500_000);
    let (mut doc, id) = log_with(std::slice::from_ref(&r));
    let detail = detail_obj(&doc, &r);
    doc.put(&detail, "amount_vnd", -5_i64).unwrap();
    assert!(matches!(read_log(&doc, &id).unwrap_err().problem, Problem::OutOfRange { .. }));
    doc.put(&detail, "amount_vnd", 500_000_i64).unwrap();
    doc.put(&detail, "workdays", f64::NAN).unwrap();
    assert!(matches!(read_log(&doc, &id).unwrap_err().problem, Problem::OutOfRange { .. }));
}

#[test]
fn cross_field_rules_hold() {
    // A record in the wrong year's log.
    let r = testdata::meeting(RecordId::new_random(), "2024-12-31", 10);
    let (doc, id) = log_with(&[r]);
    assert!(read_log(&doc, &id).unwrap_err().path.ends_with("occurred_on"));

    // A returned record without a comment.
    let mut r = testdata::meeting(RecordId::new_random(), "2025-02-01", 10);
    r.review = Review {
        state: ReviewState::Returned,
        reviewer: Some("can.bo.xa".into()),
        reviewed_at: Some(crate::scalars::Timestamp(5)),
        comment: " ".into(),
    };
    let (doc, id) = log_with(&[r]);
    assert!(read_log(&doc, &id).unwrap_err().path.ends_with("review/comment"));

    // A model whose status has no year.
    let mid = ModelId::new_random();
    let mut p = testdata::model(mid, "QNA");
    p.status_years.typical = None;
    let mut doc = AutoCommit::new();
    put_model(&mut doc, &p).unwrap();
    assert_eq!(read_model(&doc, mid).unwrap_err().path, "status_years/typical");
}

#[test]
fn unknown_codes_and_keys_are_refused() {
    let r = testdata::patrol(RecordId::new_random(), "2025-03-03", 1);
    let (mut doc, id) = log_with(std::slice::from_ref(&r));
    doc.put(ROOT, "junk", 1).unwrap();
    assert_eq!(read_log(&doc, &id).unwrap_err().path, "junk");
    doc.delete(ROOT, "junk").unwrap();
    let rec = record_obj(&doc, &r);
    doc.put(&rec, "kind", "party").unwrap();
    assert!(matches!(read_log(&doc, &id).unwrap_err().problem, Problem::Invalid(_)));
}

#[test]
fn newer_schema_versions_are_reported() {
    let (mut doc, id) = log_with(&[]);
    doc.put(ROOT, "schema", 2).unwrap();
    assert_eq!(
        read_log(&doc, &id).unwrap_err().problem,
        Problem::UnsupportedVersion { found: 2, supported: SCHEMA_VERSION }
    );
}

#[test]
fn two_phones_starting_the_same_log_offline_keep_every_record() {
    let model = ModelId::new_random();
    let id = DocId::log(model, 2025).unwrap();
    let mut a = AutoCommit::new();
    let mut b = AutoCommit::new();
    let ra = testdata::patrol(RecordId::new_random(), "2025-04-01", 2);
    let rb = testdata::production(RecordId::new_random(), "2025-04-02", 1_000);
    for (doc, r) in [(&mut a, &ra), (&mut b, &rb)] {
        init_log(doc, model, 2025).unwrap();
        put_record(doc, r).unwrap();
    }
    a.merge(&mut b).unwrap();
    let log = read_log(&a, &id).unwrap();
    assert_eq!(log.records.len(), 2);
}

#[test]
fn concurrent_edits_of_different_fields_both_survive() {
    let mut r = testdata::patrol(RecordId::new_random(), "2025-04-01", 2);
    let (mut a, id) = log_with(std::slice::from_ref(&r));
    a.commit();
    let mut b = a.fork();
    let mut ra = r.clone();
    ra.note = "ghi chú".into();
    put_record(&mut a, &ra).unwrap();
    if let Activity::Patrol(p) = &mut r.activity {
        p.incidents[1].category = IncidentCategory::Gambling;
    }
    put_record(&mut b, &r).unwrap();
    a.merge(&mut b).unwrap();
    let merged = &read_log(&a, &id).unwrap().records[&r.id];
    assert_eq!(merged.note, "ghi chú");
    let Activity::Patrol(p) = &merged.activity else { panic!("kind changed") };
    assert_eq!(p.incidents[1].category, IncidentCategory::Gambling);
}

#[test]
fn a_record_replaced_by_null_or_removed_is_refused() {
    let r = testdata::patrol(RecordId::new_random(), "2025-03-03", 0);
    let (mut doc, id) = log_with(std::slice::from_ref(&r));
    doc.put(ROOT, r.id.to_string(), automerge::ScalarValue::Null).unwrap();
    let err = read_log_records(&doc, &id, [r.id.to_string()]).unwrap_err();
    assert!(err.to_string().contains("never removed"), "{err}");
    assert!(read_log(&doc, &id).is_err());
    doc.delete(ROOT, r.id.to_string()).unwrap();
    assert!(read_log_records(&doc, &id, [r.id.to_string()]).is_err());
}

#[test]
fn incident_ids_are_unique_within_a_patrol() {
    let mut r = testdata::patrol(RecordId::new_random(), "2025-03-03", 2);
    if let Activity::Patrol(p) = &mut r.activity {
        p.incidents[1].id = p.incidents[0].id.clone();
    }
    let (doc, id) = log_with(&[r]);
    assert!(read_log(&doc, &id).unwrap_err().to_string().contains("appears twice"));
}

/// `@automerge/automerge` 3.2.5 to 3.5.0 write `0` and negative integers
/// inside nested object literals as floats: whole floats read as the integer.
#[test]
fn whole_floats_read_as_integers() {
    let mut support = testdata::household_support(RecordId::new_random(), "2025-01-02", 0);
    if let crate::record::Activity::HouseholdSupport(s) = &mut support.activity {
        s.support_type = crate::codes::SupportType::Materials;
    }
    let meeting = testdata::meeting(RecordId::new_random(), "2025-01-03", 12);
    let (mut doc, id) = log_with(&[support.clone(), meeting.clone()]);
    let detail = detail_obj(&doc, &support);
    doc.put(&detail, "amount_vnd", 0.0_f64).unwrap();
    doc.put(&detail, "workdays", 2.5_f64).unwrap();
    let detail = detail_obj(&doc, &meeting);
    doc.put(&detail, "attendees", 12.0_f64).unwrap();
    doc.put(ROOT, "year", 2025.0_f64).unwrap();
    let log = read_log(&doc, &id).unwrap();
    assert_eq!(log.records[&support.id], support);
    assert_eq!(log.records[&meeting.id], meeting);
}

#[test]
fn floats_that_are_not_whole_integers_in_range_are_refused() {
    let r = testdata::meeting(RecordId::new_random(), "2025-01-02", 10);
    let (mut doc, id) = log_with(std::slice::from_ref(&r));
    let detail = detail_obj(&doc, &r);
    for (value, expect_range) in [
        (1.5, false),
        (f64::NAN, false),
        (f64::INFINITY, false),
        (f64::NEG_INFINITY, false),
        (-1.0, true),                // below the field's range
        (100_001.0, true),           // above it
        (2f64.powi(53) * 2.0, true), // whole, but past ±2^53
    ] {
        doc.put(&detail, "attendees", value).unwrap();
        let err = read_log(&doc, &id).unwrap_err();
        assert_eq!(err.path, format!("{}/meeting/attendees", r.id), "{value}");
        match err.problem {
            Problem::OutOfRange { .. } => assert!(expect_range, "{value}: {err}"),
            Problem::WrongType { expected: "integer", .. } => assert!(!expect_range, "{value}: {err}"),
            other => panic!("{value}: {other}"),
        }
    }
}

#[test]
fn photos_and_locations_round_trip_each_photo_under_its_own_key() {
    use crate::evidence::AttachmentId;
    let mut r = testdata::patrol(RecordId::new_random(), "2025-03-08", 2);
    let Activity::Patrol(p) = &mut r.activity else { unreachable!() };
    p.location = Some(testdata::location());
    p.incidents[1].location = Some(testdata::location());
    let (a, b) = (AttachmentId::new_random(), AttachmentId::new_random());
    r.attachments.insert(a, testdata::photo(1, 150_000));
    r.attachments.insert(b, testdata::photo(2, 90_000));
    let (doc, id) = log_with(std::slice::from_ref(&r));
    assert_eq!(read_log(&doc, &id).unwrap().records[&r.id], r);
    let rec = record_obj(&doc, &r);
    assert!(doc.get(&rec, a.key()).unwrap().is_some());

    // Removing a photo keeps its key, marked deleted.
    r.attachments.get_mut(&a).unwrap().deleted = true;
    let mut doc = doc;
    put_record(&mut doc, &r).unwrap();
    let read = &read_log(&doc, &id).unwrap().records[&r.id];
    assert_eq!(read.photos().map(|(id, _)| *id).collect::<Vec<_>>(), [b]);
    assert_eq!(read.attachments.len(), 2);
}

#[test]
fn two_phones_adding_the_first_photo_offline_keep_both() {
    use crate::evidence::AttachmentId;
    let r = testdata::meeting(RecordId::new_random(), "2025-03-08", 12);
    let (mut one, id) = log_with(std::slice::from_ref(&r));
    one.commit();
    let mut two = one.fork();
    let (mut r1, mut r2) = (r.clone(), r.clone());
    r1.attachments.insert(AttachmentId::new_random(), testdata::photo(1, 1000));
    r2.attachments.insert(AttachmentId::new_random(), testdata::photo(2, 2000));
    put_record(&mut one, &r1).unwrap();
    put_record(&mut two, &r2).unwrap();
    one.merge(&mut two).unwrap();
    assert_eq!(read_log(&one, &id).unwrap().records[&r.id].photos().count(), 2);
}

#[test]
fn evidence_out_of_bounds_is_refused_with_its_path() {
    use crate::evidence::{AttachmentId, limits};
    let base = testdata::patrol(RecordId::new_random(), "2025-03-08", 1);
    // A key the refusal's path ends with, and the edit that breaks it.
    type Case = (&'static str, Box<dyn Fn(&mut Record)>);
    let cases: Vec<Case> = vec![
        (
            "bytes",
            Box::new(|r| {
                r.attachments.insert(AttachmentId::new_random(), testdata::photo(1, limits::MAX_PHOTO_BYTES + 1));
            }),
        ),
        (
            "width",
            Box::new(|r| {
                let mut p = testdata::photo(1, 10);
                p.width = limits::MAX_PHOTO_SIDE + 1;
                r.attachments.insert(AttachmentId::new_random(), p);
            }),
        ),
        (
            "photos",
            Box::new(|r| {
                for i in 0..=limits::MAX_PHOTOS {
                    r.attachments.insert(AttachmentId::new_random(), testdata::photo(i as u8, 10));
                }
            }),
        ),
        (
            "latitude",
            Box::new(|r| {
                let Activity::Patrol(p) = &mut r.activity else { unreachable!() };
                p.location = Some(crate::evidence::Location { latitude: 91.0, ..testdata::location() });
            }),
        ),
        (
            "accuracy_m",
            Box::new(|r| {
                let Activity::Patrol(p) = &mut r.activity else { unreachable!() };
                p.incidents[0].location = Some(crate::evidence::Location { accuracy_m: -1.0, ..testdata::location() });
            }),
        ),
    ];
    for (what, change) in cases {
        let mut r = base.clone();
        change(&mut r);
        let (doc, id) = log_with(std::slice::from_ref(&r));
        let err = read_log(&doc, &id).unwrap_err();
        assert!(err.path.contains(what) || err.to_string().contains(what), "{what}: {err}");
    }

    // Deleted photos count towards the entries, so churn cannot grow a record.
    let mut r = base.clone();
    for i in 0..=limits::MAX_ATTACHMENT_ENTRIES {
        let mut p = testdata::photo(i as u8, 10);
        p.deleted = true;
        r.attachments.insert(AttachmentId::new_random(), p);
    }
    let (doc, id) = log_with(std::slice::from_ref(&r));
    assert!(read_log(&doc, &id).unwrap_err().to_string().contains("attachment entries"));

    // A hash in another spelling is not a hash.
    let (mut doc, id) = log_with(std::slice::from_ref(&base));
    let rec = record_obj(&doc, &base);
    let key = AttachmentId::new_random().key();
    let att = doc.put_object(&rec, key.as_str(), automerge::ObjType::Map).unwrap();
    doc.put(&att, "sha256", "AB".repeat(32)).unwrap();
    assert!(read_log(&doc, &id).unwrap_err().path.ends_with("sha256"));
}

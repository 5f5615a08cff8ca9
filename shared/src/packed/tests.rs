use automerge::transaction::{CommitOptions, Transactable};
use std::collections::BTreeSet;

use automerge::{AutoCommit, ObjType, ROOT, ScalarValue};

use super::*;
use crate::ids::{ModelId, RecordId};
use crate::{protocol, schema, testdata};

fn log_with(records: usize) -> AutoCommit {
    let mut doc = AutoCommit::new();
    schema::init_log(&mut doc, ModelId::new_random(), 2025).unwrap();
    doc.commit();
    for n in 0..records {
        schema::put_record(&mut doc, &testdata::any_record(RecordId::new_random(), "2025-03-04", n)).unwrap();
        doc.commit_with(CommitOptions::default().with_time(1_741_000_000 + n as i64 * 37));
    }
    doc
}

fn since(doc: &mut AutoCommit, heads: &[ChangeHash]) -> Vec<Change> {
    doc.get_changes(heads)
}

fn round_trip(changes: &[Change]) -> Vec<u8> {
    let packed = pack(changes).expect("packs");
    let rebuilt = unpack(&packed, &Budget::default()).expect("unpacks");
    assert_eq!(rebuilt.len(), changes.len());
    for (r, c) in rebuilt.iter().zip(changes) {
        assert_eq!(r.as_slice(), c.raw_bytes(), "change {} rebuilt exactly", c.hash());
    }
    packed
}

#[test]
fn new_records_rebuild_exactly_and_cost_a_fraction_of_their_changes() {
    let mut doc = log_with(3);
    let heads = doc.get_heads();
    for n in 0..20 {
        schema::put_record(&mut doc, &testdata::any_record(RecordId::new_random(), "2025-04-01", n)).unwrap();
        doc.commit_with(CommitOptions::default().with_time(1_742_000_000 + n as i64));
    }
    let changes = since(&mut doc, &heads);
    let packed = round_trip(&changes);
    let raw: Vec<u8> = changes.iter().flat_map(|c| c.raw_bytes().to_vec()).collect();
    let (packed_gz, raw_gz) = (protocol::gzip(&packed).len(), protocol::gzip(&raw).len());
    assert!(packed_gz * 2 < raw_gz, "packed {packed_gz} B against {raw_gz} B gzip'd");
}

#[test]
fn a_whole_log_from_its_first_change_rebuilds() {
    let mut doc = log_with(12);
    round_trip(&since(&mut doc, &[]));
}

#[test]
fn edits_deletions_lists_text_and_every_scalar_rebuild() {
    let mut doc = log_with(2);
    let heads = doc.get_heads();
    let list = doc.put_object(ROOT, "list", ObjType::List).unwrap();
    doc.insert(&list, 0, "a").unwrap();
    doc.insert(&list, 1, ScalarValue::counter(3)).unwrap();
    doc.insert(&list, 0, 7_u64).unwrap();
    let text = doc.put_object(ROOT, "text", ObjType::Text).unwrap();
    doc.splice_text(&text, 0, 0, "Thôn Kim Đới").unwrap();
    doc.commit();
    doc.delete(&list, 1).unwrap();
    doc.increment(&list, 1, 4).unwrap();
    doc.splice_text(&text, 2, 3, "x").unwrap();
    let map = doc.put_object(&list, 0, ObjType::Map).unwrap();
    doc.put(&map, "bytes", ScalarValue::Bytes(vec![0, 1, 255])).unwrap();
    doc.put(&map, "f", f64::NAN).unwrap();
    doc.put(&map, "neg", -0.0_f64).unwrap();
    doc.put(&map, "ts", ScalarValue::Timestamp(-5)).unwrap();
    doc.put(&map, "int", i64::MIN).unwrap();
    doc.put(&map, "uint", u64::MAX).unwrap();
    doc.put(&map, "t", true).unwrap();
    doc.put(&map, "uuid-looking", "6F9619FF-8B86-D011-B42D-00CF4FC964FF").unwrap();
    doc.put(&map, "uuid", "6f9619ff-8b86-d011-b42d-00cf4fc964ff").unwrap();
    doc.put_object(&map, "table", ObjType::Table).unwrap();
    doc.commit_with(CommitOptions::default().with_message("an edit").with_time(-3));
    doc.put(ROOT, "schema", 9_i64).unwrap();
    doc.delete(ROOT, "list").unwrap();
    doc.commit();
    round_trip(&since(&mut doc, &heads));
}

#[test]
fn an_edit_of_another_devices_write_names_that_actor() {
    let mut server = log_with(2);
    let mut phone = server.fork();
    let record = testdata::any_record(RecordId::new_random(), "2025-04-01", 1);
    schema::put_record(&mut server, &record).unwrap();
    server.commit();
    phone.merge(&mut server).unwrap();
    let heads = phone.get_heads();
    let mut edited = record.clone();
    edited.note = "sửa lại".into();
    schema::put_record(&mut phone, &edited).unwrap();
    phone.commit();
    let changes = since(&mut phone, &heads);
    assert_eq!(changes.len(), 1);
    round_trip(&changes);
}

#[test]
fn concurrent_branches_of_one_device_name_every_tip() {
    let mut a = log_with(1);
    let heads = a.get_heads();
    let mut b = a.fork().with_actor(a.get_actor().clone());
    a.put(ROOT, "one", 1).unwrap();
    a.commit();
    // The same actor on a fork cannot commit concurrently under Automerge's
    // rules, so the branches here are two changes on the same parents.
    b.put(ROOT, "two", 2).unwrap();
    b.commit();
    let changes = since(&mut a, &heads);
    round_trip(&changes);
}

#[test]
fn changes_of_two_actors_or_with_marks_are_not_packed() {
    let mut a = log_with(1);
    let heads = a.get_heads();
    let mut b = a.fork();
    b.put(ROOT, "b", 1).unwrap();
    b.commit();
    a.put(ROOT, "a", 1).unwrap();
    a.commit();
    a.merge(&mut b).unwrap();
    assert!(pack(&since(&mut a, &heads)).is_none());

    let mut doc = AutoCommit::new();
    let text = doc.put_object(ROOT, "t", ObjType::Text).unwrap();
    doc.splice_text(&text, 0, 0, "hello").unwrap();
    doc.mark(&text, automerge::marks::Mark::new("bold".into(), true, 0, 3), automerge::marks::ExpandMark::After)
        .unwrap();
    doc.commit();
    assert!(pack(&since(&mut doc, &[])).is_none());
    assert!(pack(&[]).is_none());
}

fn wire_of(bytes: &[u8]) -> Wire {
    postcard::from_bytes(bytes).unwrap()
}

fn packed_records(n: usize) -> Vec<u8> {
    let mut doc = log_with(1);
    let heads = doc.get_heads();
    for i in 0..n {
        schema::put_record(&mut doc, &testdata::any_record(RecordId::new_random(), "2025-04-01", i)).unwrap();
        doc.commit();
    }
    pack(&since(&mut doc, &heads)).unwrap()
}

#[test]
fn one_changed_value_or_tip_is_a_mismatch() {
    let packed = packed_records(3);
    let mut wire = wire_of(&packed);
    let values = wire.changes[0].values.to_vec();
    let mut changed = values.clone();
    let last = changed.len() - 1;
    changed[last] ^= 1;
    wire.changes[0].values = ByteBuf::from(changed);
    let tampered = postcard::to_allocvec(&wire).unwrap();
    assert!(matches!(unpack(&tampered, &Budget::default()), Err(PackError::Mismatch | PackError::Malformed(_))));

    let mut wire = wire_of(&packed);
    wire.changes[1].time_gap += 1;
    assert_eq!(unpack(&postcard::to_allocvec(&wire).unwrap(), &Budget::default()), Err(PackError::Mismatch));

    let mut wire = wire_of(&packed);
    wire.tips.push([7; 32]);
    assert_eq!(unpack(&postcard::to_allocvec(&wire).unwrap(), &Budget::default()), Err(PackError::Mismatch));
}

#[test]
fn hostile_numbers_are_refused_before_anything_is_built() {
    let packed = packed_records(2);
    let refused = |wire: &Wire, budget: &Budget| unpack(&postcard::to_allocvec(wire).unwrap(), budget).unwrap_err();

    // One shape named a million times would build a million records.
    let mut wire = wire_of(&packed);
    let template = wire.changes.pop().unwrap();
    wire.changes = (0..600)
        .map(|_| WireChange {
            shape: template.shape,
            seq_gap: 0,
            op_gap: 0,
            time_gap: 0,
            message: None,
            deps: vec![],
            values: template.values.clone(),
        })
        .collect();
    assert!(matches!(refused(&wire, &Budget::default()), PackError::OverBudget(_)));
    let tight = Budget { changes: 1_000, ops: 100, ..Budget::default() };
    assert!(matches!(refused(&wire, &tight), PackError::OverBudget(_)));

    let mut wire = wire_of(&packed);
    wire.changes[0].seq_gap = u64::MAX;
    assert!(matches!(refused(&wire, &Budget::default()), PackError::Malformed(_)));

    let mut wire = wire_of(&packed);
    wire.changes[0].op_gap = i64::MAX;
    assert!(matches!(refused(&wire, &Budget::default()), PackError::Malformed(_)));

    let mut wire = wire_of(&packed);
    wire.changes[1].time_gap = i64::MAX;
    wire.changes[0].time_gap = i64::MAX;
    assert!(matches!(refused(&wire, &Budget::default()), PackError::Malformed(_)));

    let mut wire = wire_of(&packed);
    wire.changes[1].deps = vec![Dep::Back(5)];
    assert!(matches!(refused(&wire, &Budget::default()), PackError::Malformed(_)));

    let mut wire = wire_of(&packed);
    wire.shapes[0].0[0].obj = Some(OpRef::Local(0));
    assert!(matches!(refused(&wire, &Budget::default()), PackError::Malformed(_)));

    let mut wire = wire_of(&packed);
    wire.shapes[0].0[1].pred = vec![OpRef::Own(u64::MAX)];
    assert!(matches!(refused(&wire, &Budget::default()), PackError::Malformed(_)));

    let mut wire = wire_of(&packed);
    wire.shapes[0].0[1].pred = vec![OpRef::Other(3, 1)];
    assert!(matches!(refused(&wire, &Budget::default()), PackError::Malformed(_)));

    let mut wire = wire_of(&packed);
    wire.actor = ByteBuf::from(vec![1; 65]);
    assert!(matches!(refused(&wire, &Budget::default()), PackError::Malformed(_)));

    let mut wire = wire_of(&packed);
    wire.changes[0].shape = 99;
    assert!(matches!(refused(&wire, &Budget::default()), PackError::Malformed(_)));

    let mut wire = wire_of(&packed);
    let mut values = wire.changes[0].values.to_vec();
    values.push(0);
    wire.changes[0].values = ByteBuf::from(values);
    assert!(matches!(refused(&wire, &Budget::default()), PackError::Malformed(_)));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    #[test]
    fn any_bytes_are_refused_or_rebuilt_never_a_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
        let _ = unpack(&bytes, &Budget::default());
    }

    #[test]
    fn a_pack_cut_or_flipped_anywhere_is_refused(cut in 0usize..4_000, flip in 0usize..4_000, bit in 0u8..8) {
        let packed = packed_records(2);
        let cut = cut % packed.len();
        proptest::prop_assert!(unpack(&packed[..cut], &Budget::default()).is_err());
        let mut flipped = packed.clone();
        let at = flip % flipped.len();
        flipped[at] ^= 1 << bit;
        if let Ok(rebuilt) = unpack(&flipped, &Budget::default()) {
            // Only a flip that changes nothing Automerge writes may pass.
            let original = unpack(&packed, &Budget::default()).unwrap();
            proptest::prop_assert_eq!(rebuilt, original);
        }
    }
}

/// Every key below the root the schema writes, each once.
fn keys_below_root(doc: &AutoCommit) -> BTreeSet<String> {
    fn walk(doc: &AutoCommit, obj: &automerge::ObjId, depth: usize, out: &mut BTreeSet<String>) {
        use automerge::ReadDoc;
        let is_map = matches!(doc.object_type(obj), Ok(ObjType::Map | ObjType::Table));
        for key in doc.keys(obj).filter(|_| is_map) {
            if depth > 0 {
                out.insert(key.clone());
            }
            if let Ok(Some((automerge::Value::Object(_), child))) = doc.get(obj, key.as_str()) {
                walk(doc, &child, depth + 1, out);
            }
        }
        for i in 0..doc.length(obj) {
            if let Ok(Some((automerge::Value::Object(_), child))) = doc.get(obj, i) {
                walk(doc, &child, depth + 1, out);
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(doc, &ROOT, 0, &mut out);
    out
}

#[test]
fn the_dictionary_names_every_key_the_schema_writes() {
    let mut log = AutoCommit::new();
    schema::init_log(&mut log, ModelId::new_random(), 2025).unwrap();
    for n in 0..12 {
        let mut record = testdata::any_record(RecordId::new_random(), "2025-03-04", n);
        record.attachments.insert(crate::evidence::AttachmentId::new_random(), testdata::photo(1, 100));
        schema::put_record(&mut log, &record).unwrap();
    }
    let mut model = AutoCommit::new();
    schema::put_model(&mut model, &testdata::model(ModelId::new_random(), "QNA.TK.TT")).unwrap();
    use automerge::ReadDoc;
    let mut keys = keys_below_root(&log);
    keys.extend(keys_below_root(&model));
    keys.extend(log.keys(ROOT).filter(|k| uuid::Uuid::try_parse(k).is_err()));
    keys.extend(model.keys(ROOT));
    use crate::codes::*;
    fn codes<C: Code>() -> impl Iterator<Item = String> {
        C::ALL.iter().map(|c| c.code().to_owned())
    }
    keys.extend(codes::<Field>().chain(codes::<ModelStatus>()).chain(codes::<RecordKind>()));
    keys.extend(codes::<IncidentCategory>().chain(codes::<IncidentOutcome>()).chain(codes::<SupportType>()));
    keys.extend(codes::<ReviewState>());
    keys.insert(schema::TYPE_LOG.into());
    keys.insert(schema::TYPE_MODEL.into());
    let unknown: Vec<_> = keys.iter().filter(|k| !k.starts_with("photo:") && known(k).is_none()).collect();
    assert!(unknown.is_empty(), "keys and codes the schema writes that DICTIONARY lacks: {unknown:?}");
    let distinct: BTreeSet<_> = DICTIONARY.iter().collect();
    assert_eq!(distinct.len(), DICTIONARY.len(), "each entry once");
}

/// Packs no honest device would make, from a seed: shapes of any actions,
/// objects, keys and predecessors, values of any bytes.
fn random_pack(seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut next = move |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n.max(1)
    };
    let actions = [
        Action::MakeMap,
        Action::MakeList,
        Action::MakeText,
        Action::MakeTable,
        Action::Delete,
        Action::Increment,
        Action::Null,
        Action::Bool,
        Action::Text,
        Action::Uuid,
        Action::KeyCopy(0),
        Action::Known(3),
        Action::Bytes,
        Action::Int,
        Action::Uint,
        Action::F64,
        Action::Counter,
        Action::Timestamp,
    ];
    let op_ref = |next: &mut dyn FnMut(u64) -> u64| match next(4) {
        0 => OpRef::Local(next(8) as u32),
        1 => OpRef::Own(next(1 << 50)),
        2 => OpRef::Other(next(3) as u32, next(100)),
        _ => OpRef::Own(1 + next(20)),
    };
    let shapes: Vec<Shape> = (0..1 + next(3))
        .map(|_| {
            Shape(
                (0..next(10))
                    .map(|_| OpShape {
                        action: actions[next(actions.len() as u64) as usize],
                        obj: if next(3) == 0 { None } else { Some(op_ref(&mut next)) },
                        key: match next(5) {
                            0 => KeyShape::Known(next(200) as u32),
                            1 => KeyShape::Text,
                            2 => KeyShape::Uuid,
                            3 => KeyShape::Head,
                            _ => KeyShape::After(op_ref(&mut next)),
                        },
                        insert: next(2) == 0,
                        pred: (0..next(3)).map(|_| op_ref(&mut next)).collect(),
                    })
                    .collect(),
            )
        })
        .collect();
    let changes = (0..next(4))
        .map(|_| {
            // Now and then a shape that is not there.
            let missing = u64::from(next(8) == 0);
            WireChange {
                shape: next(shapes.len() as u64 + missing) as u32,
                seq_gap: next(3),
                op_gap: next(5) as i64 - 1,
                time_gap: next(1 << 40) as i64 - (1 << 39),
                message: (next(4) == 0).then(|| "m".repeat(next(10) as usize)),
                deps: (0..next(3))
                    .map(|_| if next(2) == 0 { Dep::Back(next(3) as u32) } else { Dep::Outside(0) })
                    .collect(),
                values: ByteBuf::from((0..next(40)).map(|_| next(256) as u8).collect::<Vec<_>>()),
            }
        })
        .collect();
    let wire = Wire {
        actor: ByteBuf::from(vec![7; 16]),
        others: (0..next(3)).map(|i| ByteBuf::from(vec![i as u8 + 1; 16])).collect(),
        hashes: vec![[5; 32]],
        known: next(DICTIONARY.len() as u64 + 2) as u32,
        shapes,
        changes,
        tips: vec![[9; 32]],
    };
    postcard::to_allocvec(&wire).unwrap()
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2_000))]

    #[test]
    fn any_shape_and_values_a_hostile_device_makes_are_refused_never_a_panic(seed in proptest::prelude::any::<u64>()) {
        // The tips are made up, so nothing may pass; what matters is that
        // Automerge, fed whatever the shapes and values say, never panics.
        proptest::prop_assert!(unpack(&random_pack(seed), &Budget::default()).is_err());
    }
}

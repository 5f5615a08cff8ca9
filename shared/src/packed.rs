//! Packed changes: a document's new changes carried as their values and
//! rebuilt, byte for byte, on the other side.
//!
//! An Automerge change spends most of its bytes on what the receiver could
//! work out itself: a header with the actor, a 32-byte hash per dependency
//! (random, so gzip cannot fold them), and op columns that repeat, for
//! every record, the same keys, actions and object ids around the few
//! values that differ. Twenty new records cost 3.3x their values as
//! changes (ARCHITECTURE.md, *Where the reconnect's bytes go*).
//!
//! A pack keeps only what varies:
//!
//! * each distinct sequence of operations (its **shape**: actions, objects,
//!   the schema's keys by their index in [`DICTIONARY`], predecessors)
//!   once, which every change of that form names;
//! * per change, the gaps in its sequence number and first op counter
//!   (zero when the changes follow one another), its time as a difference,
//!   its dependencies as "the change n before this one" or an index into
//!   the pack's few outside hashes, and its **values**: the keys the
//!   schema does not name (a record's id at the root, a photo's key) and
//!   the operations' values, postcard-encoded in op order. A text that is
//!   a UUID goes as its 16 bytes, a code of the dictionary as its index,
//!   and a value equal to an earlier key of the change names that key.
//!
//! Nothing here is a second copy of Automerge's format: [`unpack`] fills an
//! [`automerge::ExpandedChange`] and Automerge encodes it, and the result
//! counts only if it is the very change the device made:
//!
//! * [`pack`] unpacks what it packed and compares every change's bytes
//!   with the original, and packs nothing if any differs (an author field,
//!   marks, an op order Automerge writes otherwise);
//! * a pack names the hashes of its **tips**, the changes no later change
//!   of the pack depends on. Every other change's hash goes into a later
//!   change's dependencies, so a single wrong byte anywhere changes a tip's
//!   hash and [`unpack`] refuses the pack.
//!
//! ```
//! use automerge::{AutoCommit, transaction::Transactable};
//! use kheo_shared::packed::{Budget, pack, unpack};
//!
//! let mut doc = AutoCommit::new();
//! for n in 0..3_i64 {
//!     doc.put(automerge::ROOT, format!("record-{n}"), n).unwrap();
//!     doc.commit();
//! }
//! let changes = doc.get_changes(&[]);
//! let packed = pack(&changes).expect("plain map writes pack");
//! let rebuilt = unpack(&packed, &Budget::default()).unwrap();
//! assert!(rebuilt.iter().zip(&changes).all(|(r, c)| r.as_slice() == c.raw_bytes()));
//! ```
//!
//! [`unpack`] reads a phone's bytes, so it bounds every count before it
//! allocates or builds, and every counter before Automerge sees it.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::num::NonZeroU64;

use automerge::legacy::{ElementId, Key, ObjectId, Op, OpId, OpType, SortedVec};
use automerge::{ActorId, Change, ChangeHash, ExpandedChange, ObjType, ScalarValue};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use shape::{Action, KeyShape, OpRef, OpShape, Shape};

/// Largest op counter, sequence number or start op a pack may name: far
/// above any real document, far below where Automerge's arithmetic on
/// them could overflow.
const MAX_COUNTER: u64 = 1 << 48;
const MAX_ACTOR_BYTES: usize = 64;
const MAX_MESSAGE_BYTES: usize = 4_096;

/// What one pack may ask [`unpack`] to build.
#[derive(Debug, Clone)]
pub struct Budget {
    pub changes: usize,
    /// Operations over all changes, each predecessor counted as one more.
    pub ops: u64,
    pub deps_per_change: usize,
    pub other_actors: usize,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            changes: crate::protocol::MAX_CHANGES_PER_REQUEST,
            ops: 2 * crate::protocol::MAX_OPS_PER_REQUEST,
            deps_per_change: 1_024,
            other_actors: 1_024,
        }
    }
}

/// Why a pack was refused. Every variant means "send the changes as they
/// are": nothing of a refused pack is kept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PackError {
    #[error("packed changes could not be read: {0}")]
    Malformed(String),
    #[error("packed changes ask for more than a request may: {0}")]
    OverBudget(String),
    #[error("the rebuilt changes do not hash to the pack's tips")]
    Mismatch,
}

/// Packs changes of one actor, in the order given (dependencies first), or
/// `None` when they cannot be carried exactly this way.
pub fn pack(changes: &[Change]) -> Option<Vec<u8>> {
    let wire = Packer::default().pack(changes)?;
    let bytes = postcard::to_allocvec(&wire).ok()?;
    let rebuilt = unpack(&bytes, &Budget::default()).ok()?;
    let exact =
        rebuilt.len() == changes.len() && rebuilt.iter().zip(changes).all(|(r, c)| r.as_slice() == c.raw_bytes());
    exact.then_some(bytes)
}

/// Rebuilds packed changes: each change's bytes as Automerge writes them,
/// in the order packed.
pub fn unpack(bytes: &[u8], budget: &Budget) -> Result<Vec<Vec<u8>>, PackError> {
    let wire: Wire = postcard::from_bytes(bytes).map_err(|e| PackError::Malformed(e.to_string()))?;
    let malformed = |what: &str| PackError::Malformed(what.to_owned());
    let over = |what: String| PackError::OverBudget(what);
    check_actor(&wire.actor)?;
    if wire.known as usize > DICTIONARY.len() {
        return Err(malformed("packed with a newer key dictionary; send the changes as they are"));
    }
    if wire.others.len() > budget.other_actors {
        return Err(over(format!("{} other actors", wire.others.len())));
    }
    for a in &wire.others {
        check_actor(a)?;
    }
    if wire.changes.len() > budget.changes {
        return Err(over(format!("{} changes; at most {}", wire.changes.len(), budget.changes)));
    }
    let mut weight = 0u64;
    for c in &wire.changes {
        let shape = wire.shapes.get(c.shape as usize).ok_or_else(|| malformed("a change names no shape"))?;
        weight += shape.0.iter().map(|o| 1 + o.pred.len() as u64).sum::<u64>();
        if weight > budget.ops {
            return Err(over(format!("more than {} operations", budget.ops)));
        }
        if c.deps.len() > budget.deps_per_change {
            return Err(over(format!("{} dependencies in one change", c.deps.len())));
        }
        if c.message.as_ref().is_some_and(|m| m.len() > MAX_MESSAGE_BYTES) {
            return Err(over(format!("a change message over {MAX_MESSAGE_BYTES} bytes")));
        }
    }
    let actors = Actors {
        own: ActorId::from(wire.actor.as_slice()),
        others: wire.others.iter().map(|a| ActorId::from(a.as_slice())).collect(),
    };
    let mut out: Vec<Vec<u8>> = Vec::with_capacity(wire.changes.len());
    let mut hashes: Vec<ChangeHash> = Vec::with_capacity(wire.changes.len());
    let mut depended_on = HashSet::new();
    let (mut seq, mut next_op, mut time) = (0u64, 0u64, 0i64);
    for (i, c) in wire.changes.iter().enumerate() {
        let shape = &wire.shapes[c.shape as usize];
        seq = seq.saturating_add(c.seq_gap).saturating_add(1);
        let start = i128::from(next_op) + i128::from(c.op_gap);
        let ops = shape.0.len() as u64;
        if seq > MAX_COUNTER || start < 1 || start + i128::from(ops) > i128::from(MAX_COUNTER) {
            return Err(malformed("a sequence number or op counter out of range"));
        }
        let start_op = start as u64;
        next_op = start_op + ops;
        time = time.checked_add(c.time_gap).ok_or_else(|| malformed("a change time out of range"))?;
        let mut deps = Vec::with_capacity(c.deps.len());
        for d in &c.deps {
            deps.push(match *d {
                Dep::Back(n) => {
                    let j = i
                        .checked_sub(n as usize)
                        .filter(|_| n > 0)
                        .ok_or_else(|| malformed("a dependency before the pack"))?;
                    depended_on.insert(j);
                    hashes[j]
                }
                Dep::Outside(h) => {
                    ChangeHash(*wire.hashes.get(h as usize).ok_or_else(|| malformed("a dependency names no hash"))?)
                }
            });
        }
        let operations = Rebuild { actors: &actors, start_op, values: &c.values }.ops(&shape.0)?;
        let change = Change::from(ExpandedChange {
            operations,
            actor_id: actors.own.clone(),
            author: None,
            hash: None,
            seq,
            start_op: NonZeroU64::new(start_op).ok_or_else(|| malformed("start op 0"))?,
            time,
            message: c.message.clone(),
            deps,
            extra_bytes: Vec::new(),
        });
        hashes.push(change.hash());
        out.push(change.raw_bytes().to_vec());
    }
    let tips: HashSet<ChangeHash> = (0..hashes.len()).filter(|i| !depended_on.contains(i)).map(|i| hashes[i]).collect();
    let claimed: HashSet<ChangeHash> = wire.tips.iter().map(|h| ChangeHash(*h)).collect();
    if tips != claimed || claimed.len() != wire.tips.len() {
        return Err(PackError::Mismatch);
    }
    Ok(out)
}

/// The map keys and codes the schema writes, so that a shape names them by
/// index. A record's keys come in the order autosurgeon writes them, so
/// that most are "the entry after the previous op's" (see `shape.rs`).
/// Append only once released: an index is on the wire, and a reader
/// refuses a pack that counts more entries than it knows.
#[rustfmt::skip]
pub const DICTIONARY: &[&str] = &[
    // A record, in write order.
    "id", "kind", "occurred_on", "author", "device", "created_at", "updated_at", "deleted", "note", "review",
    "state", "reviewer", "reviewed_at", "comment",
    "patrol", "start", "end", "members_present", "area", "incidents", "location",
    "household_support", "giver", "receiver", "support_type", "amount_vnd", "workdays", "quantity", "unit",
    "description",
    "production", "product", "revenue_vnd",
    "meeting", "topic", "attendees",
    // An incident (its `id`, `description` and `location` above).
    "category", "outcome",
    // A location (its `taken_at` below).
    "latitude", "longitude", "accuracy_m",
    // A photo (its `deleted` above).
    "media_type", "sha256", "bytes", "width", "height", "taken_at", "caption",
    // Document headers.
    "schema", "type", "model", "year", "activity_log",
    // A model's profile.
    "name", "field", "lead_organisation", "started_on", "status", "status_years", "building", "recognised",
    "typical", "replicating", "stopped", "replicated_from", "members", "households",
    // Codes (`codes.rs`) not named above.
    "new", "approved", "returned",
    "money", "materials", "house_repair", "house_building", "technique_transfer", "livestock_or_seed", "other",
    "theft", "illegal_sand_mining", "environmental_pollution", "gambling", "public_disorder", "traffic",
    "handled_by_team", "handed_to_police", "supported_police",
    "economic_development", "culture_society", "social_welfare", "security_order", "new_rural_construction",
    "poverty_reduction", "site_clearance", "temporary_housing", "administrative_reform", "digital_transformation",
    "government_mass_mobilization", "political_system",
];

fn known(key: &str) -> Option<u32> {
    DICTIONARY.iter().position(|k| *k == key).and_then(|i| u32::try_from(i).ok())
}

fn check_actor(bytes: &[u8]) -> Result<(), PackError> {
    if bytes.is_empty() || bytes.len() > MAX_ACTOR_BYTES {
        return Err(PackError::Malformed(format!("an actor id of {} bytes", bytes.len())));
    }
    Ok(())
}

/// The pack on the wire (postcard).
#[derive(Debug, Serialize, Deserialize)]
struct Wire {
    /// The actor of every change.
    actor: ByteBuf,
    /// Other actors the operations refer to (an edit of a value another
    /// device wrote names that write as its predecessor).
    others: Vec<ByteBuf>,
    /// Dependencies outside the pack.
    hashes: Vec<[u8; 32]>,
    /// How many of [`DICTIONARY`] the packer knew: an older reader knows
    /// fewer and refuses the pack rather than misread it.
    known: u32,
    shapes: Vec<Shape>,
    changes: Vec<WireChange>,
    /// The hashes of the changes no later change of the pack depends on.
    tips: Vec<[u8; 32]>,
}

#[derive(Debug, Serialize, Deserialize)]
struct WireChange {
    shape: u32,
    /// Sequence number minus the previous change's, minus one.
    seq_gap: u64,
    /// First op counter minus the previous change's next one.
    op_gap: i64,
    time_gap: i64,
    message: Option<String>,
    deps: Vec<Dep>,
    /// Variable keys and values, postcard-encoded in op order.
    values: ByteBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
enum Dep {
    /// The change this many places before, in the pack.
    Back(u32),
    /// An index into [`Wire::hashes`].
    Outside(u32),
}

struct Actors {
    own: ActorId,
    others: Vec<ActorId>,
}

#[derive(Default)]
struct Packer {
    others: Vec<ActorId>,
    hashes: Vec<[u8; 32]>,
    shapes: Vec<Shape>,
    shape_index: HashMap<Shape, u32>,
}

impl Packer {
    fn pack(mut self, changes: &[Change]) -> Option<Wire> {
        let actor = changes.first()?.actor_id().clone();
        let mut index_of: HashMap<ChangeHash, usize> = HashMap::new();
        let mut depended_on = HashSet::new();
        let mut wire_changes = Vec::with_capacity(changes.len());
        let (mut seq, mut next_op, mut time) = (0u64, 0u64, 0i64);
        for (i, change) in changes.iter().enumerate() {
            let e = ExpandedChange::from(change);
            if e.actor_id != actor || e.author.is_some() || !e.extra_bytes.is_empty() {
                return None;
            }
            let seq_gap = e.seq.checked_sub(seq)?.checked_sub(1)?;
            let start_op = e.start_op.get();
            let op_gap = i64::try_from(start_op).ok()?.checked_sub(i64::try_from(next_op).ok()?)?;
            let time_gap = e.time.checked_sub(time)?;
            let mut deps = Vec::with_capacity(e.deps.len());
            for d in &e.deps {
                deps.push(match index_of.get(d) {
                    Some(&j) => {
                        depended_on.insert(j);
                        Dep::Back(u32::try_from(i - j).ok()?)
                    }
                    None => Dep::Outside(index(&mut self.hashes, d.0)?),
                });
            }
            let mut values = Vec::new();
            let mut shape = Vec::with_capacity(e.operations.len());
            let mut variable_keys: Vec<Option<&str>> = Vec::with_capacity(e.operations.len());
            for op in &e.operations {
                let at = shape.len() as u64;
                let obj = match &op.obj {
                    ObjectId::Root => None,
                    ObjectId::Id(id) => Some(self.op_ref(id, &actor, start_op, at)?),
                };
                let (key, variable) = match &op.key {
                    Key::Map(k) => match known(k) {
                        Some(i) => (KeyShape::Known(i), None),
                        None => (put_text(&mut values, k)?, Some(k.as_str())),
                    },
                    Key::Seq(ElementId::Head) => (KeyShape::Head, None),
                    Key::Seq(ElementId::Id(id)) => (KeyShape::After(self.op_ref(id, &actor, start_op, at)?), None),
                };
                variable_keys.push(variable);
                let earlier = &variable_keys[..variable_keys.len() - 1];
                let action = put_action(&mut values, &op.action, earlier)?;
                let pred = op.pred.iter().map(|p| self.op_ref(p, &actor, start_op, at)).collect::<Option<Vec<_>>>()?;
                shape.push(OpShape { action, obj, key, insert: op.insert, pred });
            }
            let shape = Shape(shape);
            let shape = match self.shape_index.get(&shape) {
                Some(&s) => s,
                None => {
                    let s = u32::try_from(self.shapes.len()).ok()?;
                    self.shape_index.insert(shape.clone(), s);
                    self.shapes.push(shape);
                    s
                }
            };
            index_of.insert(change.hash(), i);
            wire_changes.push(WireChange {
                shape,
                seq_gap,
                op_gap,
                time_gap,
                message: e.message.clone(),
                deps,
                values: ByteBuf::from(values),
            });
            seq = e.seq;
            next_op = start_op + e.operations.len() as u64;
            time = e.time;
        }
        let tips =
            changes.iter().enumerate().filter(|(i, _)| !depended_on.contains(i)).map(|(_, c)| c.hash().0).collect();
        Some(Wire {
            actor: ByteBuf::from(actor.to_bytes().to_vec()),
            others: self.others.iter().map(|a| ByteBuf::from(a.to_bytes().to_vec())).collect(),
            hashes: self.hashes,
            known: DICTIONARY.len() as u32,
            shapes: self.shapes,
            changes: wire_changes,
            tips,
        })
    }

    fn op_ref(&mut self, id: &OpId, own: &ActorId, start_op: u64, ops_so_far: u64) -> Option<OpRef> {
        let counter = id.counter();
        if id.actor() == own {
            if (start_op..start_op + ops_so_far).contains(&counter) {
                return Some(OpRef::Local(u32::try_from(counter - start_op).ok()?));
            }
            return Some(OpRef::Own(counter));
        }
        Some(OpRef::Other(index(&mut self.others, id.actor().clone())?, counter))
    }
}

fn index<T: PartialEq>(list: &mut Vec<T>, item: T) -> Option<u32> {
    let at = match list.iter().position(|x| *x == item) {
        Some(at) => at,
        None => {
            list.push(item);
            list.len() - 1
        }
    };
    u32::try_from(at).ok()
}

/// A UUID in the canonical form Automerge text holds it in, as its bytes.
fn as_uuid(text: &str) -> Option<[u8; 16]> {
    let id = uuid::Uuid::try_parse(text).ok()?;
    (id.hyphenated().to_string() == text).then(|| *id.as_bytes())
}

fn put<T: Serialize + ?Sized>(values: &mut Vec<u8>, value: &T) -> Option<()> {
    let taken = std::mem::take(values);
    *values = postcard::to_extend(value, taken).ok()?;
    Some(())
}

fn put_text(values: &mut Vec<u8>, text: &str) -> Option<KeyShape> {
    match as_uuid(text) {
        Some(bytes) => put(values, &bytes).map(|()| KeyShape::Uuid),
        None => put(values, text).map(|()| KeyShape::Text),
    }
}

fn put_action(values: &mut Vec<u8>, action: &OpType, variable_keys: &[Option<&str>]) -> Option<Action> {
    Some(match action {
        OpType::Make(ObjType::Map) => Action::MakeMap,
        OpType::Make(ObjType::List) => Action::MakeList,
        OpType::Make(ObjType::Text) => Action::MakeText,
        OpType::Make(ObjType::Table) => Action::MakeTable,
        OpType::Delete => Action::Delete,
        OpType::Increment(by) => put(values, by).map(|()| Action::Increment)?,
        OpType::Put(value) => match value {
            ScalarValue::Null => Action::Null,
            ScalarValue::Boolean(b) => put(values, b).map(|()| Action::Bool)?,
            ScalarValue::Str(s) => {
                if let Some(at) = variable_keys.iter().position(|k| *k == Some(s.as_str())) {
                    Action::KeyCopy(u32::try_from(at).ok()?)
                } else if let Some(i) = known(s) {
                    Action::Known(i)
                } else if let Some(bytes) = as_uuid(s) {
                    put(values, &bytes).map(|()| Action::Uuid)?
                } else {
                    put(values, s.as_str()).map(|()| Action::Text)?
                }
            }
            ScalarValue::Bytes(b) => put(values, serde_bytes::Bytes::new(b)).map(|()| Action::Bytes)?,
            ScalarValue::Int(n) => put(values, n).map(|()| Action::Int)?,
            ScalarValue::Uint(n) => put(values, n).map(|()| Action::Uint)?,
            ScalarValue::F64(x) => put(values, x).map(|()| Action::F64)?,
            ScalarValue::Counter(c) => put(values, &i64::from(c)).map(|()| Action::Counter)?,
            ScalarValue::Timestamp(t) => put(values, t).map(|()| Action::Timestamp)?,
            ScalarValue::Unknown { .. } => return None,
        },
        OpType::MarkBegin(_) | OpType::MarkEnd(_) => return None,
    })
}

/// One change's operations rebuilt from its shape and values.
struct Rebuild<'a> {
    actors: &'a Actors,
    start_op: u64,
    values: &'a [u8],
}

impl<'a> Rebuild<'a> {
    fn ops(mut self, shape: &[OpShape]) -> Result<Vec<Op>, PackError> {
        let mut ops = Vec::with_capacity(shape.len());
        let mut variable_keys: Vec<Option<Cow<'a, str>>> = Vec::with_capacity(shape.len());
        for (at, s) in shape.iter().enumerate() {
            let obj = match s.obj {
                None => ObjectId::Root,
                Some(r) => ObjectId::Id(self.op_id(r, at)?),
            };
            let (key, variable_key) = match s.key {
                KeyShape::Known(k) => {
                    let k = DICTIONARY.get(k as usize).ok_or_else(|| malformed("a key index out of range"))?;
                    (Key::Map((*k).into()), None)
                }
                KeyShape::Text => {
                    let k: &str = self.take()?;
                    (Key::Map(k.into()), Some(Cow::Borrowed(k)))
                }
                KeyShape::Uuid => {
                    let k = uuid_text(self.take()?);
                    (Key::Map(k.as_str().into()), Some(Cow::Owned(k)))
                }
                KeyShape::Head => (Key::Seq(ElementId::Head), None),
                KeyShape::After(r) => (Key::Seq(ElementId::Id(self.op_id(r, at)?)), None),
            };
            variable_keys.push(variable_key);
            let action = self.action(s.action, &variable_keys[..at])?;
            let pred = s.pred.iter().map(|&p| self.op_id(p, at)).collect::<Result<Vec<_>, _>>()?;
            ops.push(Op { action, obj, key, pred: SortedVec::from(pred), insert: s.insert });
        }
        if !self.values.is_empty() {
            return Err(malformed("values left over"));
        }
        Ok(ops)
    }

    fn op_id(&self, r: OpRef, at: usize) -> Result<OpId, PackError> {
        match r {
            OpRef::Local(i) if (i as usize) < at => Ok(OpId(self.start_op + u64::from(i), self.actors.own.clone())),
            OpRef::Local(_) => Err(malformed("an op refers to itself or a later one")),
            OpRef::Own(c) if (1..=MAX_COUNTER).contains(&c) => Ok(OpId(c, self.actors.own.clone())),
            OpRef::Other(a, c) if (1..=MAX_COUNTER).contains(&c) => {
                let actor =
                    self.actors.others.get(a as usize).ok_or_else(|| malformed("an actor index out of range"))?;
                Ok(OpId(c, actor.clone()))
            }
            OpRef::Own(_) | OpRef::Other(..) => Err(malformed("an op counter out of range")),
        }
    }

    fn action(&mut self, action: Action, variable_keys: &[Option<Cow<'a, str>>]) -> Result<OpType, PackError> {
        Ok(match action {
            Action::MakeMap => OpType::Make(ObjType::Map),
            Action::MakeList => OpType::Make(ObjType::List),
            Action::MakeText => OpType::Make(ObjType::Text),
            Action::MakeTable => OpType::Make(ObjType::Table),
            Action::Delete => OpType::Delete,
            Action::Increment => OpType::Increment(self.take()?),
            Action::Null => OpType::Put(ScalarValue::Null),
            Action::Bool => OpType::Put(ScalarValue::Boolean(self.take()?)),
            Action::Text => OpType::Put(ScalarValue::Str(self.take::<&str>()?.into())),
            Action::Uuid => OpType::Put(ScalarValue::Str(uuid_text(self.take()?).into())),
            Action::KeyCopy(i) => {
                let key = variable_keys.get(i as usize).and_then(Option::as_ref);
                OpType::Put(ScalarValue::Str(key.ok_or_else(|| malformed("a copy of no key"))?.as_ref().into()))
            }
            Action::Known(i) => {
                let text = DICTIONARY.get(i as usize).ok_or_else(|| malformed("a text index out of range"))?;
                OpType::Put(ScalarValue::Str((*text).into()))
            }
            Action::Bytes => OpType::Put(ScalarValue::Bytes(self.take::<&serde_bytes::Bytes>()?.to_vec())),
            Action::Int => OpType::Put(ScalarValue::Int(self.take()?)),
            Action::Uint => OpType::Put(ScalarValue::Uint(self.take()?)),
            Action::F64 => OpType::Put(ScalarValue::F64(self.take()?)),
            Action::Counter => OpType::Put(ScalarValue::Counter(self.take::<i64>()?.into())),
            Action::Timestamp => OpType::Put(ScalarValue::Timestamp(self.take()?)),
        })
    }

    fn take<T: Deserialize<'a>>(&mut self) -> Result<T, PackError> {
        let (value, rest) = postcard::take_from_bytes::<T>(self.values).map_err(|e| malformed(&e.to_string()))?;
        self.values = rest;
        Ok(value)
    }
}

fn uuid_text(bytes: [u8; 16]) -> String {
    uuid::Uuid::from_bytes(bytes).hyphenated().to_string()
}

fn malformed(what: &str) -> PackError {
    PackError::Malformed(what.to_owned())
}

mod shape;
#[cfg(test)]
mod tests;

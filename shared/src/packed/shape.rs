//! The shape of a change: its operations without their values, and the
//! compact form a pack carries them in.
//!
//! Serde's own form of an [`OpShape`] spends a byte on every enum tag and
//! flag, eight bytes for a typical `put` into the record just made. Here an
//! op is a head byte, the payloads the head calls for, and its action:
//!
//! ```text
//! head bits 0-1  object: 0 the root, 1 the previous op's object,
//!                2 Local(u32) follows, 3 an OpRef follows
//!      bits 2-4  key: 0 the dictionary entry after the previous op's
//!                dictionary key (the first: entry 0), 1 Known(u32)
//!                follows, 2 Text, 3 Uuid, 4 Head, 5 After(OpRef follows),
//!                6 after the previous op
//!      bit 5     insert
//!      bit 6     predecessors follow ([OpRef])
//!      bit 7     0
//! ```
//!
//! The dictionary lists a record's keys in the order autosurgeon writes
//! them, so most ops of a record are two bytes: the head and the action.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One change's operations, without values.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct Shape(pub(super) Vec<OpShape>);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct OpShape {
    pub(super) action: Action,
    pub(super) obj: Option<OpRef>,
    pub(super) key: KeyShape,
    pub(super) insert: bool,
    pub(super) pred: Vec<OpRef>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(super) enum OpRef {
    /// An earlier operation of the same change, by its index there.
    Local(u32),
    /// An operation of the pack's actor outside the change.
    Own(u64),
    /// An index into the pack's other actors, and a counter.
    Other(u32, u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(super) enum KeyShape {
    /// An index into [`super::DICTIONARY`].
    Known(u32),
    /// Any other map key (a record's id at the root, a photo's key), in
    /// the values as text.
    Text,
    /// Such a key that is a UUID, in the values as its 16 bytes.
    Uuid,
    Head,
    After(OpRef),
}

/// What an operation does, and the form its value takes in the values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(super) enum Action {
    MakeMap,
    MakeList,
    MakeText,
    MakeTable,
    Delete,
    Increment,
    Null,
    Bool,
    Text,
    Uuid,
    /// The text of the variable key of this change's op at that index.
    KeyCopy(u32),
    /// A text of [`super::DICTIONARY`] (a code such as `patrol` or `new`).
    Known(u32),
    Bytes,
    Int,
    Uint,
    F64,
    Counter,
    Timestamp,
}

const OBJ_ROOT: u8 = 0;
const OBJ_SAME: u8 = 1;
const OBJ_LOCAL: u8 = 2;
const OBJ_REF: u8 = 3;
const KEY_NEXT: u8 = 0;
const KEY_KNOWN: u8 = 1;
const KEY_TEXT: u8 = 2;
const KEY_UUID: u8 = 3;
const KEY_HEAD: u8 = 4;
const KEY_AFTER: u8 = 5;
const KEY_AFTER_PREVIOUS: u8 = 6;
const INSERT: u8 = 1 << 5;
const PREDS: u8 = 1 << 6;

impl Shape {
    fn encode(&self) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(self.0.len() * 3);
        let mut previous: Option<&OpShape> = None;
        let mut last_known: Option<u32> = None;
        for (at, op) in self.0.iter().enumerate() {
            let (obj, obj_payload) = match op.obj {
                None => (OBJ_ROOT, None),
                Some(o) if previous.is_some_and(|p| p.obj == Some(o)) => (OBJ_SAME, None),
                Some(OpRef::Local(i)) => (OBJ_LOCAL, Some(Payload::U32(i))),
                Some(r) => (OBJ_REF, Some(Payload::Ref(r))),
            };
            let next = last_known.map_or(0, |k| k + 1);
            let (key, key_payload) = match op.key {
                KeyShape::Known(k) if k == next => (KEY_NEXT, None),
                KeyShape::Known(k) => (KEY_KNOWN, Some(Payload::U32(k))),
                KeyShape::Text => (KEY_TEXT, None),
                KeyShape::Uuid => (KEY_UUID, None),
                KeyShape::Head => (KEY_HEAD, None),
                KeyShape::After(OpRef::Local(i)) if at > 0 && i as usize == at - 1 => (KEY_AFTER_PREVIOUS, None),
                KeyShape::After(r) => (KEY_AFTER, Some(Payload::Ref(r))),
            };
            if let KeyShape::Known(k) = op.key {
                last_known = Some(k);
            }
            let mut head = obj | key << 2;
            if op.insert {
                head |= INSERT;
            }
            if !op.pred.is_empty() {
                head |= PREDS;
            }
            out.push(head);
            for payload in [obj_payload, key_payload].into_iter().flatten() {
                out = match payload {
                    Payload::U32(n) => postcard::to_extend(&n, out).ok()?,
                    Payload::Ref(r) => postcard::to_extend(&r, out).ok()?,
                };
            }
            if !op.pred.is_empty() {
                out = postcard::to_extend(&op.pred, out).ok()?;
            }
            out = postcard::to_extend(&op.action, out).ok()?;
            previous = Some(op);
        }
        Some(out)
    }

    fn decode(mut bytes: &[u8]) -> Result<Self, String> {
        let mut ops: Vec<OpShape> = Vec::new();
        let mut last_known: Option<u32> = None;
        while let Some((&head, rest)) = bytes.split_first() {
            bytes = rest;
            if head & 0x80 != 0 {
                return Err("a shape op with bit 7 set".into());
            }
            let at = ops.len();
            let obj = match head & 0b11 {
                OBJ_ROOT => None,
                OBJ_SAME => ops.last().ok_or("the first op of a shape names no previous object")?.obj,
                OBJ_LOCAL => Some(OpRef::Local(take(&mut bytes)?)),
                _ => Some(take(&mut bytes)?),
            };
            let key = match (head >> 2) & 0b111 {
                KEY_NEXT => KeyShape::Known(last_known.map_or(Ok(0), |k| k.checked_add(1).ok_or("no next key"))?),
                KEY_KNOWN => KeyShape::Known(take(&mut bytes)?),
                KEY_TEXT => KeyShape::Text,
                KEY_UUID => KeyShape::Uuid,
                KEY_HEAD => KeyShape::Head,
                KEY_AFTER => KeyShape::After(take(&mut bytes)?),
                KEY_AFTER_PREVIOUS => {
                    let previous = at.checked_sub(1).ok_or("the first op of a shape follows no op")?;
                    KeyShape::After(OpRef::Local(u32::try_from(previous).map_err(|e| e.to_string())?))
                }
                _ => return Err("an unknown key form".into()),
            };
            if let KeyShape::Known(k) = key {
                last_known = Some(k);
            }
            let pred = if head & PREDS != 0 { take(&mut bytes)? } else { Vec::new() };
            let action = take(&mut bytes)?;
            ops.push(OpShape { action, obj, key, insert: head & INSERT != 0, pred });
        }
        Ok(Shape(ops))
    }
}

enum Payload {
    U32(u32),
    Ref(OpRef),
}

fn take<'a, T: Deserialize<'a>>(bytes: &mut &'a [u8]) -> Result<T, String> {
    let (value, rest) = postcard::take_from_bytes(bytes).map_err(|e| e.to_string())?;
    *bytes = rest;
    Ok(value)
}

impl Serialize for Shape {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let bytes = self.encode().ok_or_else(|| serde::ser::Error::custom("a shape could not be encoded"))?;
        serializer.serialize_bytes(&bytes)
    }
}

impl<'de> Deserialize<'de> for Shape {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let bytes: &[u8] = serde_bytes::deserialize(deserializer)?;
        Shape::decode(bytes).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_head_form_round_trips() {
        let ops = vec![
            OpShape { action: Action::MakeMap, obj: None, key: KeyShape::Uuid, insert: false, pred: vec![] },
            OpShape {
                action: Action::KeyCopy(0),
                obj: Some(OpRef::Local(0)),
                key: KeyShape::Known(0),
                insert: false,
                pred: vec![],
            },
            OpShape {
                action: Action::Known(3),
                obj: Some(OpRef::Local(0)),
                key: KeyShape::Known(1),
                insert: false,
                pred: vec![],
            },
            OpShape {
                action: Action::MakeList,
                obj: Some(OpRef::Local(0)),
                key: KeyShape::Known(9),
                insert: false,
                pred: vec![],
            },
            OpShape {
                action: Action::Text,
                obj: Some(OpRef::Local(3)),
                key: KeyShape::Head,
                insert: true,
                pred: vec![],
            },
            OpShape {
                action: Action::Int,
                obj: Some(OpRef::Local(3)),
                key: KeyShape::After(OpRef::Local(4)),
                insert: true,
                pred: vec![],
            },
            OpShape {
                action: Action::Delete,
                obj: Some(OpRef::Own(7)),
                key: KeyShape::After(OpRef::Other(0, 9)),
                insert: false,
                pred: vec![OpRef::Other(0, 9), OpRef::Own(3)],
            },
            OpShape {
                action: Action::Null,
                obj: Some(OpRef::Other(1, 2)),
                key: KeyShape::Text,
                insert: false,
                pred: vec![OpRef::Own(4)],
            },
        ];
        let shape = Shape(ops);
        let bytes = shape.encode().unwrap();
        assert_eq!(Shape::decode(&bytes).unwrap(), shape);
        assert!(bytes.len() < 40, "{} bytes for 8 ops", bytes.len());
    }

    #[test]
    fn a_first_op_cannot_refer_to_a_previous_one() {
        assert!(Shape::decode(&[OBJ_SAME, 0]).is_err());
        assert!(Shape::decode(&[KEY_AFTER_PREVIOUS << 2, 0]).is_err());
        assert!(Shape::decode(&[0x80, 0]).is_err());
        assert!(Shape::decode(&[7 << 2, 0]).is_err());
        assert!(Shape::decode(&[0]).is_err(), "an op without its action");
    }
}

//! The middle of a sync request as a pure function: gated messages, the
//! locked hot documents and their sync states in; the installs, one write
//! batch and the replies out, or a [`Refusal`]. No IO and no runtime: the
//! caller ([`super::SyncService::handle`]) does the loading, the
//! quarantine, the commit, and installs only a [`Plan`].
//!
//! The steps, in order: merge each message into its hot document and check
//! the schema ([`super::merge`]), then scope, actors and write rules on
//! what each merge changed ([`crate::access`]), then finish every document
//! (heads collapse, writes, replies: [`super::finish`]), then one batch.
//! The first refusal ends the request; every document it merged into is
//! left [`HotDoc::dirty`], for the caller to reload from the store.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use automerge::ChangeHash;
use automerge::sync::State;
use kheo_shared::ids::{DocId, ModelId};
use kheo_shared::protocol::DocMessage;
use kheo_shared::scalars::Timestamp;
use kheo_shared::schema;

use super::finish::{Install, finish};
use super::merge::prepare_at;
use crate::access::{self, Scope};
use crate::auth::Principal;
use crate::auth::rules::Violation;
use crate::docs::HotDoc;
use crate::error::AppError;
use crate::gate::GatedMessage;
use crate::org::OrgTree;
use crate::store::WriteBatch;

/// One document of a request, locked and loaded.
pub struct DocInput<'a> {
    pub id: DocId,
    pub hot: &'a mut HotDoc,
    /// The device's sync state for this document.
    pub state: State,
    pub gated: GatedMessage,
}

/// What an accepted request does.
pub struct Plan {
    /// The merges' bookkeeping, in id order, to install once the batch is queued.
    pub installs: Vec<Install>,
    /// Changes, sync states, model units, read-model rows, the device's last sync.
    pub batch: WriteBatch,
    pub replies: Vec<DocMessage>,
    /// The unit each merged model document names now.
    pub model_units: HashMap<ModelId, String>,
}

/// Why a request was refused, and what of it to keep.
#[derive(Debug)]
pub struct Refusal {
    pub quarantine: Option<Quarantine>,
    pub error: AppError,
}

/// Refused changes kept with their reason: refused is not lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantine {
    pub doc: DocId,
    pub changes: Vec<u8>,
    pub rule: &'static str,
    pub message: String,
}

impl From<AppError> for Box<Refusal> {
    fn from(error: AppError) -> Self {
        Box::new(Refusal { quarantine: None, error })
    }
}

impl Refusal {
    /// A rule's refusal of a document; its changes, if any, are kept.
    fn violation(id: DocId, received: Vec<u8>, v: Violation) -> Self {
        let quarantine = (!received.is_empty()).then(|| Quarantine {
            doc: id,
            changes: received,
            rule: v.rule,
            message: v.message.clone(),
        });
        Refusal {
            quarantine,
            error: AppError::Forbidden { rule: v.rule, message: v.message, doc: Some(id.to_string()) },
        }
    }
}

/// The changes of a message as received.
fn received(gated: &GatedMessage) -> Vec<u8> {
    gated.changes.iter().flat_map(|c| c.chunk.iter().copied()).collect()
}

/// The read check on what is in memory, before any document is locked or
/// loaded: a document whose model's unit is known (`units`) and outside
/// the scope is refused here. Documents of unknown models are checked
/// after the merge, on the unit it names.
pub fn check_read_scope(
    scope: &Scope<'_>,
    units: &HashMap<ModelId, String>,
    messages: &BTreeMap<DocId, GatedMessage>,
) -> Result<(), Box<Refusal>> {
    for (id, gated) in messages {
        if let Err(v) = scope.check_read(units.get(&id.model()).map(String::as_str)) {
            return Err(Box::new(Refusal::violation(*id, received(gated), v)));
        }
    }
    Ok(())
}

/// Plans a request: every document merged and checked, then finished.
/// `units` holds the known unit of the models the request names; `inputs`
/// come in id order. The merges go into the hot documents, which stay
/// dirty until the caller installs the plan (or restores them).
pub fn plan(
    now: Timestamp,
    who: &Principal,
    org: &OrgTree,
    units: &HashMap<ModelId, String>,
    inputs: Vec<DocInput<'_>>,
) -> Result<Plan, Box<Refusal>> {
    let scope = Scope { who, org };

    // Merge every message and check the schema.
    let mut prepared = Vec::with_capacity(inputs.len());
    let mut hots = Vec::with_capacity(inputs.len());
    let mut receipts = Vec::with_capacity(inputs.len());
    for DocInput { id, hot, state, gated } in inputs {
        let changes = received(&gated);
        match prepare_at(now, id, hot, state, gated, who) {
            Ok(p) => prepared.push(p),
            Err(e @ AppError::SchemaViolation { .. }) => {
                let message = e.to_string();
                return Err(Box::new(Refusal {
                    quarantine: Some(Quarantine { doc: id, changes, rule: "schema", message }),
                    error: e,
                }));
            }
            Err(AppError::Forbidden { rule, message, doc }) => {
                let quarantine = Some(Quarantine { doc: id, changes, rule, message: message.clone() });
                return Err(Box::new(Refusal { quarantine, error: AppError::Forbidden { rule, message, doc } }));
            }
            Err(e) => return Err(e.into()),
        }
        hots.push(hot);
        receipts.push(changes);
    }

    // Check scope, actors and write rules on what each merge changed.
    let mut new_units: HashMap<ModelId, String> = HashMap::new();
    for (p, hot) in prepared.iter().zip(hots.iter()) {
        if let (DocId::Model(model), Some(_)) = (p.id, &p.merged)
            && let Ok(profile) = schema::read_model(&hot.doc, model)
        {
            new_units.insert(model, profile.unit);
        }
    }
    for ((p, hot), received) in prepared.iter_mut().zip(hots.iter_mut()).zip(receipts) {
        let model = p.id.model();
        let unit = new_units.get(&model).or_else(|| units.get(&model)).map(String::as_str);
        let outcome = match &mut p.merged {
            None => scope.check_read(unit),
            Some(m) => {
                let waiting: BTreeSet<ChangeHash> = hot.waiting.keys().copied().collect();
                let change = access::Change {
                    id: &p.id,
                    merged: &mut hot.doc,
                    before: &m.before,
                    touched: &m.touched,
                    added: &m.added,
                    model_unit: unit,
                    waiting: &waiting,
                };
                scope
                    .check_read(units.get(&model).map(String::as_str))
                    .and_then(|()| access::check_write(&scope, change).map(drop))
            }
        };
        if let Err(v) = outcome {
            return Err(Box::new(Refusal::violation(p.id, received, v)));
        }
    }

    // Everything Automerge does with the merged documents happens before
    // any of them is installed: a failure here leaves them dirty.
    let mut finished = Vec::with_capacity(prepared.len());
    for (p, hot) in prepared.into_iter().zip(hots.iter_mut()) {
        finished.push(finish(p, hot, &who.device_id, now)?);
    }

    let mut batch = WriteBatch::default();
    let mut replies = Vec::new();
    let mut installs = Vec::new();
    for (f, hot) in finished.into_iter().zip(hots.iter()) {
        let mut stored = hot.stored;
        if let Some((install, write, rows)) = f.merge {
            if let Some(heads) = f.heads {
                batch.heads.insert(f.id, heads);
            }
            batch.read_model.extend(rows);
            batch.docs.push(write);
            installs.push(install);
            stored = true;
        }
        if let Some(reply) = f.reply {
            replies.push(DocMessage::new(f.id, reply));
        }
        // An id nobody ever wrote to leaves no trace.
        if stored {
            batch.sync_states.push((who.device_id.clone(), f.id, f.state.encode()));
        }
    }
    batch.model_units = new_units.iter().map(|(m, u)| (*m, u.clone())).collect();
    // Folded into the same group commit: a separate write would cost an fsync per request.
    batch.device_seen = Some((who.device_id.clone(), now.millis()));
    Ok(Plan { installs, batch, replies, model_units: new_units })
}

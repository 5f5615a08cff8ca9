//! The gate: every byte of a sync request that Automerge will read is
//! parsed and bounded here first.
//!
//! Automerge trusts the numbers in what it decodes: Bloom filter parameters
//! size loops and allocations, run lengths in op columns size the work of
//! applying a change, a compressed chunk inflates without a cap. A phone's
//! token can be stolen, so none of those numbers may reach Automerge before
//! this module has checked them against [`Limits`].
//!
//! The pieces, in the order bytes meet them:
//!
//! * [`bytes`]: a cursor whose counts are checked before anything is
//!   allocated for them;
//! * [`message`]: the sync message framing and its Bloom filters;
//! * [`change`]: each change chunk (checksum, header fields, inflated with
//!   a cap when compressed);
//! * [`columns`]: the op columns of a change, counted without expanding
//!   their runs;
//! * [`limits`]: the numbers.
//!
//! A [`Gate`] lives for one request and adds up what its messages ask for,
//! so that many small messages cannot add up to one huge request.
//!
//! ```
//! use kheo_server::gate::Gate;
//! let mut gate = Gate::default();
//! // No heads, no need, one `have` whose Bloom filter claims one entry
//! // with 2^32 - 1 probes: refused before Automerge sees it.
//! let hostile = [0x42, 0, 0, 1, 0, 9, 1, 10, 0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0, 0];
//! let refusal = gate.message(&hostile).err().unwrap();
//! assert!(refusal.to_string().contains("probes"), "{refusal}");
//! ```

pub mod bytes;
pub mod change;
pub mod columns;
pub mod limits;
pub mod message;

pub use change::GatedChange;
pub use limits::Limits;
pub use message::{GatedMessage, Refusal};

/// Why the gate refused part of a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GateError {
    #[error("malformed sync message: {0}")]
    Message(bytes::ReadError),
    #[error("malformed change: {0}")]
    Change(bytes::ReadError),
    #[error("{0}")]
    OverBudget(String),
}

/// The gate of one request: the limits and what the request used so far.
#[derive(Debug, Default)]
pub struct Gate {
    pub limits: Limits,
    pub changes: usize,
    pub ops: u64,
    pub change_bytes: usize,
}

impl Gate {
    pub fn new(limits: Limits) -> Self {
        Gate { limits, ..Gate::default() }
    }

    /// Checks one message and charges it to the request's budget.
    pub fn message(&mut self, bytes: &[u8]) -> Result<GatedMessage, GateError> {
        self.message_with(bytes, &[])
    }

    /// What is left of the request's budget for a pack to rebuild: no more
    /// changes or operations than the gate would then take.
    pub fn pack_budget(&self) -> kheo_shared::packed::Budget {
        let l = &self.limits;
        kheo_shared::packed::Budget {
            changes: l.max_changes_per_request.saturating_sub(self.changes),
            ops: 2 * l.max_ops_per_request.saturating_sub(self.ops),
            deps_per_change: l.max_deps,
            other_actors: l.max_other_actors,
        }
    }

    /// [`Gate::message`] with changes rebuilt from the message's pack.
    pub fn message_with(&mut self, bytes: &[u8], more: &[Vec<u8>]) -> Result<GatedMessage, GateError> {
        let gated = message::read_message(bytes, more, &self.limits).map_err(|r| match r {
            Refusal::Message(e) => GateError::Message(e),
            Refusal::Change(e) => GateError::Change(e),
        })?;
        self.changes += gated.changes.len();
        self.ops += gated.changes.iter().map(|c| c.ops).sum::<u64>();
        self.change_bytes += gated.changes.iter().map(|c| c.chunk.len()).sum::<usize>();
        let l = &self.limits;
        if self.changes > l.max_changes_per_request {
            return Err(GateError::OverBudget(format!(
                "more than {} changes in one request; send the rest in the next",
                l.max_changes_per_request
            )));
        }
        if self.ops > l.max_ops_per_request {
            return Err(GateError::OverBudget(format!(
                "more than {} operations in one request; send the rest in the next",
                l.max_ops_per_request
            )));
        }
        if self.change_bytes > l.max_change_bytes_per_request {
            return Err(GateError::OverBudget(format!(
                "more than {} bytes of changes in one request; send the rest in the next",
                l.max_change_bytes_per_request
            )));
        }
        Ok(gated)
    }
}

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod tests;

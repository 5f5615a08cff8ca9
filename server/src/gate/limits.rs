//! How much one request may ask of the server, in numbers a phone cannot
//! raise. Each limit is well above what the app writes: see the tests of
//! [`super`] for the sizes Automerge itself produces.

use kheo_shared::protocol;

#[derive(Debug, Clone)]
pub struct Limits {
    /// Hashes in a message's `heads`, `need`, or a `have`'s `last_sync`.
    pub max_hashes: usize,
    /// `have` entries in one message (Automerge sends at most one).
    pub max_haves: usize,
    /// Entries one Bloom filter may summarise.
    pub max_bloom_entries: u64,
    /// Bytes of one change, after inflating.
    pub max_change_bytes: usize,
    pub max_deps: usize,
    pub max_actor_bytes: usize,
    pub max_message_bytes: usize,
    pub max_other_actors: usize,
    pub max_columns: usize,
    pub max_ops_per_change: u64,
    /// For the whole request, summed over its messages.
    pub max_changes_per_request: usize,
    pub max_ops_per_request: u64,
    pub max_change_bytes_per_request: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_hashes: 1_024,
            max_haves: 4,
            max_bloom_entries: 1_000_000,
            max_change_bytes: 1 << 20,
            max_deps: 1_024,
            max_actor_bytes: 64,
            max_message_bytes: 4_096,
            max_other_actors: 1_024,
            max_columns: 64,
            max_ops_per_change: protocol::MAX_OPS_PER_REQUEST,
            max_changes_per_request: protocol::MAX_CHANGES_PER_REQUEST,
            max_ops_per_request: protocol::MAX_OPS_PER_REQUEST,
            max_change_bytes_per_request: 16 << 20,
        }
    }
}

impl Limits {
    /// For reading back what the server itself stored: nothing from a
    /// phone reaches the store without passing the default limits first,
    /// but merged chunks may hold many changes.
    pub fn trusted() -> Self {
        Limits { max_change_bytes: 256 << 20, max_ops_per_change: u64::from(u32::MAX), ..Limits::default() }
    }
}

//! Integration tests of sync: the real server on loopback with a temporary
//! store, and simulated devices. One binary, so the server code builds once.

mod app_files;
mod backup;
mod bad_input;
mod blobs;
mod changes;
mod concurrency;
mod convergence;
mod durability;
mod hostile;
mod keep;
mod load;
mod migrate_store;
mod model_list;
mod ops;
mod people;
mod processes;
mod property;
mod report_screens;
mod reports;
mod security;

use kheo_shared::ids::{ModelId, RecordId};
use kheo_shared::record::Record;
use kheo_shared::testdata;

/// `n` records of every kind, on days of `year`.
pub fn records(year: i32, n: usize) -> Vec<Record> {
    (0..n)
        .map(|i| {
            let day = format!("{year}-{:02}-{:02}", 1 + i % 12, 1 + i % 28);
            testdata::any_record(RecordId::new_random(), &day, i)
        })
        .collect()
}

pub fn new_model() -> ModelId {
    ModelId::new_random()
}

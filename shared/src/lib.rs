//! # kheo-shared
//!
//! What the phone and the server must agree on: the domain, the document
//! schema, validation and the sync protocol. No IO, no async runtime, no
//! browser API lives here, so the same code runs natively and in WebAssembly.
//!
//! ## Layout
//!
//! * [`ids`]: model, record and document identifiers, strictly parsed;
//! * [`codes`]: the closed vocabularies (fields, statuses, kinds, ...);
//! * [`scalars`]: instants, days and times of day, and how they are stored;
//! * [`model`], [`record`]: the domain types;
//! * [`evidence`]: photos on a record (by content hash) and locations;
//! * [`report`]: the figures of a consolidation report, shared by server and app;
//! * [`schema`]: how the types are laid out in Automerge documents, read
//!   back with typed errors, and validated, on both sides;
//! * [`protocol`]: the batched sync request and response, CBOR over gzip;
//! * [`client`]: the device side of sync as a sans-IO state machine;
//! * [`testdata`]: sample values for tests, benchmarks and demo data.

pub mod client;
pub mod codes;
pub mod evidence;
pub mod ids;
pub mod model;
pub mod packed;
pub mod protocol;
pub mod record;
pub mod report;
pub mod scalars;
pub mod schema;
pub mod testdata;

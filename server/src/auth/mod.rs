//! Who is asking, and what they may do.
//!
//! * [`secret`]: argon2id hashing of passwords and PINs;
//! * [`token`]: device tokens: random, shown once, stored as a SHA-256 hash;
//! * [`throttle`]: slows down guessing, per account and per address;
//! * [`principal`]: the authenticated device behind a request (the axum
//!   extractor that turns a bearer token into a [`Principal`]);
//! * [`rules`]: the write rules checked on every merged document.
//!
//! A login registers a device and binds a fresh Automerge actor id to it;
//! the sync path refuses any new change written under another actor, so no
//! one can write in another person's name.

pub mod principal;
pub mod rules;
pub mod secret;
pub mod throttle;
pub mod token;

pub use principal::Principal;

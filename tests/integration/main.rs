//! Integration tests: the real wasm core, through the library and the CLI,
//! on every backend.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, missing_docs)]

mod apps;
mod blake3_reference;
mod cli;
mod compile_cache;
mod concurrency;
mod conformance;
mod containment;
mod faults;
mod file_layout;
mod fixture;
mod garage;
mod hostile;
mod model;
mod output;
mod powerloss;
mod reliability;
mod s3;
mod store;

//! Integration tests: the real wasm core, through the library and the CLI,
//! on every backend.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, missing_docs)]

// Modules that run the CLI binary need the `cli` feature; Garage, `s3`.
mod aliases;
#[cfg(feature = "apps")]
mod apps;
mod blake3_reference;
#[cfg(feature = "apps")]
mod blobstore;
#[cfg(feature = "cli")]
mod cli;
#[cfg(feature = "cli")]
mod cli_observe;
#[cfg(feature = "cli")]
mod compile_cache;
mod concurrency;
mod conformance;
mod containment;
mod dedup_quota;
#[cfg(feature = "apps")]
mod embed;
mod faults;
mod file_layout;
mod fixture;
#[cfg(feature = "s3")]
mod garage;
#[cfg(feature = "apps")]
mod host_memory;
#[cfg(feature = "cli")]
mod hostile;
#[cfg(feature = "apps")]
mod launch;
#[cfg(feature = "apps")]
mod launch_attacks;
mod model;
mod names;
mod observe;
#[cfg(feature = "oci")]
mod oci;
#[cfg(feature = "cli")]
mod output;
mod powerloss;
mod put_work;
mod ranges;
mod reads;
#[cfg(feature = "cli")]
mod reliability;
#[cfg(all(feature = "s3", feature = "cli"))]
mod s3;
mod store;
mod streams;
mod watched;

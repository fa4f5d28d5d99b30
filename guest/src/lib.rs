//! The artifact store's core: every rule of the store, compiled to a wasm
//! component that exports the WIT `store` interface and imports `backend`.
//!
//! The rules live in plain modules ([`hash`], [`record`], [`ops`], [`tree`]) that are
//! unit-tested natively; the wasm export is a thin adapter over them. The
//! core keeps no state between calls: everything durable goes through the
//! backend.

pub mod hash;
pub mod ops;
pub mod outboard;
pub mod record;
pub mod tree;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod fake_backend;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod interleavings;

#[cfg(target_arch = "wasm32")]
#[allow(missing_docs, unsafe_code)]
mod component;

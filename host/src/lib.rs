//! A content-addressed artifact store for WebAssembly hosts.
//!
//! Artifacts (wasm modules, app manifests, config bundles) are stored by
//! their BLAKE3 hash. All of the store's rules (hashing, dedup, reference
//! counts, integrity checks on every read) run in a small wasm component,
//! the *core*, which this crate embeds and runs with wasmtime over a
//! [`Backend`](backend::Backend) that the host supplies: [`MemoryBackend`], [`FileBackend`],
//! or your own.
//!
//! ```
//! use artifacts::{ArtifactStore, ArtifactType};
//!
//! # fn main() -> Result<(), artifacts::Error> {
//! let dir = tempfile::tempdir().expect("temp dir");
//! let store = ArtifactStore::open_dir(dir.path())?;
//!
//! let hash = store.put(b"(module)", ArtifactType::WasmModule)?;
//! assert_eq!(store.get(&hash)?, b"(module)");
//!
//! // The same content again: one artifact, two references.
//! store.put(b"(module)", ArtifactType::WasmModule)?;
//! assert_eq!(store.stat(&hash)?.reference_count, 2);
//! assert_eq!(store.release(&hash)?, 1);
//! assert_eq!(store.release(&hash)?, 0);
//! assert!(!store.contains(&hash)?);
//! # Ok(())
//! # }
//! ```
//!
//! An [`ArtifactStore`] is `Send + Sync` and cheap to clone: calls from many
//! threads run on a pool of core instances, and the backend's
//! compare-and-swap keeps reference counts exact.
//!
//! The root holds what an embedder uses day to day. Writing a backend:
//! [`backend`]; the health report: [`health`]; sha256 aliases (OCI):
//! [`sha256`]; the store's sizes and defaults: [`limits`]; running apps:
//! `apps` (their limits in `apps::limits`); the wasmtime this crate links:
//! [`wasmtime`].

mod app_view;
#[cfg(feature = "apps")]
pub mod apps;
mod compile_cache;

mod core_component;
mod error;
mod hash;
pub mod health;
mod names;
mod observe;
pub mod sha256;
mod store;

pub mod backend;

/// `#[traced(OPERATION, field = expr, …)]`: a span per store operation and app run (see `observe`).
pub(crate) use artifacts_macros::traced;

/// The wasmtime this crate links, so that an embedder's own `Engine`,
/// `Linker` and `Store` are of the same version.
pub use wasmtime;

pub use app_view::{AppView, Quota, Usage};
pub use backend::file::FileBackend;
pub use backend::memory::MemoryBackend;
#[cfg(feature = "s3")]
pub use backend::s3::{S3Backend, S3Config};
pub use compile_cache::CompileCache;
pub use core_component::CORE_COMPONENT;
pub use error::{Error, QuotaKind};
pub use hash::{Hash, InvalidHash};
pub use names::{Names, Tag};
pub use store::{ArtifactStore, ArtifactType, Download, Metadata, StoreBuilder, Upload};

/// The store's size limits and defaults.
pub mod limits {
    pub use crate::store::pieces::STREAM_ABOVE_BYTES;
    pub use crate::store::{
        DEFAULT_GC_GRACE, DEFAULT_MAX_ARTIFACT_BYTES, MAX_ARTIFACT_BYTES_LIMIT, RANGE_LIMIT,
    };
}

// Crate-internal short paths for names that are public only under their
// modules (`backend`, `health`, `sha256`, `limits`).
#[cfg(test)]
pub(crate) use backend::Backend;
pub(crate) use backend::{BackendError, BlobInfo, SwapOutcome, VersionedRecord};
pub(crate) use health::{GcReport, HealthReport};
#[cfg(feature = "apps")]
pub(crate) use limits::RANGE_LIMIT;
pub(crate) use sha256::{Sha256Digest, Sha256Hasher};

//! The wasm core as the rest of the host sees it: the one place that runs
//! the core world's `bindgen!`, converts WIT types, implements the core's
//! `backend` imports, and pools instances. (The apps' imports, world `app`,
//! are `apps`'s: they reuse the WIT `types` and their conversions from here.)
//! The rest of the crate calls the core through [`CoreClient`] and the typed
//! calls of [`Instance`], with [`Hash`](crate::Hash)es and the crate's types.

mod bindings;
mod calls;
mod convert;
mod imports;
mod names;
mod pool;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The WIT package as world `core` binds it: world `app` reuses its `types`.
#[cfg(feature = "apps")]
pub(crate) use bindings::core_world::artifacts::store as wit;
pub(crate) use calls::Caller;
#[cfg(feature = "apps")]
pub(crate) use convert::{app_error, app_name_error, app_range_error, app_stream_error};
#[cfg(feature = "apps")]
pub(crate) use imports::backend_work;
pub use pool::CORE_COMPONENT;
pub(crate) use pool::Instance;

use crate::Error;
use crate::backend::Backend;
use crate::compile_cache::CompileCache;

/// The owner id under which the host holds its own references (the core's).
pub(crate) const HOST_OWNER: &str = "@host";

/// How the core's instances are set up.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CoreSettings {
    /// The most linear memory one instance may have.
    pub(crate) memory_limit: usize,
    /// The largest artifact: one call from the core to the backend may
    /// carry this much (plus room for the rest of the call).
    pub(crate) max_artifact_bytes: usize,
    /// The store's dedup is private (see `StoreBuilder::private_dedup`).
    pub(crate) private_dedup: bool,
}

/// The core over one backend: a pool of instances, each call on one of them.
/// Cheap to clone.
#[derive(Clone)]
pub(crate) struct CoreClient {
    pool: Arc<pool::Pool>,
    list_limit: u32,
    name_limit: u32,
    /// Whether the backend was marked as of the current format (names may
    /// be written) since this client was made.
    marked_current: Arc<AtomicBool>,
}

impl CoreClient {
    /// Compiles the core (once per process, or loads it from `cache`) and
    /// makes a pool of its instances over `backend`.
    pub(crate) fn new(
        backend: Arc<dyn Backend>,
        settings: CoreSettings,
        cache: Option<&CompileCache>,
    ) -> Result<Self, Error> {
        let pool = pool::Pool::new(backend, settings, cache)?;
        let (list_limit, name_limit) = pool.with(|i| Ok((i.list_limit()?, i.name_limit()?)))?;
        Ok(Self {
            pool: Arc::new(pool),
            list_limit,
            name_limit,
            marked_current: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Runs `f` on an idle instance (or a new one); see [`Instance`]'s calls.
    pub(crate) fn with<R>(
        &self,
        f: impl FnOnce(&mut Instance) -> Result<R, Error>,
    ) -> Result<R, Error> {
        self.pool.with(f)
    }

    /// The backend the core stores in.
    pub(crate) fn backend(&self) -> &Arc<dyn Backend> {
        &self.pool.backend
    }

    /// Whether the store's dedup is private (see `StoreBuilder::private_dedup`).
    pub(crate) fn private_dedup(&self) -> bool {
        self.pool.private_dedup()
    }

    /// The most entries one `list` call returns (the WIT's `list-limit`).
    pub(crate) fn list_limit(&self) -> u32 {
        self.list_limit
    }

    /// The most names one owner keeps (the WIT's `name-limit`).
    pub(crate) fn name_limit(&self) -> u32 {
        self.name_limit
    }

    /// As [`with`](Self::with), for a call that may write names: a store of
    /// format 2 (before names) is first marked as of the current format, so
    /// that an older host refuses it rather than misread it (once per
    /// client; marking again is harmless).
    pub(crate) fn names_write<R>(
        &self,
        f: impl FnOnce(&mut Instance) -> Result<R, Error>,
    ) -> Result<R, Error> {
        if !self.marked_current.load(Ordering::Acquire) {
            self.backend().finish_migration()?;
            self.marked_current.store(true, Ordering::Release);
        }
        self.pool.with(f)
    }
}

//! [`AppStoreCtx`]: what an app's `store` imports work on, each call
//! charged in fuel for the host work it causes.

use wasmtime::component::{Linker, ResourceTable};

use super::HostWork;
use super::memory::{Held, MemoryAccount};
use crate::{AppView, Error, Hash};

/// The state an app's `store` imports work on: the app's view of the store.
pub struct AppStoreCtx {
    view: AppView,
    /// The fuel its calls cost (see [`charge_host_work`](super::charge_host_work)).
    pub(crate) work: HostWork,
    /// The app's open uploads and downloads (the WIT `streams` resources).
    pub(crate) streams: ResourceTable,
    /// How many of them are open.
    pub(crate) open_streams: u32,
    /// Bytes written so far to each open upload (by its resource's rep):
    /// together with what the app holds, no more than its quota's total.
    pub(crate) staged: std::collections::HashMap<u32, u64>,
    /// The most names it may keep, if less than the store's limit (a
    /// launched child's, [`MAX_CHILD_NAMES`](super::MAX_CHILD_NAMES)).
    pub(crate) max_names: Option<u32>,
    /// The app's memory account, which the buffers its streams hold are
    /// counted against (unlimited unless the app runs under an
    /// [`AppHost`](super::AppHost)).
    pub(crate) memory: MemoryAccount,
    /// What each open stream (by its resource's rep) holds on the host.
    pub(crate) held: std::collections::HashMap<u32, Held>,
}

impl AppStoreCtx {
    /// Serves the app's `store` imports from `view`. Its calls are charged
    /// in fuel once the store has [`charge_host_work`](super::charge_host_work) as its call hook.
    pub fn new(view: AppView) -> Self {
        let work = HostWork::new(view.id());
        Self {
            view,
            work,
            streams: ResourceTable::new(),
            open_streams: 0,
            staged: std::collections::HashMap::new(),
            max_names: None,
            memory: MemoryAccount::unlimited(),
            held: std::collections::HashMap::new(),
        }
    }
}

/// Adds the WIT `store` interface (and its `types`) to `linker`, served by
/// the [`AppStoreCtx`] that `get` finds in each store's data.
pub fn add_to_linker<T: 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut AppStoreCtx,
) -> wasmtime::Result<()> {
    crate::core_component::add_app_store_to_linker(linker, get)
}

/// A hash an app passed: parsed once, here, as part of its (charged) call,
/// by the same rule as everywhere else ([`Hash`]'s `FromStr`: 64 lowercase
/// hex digits, optionally after `blake3:`), so the core only ever sees hex.
pub(crate) fn app_hash(text: &str) -> Result<Hash, Error> {
    text.parse::<Hash>()
        .map_err(|e| Error::InvalidHash(e.to_string()))
}

impl AppStoreCtx {
    /// The app's view of the store.
    pub(crate) fn view(&self) -> &AppView {
        &self.view
    }

    /// The view, and the work its calls are charged to.
    pub(crate) fn parts(&mut self) -> (&AppView, &mut HostWork) {
        (&self.view, &mut self.work)
    }

    /// Runs one store call, charged (see [`HostWork`]): the base cost and
    /// `bytes` before the work, the backend records after.
    pub(crate) fn charged<R>(
        &mut self,
        bytes: u64,
        op: impl FnOnce(&AppView) -> Result<R, Error>,
    ) -> Result<R, Error> {
        self.work.begin()?;
        self.work.bytes(bytes)?;
        let result = op(&self.view);
        self.work.end()?;
        result
    }

    /// A charged call about the artifact `hash` (text as the app sent it).
    pub(crate) fn charged_hash<R>(
        &mut self,
        hash: &str,
        op: impl FnOnce(&AppView, &Hash) -> Result<R, Error>,
    ) -> Result<R, Error> {
        self.charged(0, |view| op(view, &app_hash(hash)?))
    }

    /// A charged `list` page after `after` (text as the app sent it).
    pub(crate) fn charged_list<R>(
        &mut self,
        after: Option<&str>,
        op: impl FnOnce(&AppView, Option<&Hash>) -> Result<R, Error>,
    ) -> Result<R, Error> {
        self.charged(0, |view| {
            let after = after.map(app_hash).transpose()?;
            op(view, after.as_ref())
        })
    }

    /// A get or verify of `hash`, charged for its size before the content
    /// is read (the size comes from its metadata; nothing is charged for
    /// content the app cannot see, whose call fails without reading any).
    pub(crate) fn charged_read<R>(
        &mut self,
        hash: &str,
        op: impl FnOnce(&AppView, &Hash) -> Result<R, Error>,
    ) -> Result<R, Error> {
        self.work.begin()?;
        let result = app_hash(hash).and_then(|hash| {
            let size = self.view.stat(&hash).map_or(0, |m| m.size);
            self.work.bytes(size)?;
            op(&self.view, &hash)
        });
        self.work.end()?;
        result
    }
}

//! [`AppStoreCtx`]: what an app's `store` imports work on, each call
//! charged in fuel for the host work it causes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use wasmtime::component::ResourceTable;

use super::HostWork;
use super::memory::{Held, MemoryAccount};
use crate::{AppView, Error, Hash, QuotaKind};

/// The state an app's `store` imports work on: the app's view of the store.
pub(crate) struct AppStoreCtx {
    view: AppView,
    /// The fuel its calls cost (see [`charge_host_work`](super::limits::charge_host_work)).
    pub(crate) work: HostWork,
    /// The app's open uploads and downloads (the WIT `streams` resources).
    pub(crate) streams: ResourceTable,
    /// How many of them are open.
    pub(crate) open_streams: u32,
    /// Bytes written so far to each open upload (by its resource's rep),
    /// also counted in `staged_total`.
    pub(crate) staged: std::collections::HashMap<u32, u64>,
    /// Bytes staged by all of the app's unfinished uploads and
    /// `wasi:blobstore` values together.
    pub(crate) staged_total: StagedTotal,
    /// The most names it may keep, if less than the store's limit (a
    /// launched child's, [`MAX_CHILD_NAMES`](super::limits::MAX_CHILD_NAMES)).
    pub(crate) max_names: Option<u32>,
    /// The app's memory account, which the buffers its streams hold are
    /// counted against (unlimited unless the app runs under an
    /// [`AppHost`](super::AppHost)).
    pub(crate) memory: MemoryAccount,
    /// What each open stream (by its resource's rep) holds on the host.
    pub(crate) held: std::collections::HashMap<u32, Held>,
    /// What the current call hands back that the host holds until the
    /// call has returned it (a launched child's output, until it is in
    /// the app's memory); let go by [`charge_host_work`](super::limits::charge_host_work).
    pub(crate) handing_back: Option<Held>,
}

impl AppStoreCtx {
    /// Serves the app's `store` imports from `view`. Its calls are charged
    /// in fuel once the store has [`charge_host_work`](super::limits::charge_host_work) as its call hook.
    pub(crate) fn new(view: AppView) -> Self {
        let work = HostWork::new(view.id());
        Self {
            view,
            work,
            streams: ResourceTable::new(),
            open_streams: 0,
            staged: std::collections::HashMap::new(),
            staged_total: StagedTotal::default(),
            max_names: None,
            memory: MemoryAccount::unlimited(),
            held: std::collections::HashMap::new(),
            handing_back: None,
        }
    }
}

/// The bytes an app has written to uploads (the WIT `streams`) and
/// `wasi:blobstore` values it has not finished, all of them together: with
/// what it holds, no more than its quota's total, whichever interface
/// stages them. (Shared: a blobstore value's stream counts its writes
/// from inside the WASI resource table.)
#[derive(Debug, Clone, Default)]
pub(crate) struct StagedTotal(Arc<Staged>);

#[derive(Debug, Default)]
struct Staged {
    bytes: AtomicU64,
    /// What the app held when last read, and [`AppView::calls`] then: read
    /// again only after the app has made another call, so that writing a
    /// value in many small pieces costs no backend read per piece.
    held: Mutex<Option<(u64, u64)>>,
}

impl StagedTotal {
    /// Refuses `more` bytes if what the app holds now (read through
    /// `view` when it may have changed, unless its quota has no total),
    /// what it has staged and `more` would pass its quota's total.
    pub(crate) fn check(&self, view: &AppView, more: u64) -> Result<(), Error> {
        let limit = view.quota().max_bytes;
        if limit == u64::MAX {
            return Ok(());
        }
        let held = self.held(view)?;
        let requested = held.saturating_add(self.total()).saturating_add(more);
        if requested > limit {
            return Err(Error::QuotaExceeded {
                kind: QuotaKind::Bytes,
                limit,
                requested,
            });
        }
        Ok(())
    }

    /// What the app holds: the figure last read, unless it has made a call
    /// since.
    fn held(&self, view: &AppView) -> Result<u64, Error> {
        let calls = view.calls();
        let mut cached = self.0.held.lock().unwrap_or_else(|p| p.into_inner());
        match *cached {
            Some((at, held)) if at == calls => Ok(held),
            _ => {
                let held = view.usage()?.bytes;
                *cached = Some((calls, held));
                Ok(held)
            }
        }
    }

    /// The bytes staged now.
    pub(crate) fn total(&self) -> u64 {
        self.0.bytes.load(Ordering::Relaxed)
    }

    /// Counts `bytes` more as staged.
    pub(crate) fn add(&self, bytes: u64) {
        self.0.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Counts `bytes` fewer (finished or discarded).
    pub(crate) fn remove(&self, bytes: u64) {
        let _ = self
            .0
            .bytes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                Some(n.saturating_sub(bytes))
            });
    }
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

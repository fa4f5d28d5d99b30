//! `wasi:blobstore@0.2.0-draft` for apps, over the app's own view of the
//! store: a container is a set of the app's names under a reserved prefix
//! (see [`naming`]), an object's value is an artifact the app holds (so
//! equal values are stored once, charged to the app's quota once, and every
//! read is verified by the core).
//!
//! Every call is charged like a `store` call (in fuel, for the host work),
//! and what the values' `wasi:io` streams make the host do (hash, stage,
//! read and prove bytes) is charged as it is done, taken from the app's
//! fuel when the `wasi:io` call returns. An app has at most
//! [`MAX_BLOB_HANDLES`] containers and name streams open, and at most
//! [`MAX_OPEN_VALUES`] values and value streams, each holding at most one
//! 4 MiB piece on the host, counted against the app's memory limit.

mod bindings;
mod containers;
pub mod naming;
mod values;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use wasmtime::component::{HasData, Linker, ResourceTable};

use super::AppStoreCtx;
use super::limits::WorkMeter;
use crate::{AppView, Error};

/// The most containers and object-name streams an app has open at once
/// (one more is refused with an error naming this limit).
pub const MAX_BLOB_HANDLES: u32 = 64;

/// The most outgoing and incoming values (and the `wasi:io` streams made
/// from them) an app has open at once: each holds at most one 4 MiB piece
/// on the host (counted against the app's memory limit, with its own memories).
pub const MAX_OPEN_VALUES: u32 = 4;

/// The most containers and objects one `write-data` value is written to.
pub const MAX_WRITE_TARGETS: usize = 8;

/// Why a blobstore call failed; the app receives its text (the WIT's
/// `error` is a string).
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// A store call failed (quota, size, integrity, ...).
    #[error("{0}")]
    Store(#[from] Error),
    /// No container of that name (for this app).
    #[error("container {0:?} does not exist")]
    NoSuchContainer(String),
    /// `create-container` of a container that exists.
    #[error("container {0:?} already exists")]
    ContainerExists(String),
    /// No object of that name in the container.
    #[error("object {object:?} does not exist in container {container:?}")]
    NoSuchObject {
        /// The container.
        container: String,
        /// The object.
        object: String,
    },
    /// A container name the blobstore cannot keep.
    #[error("invalid container name {name:?}: {why}")]
    InvalidContainerName {
        /// The name (at most 80 characters of it).
        name: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// An object name the blobstore cannot keep.
    #[error("invalid object name {name:?}: {why}")]
    InvalidObjectName {
        /// The name (at most 80 characters of it).
        name: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// Too many resources of one kind open.
    #[error("too many open {what}: at most {limit} at once")]
    TooManyOpen {
        /// What kind (`containers and object-name streams`, `values`).
        what: &'static str,
        /// How many may be open.
        limit: u32,
    },
    /// A range the object does not have.
    #[error("range {start}..={end} is not within the object ({size} bytes)")]
    BadRange {
        /// First byte asked for.
        start: u64,
        /// Last byte asked for.
        end: u64,
        /// The object's size.
        size: u64,
    },
    /// `incoming-value-consume-sync` of more than the app could receive.
    #[error(
        "a value of {size} bytes is more than the app's memory budget has left \
         ({left} bytes): use incoming-value-consume-async"
    )]
    TooLargeForSync {
        /// The value's size.
        size: u64,
        /// What the app's memory budget has left.
        left: u64,
    },
    /// `write-data` of one value to more than [`MAX_WRITE_TARGETS`] objects.
    #[error("a value is written to at most {0} objects")]
    TooManyTargets(usize),
    /// A value whose stream failed (its error) is not stored.
    #[error("the value was not stored: {0}")]
    ValueFailed(String),
    /// The host would hold more for the app than its memory limit has
    /// room for (the app traps).
    #[error(transparent)]
    Memory(#[from] super::memory::MemoryRefused),
}

/// A call's result as the app receives it: the error's text, except that
/// running out of fuel and host failures trap the app (as `store` calls do).
fn answer<T>(result: Result<T, BlobError>) -> wasmtime::Result<Result<T, String>> {
    match result {
        Ok(value) => Ok(Ok(value)),
        Err(BlobError::Store(Error::OutOfFuel { .. })) => Err(wasmtime::Trap::OutOfFuel.into()),
        Err(BlobError::Store(Error::Core(m))) => Err(wasmtime::Error::msg(m)),
        Err(BlobError::Memory(e)) => Err(wasmtime::Error::new(e)),
        Err(e) => Ok(Err(e.to_string())),
    }
}

/// Counts open resources of one kind against a limit; each open one holds
/// a [`Slot`], which gives its place back when dropped (wherever it went:
/// a value consumed into a stream hands its slot on).
#[derive(Debug, Clone)]
struct Slots {
    open: Arc<AtomicU32>,
    limit: u32,
    what: &'static str,
}

/// One place of a [`Slots`].
#[derive(Debug)]
struct Slot(Arc<AtomicU32>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Slots {
    fn new(limit: u32, what: &'static str) -> Self {
        Self {
            open: Arc::new(AtomicU32::new(0)),
            limit,
            what,
        }
    }

    /// A place, if fewer than the limit are open.
    fn take(&self) -> Result<Slot, BlobError> {
        let limit = self.limit;
        self.open
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < limit).then_some(n + 1)
            })
            .map(|_| Slot(self.open.clone()))
            .map_err(|_| BlobError::TooManyOpen {
                what: self.what,
                limit,
            })
    }
}

/// One app run's blobstore state: what it has open (the bytes its
/// unfinished values stage are counted in its store context's staging,
/// with its uploads').
#[derive(Debug, Clone)]
pub(crate) struct BlobstoreCtx {
    handles: Slots,
    values: Slots,
}

impl Default for BlobstoreCtx {
    fn default() -> Self {
        Self {
            handles: Slots::new(MAX_BLOB_HANDLES, "containers and object-name streams"),
            values: Slots::new(MAX_OPEN_VALUES, "values and value streams"),
        }
    }
}

/// What the blobstore imports work on, borrowed from the app's store data
/// for one call: the WASI resource table (the values' streams are
/// `wasi:io` streams, so they live there, and so do the blobstore's own
/// resources), the app's store context (its view and the fuel its calls
/// cost) and its blobstore state.
pub(crate) struct BlobView<'a> {
    /// The table the app's WASI resources live in.
    pub table: &'a mut ResourceTable,
    /// The app's view of the store, and its host work.
    pub store: &'a mut AppStoreCtx,
    /// The app's blobstore state.
    pub ctx: &'a BlobstoreCtx,
    /// What the app's memory budget has left (an `incoming-value-consume-sync`
    /// of more is refused).
    pub memory_left: u64,
}

impl BlobView<'_> {
    /// Runs one charged call (see [`HostWork`](super::HostWork)): the base
    /// cost and `bytes` before the work, the backend records after.
    fn charged<R>(
        &mut self,
        bytes: u64,
        op: impl FnOnce(&AppView) -> Result<R, BlobError>,
    ) -> Result<R, BlobError> {
        let (view, work) = self.store.parts();
        work.begin()?;
        work.bytes(bytes)?;
        let result = op(view);
        work.end()?;
        result
    }

    /// The meter the values' streams charge their work to.
    fn meter(&self) -> WorkMeter {
        self.store.work.meter.clone()
    }
}

/// The [`HasData`] marker of the blobstore imports.
struct Blobstore;

impl HasData for Blobstore {
    type Data<'a> = BlobView<'a>;
}

/// Adds `wasi:blobstore@0.2.0-draft` (interfaces `types`, `container`,
/// `blobstore`) to `linker`, served by the [`BlobView`] that `get` makes
/// from each store's data. `wasi:io` must be linked too (wasmtime-wasi's
/// p2), and the store's call hook must be
/// [`charge_host_work`](super::limits::charge_host_work) for the calls to be charged.
pub(crate) fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> BlobView<'_>,
) -> wasmtime::Result<()> {
    bindings::types::add_to_linker::<T, Blobstore>(linker, get)?;
    bindings::container::add_to_linker::<T, Blobstore>(linker, get)?;
    bindings::blobstore::add_to_linker::<T, Blobstore>(linker, get)
}

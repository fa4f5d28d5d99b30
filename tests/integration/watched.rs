//! [`Watched`]: any backend, every call handed on to it unchanged after a
//! [`Watch`] has been told what it is. The one forwarding wrapper the tests
//! (and the range benchmark, which includes this file) count, record or
//! interfere through, so that none of them forwards the `Backend` trait by
//! hand (and none drops a method: a wrapper that forgot `stage`, say, would
//! quietly test the trait's default reads instead of the backend's).

use std::sync::Arc;

use artifacts::Hash;
use artifacts::backend::{
    Backend, BackendResult, BlobInfo, Listed, Space, Swap, SwapOutcome, VersionedRecord,
};
use artifacts::backend::{CleanedUp, Side, SideInfo, SideKind, Staged, Staging};

/// What a [`Watched`] backend tells of the calls it hands on. Every method
/// does nothing unless overridden.
pub trait Watch: Send + Sync + 'static {
    /// Any call, by the `Backend` method's name, before it is handed on.
    fn call(&self, name: &'static str) {
        let _ = name;
    }
    /// Records read from `space`, one by `read_record`, as many as a
    /// `list_records` returned: how many, and their bytes.
    fn records_read(&self, space: Space, records: u64, bytes: u64) {
        let _ = (space, records, bytes);
    }
    /// Bytes handed to the backend to keep, by the method `name`: a blob, a
    /// side object, a staged piece, a record's new data.
    fn written(&self, name: &'static str, bytes: u64) {
        let _ = (name, bytes);
    }
    /// A blob read whole (`offset` `None`) or a range of it: the bytes
    /// returned.
    fn blob_read(&self, offset: Option<u64>, bytes: u64) {
        let _ = (offset, bytes);
    }
    /// A call on the side object `key` (`write_side`, `read_side`, ...),
    /// before [`call`](Watch::call) is told of it.
    fn side(&self, name: &'static str, key: &Side) {
        let _ = (name, key);
    }
    /// An outboard read at `ranges`: the bytes returned.
    fn outboard_read(&self, ranges: &[(u64, u64)], bytes: u64) {
        let _ = (ranges, bytes);
    }
}

/// `inner`, watched by `watch`.
pub struct Watched<W> {
    pub inner: Arc<dyn Backend>,
    pub watch: Arc<W>,
}

impl<W> Clone for Watched<W> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            watch: self.watch.clone(),
        }
    }
}

impl<W: Watch> Watched<W> {
    pub fn new(inner: impl Into<Arc<dyn Backend>>, watch: W) -> Self {
        Self {
            inner: inner.into(),
            watch: Arc::new(watch),
        }
    }

    /// Tells of the call `name`, then hands it on (`then`).
    fn on<T>(&self, name: &'static str, then: impl FnOnce(&dyn Backend) -> T) -> T {
        self.watch.call(name);
        then(&*self.inner)
    }

    /// [`on`](Self::on) for a call on the side object `key`.
    fn on_side<T>(
        &self,
        name: &'static str,
        key: &Side,
        then: impl FnOnce(&dyn Backend) -> T,
    ) -> T {
        self.watch.side(name, key);
        self.on(name, then)
    }
}

fn len(bytes: &Option<Vec<u8>>) -> u64 {
    bytes.as_ref().map_or(0, |b| b.len() as u64)
}

impl<W: Watch> Backend for Watched<W> {
    fn write_blob(&self, key: &Hash, data: &[u8]) -> BackendResult<()> {
        self.watch.written("write_blob", data.len() as u64);
        self.on("write_blob", |b| b.write_blob(key, data))
    }
    fn read_blob(&self, key: &Hash) -> BackendResult<Option<Vec<u8>>> {
        let blob = self.on("read_blob", |b| b.read_blob(key))?;
        self.watch.blob_read(None, len(&blob));
        Ok(blob)
    }
    fn blob_size(&self, key: &Hash) -> BackendResult<Option<u64>> {
        self.on("blob_size", |b| b.blob_size(key))
    }
    fn read_blob_range(&self, key: &Hash, offset: u64, n: u64) -> BackendResult<Option<Vec<u8>>> {
        let part = self.on("read_blob_range", |b| b.read_blob_range(key, offset, n))?;
        if part.is_some() {
            self.watch.blob_read(Some(offset), len(&part));
        }
        Ok(part)
    }
    fn delete_blob(&self, key: &Hash, v: Option<u64>) -> BackendResult<bool> {
        self.on("delete_blob", |b| b.delete_blob(key, v))
    }
    fn list_blobs(&self, after: Option<&Hash>, limit: u32) -> BackendResult<Vec<BlobInfo>> {
        self.on("list_blobs", |b| b.list_blobs(after, limit))
    }
    fn read_record(&self, space: Space, key: &Hash) -> BackendResult<Option<VersionedRecord>> {
        let record = self.on("read_record", |b| b.read_record(space, key));
        let bytes = match &record {
            Ok(Some(r)) => r.data.len() as u64,
            _ => 0,
        };
        self.watch.records_read(space, 1, bytes);
        record
    }
    fn swap_record(&self, space: Space, key: &Hash, swap: Swap<'_>) -> BackendResult<SwapOutcome> {
        let bytes = swap.new.map_or(0, |d| d.len() as u64);
        self.watch.written("swap_record", bytes);
        self.on("swap_record", |b| b.swap_record(space, key, swap))
    }
    fn list_records(&self, space: Space, after: Option<&Hash>, limit: u32) -> Listed {
        let out = self.on("list_records", |b| b.list_records(space, after, limit))?;
        let bytes = out.iter().map(|(_, r)| r.data.len() as u64).sum();
        self.watch.records_read(space, out.len() as u64, bytes);
        Ok(out)
    }
    fn list_owners(&self, after: Option<&Hash>, limit: u32) -> BackendResult<Vec<Hash>> {
        self.on("list_owners", |b| b.list_owners(after, limit))
    }
    fn write_side(&self, key: &Side, data: &[u8]) -> BackendResult<()> {
        self.watch.written("write_side", data.len() as u64);
        self.on_side("write_side", key, |b| b.write_side(key, data))
    }
    fn read_side(&self, key: &Side) -> BackendResult<Option<Vec<u8>>> {
        self.on_side("read_side", key, |b| b.read_side(key))
    }
    fn read_side_ranges(
        &self,
        key: &Side,
        ranges: &[(u64, u64)],
    ) -> BackendResult<Option<Vec<Vec<u8>>>> {
        let parts = self.on_side("read_side_ranges", key, |b| b.read_side_ranges(key, ranges))?;
        if let (Some(parts), Side::Outboard(_)) = (&parts, key) {
            let bytes = parts.iter().map(|p| p.len() as u64).sum();
            self.watch.outboard_read(ranges, bytes);
        }
        Ok(parts)
    }
    fn side_size(&self, key: &Side) -> BackendResult<Option<u64>> {
        self.on_side("side_size", key, |b| b.side_size(key))
    }
    fn delete_side(&self, key: &Side) -> BackendResult<bool> {
        self.on_side("delete_side", key, |b| b.delete_side(key))
    }
    fn list_side(
        &self,
        kind: SideKind,
        after: Option<&Side>,
        limit: u32,
    ) -> BackendResult<Vec<SideInfo>> {
        self.on("list_side", |b| b.list_side(kind, after, limit))
    }
    fn stage(&self) -> BackendResult<Staging> {
        let inner = self.on("stage", |b| b.stage())?;
        Ok(Staging::new(WatchedStaging {
            inner,
            watch: self.watch.clone(),
        }))
    }
    fn staged_in_memory(&self, staged: u64) -> u64 {
        self.on("staged_in_memory", |b| b.staged_in_memory(staged))
    }
    fn clean_up(&self, older_than_ms: u64) -> BackendResult<CleanedUp> {
        self.on("clean_up", |b| b.clean_up(older_than_ms))
    }
    fn finish_migration(&self) -> BackendResult<()> {
        self.on("finish_migration", |b| b.finish_migration())
    }
    fn size_hint(&self, key: &Hash) -> Option<u64> {
        self.on("size_hint", |b| b.size_hint(key))
    }
    fn quarantine_blob(&self, key: &Hash) -> BackendResult<bool> {
        self.on("quarantine_blob", |b| b.quarantine_blob(key))
    }
    fn now(&self) -> u64 {
        self.on("now", |b| b.now())
    }
}

/// A watched backend's staging: each call told, then handed on.
struct WatchedStaging<W> {
    inner: Staging,
    watch: Arc<W>,
}

impl<W: Watch> Staged for WatchedStaging<W> {
    fn append(&mut self, data: &[u8]) -> BackendResult<()> {
        self.watch.written("append_staged", data.len() as u64);
        self.watch.call("append_staged");
        self.inner.append(data)
    }
    fn finish(&mut self) -> BackendResult<()> {
        self.watch.call("finish_staged");
        self.inner.finish()
    }
    fn store(&mut self, key: &Hash) -> BackendResult<()> {
        self.watch.call("write_staged");
        self.inner.store(key)
    }
    fn discard(self: Box<Self>) -> BackendResult<()> {
        self.watch.call("discard_staged");
        self.inner.discard()
    }
}

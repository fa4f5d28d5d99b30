//! [`Watched`]: any backend, every call handed on to it unchanged after a
//! [`Watch`] has been told what it is. The one forwarding wrapper the tests
//! (and the range benchmark, which includes this file) count, record or
//! interfere through, so that none of them forwards the `Backend` trait by
//! hand (and none drops a method: a wrapper that forgot `stage`, say, would
//! quietly test the trait's default staging instead of the backend's).

use std::sync::Arc;

use artifacts::backend::Staging;
use artifacts::{
    Backend, BackendResult, BlobInfo, Hash, Listed, Note, Sha256Digest, Space, Swap, SwapOutcome,
    VersionedRecord,
};

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
    /// Bytes handed to the backend to keep, by the method `name`: a blob, an
    /// outboard, a staged piece, a record's new data, a note.
    fn written(&self, name: &'static str, bytes: u64) {
        let _ = (name, bytes);
    }
    /// A blob read whole (`offset` `None`) or a range of it: the bytes
    /// returned.
    fn blob_read(&self, offset: Option<u64>, bytes: u64) {
        let _ = (offset, bytes);
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
    fn finish_migration(&self) -> BackendResult<()> {
        self.on("finish_migration", |b| b.finish_migration())
    }
    fn size_hint(&self, key: &Hash) -> Option<u64> {
        self.on("size_hint", |b| b.size_hint(key))
    }
    fn clean_temporary(&self, older_than_ms: u64) -> BackendResult<u64> {
        self.on("clean_temporary", |b| b.clean_temporary(older_than_ms))
    }
    fn remove_empty_spaces(&self, older_than_ms: u64) -> BackendResult<u64> {
        self.on("remove_empty_spaces", |b| {
            b.remove_empty_spaces(older_than_ms)
        })
    }
    fn quarantine_blob(&self, key: &Hash) -> BackendResult<bool> {
        self.on("quarantine_blob", |b| b.quarantine_blob(key))
    }
    fn list_quarantined(&self, limit: u32) -> BackendResult<Vec<BlobInfo>> {
        self.on("list_quarantined", |b| b.list_quarantined(limit))
    }
    fn write_note(&self, note: Note, data: &[u8]) -> BackendResult<()> {
        self.watch.written("write_note", data.len() as u64);
        self.on("write_note", |b| b.write_note(note, data))
    }
    fn read_note(&self, note: Note) -> BackendResult<Option<Vec<u8>>> {
        self.on("read_note", |b| b.read_note(note))
    }
    fn write_outboard(&self, key: &Hash, data: &[u8]) -> BackendResult<()> {
        self.watch.written("write_outboard", data.len() as u64);
        self.on("write_outboard", |b| b.write_outboard(key, data))
    }
    fn read_outboard(
        &self,
        key: &Hash,
        ranges: &[(u64, u64)],
    ) -> BackendResult<Option<Vec<Vec<u8>>>> {
        let parts = self.on("read_outboard", |b| b.read_outboard(key, ranges))?;
        if let Some(parts) = &parts {
            let bytes = parts.iter().map(|p| p.len() as u64).sum();
            self.watch.outboard_read(ranges, bytes);
        }
        Ok(parts)
    }
    fn outboard_size(&self, key: &Hash) -> BackendResult<Option<u64>> {
        self.on("outboard_size", |b| b.outboard_size(key))
    }
    fn delete_outboard(&self, key: &Hash) -> BackendResult<bool> {
        self.on("delete_outboard", |b| b.delete_outboard(key))
    }
    fn list_outboards(&self, after: Option<&Hash>, limit: u32) -> BackendResult<Vec<BlobInfo>> {
        self.on("list_outboards", |b| b.list_outboards(after, limit))
    }
    fn write_alias(&self, digest: &Sha256Digest, target: &Hash) -> BackendResult<()> {
        self.on("write_alias", |b| b.write_alias(digest, target))
    }
    fn read_alias(&self, digest: &Sha256Digest) -> BackendResult<Option<Hash>> {
        self.on("read_alias", |b| b.read_alias(digest))
    }
    fn delete_alias(&self, digest: &Sha256Digest) -> BackendResult<bool> {
        self.on("delete_alias", |b| b.delete_alias(digest))
    }
    fn list_aliases(
        &self,
        after: Option<&Sha256Digest>,
        limit: u32,
    ) -> BackendResult<Vec<Sha256Digest>> {
        self.on("list_aliases", |b| b.list_aliases(after, limit))
    }
    fn stage(&self) -> BackendResult<Staging> {
        self.on("stage", |b| b.stage())
    }
    fn append_staged(&self, staging: &mut Staging, data: &[u8]) -> BackendResult<()> {
        self.watch.written("append_staged", data.len() as u64);
        self.on("append_staged", |b| b.append_staged(staging, data))
    }
    fn finish_staged(&self, staging: &mut Staging) -> BackendResult<()> {
        self.on("finish_staged", |b| b.finish_staged(staging))
    }
    fn write_staged(&self, staging: &mut Staging, key: &Hash) -> BackendResult<()> {
        self.on("write_staged", |b| b.write_staged(staging, key))
    }
    fn staged_in_memory(&self, staged: u64) -> u64 {
        self.on("staged_in_memory", |b| b.staged_in_memory(staged))
    }
    fn discard_staged(&self, staging: Staging) -> BackendResult<()> {
        self.on("discard_staged", |b| b.discard_staged(staging))
    }
    fn now(&self) -> u64 {
        self.on("now", |b| b.now())
    }
}

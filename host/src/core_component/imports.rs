//! The core's imports: the `backend` interface over a [`Backend`], and the
//! memory limit of one core instance.

use std::cell::{Cell, RefCell};
use std::sync::Arc;

use wasmtime::ResourceLimiter;

use super::bindings::{backend as wit, types as wit_types};
use crate::backend::{Backend, Side, Space, Staging, Swap};
use crate::{BackendError, Error, Hash};

/// Everything an instance of the core sees of its host.
pub(crate) struct CoreState {
    pub(super) backend: Arc<dyn Backend>,
    /// What `write-staged-blob` stores, and the hash the host computed for
    /// it: set by the host around a `put-staged` call.
    pub(super) staged: Option<(Staging, Hash)>,
    /// The store's dedup is private (see `StoreBuilder::private_dedup`).
    pub(super) private_dedup: bool,
    pub(super) memory_limit: usize,
    pub(super) memory_used: usize,
}

impl ResourceLimiter for CoreState {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_limit {
            return Ok(false);
        }
        self.memory_used = desired;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 10_000)
    }
}

/// A backend key as the core passes it: four little-endian words of the
/// hash's 32 bytes (the WIT `digest`), a key whatever its bytes.
fn key((a, b, c, d): wit::Digest) -> Hash {
    let mut bytes = [0u8; 32];
    for (chunk, word) in bytes.chunks_exact_mut(8).zip([a, b, c, d]) {
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    Hash::from_bytes(bytes)
}

/// A backend key as the core takes it (see [`key`]).
pub(super) fn digest(hash: &Hash) -> wit::Digest {
    let mut words = [0u64; 4];
    for (word, chunk) in words.iter_mut().zip(hash.as_bytes().chunks_exact(8)) {
        let mut b = [0u8; 8];
        b.copy_from_slice(chunk);
        *word = u64::from_le_bytes(b);
    }
    let [a, b, c, d] = words;
    (a, b, c, d)
}

thread_local! {
    /// Backend records and bytes the core has read or written on this thread.
    static BACKEND_WORK: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

/// Counts backend work done by the core on the current thread (called by
/// the core's backend imports), so that an app's store call can be charged
/// for it.
fn note_backend_work(records: u64, bytes: u64) {
    BACKEND_WORK.with(|w| {
        let (r, b) = w.get();
        w.set((r.saturating_add(records), b.saturating_add(bytes)));
    });
}

thread_local! {
    /// The detail of the last "no space left" a backend import returned to
    /// the core on this thread, during the current core call: the core's
    /// WIT error carries backend failures as text, so the host keeps the
    /// type here and [`backend_failure`] restores it.
    static BACKEND_FULL: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Forgets any "no space left" seen: called as each core call starts.
pub(crate) fn clear_backend_full() {
    BACKEND_FULL.with(|f| f.borrow_mut().take());
}

/// The core's `backend` error with text `m`, as the host reports it: a
/// backend that ran out of space during the call makes it [`Error::Full`].
pub(crate) fn backend_failure(m: String) -> Error {
    match BACKEND_FULL.with(|f| f.borrow_mut().take()) {
        Some(detail) => Error::Full(detail),
        None => Error::Backend(m),
    }
}

/// Backend records and bytes counted on this thread so far.
#[cfg(feature = "apps")]
pub(crate) fn backend_work() -> (u64, u64) {
    BACKEND_WORK.with(Cell::get)
}

impl wit_types::Host for CoreState {}

impl wit::Host for CoreState {
    fn write_blob(&mut self, key_: wit::Digest, data: Vec<u8>) -> Result<(), BackendError> {
        note_backend_work(0, data.len() as u64);
        self.backend.write_blob(&key(key_), &data)
    }

    fn write_staged_blob(&mut self, key_: wit::Digest) -> Result<(), BackendError> {
        let key = key(key_);
        let (staging, hash) = self
            .staged
            .as_mut()
            .ok_or_else(|| BackendError::Io("the host staged no blob for this call".into()))?;
        if key != *hash {
            return Err(BackendError::InvalidKey(format!(
                "the staged content hashes to {hash}, not {key}"
            )));
        }
        staging.store(&key)
    }

    fn read_blob(&mut self, key_: wit::Digest) -> Result<Option<Vec<u8>>, BackendError> {
        let blob = self.backend.read_blob(&key(key_))?;
        note_backend_work(0, blob.as_ref().map_or(0, |b| b.len() as u64));
        Ok(blob)
    }

    fn blob_size(&mut self, key_: wit::Digest) -> Result<Option<u64>, BackendError> {
        self.backend.blob_size(&key(key_))
    }

    fn read_blob_range(
        &mut self,
        key_: wit::Digest,
        offset: u64,
        length: u64,
    ) -> Result<Option<Vec<u8>>, BackendError> {
        let part = self.backend.read_blob_range(&key(key_), offset, length)?;
        note_backend_work(0, part.as_ref().map_or(0, |b| b.len() as u64));
        Ok(part)
    }

    fn write_outboard(&mut self, key_: wit::Digest, data: Vec<u8>) -> Result<(), BackendError> {
        note_backend_work(0, data.len() as u64);
        self.backend.write_side(&Side::Outboard(key(key_)), &data)
    }

    fn read_outboard(
        &mut self,
        key_: wit::Digest,
        ranges: Vec<(u64, u64)>,
    ) -> Result<Option<Vec<Vec<u8>>>, BackendError> {
        let parts = self
            .backend
            .read_side_ranges(&Side::Outboard(key(key_)), &ranges)?;
        let bytes = parts
            .as_ref()
            .map_or(0, |p| p.iter().map(|b| b.len() as u64).sum());
        note_backend_work(1, bytes);
        Ok(parts)
    }

    fn outboard_size(&mut self, key_: wit::Digest) -> Result<Option<u64>, BackendError> {
        self.backend.side_size(&Side::Outboard(key(key_)))
    }

    fn delete_outboard(&mut self, key_: wit::Digest) -> Result<bool, BackendError> {
        self.backend.delete_side(&Side::Outboard(key(key_)))
    }

    fn delete_blob(
        &mut self,
        key_: wit::Digest,
        record_version: Option<u64>,
    ) -> Result<bool, BackendError> {
        self.backend.delete_blob(&key(key_), record_version)
    }

    fn list_blobs(
        &mut self,
        after: Option<wit::Digest>,
        limit: u32,
    ) -> Result<Vec<wit::BlobInfo>, BackendError> {
        let after = after.map(key);
        Ok(self
            .backend
            .list_blobs(after.as_ref(), limit)?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    fn read_record(
        &mut self,
        key_: wit::Digest,
    ) -> Result<Option<wit::VersionedRecord>, BackendError> {
        self.read_in(Space::Shared, key_)
    }

    fn swap_record(
        &mut self,
        key_: wit::Digest,
        expected: Option<u64>,
        new: Option<Vec<u8>>,
    ) -> Result<wit::SwapOutcome, BackendError> {
        self.swap_in(Space::Shared, key_, expected, new)
    }

    fn list_records(
        &mut self,
        after: Option<wit::Digest>,
        limit: u32,
    ) -> Result<Vec<wit::KeyedRecord>, BackendError> {
        self.list_in(Space::Shared, after, limit)
    }

    fn read_entry(
        &mut self,
        owner: wit::Digest,
        key_: wit::Digest,
    ) -> Result<Option<wit::VersionedRecord>, BackendError> {
        self.read_in(Space::Owner(key(owner)), key_)
    }

    fn swap_entry(
        &mut self,
        owner: wit::Digest,
        key_: wit::Digest,
        expected: Option<u64>,
        new: Option<Vec<u8>>,
    ) -> Result<wit::SwapOutcome, BackendError> {
        self.swap_in(Space::Owner(key(owner)), key_, expected, new)
    }

    fn list_entries(
        &mut self,
        owner: wit::Digest,
        after: Option<wit::Digest>,
        limit: u32,
    ) -> Result<Vec<wit::KeyedRecord>, BackendError> {
        self.list_in(Space::Owner(key(owner)), after, limit)
    }

    fn list_owners(
        &mut self,
        after: Option<wit::Digest>,
        limit: u32,
    ) -> Result<Vec<wit::Digest>, BackendError> {
        let after = after.map(key);
        Ok(self
            .backend
            .list_owners(after.as_ref(), limit)?
            .into_iter()
            .map(|k| digest(&k))
            .collect())
    }

    fn private_dedup(&mut self) -> wasmtime::Result<bool> {
        Ok(self.private_dedup)
    }

    fn now(&mut self) -> wasmtime::Result<u64> {
        Ok(self.backend.now())
    }

    fn convert_backend_error(&mut self, err: BackendError) -> wasmtime::Result<wit::BackendError> {
        if let BackendError::Full(detail) = &err {
            BACKEND_FULL.with(|f| *f.borrow_mut() = Some(detail.clone()));
        }
        Ok(err.into())
    }
}

/// The record calls of the core's `backend` interface, for either space.
impl CoreState {
    fn read_in(
        &self,
        space: Space,
        k: wit::Digest,
    ) -> Result<Option<wit::VersionedRecord>, BackendError> {
        let record = self.backend.read_record(space, &key(k));
        // A record is charged by its bytes too: an owner's names record
        // is up to 288 KB, read whole by every names call.
        let bytes = match &record {
            Ok(Some(r)) => r.data.len() as u64,
            _ => 0,
        };
        note_backend_work(1, bytes);
        Ok(record?.map(Into::into))
    }

    fn swap_in(
        &self,
        space: Space,
        k: wit::Digest,
        expected: Option<u64>,
        new: Option<Vec<u8>>,
    ) -> Result<wit::SwapOutcome, BackendError> {
        note_backend_work(1, new.as_ref().map_or(0, |d| d.len() as u64));
        let outcome =
            self.backend
                .swap_record(space, &key(k), Swap::new(expected, new.as_deref()))?;
        Ok(outcome.into())
    }

    fn list_in(
        &self,
        space: Space,
        after: Option<wit::Digest>,
        limit: u32,
    ) -> Result<Vec<wit::KeyedRecord>, BackendError> {
        let after = after.map(key);
        let records = self.backend.list_records(space, after.as_ref(), limit)?;
        // Each record read, and its bytes, is host work the caller is
        // charged for.
        let bytes = records.iter().map(|(_, r)| r.data.len() as u64).sum();
        note_backend_work(records.len() as u64, bytes);
        Ok(records.into_iter().map(Into::into).collect())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::MemoryBackend;

    #[test]
    fn a_key_crosses_as_four_little_endian_words() {
        let hash = Hash::from_hex(&"0123456789abcdef".repeat(4)).unwrap();
        let words = digest(&hash);
        assert_eq!(
            words.0,
            u64::from_le_bytes(*b"\x01\x23\x45\x67\x89\xab\xcd\xef")
        );
        assert_eq!(key(words), hash);
    }

    #[test]
    fn staged_content_is_stored_only_under_the_hash_the_host_staged() {
        let backend = MemoryBackend::new();
        let (a, b) = ("ab".repeat(32), "cd".repeat(32));
        let mut staging = backend.stage().unwrap();
        staging.append(b"staged").unwrap();
        let mut state = CoreState {
            backend: Arc::new(backend.clone()),
            staged: Some((staging, Hash::from_hex(&a).unwrap())),
            private_dedup: false,
            memory_limit: 0,
            memory_used: 0,
        };
        assert!(matches!(
            wit::Host::write_staged_blob(&mut state, digest(&Hash::from_hex(&b).unwrap())),
            Err(BackendError::InvalidKey(_))
        ));
        wit::Host::write_staged_blob(&mut state, digest(&Hash::from_hex(&a).unwrap())).unwrap();
        let read = |k: &str| backend.read_blob(&Hash::from_hex(k).unwrap()).unwrap();
        assert_eq!((read(&a), read(&b)), (Some(b"staged".to_vec()), None));
        state.staged = None;
        assert!(
            wit::Host::write_staged_blob(&mut state, digest(&Hash::from_hex(&a).unwrap())).is_err()
        );
    }

    #[test]
    fn disk_full_keeps_its_type_through_the_core() {
        let mut state = CoreState {
            backend: Arc::new(MemoryBackend::new()),
            staged: None,
            private_dedup: false,
            memory_limit: 0,
            memory_used: 0,
        };
        clear_backend_full();
        let full = BackendError::Full("writing blobs/ab/x: No space left on device".into());
        wit::Host::convert_backend_error(&mut state, full).unwrap();
        // The core reports it as text; the host gives it back its type, once.
        let text = "no space left: writing blobs/ab/x".to_owned();
        assert_eq!(
            backend_failure(text.clone()),
            Error::Full("writing blobs/ab/x: No space left on device".into())
        );
        assert_eq!(backend_failure(text.clone()), Error::Backend(text.clone()));
        // A call that starts afresh forgets one seen before.
        let full = BackendError::Full("earlier".into());
        wit::Host::convert_backend_error(&mut state, full).unwrap();
        clear_backend_full();
        assert_eq!(backend_failure(text.clone()), Error::Backend(text));
        assert_eq!(
            Error::from(BackendError::Full("x".into())),
            Error::Full("x".into())
        );
    }
}

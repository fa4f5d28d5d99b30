//! The storage contract the wasm core runs on, and its implementations.
//!
//! A [`Backend`] is deliberately small: blobs and versioned records by
//! [`struct@Hash`], enumeration, a guarded delete and compare-and-swap. All of the
//! store's rules (hashing, dedup, counts, integrity) live in the core; a
//! backend only has to be atomic. [`conformance`] checks that contract.

use std::any::Any;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::{BackendError, Hash};

pub mod file;
pub mod fs;
mod layout;
pub mod memory;
#[cfg(feature = "s3")]
pub mod s3;

/// A record with the version that [`Backend::swap_record`] compares against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionedRecord {
    /// Changes on every successful swap and is never reused for the same key.
    pub version: u64,
    /// The record's bytes, opaque to the backend.
    pub data: Vec<u8>,
}

/// A blob as [`Backend::list_blobs`] sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    /// The blob's key.
    pub key: Hash,
    /// Its size in bytes.
    pub size: u64,
    /// When it was last written, in milliseconds since the Unix epoch.
    pub modified: u64,
}

/// What [`Backend::swap_record`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwapOutcome {
    /// The version did not match; nothing changed.
    Conflict,
    /// Written under this new version.
    Written(u64),
    /// The record was deleted.
    Deleted,
}

/// A blob being written in pieces before its key is known: what
/// [`Backend::stage`] returns and the other `*_staged` methods take. Its
/// state is the backend's own (a temporary file, an upload, a buffer).
pub struct Staging {
    state: Box<dyn Any + Send>,
}

impl Staging {
    /// Staging with a backend's own state.
    pub fn new(state: impl Any + Send) -> Self {
        Self {
            state: Box::new(state),
        }
    }

    /// The backend's state, if it is a `T`.
    pub fn state_mut<T: Any>(&mut self) -> Option<&mut T> {
        self.state.downcast_mut()
    }

    /// The backend's state, taken back, if it is a `T`.
    pub fn into_state<T: Any>(self) -> Option<T> {
        self.state.downcast().ok().map(|b| *b)
    }
}

impl std::fmt::Debug for Staging {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Staging").finish_non_exhaustive()
    }
}

/// The error for a [`Staging`] that another backend started.
pub(crate) fn foreign_staging() -> BackendError {
    BackendError::Io("staging that this backend did not start".into())
}

/// Storage for the core: see the WIT `backend` interface, which this mirrors.
///
/// Every method must be atomic and safe to call from many threads (and, for
/// shared storage, many processes) at once.
pub trait Backend: Send + Sync + 'static {
    /// Stores a blob, replacing any blob there; readers never see part of it.
    fn write_blob(&self, key: &Hash, data: &[u8]) -> Result<(), BackendError>;
    /// Reads a blob, or `None` if there is none.
    fn read_blob(&self, key: &Hash) -> Result<Option<Vec<u8>>, BackendError>;
    /// The size of the blob, or `None` if there is none.
    fn blob_size(&self, key: &Hash) -> Result<Option<u64>, BackendError>;
    /// Up to `len` bytes of the blob from `offset` (fewer at its end), or
    /// `None` if there is no blob. By default reads the whole blob.
    fn read_blob_range(
        &self,
        key: &Hash,
        offset: u64,
        len: u64,
    ) -> Result<Option<Vec<u8>>, BackendError> {
        Ok(self
            .read_blob(key)?
            .map(|all| range_of(&all, offset, len).to_vec()))
    }
    /// Deletes the blob if, and only if, the record under the same key has
    /// `record_version` (`None`: there is no record); atomic with respect to
    /// `swap_record`.
    fn delete_blob(&self, key: &Hash, record_version: Option<u64>) -> Result<bool, BackendError>;
    /// Up to `limit` blobs with keys greater than `after`, ascending.
    fn list_blobs(&self, after: Option<&Hash>, limit: u32) -> Result<Vec<BlobInfo>, BackendError>;
    /// Reads a record, or `None` if there is none.
    fn read_record(&self, key: &Hash) -> Result<Option<VersionedRecord>, BackendError>;
    /// If the record's version is `expected` (`None`: absent), replaces it
    /// with `new` (`None`: deletes it).
    fn swap_record(
        &self,
        key: &Hash,
        expected: Option<u64>,
        new: Option<&[u8]>,
    ) -> Result<SwapOutcome, BackendError>;
    /// Up to `limit` records with keys greater than `after`, ascending.
    fn list_records(
        &self,
        after: Option<&Hash>,
        limit: u32,
    ) -> Result<Vec<(Hash, VersionedRecord)>, BackendError>;
    /// Reads the entry under `key` in the index space of `owner` (an owner
    /// key the core derives), or `None`. Index spaces hold versioned records
    /// exactly like the shared one, one space per owner.
    fn read_entry(&self, owner: &Hash, key: &Hash)
    -> Result<Option<VersionedRecord>, BackendError>;
    /// Compare-and-swap on an entry of `owner`'s index space, as
    /// [`swap_record`](Backend::swap_record) (atomic with respect to every
    /// other swap of the same entry).
    fn swap_entry(
        &self,
        owner: &Hash,
        key: &Hash,
        expected: Option<u64>,
        new: Option<&[u8]>,
    ) -> Result<SwapOutcome, BackendError>;
    /// Up to `limit` entries of `owner`'s index space with keys greater than
    /// `after`, ascending. Must cost what that space holds, not what the
    /// store holds: this is what makes an app's `count` and `list` cheap.
    fn list_entries(
        &self,
        owner: &Hash,
        after: Option<&Hash>,
        limit: u32,
    ) -> Result<Vec<(Hash, VersionedRecord)>, BackendError>;
    /// Up to `limit` owner keys greater than `after` that have an index space
    /// (possibly empty), ascending. Only gc and the host's `remove` list them.
    fn list_owners(&self, after: Option<&Hash>, limit: u32) -> Result<Vec<Hash>, BackendError>;
    /// Marks a store that [`migrate`](crate::ArtifactStore::migrate) has
    /// brought to the current layout (the file and S3 backends rewrite their
    /// `FORMAT` marker). By default nothing.
    fn finish_migration(&self) -> Result<(), BackendError> {
        Ok(())
    }
    /// The blob's size if the backend can tell cheaply (no network round
    /// trip), else `None`. Only a hint: large blobs are then verified by
    /// several core instances at once. By default `None`.
    fn size_hint(&self, key: &Hash) -> Option<u64> {
        let _ = key;
        None
    }
    /// Removes leftovers of interrupted writes (temporary files) older than
    /// `older_than_ms`; returns how many. Backends without any have nothing to do.
    fn clean_temporary(&self, older_than_ms: u64) -> Result<u64, BackendError> {
        let _ = older_than_ms;
        Ok(0)
    }
    /// Moves a damaged blob out of the way (somewhere an operator can look at
    /// it), so a later put of the right content can store it again. Returns
    /// whether there was a blob to move. By default the blob is deleted.
    fn quarantine_blob(&self, key: &Hash) -> Result<bool, BackendError> {
        let version = self.read_record(key)?.map(|r| r.version);
        self.delete_blob(key, version)
    }
    /// Starts a blob to be written in pieces ([`append_staged`]) and stored
    /// under its hash once that is known ([`write_staged`]): a large put
    /// streams through it instead of being held whole. By default the
    /// pieces are gathered in memory and stored with [`write_blob`]; the
    /// file backend stages in a temporary file.
    ///
    /// [`append_staged`]: Backend::append_staged
    /// [`write_staged`]: Backend::write_staged
    /// [`write_blob`]: Backend::write_blob
    fn stage(&self) -> Result<Staging, BackendError> {
        Ok(Staging::new(Vec::<u8>::new()))
    }
    /// Appends `data` to the staged blob.
    fn append_staged(&self, staging: &mut Staging, data: &[u8]) -> Result<(), BackendError> {
        staging
            .state_mut::<Vec<u8>>()
            .ok_or_else(foreign_staging)?
            .extend_from_slice(data);
        Ok(())
    }
    /// Says that every piece is in: a backend may make them durable now
    /// (the file backend syncs its file), so that this overlaps the
    /// hashing; [`write_staged`](Backend::write_staged) does whatever is
    /// left. By default nothing.
    fn finish_staged(&self, staging: &mut Staging) -> Result<(), BackendError> {
        let _ = staging;
        Ok(())
    }
    /// Stores the staged bytes under `key` as [`write_blob`](Backend::write_blob)
    /// does (atomically, replacing any blob there). May be called more than
    /// once; the staging stays as it was.
    fn write_staged(&self, staging: &mut Staging, key: &Hash) -> Result<(), BackendError> {
        let data = staging.state_mut::<Vec<u8>>().ok_or_else(foreign_staging)?;
        self.write_blob(key, data)
    }
    /// Drops the staged bytes (stored or not), freeing what they hold.
    fn discard_staged(&self, staging: Staging) -> Result<(), BackendError> {
        drop(staging);
        Ok(())
    }
    /// Milliseconds since the Unix epoch.
    fn now(&self) -> u64 {
        millis(SystemTime::now())
    }
}

/// `t` in milliseconds since the Unix epoch (0 before it).
pub(crate) fn millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The part of `data` from `offset`, at most `len` bytes, clamped to its end.
pub(crate) fn range_of(data: &[u8], offset: u64, len: u64) -> &[u8] {
    let start = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(data.len());
    let end = start
        .saturating_add(usize::try_from(len).unwrap_or(usize::MAX))
        .min(data.len());
    data.get(start..end).unwrap_or_default()
}

/// A fresh random record version, never zero and never `previous`.
pub(crate) fn new_version(previous: Option<u64>) -> u64 {
    loop {
        let mut bytes = [0u8; 8];
        // getrandom only fails where the OS has no entropy source at all.
        if getrandom::fill(&mut bytes).is_err() {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64);
            bytes = nanos.to_le_bytes();
        }
        let v = u64::from_le_bytes(bytes);
        if v != 0 && Some(v) != previous {
            return v;
        }
    }
}

pub mod conformance;

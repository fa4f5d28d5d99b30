//! The storage contract the wasm core runs on, and its implementations.
//!
//! A [`Backend`] is deliberately small: blobs and versioned records by
//! [`struct@Hash`], enumeration, a guarded delete and compare-and-swap. All of the
//! store's rules (hashing, dedup, counts, integrity) live in the core; a
//! backend only has to be atomic. [`conformance`] checks that contract.

use std::any::Any;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::{BackendError, Hash, Sha256Digest};

pub mod file;
pub mod fs;
mod layout;
pub mod memory;
#[cfg(feature = "s3")]
pub mod s3;

/// What a backend call returns.
pub type BackendResult<T> = Result<T, BackendError>;

/// Keyed records, as [`Backend::list_records`] returns them.
pub type Listed = BackendResult<Vec<(Hash, VersionedRecord)>>;

/// Where a record lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Space {
    /// The store's records: one per artifact, beside its blob (the core's
    /// reference counts and sizes).
    Shared,
    /// One owner's index space (an owner key the core derives): an entry
    /// per artifact the owner holds, and its usage. Each owner's space is
    /// separate, and [`Backend::list_owners`] enumerates them.
    Owner(Hash),
}

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

/// Small state the host keeps beside the artifacts ([`Backend::write_note`]):
/// never an artifact, never listed as a blob or record, and ignored by
/// versions that do not know it (so it needs no new format).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Note {
    /// What the last [`gc`](crate::ArtifactStore::gc) did and when: written
    /// by gc, read by [`health`](crate::ArtifactStore::health).
    LastGc,
}

impl Note {
    /// The note's name: `last-gc` (the file and S3 backends keep it as
    /// `notes/last-gc`).
    pub fn name(self) -> &'static str {
        match self {
            Self::LastGc => "last-gc",
        }
    }
}

/// A compare-and-swap of one record ([`Backend::swap_record`]): the version
/// it must have, and what to put in its place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Swap<'a> {
    /// The version the record must have (`None`: there must be none).
    pub expected: Option<u64>,
    /// The new data (`None`: delete the record).
    pub new: Option<&'a [u8]>,
}

impl<'a> Swap<'a> {
    /// If the record has version `expected` (`None`: absent), replace it
    /// with `new` (`None`: delete it).
    pub fn new(expected: Option<u64>, new: Option<&'a [u8]>) -> Self {
        Self { expected, new }
    }
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
///
/// Once stored under a key, staged content is that blob's content and must
/// not change: [`to_append`](Staging::to_append) refuses it from then on.
pub struct Staging {
    state: Box<dyn Any + Send>,
    stored: bool,
}

impl Staging {
    /// Staging with a backend's own state.
    pub fn new(state: impl Any + Send) -> Self {
        Self {
            state: Box::new(state),
            stored: false,
        }
    }

    /// The backend's state, if it is a `T` (else the staging is another
    /// backend's).
    pub fn state_mut<T: Any>(&mut self) -> BackendResult<&mut T> {
        self.state.downcast_mut().ok_or_else(foreign_staging)
    }

    /// The state, to append to: refused once the content was stored.
    pub fn to_append<T: Any>(&mut self) -> BackendResult<&mut T> {
        if self.stored {
            return Err(BackendError::Io(
                "staged content was already stored: appending would change a stored blob".into(),
            ));
        }
        self.state_mut()
    }

    /// The state, to store under a key: from now on it cannot grow.
    pub fn to_store<T: Any>(&mut self) -> BackendResult<&mut T> {
        if self.state.is::<T>() {
            self.stored = true;
        }
        self.state_mut()
    }

    /// The backend's state, taken back, if it is a `T`.
    pub fn into_state<T: Any>(self) -> BackendResult<T> {
        self.state
            .downcast()
            .map(|b| *b)
            .map_err(|_| foreign_staging())
    }
}

impl std::fmt::Debug for Staging {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Staging")
            .field("stored", &self.stored)
            .finish_non_exhaustive()
    }
}

/// The error for a [`Staging`] that another backend started.
fn foreign_staging() -> BackendError {
    BackendError::Io("staging that this backend did not start".into())
}

/// Storage for the core: see the WIT `backend` interface, which this mirrors.
///
/// Every method must be atomic and safe to call from many threads (and, for
/// shared storage, many processes) at once.
pub trait Backend: Send + Sync + 'static {
    /// Stores a blob, replacing any blob there; readers never see part of it.
    fn write_blob(&self, key: &Hash, data: &[u8]) -> BackendResult<()>;
    /// Reads a blob, or `None` if there is none.
    fn read_blob(&self, key: &Hash) -> BackendResult<Option<Vec<u8>>>;
    /// The size of the blob, or `None` if there is none.
    fn blob_size(&self, key: &Hash) -> BackendResult<Option<u64>>;
    /// Up to `len` bytes of the blob from `offset` (fewer at its end), or
    /// `None` if there is no blob. By default reads the whole blob.
    fn read_blob_range(&self, key: &Hash, offset: u64, len: u64) -> BackendResult<Option<Vec<u8>>> {
        Ok(self
            .read_blob(key)?
            .map(|all| range_of(&all, offset, len).to_vec()))
    }
    /// Deletes the blob if, and only if, the record under the same key in
    /// [`Space::Shared`] has `record_version` (`None`: there is no record);
    /// atomic with respect to `swap_record`.
    fn delete_blob(&self, key: &Hash, record_version: Option<u64>) -> BackendResult<bool>;
    /// Up to `limit` blobs with keys greater than `after`, ascending.
    fn list_blobs(&self, after: Option<&Hash>, limit: u32) -> BackendResult<Vec<BlobInfo>>;
    /// Reads the record under `key` in `space`, or `None` if there is none.
    fn read_record(&self, space: Space, key: &Hash) -> BackendResult<Option<VersionedRecord>>;
    /// If the record's version is `swap.expected` (`None`: absent), replaces
    /// it with `swap.new` (`None`: deletes it); atomic with respect to every other
    /// swap of the same record (and, in [`Space::Shared`], to `delete_blob`).
    fn swap_record(&self, space: Space, key: &Hash, swap: Swap<'_>) -> BackendResult<SwapOutcome>;
    /// Up to `limit` records of `space` with keys greater than `after`,
    /// ascending. Listing an owner's space must cost what that space holds,
    /// not what the store holds: this is what makes an app's `count` and
    /// `list` cheap.
    fn list_records(&self, space: Space, after: Option<&Hash>, limit: u32) -> Listed;
    /// Up to `limit` owner keys greater than `after` that have an index space,
    /// ascending. A space goes with its last record (one left empty, by a
    /// crash say, may be listed until [`remove_empty_spaces`](Backend::remove_empty_spaces)).
    /// Only gc, `health` and the host's `remove` list them.
    fn list_owners(&self, after: Option<&Hash>, limit: u32) -> BackendResult<Vec<Hash>>;
    /// Marks the store as of the current layout (the file and S3 backends
    /// rewrite their `FORMAT` marker, atomically): called once
    /// [`migrate`](crate::ArtifactStore::migrate) has brought a store to it,
    /// and before the first name is written into a store of format 2, so
    /// that an older host refuses it rather than misread it. Must be cheap
    /// to call again. By default nothing.
    fn finish_migration(&self) -> BackendResult<()> {
        Ok(())
    }
    /// The blob's size if the backend can tell cheaply (no network round
    /// trip), else `None`. Only a hint: large blobs are then verified by
    /// several core instances at once. By default `None`.
    fn size_hint(&self, key: &Hash) -> Option<u64> {
        let _ = key;
        None
    }
    /// Removes owner index spaces that hold nothing and have not changed
    /// for `older_than_ms`; returns how many. A backend whose spaces go
    /// with their last record has nothing to do (the default); the file
    /// backend removes an owner's directory with its last entry, and here
    /// any left (by a crash, or by versions that kept them).
    fn remove_empty_spaces(&self, older_than_ms: u64) -> BackendResult<u64> {
        let _ = older_than_ms;
        Ok(0)
    }
    /// Removes leftovers of interrupted writes (temporary files) older than
    /// `older_than_ms`; returns how many. Backends without any have nothing to do.
    fn clean_temporary(&self, older_than_ms: u64) -> BackendResult<u64> {
        let _ = older_than_ms;
        Ok(0)
    }
    /// Moves a damaged blob out of the way (somewhere an operator can look at
    /// it), so a later put of the right content can store it again. Returns
    /// whether there was a blob to move. By default the blob is deleted.
    fn quarantine_blob(&self, key: &Hash) -> BackendResult<bool> {
        let version = self.read_record(Space::Shared, key)?.map(|r| r.version);
        self.delete_blob(key, version)
    }
    /// Up to `limit` blobs that [`quarantine_blob`](Backend::quarantine_blob)
    /// moved aside and keeps (key, size, when), for a health report. By
    /// default none are kept (the default quarantine deletes).
    fn list_quarantined(&self, limit: u32) -> BackendResult<Vec<BlobInfo>> {
        let _ = limit;
        Ok(Vec::new())
    }
    /// Replaces a [`Note`] (a few hundred bytes the host keeps about the
    /// store, never an artifact) atomically, like [`write_blob`](Backend::write_blob).
    /// By default notes are not kept.
    fn write_note(&self, note: Note, data: &[u8]) -> BackendResult<()> {
        let _ = (note, data);
        Ok(())
    }
    /// Reads a [`Note`], or `None` if there is none (or notes are not kept).
    fn read_note(&self, note: Note) -> BackendResult<Option<Vec<u8>>> {
        let _ = note;
        Ok(None)
    }
    /// Stores the outboard of the blob `key` (BLAKE3's tree over its 16 KiB
    /// groups, which the core builds and checks; see
    /// [`ArtifactStore::get_range`](crate::ArtifactStore::get_range)),
    /// replacing any there, atomically like [`write_blob`](Backend::write_blob).
    /// An outboard is a function of its blob's content: a stale one is
    /// still right, and nothing is trusted before the core has checked it.
    /// By default outboards are not kept (every range read of a large
    /// artifact then reads all of it).
    fn write_outboard(&self, key: &Hash, data: &[u8]) -> BackendResult<()> {
        let _ = (key, data);
        Ok(())
    }
    /// The byte ranges `(offset, len)` of the outboard of `key`, in order,
    /// each cut short at its end, or `None` if there is none.
    fn read_outboard(
        &self,
        key: &Hash,
        ranges: &[(u64, u64)],
    ) -> BackendResult<Option<Vec<Vec<u8>>>> {
        let _ = (key, ranges);
        Ok(None)
    }
    /// The size of the outboard of `key`, or `None` if there is none.
    fn outboard_size(&self, key: &Hash) -> BackendResult<Option<u64>> {
        let _ = key;
        Ok(None)
    }
    /// Deletes the outboard of `key`; returns whether there was one. The
    /// core calls it when it deletes an artifact (with its blob), and gc
    /// for outboards whose blob is gone (a crash between the two).
    fn delete_outboard(&self, key: &Hash) -> BackendResult<bool> {
        let _ = key;
        Ok(false)
    }
    /// Up to `limit` outboards with keys greater than `after`, ascending
    /// (size and time as for blobs), for gc.
    fn list_outboards(&self, after: Option<&Hash>, limit: u32) -> BackendResult<Vec<BlobInfo>> {
        let _ = (after, limit);
        Ok(Vec::new())
    }
    /// Records that the content stored under `target` has the sha256
    /// digest `digest` (its *alias*: what OCI registries call it),
    /// replacing any alias of that digest, atomically like
    /// [`write_blob`](Backend::write_blob). An alias is a fact about
    /// content (two hashes of the same bytes), so a stale one is never
    /// wrong, only unused once its artifact is gone; only the host writes
    /// one, having hashed the content itself. By default aliases are not
    /// kept (a `sha256:` digest then resolves to nothing).
    fn write_alias(&self, digest: &Sha256Digest, target: &Hash) -> BackendResult<()> {
        let _ = (digest, target);
        Ok(())
    }
    /// The hash `digest` is an alias of, or `None` if there is none.
    fn read_alias(&self, digest: &Sha256Digest) -> BackendResult<Option<Hash>> {
        let _ = digest;
        Ok(None)
    }
    /// Deletes the alias `digest`; returns whether there was one. Only gc
    /// calls it, for aliases whose artifact is gone.
    fn delete_alias(&self, digest: &Sha256Digest) -> BackendResult<bool> {
        let _ = digest;
        Ok(false)
    }
    /// Up to `limit` alias digests greater than `after`, ascending, for gc.
    fn list_aliases(
        &self,
        after: Option<&Sha256Digest>,
        limit: u32,
    ) -> BackendResult<Vec<Sha256Digest>> {
        let _ = (after, limit);
        Ok(Vec::new())
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
    fn stage(&self) -> BackendResult<Staging> {
        Ok(Staging::new(Vec::<u8>::new()))
    }
    /// Appends `data` to the staged blob.
    fn append_staged(&self, staging: &mut Staging, data: &[u8]) -> BackendResult<()> {
        staging.to_append::<Vec<u8>>()?.extend_from_slice(data);
        Ok(())
    }
    /// Says that every piece is in: a backend may make them durable now
    /// (the file backend syncs its file), so that this overlaps the
    /// hashing; [`write_staged`](Backend::write_staged) does whatever is
    /// left. By default nothing.
    fn finish_staged(&self, staging: &mut Staging) -> BackendResult<()> {
        let _ = staging;
        Ok(())
    }
    /// Stores the staged bytes under `key` as [`write_blob`](Backend::write_blob)
    /// does (atomically, replacing any blob there). May be called more than
    /// once; the staging stays as it was.
    fn write_staged(&self, staging: &mut Staging, key: &Hash) -> BackendResult<()> {
        let data = staging.to_store::<Vec<u8>>()?;
        self.write_blob(key, data)
    }
    /// The most host memory one staging holds once `staged` bytes have
    /// been appended to it, besides what the backend keeps as stored
    /// content: counted against the memory of the app whose upload it is
    /// (before each append), so a backend that gathers staged bytes in
    /// memory must say how many. By default twice them (the default
    /// staging gathers the whole blob in a vector, which may have twice its
    /// length allocated); a backend that stages elsewhere (the file
    /// backend: a temporary file) or whose staging is its storage (the
    /// memory backend) says 0.
    fn staged_in_memory(&self, staged: u64) -> u64 {
        staged.saturating_mul(2)
    }
    /// Drops the staged bytes (stored or not), freeing what they hold.
    fn discard_staged(&self, staging: Staging) -> BackendResult<()> {
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

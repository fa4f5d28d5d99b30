//! The storage contract the rules run over. Keys are [`Hash`]es (content
//! hashes and derived keys), as bytes.

use crate::hash::Hash;

/// What a backend call returns: its answer, or its error rendered as text.
pub type Reply<T> = Result<T, String>;

/// A record listed with its key.
pub type Keyed = (Hash, Versioned);

/// A record with the version compare-and-swap checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    /// Changes on every write.
    pub version: u64,
    /// The encoded record.
    pub data: Vec<u8>,
}

/// What a compare-and-swap did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Swap {
    /// The expected version did not match.
    Conflict,
    /// Written under this version.
    Written(u64),
    /// Deleted.
    Deleted,
}

/// A record space: the shared records, or one owner's index space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Space<'a> {
    /// The shared records (the WIT `*-record` functions).
    Shared,
    /// The index space of this owner key (the WIT `*-entry` functions).
    Owner(&'a Hash),
}

/// Where a record is: its space, and its key there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place<'a> {
    /// The record's space.
    pub space: Space<'a>,
    /// The record's key in that space.
    pub key: &'a Hash,
}

impl<'a> Space<'a> {
    /// The record under `key` in this space.
    pub fn at(self, key: &'a Hash) -> Place<'a> {
        Place { space: self, key }
    }
}

/// The storage contract (mirrors the WIT `backend` interface). Errors are
/// already rendered as text: the core passes them on as [`Error::Backend`](super::Error::Backend).
///
/// Records live in [`Space`]s: the shared one, and one index space per
/// owner key, each listed on its own.
pub trait Backend {
    /// Stores a blob atomically.
    fn write_blob(&self, key: &Hash, data: &[u8]) -> Reply<()>;
    /// Stores the blob the host staged for this call under `key`, like
    /// `write_blob`. Only hosts that stage content (the WIT import) have one.
    fn write_staged_blob(&self, key: &Hash) -> Reply<()> {
        Err(format!("no staged blob to store under {key}"))
    }
    /// Reads a blob.
    fn read_blob(&self, key: &Hash) -> Reply<Option<Vec<u8>>>;
    /// The size of a blob, if there is one.
    fn blob_size(&self, key: &Hash) -> Reply<Option<u64>>;
    /// Up to `len` bytes of a blob from `offset` (fewer at its end).
    fn read_blob_range(&self, key: &Hash, offset: u64, len: u64) -> Reply<Option<Vec<u8>>>;
    /// Stores the outboard of the blob `key`, atomically, replacing any.
    fn write_outboard(&self, key: &Hash, data: &[u8]) -> Reply<()>;
    /// The byte ranges `(offset, len)` of the outboard of `key`, each cut
    /// short at its end; `None` if there is none.
    fn read_outboard(&self, key: &Hash, ranges: &[(u64, u64)]) -> Reply<Option<Vec<Vec<u8>>>>;
    /// The size of the outboard of `key`, if there is one.
    fn outboard_size(&self, key: &Hash) -> Reply<Option<u64>>;
    /// Deletes the outboard of `key`; returns whether there was one.
    fn delete_outboard(&self, key: &Hash) -> Reply<bool>;
    /// Deletes a blob if the shared record under `key` has `record_version`
    /// (`None`: there is none).
    fn delete_blob(&self, key: &Hash, record_version: Option<u64>) -> Reply<bool>;
    /// Lists blobs (key, size, modified) with keys after `after`, ascending.
    fn list_blobs(&self, after: Option<&Hash>, limit: u32) -> Reply<Vec<(Hash, u64, u64)>>;
    /// Reads the record at `at`.
    fn read_record(&self, at: Place) -> Reply<Option<Versioned>>;
    /// Compare-and-swap on the record at `at`: writes `new` (deletes it if
    /// `None`) if its version is `expected` (`None`: there is no record).
    fn swap_record(&self, at: Place, expected: Option<u64>, new: Option<&[u8]>) -> Reply<Swap>;
    /// Lists the records of `space` with keys after `after`, ascending.
    fn list_records(&self, space: Space, after: Option<&Hash>, limit: u32) -> Reply<Vec<Keyed>>;
    /// Lists the owner keys that have an index space, after `after`, ascending.
    fn list_owners(&self, after: Option<&Hash>, limit: u32) -> Reply<Vec<Hash>>;
    /// Milliseconds since the Unix epoch.
    fn now(&self) -> u64;
}

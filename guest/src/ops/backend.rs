//! The storage contract the rules run over.

/// What a backend call returns: its answer, or its error rendered as text.
pub type Reply<T> = Result<T, String>;

/// A record listed with its key.
pub type Keyed = (String, Versioned);

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

/// The storage contract (mirrors the WIT `backend` interface). Errors are
/// already rendered as text: the core passes them on as [`Error::Backend`](super::Error::Backend).
///
/// Records live in two kinds of space: the shared one (`*_record`), and
/// one index space per owner key (`*_entry`), listed on its own.
pub trait Backend {
    /// Stores a blob atomically.
    fn write_blob(&self, key: &str, data: &[u8]) -> Reply<()>;
    /// Stores the blob the host staged for this call under `key`, like
    /// `write_blob`. Only hosts that stage content (the WIT import) have one.
    fn write_staged_blob(&self, key: &str) -> Reply<()> {
        Err(format!("no staged blob to store under {key}"))
    }
    /// Reads a blob.
    fn read_blob(&self, key: &str) -> Reply<Option<Vec<u8>>>;
    /// The size of a blob, if there is one.
    fn blob_size(&self, key: &str) -> Reply<Option<u64>>;
    /// Deletes a blob if the record under `key` has `record_version` (`None`: there is none).
    fn delete_blob(&self, key: &str, record_version: Option<u64>) -> Reply<bool>;
    /// Lists blobs (key, size, modified) with keys after `after`, ascending.
    fn list_blobs(&self, after: Option<&str>, limit: u32) -> Reply<Vec<(String, u64, u64)>>;
    /// Reads a record.
    fn read_record(&self, key: &str) -> Reply<Option<Versioned>>;
    /// Compare-and-swap on a record.
    fn swap_record(&self, key: &str, expected: Option<u64>, new: Option<&[u8]>) -> Reply<Swap>;
    /// Lists records with keys after `after`, ascending.
    fn list_records(&self, after: Option<&str>, limit: u32) -> Reply<Vec<Keyed>>;
    /// Reads the entry `key` in the index space of `owner` (an owner key).
    fn read_entry(&self, owner: &str, key: &str) -> Reply<Option<Versioned>>;
    /// Compare-and-swap on an entry of `owner`'s index space.
    fn swap_entry(
        &self,
        owner: &str,
        key: &str,
        expected: Option<u64>,
        new: Option<&[u8]>,
    ) -> Reply<Swap>;
    /// Lists the entries of `owner`'s index space with keys after `after`, ascending.
    fn list_entries(&self, owner: &str, after: Option<&str>, limit: u32) -> Reply<Vec<Keyed>>;
    /// Lists the owner keys that have an index space, after `after`, ascending.
    fn list_owners(&self, after: Option<&str>, limit: u32) -> Reply<Vec<String>>;
    /// Milliseconds since the Unix epoch.
    fn now(&self) -> u64;
}

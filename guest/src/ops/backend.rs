//! The storage contract the rules run over.

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
    fn write_blob(&self, key: &str, data: &[u8]) -> Result<(), String>;
    /// Stores the blob the host staged for this call under `key`, like
    /// `write_blob`. Only hosts that stage content (the WIT import) have one.
    fn write_staged_blob(&self, key: &str) -> Result<(), String> {
        Err(format!("no staged blob to store under {key}"))
    }
    /// Reads a blob.
    fn read_blob(&self, key: &str) -> Result<Option<Vec<u8>>, String>;
    /// The size of a blob, if there is one.
    fn blob_size(&self, key: &str) -> Result<Option<u64>, String>;
    /// Deletes a blob if the record under `key` has `record_version` (`None`: there is none).
    fn delete_blob(&self, key: &str, record_version: Option<u64>) -> Result<bool, String>;
    /// Lists blobs (key, size, modified) with keys after `after`, ascending.
    fn list_blobs(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<(String, u64, u64)>, String>;
    /// Reads a record.
    fn read_record(&self, key: &str) -> Result<Option<Versioned>, String>;
    /// Compare-and-swap on a record.
    fn swap_record(
        &self,
        key: &str,
        expected: Option<u64>,
        new: Option<&[u8]>,
    ) -> Result<Swap, String>;
    /// Lists records with keys after `after`, ascending.
    fn list_records(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<(String, Versioned)>, String>;
    /// Reads the entry `key` in the index space of `owner` (an owner key).
    fn read_entry(&self, owner: &str, key: &str) -> Result<Option<Versioned>, String>;
    /// Compare-and-swap on an entry of `owner`'s index space.
    fn swap_entry(
        &self,
        owner: &str,
        key: &str,
        expected: Option<u64>,
        new: Option<&[u8]>,
    ) -> Result<Swap, String>;
    /// Lists the entries of `owner`'s index space with keys after `after`, ascending.
    fn list_entries(
        &self,
        owner: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<(String, Versioned)>, String>;
    /// Lists the owner keys that have an index space, after `after`, ascending.
    fn list_owners(&self, after: Option<&str>, limit: u32) -> Result<Vec<String>, String>;
    /// Milliseconds since the Unix epoch.
    fn now(&self) -> u64;
}

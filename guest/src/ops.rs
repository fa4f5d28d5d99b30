//! The store's rules, over any [`Backend`]: dedup, reference counts,
//! integrity checks and the deletion protocol.
//!
//! Every operation is a loop of read-record / compare-and-swap, so any number
//! of cores over one backend never lose an update:
//!
//! - a **put** of new content writes the blob, then creates the record; a
//!   record therefore always has its blob behind it. A put of known content
//!   only swaps the record's count up.
//! - a **delete** (release to zero, or remove) swaps the record to
//!   `Deleting`, deletes the blob *only if the record still has that
//!   version*, then deletes the record. Anyone who meets a `Deleting` record
//!   finishes the deletion first, so a crashed deleter blocks nobody, and a
//!   slow one can never delete a blob that a later put wrote.

use crate::hash::{hash_hex, validate};
use crate::record::{ArtifactType, Record, State};

/// How many compare-and-swap rounds an operation tries before giving up
/// with [`Error::Contended`].
pub const MAX_ATTEMPTS: u32 = 10_000;
/// The most entries one `list` call returns, and the page size used to read records.
pub const LIST_LIMIT: u32 = 1000;

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
/// already rendered as text: the core passes them on as [`Error::Backend`].
pub trait Backend {
    /// Stores a blob atomically.
    fn write_blob(&self, key: &str, data: &[u8]) -> Result<(), String>;
    /// Reads a blob.
    fn read_blob(&self, key: &str) -> Result<Option<Vec<u8>>, String>;
    /// Deletes a blob if the record under `key` has `record_version`.
    fn delete_blob(&self, key: &str, record_version: u64) -> Result<bool, String>;
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
    /// Milliseconds since the Unix epoch.
    fn now(&self) -> u64;
}

/// Why an operation failed (mirrors the WIT `error` variant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Nothing stored under this hash.
    NotFound(String),
    /// Not a valid hash.
    InvalidHash(String),
    /// Content does not match its address.
    Integrity {
        /// The address.
        expected: String,
        /// The hash of what was read.
        actual: String,
    },
    /// Record without content.
    MissingContent(String),
    /// Undecodable record.
    CorruptRecord(String),
    /// Contention outlasted [`MAX_ATTEMPTS`].
    Contended(String),
    /// The backend failed.
    Backend(String),
}

/// An artifact's metadata as the store interface returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    /// The content's address.
    pub hash: String,
    /// The decoded record.
    pub record: Record,
}

type Outcome<T> = Result<T, Error>;

fn checked(hash: &str) -> Outcome<()> {
    validate(hash).map_err(|why| Error::InvalidHash(format!("{why}: {:.80?}", hash)))
}

fn decode(hash: &str, data: &[u8]) -> Outcome<Record> {
    Record::decode(data).map_err(|why| Error::CorruptRecord(format!("record of {hash}: {why}")))
}

/// Reads the record under `hash` with its version, if it is live.
fn live(backend: &impl Backend, hash: &str) -> Outcome<Option<(u64, Record)>> {
    let Some(v) = backend.read_record(hash).map_err(Error::Backend)? else {
        return Ok(None);
    };
    let record = decode(hash, &v.data)?;
    Ok((record.state == State::Live).then_some((v.version, record)))
}

/// Finishes a deletion whose `Deleting` record has `version`. Idempotent:
/// whoever comes second finds the version gone and does nothing.
fn finish_delete(backend: &impl Backend, hash: &str, version: u64) -> Outcome<()> {
    backend.delete_blob(hash, version).map_err(Error::Backend)?;
    backend
        .swap_record(hash, Some(version), None)
        .map_err(Error::Backend)?;
    Ok(())
}

/// Stores `content` and returns its hash; known content takes one more reference.
pub fn put(backend: &impl Backend, content: &[u8], artifact_type: ArtifactType) -> Outcome<String> {
    let hash = hash_hex(content);
    let size = content.len() as u64;
    for _ in 0..MAX_ATTEMPTS {
        let current = backend.read_record(&hash).map_err(Error::Backend)?;
        let outcome = match current {
            None => {
                backend.write_blob(&hash, content).map_err(Error::Backend)?;
                let record = Record {
                    state: State::Live,
                    artifact_type,
                    size,
                    stored_at: backend.now(),
                    reference_count: 1,
                };
                backend.swap_record(&hash, None, Some(&record.encode()))
            }
            Some(v) => {
                let mut record = decode(&hash, &v.data)?;
                if record.state == State::Deleting {
                    finish_delete(backend, &hash, v.version)?;
                    continue;
                }
                record.reference_count = record.reference_count.saturating_add(1);
                backend.swap_record(&hash, Some(v.version), Some(&record.encode()))
            }
        };
        match outcome.map_err(Error::Backend)? {
            Swap::Conflict => continue,
            Swap::Written(_) | Swap::Deleted => return Ok(hash),
        }
    }
    Err(Error::Contended(hash))
}

/// Swaps the record to `Deleting` and deletes the artifact.
/// Returns false if the version moved on meanwhile.
fn delete(backend: &impl Backend, hash: &str, version: u64, mut record: Record) -> Outcome<bool> {
    record.state = State::Deleting;
    match backend
        .swap_record(hash, Some(version), Some(&record.encode()))
        .map_err(Error::Backend)?
    {
        Swap::Written(deleting) => finish_delete(backend, hash, deleting).map(|()| true),
        Swap::Conflict | Swap::Deleted => Ok(false),
    }
}

/// Drops one reference; returns how many are left. At zero the artifact is deleted.
pub fn release(backend: &impl Backend, hash: &str) -> Outcome<u64> {
    checked(hash)?;
    for _ in 0..MAX_ATTEMPTS {
        let Some((version, mut record)) = live(backend, hash)? else {
            return Err(Error::NotFound(hash.to_string()));
        };
        if record.reference_count <= 1 {
            if delete(backend, hash, version, record)? {
                return Ok(0);
            }
            continue;
        }
        record.reference_count -= 1;
        let remaining = record.reference_count;
        match backend
            .swap_record(hash, Some(version), Some(&record.encode()))
            .map_err(Error::Backend)?
        {
            Swap::Written(_) => return Ok(remaining),
            Swap::Conflict | Swap::Deleted => continue,
        }
    }
    Err(Error::Contended(hash.to_string()))
}

/// Deletes the artifact whatever its reference count.
pub fn remove(backend: &impl Backend, hash: &str) -> Outcome<()> {
    checked(hash)?;
    for _ in 0..MAX_ATTEMPTS {
        let Some((version, record)) = live(backend, hash)? else {
            return Err(Error::NotFound(hash.to_string()));
        };
        if delete(backend, hash, version, record)? {
            return Ok(());
        }
    }
    Err(Error::Contended(hash.to_string()))
}

/// The metadata of a live artifact.
pub fn stat(backend: &impl Backend, hash: &str) -> Outcome<Metadata> {
    checked(hash)?;
    match live(backend, hash)? {
        Some((_, record)) => Ok(Metadata {
            hash: hash.to_string(),
            record,
        }),
        None => Err(Error::NotFound(hash.to_string())),
    }
}

/// Whether a live artifact is stored under `hash`.
pub fn contains(backend: &impl Backend, hash: &str) -> Outcome<bool> {
    checked(hash)?;
    Ok(live(backend, hash)?.is_some())
}

/// Reads the content and checks it against its address and recorded size.
fn read_verified(backend: &impl Backend, hash: &str) -> Outcome<(Metadata, Vec<u8>)> {
    let meta = stat(backend, hash)?;
    let Some(content) = backend.read_blob(hash).map_err(Error::Backend)? else {
        return Err(Error::MissingContent(hash.to_string()));
    };
    let actual = hash_hex(&content);
    if actual != hash {
        return Err(Error::Integrity {
            expected: hash.to_string(),
            actual,
        });
    }
    if content.len() as u64 != meta.record.size {
        return Err(Error::CorruptRecord(format!(
            "record of {hash}: size {} but content has {} bytes",
            meta.record.size,
            content.len()
        )));
    }
    Ok((meta, content))
}

/// The content under `hash`, verified.
pub fn get(backend: &impl Backend, hash: &str) -> Outcome<Vec<u8>> {
    read_verified(backend, hash).map(|(_, content)| content)
}

/// Verifies the content under `hash` without returning it.
pub fn verify(backend: &impl Backend, hash: &str) -> Outcome<Metadata> {
    read_verified(backend, hash).map(|(meta, _)| meta)
}

/// Up to `limit` live artifacts with hashes after `after`, ascending.
pub fn list(backend: &impl Backend, after: Option<&str>, limit: u32) -> Outcome<Vec<Metadata>> {
    if let Some(after) = after {
        checked(after)?;
    }
    let limit = limit.min(LIST_LIMIT) as usize;
    let mut out = Vec::new();
    let mut cursor = after.map(str::to_string);
    while out.len() < limit {
        let page = backend
            .list_records(cursor.as_deref(), LIST_LIMIT)
            .map_err(Error::Backend)?;
        let Some((last, _)) = page.last() else { break };
        cursor = Some(last.clone());
        let full_page = page.len() as u32 >= LIST_LIMIT;
        for (key, v) in page {
            checked(&key)
                .map_err(|_| Error::Backend(format!("backend listed an invalid key {key:.80?}")))?;
            let record = decode(&key, &v.data)?;
            if record.state == State::Live && out.len() < limit {
                out.push(Metadata { hash: key, record });
            }
        }
        if !full_page {
            break;
        }
    }
    Ok(out)
}

/// Calls `each` on every live artifact.
fn for_each(backend: &impl Backend, mut each: impl FnMut(&Metadata)) -> Outcome<()> {
    let mut after: Option<String> = None;
    loop {
        let page = list(backend, after.as_deref(), LIST_LIMIT)?;
        page.iter().for_each(&mut each);
        match page.last() {
            Some(last) if page.len() as u32 == LIST_LIMIT => after = Some(last.hash.clone()),
            _ => return Ok(()),
        }
    }
}

/// How many artifacts are stored.
pub fn count(backend: &impl Backend) -> Outcome<u64> {
    let mut n = 0u64;
    for_each(backend, |_| n += 1)?;
    Ok(n)
}

/// The total size of all stored content.
pub fn total_bytes(backend: &impl Backend) -> Outcome<u64> {
    let mut total = 0u64;
    for_each(backend, |m| total = total.saturating_add(m.record.size))?;
    Ok(total)
}

//! Reading one artifact: its metadata, whether it is there, its content
//! verified.

use super::backend::Backend;
use super::caller::Caller;
use super::error::{Error, Outcome, be, checked, checked_caller};
use super::steps::artifact::shared;
use super::steps::index::{At, owner_key};
use crate::hash::Hash;
use crate::record::{ArtifactType, Entry, EntryState, Record};

/// An artifact's metadata as the caller sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    /// The content's address.
    pub hash: String,
    /// The content's length in bytes.
    pub size: u64,
    /// For an owner: the type of its own first put; for the host: the first in the store.
    pub artifact_type: ArtifactType,
    /// For an owner: the time of its own first put; for the host: the first in the store.
    pub stored_at: u64,
    /// The caller's own references.
    pub reference_count: u64,
}

impl Metadata {
    pub(super) fn of_entry(hash: &Hash, e: &Entry) -> Self {
        Self {
            hash: hash.to_string(),
            size: e.size,
            artifact_type: e.artifact_type,
            stored_at: e.stored_at,
            reference_count: e.count,
        }
    }

    /// The host's view: the shared record's, with its own reference count.
    pub(super) fn of_record(
        backend: &impl Backend,
        caller: &Caller,
        hash: &Hash,
        record: &Record,
    ) -> Outcome<Self> {
        Ok(Self {
            hash: hash.to_string(),
            size: record.size,
            artifact_type: record.artifact_type,
            stored_at: record.stored_at,
            reference_count: held(backend, caller, hash)?.map_or(0, |e| e.count),
        })
    }
}

/// The caller's live entry for `hash`, if any (its own index only).
pub(super) fn held(backend: &impl Backend, caller: &Caller, hash: &Hash) -> Outcome<Option<Entry>> {
    let space = owner_key(caller.owner);
    let at = At {
        space: &space,
        hash,
    };
    Ok(at
        .entry(backend)?
        .map(|(_, e)| e)
        .filter(|e| e.state == EntryState::Live))
}

/// The metadata of an artifact the caller may see: an owner's from its own
/// entry; the host's from the shared record, with its own reference count.
pub fn stat(backend: &impl Backend, caller: &Caller, hash: &str) -> Outcome<Metadata> {
    checked_caller(caller)?;
    stat_of(backend, caller, &checked(hash)?)
}

/// [`stat`] of a parsed hash.
pub(super) fn stat_of(backend: &impl Backend, caller: &Caller, hash: &Hash) -> Outcome<Metadata> {
    if !caller.admin {
        return match held(backend, caller, hash)? {
            Some(e) => Ok(Metadata::of_entry(hash, &e)),
            None => Err(Error::NotFound(hash.to_string())),
        };
    }
    let Some(record) = shared(backend, hash)? else {
        return Err(Error::NotFound(hash.to_string()));
    };
    Metadata::of_record(backend, caller, hash, &record)
}

/// Whether an artifact the caller may see is stored under `hash`. An owner
/// reads only its own index entry.
pub fn contains(backend: &impl Backend, caller: &Caller, hash: &str) -> Outcome<bool> {
    checked_caller(caller)?;
    let hash = &checked(hash)?;
    if caller.admin {
        return Ok(shared(backend, hash)?.is_some());
    }
    Ok(held(backend, caller, hash)?.is_some())
}

/// Reads the content and checks it against its address and recorded size.
fn read_verified(
    backend: &impl Backend,
    caller: &Caller,
    hash: &Hash,
) -> Outcome<(Metadata, Vec<u8>)> {
    let meta = stat_of(backend, caller, hash)?;
    let content = verified_content(backend, hash, meta.size)?;
    Ok((meta, content))
}

/// The recorded size of an artifact the caller may read: an owner's from
/// its own entry, the host's from the shared record (one read: a read of
/// content needs no reference count, which `stat` adds).
fn readable_size(backend: &impl Backend, caller: &Caller, hash: &Hash) -> Outcome<u64> {
    let size = if caller.admin {
        shared(backend, hash)?.map(|r| r.size)
    } else {
        held(backend, caller, hash)?.map(|e| e.size)
    };
    size.ok_or_else(|| Error::NotFound(hash.to_string()))
}

/// The whole content of `hash`, checked against its address and its
/// recorded `size`.
pub(super) fn verified_content(backend: &impl Backend, hash: &Hash, size: u64) -> Outcome<Vec<u8>> {
    let Some(content) = be(backend.read_blob(hash))? else {
        return Err(Error::MissingContent(hash.to_string()));
    };
    check_bytes(hash, size, &content)?;
    Ok(content)
}

/// That `content` is what is stored under `hash`: it hashes to `hash` and
/// has the recorded `size`.
fn check_bytes(hash: &Hash, size: u64, content: &[u8]) -> Outcome<()> {
    let actual = Hash::of(content);
    if actual != *hash {
        return Err(Error::Integrity {
            expected: hash.to_string(),
            actual: actual.to_string(),
        });
    }
    if content.len() as u64 != size {
        return Err(Error::CorruptRecord(format!(
            "record of {hash}: size {size} but content has {} bytes",
            content.len()
        )));
    }
    Ok(())
}

/// The content under `hash`, verified.
pub fn get(backend: &impl Backend, caller: &Caller, hash: &str) -> Outcome<Vec<u8>> {
    checked_caller(caller)?;
    let hash = &checked(hash)?;
    let size = readable_size(backend, caller, hash)?;
    verified_content(backend, hash, size)
}

/// `get` for a caller that has read the content under `hash` itself: the
/// same checks (the artifact is there for the caller, `content` hashes to
/// `hash` and has its recorded size) and the same errors, but the verdict
/// alone comes back, not the bytes. `missing-content` is the caller's to
/// see (it found no blob).
pub fn check_content(
    backend: &impl Backend,
    caller: &Caller,
    hash: &str,
    content: &[u8],
) -> Outcome<()> {
    checked_caller(caller)?;
    let hash = &checked(hash)?;
    let size = readable_size(backend, caller, hash)?;
    check_bytes(hash, size, content)
}

/// What a reader needs of one artifact, from one read of its record (an
/// owner's: of its own entry): its metadata and, when it is small, its
/// content verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// As `stat` gives it; the host's reference count only if asked for.
    pub metadata: Metadata,
    /// The content, verified, if smaller than the reader asked to take whole.
    pub content: Option<Vec<u8>>,
}

/// Opens `hash` for a read: whether the caller may read it (an owner reads
/// only its own entry before deciding), its metadata, and, if it is
/// smaller than `whole_below` bytes, its content verified as `get` does.
/// Larger content is the reader's to read and check against the hash and
/// the size given here. The host's reference count (one more index read)
/// only `with_count`; otherwise it is 0.
pub fn open(
    backend: &impl Backend,
    caller: &Caller,
    hash: &str,
    whole_below: u64,
    with_count: bool,
) -> Outcome<Opened> {
    checked_caller(caller)?;
    let hash = &checked(hash)?;
    let metadata = if caller.admin && !with_count {
        let Some(record) = shared(backend, hash)? else {
            return Err(Error::NotFound(hash.to_string()));
        };
        Metadata {
            hash: hash.to_string(),
            size: record.size,
            artifact_type: record.artifact_type,
            stored_at: record.stored_at,
            reference_count: 0,
        }
    } else {
        stat_of(backend, caller, hash)?
    };
    let content = if metadata.size < whole_below {
        Some(verified_content(backend, hash, metadata.size)?)
    } else {
        None
    };
    Ok(Opened { metadata, content })
}

/// Verifies the content under `hash` without returning it.
pub fn verify(backend: &impl Backend, caller: &Caller, hash: &str) -> Outcome<Metadata> {
    checked_caller(caller)?;
    let hash = &checked(hash)?;
    read_verified(backend, caller, hash).map(|(meta, _)| meta)
}

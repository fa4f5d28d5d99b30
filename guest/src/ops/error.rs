//! Why an operation failed, and the checks that refuse a call before it
//! reaches the backend.

use super::Caller;
use crate::hash::Hash;
use crate::record::{Entry, Record, validate_owner};

/// Which limit a put would have broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaKind {
    /// Total bytes of the owner's distinct artifacts.
    Bytes,
    /// Number of the owner's distinct artifacts.
    Artifacts,
    /// Size of one artifact.
    ArtifactBytes,
    /// Number of the owner's names.
    Names,
}

/// Why an operation failed (mirrors the WIT `error` variant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Nothing stored under this hash (or nothing this caller may see).
    NotFound(String),
    /// Not a valid hash.
    InvalidHash(String),
    /// Not a valid owner id.
    InvalidOwner(String),
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
    /// The put would break the caller's quota; nothing was written.
    QuotaExceeded {
        /// Which limit.
        kind: QuotaKind,
        /// The limit.
        limit: u64,
        /// What the put would have made it.
        requested: u64,
    },
    /// Contention outlasted [`MAX_ATTEMPTS`](super::MAX_ATTEMPTS).
    Contended(String),
    /// The backend failed.
    Backend(String),
    /// Not a valid name; the text says why.
    InvalidName(String),
    /// `tag-replace` found the name pointing elsewhere (`None`: absent).
    NameConflict(Option<String>),
    /// `get-range` of bytes past the artifact's end.
    OutOfRange {
        /// The first byte asked for.
        offset: u64,
        /// How many bytes.
        length: u64,
        /// The artifact's size.
        size: u64,
    },
    /// `get-range` of more than this many bytes.
    RangeTooLong(u64),
}

pub(super) type Outcome<T> = Result<T, Error>;

/// A caller's hash, parsed: the one place text becomes a [`Hash`].
pub(super) fn checked(hash: &str) -> Outcome<Hash> {
    Hash::parse(hash).map_err(|why| Error::InvalidHash(format!("{why}: {:.80?}", hash)))
}

pub(super) fn checked_caller(caller: &Caller) -> Outcome<()> {
    validate_owner(caller.owner).map_err(Error::InvalidOwner)
}

/// Refuses a put that would make something `requested` while its quota is
/// `limit`.
pub(super) fn within(kind: QuotaKind, limit: u64, requested: u64) -> Outcome<()> {
    if requested > limit {
        return Err(Error::QuotaExceeded {
            kind,
            limit,
            requested,
        });
    }
    Ok(())
}

pub(super) fn decode(hash: &Hash, data: &[u8]) -> Outcome<Record> {
    Record::decode(data).map_err(|why| Error::CorruptRecord(format!("record of {hash}: {why}")))
}

pub(super) fn decode_entry(hash: &Hash, data: &[u8]) -> Outcome<Entry> {
    Entry::decode(data).map_err(|why| Error::CorruptRecord(format!("index entry of {hash}: {why}")))
}

pub(super) fn be<T>(r: Result<T, String>) -> Outcome<T> {
    r.map_err(Error::Backend)
}

//! The layout the file and S3 backends share: the `FORMAT` marker and its
//! check, where blobs, records and owner index spaces live, and how a
//! versioned record is encoded.
//!
//! ```text
//! FORMAT                  the layout's marker (file and S3 differ in one word)
//! blobs/ab/abcdef…        content, named by its hash, sharded by its first byte
//! records/ab/abcdef…      8-byte little-endian version, then the core's record
//! outboards/ab/abcdef…    BLAKE3's tree of a blob of 256 KiB or more (verified ranges)
//! aliases/ab/abcdef…      a sha256 digest (its hex) and the hash it is an alias of
//! owners/…/1234…/abcdef…  an owner's index space, stored as records are
//!                         (file: sharded like blobs; S3: one flat folder)
//! notes/last-gc           what the last gc did (a `Note`; older versions never look)
//! ```
//!
//! This is the one place a [`struct@Hash`] becomes a name ([`name`]) and a
//! name becomes a hash ([`parse_name`]); every path and object key is built
//! from those two.

use std::fmt;

use super::{BackendResult, Swap, SwapOutcome, VersionedRecord, new_version};
use crate::{BackendError, Hash, Sha256Digest};

/// The name of the format marker, at the root of a store.
pub(crate) const FORMAT: &str = "FORMAT";
/// The folder of blobs.
pub(crate) const BLOBS: &str = "blobs";
/// The folder of records.
pub(crate) const RECORDS: &str = "records";
/// The folder of owner index spaces.
pub(crate) const OWNERS: &str = "owners";
/// The folder of outboards (BLAKE3's tree of a large blob, for verified
/// ranges), sharded like blobs. Older versions never look in it, so a store
/// with outboards stays the same format (see `outboard_key`).
pub(crate) const OUTBOARDS: &str = "outboards";

/// The folder of sha256 aliases (`aliases/ab/<sha256 hex>`, holding the
/// BLAKE3 hash it names in hex), sharded like blobs. A new folder, like
/// `outboards/`, and for the same reasons no new `FORMAT`: older versions
/// list only `blobs/`, `records/` and `owners/`, so they read such a store
/// exactly as before and leave the aliases alone; and an alias is a fact
/// about content, so one they leave behind is never wrong, only unused
/// until gc removes it once its artifact is gone.
pub(crate) const ALIASES: &str = "aliases";

/// The folder of notes (`Note`: small state about the store, not
/// artifacts). Older versions never look in it, so it needs no new format.
pub(crate) const NOTES: &str = "notes";

/// Where a note lives: `notes/last-gc`.
pub(crate) fn note_key(note: super::Note) -> String {
    format!("{NOTES}/{}", note.name())
}

/// The file backend's `FORMAT` for this layout.
pub const FILE_FORMAT: Format = Format {
    current: "artifacts-store 3\n",
    v2: "artifacts-store 2\n",
    v1: "artifacts-store 1\n",
};

/// The S3 backend's `FORMAT` for this layout.
#[cfg_attr(not(feature = "s3"), allow(dead_code))]
pub const S3_FORMAT: Format = Format {
    current: "artifacts-store 3 s3\n",
    v2: "artifacts-store 2 s3\n",
    v1: "artifacts-store 1 s3\n",
};

/// A backend's `FORMAT` markers: this layout's (format 3, which may hold
/// names), the one before names (format 2: read and written as it is, and
/// marked format 3 before the first name is written), and the one before
/// owner indexes (format 1), which `artifacts migrate` brings to this one.
#[derive(Debug, Clone, Copy)]
pub struct Format {
    /// The marker of this layout (format 3).
    pub current: &'static str,
    /// The marker of format 2.
    pub v2: &'static str,
    /// The marker of format 1.
    pub v1: &'static str,
}

/// What a store's marker said, once [`Format::check`] accepted it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Marker {
    /// This layout.
    Current,
    /// Format 2: this layout without names, used as it is until the first
    /// name is written (then the backend's `finish_migration` marks it format 3).
    V2,
    /// Format 1, accepted because the store is opened to be migrated.
    V1,
    /// No marker: a new store, which the backend marks as this layout.
    Absent,
}

impl Format {
    /// Checks a store's marker (`None`: there is none). Format 1 is accepted
    /// only when `migrating`, else refused naming `migrate` (the command that
    /// brings it to this layout); anything else (foreign, older or newer) is
    /// refused. `location` names the store in the error.
    pub(crate) fn check(
        &self,
        found: Option<&[u8]>,
        migrating: bool,
        location: impl fmt::Display,
        migrate: &str,
    ) -> BackendResult<Marker> {
        match found {
            None => Ok(Marker::Absent),
            Some(found) if found == self.current.as_bytes() => Ok(Marker::Current),
            Some(found) if found == self.v2.as_bytes() => Ok(Marker::V2),
            Some(found) if found == self.v1.as_bytes() && migrating => Ok(Marker::V1),
            Some(found) if found == self.v1.as_bytes() => Err(BackendError::Io(format!(
                "{location} is a store of format 1 (before per-owner indexes); run \
                 `{migrate}` once, with nothing else using it, to bring it to format 3"
            ))),
            Some(found) => Err(BackendError::Io(format!(
                "{location} is not a store of this version (FORMAT says {:?})",
                String::from_utf8_lossy(found).trim()
            ))),
        }
    }
}

/// A hash as a file or object name: its 64 hex digits.
pub(crate) fn name(hash: &Hash) -> String {
    hash.to_string()
}

/// A file or object name as a hash, if it is one.
pub(crate) fn parse_name(name: &str) -> Option<Hash> {
    Hash::from_hex(name).ok()
}

/// The shard of a hash: its first byte, as two hex digits.
pub(crate) fn shard(hash: &Hash) -> String {
    shard_of_name(&name(hash)).to_owned()
}

fn shard_of_name(name: &str) -> &str {
    name.get(..2).unwrap_or_default()
}

/// Whether `dir` can be a shard: two lowercase hex digits.
pub(crate) fn is_shard(dir: &str) -> bool {
    dir.len() == 2 && dir.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `kind/ab/abcdef…`: a hash under a sharded folder.
fn sharded(kind: &str, hash: &Hash) -> String {
    let name = name(hash);
    format!("{kind}/{}/{name}", shard_of_name(&name))
}

/// Where the blob of `hash` lives: `blobs/ab/abcdef…`.
pub(crate) fn blob_key(hash: &Hash) -> String {
    sharded(BLOBS, hash)
}

/// Where the record of `hash` lives: `records/ab/abcdef…`.
pub(crate) fn record_key(hash: &Hash) -> String {
    sharded(RECORDS, hash)
}

/// Where the outboard of `hash` lives: `outboards/ab/abcdef…`. A new folder,
/// not a new name beside the blob: format 3 hosts from before outboards
/// list only `blobs/`, `records/` and `owners/` (and skip names that are not
/// hashes), so they read such a store exactly as before and leave the
/// outboards alone; an outboard is a function of its blob's content, so one
/// they leave behind is never wrong, only garbage that gc removes once its
/// blob is gone.
pub(crate) fn outboard_key(hash: &Hash) -> String {
    sharded(OUTBOARDS, hash)
}

/// Where the alias `digest` lives: `aliases/ab/abcdef…` (its sha256 hex).
pub(crate) fn alias_key(digest: &Sha256Digest) -> String {
    sharded(ALIASES, &digest.as_key())
}

/// An alias's bytes: the hash it names, in hex.
pub(crate) fn encode_alias(target: &Hash) -> Vec<u8> {
    target.to_hex().as_bytes().to_vec()
}

/// The hash an alias's bytes name (anything else is an error, not a guess).
pub(crate) fn decode_alias(digest: &Sha256Digest, data: &[u8]) -> BackendResult<Hash> {
    std::str::from_utf8(data)
        .ok()
        .and_then(|text| Hash::from_hex(text).ok())
        .ok_or_else(|| BackendError::Io(format!("the alias {digest} is damaged")))
}

/// Where `key` lives in a sharded folder `kind` ([`BLOBS`] or [`RECORDS`]).
#[cfg_attr(not(feature = "s3"), allow(dead_code))]
pub(crate) fn key_in(kind: &str, hash: &Hash) -> String {
    sharded(kind, hash)
}

/// How a backend names an owner's index space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OwnerDirs {
    /// `owners/12/1234…/`: sharded like blobs (the file backend).
    Sharded,
    /// `owners/1234…/`: one folder per owner (S3, where folders cost nothing).
    #[cfg_attr(not(feature = "s3"), allow(dead_code))]
    Flat,
}

impl OwnerDirs {
    /// The folder of `owner`'s index space.
    pub(crate) fn dir(self, owner: &Hash) -> String {
        match self {
            Self::Sharded => sharded(OWNERS, owner),
            Self::Flat => format!("{OWNERS}/{}", name(owner)),
        }
    }

    /// Where the entry `key` of `owner`'s index space lives.
    pub(crate) fn entry(self, owner: &Hash, key: &Hash) -> String {
        format!("{}/{}", self.dir(owner), name(key))
    }
}

/// A versioned record as stored: its version (8 bytes, little-endian), then
/// the core's bytes.
pub(crate) fn encode_record(version: u64, data: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(data.len().saturating_add(8));
    bytes.extend_from_slice(&version.to_le_bytes());
    bytes.extend_from_slice(data);
    bytes
}

/// A stored record back as a [`VersionedRecord`]; `what` names it in the
/// error if it is too short to hold a version.
pub(crate) fn decode_record(
    bytes: &[u8],
    what: impl fmt::Display,
) -> BackendResult<VersionedRecord> {
    let (version, data) = bytes
        .split_first_chunk::<8>()
        .ok_or_else(|| BackendError::Io(format!("{what} is truncated ({} bytes)", bytes.len())))?;
    Ok(VersionedRecord {
        version: u64::from_le_bytes(*version),
        data: data.to_vec(),
    })
}

/// Compare-and-swap on a stored record whose version is `current` (`None`:
/// absent), for a backend that holds its lock: a conflict unless that is
/// `swap.expected`; else `apply` stores the encoded new record under a fresh
/// version (`Some`) or deletes it (`None`: `swap.new` is `None`).
pub(crate) fn swap(
    current: Option<u64>,
    swap: Swap<'_>,
    apply: impl FnOnce(Option<Vec<u8>>) -> BackendResult<()>,
) -> BackendResult<SwapOutcome> {
    if current != swap.expected {
        return Ok(SwapOutcome::Conflict);
    }
    match swap.new {
        Some(data) => {
            let version = new_version(current);
            apply(Some(encode_record(version, data)))?;
            Ok(SwapOutcome::Written(version))
        }
        None => {
            apply(None)?;
            Ok(SwapOutcome::Deleted)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const A: &str = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262";
    const B: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn hash(hex: &str) -> Hash {
        Hash::from_hex(hex).unwrap()
    }

    /// Stores on disk and in buckets depend on these names: changing one is
    /// a new format.
    #[test]
    fn the_layout_is_pinned() {
        assert_eq!(FILE_FORMAT.current, "artifacts-store 3\n");
        assert_eq!(FILE_FORMAT.v2, "artifacts-store 2\n");
        assert_eq!(FILE_FORMAT.v1, "artifacts-store 1\n");
        assert_eq!(S3_FORMAT.current, "artifacts-store 3 s3\n");
        assert_eq!(S3_FORMAT.v2, "artifacts-store 2 s3\n");
        assert_eq!(S3_FORMAT.v1, "artifacts-store 1 s3\n");
        assert_eq!(FORMAT, "FORMAT");
        let (a, b) = (hash(A), hash(B));
        assert_eq!(name(&a), A);
        assert_eq!(shard(&a), "af");
        assert_eq!(blob_key(&a), format!("blobs/af/{A}"));
        assert_eq!(record_key(&b), format!("records/01/{B}"));
        assert_eq!(outboard_key(&a), format!("outboards/af/{A}"));
        assert_eq!(key_in(BLOBS, &b), format!("blobs/01/{B}"));
        assert_eq!(OwnerDirs::Sharded.dir(&a), format!("owners/af/{A}"));
        assert_eq!(
            OwnerDirs::Sharded.entry(&a, &b),
            format!("owners/af/{A}/{B}")
        );
        assert_eq!(OwnerDirs::Flat.dir(&a), format!("owners/{A}"));
        assert_eq!(OwnerDirs::Flat.entry(&a, &b), format!("owners/{A}/{B}"));
        assert_eq!(parse_name(A), Some(a));
        assert_eq!(parse_name("README"), None);
        assert!(is_shard("af") && !is_shard("zz") && !is_shard("AF") && !is_shard("a"));
    }

    #[test]
    fn records_are_a_little_endian_version_then_the_data() {
        let bytes = encode_record(0x0102_0304_0506_0708, b"rec");
        assert_eq!(bytes, b"\x08\x07\x06\x05\x04\x03\x02\x01rec");
        let back = decode_record(&bytes, "r").unwrap();
        assert_eq!(back.version, 0x0102_0304_0506_0708);
        assert_eq!(back.data, b"rec");
        assert_eq!(decode_record(&bytes[..8], "r").unwrap().data, b"");
        let err = decode_record(b"1234567", "record file x").unwrap_err();
        assert_eq!(err.to_string(), "record file x is truncated (7 bytes)");
    }

    #[test]
    fn format_1_is_accepted_only_to_migrate_and_others_are_refused() {
        let check = |found: Option<&[u8]>, migrating| {
            FILE_FORMAT.check(found, migrating, "DIR", "artifacts migrate --dir DIR")
        };
        assert_eq!(check(None, false).unwrap(), Marker::Absent);
        assert_eq!(
            check(Some(b"artifacts-store 3\n"), false).unwrap(),
            Marker::Current
        );
        assert_eq!(
            check(Some(b"artifacts-store 2\n"), false).unwrap(),
            Marker::V2
        );
        assert_eq!(
            check(Some(b"artifacts-store 1\n"), true).unwrap(),
            Marker::V1
        );
        let err = check(Some(b"artifacts-store 1\n"), false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("run `artifacts migrate --dir DIR` once"),
            "{err}"
        );
        for other in [&b"artifacts-store 4\n"[..], b"artifacts-store 2 s3\n", b""] {
            let err = check(Some(other), true).unwrap_err().to_string();
            assert!(
                err.starts_with("DIR is not a store of this version"),
                "{err}"
            );
        }
    }
}

//! The storage contract the wasm core runs on, and its implementations.
//!
//! A [`Backend`] is deliberately small. All of the store's rules (hashing,
//! dedup, counts, integrity) live in the core; a backend only stores bytes
//! under keys, atomically. [`conformance::check`] tests the whole contract
//! on a fresh backend (the project runs it on every backend it ships).
//!
//! # Writing a backend: the 17 methods
//!
//! Every method must be atomic (a reader sees all of a write or none of it)
//! and safe to call from many threads (and, for shared storage, many
//! processes) at once. A capability a backend lacks is refused with
//! [`BackendError::Unsupported`], never a silent `Ok`: an `Ok` means the
//! bytes are kept.
//!
//! **Blobs**, by [`struct@Hash`]: content, opaque to the backend.
//! - [`write_blob`](Backend::write_blob): store, replacing any blob there.
//! - [`read_blob_range`](Backend::read_blob_range): bytes from an offset,
//!   cut at the end; `None` if there is no blob.
//! - [`blob_size`](Backend::blob_size): its size, or `None`.
//! - [`delete_blob`](Backend::delete_blob): only if the shared record under
//!   the same key has the given version; atomic with `swap_record`.
//! - [`list_blobs`](Backend::list_blobs): a page in key order, with sizes
//!   and write times.
//!
//! **Records**: small versioned values in [`Space`]s, changed only by
//! compare-and-swap.
//! - [`read_record`](Backend::read_record), [`swap_record`](Backend::swap_record)
//!   (the version changes on every write and is never reused for a key),
//!   [`list_records`](Backend::list_records) (costs what the space holds),
//!   [`list_owners`](Backend::list_owners) (a space goes with its last record).
//!
//! **Side objects**: one keyspace of [`Side`] keys (outboards, sha256
//! aliases, notes, quarantined blobs), apart from blobs and records, each
//! written whole and replaced atomically like a blob.
//! - [`write_side`](Backend::write_side), [`read_side`](Backend::read_side),
//!   [`side_size`](Backend::side_size), [`delete_side`](Backend::delete_side)
//!   (whether there was one), [`list_side`](Backend::list_side) (one
//!   [`SideKind`] at a time, in key order, with sizes and times).
//!
//! **Staging**: [`stage`](Backend::stage) starts a blob written in pieces
//! before its hash is known (a large put), as a [`Staging`] around the
//! backend's own [`Staged`] object, whose four methods append, finish,
//! store under a key (as often as asked) and discard.
//!
//! **Upkeep**: [`clean_up`](Backend::clean_up) removes leftovers of
//! interrupted writes and empty owner spaces older than a grace period;
//! [`finish_migration`](Backend::finish_migration) marks a persistent store
//! as of the current layout (a backend without a marker returns `Ok`).
//!
//! The other methods have correct defaults a backend may override to be
//! faster: [`read_blob`](Backend::read_blob) and
//! [`read_side_ranges`](Backend::read_side_ranges) (through the required
//! reads), [`quarantine_blob`](Backend::quarantine_blob) (a copy into the
//! side keyspace, then a guarded delete), [`size_hint`](Backend::size_hint)
//! (no hint), [`staged_in_memory`](Backend::staged_in_memory) (twice what
//! was staged) and [`now`](Backend::now) (the system clock).

use std::time::{SystemTime, UNIX_EPOCH};

use crate::Hash;
pub use crate::error::BackendError;
use crate::sha256::Sha256Digest;

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

/// Small state the host keeps beside the artifacts ([`Side::Note`]):
/// never an artifact, never listed as a blob or record, and ignored by
/// versions that do not know it (so it needs no new format).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
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

    /// The note named `name`, if there is one.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::LastGc].into_iter().find(|n| n.name() == name)
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

/// The key of a side object: state kept beside the artifacts, in one
/// keyspace apart from blobs and records. Each is written whole, replaced
/// atomically, and opaque to the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Side {
    /// BLAKE3's tree over the 16 KiB groups of the blob with this hash,
    /// which the core builds and checks (see
    /// [`ArtifactStore::get_range`](crate::ArtifactStore::get_range)). A
    /// function of its blob's content: a stale one is still right, and
    /// nothing is trusted before the core has checked it. Read in ranges.
    Outboard(Hash),
    /// That the content with this sha256 digest (what OCI registries call
    /// it) is stored under a hash: the value is [`Side::alias_value`] of
    /// that hash. A fact about content, so a stale one is never wrong,
    /// only unused once its artifact is gone; only the host writes one,
    /// having hashed the content itself.
    Alias(Sha256Digest),
    /// A [`Note`]: a few hundred bytes the host keeps about the store.
    Note(Note),
    /// A damaged blob with this hash, moved aside
    /// ([`quarantine_blob`](Backend::quarantine_blob)) where an operator
    /// can look at it; listed by `health`.
    Quarantined(Hash),
}

/// The kinds of [`Side`] keys, for [`Backend::list_side`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum SideKind {
    /// [`Side::Outboard`].
    Outboard,
    /// [`Side::Alias`].
    Alias,
    /// [`Side::Note`].
    Note,
    /// [`Side::Quarantined`].
    Quarantined,
}

impl SideKind {
    /// Every kind, in order.
    pub const ALL: [SideKind; 4] = [Self::Outboard, Self::Alias, Self::Note, Self::Quarantined];

    /// What the kind is called (in errors and [`BackendError::Unsupported`]).
    pub fn name(self) -> &'static str {
        match self {
            Self::Outboard => "outboards",
            Self::Alias => "aliases",
            Self::Note => "notes",
            Self::Quarantined => "quarantine",
        }
    }
}

impl Side {
    /// Its kind.
    pub fn kind(&self) -> SideKind {
        match self {
            Self::Outboard(_) => SideKind::Outboard,
            Self::Alias(_) => SideKind::Alias,
            Self::Note(_) => SideKind::Note,
            Self::Quarantined(_) => SideKind::Quarantined,
        }
    }

    /// The 32 bytes that name it, as a [`struct@Hash`] (a sha256 digest's
    /// bytes for an alias), for the kinds named by one (not notes).
    pub fn hash_key(&self) -> Option<Hash> {
        match self {
            Self::Outboard(h) | Self::Quarantined(h) => Some(*h),
            Self::Alias(d) => Some(d.as_key()),
            Self::Note(_) => None,
        }
    }

    /// The key of `kind` named by `key` (as [`hash_key`](Side::hash_key)
    /// gives it), or `None` for notes.
    pub fn of_kind(kind: SideKind, key: Hash) -> Option<Side> {
        Some(match kind {
            SideKind::Outboard => Self::Outboard(key),
            SideKind::Alias => Self::Alias(Sha256Digest::from_bytes(*key.as_bytes())),
            SideKind::Quarantined => Self::Quarantined(key),
            SideKind::Note => return None,
        })
    }

    /// The value of an alias of `target`: its hash in hex (as the file and
    /// S3 layouts keep it).
    pub fn alias_value(target: &Hash) -> Vec<u8> {
        layout::encode_alias(target)
    }

    /// The hash the alias `digest`'s value names (anything else is an
    /// error, not a guess).
    pub fn parse_alias(digest: &Sha256Digest, value: &[u8]) -> BackendResult<Hash> {
        layout::decode_alias(digest, value)
    }
}

/// A side object as [`Backend::list_side`] sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SideInfo {
    /// Its key.
    pub key: Side,
    /// Its size in bytes.
    pub size: u64,
    /// When it was written, in milliseconds since the Unix epoch.
    pub modified: u64,
}

/// What [`Backend::clean_up`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanedUp {
    /// Leftovers of interrupted writes (temporary files, staged uploads,
    /// stale lock claims).
    pub temporary: u64,
    /// Owner index spaces left empty (by a crash, or by versions that kept
    /// them).
    pub empty_spaces: u64,
}

/// A blob being written in pieces before its key is known: what a
/// backend's [`stage`](Backend::stage) makes. Its state is the backend's
/// own (a temporary file, an upload, a buffer); [`Staging`] wraps it and
/// keeps the rules every staging shares.
pub trait Staged: Send {
    /// Appends `data`. Never called once the content was stored.
    fn append(&mut self, data: &[u8]) -> BackendResult<()>;
    /// Says every piece is in: a backend may make them durable now (the
    /// file backend syncs its file), so that this overlaps the hashing;
    /// [`store`](Staged::store) must still do whatever is left.
    fn finish(&mut self) -> BackendResult<()>;
    /// Stores the staged bytes under `key` as [`Backend::write_blob`] does
    /// (atomically, replacing any blob there). May be called more than
    /// once, under the same key or others; the staging stays as it was.
    fn store(&mut self, key: &Hash) -> BackendResult<()>;
    /// Drops the staged bytes (stored or not), freeing what they hold; the
    /// blobs stored from them stay.
    fn discard(self: Box<Self>) -> BackendResult<()>;
}

/// A blob being staged: a backend's [`Staged`] object, and the rule that
/// staged content, once stored under a key, is that blob's content and
/// must not change (appending is refused from then on).
pub struct Staging {
    staged: Box<dyn Staged>,
    stored: bool,
}

impl Staging {
    /// Wraps a backend's staging.
    pub fn new(staged: impl Staged + 'static) -> Self {
        Self {
            staged: Box::new(staged),
            stored: false,
        }
    }

    /// Stands in for a staging lent elsewhere (to a core call): refuses
    /// everything.
    pub(crate) fn lent() -> Self {
        Self::new(Lent)
    }

    /// Appends `data`; refused once the content was stored.
    pub fn append(&mut self, data: &[u8]) -> BackendResult<()> {
        if self.stored {
            return Err(BackendError::Io(
                "staged content was already stored: appending would change a stored blob".into(),
            ));
        }
        self.staged.append(data)
    }

    /// Says every piece is in ([`Staged::finish`]).
    pub fn finish(&mut self) -> BackendResult<()> {
        self.staged.finish()
    }

    /// Stores the staged bytes under `key`; from now on they cannot grow.
    pub fn store(&mut self, key: &Hash) -> BackendResult<()> {
        self.stored = true;
        self.staged.store(key)
    }

    /// Drops the staged bytes ([`Staged::discard`]).
    pub fn discard(self) -> BackendResult<()> {
        self.staged.discard()
    }
}

impl std::fmt::Debug for Staging {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Staging")
            .field("stored", &self.stored)
            .finish_non_exhaustive()
    }
}

/// [`Staging::lent`]'s stand-in.
struct Lent;

impl Staged for Lent {
    fn append(&mut self, _: &[u8]) -> BackendResult<()> {
        Err(lent())
    }
    fn finish(&mut self) -> BackendResult<()> {
        Err(lent())
    }
    fn store(&mut self, _: &Hash) -> BackendResult<()> {
        Err(lent())
    }
    fn discard(self: Box<Self>) -> BackendResult<()> {
        Ok(())
    }
}

fn lent() -> BackendError {
    BackendError::Io("the staging is lent to a core call".into())
}

/// Storage for the core: see the [module docs](self) for the contract and
/// the WIT `backend` interface, which the core calls through it.
pub trait Backend: Send + Sync + 'static {
    // Blobs.

    /// Stores a blob, replacing any blob there; readers never see part of it.
    fn write_blob(&self, key: &Hash, data: &[u8]) -> BackendResult<()>;
    /// Up to `len` bytes of the blob from `offset` (fewer at its end, none
    /// past it), or `None` if there is no blob.
    fn read_blob_range(&self, key: &Hash, offset: u64, len: u64) -> BackendResult<Option<Vec<u8>>>;
    /// The size of the blob, or `None` if there is none.
    fn blob_size(&self, key: &Hash) -> BackendResult<Option<u64>>;
    /// Deletes the blob if, and only if, the record under the same key in
    /// [`Space::Shared`] has `record_version` (`None`: there is no record);
    /// atomic with respect to `swap_record`. Returns whether it deleted one.
    fn delete_blob(&self, key: &Hash, record_version: Option<u64>) -> BackendResult<bool>;
    /// Up to `limit` blobs with keys greater than `after`, ascending.
    fn list_blobs(&self, after: Option<&Hash>, limit: u32) -> BackendResult<Vec<BlobInfo>>;

    // Records.

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
    /// crash say, may be listed until [`clean_up`](Backend::clean_up)).
    /// Only gc, `health` and the host's `remove` list them.
    fn list_owners(&self, after: Option<&Hash>, limit: u32) -> BackendResult<Vec<Hash>>;

    // Side objects.

    /// Stores the side object `key`, replacing any there, atomically like
    /// [`write_blob`](Backend::write_blob). `Ok` means it is kept: a backend
    /// that keeps no objects of this kind returns
    /// [`BackendError::Unsupported`].
    fn write_side(&self, key: &Side, data: &[u8]) -> BackendResult<()>;
    /// Reads the side object `key` whole, or `None` if there is none.
    fn read_side(&self, key: &Side) -> BackendResult<Option<Vec<u8>>>;
    /// The size of the side object `key`, or `None` if there is none.
    fn side_size(&self, key: &Side) -> BackendResult<Option<u64>>;
    /// Deletes the side object `key`; returns whether there was one.
    fn delete_side(&self, key: &Side) -> BackendResult<bool>;
    /// Up to `limit` side objects of `kind` with keys greater than `after`,
    /// ascending (a quarantined blob moved aside twice may be listed
    /// twice), with their sizes and write times.
    fn list_side(
        &self,
        kind: SideKind,
        after: Option<&Side>,
        limit: u32,
    ) -> BackendResult<Vec<SideInfo>>;

    // Staging.

    /// Starts a blob to be written in pieces and stored under its hash once
    /// that is known ([`Staging`]): a large put streams through it instead
    /// of being held whole.
    fn stage(&self) -> BackendResult<Staging>;

    // Upkeep.

    /// Removes leftovers of interrupted writes (temporary files, uploads
    /// never finished) and owner index spaces that hold nothing, all
    /// unchanged for `older_than_ms`; says how many of each.
    fn clean_up(&self, older_than_ms: u64) -> BackendResult<CleanedUp>;
    /// Marks the store as of the current layout (the file and S3 backends
    /// rewrite their `FORMAT` marker, atomically): called once
    /// [`migrate`](crate::ArtifactStore::migrate) has brought a store to it,
    /// and before the first name is written into a store of format 2, so
    /// that an older host refuses it rather than misread it. Must be cheap
    /// to call again. A backend without a marker has nothing to do.
    fn finish_migration(&self) -> BackendResult<()>;

    // Provided: correct as they are, overridden to be faster.

    /// Reads a blob, or `None` if there is none.
    fn read_blob(&self, key: &Hash) -> BackendResult<Option<Vec<u8>>> {
        self.read_blob_range(key, 0, u64::MAX)
    }
    /// The byte ranges `(offset, len)` of the side object `key`, in order,
    /// each cut short at its end (from one version of it), or `None` if
    /// there is none. By default reads it whole.
    fn read_side_ranges(
        &self,
        key: &Side,
        ranges: &[(u64, u64)],
    ) -> BackendResult<Option<Vec<Vec<u8>>>> {
        Ok(self.read_side(key)?.map(|all| {
            ranges
                .iter()
                .map(|&(offset, len)| range_of(&all, offset, len).to_vec())
                .collect()
        }))
    }
    /// Moves a damaged blob out of the way, to [`Side::Quarantined`], so a
    /// later put of the right content can store it again. Returns whether
    /// there was a blob to move. By default copies it there, then deletes
    /// it (guarded by its record's version).
    fn quarantine_blob(&self, key: &Hash) -> BackendResult<bool> {
        let Some(data) = self.read_blob(key)? else {
            return Ok(false);
        };
        self.write_side(&Side::Quarantined(*key), &data)?;
        let version = self.read_record(Space::Shared, key)?.map(|r| r.version);
        self.delete_blob(key, version)
    }
    /// The blob's size if the backend can tell cheaply (no network round
    /// trip), else `None`. Only a hint: large blobs are then verified by
    /// several core instances at once. By default `None`.
    fn size_hint(&self, key: &Hash) -> Option<u64> {
        let _ = key;
        None
    }
    /// The most host memory one staging holds once `staged` bytes have
    /// been appended to it, besides what the backend keeps as stored
    /// content: counted against the memory of the app whose upload it is
    /// (before each append), so a backend that gathers staged bytes in
    /// memory must say how many. By default twice them (a staging that
    /// gathers the whole blob in a vector, which may have twice its length
    /// allocated); a backend that stages elsewhere (the file backend: a
    /// temporary file) or whose staging is its storage (the memory
    /// backend) says 0.
    fn staged_in_memory(&self, staged: u64) -> u64 {
        staged.saturating_mul(2)
    }
    /// Milliseconds since the Unix epoch.
    fn now(&self) -> u64 {
        millis(SystemTime::now())
    }
}

/// Reads an alias: the hash whose content has the sha256 digest `digest`,
/// or `None` if there is none.
pub fn read_alias(backend: &dyn Backend, digest: &Sha256Digest) -> BackendResult<Option<Hash>> {
    backend
        .read_side(&Side::Alias(*digest))?
        .map(|value| Side::parse_alias(digest, &value))
        .transpose()
}

/// Writes an alias: the content stored under `target` has the sha256
/// digest `digest`.
pub fn write_alias(
    backend: &dyn Backend,
    digest: &Sha256Digest,
    target: &Hash,
) -> BackendResult<()> {
    backend.write_side(&Side::Alias(*digest), &Side::alias_value(target))
}

/// `t` in milliseconds since the Unix epoch (0 before it).
/// Refuses a side listing that starts after a key of another kind.
pub(crate) fn check_listed_after(kind: SideKind, after: Option<&Side>) -> BackendResult<()> {
    match after {
        Some(after) if after.kind() != kind => Err(BackendError::InvalidKey(format!(
            "listing {} after {after:?}",
            kind.name()
        ))),
        _ => Ok(()),
    }
}

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

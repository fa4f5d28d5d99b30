//! The store's rules, over any [`Backend`]: dedup, per-owner reference
//! counts and index, integrity checks, and the deletion protocol.
//!
//! Every operation is a loop of read / compare-and-swap, so any number of
//! cores over one backend never lose an update. Two kinds of records:
//!
//! - the **artifact record**, shared, under the content's hash: size, the
//!   first put's type and time (the host's view), and how many *owners*
//!   hold it, never who;
//! - the **owner entry**, in the owner's own index space, under the hash:
//!   the owner's reference count and its own type and time. Everything an
//!   app reads (`contains`, `stat`, `count`, `list`, ...) comes from its own
//!   entries, so it costs what the app holds and says nothing of others.
//!
//! An owner's first reference (a *join*) and its last release (a *leave*)
//! change three records: its entry, the artifact record (owner count) and
//! its usage record. The entry goes first (`Adding` or `Removing`, at a
//! version `v` that names the transition), the other two are changed with a
//! *mark* `(owner or hash, v)` that makes the change happen exactly once
//! whoever applies it (the caller, a later call of the same owner, or gc),
//! and a helper applies a marked change only if, after reading the record
//! it changes, the entry is still at `v`. Then the entry is confirmed (or
//! deleted) and the marks are removed. See ARCHITECTURE.md for the argument.
//!
//! - a **put** of new content writes the blob, then creates the record; a
//!   record therefore always has its blob behind it.
//! - a **delete** (the last owner leaving, or the host's remove) swaps the
//!   record to `Deleting`, deletes the blob *only if the record still has
//!   that version*, then deletes the record. Anyone who meets a `Deleting`
//!   record finishes the deletion first.

use crate::hash::{hash_hex, validate};
use crate::record::{
    ArtifactType, Entry, EntryState, Mark, Marks, Origin, Record, RecordV1, State, Usage,
    validate_owner,
};

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

/// Which limit a put would have broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaKind {
    /// Total bytes of the owner's distinct artifacts.
    Bytes,
    /// Number of the owner's distinct artifacts.
    Artifacts,
    /// Size of one artifact.
    ArtifactBytes,
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
    /// Contention outlasted [`MAX_ATTEMPTS`].
    Contended(String),
    /// The backend failed.
    Backend(String),
}

/// An owner's limits; `u64::MAX` means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Total bytes of distinct artifacts.
    pub max_bytes: u64,
    /// Number of distinct artifacts.
    pub max_artifacts: u64,
    /// Size of one artifact.
    pub max_artifact_bytes: u64,
}

impl Quota {
    /// No limits.
    pub const UNLIMITED: Self = Self {
        max_bytes: u64::MAX,
        max_artifacts: u64::MAX,
        max_artifact_bytes: u64::MAX,
    };
}

/// The owner id under which the host itself holds references.
pub const HOST_OWNER: &str = "@host";

/// How the store shares content between owners.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dedup {
    /// One blob per content, written by the first put: a put of content
    /// others hold writes nothing, so it is faster, and tells that it is held.
    #[default]
    Shared,
    /// Still one blob, but an owner's first put of content others hold
    /// writes the blob again (and checks it as a new record's put does), and
    /// its last release swaps the record once whether or not others hold
    /// it (the last owner's deletion is invisible at once and finished by
    /// the next gc or put), so both do the same work either way.
    Private,
}

/// Who is calling, and what they may see and do.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    /// Whose references a put takes and a release drops.
    pub owner: &'a str,
    /// Sees every artifact, and `remove` deletes whatever the owners.
    /// Otherwise the caller sees only artifacts it references.
    pub admin: bool,
    /// Limits on what the owner may hold.
    pub quota: Quota,
    /// The store's dedup.
    pub dedup: Dedup,
}

impl Caller<'static> {
    /// The host: its own references, sees everything, no quota.
    pub const HOST: Self = Self {
        owner: HOST_OWNER,
        admin: true,
        quota: Quota::UNLIMITED,
        dedup: Dedup::Shared,
    };
}

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
    fn of_entry(hash: &str, e: &Entry) -> Self {
        Self {
            hash: hash.to_string(),
            size: e.size,
            artifact_type: e.artifact_type,
            stored_at: e.stored_at,
            reference_count: e.count,
        }
    }
}

type Outcome<T> = Result<T, Error>;

fn checked(hash: &str) -> Outcome<()> {
    validate(hash).map_err(|why| Error::InvalidHash(format!("{why}: {:.80?}", hash)))
}

fn checked_caller(caller: &Caller) -> Outcome<()> {
    validate_owner(caller.owner).map_err(Error::InvalidOwner)
}

fn decode(hash: &str, data: &[u8]) -> Outcome<Record> {
    Record::decode(data).map_err(|why| Error::CorruptRecord(format!("record of {hash}: {why}")))
}

fn be<T>(r: Result<T, String>) -> Outcome<T> {
    r.map_err(Error::Backend)
}

/// The key of `owner`'s index space: a BLAKE3 key derivation of its id.
pub fn owner_key(owner: &str) -> String {
    blake3::Hasher::new_derive_key("artifacts:store 2026 owner index v2")
        .update(owner.as_bytes())
        .finalize()
        .to_hex()
        .to_string()
}

/// The key of the usage record in every owner's index space: a BLAKE3 key
/// derivation, which can never equal the plain BLAKE3 hash of any content.
pub fn usage_key() -> String {
    blake3::Hasher::new_derive_key("artifacts:store 2026 owner usage v2")
        .finalize()
        .to_hex()
        .to_string()
}

/// The 32 bytes of a valid hash (or owner key).
fn raw(hex: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, pair) in hex.as_bytes().chunks(2).take(32).enumerate() {
        let digit = |c: u8| match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => 0,
        };
        if let (Some(slot), [hi, lo]) = (out.get_mut(i), pair) {
            *slot = digit(*hi) << 4 | digit(*lo);
        }
    }
    out
}

/// An owner's index space and the hash an operation is about.
#[derive(Clone, Copy)]
struct At<'a> {
    space: &'a str,
    hash: &'a str,
}

impl At<'_> {
    fn entry(&self, b: &impl Backend) -> Outcome<Option<(u64, Entry)>> {
        let Some(v) = be(b.read_entry(self.space, self.hash))? else {
            return Ok(None);
        };
        let e = Entry::decode(&v.data)
            .map_err(|why| Error::CorruptRecord(format!("index entry of {}: {why}", self.hash)))?;
        Ok(Some((v.version, e)))
    }

    fn swap_entry(
        &self,
        b: &impl Backend,
        expected: Option<u64>,
        new: Option<&Entry>,
    ) -> Outcome<Swap> {
        let data = new.map(Entry::encode);
        be(b.swap_entry(self.space, self.hash, expected, data.as_deref()))
    }

    /// Whether the entry is still at `version` (the transition it names is
    /// still under way): checked after reading a record and before swapping
    /// it, so that a marked change is never applied once it was finished.
    fn still_at(&self, b: &impl Backend, version: u64) -> Outcome<bool> {
        Ok(be(b.read_entry(self.space, self.hash))?.is_some_and(|v| v.version == version))
    }

    fn owner(&self) -> [u8; 32] {
        raw(self.space)
    }

    fn key(&self) -> [u8; 32] {
        raw(self.hash)
    }
}

/// Finishes a deletion whose `Deleting` record has `version`. Idempotent:
/// whoever comes second finds the version gone and does nothing.
fn finish_delete(backend: &impl Backend, hash: &str, version: u64) -> Outcome<()> {
    be(backend.delete_blob(hash, Some(version)))?;
    be(backend.swap_record(hash, Some(version), None))?;
    Ok(())
}

/// Swaps the record to `Deleting` and deletes the artifact.
/// Returns false if the version moved on meanwhile.
fn delete(backend: &impl Backend, hash: &str, version: u64, mut record: Record) -> Outcome<bool> {
    record.state = State::Deleting;
    match be(backend.swap_record(hash, Some(version), Some(&record.encode())))? {
        Swap::Written(deleting) => finish_delete(backend, hash, deleting).map(|()| true),
        Swap::Conflict | Swap::Deleted => Ok(false),
    }
}

/// The owner's usage record and its version.
fn read_usage(b: &impl Backend, space: &str) -> Outcome<(Option<u64>, Usage)> {
    match be(b.read_entry(space, &usage_key()))? {
        Some(v) => Ok((
            Some(v.version),
            Usage::decode(&v.data)
                .map_err(|why| Error::CorruptRecord(format!("usage record: {why}")))?,
        )),
        None => Ok((None, Usage::default())),
    }
}

/// Writes the usage record (deleting it when it is empty). Returns false on a conflict.
fn write_usage(b: &impl Backend, space: &str, expected: Option<u64>, u: &Usage) -> Outcome<bool> {
    let new = (*u != Usage::default()).then(|| u.encode());
    Ok(!matches!(
        be(b.swap_entry(space, &usage_key(), expected, new.as_deref()))?,
        Swap::Conflict
    ))
}

/// Whether `space` is the host's index space, whose usage is not tracked
/// (the host has no quota), which saves a first put two writes.
fn untracked(space: &str) -> bool {
    space == owner_key(HOST_OWNER)
}

/// Charges (join) or refunds (leave) the artifact at `at` to the owner's
/// usage, marked with the entry version `v`, once: checks the quota for a
/// charge. A refund also drops the owner's stale join marks for this hash.
fn account(b: &impl Backend, at: At, v: u64, size: u64, join: bool, quota: Quota) -> Outcome<()> {
    if untracked(at.space) {
        return Ok(());
    }
    let key = at.key();
    for _ in 0..MAX_ATTEMPTS {
        let (version, mut u) = read_usage(b, at.space)?;
        if u.has_mark(join, &key, v) {
            return Ok(());
        }
        if join {
            let (bytes, artifacts) = (u.bytes.saturating_add(size), u.artifacts.saturating_add(1));
            if bytes > quota.max_bytes {
                return Err(Error::QuotaExceeded {
                    kind: QuotaKind::Bytes,
                    limit: quota.max_bytes,
                    requested: bytes,
                });
            }
            if artifacts > quota.max_artifacts {
                return Err(Error::QuotaExceeded {
                    kind: QuotaKind::Artifacts,
                    limit: quota.max_artifacts,
                    requested: artifacts,
                });
            }
            (u.bytes, u.artifacts) = (bytes, artifacts);
        } else {
            u.bytes = u.bytes.saturating_sub(size);
            u.artifacts = u.artifacts.saturating_sub(1);
            u.marks.retain(|m| !(m.join && m.key == key));
        }
        u.marks.push(Mark {
            join,
            key,
            version: v,
            size,
        });
        if !at.still_at(b, v)? {
            return Ok(());
        }
        if write_usage(b, at.space, version, &u)? {
            return Ok(());
        }
    }
    Err(Error::Contended(at.hash.to_string()))
}

/// Removes the usage mark of the transition `v`; with `undo`, also gives
/// back what it charged (a join that never went live).
fn unmark_usage(b: &impl Backend, at: At, v: u64, join: bool, undo: bool) -> Outcome<()> {
    if untracked(at.space) {
        return Ok(());
    }
    for _ in 0..MAX_ATTEMPTS {
        let (version, mut u) = read_usage(b, at.space)?;
        let Some(mark) = u.take_mark(join, &at.key(), v) else {
            return Ok(());
        };
        if undo {
            u.bytes = u.bytes.saturating_sub(mark.size);
            u.artifacts = u.artifacts.saturating_sub(1);
        }
        if write_usage(b, at.space, version, &u)? {
            return Ok(());
        }
    }
    Err(Error::Contended(at.hash.to_string()))
}

/// What a put stores: bytes passed in, or bytes the host staged.
#[derive(Clone, Copy)]
enum Content<'a> {
    Bytes(&'a [u8]),
    Staged(u64),
}

impl Content<'_> {
    fn size(self) -> u64 {
        match self {
            Content::Bytes(b) => b.len() as u64,
            Content::Staged(size) => size,
        }
    }

    fn write(self, backend: &impl Backend, hash: &str) -> Outcome<()> {
        be(match self {
            Content::Bytes(b) => backend.write_blob(hash, b),
            Content::Staged(_) => backend.write_staged_blob(hash),
        })
    }
}

/// Counts the owner of `at` into the artifact record (creating it, with its
/// blob, if there is none), marked with the entry version `v`, once.
/// Returns the origin of the record it is counted in, or `None` if the
/// entry moved on meanwhile (someone else finished or rolled back the put).
fn join(
    b: &impl Backend,
    caller: &Caller,
    at: At,
    v: u64,
    entry: &Entry,
    content: Content,
) -> Outcome<Option<Origin>> {
    let (owner, hash, size) = (at.owner(), at.hash, entry.size);
    let mark = Mark {
        join: true,
        key: owner,
        version: v,
        size,
    };
    for _ in 0..MAX_ATTEMPTS {
        let (expected, record) = match be(b.read_record(hash))? {
            None => {
                content.write(b, hash)?;
                let record = Record {
                    state: State::Live,
                    artifact_type: entry.artifact_type,
                    size,
                    stored_at: b.now(),
                    owners: 1,
                    origin: Origin {
                        key: owner,
                        version: v,
                    },
                    marks: vec![mark],
                };
                (None, record)
            }
            Some(current) => {
                let mut record = decode(hash, &current.data)?;
                if record.state == State::Deleting {
                    finish_delete(b, hash, current.version)?;
                    continue;
                }
                if record.has_mark(true, &owner, v) {
                    return Ok(Some(record.origin));
                }
                // Known content: nothing to write, unless its blob was lost or
                // damaged to another size (this put repairs it), or the store
                // keeps dedup private (a join does the work of a first put).
                if caller.dedup == Dedup::Private || be(b.blob_size(hash))? != Some(record.size) {
                    content.write(b, hash)?;
                }
                record.owners = record.owners.saturating_add(1);
                record.marks.push(mark);
                (Some(current.version), record)
            }
        };
        if !at.still_at(b, v)? {
            return Ok(None);
        }
        match be(b.swap_record(hash, expected, Some(&record.encode())))? {
            Swap::Conflict => continue,
            Swap::Written(_) | Swap::Deleted => {
                // A new record: a gc that listed this content as an
                // unreferenced blob before our record existed may have
                // deleted the blob since (the interleaving iroh-blobs #247
                // shipped). Now that the record exists no gc can delete it, so
                // one look settles it.
                // (Private dedup makes the same check after a join, so that
                // joining costs what creating costs.)
                let check = expected.is_none() || caller.dedup == Dedup::Private;
                if check && be(b.blob_size(hash))? != Some(size) {
                    content.write(b, hash)?;
                }
                return Ok(Some(record.origin));
            }
        }
    }
    Err(Error::Contended(hash.to_string()))
}

/// Counts the owner of `at` out of the artifact record (the incarnation
/// `origin`), marked with the entry version `v`, once; deletes the artifact
/// when no owner is left. Also drops the owner's stale join marks.
fn leave(b: &impl Backend, caller: &Caller, at: At, v: u64, origin: &Origin) -> Outcome<()> {
    let (owner, hash) = (at.owner(), at.hash);
    for _ in 0..MAX_ATTEMPTS {
        let Some(current) = be(b.read_record(hash))? else {
            return Ok(());
        };
        let mut record = decode(hash, &current.data)?;
        if record.origin != *origin {
            // That incarnation is gone: its last owner has left.
            return Ok(());
        }
        if record.state == State::Deleting {
            return finish_delete(b, hash, current.version);
        }
        if record.has_mark(false, &owner, v) {
            return Ok(());
        }
        record.owners = record.owners.saturating_sub(1);
        record.marks.retain(|m| !(m.join && m.key == owner));
        if !at.still_at(b, v)? {
            return Ok(());
        }
        if record.owners == 0 && caller.dedup == Dedup::Shared {
            if delete(b, hash, current.version, record)? {
                return Ok(());
            }
            continue;
        }
        if record.owners == 0 {
            // Private dedup: the last leave costs what any leave costs (one
            // swap of the record); the deletion it starts is invisible at
            // once and finished by the next gc or put of the content.
            record.state = State::Deleting;
        }
        record.marks.push(Mark {
            join: false,
            key: owner,
            version: v,
            size: record.size,
        });
        match be(b.swap_record(hash, Some(current.version), Some(&record.encode())))? {
            Swap::Conflict => continue,
            Swap::Written(_) | Swap::Deleted => return Ok(()),
        }
    }
    Err(Error::Contended(hash.to_string()))
}

/// Removes the artifact mark of the transition `v` (of owner `at.space`);
/// with `undo`, also counts the owner back out (a join that never went live).
fn unmark_artifact(b: &impl Backend, at: At, v: u64, join: bool, undo: bool) -> Outcome<()> {
    let hash = at.hash;
    for _ in 0..MAX_ATTEMPTS {
        let Some(current) = be(b.read_record(hash))? else {
            return Ok(());
        };
        let mut record = decode(hash, &current.data)?;
        // A deleting record keeps its marks only under private dedup (the
        // last leave's); clearing it changes its version, which makes a
        // finisher holding the old one do nothing, and the next finishes it.
        if (undo && record.state == State::Deleting)
            || record.take_mark(join, &at.owner(), v).is_none()
        {
            return Ok(());
        }
        if undo {
            record.owners = record.owners.saturating_sub(1);
            if record.owners == 0 {
                if delete(b, hash, current.version, record)? {
                    return Ok(());
                }
                continue;
            }
        }
        if !matches!(
            be(b.swap_record(hash, Some(current.version), Some(&record.encode())))?,
            Swap::Conflict
        ) {
            return Ok(());
        }
    }
    Err(Error::Contended(hash.to_string()))
}

/// Finishes the first put whose entry is `Adding` at `v`: charge the
/// owner's usage, count it into the artifact, confirm the entry, clear the
/// marks. Returns false if the entry was rolled back meanwhile (the put
/// starts over). A refused quota or a failure rolls the entry back.
fn finish_add(
    b: &impl Backend,
    caller: &Caller,
    at: At,
    v: u64,
    entry: &Entry,
    content: Content,
) -> Outcome<bool> {
    let applied = account(b, at, v, entry.size, true, caller.quota)
        .and_then(|()| join(b, caller, at, v, entry, content));
    let origin = match applied {
        Ok(Some(origin)) => origin,
        Ok(None) => return confirmed_or_undone(b, at, v),
        Err(e) => {
            // Best effort: what is left, gc rolls back after the grace period.
            let _ = roll_back(b, at, v);
            return Err(e);
        }
    };
    let live = Entry {
        state: EntryState::Live,
        count: 1,
        incarnation: v,
        origin,
        ..entry.clone()
    };
    if matches!(at.swap_entry(b, Some(v), Some(&live))?, Swap::Conflict) {
        return confirmed_or_undone(b, at, v);
    }
    unmark_artifact(b, at, v, true, false)?;
    unmark_usage(b, at, v, true, false)?;
    Ok(true)
}

/// After the entry of a first put at `v` moved on under us: if someone
/// else (a put of the same owner) confirmed it, clear the marks and report
/// it done; if it was rolled back (by gc, or a put refused its quota), undo
/// what is ours and report that the put must start over.
fn confirmed_or_undone(b: &impl Backend, at: At, v: u64) -> Outcome<bool> {
    match at.entry(b)? {
        Some((_, e)) if e.incarnation == v && e.state != EntryState::Adding => {
            unmark_artifact(b, at, v, true, false)?;
            unmark_usage(b, at, v, true, false)?;
            Ok(true)
        }
        _ => {
            undo_add(b, at, v)?;
            Ok(false)
        }
    }
}

/// Undoes whatever a first put at `v` applied (its entry is gone or moved on).
fn undo_add(b: &impl Backend, at: At, v: u64) -> Outcome<()> {
    // Both, even if one fails (a damaged artifact record must not keep the
    // owner charged).
    let usage = unmark_usage(b, at, v, true, true);
    unmark_artifact(b, at, v, true, true).and(usage)
}

/// Rolls back the first put whose entry is `Adding` at `v`: deletes the
/// entry first (so nobody confirms it any more), then undoes its marks.
fn roll_back(b: &impl Backend, at: At, v: u64) -> Outcome<()> {
    at.swap_entry(b, Some(v), None)?;
    if let Some((_, e)) = at.entry(b)?
        && e.incarnation == v
        && e.state != EntryState::Adding
    {
        return Ok(()); // confirmed before we got to it
    }
    undo_add(b, at, v)
}

/// Finishes the last release whose entry is `Removing` at `v`: count the
/// owner out of the artifact, refund its usage, delete the entry, clear the
/// marks. Idempotent; anyone may finish it.
fn finish_remove(b: &impl Backend, caller: &Caller, at: At, v: u64, entry: &Entry) -> Outcome<()> {
    leave(b, caller, at, v, &entry.origin)?;
    account(b, at, v, entry.size, false, Quota::UNLIMITED)?;
    at.swap_entry(b, Some(v), None)?;
    unmark_artifact(b, at, v, false, false)?;
    unmark_usage(b, at, v, false, false)
}

/// Stores `content` for the caller and returns its hash; known content
/// takes one more reference. A caller's first reference to an artifact is
/// charged to its quota before anything is written.
pub fn put(
    backend: &impl Backend,
    caller: &Caller,
    content: &[u8],
    artifact_type: ArtifactType,
) -> Outcome<String> {
    put_with(
        backend,
        caller,
        Content::Bytes(content),
        artifact_type,
        || Ok(hash_hex(content)),
    )
}

/// [`put`] for a host that has already hashed the content with the `tree`
/// functions (in several instances at once) and staged its `size` bytes in
/// the backend rather than passing them in: the same rules, without hashing
/// again; where a put writes the blob, the backend stores the staged bytes
/// ([`Backend::write_staged_blob`]). `hash` must be a valid hash; only the
/// host may call this (it is not in the apps' interface), and it vouches
/// that `hash` and `size` are the content's.
pub fn put_staged(
    backend: &impl Backend,
    caller: &Caller,
    size: u64,
    artifact_type: ArtifactType,
    hash: &str,
) -> Outcome<String> {
    put_with(
        backend,
        caller,
        Content::Staged(size),
        artifact_type,
        || checked(hash).map(|()| hash.to_string()),
    )
}

/// The checks every put makes before touching the backend, then the put
/// under the hash that `hash` gives (computed only once the checks pass).
fn put_with(
    backend: &impl Backend,
    caller: &Caller,
    content: Content,
    artifact_type: ArtifactType,
    hash: impl FnOnce() -> Outcome<String>,
) -> Outcome<String> {
    checked_caller(caller)?;
    let size = content.size();
    if size > caller.quota.max_artifact_bytes {
        return Err(Error::QuotaExceeded {
            kind: QuotaKind::ArtifactBytes,
            limit: caller.quota.max_artifact_bytes,
            requested: size,
        });
    }
    let hash = hash()?;
    let space = owner_key(caller.owner);
    let at = At {
        space: &space,
        hash: &hash,
    };
    for _ in 0..MAX_ATTEMPTS {
        match at.entry(backend)? {
            None => {
                let adding = Entry {
                    state: EntryState::Adding,
                    artifact_type,
                    size,
                    stored_at: backend.now(),
                    count: 0,
                    incarnation: 0,
                    origin: Origin::default(),
                };
                if let Swap::Written(v) = at.swap_entry(backend, None, Some(&adding))?
                    && finish_add(backend, caller, at, v, &adding, content)?
                {
                    return Ok(hash);
                }
            }
            // A first put of this owner under way (or abandoned by a crash):
            // finish it (this put has the content), then take our reference.
            Some((v, e)) if e.state == EntryState::Adding => {
                finish_add(backend, caller, at, v, &e, content)?;
            }
            Some((v, e)) if e.state == EntryState::Removing => {
                finish_remove(backend, caller, at, v, &e)?;
            }
            Some((v, mut e)) => {
                if e.size != size {
                    return Err(Error::CorruptRecord(format!(
                        "index entry of {hash}: size {} but the content has {size} bytes",
                        e.size
                    )));
                }
                // Known content: nothing to write, unless its blob was lost or
                // damaged to another size, in which case this put repairs it.
                if be(backend.blob_size(&hash))? != Some(size) {
                    content.write(backend, &hash)?;
                }
                e.count = e.count.saturating_add(1);
                if !matches!(at.swap_entry(backend, Some(v), Some(&e))?, Swap::Conflict) {
                    return Ok(hash);
                }
            }
        }
    }
    Err(Error::Contended(hash))
}

/// Sets the caller's references to `hash` with `update(current) -> new`;
/// at 0 the caller leaves the artifact (deleted when no owner is left).
/// Returns the caller's new count.
fn drop_references(
    backend: &impl Backend,
    caller: &Caller,
    hash: &str,
    update: impl Fn(u64) -> u64,
) -> Outcome<u64> {
    checked_caller(caller)?;
    checked(hash)?;
    let space = owner_key(caller.owner);
    let at = At {
        space: &space,
        hash,
    };
    for _ in 0..MAX_ATTEMPTS {
        let (v, mut e) = match at.entry(backend)? {
            None => return Err(Error::NotFound(hash.to_string())),
            Some((v, e)) if e.state == EntryState::Removing => {
                finish_remove(backend, caller, at, v, &e)?;
                return Err(Error::NotFound(hash.to_string()));
            }
            Some((_, e)) if e.state == EntryState::Adding => {
                return Err(Error::NotFound(hash.to_string()));
            }
            Some(found) => found,
        };
        let left = update(e.count);
        if left > 0 {
            e.count = left;
            if !matches!(at.swap_entry(backend, Some(v), Some(&e))?, Swap::Conflict) {
                return Ok(left);
            }
            continue;
        }
        e.state = EntryState::Removing;
        if let Swap::Written(removing) = at.swap_entry(backend, Some(v), Some(&e))? {
            finish_remove(backend, caller, at, removing, &e)?;
            return Ok(0);
        }
    }
    Err(Error::Contended(hash.to_string()))
}

/// Drops one of the caller's references; returns how many it has left.
/// When no owner has any left, the artifact is deleted.
pub fn release(backend: &impl Backend, caller: &Caller, hash: &str) -> Outcome<u64> {
    drop_references(backend, caller, hash, |n| n - 1)
}

/// Drops all of the caller's references, deleting the artifact if no other
/// owner has any. For an admin, deletes the artifact whatever its owners:
/// every owner's references are dropped (an admin-only cost of one read
/// per owner in the store).
pub fn remove(backend: &impl Backend, caller: &Caller, hash: &str) -> Outcome<()> {
    if !caller.admin {
        return drop_references(backend, caller, hash, |_| 0).map(drop);
    }
    checked(hash)?;
    if shared(backend, hash)?.is_none() {
        return Err(Error::NotFound(hash.to_string()));
    }
    let mut after: Option<String> = None;
    loop {
        let owners = be(backend.list_owners(after.as_deref(), LIST_LIMIT))?;
        let full = owners.len() as u32 >= LIST_LIMIT;
        after = owners.last().cloned();
        for space in &owners {
            let at = At { space, hash };
            for _ in 0..MAX_ATTEMPTS {
                let (v, mut e) = match at.entry(backend)? {
                    Some(found) if found.1.state != EntryState::Adding => found,
                    _ => break,
                };
                if e.state == EntryState::Live {
                    e.state = EntryState::Removing;
                    let Swap::Written(v) = at.swap_entry(backend, Some(v), Some(&e))? else {
                        continue;
                    };
                    finish_remove(backend, caller, at, v, &e)?;
                } else {
                    finish_remove(backend, caller, at, v, &e)?;
                }
                break;
            }
        }
        if !full {
            break;
        }
    }
    // What is left has no owner holding it (a count a crash left too high)
    // unless a first put is under way: then that put wins, as if after us.
    for _ in 0..MAX_ATTEMPTS {
        let Some(current) = be(backend.read_record(hash))? else {
            return Ok(());
        };
        let record = decode(hash, &current.data)?;
        if record.state == State::Deleting {
            return finish_delete(backend, hash, current.version);
        }
        if record.marks.iter().any(|m| m.join) {
            return Ok(());
        }
        if delete(backend, hash, current.version, record)? {
            return Ok(());
        }
    }
    Err(Error::Contended(hash.to_string()))
}

/// The live shared record of `hash`, if any.
fn shared(backend: &impl Backend, hash: &str) -> Outcome<Option<Record>> {
    let Some(v) = be(backend.read_record(hash))? else {
        return Ok(None);
    };
    let record = decode(hash, &v.data)?;
    Ok((record.state == State::Live).then_some(record))
}

/// The caller's live entry for `hash`, if any (its own index only).
fn held(backend: &impl Backend, caller: &Caller, hash: &str) -> Outcome<Option<Entry>> {
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
    checked(hash)?;
    if !caller.admin {
        return match held(backend, caller, hash)? {
            Some(e) => Ok(Metadata::of_entry(hash, &e)),
            None => Err(Error::NotFound(hash.to_string())),
        };
    }
    let Some(record) = shared(backend, hash)? else {
        return Err(Error::NotFound(hash.to_string()));
    };
    let own = held(backend, caller, hash)?.map_or(0, |e| e.count);
    Ok(Metadata {
        hash: hash.to_string(),
        size: record.size,
        artifact_type: record.artifact_type,
        stored_at: record.stored_at,
        reference_count: own,
    })
}

/// Whether an artifact the caller may see is stored under `hash`. An owner
/// reads only its own index entry.
pub fn contains(backend: &impl Backend, caller: &Caller, hash: &str) -> Outcome<bool> {
    checked_caller(caller)?;
    checked(hash)?;
    if caller.admin {
        return Ok(shared(backend, hash)?.is_some());
    }
    Ok(held(backend, caller, hash)?.is_some())
}

/// Reads the content and checks it against its address and recorded size.
fn read_verified(
    backend: &impl Backend,
    caller: &Caller,
    hash: &str,
) -> Outcome<(Metadata, Vec<u8>)> {
    let meta = stat(backend, caller, hash)?;
    let Some(content) = be(backend.read_blob(hash))? else {
        return Err(Error::MissingContent(hash.to_string()));
    };
    let actual = hash_hex(&content);
    if actual != hash {
        return Err(Error::Integrity {
            expected: hash.to_string(),
            actual,
        });
    }
    if content.len() as u64 != meta.size {
        return Err(Error::CorruptRecord(format!(
            "record of {hash}: size {} but content has {} bytes",
            meta.size,
            content.len()
        )));
    }
    Ok((meta, content))
}

/// The content under `hash`, verified.
pub fn get(backend: &impl Backend, caller: &Caller, hash: &str) -> Outcome<Vec<u8>> {
    read_verified(backend, caller, hash).map(|(_, content)| content)
}

/// Verifies the content under `hash` without returning it.
pub fn verify(backend: &impl Backend, caller: &Caller, hash: &str) -> Outcome<Metadata> {
    read_verified(backend, caller, hash).map(|(meta, _)| meta)
}

/// Up to `limit` artifacts the caller may see with hashes after `after`,
/// ascending: an owner's from its own index (reading only its entries),
/// the host's from the shared records.
pub fn list(
    backend: &impl Backend,
    caller: &Caller,
    after: Option<&str>,
    limit: u32,
) -> Outcome<Vec<Metadata>> {
    checked_caller(caller)?;
    if let Some(after) = after {
        checked(after)?;
    }
    let limit = limit.min(LIST_LIMIT) as usize;
    let mut out = Vec::new();
    if caller.admin {
        scan_shared(backend, after, limit, |key, record| {
            let own = held(backend, caller, &key)?.map_or(0, |e| e.count);
            out.push(Metadata {
                hash: key,
                size: record.size,
                artifact_type: record.artifact_type,
                stored_at: record.stored_at,
                reference_count: own,
            });
            Ok(())
        })?;
    } else {
        scan_own(backend, caller, after, limit, |key, e| {
            out.push(Metadata::of_entry(&key, &e));
            Ok(())
        })?;
    }
    Ok(out)
}

/// Calls `each` on up to `limit` live shared records after `after`.
fn scan_shared(
    backend: &impl Backend,
    after: Option<&str>,
    limit: usize,
    mut each: impl FnMut(String, Record) -> Outcome<()>,
) -> Outcome<()> {
    let mut cursor = after.map(str::to_string);
    let mut seen = 0;
    while seen < limit {
        let page = be(backend.list_records(cursor.as_deref(), LIST_LIMIT))?;
        let Some((last, _)) = page.last() else { break };
        cursor = Some(last.clone());
        let full_page = page.len() as u32 >= LIST_LIMIT;
        for (key, v) in page {
            checked(&key)
                .map_err(|_| Error::Backend(format!("backend listed an invalid key {key:.80?}")))?;
            let record = decode(&key, &v.data)?;
            if record.state == State::Live && seen < limit {
                seen += 1;
                each(key, record)?;
            }
        }
        if !full_page {
            break;
        }
    }
    Ok(())
}

/// Calls `each` on up to `limit` of the caller's live entries after `after`.
fn scan_own(
    backend: &impl Backend,
    caller: &Caller,
    after: Option<&str>,
    limit: usize,
    mut each: impl FnMut(String, Entry) -> Outcome<()>,
) -> Outcome<()> {
    let space = owner_key(caller.owner);
    let usage = usage_key();
    let mut cursor = after.map(str::to_string);
    let mut seen = 0;
    while seen < limit {
        let page = be(backend.list_entries(&space, cursor.as_deref(), LIST_LIMIT))?;
        let Some((last, _)) = page.last() else { break };
        cursor = Some(last.clone());
        let full_page = page.len() as u32 >= LIST_LIMIT;
        for (key, v) in page {
            if key == usage {
                continue;
            }
            checked(&key)
                .map_err(|_| Error::Backend(format!("backend listed an invalid key {key:.80?}")))?;
            let e = Entry::decode(&v.data)
                .map_err(|why| Error::CorruptRecord(format!("index entry of {key}: {why}")))?;
            if e.state == EntryState::Live && seen < limit {
                seen += 1;
                each(key, e)?;
            }
        }
        if !full_page {
            break;
        }
    }
    Ok(())
}

/// Calls `each` on the size of every artifact the caller may see.
fn sizes(backend: &impl Backend, caller: &Caller, mut each: impl FnMut(u64)) -> Outcome<()> {
    checked_caller(caller)?;
    if caller.admin {
        scan_shared(backend, None, usize::MAX, |_, r| {
            each(r.size);
            Ok(())
        })
    } else {
        scan_own(backend, caller, None, usize::MAX, |_, e| {
            each(e.size);
            Ok(())
        })
    }
}

/// How many artifacts the caller may see: for an owner, a walk of its own index.
pub fn count(backend: &impl Backend, caller: &Caller) -> Outcome<u64> {
    let mut n = 0u64;
    sizes(backend, caller, |_| n += 1)?;
    Ok(n)
}

/// The total size of the content the caller may see.
pub fn total_bytes(backend: &impl Backend, caller: &Caller) -> Outcome<u64> {
    let mut total = 0u64;
    sizes(backend, caller, |s| total = total.saturating_add(s))?;
    Ok(total)
}

/// The owner's usage, as its quota counts it (first puts under way included).
pub fn usage(backend: &impl Backend, caller: &Caller) -> Outcome<Usage> {
    checked_caller(caller)?;
    let (_, u) = read_usage(backend, &owner_key(caller.owner))?;
    Ok(Usage {
        marks: Vec::new(),
        ..u
    })
}

/// What [`gc`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GcReport {
    /// Unreferenced blobs older than the grace period, deleted.
    pub orphans_removed: u64,
    /// Their total size.
    pub bytes_freed: u64,
    /// Unreferenced blobs younger than the grace period, kept.
    pub orphans_in_grace: u64,
    /// Half-done deletions, releases and first puts (rolled back) finished.
    pub deletions_finished: u64,
}

/// Calls `each` on every page of `list` (a paged listing) until a short page.
fn pages<T: Clone>(
    mut list: impl FnMut(Option<&str>) -> Outcome<Vec<T>>,
    key: impl Fn(&T) -> String,
    mut each: impl FnMut(Vec<T>) -> Outcome<()>,
) -> Outcome<()> {
    let mut after: Option<String> = None;
    loop {
        let page = list(after.as_deref())?;
        let full = page.len() as u32 >= LIST_LIMIT;
        after = page.last().map(&key);
        each(page)?;
        if !full {
            return Ok(());
        }
    }
}

/// Resolves an artifact's marks whose entries have moved on: a join whose
/// entry never went live is undone; a finished one is only unmarked.
fn sweep_record_marks(backend: &impl Backend, hash: &str, record: &Record) -> Outcome<()> {
    for m in &record.marks {
        let space = hash_of(&m.key);
        let at = At {
            space: &space,
            hash,
        };
        let entry = at.entry(backend)?;
        let under_way = entry.as_ref().is_some_and(|(v, _)| *v == m.version);
        if under_way {
            continue;
        }
        let confirmed = entry
            .as_ref()
            .is_some_and(|(_, e)| e.incarnation == m.version && e.state != EntryState::Adding);
        unmark_artifact(backend, at, m.version, m.join, m.join && !confirmed)?;
    }
    Ok(())
}

/// Resolves an owner's usage marks, as [`sweep_record_marks`] does.
fn sweep_usage_marks(backend: &impl Backend, space: &str) -> Outcome<()> {
    let (_, u) = read_usage(backend, space)?;
    for m in &u.marks {
        let hash = hash_of(&m.key);
        let at = At { space, hash: &hash };
        let entry = at.entry(backend)?;
        if entry.as_ref().is_some_and(|(v, _)| *v == m.version) {
            continue;
        }
        let confirmed = entry
            .as_ref()
            .is_some_and(|(_, e)| e.incarnation == m.version && e.state != EntryState::Adding);
        unmark_usage(backend, at, m.version, m.join, m.join && !confirmed)?;
    }
    Ok(())
}

/// The hex form of 32 raw bytes.
fn hash_of(raw: &[u8; 32]) -> String {
    raw.iter().map(|b| format!("{b:02x}")).collect()
}

/// Deletes blobs no record references that were written more than
/// `grace_ms` ago, and finishes what crashed processes left half done:
/// deletions, last releases (finished), first puts older than the grace
/// period (rolled back), and marks whose transitions are over.
pub fn gc(backend: &impl Backend, grace_ms: u64) -> Outcome<GcReport> {
    let mut report = GcReport::default();
    let cutoff = backend.now().saturating_sub(grace_ms);
    let host = Caller::HOST;
    // Every owner's index: transitions a crash left behind.
    pages(
        |after| be(backend.list_owners(after, LIST_LIMIT)),
        String::clone,
        |owners| {
            for space in owners {
                pages(
                    |after| be(backend.list_entries(&space, after, LIST_LIMIT)),
                    |(k, _)| k.clone(),
                    |page| {
                        for (key, v) in page {
                            if key == usage_key() || checked(&key).is_err() {
                                continue;
                            }
                            let Ok(e) = Entry::decode(&v.data) else {
                                continue;
                            };
                            let at = At {
                                space: &space,
                                hash: &key,
                            };
                            match e.state {
                                EntryState::Removing => {
                                    finish_remove(backend, &host, at, v.version, &e)?;
                                    report.deletions_finished += 1;
                                }
                                EntryState::Adding if e.stored_at <= cutoff => {
                                    roll_back(backend, at, v.version)?;
                                    report.deletions_finished += 1;
                                }
                                _ => {}
                            }
                        }
                        Ok(())
                    },
                )?;
                sweep_usage_marks(backend, &space)?;
            }
            Ok(())
        },
    )?;
    // Abandoned deletions and stale marks in the shared records: finishing
    // a deletion is idempotent and guarded by the record's version, so a
    // deleter still at work loses nothing.
    pages(
        |after| be(backend.list_records(after, LIST_LIMIT)),
        |(k, _)| k.clone(),
        |page| {
            for (key, v) in page {
                if checked(&key).is_err() {
                    continue;
                }
                let record = decode(&key, &v.data)?;
                if record.state == State::Deleting {
                    finish_delete(backend, &key, v.version)?;
                    report.deletions_finished += 1;
                } else if !record.marks.is_empty() {
                    sweep_record_marks(backend, &key, &record)?;
                }
            }
            Ok(())
        },
    )?;
    // Orphans: blobs without a record. The delete is atomic with record
    // swaps (only if there is still no record), and the grace period covers
    // a put between writing its blob and creating its record.
    pages(
        |after| be(backend.list_blobs(after, LIST_LIMIT)),
        |(k, _, _)| k.clone(),
        |page| {
            for (key, size, modified) in page {
                checked(&key).map_err(|_| {
                    Error::Backend(format!("backend listed an invalid key {key:.80?}"))
                })?;
                if be(backend.read_record(&key))?.is_some() {
                    continue;
                }
                if modified > cutoff {
                    report.orphans_in_grace += 1;
                } else if be(backend.delete_blob(&key, None))? {
                    report.orphans_removed += 1;
                    report.bytes_freed = report.bytes_freed.saturating_add(size);
                }
            }
            Ok(())
        },
    )?;
    Ok(report)
}

/// Migrates a format-1 store in place: every format-1 artifact record
/// becomes owner entries (one per owner, with its count) and a format-2
/// record counting its owners; usage records are rebuilt from the entries;
/// format-1 usage records are deleted. Idempotent and safe to interrupt:
/// a format-1 record stays the truth until it is rewritten, and entries are
/// written (overwritten) from it first. Run with no other writer. Returns
/// how many artifact records were migrated.
pub fn migrate(backend: &impl Backend) -> Outcome<u64> {
    let mut migrated = 0u64;
    pages(
        |after| be(backend.list_records(after, LIST_LIMIT)),
        |(k, _)| k.clone(),
        |page| {
            for (key, v) in page {
                if checked(&key).is_err() || !RecordV1::is_v1(&v.data) {
                    continue;
                }
                if Usage::is_usage(&v.data) {
                    continue; // rebuilt below, deleted last
                }
                let old = RecordV1::decode(&v.data)
                    .map_err(|why| Error::CorruptRecord(format!("record of {key}: {why}")))?;
                if old.state == State::Deleting || old.owners.is_empty() {
                    finish_delete(backend, &key, v.version)?;
                    continue;
                }
                let first = old.owners.first().map_or("", |(o, _)| o.as_str());
                let origin = Origin {
                    key: raw(&owner_key(first)),
                    version: v.version,
                };
                for (owner, count) in &old.owners {
                    let space = owner_key(owner);
                    let entry = Entry {
                        state: EntryState::Live,
                        artifact_type: old.artifact_type,
                        size: old.size,
                        stored_at: old.stored_at,
                        count: *count,
                        incarnation: v.version,
                        origin,
                    };
                    let current = be(backend.read_entry(&space, &key))?.map(|c| c.version);
                    be(backend.swap_entry(&space, &key, current, Some(&entry.encode())))?;
                }
                let record = Record {
                    state: State::Live,
                    artifact_type: old.artifact_type,
                    size: old.size,
                    stored_at: old.stored_at,
                    owners: old.owners.len() as u64,
                    origin,
                    marks: Vec::new(),
                };
                be(backend.swap_record(&key, Some(v.version), Some(&record.encode())))?;
                migrated += 1;
            }
            Ok(())
        },
    )?;
    // Usage, exactly: the sum of every owner's live entries (all owners,
    // since an interrupted run may have touched others).
    let mut owners: Vec<String> = Vec::new();
    pages(
        |after| be(backend.list_owners(after, LIST_LIMIT)),
        String::clone,
        |page| {
            owners.extend(page);
            Ok(())
        },
    )?;
    for space in owners.into_iter().filter(|s| !untracked(s)) {
        let mut u = Usage::default();
        pages(
            |after| be(backend.list_entries(&space, after, LIST_LIMIT)),
            |(k, _)| k.clone(),
            |page| {
                for (key, v) in page {
                    if key == usage_key() {
                        continue;
                    }
                    if let Ok(e) = Entry::decode(&v.data)
                        && e.state == EntryState::Live
                    {
                        u.bytes = u.bytes.saturating_add(e.size);
                        u.artifacts += 1;
                    }
                }
                Ok(())
            },
        )?;
        let version = be(backend.read_entry(&space, &usage_key()))?.map(|v| v.version);
        write_usage(backend, &space, version, &u)?;
    }
    pages(
        |after| be(backend.list_records(after, LIST_LIMIT)),
        |(k, _)| k.clone(),
        |page| {
            for (key, v) in page {
                if Usage::is_usage(&v.data) && RecordV1::is_v1(&v.data) {
                    be(backend.swap_record(&key, Some(v.version), None))?;
                }
            }
            Ok(())
        },
    )?;
    Ok(migrated)
}

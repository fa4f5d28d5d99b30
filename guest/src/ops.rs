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
use crate::record::{ArtifactType, MAX_OWNERS, Record, State, Usage, validate_owner};

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
    /// The artifact already has [`record::MAX_OWNERS`](crate::record::MAX_OWNERS) owners.
    TooManyOwners(String),
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
}

impl Caller<'static> {
    /// The host: its own references, sees everything, no quota.
    pub const HOST: Self = Self {
        owner: HOST_OWNER,
        admin: true,
        quota: Quota::UNLIMITED,
    };
}

impl Caller<'_> {
    fn sees(&self, record: &Record) -> bool {
        record.state == State::Live && (self.admin || record.count_of(self.owner) > 0)
    }

    /// Whether this owner's usage is tracked (everyone's but the host's).
    fn tracked(&self) -> bool {
        self.owner != HOST_OWNER
    }
}

/// An artifact's metadata as the caller sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    /// The content's address.
    pub hash: String,
    /// The decoded record.
    pub record: Record,
    /// The references the caller sees: all of them for an admin, else its own.
    pub reference_count: u64,
}

impl Metadata {
    fn new(caller: &Caller, hash: String, record: Record) -> Self {
        let reference_count = if caller.admin {
            record.reference_count()
        } else {
            record.count_of(caller.owner)
        };
        Self {
            hash,
            record,
            reference_count,
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

/// Reads the record under `hash` with its version, if the caller may see it.
fn visible(backend: &impl Backend, caller: &Caller, hash: &str) -> Outcome<Option<(u64, Record)>> {
    let Some(v) = backend.read_record(hash).map_err(Error::Backend)? else {
        return Ok(None);
    };
    let record = decode(hash, &v.data)?;
    Ok(caller.sees(&record).then_some((v.version, record)))
}

/// Finishes a deletion whose `Deleting` record has `version`. Idempotent:
/// whoever comes second finds the version gone and does nothing.
fn finish_delete(backend: &impl Backend, hash: &str, version: u64) -> Outcome<()> {
    backend
        .delete_blob(hash, Some(version))
        .map_err(Error::Backend)?;
    backend
        .swap_record(hash, Some(version), None)
        .map_err(Error::Backend)?;
    Ok(())
}

/// The key of `owner`'s usage record: a BLAKE3 key derivation, which can
/// never equal the plain BLAKE3 hash of any content.
pub fn usage_key(owner: &str) -> String {
    blake3::Hasher::new_derive_key("artifacts:store 2026 owner usage v1")
        .update(owner.as_bytes())
        .finalize()
        .to_hex()
        .to_string()
}

/// Adds (`add`) or removes one artifact of `size` bytes to the
/// owner's usage, refusing an addition that would break `quota`.
fn charge(backend: &impl Backend, caller: &Caller, size: u64, add: bool) -> Outcome<()> {
    if !caller.tracked() {
        return Ok(());
    }
    let key = usage_key(caller.owner);
    for _ in 0..MAX_ATTEMPTS {
        let current = backend.read_record(&key).map_err(Error::Backend)?;
        let usage = match &current {
            Some(v) => Usage::decode(&v.data).map_err(|why| {
                Error::CorruptRecord(format!("usage record of {}: {why}", caller.owner))
            })?,
            None => Usage::default(),
        };
        let next = if add {
            let next = Usage {
                bytes: usage.bytes.saturating_add(size),
                artifacts: usage.artifacts.saturating_add(1),
            };
            let q = caller.quota;
            if next.bytes > q.max_bytes {
                return Err(Error::QuotaExceeded {
                    kind: QuotaKind::Bytes,
                    limit: q.max_bytes,
                    requested: next.bytes,
                });
            }
            if next.artifacts > q.max_artifacts {
                return Err(Error::QuotaExceeded {
                    kind: QuotaKind::Artifacts,
                    limit: q.max_artifacts,
                    requested: next.artifacts,
                });
            }
            next
        } else {
            Usage {
                bytes: usage.bytes.saturating_sub(size),
                artifacts: usage.artifacts.saturating_sub(1),
            }
        };
        let new = (next != Usage::default()).then(|| next.encode());
        match backend
            .swap_record(&key, current.map(|v| v.version), new.as_deref())
            .map_err(Error::Backend)?
        {
            Swap::Conflict => continue,
            Swap::Written(_) | Swap::Deleted => return Ok(()),
        }
    }
    Err(Error::Contended(key))
}

/// The owner's usage.
pub fn usage(backend: &impl Backend, caller: &Caller) -> Outcome<Usage> {
    checked_caller(caller)?;
    match backend
        .read_record(&usage_key(caller.owner))
        .map_err(Error::Backend)?
    {
        Some(v) => Usage::decode(&v.data)
            .map_err(|why| Error::CorruptRecord(format!("usage record: {why}"))),
        None => Ok(Usage::default()),
    }
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
        match self {
            Content::Bytes(b) => backend.write_blob(hash, b),
            Content::Staged(_) => backend.write_staged_blob(hash),
        }
        .map_err(Error::Backend)
    }
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
    put_as(backend, caller, content, artifact_type, hash()?)
}

/// The put once the content's hash is known.
fn put_as(
    backend: &impl Backend,
    caller: &Caller,
    content: Content,
    artifact_type: ArtifactType,
    hash: String,
) -> Outcome<String> {
    let size = content.size();
    let mut charged = false;
    let result = put_charged(backend, caller, &hash, content, artifact_type, &mut charged);
    if charged && !matches!(result, Ok(true)) {
        // Not (or no longer) a new reference for this owner: give the charge back.
        // Best effort: if this fails too, usage errs on the high side, never the low.
        let _ = charge(backend, caller, size, false);
    }
    result.map(|_| hash)
}

/// The put loop. Returns whether the caller's charge was used (its first
/// reference to this artifact).
fn put_charged(
    backend: &impl Backend,
    caller: &Caller,
    hash: &str,
    content: Content,
    artifact_type: ArtifactType,
    charged: &mut bool,
) -> Outcome<bool> {
    let size = content.size();
    for _ in 0..MAX_ATTEMPTS {
        let current = backend.read_record(hash).map_err(Error::Backend)?;
        let (expected, record) = match current {
            None => {
                if !*charged {
                    charge(backend, caller, size, true)?;
                    *charged = true;
                }
                content.write(backend, hash)?;
                let record = Record {
                    state: State::Live,
                    artifact_type,
                    size,
                    stored_at: backend.now(),
                    owners: vec![(caller.owner.to_string(), 1)],
                };
                (None, record)
            }
            Some(v) => {
                let mut record = decode(hash, &v.data)?;
                if record.state == State::Deleting {
                    finish_delete(backend, hash, v.version)?;
                    continue;
                }
                // Known content: nothing to write, unless its blob was lost or
                // damaged to another size, in which case this put repairs it.
                let blob = backend.blob_size(hash).map_err(Error::Backend)?;
                if blob != Some(size) {
                    content.write(backend, hash)?;
                }
                let mine = record.count_of(caller.owner);
                if mine == 0 {
                    if record.owners.len() >= MAX_OWNERS {
                        return Err(Error::TooManyOwners(hash.to_string()));
                    }
                    if !*charged {
                        charge(backend, caller, size, true)?;
                        *charged = true;
                    }
                }
                record.set_count(caller.owner, mine.saturating_add(1));
                (Some(v.version), record)
            }
        };
        let first = record.count_of(caller.owner) == 1;
        match backend
            .swap_record(hash, expected, Some(&record.encode()))
            .map_err(Error::Backend)?
        {
            Swap::Conflict => continue,
            Swap::Written(_) | Swap::Deleted => {
                // A new record: a gc that listed this content as an
                // unreferenced blob before our record existed may have
                // deleted the blob since (the interleaving iroh-blobs #247
                // shipped). Now that the record exists no gc can delete it, so
                // one look settles it. (An existing record was there all along,
                // since our swap saw its version unchanged, and its blob was
                // checked above.)
                if expected.is_none()
                    && backend.blob_size(hash).map_err(Error::Backend)? != Some(size)
                {
                    content.write(backend, hash)?;
                }
                return Ok(first);
            }
        }
    }
    Err(Error::Contended(hash.to_string()))
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

/// Sets the caller's references to `hash` with `update(current) -> new`,
/// deleting the artifact when no owner is left. Returns the caller's new count.
fn drop_references(
    backend: &impl Backend,
    caller: &Caller,
    hash: &str,
    update: impl Fn(u64) -> u64,
) -> Outcome<u64> {
    checked_caller(caller)?;
    checked(hash)?;
    for _ in 0..MAX_ATTEMPTS {
        let Some((version, mut record)) = visible(backend, caller, hash)? else {
            return Err(Error::NotFound(hash.to_string()));
        };
        let mine = record.count_of(caller.owner);
        if mine == 0 {
            // An admin sees artifacts it holds no reference to; it has none to drop.
            return Err(Error::NotFound(hash.to_string()));
        }
        let left = update(mine);
        record.set_count(caller.owner, left);
        let size = record.size;
        let done = if record.owners.is_empty() {
            delete(backend, hash, version, record)?
        } else {
            match backend
                .swap_record(hash, Some(version), Some(&record.encode()))
                .map_err(Error::Backend)?
            {
                Swap::Written(_) | Swap::Deleted => true,
                Swap::Conflict => false,
            }
        };
        if done {
            if left == 0 {
                charge(backend, caller, size, false)?;
            }
            return Ok(left);
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
/// owner has any. For an admin, deletes the artifact whatever its owners.
pub fn remove(backend: &impl Backend, caller: &Caller, hash: &str) -> Outcome<()> {
    if !caller.admin {
        return drop_references(backend, caller, hash, |_| 0).map(drop);
    }
    checked(hash)?;
    for _ in 0..MAX_ATTEMPTS {
        let Some((version, record)) = visible(backend, caller, hash)? else {
            return Err(Error::NotFound(hash.to_string()));
        };
        let (owners, size) = (record.owners.clone(), record.size);
        if delete(backend, hash, version, record)? {
            for (owner, _) in owners {
                let former = Caller {
                    owner: &owner,
                    ..*caller
                };
                charge(backend, &former, size, false)?;
            }
            return Ok(());
        }
    }
    Err(Error::Contended(hash.to_string()))
}

/// The metadata of an artifact the caller may see.
pub fn stat(backend: &impl Backend, caller: &Caller, hash: &str) -> Outcome<Metadata> {
    checked_caller(caller)?;
    checked(hash)?;
    match visible(backend, caller, hash)? {
        Some((_, record)) => Ok(Metadata::new(caller, hash.to_string(), record)),
        None => Err(Error::NotFound(hash.to_string())),
    }
}

/// Whether an artifact the caller may see is stored under `hash`.
pub fn contains(backend: &impl Backend, caller: &Caller, hash: &str) -> Outcome<bool> {
    checked_caller(caller)?;
    checked(hash)?;
    Ok(visible(backend, caller, hash)?.is_some())
}

/// Reads the content and checks it against its address and recorded size.
fn read_verified(
    backend: &impl Backend,
    caller: &Caller,
    hash: &str,
) -> Outcome<(Metadata, Vec<u8>)> {
    let meta = stat(backend, caller, hash)?;
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
pub fn get(backend: &impl Backend, caller: &Caller, hash: &str) -> Outcome<Vec<u8>> {
    read_verified(backend, caller, hash).map(|(_, content)| content)
}

/// Verifies the content under `hash` without returning it.
pub fn verify(backend: &impl Backend, caller: &Caller, hash: &str) -> Outcome<Metadata> {
    read_verified(backend, caller, hash).map(|(meta, _)| meta)
}

/// Up to `limit` artifacts the caller may see with hashes after `after`, ascending.
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
    let mut cursor = after.map(str::to_string);
    while out.len() < limit {
        let page = backend
            .list_records(cursor.as_deref(), LIST_LIMIT)
            .map_err(Error::Backend)?;
        let Some((last, _)) = page.last() else { break };
        cursor = Some(last.clone());
        let full_page = page.len() as u32 >= LIST_LIMIT;
        for (key, v) in page {
            if Usage::is_usage(&v.data) {
                continue;
            }
            checked(&key)
                .map_err(|_| Error::Backend(format!("backend listed an invalid key {key:.80?}")))?;
            let record = decode(&key, &v.data)?;
            if caller.sees(&record) && out.len() < limit {
                out.push(Metadata::new(caller, key, record));
            }
        }
        if !full_page {
            break;
        }
    }
    Ok(out)
}

/// Calls `each` on every artifact the caller may see.
fn for_each(
    backend: &impl Backend,
    caller: &Caller,
    mut each: impl FnMut(&Metadata),
) -> Outcome<()> {
    let mut after: Option<String> = None;
    loop {
        let page = list(backend, caller, after.as_deref(), LIST_LIMIT)?;
        page.iter().for_each(&mut each);
        match page.last() {
            Some(last) if page.len() as u32 == LIST_LIMIT => after = Some(last.hash.clone()),
            _ => return Ok(()),
        }
    }
}

/// How many artifacts the caller may see.
pub fn count(backend: &impl Backend, caller: &Caller) -> Outcome<u64> {
    let mut n = 0u64;
    for_each(backend, caller, |_| n += 1)?;
    Ok(n)
}

/// The total size of the content the caller may see.
pub fn total_bytes(backend: &impl Backend, caller: &Caller) -> Outcome<u64> {
    let mut total = 0u64;
    for_each(backend, caller, |m| {
        total = total.saturating_add(m.record.size)
    })?;
    Ok(total)
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
    /// Half-done deletions finished.
    pub deletions_finished: u64,
}

/// Deletes blobs no record references that were written more than
/// `grace_ms` ago, and finishes abandoned deletions.
pub fn gc(backend: &impl Backend, grace_ms: u64) -> Outcome<GcReport> {
    let mut report = GcReport::default();
    // Abandoned deletions: finishing one is idempotent and guarded by the
    // record's version, so a deleter still at work loses nothing.
    let mut after: Option<String> = None;
    loop {
        let page = backend
            .list_records(after.as_deref(), LIST_LIMIT)
            .map_err(Error::Backend)?;
        let full = page.len() as u32 >= LIST_LIMIT;
        after = page.last().map(|(k, _)| k.clone());
        for (key, v) in page {
            if Usage::is_usage(&v.data) || checked(&key).is_err() {
                continue;
            }
            if decode(&key, &v.data)?.state == State::Deleting {
                finish_delete(backend, &key, v.version)?;
                report.deletions_finished += 1;
            }
        }
        if !full {
            break;
        }
    }
    // Orphans: blobs without a record. The delete is atomic with record
    // swaps (only if there is still no record), and the grace period covers
    // a put between writing its blob and creating its record.
    let cutoff = backend.now().saturating_sub(grace_ms);
    let mut after: Option<String> = None;
    loop {
        let page = backend
            .list_blobs(after.as_deref(), LIST_LIMIT)
            .map_err(Error::Backend)?;
        let full = page.len() as u32 >= LIST_LIMIT;
        after = page.last().map(|(k, _, _)| k.clone());
        for (key, size, modified) in page {
            checked(&key)
                .map_err(|_| Error::Backend(format!("backend listed an invalid key {key:.80?}")))?;
            if backend.read_record(&key).map_err(Error::Backend)?.is_some() {
                continue;
            }
            if modified > cutoff {
                report.orphans_in_grace += 1;
            } else if backend.delete_blob(&key, None).map_err(Error::Backend)? {
                report.orphans_removed += 1;
                report.bytes_freed = report.bytes_freed.saturating_add(size);
            }
        }
        if !full {
            break;
        }
    }
    Ok(report)
}

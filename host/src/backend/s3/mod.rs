//! [`S3Backend`]: blobs and records as objects in an S3 bucket (AWS S3,
//! Garage, MinIO, Ceph RGW), shared by any number of host processes.
//!
//! ```text
//! PREFIX/FORMAT                   "artifacts-store 3 s3" (or 2, before any name was written):
//!                                 refuses foreign, older or newer layouts
//! PREFIX/blobs/ab/abcdef…         content, named by its hash, sharded by its first byte
//! PREFIX/records/ab/abcdef…       8-byte little-endian version, then the core's record
//! PREFIX/outboards/ab/abcdef…     BLAKE3's tree of a blob of 256 KiB or more, for
//!                                 verified ranges (a range's nodes: one batch of
//!                                 ranged GETs)
//! PREFIX/aliases/ab/abcdef…       a sha256 digest (OCI's address; its hex) holding the
//!                                 hash of the content it names
//! PREFIX/owners/1234…/abcdef…     an owner's index space (folder named by its owner
//!                                 key): entries and its usage record, stored as records are
//! PREFIX/locks/abcdef…/CLAIM      a claim on the record `abcdef…` (empty object)
//! PREFIX/locks/1234…-abcdef…/CLAIM a claim on the entry `abcdef…` of owner `1234…`
//! PREFIX/quarantine/abcdef…       damaged blobs moved aside by `verify --quarantine`
//! PREFIX/staging/RANDOM           a large put's content, uploaded in parts, then copied
//!                                 to its blob once hashed
//! ```
//!
//! # Why claims, not conditional writes
//!
//! A record is read, changed and written back, so two hosts changing it at
//! once must not both succeed. S3 offers `If-Match` / `If-None-Match` on
//! `PutObject` for that, but Garage (2.5) does not: it honours those headers
//! on reads only, and a conditional put simply overwrites. So this backend
//! needs nothing but what every S3 store gives: a `PUT` or `DELETE` that has
//! returned is seen by every later `LIST` (Garage: quorum writes and reads).
//!
//! Every record swap and guarded blob delete holds a short per-record lock
//! built from that alone. To take it, a host writes an empty claim object with
//! a fresh random name under `locks/KEY/`, then lists that folder. If its claim
//! is the only one, it holds the lock. Two hosts can never both hold it: each
//! wrote before it listed, so the later lister sees the other's claim. If
//! there are others, the oldest claim (by server time) stays and its host
//! lists again until the others are gone; the rest withdraw their claims and
//! wait for the folder to empty before claiming again, so a crowd of hosts
//! does not keep colliding.
//!
//! A host that dies holding a lock leaves its claim behind. A claim whose
//! server timestamp is more than [`LEASE`] older than a newer claim is stale
//! and is deleted by whoever sees it. A holder therefore gives up (with an
//! error, having written nothing) once it has held a lock for a quarter of
//! the lease, and every request is bounded in time, so a write cannot
//! land after its lease ran out. That is the one timing assumption here: the
//! bucket's servers' clocks agree to within a few seconds (Garage needs that
//! too) and no request takes longer than its timeout.
//!
//! Blobs are written without a lock: a `PUT` is atomic (readers see the old
//! object, none, or the whole new one), and the content under a key never
//! changes. So blob transfers (which may be large) go through a second
//! client with generous time limits ([`BLOB_TIMEOUT`]); only the lock's
//! requests need the short ones. Content over 8 MiB staged by a large put
//! is uploaded as a multipart upload in 8 MiB parts to `staging/`, then
//! copied to its blob on the server (`CopyObject`, atomic like a `PUT`);
//! a staging holds one part in memory at most.
//! Every request is idempotent, so transport errors are retried (a bounded
//! number of times); what still fails surfaces as [`BackendError::Io`](crate::backend::BackendError::Io)
//! naming the operation and the object.
//!
//! `FORMAT`, the shard keys and the record encoding are the layout the file
//! backend shares (`backend/layout.rs`); here, `config.rs` says where the
//! bucket is, `bucket.rs` is the async bridge and its two clients,
//! `lock.rs` the claim lock, `staging.rs` the multipart staging and
//! `listing.rs` the listings.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use object_store::path::Path;

use super::layout::{self, Marker, S3_FORMAT};
use super::{
    Backend, BackendResult, BlobInfo, CleanedUp, Listed, Side, SideInfo, SideKind, Space, Staging,
    Swap, SwapOutcome, VersionedRecord,
};
use crate::Hash;
use bucket::{Bucket, Found, Lane, failed, millis};
use listing::{Folder, QUARANTINE};

mod bucket;
mod config;
mod listing;
mod lock;
mod staging;

pub use config::{BLOB_TIMEOUT, LEASE, S3Config};

/// The contents of `PREFIX/FORMAT` for this layout.
pub const S3_FORMAT_MARKER: &str = S3_FORMAT.current;
/// The contents of `PREFIX/FORMAT` of the layout before names, used as it
/// is until the first name is written.
pub const S3_FORMAT_MARKER_V2: &str = S3_FORMAT.v2;
/// The contents of `PREFIX/FORMAT` of the layout before owner indexes,
/// which `artifacts migrate` brings to this one.
pub const S3_FORMAT_MARKER_V1: &str = S3_FORMAT.v1;

/// A backend in an S3 bucket; see the [module docs](self) for the layout and
/// how several hosts share it safely.
pub struct S3Backend {
    /// Shared with the backend's stagings, which outlive a borrow of it.
    bucket: Arc<Bucket>,
    location: String,
    lease: Duration,
}

impl fmt::Debug for S3Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Backend")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl S3Backend {
    /// Connects to the bucket and checks (or writes) the format marker.
    pub fn open(config: &S3Config) -> BackendResult<Self> {
        Self::open_mode(config, false)
    }

    /// Opens a store of this layout or the one before (format 1), for
    /// [`migrate`](crate::ArtifactStore::migrate) only.
    pub fn open_for_migration(config: &S3Config) -> BackendResult<Self> {
        Self::open_mode(config, true)
    }

    fn open_mode(config: &S3Config, migrating: bool) -> BackendResult<Self> {
        let lease = config.effective_lease();
        let this = Self {
            bucket: Arc::new(Bucket::connect(config, lease)?),
            location: config.location(),
            lease,
        };
        let marker = this.bucket.path(layout::FORMAT);
        let found = this.bucket.get(Lane::Short, &marker)?;
        let migrate = "artifacts --s3 URL migrate";
        match S3_FORMAT.check(found.as_deref(), migrating, &this.location, migrate)? {
            Marker::Current | Marker::V2 | Marker::V1 => {}
            Marker::Absent => this.write_format()?,
        }
        Ok(this)
    }

    /// Where this backend keeps its objects (no credentials).
    pub fn location(&self) -> &str {
        &self.location
    }

    fn write_format(&self) -> BackendResult<()> {
        let marker = self.bucket.path(layout::FORMAT);
        self.bucket
            .put(Lane::Short, &marker, S3_FORMAT_MARKER.as_bytes().to_vec())
    }

    /// A page of the objects in the sharded folder `folder` (blobs, or
    /// outboards), with their sizes and times.
    fn list_objects(
        &self,
        folder: &'static str,
        after: Option<&Hash>,
        limit: u32,
    ) -> BackendResult<Vec<BlobInfo>> {
        Ok(self
            .list_keyed(Folder::Sharded(folder), after, limit)?
            .into_iter()
            .map(|(key, meta)| BlobInfo {
                key,
                size: meta.size,
                modified: millis(&meta),
            })
            .collect())
    }

    fn blob_path(&self, key: &Hash) -> Path {
        self.bucket.path(&layout::blob_key(key))
    }

    /// Where the side object `key` lives, and the lane its transfers take
    /// (outboards and quarantined blobs may be large).
    fn side_path(&self, key: &Side) -> (Path, Lane) {
        match key {
            Side::Outboard(hash) => (self.bucket.path(&layout::outboard_key(hash)), Lane::Blob),
            Side::Alias(digest) => (self.bucket.path(&layout::alias_key(digest)), Lane::Short),
            Side::Note(note) => (self.bucket.path(&layout::note_key(*note)), Lane::Short),
            Side::Quarantined(hash) => (
                self.bucket.path(&Folder::Flat(QUARANTINE).key(hash)),
                Lane::Blob,
            ),
        }
    }

    fn record_path(&self, space: Space, key: &Hash) -> Path {
        self.bucket.path(&Folder::of(space).key(key))
    }

    /// The claim folder of the record `key` of `space`: `locks/abcdef…`, or
    /// `locks/1234…-abcdef…` in the owner `1234…`'s space.
    fn record_lock(&self, space: Space, key: &Hash) -> (Path, String) {
        let what = match space {
            Space::Shared => layout::name(key),
            Space::Owner(owner) => format!("{}-{}", layout::name(&owner), layout::name(key)),
        };
        (self.bucket.path(&format!("locks/{what}")), what)
    }

    /// The versioned object at `path`, or `None`.
    fn read_at(&self, path: &Path) -> BackendResult<Option<VersionedRecord>> {
        self.bucket
            .get(Lane::Short, path)?
            .map(|bytes| layout::decode_record(&bytes, format_args!("s3 record {path}")))
            .transpose()
    }

    /// Compare-and-swap on the versioned object at `path`, under the lock
    /// `(folder, what)`.
    fn swap_at(
        &self,
        (folder, what): (Path, String),
        path: &Path,
        swap: Swap<'_>,
    ) -> BackendResult<SwapOutcome> {
        let mut guard = self.lock_at(folder, &what)?;
        let current = self.read_at(path)?.map(|r| r.version);
        layout::swap(current, swap, |bytes| {
            guard.write(|| match bytes {
                Some(bytes) => self.bucket.put(Lane::Short, path, bytes),
                None => self.bucket.delete(path),
            })
        })
    }
}

impl Backend for S3Backend {
    fn write_blob(&self, key: &Hash, data: &[u8]) -> BackendResult<()> {
        self.bucket
            .put(Lane::Blob, &self.blob_path(key), data.to_vec())
    }

    fn read_blob(&self, key: &Hash) -> BackendResult<Option<Vec<u8>>> {
        self.bucket.get(Lane::Blob, &self.blob_path(key))
    }

    fn stage(&self) -> BackendResult<Staging> {
        Ok(self.start_staging())
    }

    fn staged_in_memory(&self, staged: u64) -> u64 {
        staging::held_in_memory(staged)
    }

    fn read_blob_range(&self, key: &Hash, offset: u64, len: u64) -> BackendResult<Option<Vec<u8>>> {
        let path = self.blob_path(key);
        let Some(meta) = self.bucket.head(&path)? else {
            return Ok(None);
        };
        let end = offset.saturating_add(len).min(meta.size);
        if offset >= end {
            return Ok(Some(Vec::new()));
        }
        self.bucket.get_range(&path, offset..end)
    }

    fn blob_size(&self, key: &Hash) -> BackendResult<Option<u64>> {
        Ok(self.bucket.head(&self.blob_path(key))?.map(|m| m.size))
    }

    fn write_side(&self, key: &Side, data: &[u8]) -> BackendResult<()> {
        let (path, lane) = self.side_path(key);
        self.bucket.put(lane, &path, data.to_vec())
    }

    fn read_side(&self, key: &Side) -> BackendResult<Option<Vec<u8>>> {
        let (path, lane) = self.side_path(key);
        self.bucket.get(lane, &path)
    }

    fn read_side_ranges(
        &self,
        key: &Side,
        ranges: &[(u64, u64)],
    ) -> BackendResult<Option<Vec<Vec<u8>>>> {
        let (path, _) = self.side_path(key);
        let Some(meta) = self.bucket.head(&path)? else {
            return Ok(None);
        };
        // Cut at the end (a short object gives short ranges, as elsewhere).
        let clamped: Vec<Range<u64>> = ranges
            .iter()
            .map(|&(offset, len)| {
                let start = offset.min(meta.size);
                start..offset.saturating_add(len).min(meta.size)
            })
            .collect();
        let wanted: Vec<Range<u64>> = clamped.iter().filter(|r| !r.is_empty()).cloned().collect();
        let Some(mut parts) = self.bucket.get_ranges(&path, wanted)? else {
            return Ok(None);
        };
        parts.reverse();
        Ok(Some(
            clamped
                .iter()
                .map(|r| {
                    if r.is_empty() {
                        Vec::new()
                    } else {
                        parts.pop().unwrap_or_default()
                    }
                })
                .collect(),
        ))
    }

    fn side_size(&self, key: &Side) -> BackendResult<Option<u64>> {
        Ok(self.bucket.head(&self.side_path(key).0)?.map(|m| m.size))
    }

    fn delete_side(&self, key: &Side) -> BackendResult<bool> {
        let (path, _) = self.side_path(key);
        if self.bucket.head(&path)?.is_none() {
            return Ok(false);
        }
        self.bucket.delete(&path)?;
        Ok(true)
    }

    fn list_side(
        &self,
        kind: SideKind,
        after: Option<&Side>,
        limit: u32,
    ) -> BackendResult<Vec<SideInfo>> {
        self.list_sides(kind, after, limit)
    }

    fn delete_blob(&self, key: &Hash, record_version: Option<u64>) -> BackendResult<bool> {
        let (folder, what) = self.record_lock(Space::Shared, key);
        let mut guard = self.lock_at(folder, &what)?;
        if self.read_record(Space::Shared, key)?.map(|r| r.version) != record_version {
            return Ok(false);
        }
        let path = self.blob_path(key);
        if self.bucket.head(&path)?.is_none() {
            return Ok(false);
        }
        guard.write(|| self.bucket.delete(&path))?;
        Ok(true)
    }

    fn list_blobs(&self, after: Option<&Hash>, limit: u32) -> BackendResult<Vec<BlobInfo>> {
        self.list_objects(layout::BLOBS, after, limit)
    }

    fn read_record(&self, space: Space, key: &Hash) -> BackendResult<Option<VersionedRecord>> {
        self.read_at(&self.record_path(space, key))
    }

    fn swap_record(&self, space: Space, key: &Hash, swap: Swap<'_>) -> BackendResult<SwapOutcome> {
        let lock = self.record_lock(space, key);
        self.swap_at(lock, &self.record_path(space, key), swap)
    }

    fn list_records(&self, space: Space, after: Option<&Hash>, limit: u32) -> Listed {
        self.list_space(space, after, limit)
    }

    fn list_owners(&self, after: Option<&Hash>, limit: u32) -> BackendResult<Vec<Hash>> {
        self.list_owner_keys(after, limit)
    }

    fn finish_migration(&self) -> BackendResult<()> {
        // Looked at again first: a newer version may have marked the bucket
        // since it was opened, and its marker must not be written over.
        let marker = self.bucket.path(layout::FORMAT);
        let found = self.bucket.get(Lane::Short, &marker)?;
        let migrate = "artifacts --s3 URL migrate";
        if S3_FORMAT.check(found.as_deref(), true, &self.location, migrate)? == Marker::Current {
            return Ok(());
        }
        self.write_format()
    }

    fn clean_up(&self, older_than_ms: u64) -> BackendResult<CleanedUp> {
        // Claims left by hosts that died holding a lock, aged by the servers'
        // clock (a probe object's timestamp), never this host's.
        let now = self.server_now()?;
        let lease_ms = u64::try_from(self.lease.as_millis()).unwrap_or(u64::MAX);
        let mut removed = 0;
        // Staged uploads of puts that never finished (a completed upload is
        // an object; an interrupted one is invisible here, and the bucket's
        // own clean-up of incomplete uploads removes its parts).
        for (folder, min_age) in [
            ("locks", older_than_ms.max(lease_ms.saturating_mul(2))),
            ("staging", older_than_ms),
        ] {
            for meta in self
                .bucket
                .list(&self.bucket.path(folder), None, usize::MAX)?
            {
                if now.saturating_sub(millis(&meta)) > min_age {
                    self.bucket.delete(&meta.location)?;
                    removed += 1;
                }
            }
        }
        // An owner's folder goes with its last object: none are left empty.
        Ok(CleanedUp {
            temporary: removed,
            empty_spaces: 0,
        })
    }

    fn quarantine_blob(&self, key: &Hash) -> BackendResult<bool> {
        let from = self.blob_path(key);
        let (to, _) = self.side_path(&Side::Quarantined(*key));
        let copied = self.bucket.copy(&from, &to)?.found();
        if copied.map_err(|e| failed("COPY", &from, &e))?.is_none() {
            return Ok(false);
        }
        let version = self.read_record(Space::Shared, key)?.map(|r| r.version);
        self.delete_blob(key, version)
    }
}

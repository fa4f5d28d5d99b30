//! [`FileBackend`]: blobs and records as files in a directory.
//!
//! ```text
//! DIR/FORMAT                      "artifacts-store 3" (or 2, before any name was written):
//!                                 refuses foreign, older or newer layouts
//! DIR/lock                        flock'd around every record swap and guarded delete
//! DIR/blobs/ab/abcdef…            content, named by its hash, sharded by its first byte
//! DIR/records/ab/abcdef…          8-byte little-endian version, then the core's record
//! DIR/outboards/ab/abcdef…        BLAKE3's tree of a blob of 256 KiB or more (its 16 KiB
//!                                 groups' chaining values and their parents'), for
//!                                 verified ranges; made when first needed
//! DIR/aliases/ab/abcdef…          a sha256 digest (OCI's address; its hex) holding the
//!                                 hash of the content it names; made when first needed
//! DIR/owners/12/1234…/abcdef…     an owner's index space (the directory is its owner
//!                                 key, sharded by its first byte): an entry per
//!                                 artifact it holds and its usage record, stored as
//!                                 records are
//! DIR/tmp/                        files being written, renamed into place when complete,
//!                                 and large puts staged while they stream in
//! DIR/quarantine/                 damaged blobs moved aside by `verify --quarantine`
//!                                 (`HASH.MS`: when it was moved, in ms since the epoch)
//! DIR/notes/last-gc               what the last gc did (a `Note`), for `health`
//! DIR/cache/                      compiled code, sealed with a key kept elsewhere (CLI)
//! ```
//!
//! Every file is written to `tmp/`, synced, renamed into place, and its
//! directory synced, so a reader (or a reopen after a crash) sees a whole
//! file or none. A staged blob (a large put, streamed in pieces) is appended
//! to a file in `tmp/`, synced once, and hard-linked under a second
//! temporary name that is renamed into place, so that it can be stored
//! again (the core repairs a lost blob) until the put is done. Record swaps
//! hold an exclusive lock on `DIR/lock`, which works across processes as
//! well as threads.
//!
//! `FORMAT`, the shard paths and the record encoding are the layout the S3
//! backend shares (`backend/layout.rs`).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::fs::{Fs, StdFs};
use super::layout::{self, FILE_FORMAT, Marker, OwnerDirs};
use super::{
    Backend, BackendResult, BlobInfo, CleanedUp, Listed, Side, SideInfo, SideKind, Space, Staging,
    Swap, SwapOutcome, VersionedRecord, millis,
};
use crate::{BackendError, Hash};

mod atomic;
mod listing;
mod side;
mod staging;

/// The contents of `DIR/FORMAT` for this layout.
pub const FORMAT_MARKER: &str = FILE_FORMAT.current;
/// The contents of `DIR/FORMAT` of the layout before names, used as it is
/// until the first name is written.
pub const FORMAT_MARKER_V2: &str = FILE_FORMAT.v2;
/// The contents of `DIR/FORMAT` of the layout before owner indexes, which
/// `artifacts migrate` brings to this one.
pub const FORMAT_MARKER_V1: &str = FILE_FORMAT.v1;

/// A backend in a directory; see the [module docs](self) for the layout.
pub struct FileBackend<F: Fs = StdFs> {
    root: PathBuf,
    /// Shared with the backend's stagings, which outlive a borrow of it.
    fs: Arc<F>,
}

impl<F: Fs> Clone for FileBackend<F> {
    /// Another handle on the same directory.
    fn clone(&self) -> Self {
        Self {
            root: self.root.clone(),
            fs: self.fs.clone(),
        }
    }
}

impl FileBackend<StdFs> {
    /// Opens (creating if needed) a store directory on the real filesystem.
    pub fn open(root: impl Into<PathBuf>) -> BackendResult<Self> {
        Self::open_with(root, StdFs)
    }
}

/// An I/O result labelled with what was being done to which path.
trait IoContext<T> {
    /// The failure as a [`BackendError`] saying `doing` and `path`.
    fn at(self, doing: &str, path: &Path) -> BackendResult<T>;
    /// As [`at`](IoContext::at), with a missing file as `None`.
    fn found_at(self, doing: &str, path: &Path) -> BackendResult<Option<T>>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, doing: &str, path: &Path) -> BackendResult<T> {
        self.map_err(|e| BackendError::io(format_args!("{doing} {}", path.display()), &e))
    }

    fn found_at(self, doing: &str, path: &Path) -> BackendResult<Option<T>> {
        match self {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            other => other.map(Some).at(doing, path),
        }
    }
}

impl<F: Fs> FileBackend<F> {
    /// Opens (creating if needed) a store directory through `fs`.
    pub fn open_with(root: impl Into<PathBuf>, fs: F) -> BackendResult<Self> {
        Self::open_mode(root.into(), fs, false)
    }

    /// Opens a store directory of this layout or the one before (format 1),
    /// for [`migrate`](crate::ArtifactStore::migrate) only.
    pub fn open_for_migration(root: impl Into<PathBuf>, fs: F) -> BackendResult<Self> {
        Self::open_mode(root.into(), fs, true)
    }

    fn open_mode(root: PathBuf, fs: F, migrating: bool) -> BackendResult<Self> {
        let this = Self {
            root,
            fs: Arc::new(fs),
        };
        this.ensure_dir(&this.root)?;
        let marker = this.root.join(layout::FORMAT);
        let found = this.fs.read(&marker).found_at("reading", &marker)?;
        let shown = this.root.display();
        let migrate = format!("artifacts migrate --dir {shown}");
        match FILE_FORMAT.check(found.as_deref(), migrating, &shown, &migrate)? {
            Marker::Current | Marker::V2 => {}
            Marker::V1 => this.ensure_dir(&this.root.join(layout::OWNERS))?,
            Marker::Absent => {
                for sub in [layout::BLOBS, layout::RECORDS, layout::OWNERS, "tmp"] {
                    this.ensure_dir(&this.root.join(sub))?;
                }
                this.write_atomically(&marker, FORMAT_MARKER.as_bytes(), layout::FORMAT)?;
            }
        }
        Ok(this)
    }

    /// A page of the files in the sharded folder `folder` (blobs, or
    /// outboards, at `path_of`), with their sizes and times.
    fn list_files(
        &self,
        folder: &str,
        path_of: fn(&Self, &Hash) -> PathBuf,
        after: Option<&Hash>,
        limit: u32,
    ) -> BackendResult<Vec<BlobInfo>> {
        let mut out = Vec::new();
        for key in self.list_keys(folder, after, limit)? {
            let path = path_of(self, &key);
            // None: deleted since the listing.
            if let Some((size, modified)) = self.fs.stat(&path).found_at("inspecting", &path)? {
                out.push(BlobInfo {
                    key,
                    size,
                    modified: millis(modified),
                });
            }
        }
        Ok(out)
    }

    /// The store directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob for `key` lives: `blobs/ab/abcdef…`.
    pub fn blob_path(&self, key: &Hash) -> PathBuf {
        self.root.join(layout::blob_key(key))
    }

    /// Where the outboard of `key` lives: `outboards/ab/abcdef…`.
    pub fn outboard_path(&self, key: &Hash) -> PathBuf {
        self.root.join(layout::outboard_key(key))
    }

    /// Where the record `key` of `space` lives: `records/ab/abcdef…`, or
    /// `owners/12/1234…/abcdef…` in the owner `1234…`'s index space.
    pub fn record_path(&self, space: Space, key: &Hash) -> PathBuf {
        self.root.join(match space {
            Space::Shared => layout::record_key(key),
            Space::Owner(owner) => OwnerDirs::Sharded.entry(&owner, key),
        })
    }

    /// Reads a versioned record file (8-byte version, then the data).
    fn read_versioned(&self, path: &Path) -> BackendResult<Option<VersionedRecord>> {
        let Some(bytes) = self.fs.read(path).found_at("reading", path)? else {
            return Ok(None);
        };
        layout::decode_record(&bytes, format_args!("record file {}", path.display())).map(Some)
    }

    /// Compare-and-swap on the versioned record file at `path`, under the
    /// lock. A deletion that leaves `space` (an owner's directory) empty
    /// removes it too.
    fn swap_at(
        &self,
        path: &Path,
        key: &Hash,
        swap: Swap<'_>,
        space: Option<&Path>,
    ) -> BackendResult<SwapOutcome> {
        let _guard = self.lock()?;
        let current = self.read_versioned(path)?.map(|r| r.version);
        let outcome = layout::swap(current, swap, |bytes| match bytes {
            Some(bytes) => self.write_atomically(path, &bytes, &layout::name(key)),
            None => self.remove(path).map(drop),
        })?;
        if let (SwapOutcome::Deleted, Some(space)) = (outcome, space) {
            self.remove_if_empty(space);
        }
        Ok(outcome)
    }

    /// Removes the owner directory `space` if it holds nothing; the caller
    /// holds the lock, so no swap is putting an entry in it meanwhile (a
    /// swap makes it again, under the lock, before writing into it). Best
    /// effort: one left (it holds something, a crash, a failure) is
    /// harmless, and gc removes it once empty.
    fn remove_if_empty(&self, space: &Path) -> bool {
        self.fs.remove_dir(space).is_ok()
    }

    fn record_version(&self, key: &Hash) -> BackendResult<Option<u64>> {
        Ok(self.read_record(Space::Shared, key)?.map(|r| r.version))
    }
}

impl<F: Fs> Backend for FileBackend<F> {
    fn write_blob(&self, key: &Hash, data: &[u8]) -> BackendResult<()> {
        self.write_atomically(&self.blob_path(key), data, &layout::name(key))
    }

    fn stage(&self) -> BackendResult<Staging> {
        self.start_staging()
    }

    fn staged_in_memory(&self, _staged: u64) -> u64 {
        // A temporary file.
        0
    }

    fn read_blob(&self, key: &Hash) -> BackendResult<Option<Vec<u8>>> {
        let path = self.blob_path(key);
        self.fs.read(&path).found_at("reading", &path)
    }

    fn read_blob_range(&self, key: &Hash, offset: u64, len: u64) -> BackendResult<Option<Vec<u8>>> {
        let path = self.blob_path(key);
        self.fs
            .read_range(&path, offset, len)
            .found_at("reading", &path)
    }

    fn size_hint(&self, key: &Hash) -> Option<u64> {
        self.blob_size(key).ok().flatten()
    }

    fn write_side(&self, key: &Side, data: &[u8]) -> BackendResult<()> {
        self.write_side_file(key, data)
    }

    fn read_side(&self, key: &Side) -> BackendResult<Option<Vec<u8>>> {
        self.read_side_whole(key)
    }

    fn read_side_ranges(
        &self,
        key: &Side,
        ranges: &[(u64, u64)],
    ) -> BackendResult<Option<Vec<Vec<u8>>>> {
        self.read_side_file(key, ranges)
    }

    fn side_size(&self, key: &Side) -> BackendResult<Option<u64>> {
        self.side_file_size(key)
    }

    fn delete_side(&self, key: &Side) -> BackendResult<bool> {
        self.delete_side_file(key)
    }

    fn list_side(
        &self,
        kind: SideKind,
        after: Option<&Side>,
        limit: u32,
    ) -> BackendResult<Vec<SideInfo>> {
        self.list_side_files(kind, after, limit)
    }

    fn blob_size(&self, key: &Hash) -> BackendResult<Option<u64>> {
        let path = self.blob_path(key);
        let stat = self.fs.stat(&path).found_at("inspecting", &path)?;
        Ok(stat.map(|(size, _)| size))
    }

    fn delete_blob(&self, key: &Hash, record_version: Option<u64>) -> BackendResult<bool> {
        let _guard = self.lock()?;
        if self.record_version(key)? != record_version {
            return Ok(false);
        }
        self.remove(&self.blob_path(key))
    }

    fn list_blobs(&self, after: Option<&Hash>, limit: u32) -> BackendResult<Vec<BlobInfo>> {
        self.list_files(layout::BLOBS, Self::blob_path, after, limit)
    }

    fn clean_up(&self, older_than_ms: u64) -> BackendResult<CleanedUp> {
        Ok(CleanedUp {
            temporary: self.clean_tmp(older_than_ms)?,
            empty_spaces: self.remove_empty_owner_dirs(older_than_ms)?,
        })
    }

    fn quarantine_blob(&self, key: &Hash) -> BackendResult<bool> {
        self.quarantine_file(key)
    }

    fn read_record(&self, space: Space, key: &Hash) -> BackendResult<Option<VersionedRecord>> {
        self.read_versioned(&self.record_path(space, key))
    }

    fn swap_record(&self, space: Space, key: &Hash, swap: Swap<'_>) -> BackendResult<SwapOutcome> {
        let Space::Owner(owner) = space else {
            return self.swap_at(&self.record_path(space, key), key, swap, None);
        };
        if swap.new.is_some() {
            // `owners/12/`, then (by the write) `owners/12/1234…/`: each
            // created and its parent synced before anything goes in it.
            let shard = self.root.join(layout::OWNERS).join(layout::shard(&owner));
            self.ensure_dir(&shard)?;
        }
        let dir = self.root.join(OwnerDirs::Sharded.dir(&owner));
        self.swap_at(&self.record_path(space, key), key, swap, Some(&dir))
    }

    fn list_records(&self, space: Space, after: Option<&Hash>, limit: u32) -> Listed {
        let keys = match space {
            Space::Shared => self.list_keys(layout::RECORDS, after, limit)?,
            Space::Owner(owner) => {
                let dir = self.root.join(OwnerDirs::Sharded.dir(&owner));
                self.hash_names(&dir, after)?
            }
        };
        self.read_listed(keys, limit, |key| self.read_record(space, key))
    }

    fn list_owners(&self, after: Option<&Hash>, limit: u32) -> BackendResult<Vec<Hash>> {
        self.list_owner_keys(after, limit)
    }

    fn finish_migration(&self) -> BackendResult<()> {
        self.ensure_dir(&self.root.join(layout::OWNERS))?;
        let marker = self.root.join(layout::FORMAT);
        // Looked at again first: a newer version may have marked the store
        // since it was opened, and its marker must not be written over.
        let found = self.fs.read(&marker).found_at("reading", &marker)?;
        let shown = self.root.display();
        let migrate = format!("artifacts migrate --dir {shown}");
        if FILE_FORMAT.check(found.as_deref(), true, &shown, &migrate)? == Marker::Current {
            return Ok(());
        }
        self.write_atomically(&marker, FORMAT_MARKER.as_bytes(), layout::FORMAT)
    }
}

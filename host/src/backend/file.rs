//! [`FileBackend`]: blobs and records as files in a directory.
//!
//! ```text
//! DIR/FORMAT                      "artifacts-store 2": refuses foreign, older or newer layouts
//! DIR/lock                        flock'd around every record swap and guarded delete
//! DIR/blobs/ab/abcdef…            content, named by its hash, sharded by its first byte
//! DIR/records/ab/abcdef…          8-byte little-endian version, then the core's record
//! DIR/owners/12/1234…/abcdef…     an owner's index space (the directory is its owner
//!                                 key, sharded by its first byte): an entry per
//!                                 artifact it holds and its usage record, stored as
//!                                 records are
//! DIR/tmp/                        files being written, renamed into place when complete,
//!                                 and large puts staged while they stream in
//! DIR/quarantine/                 damaged blobs moved aside by `verify --quarantine`
//! DIR/cache/                      compiled code, sealed with a key kept elsewhere (CLI)
//! ```
//!
//! Every file is written to `tmp/`, synced, renamed into place, and its
//! directory synced, so a reader (or a reopen after a crash) sees a whole
//! file or none. A staged blob (a large put, streamed in pieces) is appended
//! to a file in `tmp/`, synced once, and hard-linked under a second
//! temporary name that is renamed into place, so that it can be stored
//! again (the core repairs a lost blob) until the put is done. Record swaps hold an exclusive lock on `DIR/lock`, which
//! works across processes as well as threads.

use std::path::{Path, PathBuf};

use super::fs::{Fs, StdFs};
use super::{
    Backend, BlobInfo, Staging, SwapOutcome, VersionedRecord, foreign_staging, new_version,
};
use crate::{BackendError, Hash};

/// The contents of `DIR/FORMAT` for this layout.
pub const FORMAT_MARKER: &str = "artifacts-store 2\n";
/// The contents of `DIR/FORMAT` of the layout before owner indexes, which
/// `artifacts migrate` brings to this one.
pub const FORMAT_MARKER_V1: &str = "artifacts-store 1\n";

/// A backend in a directory; see the [module docs](self) for the layout.
pub struct FileBackend<F: Fs = StdFs> {
    root: PathBuf,
    fs: F,
}

impl FileBackend<StdFs> {
    /// Opens (creating if needed) a store directory on the real filesystem.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, BackendError> {
        Self::open_with(root, StdFs)
    }
}

fn io_err(context: &str, path: &Path, err: std::io::Error) -> BackendError {
    BackendError::io(format_args!("{context} {}", path.display()), &err)
}

fn millis(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn not_found(err: &std::io::Error) -> bool {
    err.kind() == std::io::ErrorKind::NotFound
}

impl<F: Fs> FileBackend<F> {
    /// Opens (creating if needed) a store directory through `fs`.
    pub fn open_with(root: impl Into<PathBuf>, fs: F) -> Result<Self, BackendError> {
        Self::open_mode(root.into(), fs, false)
    }

    /// Opens a store directory of this layout or the one before (format 1),
    /// for [`migrate`](crate::ArtifactStore::migrate) only.
    pub fn open_for_migration(root: impl Into<PathBuf>, fs: F) -> Result<Self, BackendError> {
        Self::open_mode(root.into(), fs, true)
    }

    fn open_mode(root: PathBuf, fs: F, migrating: bool) -> Result<Self, BackendError> {
        let this = Self { root, fs };
        this.ensure_dir(&this.root)?;
        let marker = this.root.join("FORMAT");
        match this.fs.read(&marker) {
            Ok(found) if found == FORMAT_MARKER.as_bytes() => {}
            Ok(found) if found == FORMAT_MARKER_V1.as_bytes() && migrating => {
                this.ensure_dir(&this.root.join("owners"))?;
            }
            Ok(found) if found == FORMAT_MARKER_V1.as_bytes() => {
                return Err(BackendError::Io(format!(
                    "{} is a store of format 1 (before per-owner indexes); run \
                     `artifacts migrate --dir {}` once, with nothing else using it, \
                     to bring it to format 2",
                    this.root.display(),
                    this.root.display()
                )));
            }
            Ok(found) => {
                return Err(BackendError::Io(format!(
                    "{} is not a store of this version (FORMAT says {:?})",
                    this.root.display(),
                    String::from_utf8_lossy(&found).trim()
                )));
            }
            Err(e) if not_found(&e) => {
                for sub in ["blobs", "records", "owners", "tmp"] {
                    this.ensure_dir(&this.root.join(sub))?;
                }
                this.write_atomically(&marker, FORMAT_MARKER.as_bytes(), "FORMAT")?;
            }
            Err(e) => return Err(io_err("reading", &marker, e)),
        }
        Ok(this)
    }

    /// The store directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob for `key` lives: `blobs/ab/abcdef…`.
    pub fn blob_path(&self, key: &Hash) -> PathBuf {
        self.root.join("blobs").join(key.shard()).join(key.to_hex())
    }

    /// Where the record for `key` lives: `records/ab/abcdef…`.
    pub fn record_path(&self, key: &Hash) -> PathBuf {
        self.root
            .join("records")
            .join(key.shard())
            .join(key.to_hex())
    }

    /// Where the entry `key` of `owner`'s index space lives: `owners/12/1234…/abcdef…`.
    pub fn entry_path(&self, owner: &Hash, key: &Hash) -> PathBuf {
        self.owner_dir(owner).join(key.to_hex())
    }

    fn owner_dir(&self, owner: &Hash) -> PathBuf {
        self.root
            .join("owners")
            .join(owner.shard())
            .join(owner.to_hex())
    }

    /// Reads a versioned record file (8-byte version, then the data).
    fn read_versioned(&self, path: &Path) -> Result<Option<VersionedRecord>, BackendError> {
        let bytes = match self.fs.read(path) {
            Ok(bytes) => bytes,
            Err(e) if not_found(&e) => return Ok(None),
            Err(e) => return Err(io_err("reading", path, e)),
        };
        let Some((version, data)) = bytes.split_first_chunk::<8>() else {
            return Err(BackendError::Io(format!(
                "record file {} is truncated ({} bytes)",
                path.display(),
                bytes.len()
            )));
        };
        Ok(Some(VersionedRecord {
            version: u64::from_le_bytes(*version),
            data: data.to_vec(),
        }))
    }

    /// Compare-and-swap on the versioned record file at `path`, under the lock.
    fn swap_at(
        &self,
        path: &Path,
        tag: &str,
        expected: Option<u64>,
        new: Option<&[u8]>,
    ) -> Result<SwapOutcome, BackendError> {
        let _guard = self.lock()?;
        let current = self.read_versioned(path)?.map(|r| r.version);
        if current != expected {
            return Ok(SwapOutcome::Conflict);
        }
        match new {
            Some(data) => {
                let version = new_version(current);
                let bytes = [&version.to_le_bytes()[..], data].concat();
                self.write_atomically(path, &bytes, tag)?;
                Ok(SwapOutcome::Written(version))
            }
            None => {
                self.remove(path)?;
                Ok(SwapOutcome::Deleted)
            }
        }
    }

    /// Valid hash names in `dir`, ascending, greater than `after`.
    fn hash_names(&self, dir: &Path, after: Option<&Hash>) -> Result<Vec<Hash>, BackendError> {
        let names = match self.fs.list_dir(dir) {
            Ok(names) => names,
            Err(e) if not_found(&e) => return Ok(Vec::new()),
            Err(e) => return Err(io_err("listing", dir, e)),
        };
        let mut keys: Vec<Hash> = names
            .iter()
            .filter_map(|n| Hash::from_hex(n).ok())
            .filter(|h| after.is_none_or(|a| h > a))
            .collect();
        keys.sort_unstable();
        Ok(keys)
    }

    fn ensure_dir(&self, dir: &Path) -> Result<(), BackendError> {
        let created = self
            .fs
            .create_dir(dir)
            .map_err(|e| io_err("creating directory", dir, e))?;
        if created && let Some(parent) = dir.parent() {
            let parent = if parent.as_os_str().is_empty() {
                Path::new(".")
            } else {
                parent
            };
            self.fs
                .sync_dir(parent)
                .map_err(|e| io_err("syncing directory", parent, e))?;
        }
        Ok(())
    }

    /// A fresh name in `tmp/`.
    fn temporary(&self, tag: &str) -> PathBuf {
        self.root
            .join("tmp")
            .join(format!("{tag}.{:016x}", new_version(None)))
    }

    /// Writes `data` to a fresh temporary file, syncs it, renames it to
    /// `dest` and syncs `dest`'s directory. The temporary file is removed
    /// if anything fails.
    fn write_atomically(&self, dest: &Path, data: &[u8], tag: &str) -> Result<(), BackendError> {
        self.place(dest, tag, |tmp| {
            self.fs
                .write_new_synced(tmp, data)
                .map_err(|e| io_err("writing", tmp, e))
        })
    }

    /// Makes a complete, synced file at a fresh temporary path with `make`,
    /// renames it to `dest` and syncs `dest`'s directory. The temporary
    /// file is removed if anything fails.
    fn place(
        &self,
        dest: &Path,
        tag: &str,
        make: impl FnOnce(&Path) -> Result<(), BackendError>,
    ) -> Result<(), BackendError> {
        let parent = dest
            .parent()
            .ok_or_else(|| BackendError::Io(format!("{} has no parent", dest.display())))?;
        self.ensure_dir(parent)?;
        let tmp = self.temporary(tag);
        let result = make(&tmp).and_then(|()| {
            self.fs
                .rename(&tmp, dest)
                .map_err(|e| io_err("renaming into place", dest, e))
        });
        if result.is_err() {
            // Best effort: a leftover temporary file is harmless and `tmp/` is never read.
            let _ = self.fs.remove_file(&tmp);
        }
        result?;
        self.fs
            .sync_dir(parent)
            .map_err(|e| io_err("syncing directory", parent, e))
    }

    /// Copies `from` to the new file `to` in 4 MiB pieces, and syncs it.
    fn copy_synced(&self, from: &Path, to: &Path) -> Result<(), BackendError> {
        const PIECE: u64 = 4 << 20;
        self.fs
            .create_new(to)
            .map_err(|e| io_err("creating", to, e))?;
        let mut offset = 0;
        loop {
            let piece = self
                .fs
                .read_range(from, offset, PIECE)
                .map_err(|e| io_err("reading", from, e))?;
            if piece.is_empty() {
                break;
            }
            self.fs
                .append(to, &piece)
                .map_err(|e| io_err("appending to", to, e))?;
            offset += piece.len() as u64;
        }
        self.fs.sync_file(to).map_err(|e| io_err("syncing", to, e))
    }

    fn lock(&self) -> Result<Box<dyn Send>, BackendError> {
        let path = self.root.join("lock");
        self.fs.lock(&path).map_err(|e| io_err("locking", &path, e))
    }

    fn record_version(&self, key: &Hash) -> Result<Option<u64>, BackendError> {
        Ok(self.read_record(key)?.map(|r| r.version))
    }

    fn remove(&self, path: &Path) -> Result<bool, BackendError> {
        match self.fs.remove_file(path) {
            Ok(()) => {}
            Err(e) if not_found(&e) => return Ok(false),
            Err(e) => return Err(io_err("removing", path, e)),
        }
        if let Some(parent) = path.parent() {
            self.fs
                .sync_dir(parent)
                .map_err(|e| io_err("syncing directory", parent, e))?;
        }
        Ok(true)
    }

    /// Up to `limit` valid hash names under `DIR/{kind}/*/`, greater than `after`, ascending.
    fn list_keys(
        &self,
        kind: &str,
        after: Option<&Hash>,
        limit: u32,
    ) -> Result<Vec<Hash>, BackendError> {
        let base = self.root.join(kind);
        let mut shards = self
            .fs
            .list_dir(&base)
            .map_err(|e| io_err("listing", &base, e))?;
        shards
            .retain(|s| s.len() == 2 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
        shards.sort_unstable();
        let mut out = Vec::new();
        for shard in shards {
            if after.is_some_and(|a| shard.as_str() < a.shard()) {
                continue;
            }
            let dir = base.join(&shard);
            let names = match self.fs.list_dir(&dir) {
                Ok(names) => names,
                Err(e) if not_found(&e) => continue,
                Err(e) => return Err(io_err("listing", &dir, e)),
            };
            let mut keys: Vec<Hash> = names
                .iter()
                .filter_map(|n| Hash::from_hex(n).ok())
                .filter(|h| h.shard() == shard && after.is_none_or(|a| h > a))
                .collect();
            keys.sort_unstable();
            for key in keys {
                if out.len() >= limit as usize {
                    return Ok(out);
                }
                out.push(key);
            }
        }
        Ok(out)
    }
}

/// A blob staged in `tmp/`: its path, whether it is synced as it stands,
/// and whether it was stored (then it is also a stored blob's file, which
/// must not grow).
struct FileStaging {
    path: PathBuf,
    synced: bool,
    stored: bool,
}

impl<F: Fs> Backend for FileBackend<F> {
    fn write_blob(&self, key: &Hash, data: &[u8]) -> Result<(), BackendError> {
        self.write_atomically(&self.blob_path(key), data, &key.to_hex())
    }

    fn stage(&self) -> Result<Staging, BackendError> {
        let path = self.temporary("staged");
        self.fs
            .create_new(&path)
            .map_err(|e| io_err("creating", &path, e))?;
        Ok(Staging::new(FileStaging {
            path,
            synced: false,
            stored: false,
        }))
    }

    fn append_staged(&self, staging: &mut Staging, data: &[u8]) -> Result<(), BackendError> {
        let staged = staging
            .state_mut::<FileStaging>()
            .ok_or_else(foreign_staging)?;
        if staged.stored {
            return Err(BackendError::Io(format!(
                "{} was already stored: appending would change a stored blob",
                staged.path.display()
            )));
        }
        staged.synced = false;
        // Never re-created: if a gc removed the file of a put stalled past
        // its grace period, the put fails rather than store a tail.
        self.fs
            .append(&staged.path, data)
            .map_err(|e| io_err("appending to", &staged.path, e))
    }

    fn finish_staged(&self, staging: &mut Staging) -> Result<(), BackendError> {
        let staged = staging
            .state_mut::<FileStaging>()
            .ok_or_else(foreign_staging)?;
        if !staged.synced {
            self.fs
                .sync_file(&staged.path)
                .map_err(|e| io_err("syncing", &staged.path, e))?;
            staged.synced = true;
        }
        Ok(())
    }

    fn write_staged(&self, staging: &mut Staging, key: &Hash) -> Result<(), BackendError> {
        self.finish_staged(staging)?;
        let staged = staging
            .state_mut::<FileStaging>()
            .ok_or_else(foreign_staging)?;
        staged.stored = true;
        let from = &staged.path;
        let mut linked = None;
        self.place(&self.blob_path(key), &key.to_hex(), |tmp| {
            linked = Some(tmp.to_path_buf());
            match self.fs.hard_link(from, tmp) {
                Ok(()) => Ok(()),
                // A filesystem without hard links: copy instead.
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::Unsupported | std::io::ErrorKind::PermissionDenied
                    ) =>
                {
                    self.copy_synced(from, tmp)
                }
                Err(e) => Err(io_err("linking", from, e)),
            }
        })?;
        // Stored again under the same key, the new link and the blob are one
        // file, and renaming one onto the other leaves both names (POSIX).
        if let Some(tmp) = linked {
            let _ = self.fs.remove_file(&tmp);
        }
        Ok(())
    }

    fn discard_staged(&self, staging: Staging) -> Result<(), BackendError> {
        let staged = staging
            .into_state::<FileStaging>()
            .ok_or_else(foreign_staging)?;
        match self.fs.remove_file(&staged.path) {
            Ok(()) => Ok(()),
            Err(e) if not_found(&e) => Ok(()),
            Err(e) => Err(io_err("removing", &staged.path, e)),
        }
    }

    fn read_blob(&self, key: &Hash) -> Result<Option<Vec<u8>>, BackendError> {
        let path = self.blob_path(key);
        match self.fs.read(&path) {
            Ok(data) => Ok(Some(data)),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(io_err("reading", &path, e)),
        }
    }

    fn read_blob_range(
        &self,
        key: &Hash,
        offset: u64,
        len: u64,
    ) -> Result<Option<Vec<u8>>, BackendError> {
        let path = self.blob_path(key);
        match self.fs.read_range(&path, offset, len) {
            Ok(data) => Ok(Some(data)),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(io_err("reading", &path, e)),
        }
    }

    fn size_hint(&self, key: &Hash) -> Option<u64> {
        self.blob_size(key).ok().flatten()
    }
    fn blob_size(&self, key: &Hash) -> Result<Option<u64>, BackendError> {
        let path = self.blob_path(key);
        match self.fs.stat(&path) {
            Ok((size, _)) => Ok(Some(size)),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(io_err("inspecting", &path, e)),
        }
    }

    fn delete_blob(&self, key: &Hash, record_version: Option<u64>) -> Result<bool, BackendError> {
        let _guard = self.lock()?;
        if self.record_version(key)? != record_version {
            return Ok(false);
        }
        self.remove(&self.blob_path(key))
    }

    fn list_blobs(&self, after: Option<&Hash>, limit: u32) -> Result<Vec<BlobInfo>, BackendError> {
        let mut out = Vec::new();
        for key in self.list_keys("blobs", after, limit)? {
            let path = self.blob_path(&key);
            match self.fs.stat(&path) {
                Ok((size, modified)) => out.push(BlobInfo {
                    key,
                    size,
                    modified: millis(modified),
                }),
                // Deleted since the listing.
                Err(e) if not_found(&e) => {}
                Err(e) => return Err(io_err("inspecting", &path, e)),
            }
        }
        Ok(out)
    }

    fn clean_temporary(&self, older_than_ms: u64) -> Result<u64, BackendError> {
        let dir = self.root.join("tmp");
        let cutoff = self.now().saturating_sub(older_than_ms);
        let mut removed = 0;
        for name in self
            .fs
            .list_dir(&dir)
            .map_err(|e| io_err("listing", &dir, e))?
        {
            let path = dir.join(name);
            let Ok((_, modified)) = self.fs.stat(&path) else {
                continue;
            };
            if millis(modified) <= cutoff && self.fs.remove_file(&path).is_ok() {
                removed += 1;
            }
        }
        Ok(removed)
    }

    fn quarantine_blob(&self, key: &Hash) -> Result<bool, BackendError> {
        let dir = self.root.join("quarantine");
        self.ensure_dir(&dir)?;
        let dest = dir.join(format!("{key}.{}", self.now()));
        match self.fs.rename(&self.blob_path(key), &dest) {
            Ok(()) => Ok(true),
            Err(e) if not_found(&e) => Ok(false),
            Err(e) => Err(io_err("quarantining", &self.blob_path(key), e)),
        }
    }

    fn read_record(&self, key: &Hash) -> Result<Option<VersionedRecord>, BackendError> {
        self.read_versioned(&self.record_path(key))
    }

    fn swap_record(
        &self,
        key: &Hash,
        expected: Option<u64>,
        new: Option<&[u8]>,
    ) -> Result<SwapOutcome, BackendError> {
        self.swap_at(&self.record_path(key), &key.to_hex(), expected, new)
    }

    fn read_entry(
        &self,
        owner: &Hash,
        key: &Hash,
    ) -> Result<Option<VersionedRecord>, BackendError> {
        self.read_versioned(&self.entry_path(owner, key))
    }

    fn swap_entry(
        &self,
        owner: &Hash,
        key: &Hash,
        expected: Option<u64>,
        new: Option<&[u8]>,
    ) -> Result<SwapOutcome, BackendError> {
        if new.is_some() {
            // `owners/12/`, then (by the write) `owners/12/1234…/`: each
            // created and its parent synced before anything goes in it.
            let shard = self.root.join("owners").join(owner.shard());
            self.ensure_dir(&shard)?;
        }
        self.swap_at(&self.entry_path(owner, key), &key.to_hex(), expected, new)
    }

    fn list_entries(
        &self,
        owner: &Hash,
        after: Option<&Hash>,
        limit: u32,
    ) -> Result<Vec<(Hash, VersionedRecord)>, BackendError> {
        let mut out = Vec::new();
        for key in self.hash_names(&self.owner_dir(owner), after)? {
            if out.len() >= limit as usize {
                break;
            }
            // An entry deleted since the listing is simply skipped.
            if let Some(entry) = self.read_entry(owner, &key)? {
                out.push((key, entry));
            }
        }
        Ok(out)
    }

    fn list_owners(&self, after: Option<&Hash>, limit: u32) -> Result<Vec<Hash>, BackendError> {
        let base = self.root.join("owners");
        let mut shards = match self.fs.list_dir(&base) {
            Ok(shards) => shards,
            Err(e) if not_found(&e) => return Ok(Vec::new()),
            Err(e) => return Err(io_err("listing", &base, e)),
        };
        shards
            .retain(|s| s.len() == 2 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
        shards.sort_unstable();
        let mut out = Vec::new();
        for shard in shards {
            if after.is_some_and(|a| shard.as_str() < a.shard()) {
                continue;
            }
            for owner in self.hash_names(&base.join(&shard), after)? {
                if owner.shard() != shard {
                    continue;
                }
                if out.len() >= limit as usize {
                    return Ok(out);
                }
                out.push(owner);
            }
        }
        Ok(out)
    }

    fn finish_migration(&self) -> Result<(), BackendError> {
        self.ensure_dir(&self.root.join("owners"))?;
        self.write_atomically(
            &self.root.join("FORMAT"),
            FORMAT_MARKER.as_bytes(),
            "FORMAT",
        )
    }

    fn list_records(
        &self,
        after: Option<&Hash>,
        limit: u32,
    ) -> Result<Vec<(Hash, VersionedRecord)>, BackendError> {
        let mut out = Vec::new();
        for key in self.list_keys("records", after, limit)? {
            // A record deleted since the listing is simply skipped.
            if let Some(record) = self.read_record(&key)? {
                out.push((key, record));
            }
        }
        Ok(out)
    }
}

//! How the file backend writes: every file complete and synced in `tmp/`,
//! renamed into place, its directory synced; and the lock around swaps.

use std::path::{Path, PathBuf};

use super::{FileBackend, IoContext};
use crate::BackendError;
use crate::backend::fs::Fs;
use crate::backend::{Backend, BackendResult, millis, new_version};

impl<F: Fs> FileBackend<F> {
    /// Creates `dir` if it is missing, and then syncs its parent.
    pub(super) fn ensure_dir(&self, dir: &Path) -> BackendResult<()> {
        let created = self.fs.create_dir(dir).at("creating directory", dir)?;
        if created && let Some(parent) = dir.parent() {
            let parent = if parent.as_os_str().is_empty() {
                Path::new(".")
            } else {
                parent
            };
            self.sync_dir(parent)?;
        }
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> BackendResult<()> {
        self.fs.sync_dir(dir).at("syncing directory", dir)
    }

    /// A fresh name in `tmp/`.
    pub(super) fn temporary(&self, tag: &str) -> PathBuf {
        self.root
            .join("tmp")
            .join(format!("{tag}.{:016x}", new_version(None)))
    }

    /// Writes `data` to a fresh temporary file, syncs it, renames it to
    /// `dest` and syncs `dest`'s directory. The temporary file is removed
    /// if anything fails.
    pub(super) fn write_atomically(
        &self,
        dest: &Path,
        data: &[u8],
        tag: &str,
    ) -> BackendResult<()> {
        self.place(dest, tag, |tmp| {
            self.fs.write_new_synced(tmp, data).at("writing", tmp)
        })
    }

    /// Makes a complete, synced file at a fresh temporary path with `make`,
    /// renames it to `dest` and syncs `dest`'s directory. The temporary
    /// file is removed if anything fails.
    pub(super) fn place(
        &self,
        dest: &Path,
        tag: &str,
        make: impl FnOnce(&Path) -> BackendResult<()>,
    ) -> BackendResult<()> {
        let parent = dest
            .parent()
            .ok_or_else(|| BackendError::Io(format!("{} has no parent", dest.display())))?;
        self.ensure_dir(parent)?;
        let tmp = self.temporary(tag);
        let result =
            make(&tmp).and_then(|()| self.fs.rename(&tmp, dest).at("renaming into place", dest));
        if result.is_err() {
            // Best effort: a leftover temporary file is harmless and `tmp/` is never read.
            let _ = self.fs.remove_file(&tmp);
        }
        result?;
        self.sync_dir(parent)
    }

    /// Copies `from` to the new file `to` in 4 MiB pieces, and syncs it.
    pub(super) fn copy_synced(&self, from: &Path, to: &Path) -> BackendResult<()> {
        const PIECE: u64 = 4 << 20;
        self.fs.create_new(to).at("creating", to)?;
        let mut offset = 0;
        loop {
            let piece = self
                .fs
                .read_range(from, offset, PIECE)
                .at("reading", from)?;
            if piece.is_empty() {
                break;
            }
            self.fs.append(to, &piece).at("appending to", to)?;
            offset += piece.len() as u64;
        }
        self.fs.sync_file(to).at("syncing", to)
    }

    /// Takes `DIR/lock`, which every record swap and guarded delete holds.
    pub(super) fn lock(&self) -> BackendResult<Box<dyn Send>> {
        let path = self.root.join("lock");
        self.fs.lock(&path).at("locking", &path)
    }

    /// Removes a file and syncs its directory; `false` if there was none.
    pub(super) fn remove(&self, path: &Path) -> BackendResult<bool> {
        if self
            .fs
            .remove_file(path)
            .found_at("removing", path)?
            .is_none()
        {
            return Ok(false);
        }
        if let Some(parent) = path.parent() {
            self.sync_dir(parent)?;
        }
        Ok(true)
    }

    /// Removes files in `tmp/` older than `older_than_ms`; returns how many.
    pub(super) fn clean_tmp(&self, older_than_ms: u64) -> BackendResult<u64> {
        let dir = self.root.join("tmp");
        let cutoff = self.now().saturating_sub(older_than_ms);
        let mut removed = 0;
        for name in self.fs.list_dir(&dir).at("listing", &dir)? {
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
}

//! A large put staged by the file backend: appended to a file in `tmp/`,
//! synced once, and hard-linked (or copied) into place under its hash.

use std::io;

use super::{FileBackend, IoContext};
use crate::Hash;
use crate::backend::fs::Fs;
use crate::backend::{BackendResult, Staged, Staging, layout};

/// A blob staged in `tmp/`: its path, and whether it is synced as it stands.
struct FileStaging<F: Fs> {
    backend: FileBackend<F>,
    path: std::path::PathBuf,
    synced: bool,
}

impl<F: Fs> FileBackend<F> {
    /// [`Backend::stage`](crate::backend::Backend::stage): a fresh file in `tmp/`.
    pub(super) fn start_staging(&self) -> BackendResult<Staging> {
        let path = self.temporary("staged");
        self.fs.create_new(&path).at("creating", &path)?;
        Ok(Staging::new(FileStaging {
            backend: self.clone(),
            path,
            synced: false,
        }))
    }
}

impl<F: Fs> Staged for FileStaging<F> {
    fn append(&mut self, data: &[u8]) -> BackendResult<()> {
        self.synced = false;
        // Never re-created: if a gc removed the file of a put stalled past
        // its grace period, the put fails rather than store a tail.
        self.backend
            .fs
            .append(&self.path, data)
            .at("appending to", &self.path)
    }

    /// Syncs the file (once).
    fn finish(&mut self) -> BackendResult<()> {
        if !self.synced {
            self.backend
                .fs
                .sync_file(&self.path)
                .at("syncing", &self.path)?;
            self.synced = true;
        }
        Ok(())
    }

    /// Links the synced file to a temporary name and renames that into place.
    fn store(&mut self, key: &Hash) -> BackendResult<()> {
        self.finish()?;
        let backend = &self.backend;
        let from = &self.path;
        let mut linked = None;
        backend.place(&backend.blob_path(key), &layout::name(key), |tmp| {
            linked = Some(tmp.to_path_buf());
            match backend.fs.hard_link(from, tmp) {
                Ok(()) => Ok(()),
                // A filesystem without hard links: copy instead.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Unsupported | io::ErrorKind::PermissionDenied
                    ) =>
                {
                    backend.copy_synced(from, tmp)
                }
                Err(e) => Err(e).at("linking", from),
            }
        })?;
        // Stored again under the same key, the new link and the blob are one
        // file, and renaming one onto the other leaves both names (POSIX).
        if let Some(tmp) = linked {
            let _ = backend.fs.remove_file(&tmp);
        }
        Ok(())
    }

    /// Removes the file.
    fn discard(self: Box<Self>) -> BackendResult<()> {
        self.backend
            .fs
            .remove_file(&self.path)
            .found_at("removing", &self.path)
            .map(drop)
    }
}

//! A large put staged by the file backend: appended to a file in `tmp/`,
//! synced once, and hard-linked (or copied) into place under its hash.

use std::io;

use super::{FileBackend, IoContext};
use crate::Hash;
use crate::backend::fs::Fs;
use crate::backend::{BackendResult, Staging, layout};

/// A blob staged in `tmp/`: its path, and whether it is synced as it stands.
pub(super) struct FileStaging {
    path: std::path::PathBuf,
    synced: bool,
}

impl<F: Fs> FileBackend<F> {
    /// [`Backend::stage`](crate::Backend::stage): a fresh file in `tmp/`.
    pub(super) fn start_staging(&self) -> BackendResult<Staging> {
        let path = self.temporary("staged");
        self.fs.create_new(&path).at("creating", &path)?;
        Ok(Staging::new(FileStaging {
            path,
            synced: false,
        }))
    }

    /// [`Backend::append_staged`](crate::Backend::append_staged).
    pub(super) fn append_to_staging(
        &self,
        staging: &mut Staging,
        data: &[u8],
    ) -> BackendResult<()> {
        let staged = staging.to_append::<FileStaging>()?;
        staged.synced = false;
        // Never re-created: if a gc removed the file of a put stalled past
        // its grace period, the put fails rather than store a tail.
        self.fs
            .append(&staged.path, data)
            .at("appending to", &staged.path)
    }

    /// [`Backend::finish_staged`](crate::Backend::finish_staged): syncs the
    /// file (once); gives the staging back.
    pub(super) fn sync_staging(&self, staging: &mut Staging) -> BackendResult<()> {
        self.sync_staged(staging.state_mut()?)
    }

    fn sync_staged(&self, staged: &mut FileStaging) -> BackendResult<()> {
        if !staged.synced {
            self.fs
                .sync_file(&staged.path)
                .at("syncing", &staged.path)?;
            staged.synced = true;
        }
        Ok(())
    }

    /// [`Backend::write_staged`](crate::Backend::write_staged): links the
    /// synced file to a temporary name and renames that into place.
    pub(super) fn store_staging(&self, staging: &mut Staging, key: &Hash) -> BackendResult<()> {
        let staged = staging.to_store::<FileStaging>()?;
        self.sync_staged(staged)?;
        let from = &staged.path;
        let mut linked = None;
        self.place(&self.blob_path(key), &layout::name(key), |tmp| {
            linked = Some(tmp.to_path_buf());
            match self.fs.hard_link(from, tmp) {
                Ok(()) => Ok(()),
                // A filesystem without hard links: copy instead.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Unsupported | io::ErrorKind::PermissionDenied
                    ) =>
                {
                    self.copy_synced(from, tmp)
                }
                Err(e) => Err(e).at("linking", from),
            }
        })?;
        // Stored again under the same key, the new link and the blob are one
        // file, and renaming one onto the other leaves both names (POSIX).
        if let Some(tmp) = linked {
            let _ = self.fs.remove_file(&tmp);
        }
        Ok(())
    }

    /// [`Backend::discard_staged`](crate::Backend::discard_staged): removes the file.
    pub(super) fn drop_staging(&self, staging: Staging) -> BackendResult<()> {
        let staged = staging.into_state::<FileStaging>()?;
        self.fs
            .remove_file(&staged.path)
            .found_at("removing", &staged.path)
            .map(drop)
    }
}

//! A large put staged by the file backend: appended to a file in `tmp/`,
//! synced once, and hard-linked (or copied) into place under its hash.

use std::io;

use super::{FileBackend, IoContext};
use crate::backend::fs::Fs;
use crate::backend::{Staging, foreign_staging, layout};
use crate::{BackendError, Hash};

/// A blob staged in `tmp/`: its path, whether it is synced as it stands,
/// and whether it was stored (then it is also a stored blob's file, which
/// must not grow).
pub(super) struct FileStaging {
    path: std::path::PathBuf,
    synced: bool,
    stored: bool,
}

fn staged(staging: &mut Staging) -> Result<&mut FileStaging, BackendError> {
    staging
        .state_mut::<FileStaging>()
        .ok_or_else(foreign_staging)
}

impl<F: Fs> FileBackend<F> {
    /// [`Backend::stage`](crate::Backend::stage): a fresh file in `tmp/`.
    pub(super) fn start_staging(&self) -> Result<Staging, BackendError> {
        let path = self.temporary("staged");
        self.fs.create_new(&path).at("creating", &path)?;
        Ok(Staging::new(FileStaging {
            path,
            synced: false,
            stored: false,
        }))
    }

    /// [`Backend::append_staged`](crate::Backend::append_staged).
    pub(super) fn append_to_staging(
        &self,
        staging: &mut Staging,
        data: &[u8],
    ) -> Result<(), BackendError> {
        let staged = staged(staging)?;
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
            .at("appending to", &staged.path)
    }

    /// [`Backend::finish_staged`](crate::Backend::finish_staged): syncs the
    /// file (once); gives the staging back.
    pub(super) fn sync_staging<'s>(
        &self,
        staging: &'s mut Staging,
    ) -> Result<&'s mut FileStaging, BackendError> {
        let staged = staged(staging)?;
        if !staged.synced {
            self.fs
                .sync_file(&staged.path)
                .at("syncing", &staged.path)?;
            staged.synced = true;
        }
        Ok(staged)
    }

    /// [`Backend::write_staged`](crate::Backend::write_staged): links the
    /// synced file to a temporary name and renames that into place.
    pub(super) fn store_staging(
        &self,
        staging: &mut Staging,
        key: &Hash,
    ) -> Result<(), BackendError> {
        let staged = self.sync_staging(staging)?;
        staged.stored = true;
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
    pub(super) fn drop_staging(&self, staging: Staging) -> Result<(), BackendError> {
        let staged = staging
            .into_state::<FileStaging>()
            .ok_or_else(foreign_staging)?;
        self.fs
            .remove_file(&staged.path)
            .found_at("removing", &staged.path)
            .map(drop)
    }
}

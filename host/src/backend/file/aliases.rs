//! The file backend's sha256 aliases: `DIR/aliases/ab/<sha256 hex>`, each
//! holding the hash it names in hex, written like every file (temporary
//! file, sync, rename, directory sync) through the [`Fs`] trait.

use super::{FileBackend, IoContext};
use crate::backend::BackendResult;
use crate::backend::fs::Fs;
use crate::backend::layout;
use crate::{Hash, Sha256Digest};

impl<F: Fs> FileBackend<F> {
    pub(super) fn write_alias_file(
        &self,
        digest: &Sha256Digest,
        target: &Hash,
    ) -> BackendResult<()> {
        // `aliases/` is made by the first alias (stores made before aliases
        // have none), synced into the root like every directory.
        self.ensure_dir(&self.root.join(layout::ALIASES))?;
        let path = self.root.join(layout::alias_key(digest));
        self.write_atomically(
            &path,
            &layout::encode_alias(target),
            &layout::name(&digest.as_key()),
        )
    }

    pub(super) fn read_alias_file(&self, digest: &Sha256Digest) -> BackendResult<Option<Hash>> {
        let path = self.root.join(layout::alias_key(digest));
        match self.fs.read(&path).found_at("reading", &path)? {
            Some(data) => layout::decode_alias(digest, &data).map(Some),
            None => Ok(None),
        }
    }

    pub(super) fn delete_alias_file(&self, digest: &Sha256Digest) -> BackendResult<bool> {
        self.remove(&self.root.join(layout::alias_key(digest)))
    }

    pub(super) fn list_alias_files(
        &self,
        after: Option<&Sha256Digest>,
        limit: u32,
    ) -> BackendResult<Vec<Sha256Digest>> {
        let base = self.root.join(layout::ALIASES);
        if self.fs.stat(&base).found_at("inspecting", &base)?.is_none() {
            return Ok(Vec::new());
        }
        let after = after.map(Sha256Digest::as_key);
        Ok(self
            .list_keys(layout::ALIASES, after.as_ref(), limit)?
            .into_iter()
            .map(|key| Sha256Digest::from_bytes(*key.as_bytes()))
            .collect())
    }
}

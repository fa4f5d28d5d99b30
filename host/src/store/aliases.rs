//! sha256 aliases: content that came from or went to an OCI registry also
//! answers to its `sha256:` digest.
//!
//! An alias is written only by the host, only after it hashed the content
//! itself ([`Sha256Upload`] on the way in, [`ArtifactStore::alias_sha256`]
//! or [`ArtifactStore::alias_sha256_of`] on the way out), and only once the artifact is stored. It is a fact
//! about content, so it never needs updating: it is in use while its
//! artifact exists. Resolving checks that the artifact still does, so an
//! alias is gone with its artifact at once (release, remove, gc), and gc
//! deletes aliases whose artifact is gone. A gc racing a pull of the same
//! content does not lose the alias the pull writes: gc checks the artifact
//! again after deleting its alias and, if it is back (stored again by the
//! pull meanwhile), writes the alias back. An alias is a fact about
//! content, so writing it back is right whoever wrote it first; a pull
//! that stores the artifact after that second check writes its alias after
//! the delete, too.

use super::pieces::STREAM_PIECE;
use super::{ArtifactStore, ArtifactType, Upload};
use crate::backend::{self, Side, SideKind};
use crate::core_component::Caller;
use crate::{Error, Hash, Sha256Digest, Sha256Hasher};

impl ArtifactStore {
    /// The artifact whose content has the sha256 digest `digest`, if an
    /// alias was recorded for it (it was pulled from or pushed to an OCI
    /// registry) and the artifact is still stored (for an app, one it holds
    /// or was granted).
    #[crate::traced(resolve_sha256, owner = self.id(), hash = digest)]
    pub fn resolve_sha256(&self, digest: &Sha256Digest) -> Result<Option<Hash>, Error> {
        let Some(target) = backend::read_alias(self.core.backend().as_ref(), digest)? else {
            return Ok(None);
        };
        Ok(self.contains(&target)?.then_some(target))
    }

    /// Reads the artifact `hash` (verified, a piece at a time), hashes it
    /// with sha256, records the alias and returns the digest.
    #[crate::traced(alias_sha256, owner = self.id(), hash = hash)]
    pub fn alias_sha256(&self, hash: &Hash) -> Result<Sha256Digest, Error> {
        let mut download = self.download(hash)?;
        let mut hasher = Sha256Hasher::default();
        while let Some(piece) = download.read(STREAM_PIECE as usize)? {
            hasher.update(&piece);
        }
        let digest = hasher.finish();
        backend::write_alias(self.core.backend().as_ref(), &digest, hash)?;
        Ok(digest)
    }

    /// [`alias_sha256`](Self::alias_sha256) for content already in hand
    /// (read with [`get`](Self::get), say): checked to be `hash`'s content
    /// (BLAKE3, natively) before its sha256 is recorded.
    pub fn alias_sha256_of(&self, hash: &Hash, content: &[u8]) -> Result<Sha256Digest, Error> {
        let actual = Hash::of(content);
        if actual != *hash {
            return Err(Error::Integrity {
                expected: *hash,
                actual,
            });
        }
        let digest = Sha256Digest::of(content);
        backend::write_alias(self.core.backend().as_ref(), &digest, hash)?;
        Ok(digest)
    }

    /// Starts storing content that must have the sha256 digest `expected`
    /// (see [`Sha256Upload`]).
    pub fn upload_sha256(
        &self,
        expected: Sha256Digest,
        artifact_type: ArtifactType,
    ) -> Sha256Upload {
        Sha256Upload {
            store: self.clone(),
            upload: self.upload(artifact_type),
            hasher: Sha256Hasher::default(),
            expected,
        }
    }

    /// Deletes aliases whose artifact is gone (store-wide, whichever view
    /// runs it); returns how many.
    pub(super) fn clean_aliases(&self) -> Result<u64, Error> {
        let b = self.core.backend().as_ref();
        let stored = |hash: &Hash| self.core.with(|i| i.contains(Caller::Host, hash));
        let mut removed = 0;
        let mut after: Option<Side> = None;
        loop {
            let page = b.list_side(SideKind::Alias, after.as_ref(), 1000)?;
            for listed in &page {
                let Side::Alias(digest) = &listed.key else {
                    continue;
                };
                let target = match backend::read_alias(b, digest) {
                    Ok(Some(target)) if stored(&target)? => continue,
                    Ok(Some(target)) => Some(target),
                    Ok(None) => continue,
                    // Damaged: it can never resolve again.
                    Err(_) => None,
                };
                if !b.delete_side(&listed.key)? {
                    continue;
                }
                // A pull may have stored the artifact again, and rewritten
                // the alias, between the check and the delete.
                if let Some(target) = target
                    && stored(&target)?
                {
                    backend::write_alias(b, digest, &target)?;
                    continue;
                }
                removed += 1;
            }
            match page.last() {
                Some(last) if page.len() == 1000 => after = Some(last.key),
                _ => return Ok(removed),
            }
        }
    }
}

/// An [`Upload`] of content whose sha256 digest is known in advance (an
/// OCI layer's): every byte written is hashed with sha256 on the way in,
/// and [`finish`](Self::finish) stores the content only if the digest
/// matches, recording the alias. Dropped, or finished with the wrong
/// content, nothing is stored. Holds at most one 4 MiB piece, as an
/// upload does, and stops at the store's size limit.
#[derive(Debug)]
pub struct Sha256Upload {
    store: ArtifactStore,
    upload: Upload,
    hasher: Sha256Hasher,
    expected: Sha256Digest,
}

impl Sha256Upload {
    /// How many bytes were written so far.
    pub fn written(&self) -> u64 {
        self.upload.written()
    }

    /// Appends `bytes` (see [`Upload::write`]).
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.upload.write(bytes)?;
        self.hasher.update(bytes);
        Ok(())
    }

    /// Whether what was written so far has the expected sha256 digest:
    /// [`Error::Sha256Mismatch`] naming both if not.
    pub fn check(&self) -> Result<(), Error> {
        let actual = self.hasher.clone().finish();
        if actual == self.expected {
            Ok(())
        } else {
            Err(Error::Sha256Mismatch {
                expected: self.expected,
                actual,
            })
        }
    }

    /// Stores what was written if its sha256 digest is the expected one,
    /// records the alias and returns the content's hash; else fails with
    /// [`Error::Sha256Mismatch`] naming both digests, and nothing is stored.
    pub fn finish(self) -> Result<Hash, Error> {
        // On a mismatch, dropping the upload discards what it staged.
        self.check()?;
        let hash = self.upload.finish()?;
        backend::write_alias(self.store.core.backend().as_ref(), &self.expected, &hash)?;
        Ok(hash)
    }
}

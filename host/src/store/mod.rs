//! [`ArtifactStore`]: the library's entry point. Every call goes through the
//! wasm core.

mod aliases;
mod builder;
mod large;
mod maintenance;
pub(crate) mod pieces;
mod ranges;
mod streaming;
mod streams;
mod types;
mod workers;

use std::fmt;
use std::path::PathBuf;

pub use self::aliases::Sha256Upload;
pub use self::builder::StoreBuilder;
use self::pieces::SizePlan;
pub use self::ranges::RANGE_LIMIT;
pub(crate) use self::ranges::offset_and_length;
pub use self::streams::{Download, Upload};
pub use self::types::{
    ArtifactType, DEFAULT_GC_GRACE, DEFAULT_MAX_ARTIFACT_BYTES, GcReport, MAX_ARTIFACT_BYTES_LIMIT,
    Metadata,
};
use crate::core_component::{Caller, CoreClient};
use crate::{Error, Hash};

/// A content-addressed artifact store whose rules run in a wasm core.
///
/// Cheap to clone (clones share the core instances and the backend) and
/// safe to use from many threads at once.
#[derive(Clone)]
pub struct ArtifactStore {
    pub(crate) core: CoreClient,
    max_artifact_bytes: u64,
    hash_workers: usize,
}

impl fmt::Debug for ArtifactStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArtifactStore")
            .field("max_artifact_bytes", &self.max_artifact_bytes)
            .finish_non_exhaustive()
    }
}

impl ArtifactStore {
    /// A builder, to set limits before opening.
    pub fn builder() -> StoreBuilder {
        StoreBuilder::default()
    }

    /// Opens an empty store in memory, with default limits.
    pub fn open_memory() -> Result<Self, Error> {
        StoreBuilder::default().open_memory()
    }

    /// Opens (creating if needed) a store in a directory, with default limits.
    pub fn open_dir(dir: impl Into<PathBuf>) -> Result<Self, Error> {
        StoreBuilder::default().open_dir(dir)
    }

    /// The largest artifact this store accepts.
    pub fn max_artifact_bytes(&self) -> u64 {
        self.max_artifact_bytes
    }

    /// Refuses content of `size` bytes over the store's limit before it is
    /// read or copied anywhere (the core refuses it too).
    pub(crate) fn check_size(&self, size: u64) -> Result<(), Error> {
        if size > self.max_artifact_bytes {
            return Err(Error::TooLarge {
                size,
                limit: self.max_artifact_bytes,
            });
        }
        Ok(())
    }

    /// The most entries one [`list_page`](Self::list_page) returns (the
    /// core's `list-limit`).
    pub fn list_limit(&self) -> u32 {
        self.core.list_limit()
    }

    /// One call into the core that does nothing (its `list-limit`), through
    /// the instance pool like every call: the floor under every operation,
    /// for the benchmark.
    #[doc(hidden)]
    pub fn empty_core_call(&self) -> Result<u32, Error> {
        self.core.with(|i| i.list_limit())
    }

    /// Stores `content` and returns its hash. Known content is not stored
    /// again; it gains one reference.
    #[crate::traced(put, owner = "@host", bytes = content.len())]
    pub fn put(&self, content: &[u8], artifact_type: ArtifactType) -> Result<Hash, Error> {
        let size = content.len() as u64;
        self.check_size(size)?;
        if SizePlan::of(size) == SizePlan::Whole {
            return self
                .core
                .with(|i| i.put(Caller::Host, content, artifact_type));
        }
        // Large content never crosses into the core whole: core instances
        // hash its pieces (several at once), the backend stages it, and the
        // core stores the staged blob under the hash with the put rules.
        // The staging (a write and a sync, for files) runs beside the hashing.
        self.put_via_staging(Caller::Host, artifact_type, |staging| {
            let (staged, hashed) = workers::join(
                || {
                    staging.append(content)?;
                    Ok(staging.finish()?)
                },
                || pieces::hash_grouped(&self.core, content, self.hash_workers),
            );
            staged?;
            let (hash, groups) = hashed?;
            Ok(streaming::Hashed { hash, size, groups })
        })
    }

    /// The content stored under `hash`, verified against it.
    #[crate::traced(get, owner = "@host", hash = hash)]
    pub fn get(&self, hash: &Hash) -> Result<Vec<u8>, Error> {
        if let Some((_, content)) = self.verified_in_parallel(hash)? {
            return Ok(content);
        }
        self.get_whole(hash)
    }

    /// Whether an artifact is stored under `hash`.
    #[crate::traced(contains, owner = "@host", hash = hash)]
    pub fn contains(&self, hash: &Hash) -> Result<bool, Error> {
        self.core.with(|i| i.contains(Caller::Host, hash))
    }

    /// Drops one of the host's own references and returns how many are
    /// left; at zero the artifact is deleted, unless one of the host's
    /// [names](Self::names) (or another owner) still holds it. With only
    /// names left, nothing is dropped and the answer is 0.
    #[crate::traced(release, owner = "@host", hash = hash)]
    pub fn release(&self, hash: &Hash) -> Result<u64, Error> {
        self.core.with(|i| i.release(Caller::Host, hash))
    }

    /// Deletes the artifact whatever its reference count.
    #[crate::traced(remove, owner = "@host", hash = hash)]
    pub fn remove(&self, hash: &Hash) -> Result<(), Error> {
        self.core.with(|i| i.remove(Caller::Host, hash))
    }

    /// The artifact's metadata.
    #[crate::traced(stat, owner = "@host", hash = hash)]
    pub fn stat(&self, hash: &Hash) -> Result<Metadata, Error> {
        self.core.with(|i| i.stat(Caller::Host, hash))
    }

    /// Re-reads the content and checks it against its hash and size.
    #[crate::traced(verify, owner = "@host", hash = hash)]
    pub fn verify(&self, hash: &Hash) -> Result<Metadata, Error> {
        if let Some((meta, _)) = self.verified_in_parallel(hash)? {
            return Ok(meta);
        }
        self.core.with(|i| i.verify(Caller::Host, hash))
    }

    /// How many artifacts are stored.
    #[crate::traced(count, owner = "@host")]
    pub fn count(&self) -> Result<u64, Error> {
        self.core.with(|i| i.count(Caller::Host))
    }

    /// The total size of all stored content, each artifact counted once.
    #[crate::traced(total_bytes, owner = "@host")]
    pub fn total_bytes(&self) -> Result<u64, Error> {
        self.core.with(|i| i.total_bytes(Caller::Host))
    }

    /// One page of artifacts in hash order: up to `limit` (at most
    /// [`list_limit`](Self::list_limit)) with hashes after `after`.
    #[crate::traced(list, owner = "@host")]
    pub fn list_page(&self, after: Option<&Hash>, limit: u32) -> Result<Vec<Metadata>, Error> {
        self.core.with(|i| i.list(Caller::Host, after, limit))
    }

    /// Every artifact, in hash order, read a page at a time.
    pub fn list(&self) -> impl Iterator<Item = Result<Metadata, Error>> + '_ {
        let limit = self.list_limit();
        let mut after: Option<Hash> = None;
        let mut page = std::vec::IntoIter::default();
        let mut done = false;
        std::iter::from_fn(move || {
            loop {
                if let Some(m) = page.next() {
                    return Some(Ok(m));
                }
                if done {
                    return None;
                }
                match self.list_page(after.as_ref(), limit) {
                    Ok(next) => {
                        done = next.len() < limit as usize;
                        after = next.last().map(|m: &Metadata| m.hash);
                        page = next.into_iter();
                    }
                    Err(e) => {
                        done = true;
                        return Some(Err(e));
                    }
                }
            }
        })
    }
}

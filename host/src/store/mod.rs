//! [`ArtifactStore`]: the library's entry point, as the host's view or an
//! app's ([`AppView`](crate::AppView)). Every call goes through the wasm core.

mod aliases;
mod builder;
mod large;
mod maintenance;
pub(crate) mod pieces;
mod ranges;
mod reader;
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
use self::reader::{Purpose, Reader};
pub use self::streams::{Download, Upload};
pub use self::types::{
    ArtifactType, DEFAULT_GC_GRACE, DEFAULT_MAX_ARTIFACT_BYTES, GcReport, MAX_ARTIFACT_BYTES_LIMIT,
    Metadata,
};
use crate::app_view::Owner;
use crate::core_component::{Caller, CoreClient};
use crate::{Error, Hash, QuotaKind};

/// A content-addressed artifact store whose rules run in a wasm core.
///
/// Opened, it is the host's view: every artifact. [`app`](Self::app) gives
/// the same store as one app sees it ([`AppView`](crate::AppView)), with
/// the same operations. Cheap to clone (clones share the core instances and
/// the backend) and safe to use from many threads at once.
#[derive(Clone)]
pub struct ArtifactStore {
    pub(crate) core: CoreClient,
    max_artifact_bytes: u64,
    hash_workers: usize,
    pub(crate) owner: Owner,
}

impl fmt::Debug for ArtifactStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArtifactStore")
            .field("owner", &self.id())
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

    /// The same store, as `owner` sees it.
    pub(crate) fn with_owner(&self, owner: Owner) -> Self {
        Self {
            core: self.core.clone(),
            max_artifact_bytes: self.max_artifact_bytes,
            hash_workers: self.hash_workers,
            owner,
        }
    }

    /// Refuses content of `size` bytes that the store or the app's quota
    /// would refuse, before it is read or copied anywhere (the core makes
    /// the same checks, and decides).
    pub(crate) fn check_size(&self, size: u64) -> Result<(), Error> {
        if size > self.max_artifact_bytes {
            return Err(Error::TooLarge {
                size,
                limit: self.max_artifact_bytes,
            });
        }
        let limit = self.quota().max_artifact_bytes;
        if size > limit {
            return Err(Error::QuotaExceeded {
                kind: QuotaKind::ArtifactBytes,
                limit,
                requested: size,
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
    /// again; it gains one reference. An app's put is charged to its quota.
    #[crate::traced(put, owner = self.id(), bytes = content.len())]
    pub fn put(&self, content: &[u8], artifact_type: ArtifactType) -> Result<Hash, Error> {
        let size = content.len() as u64;
        self.check_size(size)?;
        // An app's put is one call into the core as the app, whatever its size.
        if SizePlan::of(size) == SizePlan::Whole || !self.is_host() {
            return self
                .core
                .with(|i| i.put(self.caller(), content, artifact_type));
        }
        // Large content never crosses into the core whole: core instances
        // hash its pieces (several at once), the backend stages it, and the
        // core stores the staged blob under the hash with the put rules.
        // The staging (a write and a sync, for files) runs beside the hashing.
        self.put_via_staging(self.caller(), artifact_type, |staging| {
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

    /// The content stored under `hash`, verified against it: for an app,
    /// an artifact it references or was granted.
    #[crate::traced(get, owner = self.id(), hash = hash)]
    pub fn get(&self, hash: &Hash) -> Result<Vec<u8>, Error> {
        Reader::open(self, hash, Purpose::Get)?.content()
    }

    /// Whether an artifact is stored under `hash`: for an app, whether it
    /// references (or was granted) it.
    #[crate::traced(contains, owner = self.id(), hash = hash)]
    pub fn contains(&self, hash: &Hash) -> Result<bool, Error> {
        if self.granted(hash) {
            return self.core.with(|i| i.contains(Caller::Host, hash));
        }
        self.holds(hash)
    }

    /// Which of `hashes` are not stored (for an app: neither held nor
    /// granted), in the order given, each once: what a client must still
    /// upload, in one core call per `list_limit` hashes, one record read
    /// each (REAPI's FindMissingBlobs).
    #[crate::traced(missing, owner = self.id())]
    pub fn missing(&self, hashes: &[Hash]) -> Result<Vec<Hash>, Error> {
        let limit = self.list_limit().max(1) as usize;
        // An app's grants are asked as the host (it may see them while
        // they are stored), the rest as the app.
        let (granted, own): (Vec<Hash>, Vec<Hash>) = hashes.iter().partition(|h| self.granted(h));
        let mut absent = std::collections::HashSet::new();
        for batch in granted.chunks(limit) {
            absent.extend(self.core.with(|i| i.missing(Caller::Host, batch))?);
        }
        for batch in own.chunks(limit) {
            absent.extend(self.core.with(|i| i.missing(self.caller(), batch))?);
        }
        let mut named = std::collections::HashSet::new();
        Ok(hashes
            .iter()
            .filter(|h| absent.contains(*h) && named.insert(**h))
            .copied()
            .collect())
    }

    /// Drops one of the owner's own references and returns how many are
    /// left; at zero the artifact is deleted, unless one of the owner's
    /// [names](Self::names) (or another owner) still holds it. With only
    /// names left, nothing is dropped and the answer is 0.
    #[crate::traced(release, owner = self.id(), hash = hash)]
    pub fn release(&self, hash: &Hash) -> Result<u64, Error> {
        self.core.with(|i| i.release(self.caller(), hash))
    }

    /// The host's: deletes the artifact whatever its reference count. An
    /// app's: drops all of its references; the artifact stays while others
    /// hold any.
    #[crate::traced(remove, owner = self.id(), hash = hash)]
    pub fn remove(&self, hash: &Hash) -> Result<(), Error> {
        self.core.with(|i| i.remove(self.caller(), hash))
    }

    /// The artifact's metadata. An app's is of its own first put (type,
    /// time) and its own reference count; for a grant it holds none of, see
    /// [`grant`](Self::grant).
    #[crate::traced(stat, owner = self.id(), hash = hash)]
    pub fn stat(&self, hash: &Hash) -> Result<Metadata, Error> {
        let own = self.core.with(|i| i.stat(self.caller(), hash));
        if self.granted(hash) && own.is_err() {
            let meta = self.core.with(|i| i.stat(Caller::Host, hash))?;
            return self.as_granted(meta);
        }
        own
    }

    /// Re-reads the content and checks it against its hash and size: for
    /// an app, an artifact it references or was granted.
    #[crate::traced(verify, owner = self.id(), hash = hash)]
    pub fn verify(&self, hash: &Hash) -> Result<Metadata, Error> {
        let mut reader = Reader::open(self, hash, Purpose::Verify)?;
        reader.content()?;
        Ok(reader.metadata().clone())
    }

    /// How many artifacts are stored (an app's: that it references).
    #[crate::traced(count, owner = self.id())]
    pub fn count(&self) -> Result<u64, Error> {
        self.core.with(|i| i.count(self.caller()))
    }

    /// The total size of all stored content, each artifact counted once
    /// (an app's: of the artifacts it references).
    #[crate::traced(total_bytes, owner = self.id())]
    pub fn total_bytes(&self) -> Result<u64, Error> {
        self.core.with(|i| i.total_bytes(self.caller()))
    }

    /// One page of artifacts (an app's: that it references) in hash order:
    /// up to `limit` (at most [`list_limit`](Self::list_limit)) with hashes
    /// after `after`.
    #[crate::traced(list, owner = self.id())]
    pub fn list_page(&self, after: Option<&Hash>, limit: u32) -> Result<Vec<Metadata>, Error> {
        self.core.with(|i| i.list(self.caller(), after, limit))
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

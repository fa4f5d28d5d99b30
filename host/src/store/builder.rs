//! [`StoreBuilder`]: limits and choices made before a store is opened.

use std::path::PathBuf;
use std::sync::Arc;

use super::{ArtifactStore, DEFAULT_MAX_ARTIFACT_BYTES, MAX_ARTIFACT_BYTES_LIMIT};
use crate::Error;
use crate::backend::{Backend, file::FileBackend, memory::MemoryBackend};
use crate::compile_cache::CompileCache;
use crate::core_component::{CoreClient, CoreSettings};

/// Configures and opens an [`ArtifactStore`].
#[derive(Debug)]
pub struct StoreBuilder {
    max_artifact_bytes: u64,
    core_cache: Option<CompileCache>,
    hash_workers: usize,
    private_dedup: bool,
}

impl Default for StoreBuilder {
    fn default() -> Self {
        Self {
            max_artifact_bytes: DEFAULT_MAX_ARTIFACT_BYTES,
            core_cache: None,
            hash_workers: super::pieces::default_workers(),
            private_dedup: false,
        }
    }
}

impl StoreBuilder {
    /// Sets the largest artifact the store accepts (at most
    /// [`MAX_ARTIFACT_BYTES_LIMIT`]). The core's memory is capped to match.
    pub fn max_artifact_bytes(mut self, bytes: u64) -> Self {
        self.max_artifact_bytes = bytes.min(MAX_ARTIFACT_BYTES_LIMIT);
        self
    }

    /// How many core instances verify one large artifact at once (each on
    /// its own thread; BLAKE3's tree makes the result exact). The default is
    /// the number of cores, at most 4; 1 verifies every artifact in one
    /// instance; at most 16. Backends that cannot tell a blob's size cheaply (S3) always
    /// use one.
    pub fn hash_workers(mut self, workers: usize) -> Self {
        self.hash_workers = workers.clamp(1, 16);
        self
    }

    /// Chooses private dedup (default: shared). Shared dedup stores content
    /// once, and a put of content some owner already holds writes no blob,
    /// so it is measurably faster; a last release of content others still
    /// hold deletes nothing, so it is faster too: an app can time either to
    /// learn that someone else holds that content. Private dedup still
    /// stores the content once, but an app's first put of content others
    /// hold writes the blob again, and a last release does the same work
    /// (one record swap) whether others hold the content or not: the last
    /// owner's release makes the artifact invisible at once and leaves its
    /// blob to be deleted when the app's run ends
    /// ([`ArtifactStore::settle`]) or by the next
    /// [`gc`](ArtifactStore::gc); until then its bytes count against the
    /// app's quota. Every host sharing a store should make the same choice.
    pub fn private_dedup(mut self, private: bool) -> Self {
        self.private_dedup = private;
        self
    }

    /// Loads the compiled core from `cache` (sealed with its key; see
    /// [`CompileCache`]) instead of compiling it, and stores it there if it is
    /// missing. The core is compiled once per process either way; this makes
    /// the first open in a new process take about a millisecond.
    pub fn core_cache(mut self, cache: CompileCache) -> Self {
        self.core_cache = Some(cache);
        self
    }

    /// Opens a store over any backend.
    pub fn open(self, backend: impl Backend) -> Result<ArtifactStore, Error> {
        self.open_arc(Arc::new(backend))
    }

    /// Opens a store over a shared backend.
    pub fn open_arc(self, backend: Arc<dyn Backend>) -> Result<ArtifactStore, Error> {
        // One artifact in, one copy out, and room for the core's own heap.
        let memory_limit = self
            .max_artifact_bytes
            .saturating_mul(2)
            .saturating_add(64 << 20);
        let memory_limit = usize::try_from(memory_limit.min(4 << 30)).unwrap_or(usize::MAX);
        Ok(ArtifactStore {
            core: CoreClient::new(
                backend,
                CoreSettings {
                    memory_limit,
                    max_artifact_bytes: usize::try_from(self.max_artifact_bytes)
                        .unwrap_or(usize::MAX),
                    private_dedup: self.private_dedup,
                },
                self.core_cache.as_ref(),
            )?,
            max_artifact_bytes: self.max_artifact_bytes,
            hash_workers: self.hash_workers,
            owner: crate::app_view::Owner::Host,
        })
    }

    /// Opens an empty store in memory.
    pub fn open_memory(self) -> Result<ArtifactStore, Error> {
        self.open(MemoryBackend::new())
    }

    /// Opens (creating if needed) a store in a directory.
    pub fn open_dir(self, dir: impl Into<PathBuf>) -> Result<ArtifactStore, Error> {
        let backend = FileBackend::open(dir).map_err(Error::Open)?;
        self.open(backend)
    }

    /// Opens a store in an S3 bucket (see [`S3Backend`](crate::S3Backend)),
    /// which any number of hosts may share.
    #[cfg(feature = "s3")]
    pub fn open_s3(self, config: &crate::S3Config) -> Result<ArtifactStore, Error> {
        let backend = crate::S3Backend::open(config).map_err(Error::Open)?;
        self.open(backend)
    }

    /// Migrates the store in directory `dir` to the current layout (see
    /// [`ArtifactStore::migrate`]); returns how many artifacts it rewrote.
    pub fn migrate_dir(self, dir: impl Into<PathBuf>) -> Result<u64, Error> {
        let backend =
            FileBackend::open_for_migration(dir, crate::backend::fs::StdFs).map_err(Error::Open)?;
        self.open(backend)?.migrate()
    }

    /// Migrates the store in an S3 bucket to the current layout (see
    /// [`ArtifactStore::migrate`]); returns how many artifacts it rewrote.
    #[cfg(feature = "s3")]
    pub fn migrate_s3(self, config: &crate::S3Config) -> Result<u64, Error> {
        let backend = crate::S3Backend::open_for_migration(config).map_err(Error::Open)?;
        self.open(backend)?.migrate()
    }
}

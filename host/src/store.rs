//! [`ArtifactStore`]: the library's entry point. Every call goes through the
//! wasm core.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use crate::backend::{Backend, Staging, file::FileBackend, memory::MemoryBackend};
use crate::compile_cache::CompileCache;
use crate::core::{Pool, exports};
use crate::{BackendError, Error, Hash};

/// The largest artifact a store accepts unless configured otherwise: 256 MiB.
pub const DEFAULT_MAX_ARTIFACT_BYTES: u64 = 256 << 20;
/// The largest limit [`StoreBuilder::max_artifact_bytes`] accepts: content
/// crosses into the core's 32-bit linear memory in one piece.
pub const MAX_ARTIFACT_BYTES_LIMIT: u64 = 1 << 30;

/// What an artifact holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ArtifactType {
    /// A WebAssembly module or component.
    WasmModule,
    /// An app manifest.
    AppManifest,
    /// A configuration bundle.
    ConfigBundle,
    /// Anything else.
    Generic,
}

impl ArtifactType {
    /// Every type, in WIT order.
    pub const ALL: [Self; 4] = [
        Self::WasmModule,
        Self::AppManifest,
        Self::ConfigBundle,
        Self::Generic,
    ];

    /// The WIT name: `wasm-module`, `app-manifest`, `config-bundle`, `generic`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::WasmModule => "wasm-module",
            Self::AppManifest => "app-manifest",
            Self::ConfigBundle => "config-bundle",
            Self::Generic => "generic",
        }
    }

    pub(crate) fn to_wit(self) -> exports::ArtifactType {
        match self {
            Self::WasmModule => exports::ArtifactType::WasmModule,
            Self::AppManifest => exports::ArtifactType::AppManifest,
            Self::ConfigBundle => exports::ArtifactType::ConfigBundle,
            Self::Generic => exports::ArtifactType::Generic,
        }
    }

    pub(crate) fn from_wit(t: exports::ArtifactType) -> Self {
        match t {
            exports::ArtifactType::WasmModule => Self::WasmModule,
            exports::ArtifactType::AppManifest => Self::AppManifest,
            exports::ArtifactType::ConfigBundle => Self::ConfigBundle,
            exports::ArtifactType::Generic => Self::Generic,
        }
    }
}

impl fmt::Display for ArtifactType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ArtifactType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| format!("unknown artifact type {s:?} (expected wasm-module, app-manifest, config-bundle or generic)"))
    }
}

/// What the store knows about one artifact.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Metadata {
    /// The content's BLAKE3 hash: its address.
    pub hash: Hash,
    /// The content's length in bytes.
    pub size: u64,
    /// The type given by the first put.
    #[serde(rename = "type")]
    pub artifact_type: ArtifactType,
    /// When the content was first stored, in milliseconds since the Unix epoch.
    pub stored_at: u64,
    /// Puts not yet released.
    pub reference_count: u64,
}

impl Metadata {
    pub(crate) fn from_wit(m: exports::Metadata) -> Result<Self, Error> {
        Ok(Self {
            hash: core_hash(&m.hash)?,
            size: m.size,
            artifact_type: ArtifactType::from_wit(m.artifact_type),
            stored_at: m.stored_at,
            reference_count: m.reference_count,
        })
    }
}

/// A hash the core returned. The core only returns valid hashes, so a bad
/// one is a fault in the core, not in the caller's input.
pub(crate) fn core_hash(hex: &str) -> Result<Hash, Error> {
    Hash::from_hex(hex).map_err(|e| Error::Core(format!("the core returned {e}")))
}

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
            hash_workers: crate::tree::default_workers(),
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
    /// blob to the next [`gc`](ArtifactStore::gc). Every host sharing a
    /// store should make the same choice.
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
            pool: Arc::new(Pool::new(
                backend,
                memory_limit,
                usize::try_from(self.max_artifact_bytes).unwrap_or(usize::MAX),
                self.core_cache.as_ref(),
                self.private_dedup,
            )?),
            max_artifact_bytes: self.max_artifact_bytes,
            hash_workers: self.hash_workers,
        })
    }

    /// Opens an empty store in memory.
    pub fn open_memory(self) -> Result<ArtifactStore, Error> {
        self.open(MemoryBackend::new())
    }

    /// Opens (creating if needed) a store in a directory.
    pub fn open_dir(self, dir: impl Into<PathBuf>) -> Result<ArtifactStore, Error> {
        let backend = FileBackend::open(dir).map_err(|e| Error::Open(e.to_string()))?;
        self.open(backend)
    }

    /// Opens a store in an S3 bucket (see [`S3Backend`](crate::S3Backend)),
    /// which any number of hosts may share.
    #[cfg(feature = "s3")]
    pub fn open_s3(self, config: &crate::S3Config) -> Result<ArtifactStore, Error> {
        let backend = crate::S3Backend::open(config).map_err(|e| Error::Open(e.to_string()))?;
        self.open(backend)
    }

    /// Migrates the store in directory `dir` to the current layout (see
    /// [`ArtifactStore::migrate`]); returns how many artifacts it rewrote.
    pub fn migrate_dir(self, dir: impl Into<PathBuf>) -> Result<u64, Error> {
        let backend = FileBackend::open_for_migration(dir, crate::backend::fs::StdFs)
            .map_err(|e| Error::Open(e.to_string()))?;
        self.open(backend)?.migrate()
    }

    /// Migrates the store in an S3 bucket to the current layout (see
    /// [`ArtifactStore::migrate`]); returns how many artifacts it rewrote.
    #[cfg(feature = "s3")]
    pub fn migrate_s3(self, config: &crate::S3Config) -> Result<u64, Error> {
        let backend =
            crate::S3Backend::open_for_migration(config).map_err(|e| Error::Open(e.to_string()))?;
        self.open(backend)?.migrate()
    }
}

/// Up to `len` bytes from `reader`: fewer only at its end.
fn read_piece(reader: &mut dyn std::io::Read, len: u64) -> Result<Vec<u8>, Error> {
    use std::io::Read;
    let mut out = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    reader
        .take(len)
        .read_to_end(&mut out)
        .map_err(|e| Error::Input(e.to_string()))?;
    Ok(out)
}

/// [`ArtifactStore::get_to`] streams artifacts larger than this.
const STREAM_ABOVE_BYTES: u64 = 16 << 20;

/// A content-addressed artifact store whose rules run in a wasm core.
///
/// Cheap to clone (clones share the core instances and the backend) and
/// safe to use from many threads at once.
#[derive(Clone)]
pub struct ArtifactStore {
    pub(crate) pool: Arc<Pool>,
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

/// Calls an export of the core's `store` interface on a pooled instance.
macro_rules! call {
    ($self:ident, $method:ident $(, $arg:expr)*) => {
        $self.pool.with(|i| i.core.artifacts_store_store().$method(&mut i.store $(, $arg)*))?
    };
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

    /// Stores `content` and returns its hash. Known content is not stored
    /// again; it gains one reference.
    pub fn put(&self, content: &[u8], artifact_type: ArtifactType) -> Result<Hash, Error> {
        let size = content.len() as u64;
        if size > self.max_artifact_bytes {
            return Err(Error::TooLarge {
                size,
                limit: self.max_artifact_bytes,
            });
        }
        if size < crate::tree::PARALLEL_HASH_BYTES {
            return core_hash(&call!(self, call_put, content, artifact_type.to_wit())?);
        }
        // Large content never crosses into the core whole: core instances
        // hash its pieces (several at once), the backend stages it, and the
        // core stores the staged blob under the hash with the put rules.
        // The staging (a write and a sync, for files) runs beside the hashing.
        self.put_via_staging(artifact_type, |backend, staging| {
            std::thread::scope(|s| {
                let staged = s.spawn(|| {
                    backend.append_staged(staging, content)?;
                    backend.finish_staged(staging)
                });
                let hash = crate::tree::hash(&self.pool, content, self.hash_workers);
                let staged = staged
                    .join()
                    .unwrap_or_else(|_| Err(BackendError::Io("a staging thread panicked".into())));
                staged.map_err(|e| Error::Backend(e.to_string()))?;
                Ok((hash?, size))
            })
        })
    }

    /// Stores everything `reader` yields, like [`put`](Self::put), holding
    /// only a few MiB at a time however large it is: content longer than
    /// 4 MiB is read in 4 MiB pieces, hashed by core instances in parallel
    /// and appended to a staging area of the backend (a temporary file in
    /// the file backend; other backends may gather it in memory), which the
    /// core then stores under the hash with the usual rules. Nothing is
    /// stored if the reader fails or yields more than the store's limit.
    pub fn put_from(
        &self,
        reader: &mut dyn std::io::Read,
        artifact_type: ArtifactType,
    ) -> Result<Hash, Error> {
        let piece = crate::tree::STREAM_PIECE;
        let first = read_piece(reader, piece)?;
        if (first.len() as u64) < piece {
            return self.put(&first, artifact_type);
        }
        let second = read_piece(reader, piece)?;
        if second.is_empty() {
            return self.put(&first, artifact_type);
        }
        let limit = self.max_artifact_bytes;
        let mut read = [first, second].into_iter();
        let mut total = 0u64;
        let mut over = false;
        let next = || {
            if over {
                return Ok(None);
            }
            let bytes = match read.next() {
                Some(bytes) => bytes,
                None => read_piece(reader, piece)?,
            };
            total += bytes.len() as u64;
            if total > limit {
                return Err(Error::TooLarge { size: total, limit });
            }
            over = (bytes.len() as u64) < piece;
            Ok((!bytes.is_empty()).then_some(bytes))
        };
        self.put_via_staging(artifact_type, |backend, staging| {
            crate::tree::hash_pieces(&self.pool, self.hash_workers, next, |b| {
                backend
                    .append_staged(staging, b)
                    .map_err(|e| Error::Backend(e.to_string()))
            })
        })
    }

    /// Starts a staging area in the backend, fills it with `fill` (which
    /// returns the content's hash and size), has the core store it under
    /// that hash with the put rules (`tree.put-staged`), and discards it.
    fn put_via_staging(
        &self,
        artifact_type: ArtifactType,
        fill: impl FnOnce(&dyn Backend, &mut Staging) -> Result<(String, u64), Error>,
    ) -> Result<Hash, Error> {
        let backend = &*self.pool.backend;
        let mut staging = backend.stage().map_err(|e| Error::Backend(e.to_string()))?;
        let result = fill(backend, &mut staging)
            .and_then(|(hash, size)| self.store_staged(&mut staging, size, &hash, artifact_type));
        // Once the put is decided, a staging area left behind is only
        // clutter (gc removes it), not a reason to fail the put.
        let _ = backend.discard_staged(staging);
        result
    }

    /// The core's `put-staged` with `staging` lent to the instance for the
    /// call; it comes back even if the call traps (the pool then drops the
    /// instance).
    fn store_staged(
        &self,
        staging: &mut Staging,
        size: u64,
        hash: &str,
        artifact_type: ArtifactType,
    ) -> Result<Hash, Error> {
        let key = Hash::from_hex(hash).map_err(|e| Error::Core(e.to_string()))?;
        let hash = self.pool.with(|i| {
            let placeholder = Staging::new(());
            i.store.data_mut().staged = Some((std::mem::replace(staging, placeholder), key));
            let result = i.core.artifacts_store_tree().call_put_staged(
                &mut i.store,
                size,
                artifact_type.to_wit(),
                &hash.to_owned(),
            );
            if let Some((staged, _)) = i.store.data_mut().staged.take() {
                *staging = staged;
            }
            result
        })??;
        core_hash(&hash)
    }

    /// The content stored under `hash`, verified against it.
    pub fn get(&self, hash: impl AsRef<str>) -> Result<Vec<u8>, Error> {
        let hash = hash.as_ref();
        if let Some((_, content)) = self.verified_in_parallel(hash)? {
            return Ok(content);
        }
        Ok(call!(self, call_get, &hash.to_owned())?)
    }

    /// Writes the artifact's content to `out` and returns its metadata,
    /// holding only a few MiB at a time however large it is: pieces are read
    /// from the backend, hashed by core instances in parallel and written in
    /// order. The hash is complete only after the last piece, so on an error
    /// `out` may already hold part (or all) of the content: discard it. (The
    /// CLI's `get -o FILE` writes to a temporary file and renames it only once
    /// verified.) Artifacts up to 16 MiB are verified whole before anything is
    /// written.
    pub fn get_to(
        &self,
        hash: impl AsRef<str>,
        out: &mut dyn std::io::Write,
    ) -> Result<Metadata, Error> {
        let hash = hash.as_ref();
        let meta = self.stat(hash)?;
        let output = |e: std::io::Error| Error::Output(e.to_string());
        if meta.size <= STREAM_ABOVE_BYTES {
            let content = self.get(hash)?;
            out.write_all(&content).map_err(output)?;
            return Ok(meta);
        }
        let key = Hash::from_hex(hash).map_err(|e| Error::InvalidHash(e.to_string()))?;
        let backend = &self.pool.backend;
        let actual = crate::tree::hash_streaming(
            &self.pool,
            meta.size,
            self.hash_workers,
            |offset, len| {
                backend
                    .read_blob_range(&key, offset, len)
                    .map_err(|e| Error::Backend(e.to_string()))
            },
            |bytes| out.write_all(bytes).map_err(output),
        )?;
        match actual {
            Some(actual) if actual == hash => Ok(meta),
            Some(actual) => Err(Error::Integrity {
                expected: hash.to_owned(),
                actual,
            }),
            // Missing or cut short: the core says exactly what is wrong. If it
            // finds nothing wrong now, the content changed under the read
            // (removed and put again, say): what was written is not whole.
            None => Err(match self.verify(hash) {
                Err(e) => e,
                Ok(_) => Error::Contended(hash.to_owned()),
            }),
        }
    }

    /// A large artifact (with its metadata) verified by several core
    /// instances at once. The core
    /// still decides: its `stat` says whether the artifact may be read, its
    /// `tree` functions compute the hash. Anything but a clean match (no blob,
    /// wrong size, wrong hash, a read error) returns `None`, and the core's own
    /// `get` then reads again and reports exactly what is wrong.
    pub(crate) fn verified_in_parallel(
        &self,
        hash: &str,
    ) -> Result<Option<(Metadata, Vec<u8>)>, Error> {
        if self.hash_workers < 2 {
            return Ok(None);
        }
        let Ok(key) = Hash::from_hex(hash) else {
            return Ok(None);
        };
        if self
            .pool
            .backend
            .size_hint(&key)
            .is_none_or(|size| size < crate::tree::PARALLEL_HASH_BYTES)
        {
            return Ok(None);
        }
        let meta = self.stat(hash)?;
        let Ok(Some(content)) = self.pool.backend.read_blob(&key) else {
            return Ok(None);
        };
        // The hint only routed us here: the record's size decides.
        if content.len() as u64 != meta.size || meta.size < crate::tree::PARALLEL_HASH_BYTES {
            return Ok(None);
        }
        let actual = crate::tree::hash(&self.pool, &content, self.hash_workers)?;
        Ok((actual == hash).then_some((meta, content)))
    }

    /// Whether an artifact is stored under `hash`.
    pub fn contains(&self, hash: impl AsRef<str>) -> Result<bool, Error> {
        Ok(call!(self, call_contains, &hash.as_ref().to_owned())?)
    }

    /// Drops one reference and returns how many are left; at zero the
    /// artifact is deleted.
    pub fn release(&self, hash: impl AsRef<str>) -> Result<u64, Error> {
        Ok(call!(self, call_release, &hash.as_ref().to_owned())?)
    }

    /// Deletes the artifact whatever its reference count.
    pub fn remove(&self, hash: impl AsRef<str>) -> Result<(), Error> {
        Ok(call!(self, call_remove, &hash.as_ref().to_owned())?)
    }

    /// The artifact's metadata.
    pub fn stat(&self, hash: impl AsRef<str>) -> Result<Metadata, Error> {
        Metadata::from_wit(call!(self, call_stat, &hash.as_ref().to_owned())?)
    }

    /// Re-reads the content and checks it against its hash and size.
    pub fn verify(&self, hash: impl AsRef<str>) -> Result<Metadata, Error> {
        let hash = hash.as_ref();
        if let Some((meta, _)) = self.verified_in_parallel(hash)? {
            return Ok(meta);
        }
        Metadata::from_wit(call!(self, call_verify, &hash.to_owned())?)
    }

    /// How many artifacts are stored.
    pub fn count(&self) -> Result<u64, Error> {
        Ok(call!(self, call_count)?)
    }

    /// The total size of all stored content, each artifact counted once.
    pub fn total_bytes(&self) -> Result<u64, Error> {
        Ok(call!(self, call_total_bytes)?)
    }

    /// One page of artifacts in hash order: up to `limit` (at most 1000)
    /// with hashes after `after`.
    pub fn list_page(&self, after: Option<&str>, limit: u32) -> Result<Vec<Metadata>, Error> {
        call!(self, call_list, after.map(str::to_owned).as_ref(), limit)?
            .into_iter()
            .map(Metadata::from_wit)
            .collect()
    }

    /// Every artifact, in hash order, read a page at a time.
    pub fn list(&self) -> impl Iterator<Item = Result<Metadata, Error>> + '_ {
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
                match self.list_page(after.as_ref().map(Hash::as_str), LIST_PAGE) {
                    Ok(next) => {
                        done = next.len() < LIST_PAGE as usize;
                        after = next.last().map(|m: &Metadata| m.hash.clone());
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

/// What [`ArtifactStore::gc`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct GcReport {
    /// Blobs no record referenced, older than the grace period, deleted.
    pub orphans_removed: u64,
    /// Their total size in bytes.
    pub bytes_freed: u64,
    /// Unreferenced blobs kept because they are younger than the grace period.
    pub orphans_in_grace: u64,
    /// Half-done deletions (of a crashed or interrupted process) finished.
    pub deletions_finished: u64,
    /// Temporary files of interrupted writes, older than the grace period, removed.
    pub temporary_files_removed: u64,
}

/// The grace period [`ArtifactStore::gc`] callers should use unless they
/// know better: longer than any put takes between writing its blob and
/// creating its record.
pub const DEFAULT_GC_GRACE: std::time::Duration = std::time::Duration::from_secs(3600);

impl ArtifactStore {
    /// Deletes blobs that no artifact references and that are older than
    /// `grace`, finishes abandoned deletions, and removes temporary files
    /// older than `grace`. Never touches a referenced blob; a concurrent put
    /// of the same content is safe as long as it takes less than `grace`.
    pub fn gc(&self, grace: std::time::Duration) -> Result<GcReport, Error> {
        let grace_ms = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX);
        let r = self.pool.with(|i| {
            i.core
                .artifacts_store_maintenance()
                .call_gc(&mut i.store, grace_ms)
        })??;
        let temporary_files_removed = self
            .pool
            .backend
            .clean_temporary(grace_ms)
            .map_err(|e| Error::Backend(e.to_string()))?;
        Ok(GcReport {
            orphans_removed: r.orphans_removed,
            bytes_freed: r.bytes_freed,
            orphans_in_grace: r.orphans_in_grace,
            deletions_finished: r.deletions_finished,
            temporary_files_removed,
        })
    }

    /// Brings a store of format 1 (artifact records listing every owner) to
    /// format 2 (owner counts, per-owner index entries) in place, then marks
    /// it as format 2 (the backend's [`finish_migration`]). Idempotent and
    /// safe to interrupt: run it again. Run it with nothing else using the
    /// store. Returns how many artifact records it rewrote.
    ///
    /// [`finish_migration`]: crate::backend::Backend::finish_migration
    pub fn migrate(&self) -> Result<u64, Error> {
        let migrated = self.pool.with(|i| {
            i.core
                .artifacts_store_maintenance()
                .call_migrate(&mut i.store)
        })??;
        self.pool
            .backend
            .finish_migration()
            .map_err(|e| Error::Backend(e.to_string()))?;
        Ok(migrated)
    }

    /// Moves the content of `hash` out of the store (the file backend keeps
    /// it in `DIR/quarantine/`); its record stays, so `get` reports the
    /// content missing until a put of the right content stores it again.
    /// Returns whether there was content to move.
    pub fn quarantine(&self, hash: impl AsRef<str>) -> Result<bool, Error> {
        let hash = Hash::from_hex(hash.as_ref()).map_err(|e| Error::InvalidHash(e.to_string()))?;
        self.pool
            .backend
            .quarantine_blob(&hash)
            .map_err(|e| Error::Backend(e.to_string()))
    }
}

/// The page size [`ArtifactStore::list`] asks for.
const LIST_PAGE: u32 = 1000;

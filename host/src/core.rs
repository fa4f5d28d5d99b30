//! The wasm core: compiling it once per process, instantiating it over a
//! backend, and a pool of instances so many threads can call at once.

use std::sync::{Arc, Mutex, OnceLock};

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, ResourceLimiter};

use crate::app_limits::note_backend_work;
use crate::backend::{self, Backend, Staging};
use crate::compile_cache::CompileCache;
use crate::{BackendError, Error, Hash};

/// The core component, built from `guest/` by `scripts/build-guests.sh`.
pub const CORE_COMPONENT: &[u8] = include_bytes!("../../guest/artifacts_core.wasm");

mod generated {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "core",
        imports: { default: trappable },
        trappable_error_type: {
            "artifacts:store/backend.backend-error" => crate::BackendError,
        },
    });
}

pub(crate) use generated::Core;
use generated::artifacts::store::{backend as wit, types as wit_types};
pub(crate) use generated::exports::artifacts::store::owners as owner_exports;
pub(crate) use generated::exports::artifacts::store::store as exports;

/// The owner id under which the host holds its own references (the core's).
pub(crate) const HOST_OWNER: &str = "@host";

/// Everything an instance of the core sees of its host.
pub(crate) struct CoreState {
    backend: Arc<dyn Backend>,
    /// What `write-staged-blob` stores, and the hash the host computed for
    /// it: set by the host around a `put-staged` call.
    pub(crate) staged: Option<(Staging, Hash)>,
    /// The store's dedup is private (see `StoreBuilder::private_dedup`).
    private_dedup: bool,
    memory_limit: usize,
    memory_used: usize,
}

impl ResourceLimiter for CoreState {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_limit {
            return Ok(false);
        }
        self.memory_used = desired;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 10_000)
    }
}

fn key(text: &str) -> Result<Hash, BackendError> {
    Hash::from_hex(text).map_err(|e| BackendError::InvalidKey(e.to_string()))
}

impl wit_types::Host for CoreState {}

impl wit::Host for CoreState {
    fn write_blob(&mut self, key_: String, data: Vec<u8>) -> Result<(), BackendError> {
        note_backend_work(0, data.len() as u64);
        self.backend.write_blob(&key(&key_)?, &data)
    }

    fn write_staged_blob(&mut self, key_: String) -> Result<(), BackendError> {
        let key = key(&key_)?;
        let (staging, hash) = self
            .staged
            .as_mut()
            .ok_or_else(|| BackendError::Io("the host staged no blob for this call".into()))?;
        if key != *hash {
            return Err(BackendError::InvalidKey(format!(
                "the staged content hashes to {hash}, not {key}"
            )));
        }
        self.backend.write_staged(staging, &key)
    }

    fn read_blob(&mut self, key_: String) -> Result<Option<Vec<u8>>, BackendError> {
        let blob = self.backend.read_blob(&key(&key_)?)?;
        note_backend_work(0, blob.as_ref().map_or(0, |b| b.len() as u64));
        Ok(blob)
    }

    fn blob_size(&mut self, key_: String) -> Result<Option<u64>, BackendError> {
        self.backend.blob_size(&key(&key_)?)
    }

    fn delete_blob(
        &mut self,
        key_: String,
        record_version: Option<u64>,
    ) -> Result<bool, BackendError> {
        self.backend.delete_blob(&key(&key_)?, record_version)
    }

    fn list_blobs(
        &mut self,
        after: Option<String>,
        limit: u32,
    ) -> Result<Vec<wit::BlobInfo>, BackendError> {
        let after = after.as_deref().map(key).transpose()?;
        Ok(self
            .backend
            .list_blobs(after.as_ref(), limit)?
            .into_iter()
            .map(|b| wit::BlobInfo {
                key: b.key.as_str().to_owned(),
                size: b.size,
                modified: b.modified,
            })
            .collect())
    }

    fn read_record(&mut self, key_: String) -> Result<Option<wit::VersionedRecord>, BackendError> {
        note_backend_work(1, 0);
        Ok(self.backend.read_record(&key(&key_)?)?.map(versioned))
    }

    fn swap_record(
        &mut self,
        key_: String,
        expected: Option<u64>,
        new: Option<Vec<u8>>,
    ) -> Result<wit::SwapOutcome, BackendError> {
        note_backend_work(1, 0);
        Ok(swap_outcome(self.backend.swap_record(
            &key(&key_)?,
            expected,
            new.as_deref(),
        )?))
    }

    fn list_records(
        &mut self,
        after: Option<String>,
        limit: u32,
    ) -> Result<Vec<wit::KeyedRecord>, BackendError> {
        let after = after.as_deref().map(key).transpose()?;
        Ok(keyed(self.backend.list_records(after.as_ref(), limit)?))
    }

    fn read_entry(
        &mut self,
        owner: String,
        key_: String,
    ) -> Result<Option<wit::VersionedRecord>, BackendError> {
        note_backend_work(1, 0);
        Ok(self
            .backend
            .read_entry(&key(&owner)?, &key(&key_)?)?
            .map(versioned))
    }

    fn swap_entry(
        &mut self,
        owner: String,
        key_: String,
        expected: Option<u64>,
        new: Option<Vec<u8>>,
    ) -> Result<wit::SwapOutcome, BackendError> {
        note_backend_work(1, 0);
        Ok(swap_outcome(self.backend.swap_entry(
            &key(&owner)?,
            &key(&key_)?,
            expected,
            new.as_deref(),
        )?))
    }

    fn list_entries(
        &mut self,
        owner: String,
        after: Option<String>,
        limit: u32,
    ) -> Result<Vec<wit::KeyedRecord>, BackendError> {
        let after = after.as_deref().map(key).transpose()?;
        Ok(keyed(self.backend.list_entries(
            &key(&owner)?,
            after.as_ref(),
            limit,
        )?))
    }

    fn list_owners(
        &mut self,
        after: Option<String>,
        limit: u32,
    ) -> Result<Vec<String>, BackendError> {
        let after = after.as_deref().map(key).transpose()?;
        Ok(self
            .backend
            .list_owners(after.as_ref(), limit)?
            .into_iter()
            .map(|k| k.as_str().to_owned())
            .collect())
    }

    fn private_dedup(&mut self) -> wasmtime::Result<bool> {
        Ok(self.private_dedup)
    }

    fn now(&mut self) -> wasmtime::Result<u64> {
        Ok(self.backend.now())
    }

    fn convert_backend_error(&mut self, err: BackendError) -> wasmtime::Result<wit::BackendError> {
        Ok(match err {
            BackendError::Io(m) => wit::BackendError::Io(m),
            BackendError::Full(m) => wit::BackendError::Full(m),
            BackendError::InvalidKey(m) => wit::BackendError::InvalidKey(m),
        })
    }
}

/// The engine and the compiled, linked core, made once per process.
struct Compiled {
    engine: Engine,
    component: Component,
    key: Hash,
    pre: generated::CorePre<CoreState>,
}

static COMPILED: OnceLock<Result<Compiled, String>> = OnceLock::new();

fn compiled() -> Result<&'static Compiled, Error> {
    compiled_with(None)
}

/// The compiled core; the first call in a process compiles it, or loads it
/// from `cache` if a sealed copy is there (and then stores one).
fn compiled_with(cache: Option<&CompileCache>) -> Result<&'static Compiled, Error> {
    let compiled = COMPILED
        .get_or_init(|| {
            let mut config = Config::new();
            config.wasm_component_model(true);
            // `perf record` can name the core's functions with a perf map.
            if std::env::var_os("ARTIFACTS_PERFMAP").is_some() {
                config.profiler(wasmtime::ProfilingStrategy::PerfMap);
            }
            let engine = Engine::new(&config).map_err(|e| format!("creating the engine: {e:#}"))?;
            let key = Hash::from_hex(blake3::hash(CORE_COMPONENT).to_hex().as_str())
                .map_err(|e| e.to_string())?;
            let component = match cache.and_then(|c| c.get(&engine, &key)) {
                Some(component) => component,
                None => Component::new(&engine, CORE_COMPONENT)
                    .map_err(|e| format!("compiling the core component: {e:#}"))?,
            };
            let mut linker = Linker::<CoreState>::new(&engine);
            Core::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)
                .map_err(|e| format!("linking the core: {e:#}"))?;
            let pre = linker
                .instantiate_pre(&component)
                .map_err(|e| format!("pre-instantiating the core: {e:#}"))?;
            let pre =
                generated::CorePre::new(pre).map_err(|e| format!("the core's exports: {e:#}"))?;
            Ok(Compiled {
                engine,
                component,
                key,
                pre,
            })
        })
        .as_ref()
        .map_err(|e| Error::Core(e.clone()))?;
    // Compiled earlier in this process without this cache: fill it now.
    if let Some(cache) = cache
        && !cache.contains(&compiled.engine, &compiled.key)
    {
        cache.put(&compiled.engine, &compiled.key, &compiled.component);
    }
    Ok(compiled)
}

/// One instance of the core with its wasmtime store.
pub(crate) struct Instance {
    pub(crate) store: wasmtime::Store<CoreState>,
    pub(crate) core: Core,
}

/// Instances of the core over one backend, reused across calls.
pub(crate) struct Pool {
    pub(crate) backend: Arc<dyn Backend>,
    idle: Mutex<Vec<Instance>>,
    memory_limit: usize,
    hostcall_fuel: usize,
    private_dedup: bool,
}

/// An instance whose linear memory grew past this (64 MiB) is dropped after its call
/// rather than kept idle, so one large artifact does not pin its memory.
const KEEP_MEMORY_BYTES: usize = 64 << 20;
/// The most idle instances kept.
const MAX_IDLE: usize = 16;

impl Pool {
    /// `max_artifact_bytes` sets how much data one call from the core to the
    /// backend may carry: wasmtime caps it (128 MiB by default), and a put
    /// hands the whole artifact to `write-blob`.
    pub(crate) fn new(
        backend: Arc<dyn Backend>,
        memory_limit: usize,
        max_artifact_bytes: usize,
        cache: Option<&CompileCache>,
        private_dedup: bool,
    ) -> Result<Self, Error> {
        compiled_with(cache)?;
        let hostcall_fuel = max_artifact_bytes.saturating_add(1 << 20);
        Ok(Self {
            backend,
            idle: Mutex::new(Vec::new()),
            memory_limit,
            hostcall_fuel,
            private_dedup,
        })
    }

    fn instantiate(&self) -> Result<Instance, Error> {
        let compiled = compiled()?;
        let state = CoreState {
            backend: self.backend.clone(),
            staged: None,
            private_dedup: self.private_dedup,
            memory_limit: self.memory_limit,
            memory_used: 0,
        };
        let mut store = wasmtime::Store::new(&compiled.engine, state);
        store.limiter(|s| s as &mut dyn ResourceLimiter);
        store.set_hostcall_fuel(self.hostcall_fuel);
        let core = compiled
            .pre
            .instantiate(&mut store)
            .map_err(|e| Error::Core(format!("instantiating the core: {e:#}")))?;
        Ok(Instance { store, core })
    }

    /// Runs `f` on an idle instance (or a new one). An instance that trapped
    /// is dropped, never reused.
    pub(crate) fn with<R>(
        &self,
        f: impl FnOnce(&mut Instance) -> wasmtime::Result<R>,
    ) -> Result<R, Error> {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut instance = match idle {
            Some(i) => i,
            None => self.instantiate()?,
        };
        let result = f(&mut instance).map_err(|e| Error::Core(format!("{e:#}")))?;
        if instance.store.data().memory_used <= KEEP_MEMORY_BYTES {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            if idle.len() < MAX_IDLE {
                idle.push(instance);
            }
        }
        Ok(result)
    }
}

impl From<exports::Error> for Error {
    fn from(e: exports::Error) -> Self {
        use exports::Error as E;
        match e {
            E::NotFound(h) => Error::NotFound(h),
            E::InvalidHash(m) => Error::InvalidHash(m),
            E::Integrity(f) => Error::Integrity {
                expected: f.expected,
                actual: f.actual,
            },
            E::InvalidOwner(m) => Error::InvalidOwner(m),
            E::QuotaExceeded(q) => Error::QuotaExceeded {
                kind: match q.kind {
                    generated::artifacts::store::types::QuotaKind::Bytes => crate::QuotaKind::Bytes,
                    generated::artifacts::store::types::QuotaKind::Artifacts => {
                        crate::QuotaKind::Artifacts
                    }
                    generated::artifacts::store::types::QuotaKind::ArtifactBytes => {
                        crate::QuotaKind::ArtifactBytes
                    }
                },
                limit: q.limit,
                requested: q.requested,
            },
            E::TooManyOwners(h) => Error::TooManyOwners(h),
            E::MissingContent(h) => Error::MissingContent(h),
            E::CorruptRecord(m) => Error::CorruptRecord(m),
            E::TooLarge(limit) => Error::TooLarge { size: 0, limit },
            E::Contended(h) => Error::Contended(h),
            E::Backend(m) => Error::Backend(m),
        }
    }
}

/// A backend record as the core's `backend` interface carries it.
fn versioned(r: backend::VersionedRecord) -> wit::VersionedRecord {
    wit::VersionedRecord {
        version: r.version,
        data: r.data,
    }
}

/// A page of records (or index entries) as the core's `backend` interface
/// carries it; each one read is host work the caller is charged for.
fn keyed(records: Vec<(Hash, backend::VersionedRecord)>) -> Vec<wit::KeyedRecord> {
    note_backend_work(records.len() as u64, 0);
    records
        .into_iter()
        .map(|(k, r)| wit::KeyedRecord {
            key: k.as_str().to_owned(),
            record: versioned(r),
        })
        .collect()
}

/// A swap's outcome as the core's `backend` interface carries it.
fn swap_outcome(outcome: backend::SwapOutcome) -> wit::SwapOutcome {
    match outcome {
        backend::SwapOutcome::Conflict => wit::SwapOutcome::Conflict,
        backend::SwapOutcome::Written(v) => wit::SwapOutcome::Written(v),
        backend::SwapOutcome::Deleted => wit::SwapOutcome::Deleted,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::MemoryBackend;

    #[test]
    fn staged_content_is_stored_only_under_the_hash_the_host_staged() {
        let backend = MemoryBackend::new();
        let (a, b) = ("ab".repeat(32), "cd".repeat(32));
        let mut staging = backend.stage().unwrap();
        backend.append_staged(&mut staging, b"staged").unwrap();
        let mut state = CoreState {
            backend: Arc::new(backend.clone()),
            staged: Some((staging, Hash::from_hex(&a).unwrap())),
            private_dedup: false,
            memory_limit: 0,
            memory_used: 0,
        };
        assert!(matches!(
            wit::Host::write_staged_blob(&mut state, b.clone()),
            Err(BackendError::InvalidKey(_))
        ));
        wit::Host::write_staged_blob(&mut state, a.clone()).unwrap();
        let read = |k: &str| backend.read_blob(&Hash::from_hex(k).unwrap()).unwrap();
        assert_eq!((read(&a), read(&b)), (Some(b"staged".to_vec()), None));
        state.staged = None;
        assert!(wit::Host::write_staged_blob(&mut state, a).is_err());
    }
}

//! The core compiled once per process, and a pool of its instances over one
//! backend, so that many threads can call at once.

use std::sync::{Arc, Mutex, OnceLock};

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, ResourceLimiter};

use super::CoreSettings;
use super::bindings::{Core, CorePre};
use super::imports::CoreState;
use crate::backend::Backend;
use crate::compile_cache::CompileCache;
use crate::{Error, Hash};

/// The core component, built from `guest/` by `scripts/build-guests.sh`.
pub const CORE_COMPONENT: &[u8] = include_bytes!("../../../guest/artifacts_core.wasm");

/// The engine and the compiled, linked core, made once per process.
struct Compiled {
    engine: Engine,
    component: Component,
    key: Hash,
    pre: CorePre<CoreState>,
}

static COMPILED: OnceLock<Result<Compiled, String>> = OnceLock::new();

/// The compiled core; the first call in a process compiles it, or loads it
/// from `cache` if a sealed copy is there (and then stores one).
fn compiled(cache: Option<&CompileCache>) -> Result<&'static Compiled, Error> {
    let compiled = COMPILED
        .get_or_init(|| {
            let mut config = Config::new();
            config.wasm_component_model(true);
            // `perf record` can name the core's functions with a perf map.
            if std::env::var_os("ARTIFACTS_PERFMAP").is_some() {
                config.profiler(wasmtime::ProfilingStrategy::PerfMap);
            }
            let engine = Engine::new(&config).map_err(|e| format!("creating the engine: {e:#}"))?;
            let key = Hash::of(CORE_COMPONENT);
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
            let pre = CorePre::new(pre).map_err(|e| format!("the core's exports: {e:#}"))?;
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

/// One instance of the core with its wasmtime store. Its typed calls are in
/// `calls.rs`; a call that traps poisons it, and the pool drops it.
pub(crate) struct Instance {
    pub(super) store: wasmtime::Store<CoreState>,
    pub(super) core: Core,
    pub(super) poisoned: bool,
}

/// Instances of the core over one backend, reused across calls.
pub(crate) struct Pool {
    pub(super) backend: Arc<dyn Backend>,
    idle: Mutex<Vec<Instance>>,
    memory_limit: usize,
    hostcall_fuel: usize,
    private_dedup: bool,
}

/// An instance whose linear memory grew past this (64 MiB) is dropped after its call
/// rather than kept idle, so one large artifact does not pin its memory.
pub(crate) const KEEP_MEMORY_BYTES: usize = 64 << 20;
/// The most idle instances kept.
const MAX_IDLE: usize = 16;

impl Pool {
    /// The hostcall fuel follows `settings.max_artifact_bytes`: wasmtime caps
    /// how much data one call from the core to the backend may carry (128
    /// MiB by default), and a put hands the whole artifact to `write-blob`.
    pub(super) fn new(
        backend: Arc<dyn Backend>,
        settings: CoreSettings,
        cache: Option<&CompileCache>,
    ) -> Result<Self, Error> {
        compiled(cache)?;
        Ok(Self {
            backend,
            idle: Mutex::new(Vec::new()),
            memory_limit: settings.memory_limit,
            hostcall_fuel: settings.max_artifact_bytes.saturating_add(1 << 20),
            private_dedup: settings.private_dedup,
        })
    }

    /// Whether the store's dedup is private.
    pub(super) fn private_dedup(&self) -> bool {
        self.private_dedup
    }

    fn instantiate(&self) -> Result<Instance, Error> {
        let compiled = compiled(None)?;
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
        Ok(Instance {
            store,
            core,
            poisoned: false,
        })
    }

    /// Runs `f` on an idle instance (or a new one). An instance that trapped
    /// is dropped, never reused; so is one whose memory grew large.
    pub(crate) fn with<R>(
        &self,
        f: impl FnOnce(&mut Instance) -> Result<R, Error>,
    ) -> Result<R, Error> {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut instance = match idle {
            Some(i) => i,
            None => self.instantiate()?,
        };
        let result = f(&mut instance);
        if !instance.poisoned && instance.store.data().memory_used <= KEEP_MEMORY_BYTES {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            if idle.len() < MAX_IDLE {
                idle.push(instance);
            }
        }
        result
    }
}

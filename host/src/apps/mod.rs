//! Running untrusted app components against the store, sandboxed.
//!
//! An app is a wasm component that imports the WIT `store` interface (and,
//! optionally, WASI command imports) and exports `wasi:cli/run`. Each app
//! runs with its own identity ([`AppView`]): it sees only its own
//! artifacts, its quota is enforced, and it gets no filesystem, network or
//! environment; its memory, CPU (fuel), wall-clock time and output are
//! capped, and its output to a terminal has control characters escaped.
//!
//! ```no_run
//! use artifacts::{ArtifactStore, apps::{AppConfig, AppHost}};
//!
//! # fn main() -> Result<(), artifacts::Error> {
//! let store = ArtifactStore::open_dir(".artifacts")?;
//! let host = AppHost::new(store)?;
//! let app = host.load_file(&std::fs::read("app.wasm").expect("app"))?;
//! let outcome = host.run(&app, &AppConfig::new("my-app"))?;
//! println!("exit code {}", outcome.exit_code);
//! # Ok(())
//! # }
//! ```
//!
//! To run apps in your own wasmtime setup (your `Engine`, `Linker` and
//! WASI), keep an [`AppState`] from [`AppHost::app_state`] in your store's
//! data, link the store with [`add_to_linker`], [`prepare`] each store (it
//! installs every limit) and [`run`] the app; [`load_component`] compiles a
//! stored component by hash. See `examples/embedder.rs`.

mod bindings;
pub mod blobstore;
mod budget;
mod compile_check;
mod config;
mod embed;
mod escape;
#[cfg(test)]
mod handles_tests;
mod launch;
mod launch_imports;
pub mod limits;
mod load;
mod memory;
mod output;
mod pool;
mod store_ctx;
mod store_imports;
mod streams_imports;

use std::sync::{Arc, Mutex};

use wasmtime::component::Linker;
use wasmtime::{Config, Engine, InstanceAllocationStrategy};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p2::bindings::CommandPre;

pub use self::compile_check::{CodeStats, check as check_component};
pub use self::config::{AppConfig, AppOutcome, Stdio};
pub use self::embed::{AppState, HasApp, add_to_linker, prepare, run};
pub use self::escape::terminal_safe;
use self::launch::Family;
pub(crate) use self::launch::{ChildLimits, ChildRequest, LaunchError, Launching};
use self::limits::CompileLimits;
pub(crate) use self::limits::HostWork;
pub use self::load::load_component;
pub(crate) use self::memory::Held;
pub use self::memory::MemoryRefused;
use self::pool::app_pool;
pub(crate) use self::store_ctx::AppStoreCtx;
pub(crate) use self::store_ctx::app_hash;
use crate::CompileCache;
use crate::{AppView, ArtifactStore, Error, Hash};

/// A compiled, linked app, ready to start in microseconds.
#[derive(Clone)]
pub struct App {
    hash: Hash,
    pre: CommandPre<AppState>,
}

impl App {
    /// The BLAKE3 hash of the app's component.
    pub fn hash(&self) -> &Hash {
        &self.hash
    }

    /// The identity the app runs under unless told otherwise: `app-` and
    /// the first 32 hex digits (128 bits) of its hash. Derived from the
    /// content alone, so another component cannot take it by having the
    /// same file name, nor feasibly by its hash's prefix.
    pub fn default_id(&self) -> String {
        format!("app-{}", self.hash.to_hex().get(..32).unwrap_or_default())
    }
}

/// Runs apps against one store; compiles each distinct component once.
/// Clones share everything (what apps launch runs on a clone).
#[derive(Clone)]
pub struct AppHost {
    store: ArtifactStore,
    engine: Engine,
    linker: Arc<Linker<AppState>>,
    cache: Arc<Mutex<load::AppCache>>,
    disk: Option<Arc<CompileCache>>,
    compilations: Arc<std::sync::atomic::AtomicUsize>,
    /// Drives apps' WASI calls (sleeps, polls, output) and wall clocks:
    /// each run is polled on its caller's thread; the one worker thread
    /// keeps time.
    runtime: Arc<AppRuntime>,
    compile_limits: CompileLimits,
}

/// The apps' tokio runtime, shut down without waiting when dropped: a
/// write to a reader that stopped reading may never finish, and must not
/// hold up the host (tokio's own drop waits for blocking threads).
struct AppRuntime(Option<tokio::runtime::Runtime>);

impl Drop for AppRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

impl AppHost {
    /// An app host over `store`, with default component size limits.
    pub fn new(store: ArtifactStore) -> Result<Self, Error> {
        let mut config = Config::new();
        config.wasm_component_model(true).consume_fuel(true);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(app_pool()));
        let engine = Engine::new(&config).map_err(|e| Error::Core(format!("app engine: {e:#}")))?;
        let mut linker = Linker::<AppState>::new(&engine);
        // Async WASI: an app that sleeps or waits in a poll is a pending
        // future the wall clock can drop, where sync WASI would block the
        // thread. The `store` imports stay synchronous.
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| Error::Core(format!("linking WASI: {e:#}")))?;
        add_to_linker(&mut linker)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("artifacts-apps")
            .enable_all()
            .build()
            .map_err(|e| Error::Core(format!("starting the apps' runtime: {e}")))?;

        Ok(Self {
            store,
            engine,
            linker: Arc::new(linker),
            cache: Arc::new(Mutex::new(load::AppCache::default())),
            disk: None,
            compilations: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
            compile_limits: CompileLimits::default(),
            runtime: Arc::new(AppRuntime(Some(runtime))),
        })
    }

    /// Runs `future` to completion on this host's runtime, blocking the
    /// calling thread; from inside another tokio runtime (where tokio
    /// forbids blocking), on a thread of its own.
    fn block_on<F>(&self, future: F) -> Result<F::Output, Error>
    where
        F: Future + Send,
        F::Output: Send,
    {
        let runtime = (self.runtime.0.as_ref())
            .ok_or_else(|| Error::Core("the apps' runtime has shut down".into()))?;
        // Out of tokio's cooperative budget: the app's `store` calls block
        // inside this future, and a backend that waits on its own runtime
        // from there (S3: a JoinHandle polled by a plain executor) would
        // otherwise see the budget run out and spin, never yielding back.
        let future = tokio::task::unconstrained(future);
        if tokio::runtime::Handle::try_current().is_err() {
            return Ok(runtime.block_on(future));
        }
        Ok(std::thread::scope(|s| {
            s.spawn(|| runtime.block_on(future))
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        }))
    }

    /// Compiles only components within `limits` (default:
    /// [`CompileLimits::default`]); the size limit of [`AppLimits`](limits::AppLimits) plays
    /// no part in loading.
    pub fn with_compile_limits(mut self, limits: CompileLimits) -> Self {
        self.compile_limits = limits;
        self
    }

    /// Also keeps compiled components on disk, sealed (see [`CompileCache`]),
    /// so a later process skips compiling them.
    pub fn with_compile_cache(mut self, cache: CompileCache) -> Self {
        self.disk = Some(Arc::new(cache));
        self
    }

    /// The engine apps are compiled for.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// How many times this host has compiled a component (cache hits, in
    /// memory or on disk, do not count).
    pub fn compiled(&self) -> usize {
        self.compilations.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Runs `app` to completion under `config`. An app that exits non-zero
    /// is an [`AppOutcome`]; one that traps, runs out of fuel, memory, time
    /// or output is an error. Either way the host and other apps carry on.
    ///
    /// This blocks the calling thread (apps run on it); called from async
    /// code, it runs the app on a thread of its own and still blocks.
    #[crate::traced(run, owner = config.id, hash = app.hash())]
    pub fn run(&self, app: &App, config: &AppConfig) -> Result<AppOutcome, Error> {
        let view = self.store.app(&config.id, config.quota)?;
        let family = Family::new();
        let result = self.run_in(app, config, view.clone(), 0, family.clone()).0;
        // Under private dedup, the deletions the run's releases started are
        // finished now, where no app of the run can time them (a failure
        // leaves them counted against the quota until gc settles them).
        if let Err(e) = family.settle(&view) {
            tracing::warn!(app = %config.id, error = %e, "settling the run's releases");
        }
        result
    }

    /// Runs `app` as `view`'s owner, `depth` launches deep in `family`;
    /// also returns the fuel it used, however it ended. The one way an app
    /// runs: its state made, its store prepared and run as an embedder's is.
    pub(crate) fn run_in(
        &self,
        app: &App,
        config: &AppConfig,
        view: AppView,
        depth: u32,
        family: Arc<Family>,
    ) -> (Result<AppOutcome, Error>, u64) {
        let mut wasi = WasiCtxBuilder::new();
        wasi.allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        let state = self.state_in(config, wasi, view, depth, family);
        let mut store = wasmtime::Store::new(&self.engine, state);
        if let Err(e) = embed::prepare(&mut store) {
            return (Err(e), 0);
        }
        match self.block_on(embed::run_counted(&mut store, &app.pre)) {
            Ok(ended) => ended,
            Err(e) => (Err(e), 0),
        }
    }
}

/// The first line of an error and its causes (wasmtime's can run to a hex dump).
fn first_line(e: &wasmtime::Error) -> String {
    format!("{e:#}")
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

#[allow(dead_code)]
fn _assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<AppHost>();
    is::<Arc<AppHost>>();
}

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
//! To run apps in your own wasmtime setup, use [`add_to_linker`] with an
//! [`AppStoreCtx`] in your store's data, and [`load_component`] to compile a
//! stored component by hash.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolConcurrencyLimitError, PoolingAllocationConfig,
    Trap,
};
use wasmtime_wasi::p2::bindings::CommandPre;
use wasmtime_wasi::{I32Exit, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::app_limits::{Budget, is_count_limit};
pub use crate::app_limits::{
    FUEL_PER_BYTE, FUEL_PER_CALL, FUEL_PER_RECORD, HostWork, TABLE_ELEMENT_BYTES, charge_host_work,
};
pub use crate::app_output::terminal_safe;
use crate::app_output::{AppOutput, OutputBudget, Sink};
pub use crate::compile_cache::CompileCache;
pub use crate::compile_check::{CodeStats, CompileLimits, check as check_component};
use crate::{AppView, ArtifactStore, Error, Hash, Quota};

/// An app's resource limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppLimits {
    /// The app's memory budget, in bytes: all its linear memories and all
    /// its tables (at [`TABLE_ELEMENT_BYTES`] per element) together.
    pub memory_bytes: usize,
    /// The most core instances the app may create.
    pub max_instances: usize,
    /// The most linear memories the app may create.
    pub max_memories: usize,
    /// The most tables the app may create.
    pub max_tables: usize,
    /// The CPU budget, in wasmtime fuel (about one unit per wasm instruction).
    pub fuel: u64,
    /// The largest component the host will compile, in bytes.
    pub max_component_bytes: u64,
    /// The longest a run may take, from instantiation to exit, whether the
    /// app computes, sleeps or waits; past it the app is stopped with
    /// [`Error::Timeout`].
    pub wall_time: Duration,
    /// The most output a run may write, standard output and error
    /// together, in bytes (as the app wrote them, before any escaping); an
    /// app that tries to write more is stopped with [`Error::OutputLimit`]
    /// once its output up to the limit is out.
    pub max_output: u64,
}

impl Default for AppLimits {
    /// 64 MiB of memory in at most 32 instances, 4 memories and 32 tables;
    /// 10 billion fuel; 32 MiB components; 60 s of wall clock and 16 MiB of
    /// output.
    fn default() -> Self {
        Self {
            memory_bytes: 64 << 20,
            max_instances: 32,
            max_memories: 4,
            max_tables: 32,
            fuel: 10_000_000_000,
            max_component_bytes: 32 << 20,
            wall_time: Duration::from_secs(60),
            max_output: 16 << 20,
        }
    }
}

/// Where an app's standard output and error go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stdio {
    /// The host process's own. Where that is a terminal, control
    /// characters are escaped (ESC becomes the text `\x1b`), so the app
    /// cannot move the cursor, set the title or the clipboard; a file or a
    /// pipe gets the bytes unchanged.
    Inherit,
    /// Kept, byte for byte, and returned in [`AppOutcome`] (at most
    /// [`AppLimits::max_output`], both streams together).
    Capture,
}

/// How to run one app.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// The app's identity: whose references it takes and sees.
    pub id: String,
    /// What it may keep in the store.
    pub quota: Quota,
    /// Its memory and CPU limits.
    pub limits: AppLimits,
    /// Its arguments (after its name).
    pub args: Vec<String>,
    /// Artifacts it may read without holding a reference.
    pub grants: Vec<Hash>,
    /// Where its output goes.
    pub stdio: Stdio,
}

impl AppConfig {
    /// Defaults for the app `id`: default quota and limits, no arguments,
    /// no grants, output captured.
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            quota: Quota::default(),
            limits: AppLimits::default(),
            args: Vec::new(),
            grants: Vec::new(),
            stdio: Stdio::Capture,
        }
    }
}

/// How an app ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppOutcome {
    /// 0 for success; the code it exited with otherwise.
    pub exit_code: i32,
    /// What it wrote to standard output, if captured.
    pub stdout: Vec<u8>,
    /// What it wrote to standard error, if captured.
    pub stderr: Vec<u8>,
    /// The fuel it used.
    pub fuel_used: u64,
}

/// The state an app's `store` imports work on: the app's view of the store.
pub struct AppStoreCtx {
    view: AppView,
    /// The fuel its calls cost (see [`charge_host_work`]).
    pub(crate) work: HostWork,
}

impl AppStoreCtx {
    /// Serves the app's `store` imports from `view`. Its calls are charged
    /// in fuel once the store has [`charge_host_work`] as its call hook.
    pub fn new(view: AppView) -> Self {
        let work = HostWork::new(view.id());
        Self { view, work }
    }
}

/// Adds the WIT `store` interface (and its `types`) to `linker`, served by
/// the [`AppStoreCtx`] that `get` finds in each store's data.
pub fn add_to_linker<T: 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut AppStoreCtx,
) -> wasmtime::Result<()> {
    crate::core_component::add_app_store_to_linker(linker, get)
}

/// A hash an app passed: parsed once, here, as part of its (charged) call.
fn app_hash(text: &str) -> Result<Hash, Error> {
    Hash::from_hex(text).map_err(|e| Error::InvalidHash(e.to_string()))
}

impl AppStoreCtx {
    /// The app's view of the store.
    pub(crate) fn view(&self) -> &AppView {
        &self.view
    }

    /// Runs one store call, charged (see [`HostWork`]): the base cost and
    /// `bytes` before the work, the backend records after.
    pub(crate) fn charged<R>(
        &mut self,
        bytes: u64,
        op: impl FnOnce(&AppView) -> Result<R, Error>,
    ) -> Result<R, Error> {
        self.work.begin()?;
        self.work.bytes(bytes)?;
        let result = op(&self.view);
        self.work.end()?;
        result
    }

    /// A charged call about the artifact `hash` (text as the app sent it).
    pub(crate) fn charged_hash<R>(
        &mut self,
        hash: &str,
        op: impl FnOnce(&AppView, &Hash) -> Result<R, Error>,
    ) -> Result<R, Error> {
        self.charged(0, |view| op(view, &app_hash(hash)?))
    }

    /// A charged `list` page after `after` (text as the app sent it).
    pub(crate) fn charged_list<R>(
        &mut self,
        after: Option<&str>,
        op: impl FnOnce(&AppView, Option<&Hash>) -> Result<R, Error>,
    ) -> Result<R, Error> {
        self.charged(0, |view| {
            let after = after.map(app_hash).transpose()?;
            op(view, after.as_ref())
        })
    }

    /// A get or verify of `hash`, charged for its size before the content
    /// is read (the size comes from its metadata; nothing is charged for
    /// content the app cannot see, whose call fails without reading any).
    pub(crate) fn charged_read<R>(
        &mut self,
        hash: &str,
        op: impl FnOnce(&AppView, &Hash) -> Result<R, Error>,
    ) -> Result<R, Error> {
        self.work.begin()?;
        let result = app_hash(hash).and_then(|hash| {
            let size = self.view.stat(&hash).map_or(0, |m| m.size);
            self.work.bytes(size)?;
            op(&self.view, &hash)
        });
        self.work.end()?;
        result
    }
}

/// Everything one running app owns.
struct AppState {
    wasi: WasiCtx,
    table: ResourceTable,
    store: AppStoreCtx,
    limiter: Budget,
}

impl WasiView for AppState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

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
pub struct AppHost {
    store: ArtifactStore,
    engine: Engine,
    linker: Linker<AppState>,
    cache: Mutex<HashMap<Hash, App>>,
    disk: Option<CompileCache>,
    compilations: std::sync::atomic::AtomicUsize,
    /// Drives apps' WASI calls (sleeps, polls, output) and wall clocks:
    /// each run is polled on its caller's thread; the one worker thread
    /// keeps time.
    runtime: AppRuntime,
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

/// How many apps one [`AppHost`] runs at once, at most: the slots of its
/// instance pool. A run past them fails with [`Error::Busy`] and the
/// running apps carry on.
pub const MAX_CONCURRENT_APPS: u32 = 64;

/// The most elements any one table of an app may have: a component that
/// declares a larger table is refused when loaded, and a table does not
/// grow past it (4 Mi elements, which the default 64 MiB budget counts at
/// [`TABLE_ELEMENT_BYTES`] apiece).
pub const MAX_TABLE_ELEMENTS: usize = 4 << 20;

/// The most linear memories and tables one core module of an app may
/// define: a module with more is refused when loaded (the counts of
/// [`AppLimits`] apply to the app as a whole, at run time).
pub const MAX_MEMORIES_PER_MODULE: u32 = 16;
/// See [`MAX_MEMORIES_PER_MODULE`].
pub const MAX_TABLES_PER_MODULE: u32 = 128;

/// Bytes of each pooled memory and fiber stack, and of each table, kept
/// mapped and zeroed between runs, so that a warm run reuses them instead
/// of mapping and faulting in fresh pages (what the on-demand allocator
/// spent most of a warm start on). At most 64 KiB x (256 memories + 64
/// stacks) + 4 KiB x 2048 tables, 28 MiB, stay resident however many apps
/// have run.
const KEEP_RESIDENT: usize = 64 << 10;
/// See [`KEEP_RESIDENT`]: tables are many and small.
const TABLE_KEEP_RESIDENT: usize = 4 << 10;

/// The app engine's instance pool: every app's memories, tables, instances
/// and fiber stack come from slots made once per host and reused, which is
/// what makes a warm start cost tens of microseconds. Sized for
/// [`MAX_CONCURRENT_APPS`] apps at the default [`AppLimits`] counts; each
/// slot reserves address space, not memory (a memory slot 4 GiB, a table
/// slot 32 MiB), and the budget ([`AppLimits::memory_bytes`]) still caps
/// what an app may use of them.
fn app_pool() -> PoolingAllocationConfig {
    let d = AppLimits::default();
    let per_app =
        |n: usize| MAX_CONCURRENT_APPS.saturating_mul(u32::try_from(n).unwrap_or(u32::MAX));
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(MAX_CONCURRENT_APPS)
        .total_stacks(MAX_CONCURRENT_APPS)
        .total_core_instances(per_app(d.max_instances))
        .total_memories(per_app(d.max_memories))
        .total_tables(per_app(d.max_tables))
        .max_memories_per_module(MAX_MEMORIES_PER_MODULE)
        .max_tables_per_module(MAX_TABLES_PER_MODULE)
        .table_elements(MAX_TABLE_ELEMENTS)
        .linear_memory_keep_resident(KEEP_RESIDENT)
        .table_keep_resident(TABLE_KEEP_RESIDENT)
        .async_stack_keep_resident(KEEP_RESIDENT);
    pool
}

/// How much fuel an app burns between yields to the host's executor, so
/// that its wall clock can stop it even while it computes: about 0.5 ms of
/// a tight loop on this project's machine (10^10 fuel took 0.54 s of CPU),
/// and a yield costs a fiber switch.
const YIELD_FUEL: u64 = 10_000_000;

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
            .and_then(|()| add_to_linker(&mut linker, |s: &mut AppState| &mut s.store))
            .map_err(|e| Error::Core(format!("linking app imports: {e:#}")))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("artifacts-apps")
            .enable_all()
            .build()
            .map_err(|e| Error::Core(format!("starting the apps' runtime: {e}")))?;
        Ok(Self {
            store,
            engine,
            linker,
            cache: Mutex::new(HashMap::new()),
            disk: None,
            compilations: std::sync::atomic::AtomicUsize::new(0),
            compile_limits: CompileLimits::default(),
            runtime: AppRuntime(Some(runtime)),
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
    /// [`CompileLimits::default`]); the size limit of [`AppLimits`] plays
    /// no part in loading.
    pub fn with_compile_limits(mut self, limits: CompileLimits) -> Self {
        self.compile_limits = limits;
        self
    }

    /// Also keeps compiled components on disk, sealed (see [`CompileCache`]),
    /// so a later process skips compiling them.
    pub fn with_compile_cache(mut self, cache: CompileCache) -> Self {
        self.disk = Some(cache);
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

    /// Loads the app stored under `hash`: read and verified through the
    /// store, then compiled, unless a compiled copy is cached.
    pub fn load(&self, hash: &Hash) -> Result<App, Error> {
        if let Some(app) = self.cached(hash) {
            return Ok(app);
        }
        let bytes = read_component(&self.store, hash, &self.compile_limits)?;
        self.compile(*hash, &bytes)
    }

    /// Loads an app from bytes (not stored), compiled unless cached.
    pub fn load_file(&self, bytes: &[u8]) -> Result<App, Error> {
        let key = Hash::from_hex(blake3::hash(bytes).to_hex().as_str())
            .map_err(|e| Error::Core(e.to_string()))?;
        if let Some(app) = self.cached(&key) {
            return Ok(app);
        }
        self.compile(key, bytes)
    }

    fn cached(&self, key: &Hash) -> Option<App> {
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned()
    }

    fn compile(&self, hash: Hash, bytes: &[u8]) -> Result<App, Error> {
        let cached = self.disk.as_ref().and_then(|d| d.get(&self.engine, &hash));
        let component = match cached {
            Some(component) => component,
            None => {
                check_component(bytes, &self.compile_limits)?;
                self.compilations
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let component = Component::new(&self.engine, bytes).map_err(|e| {
                    Error::InvalidApp(format!("not a valid component: {}", first_line(&e)))
                })?;
                if let Some(disk) = &self.disk {
                    disk.put(&self.engine, &hash, &component);
                }
                component
            }
        };
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| Error::InvalidApp(format!("{e:#}")))?;
        let pre = CommandPre::new(pre).map_err(|e| {
            Error::InvalidApp(format!("not a command (no wasi:cli/run export): {e:#}"))
        })?;
        let app = App { hash, pre };
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(hash, app.clone());
        Ok(app)
    }

    /// Runs `app` to completion under `config`. An app that exits non-zero
    /// is an [`AppOutcome`]; one that traps, runs out of fuel, memory, time
    /// or output is an error. Either way the host and other apps carry on.
    ///
    /// This blocks the calling thread (apps run on it); called from async
    /// code, it runs the app on a thread of its own and still blocks.
    pub fn run(&self, app: &App, config: &AppConfig) -> Result<AppOutcome, Error> {
        let mut view = self.store.app(&config.id, config.quota)?;
        for hash in &config.grants {
            view.grant(*hash);
        }
        let mut wasi = WasiCtxBuilder::new();
        wasi.arg(&config.id)
            .args(&config.args)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        let budget = OutputBudget::new(config.limits.max_output);
        let captured = (config.stdio == Stdio::Capture).then(|| {
            (
                Arc::new(Mutex::new(Vec::new())),
                Arc::new(Mutex::new(Vec::new())),
            )
        });
        let (stdout, stderr) = match &captured {
            Some((out, err)) => (
                AppOutput::new(Sink::Memory(out.clone()), false, budget.clone()),
                AppOutput::new(Sink::Memory(err.clone()), false, budget.clone()),
            ),
            None => (
                AppOutput::new(
                    Sink::Stdout,
                    std::io::stdout().is_terminal(),
                    budget.clone(),
                ),
                AppOutput::new(
                    Sink::Stderr,
                    std::io::stderr().is_terminal(),
                    budget.clone(),
                ),
            ),
        };
        wasi.stdout(stdout.clone()).stderr(stderr.clone());
        let state = AppState {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            store: AppStoreCtx::new(view),
            limiter: Budget::new(&config.limits),
        };
        let mut store = wasmtime::Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        store.call_hook(|cx, hook| charge_host_work(cx, hook, |s: &mut AppState| &mut s.store));
        store.set_hostcall_fuel(crate::app_limits::hostcall_fuel(
            &config.quota,
            self.store.max_artifact_bytes(),
        ));
        store
            .set_fuel(config.limits.fuel)
            .and_then(|()| store.fuel_async_yield_interval(Some(YIELD_FUEL)))
            .map_err(|e| Error::Core(format!("setting fuel: {e:#}")))?;
        let limit = config.limits.wall_time;
        let result = self.block_on(async {
            let deadline = tokio::time::Instant::now() + limit;
            let run = async {
                let command = app.pre.instantiate_async(&mut store).await?;
                command.wasi_cli_run().call_run(&mut store).await
            };
            let result = tokio::time::timeout_at(deadline, run).await;
            if captured.is_none() {
                // Let the output in flight go out (within the limit, or a
                // moment after it) before the host says anything more.
                let grace = tokio::time::Instant::now() + Duration::from_millis(100);
                let finish = async { tokio::join!(stdout.finish(), stderr.finish()) };
                let _ = tokio::time::timeout_at(deadline.max(grace), finish).await;
            }
            result
        })?;
        let fuel_used = config
            .limits
            .fuel
            .saturating_sub(store.get_fuel().unwrap_or(0));
        let Ok(result) = result else {
            return Err(Error::Timeout {
                app: config.id.clone(),
                limit,
            });
        };
        let exit_code = match result {
            Ok(Ok(())) => 0,
            Ok(Err(())) => 1,
            Err(e) => {
                if let Some(exit) = e.downcast_ref::<I32Exit>() {
                    exit.0
                } else if e.downcast_ref::<PoolConcurrencyLimitError>().is_some() {
                    return Err(Error::Busy {
                        app: config.id.clone(),
                        limit: MAX_CONCURRENT_APPS,
                    });
                } else if budget.exceeded() {
                    return Err(Error::OutputLimit {
                        app: config.id.clone(),
                        limit: config.limits.max_output,
                    });
                } else if store.data().limiter.denied || is_count_limit(&e) {
                    return Err(Error::OutOfMemory {
                        app: config.id.clone(),
                        limit: config.limits.memory_bytes,
                    });
                } else if e.downcast_ref::<Trap>() == Some(&Trap::OutOfFuel) {
                    return Err(Error::OutOfFuel {
                        app: config.id.clone(),
                        fuel: config.limits.fuel,
                    });
                } else {
                    return Err(Error::AppTrap {
                        app: config.id.clone(),
                        message: format!("{e:#}"),
                    });
                }
            }
        };
        let (stdout, stderr) = captured
            .map(|(out, err)| {
                let take = |b: Arc<Mutex<Vec<u8>>>| {
                    std::mem::take(&mut *b.lock().unwrap_or_else(|p| p.into_inner()))
                };
                (take(out), take(err))
            })
            .unwrap_or_default();
        Ok(AppOutcome {
            exit_code,
            stdout,
            stderr,
            fuel_used,
        })
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

/// Compiles the component stored under `hash` for `engine`, after reading
/// it through the store (so its integrity is checked) and checking it
/// against `limits` (size first, then [`check_component`]). For embedders
/// running apps in their own engine; they should also give each app's
/// store a [`ResourceLimiter`](wasmtime::ResourceLimiter) and the
/// [`charge_host_work`] call hook.
pub fn load_component(
    store: &ArtifactStore,
    engine: &Engine,
    hash: &Hash,
    limits: &CompileLimits,
) -> Result<Component, Error> {
    let bytes = read_component(store, hash, limits)?;
    check_component(&bytes, limits)?;
    Component::new(engine, &bytes)
        .map_err(|e| Error::InvalidApp(format!("not a valid component: {}", first_line(&e))))
}

/// The verified bytes of the component stored under `hash`, if it is no
/// larger than `limits` allow (checked from its metadata, before reading).
fn read_component(
    store: &ArtifactStore,
    hash: &Hash,
    limits: &CompileLimits,
) -> Result<Vec<u8>, Error> {
    let size = store.stat(hash)?.size;
    if size > limits.max_component_bytes {
        return Err(Error::InvalidApp(format!(
            "{hash} is {size} bytes, more than the {} a component may have",
            limits.max_component_bytes
        )));
    }
    store.get(hash)
}

#[allow(dead_code)]
fn _assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<AppHost>();
    is::<Arc<AppHost>>();
}

//! A host with its own wasmtime `Engine`, `Linker` and WASI setup that runs
//! an app component against an artifact store, linked through
//! `artifacts::apps`' embedding API, under every limit an `AppHost` run has
//! (memory, fuel and host work, handles, random bytes, wall clock, output):
//!
//! `cargo run --example embedder -- APP.wasm [ARGS...]`
//!
//! It runs the app against a store in memory, with the default limits, and
//! prints how it ended. The integration test `embed` drives hostile apps
//! through this same code.

use artifacts::apps::limits::CompileLimits;
use artifacts::apps::{self, AppConfig, AppHost, AppOutcome, AppState, HasApp};
use artifacts::{ArtifactStore, Error};
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::p2::bindings::CommandPre;
use wasmtime_wasi::{WasiCtxBuilder, WasiCtxView, WasiView};

/// The embedder's own store data: whatever it keeps per run, and the app's
/// state (which it can only get with the run's limits).
pub struct RunData {
    /// The embedder's own field: a label for its logs.
    pub label: String,
    /// The app's state.
    pub app: AppState,
}

impl HasApp for RunData {
    fn app(&mut self) -> &mut AppState {
        &mut self.app
    }
}

impl WasiView for RunData {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        self.app.wasi()
    }
}

/// The embedder: its engine and linker, and the artifact store's app host
/// (which makes each run's state and runs what apps launch).
pub struct Embedder {
    engine: Engine,
    linker: Linker<RunData>,
    host: AppHost,
}

impl Embedder {
    /// An engine of its own (fuel on, as the store's limits need), its own
    /// WASI, and the store's interfaces, linked with one call.
    pub fn new(store: ArtifactStore) -> Result<Self, Box<dyn std::error::Error>> {
        let mut config = Config::new();
        config.consume_fuel(true);
        let engine = Engine::new(&config)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        apps::add_to_linker(&mut linker)?;
        Ok(Self {
            engine,
            linker,
            host: AppHost::new(store)?,
        })
    }

    /// The engine, for an embedder's own use (or a test's).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The store's app host.
    pub fn host(&self) -> &AppHost {
        &self.host
    }

    /// Checks `wasm` against the compile limits, compiles and links it.
    pub fn load(&self, wasm: &[u8]) -> Result<CommandPre<RunData>, Box<dyn std::error::Error>> {
        apps::check_component(wasm, &CompileLimits::default())?;
        let component = Component::new(&self.engine, wasm)?;
        Ok(CommandPre::new(self.linker.instantiate_pre(&component)?)?)
    }

    /// A store of this engine for one run under `config`, prepared: every
    /// limit installed.
    pub fn store(&self, config: &AppConfig) -> Result<Store<RunData>, Error> {
        let mut wasi = WasiCtxBuilder::new();
        wasi.allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        let data = RunData {
            label: format!("run of {}", config.id),
            app: self.host.app_state(config, wasi)?,
        };
        let mut store = Store::new(&self.engine, data);
        apps::prepare(&mut store)?;
        Ok(store)
    }

    /// Runs `app` under `config` to its end or its limits.
    pub async fn run(
        &self,
        app: &CommandPre<RunData>,
        config: &AppConfig,
    ) -> Result<AppOutcome, Error> {
        let mut store = self.store(config)?;
        apps::run(&mut store, app).await
    }
}

/// Runs `wasm` under `config` on a runtime of its own, against a store in
/// memory.
pub fn run_once(wasm: &[u8], config: &AppConfig) -> Result<AppOutcome, Error> {
    let store = ArtifactStore::open_memory()?;
    let embedder = Embedder::new(store).map_err(|e| Error::InvalidApp(e.to_string()))?;
    let app = embedder
        .load(wasm)
        .map_err(|e| Error::InvalidApp(e.to_string()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Core(e.to_string()))?;
    runtime.block_on(embedder.run(&app, config))
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((path, app_args)) = args.split_first() else {
        eprintln!("usage: embedder APP.wasm [ARGS...]");
        return std::process::ExitCode::from(2);
    };
    let wasm = match std::fs::read(path) {
        Ok(wasm) => wasm,
        Err(e) => {
            eprintln!("embedder: reading {path}: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let mut config = AppConfig::new("embedded-app");
    config.args = app_args.to_vec();
    match run_once(&wasm, &config) {
        Ok(outcome) => {
            print!("{}", String::from_utf8_lossy(&outcome.stdout));
            eprint!("{}", String::from_utf8_lossy(&outcome.stderr));
            println!(
                "embedder: exit code {}, {} fuel, peak memory {} bytes",
                outcome.exit_code, outcome.fuel_used, outcome.peak_memory
            );
            std::process::ExitCode::from(u8::try_from(outcome.exit_code).unwrap_or(1))
        }
        Err(e) => {
            println!("embedder: the app was stopped: {e}");
            std::process::ExitCode::from(1)
        }
    }
}

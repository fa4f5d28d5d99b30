//! Running apps in a wasmtime setup of the embedder's own, with every limit
//! an [`AppHost`] run has, installed by construction:
//!
//! 1. [`AppHost::app_state`] makes an [`AppState`] from an [`AppConfig`]
//!    (its limits, quota, arguments, output) and the embedder's
//!    `WasiCtxBuilder`; the embedder's store data holds it and implements
//!    [`HasApp`] (and `WasiView` through [`AppState::wasi`]).
//! 2. [`add_to_linker`] adds the store's interfaces (`store`, `names`,
//!    `streams`, `launch` and their `types`) and `wasi:blobstore` to the
//!    embedder's `Linker`, next to its own WASI (`add_to_linker_async`).
//! 3. [`prepare`] installs the limits on the embedder's wasmtime `Store`:
//!    the memory budget (a `ResourceLimiter` over all memories and tables),
//!    fuel and the call hook that charges host work, the handle cap and the
//!    wall clock. An `AppState` whose store was not prepared refuses every
//!    store call and WASI resource with an error naming `prepare`.
//! 4. [`run`] runs the command to its end or its wall clock (also while it
//!    sleeps or waits) and says how it ended.
//!
//! [`AppHost::run`] goes through these same steps.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wasmtime::component::{Linker, ResourceTable};
use wasmtime::{PoolConcurrencyLimitError, Trap};
use wasmtime_wasi::p2::bindings::CommandPre;
use wasmtime_wasi::{I32Exit, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::budget::OutputBudget;
use super::launch::{Family, Launching, Lineage};
use super::limits::{
    AppLimits, Budget, DeadlinePassed, MAX_CHILD_NAMES, MAX_CONCURRENT_APPS, MAX_RANDOM_BYTES,
    charge_host_work, hostcall_fuel, is_count_limit, max_handles_at,
};
use super::output::{AppOutput, Capture, Sink};
use super::{
    AppConfig, AppHost, AppOutcome, AppStoreCtx, Stdio, blobstore, launch_imports, store_imports,
};
use crate::{AppView, Error, Quota};

/// Output kept for [`Stdio::Capture`].
type Captured = Arc<Mutex<Capture>>;

/// How much fuel an app burns between yields to the executor, so that its
/// wall clock can stop it even while it computes (about 0.5 ms of a tight
/// loop). A store call sets the fuel anew, which restarts this count: an
/// app calling the store in a loop is stopped by the call hook, which
/// checks the deadline on every host call.
const YIELD_FUEL: u64 = 10_000_000;

/// Everything one app run owns, kept in its wasmtime store's data: its
/// WASI context and resource table, its view of the artifact store, its
/// memory budget, its place among launches, its output and its limits.
/// Made only by [`AppHost::app_state`], from the run's [`AppConfig`].
pub struct AppState {
    wasi: WasiCtx,
    table: ResourceTable,
    store: AppStoreCtx,
    limiter: Budget,
    lineage: Lineage,
    blobstore: blobstore::BlobstoreCtx,
    run: RunLimits,
}

/// What [`prepare`] installs and [`run`] reports against.
struct RunLimits {
    id: String,
    limits: AppLimits,
    quota: Quota,
    /// The store's largest artifact (for the hostcall fuel).
    store_max: u64,
    max_handles: usize,
    captured: Option<(Captured, Captured)>,
    outputs: (AppOutput, AppOutput),
    /// When the wall clock runs out; set by [`prepare`].
    deadline: Option<Instant>,
}

/// Store data that holds an [`AppState`]: what [`add_to_linker`],
/// [`prepare`] and [`run`] find it by.
pub trait HasApp: Send + 'static {
    /// The app's state.
    fn app(&mut self) -> &mut AppState;
}

impl HasApp for AppState {
    fn app(&mut self) -> &mut AppState {
        self
    }
}

impl AppState {
    /// The WASI context and table, for the embedder's `WasiView`.
    pub fn wasi(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }

    /// What its `launch` imports work on.
    fn launching(&mut self) -> Launching<'_> {
        Launching {
            lineage: &self.lineage,
            memory_left: self.limiter.left() as u64,
            store: &mut self.store,
        }
    }

    /// What its `wasi:blobstore` imports work on.
    fn blobstore(&mut self) -> blobstore::BlobView<'_> {
        blobstore::BlobView {
            table: &mut self.table,
            store: &mut self.store,
            ctx: &self.blobstore,
            memory_left: self.limiter.left() as u64,
        }
    }
}

impl WasiView for AppState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        self.wasi()
    }
}

impl AppHost {
    /// The state of one run of an app under `config`, for a wasmtime store
    /// of the embedder's own: `wasi` is the embedder's WASI setup, to which
    /// the run's arguments (the app's id, then `config.args`), input, output
    /// (capped, and escaped on a terminal) and the random-bytes cap are
    /// added. Then [`prepare`] the store that holds it.
    pub fn app_state(&self, config: &AppConfig, wasi: WasiCtxBuilder) -> Result<AppState, Error> {
        let view = self.store.app(&config.id, config.quota)?;
        Ok(self.state_in(config, wasi, view, 0, Family::new()))
    }

    /// The state of a run as `view`'s owner, `depth` launches deep in `family`.
    pub(super) fn state_in(
        &self,
        config: &AppConfig,
        mut wasi: WasiCtxBuilder,
        mut view: AppView,
        depth: u32,
        family: Arc<Family>,
    ) -> AppState {
        for hash in &config.grants {
            view.grant(*hash);
        }
        wasi.arg(&config.id)
            .args(&config.args)
            .max_random_size(MAX_RANDOM_BYTES);
        if !config.stdin.is_empty() {
            wasi.stdin(wasmtime_wasi::p2::pipe::MemoryInputPipe::new(
                config.stdin.clone(),
            ));
        }
        let mut store_ctx = AppStoreCtx::new(view);
        store_ctx.work.unprepared = true;
        if depth > 0 {
            store_ctx.max_names = Some(MAX_CHILD_NAMES);
        }
        let budget = OutputBudget::new(config.limits.max_output);
        let limiter = Budget::new(&config.limits);
        let account = limiter.account();
        let captured = (config.stdio == Stdio::Capture)
            .then(|| (Capture::new(account.hold()), Capture::new(account.hold())));
        let output = |sink: Sink, terminal: bool| AppOutput::new(sink, terminal, budget.clone());
        let (stdout, stderr) = match &captured {
            Some((out, err)) => (
                output(Sink::Memory(out.clone()), false),
                output(Sink::Memory(err.clone()), false),
            ),
            None => (
                output(Sink::Stdout, std::io::stdout().is_terminal()),
                output(Sink::Stderr, std::io::stderr().is_terminal()),
            ),
        };
        wasi.stdout(stdout.clone()).stderr(stderr.clone());
        store_ctx.memory = account.clone();
        // No room for a WASI resource until the store is prepared.
        let mut table = ResourceTable::new();
        table.set_max_capacity(0);
        AppState {
            wasi: wasi.build(),
            table,
            store: store_ctx,
            limiter,
            lineage: Lineage {
                host: self.clone(),
                allowed: config.allow_launch,
                depth,
                output: budget,
                limits: config.limits,
                family,
            },
            blobstore: blobstore::BlobstoreCtx::default(),
            run: RunLimits {
                id: config.id.clone(),
                limits: config.limits,
                quota: config.quota,
                store_max: self.store.max_artifact_bytes(),
                max_handles: max_handles_at(depth),
                captured,
                outputs: (stdout, stderr),
                deadline: None,
            },
        }
    }
}

/// Adds the store's interfaces (`store`, `names`, `streams`, `launch`, and
/// their `types`) and `wasi:blobstore` to `linker`, served by the
/// [`AppState`] in each store's data. The embedder adds WASI itself
/// (`wasmtime_wasi::p2::add_to_linker_async`), over [`AppState::wasi`].
pub fn add_to_linker<T: HasApp>(linker: &mut Linker<T>) -> Result<(), Error> {
    store_imports::add_app_store_to_linker(linker, |t: &mut T| &mut t.app().store)
        .and_then(|()| {
            launch_imports::add_launch_to_linker(linker, |t: &mut T| t.app().launching())
        })
        .and_then(|()| blobstore::add_to_linker(linker, |t: &mut T| t.app().blobstore()))
        .map_err(|e| Error::InvalidApp(format!("linking the store's imports: {e:#}")))
}

/// Installs every limit of the [`AppState`] in `store`'s data on `store`:
/// its memory budget as the resource limiter (all memories and tables, and
/// what the host holds for the app), its fuel and the call hook that
/// charges store calls in fuel and stops the app at its wall clock, the
/// fuel one call may hand the host, the handle cap, and the wall clock,
/// which starts now. The engine must consume fuel
/// (`Config::consume_fuel(true)`); calls into the store are then async.
pub fn prepare<T: HasApp>(store: &mut wasmtime::Store<T>) -> Result<(), Error> {
    let not_set_up = |what: &str, e: wasmtime::Error| {
        Error::InvalidApp(format!("the engine is not set up for apps: {what} ({e})"))
    };
    let app = store.data_mut().app();
    if !app.store.work.unprepared {
        return Err(Error::InvalidApp(
            "the app's store is already prepared".into(),
        ));
    }
    let (limits, quota, store_max) = (app.run.limits, app.run.quota, app.run.store_max);
    let max_handles = app.run.max_handles;
    store
        .set_fuel(limits.fuel)
        .map_err(|e| not_set_up("it needs Config::consume_fuel(true)", e))?;
    store
        .fuel_async_yield_interval(Some(YIELD_FUEL))
        .map_err(|e| not_set_up("it needs Config::consume_fuel(true)", e))?;
    store.limiter(|t| &mut t.app().limiter);
    store.call_hook(|cx, hook| charge_host_work(cx, hook, |t: &mut T| &mut t.app().store));
    store.set_hostcall_fuel(hostcall_fuel(&quota, store_max));
    store.set_max_component_handles(max_handles);
    let app = store.data_mut().app();
    // A WASI resource may take more than one entry (a clock's pollable
    // takes two: the deadline and the pollable on it); the handles are
    // what is capped.
    app.table.set_max_capacity(4 * max_handles);
    let deadline = Instant::now() + limits.wall_time;
    app.run.deadline = Some(deadline);
    app.store.work.deadline = Some(deadline);
    app.store.work.unprepared = false;
    Ok(())
}

/// Instantiates `pre` in the prepared `store` and runs it until it exits,
/// fails, or its wall clock runs out. An app that exits non-zero is an
/// [`AppOutcome`]; one that traps, runs out of fuel, memory, time or
/// output is an error. Call it within a tokio runtime (as WASI needs).
pub async fn run<T: HasApp>(
    store: &mut wasmtime::Store<T>,
    pre: &CommandPre<T>,
) -> Result<AppOutcome, Error> {
    run_counted(store, pre).await.0
}

/// As [`run`], also returning the fuel the app used, however it ended.
pub(super) async fn run_counted<T: HasApp>(
    store: &mut wasmtime::Store<T>,
    pre: &CommandPre<T>,
) -> (Result<AppOutcome, Error>, u64) {
    let app = store.data_mut().app();
    let Some(deadline) = app.run.deadline else {
        let e = Error::InvalidApp("the app's store was not prepared (apps::prepare)".into());
        return (Err(e), 0);
    };
    let limit = app.run.limits.wall_time;
    let captured = app.run.captured.take();
    let (stdout, stderr) = app.run.outputs.clone();
    let result = {
        let deadline = tokio::time::Instant::from_std(deadline);
        let run = async {
            let command = pre.instantiate_async(&mut *store).await?;
            command.wasi_cli_run().call_run(&mut *store).await
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
    };
    let fuel_left = store.get_fuel().unwrap_or(0);
    let app = store.data_mut().app();
    let fuel_used = app.run.limits.fuel.saturating_sub(fuel_left);
    let outcome = ended(app, result.ok(), limit).map(|exit_code| {
        let (stdout, stderr) = captured
            .map(|(out, err)| {
                let take = |c: Captured| c.lock().unwrap_or_else(|p| p.into_inner()).take();
                (take(out), take(err))
            })
            .unwrap_or_default();
        AppOutcome {
            exit_code,
            stdout,
            stderr,
            fuel_used,
            peak_memory: app.limiter.account().peak() as u64,
        }
    });
    (outcome, fuel_used)
}

/// The exit code of a run that ended with `result` (`None`: its wall clock
/// of `limit` ran out), or the limit that stopped it.
fn ended(
    app: &AppState,
    result: Option<wasmtime::Result<Result<(), ()>>>,
    limit: Duration,
) -> Result<i32, Error> {
    let id = &app.run.id;
    let limits = &app.run.limits;
    let timed_out = || Error::Timeout {
        app: id.clone(),
        limit,
    };
    let e = match result {
        None => return Err(timed_out()),
        Some(Ok(Ok(()))) => return Ok(0),
        Some(Ok(Err(()))) => return Ok(1),
        Some(Err(e)) => e,
    };
    Err(if let Some(exit) = e.downcast_ref::<I32Exit>() {
        return Ok(exit.0);
    } else if e.downcast_ref::<DeadlinePassed>().is_some() {
        timed_out()
    } else if e.downcast_ref::<PoolConcurrencyLimitError>().is_some() {
        Error::Busy {
            app: id.clone(),
            limit: MAX_CONCURRENT_APPS,
        }
    } else if app.lineage.output.exceeded() {
        Error::OutputLimit {
            app: id.clone(),
            limit: limits.max_output,
        }
    } else if app.limiter.denied() || is_count_limit(&e) {
        Error::OutOfMemory {
            app: id.clone(),
            limit: limits.memory_bytes,
        }
    } else if e.downcast_ref::<Trap>() == Some(&Trap::OutOfFuel) {
        Error::OutOfFuel {
            app: id.clone(),
            fuel: limits.fuel,
        }
    } else {
        Error::AppTrap {
            app: id.clone(),
            message: format!("{e:#}"),
        }
    })
}

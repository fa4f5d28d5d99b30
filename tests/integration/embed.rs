//! The hostile app run through the embedding API, by the example embedder's
//! own code (its `Engine`, `Linker` and WASI): every limit holds as it does
//! under `AppHost::run`.

use std::time::{Duration, Instant};

use artifacts::apps::limits::FUEL_PER_CALL;
use artifacts::apps::{self, AppConfig, AppHost, AppOutcome};
use artifacts::{ArtifactStore, Error};
use wasmtime_wasi::p2::bindings::CommandPre;

#[allow(dead_code)]
#[path = "../../host/examples/embedder.rs"]
mod embedder;

use embedder::Embedder;

const HOSTILE: &[u8] = include_bytes!("../apps/hostile.wasm");

/// The hostile app in `mode` under `config`, through the example embedder.
struct Hostile {
    embedder: Embedder,
    app: CommandPre<embedder::RunData>,
    runtime: tokio::runtime::Runtime,
}

impl Hostile {
    /// One for all the tests here: compiled once.
    fn shared() -> &'static Self {
        static HOSTILE_APP: std::sync::OnceLock<Hostile> = std::sync::OnceLock::new();
        HOSTILE_APP.get_or_init(Self::new)
    }

    fn new() -> Self {
        let embedder = Embedder::new(ArtifactStore::open_memory().unwrap()).unwrap();
        let app = embedder.load(HOSTILE).unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        Self {
            embedder,
            app,
            runtime,
        }
    }

    fn run(&self, config: &AppConfig) -> Result<AppOutcome, Error> {
        self.runtime.block_on(self.embedder.run(&self.app, config))
    }
}

fn config(args: &[&str]) -> AppConfig {
    let mut c = AppConfig::new("hostile");
    c.args = args.iter().map(|a| a.to_string()).collect();
    c
}

fn trap_says(result: Result<AppOutcome, Error>, says: &str) {
    match result {
        Err(Error::AppTrap { message, .. }) => assert!(message.contains(says), "{message}"),
        other => panic!("not a trap saying {says:?}: {other:?}"),
    }
}

#[test]
fn every_limit_holds_for_an_app_in_an_embedders_own_wasmtime_setup() {
    let hostile = Hostile::shared();

    // Memory: all of its memories and tables, one budget.
    let mut c = config(&["memory"]);
    c.limits.memory_bytes = 16 << 20;
    assert_eq!(
        hostile.run(&c).unwrap_err(),
        Error::OutOfMemory {
            app: "hostile".into(),
            limit: 16 << 20
        }
    );

    // Fuel: a loop runs out.
    let mut c = config(&["loop"]);
    c.limits.fuel = 100_000_000;
    assert_eq!(
        hostile.run(&c).unwrap_err(),
        Error::OutOfFuel {
            app: "hostile".into(),
            fuel: 100_000_000
        }
    );

    // Host work: its 56 refused store calls are charged, exactly as an
    // `AppHost` run charges them.
    let c = config(&["invalid-hashes"]);
    let out = hostile.run(&c).unwrap();
    assert_eq!(out.exit_code, 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.fuel_used >= 56 * FUEL_PER_CALL, "{}", out.fuel_used);
    let host = AppHost::new(ArtifactStore::open_memory().unwrap()).unwrap();
    let by_host = host.run(&host.load_file(HOSTILE).unwrap(), &c).unwrap();
    assert_eq!(out.fuel_used, by_host.fuel_used);

    // Handles: a few are fine, more than the cap trap.
    let out = hostile.run(&config(&["handles", "100"])).unwrap();
    assert_eq!(out.stdout, b"kept 100 handles\n");
    let over = (apps::limits::MAX_HANDLES + 100).to_string();
    trap_says(
        hostile.run(&config(&["handles", &over])),
        "handle limit exceeded",
    );

    // Random bytes: at most the cap a call.
    let most = apps::limits::MAX_RANDOM_BYTES.to_string();
    let out = hostile.run(&config(&["random", &most, "2"])).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("got {} random bytes\n", 2 * apps::limits::MAX_RANDOM_BYTES)
    );
    let over = (apps::limits::MAX_RANDOM_BYTES + 1).to_string();
    trap_says(
        hostile.run(&config(&["random", &over, "1"])),
        "exceeds limit",
    );

    // Wall clock: sleeping and computing are both stopped at the limit.
    let limit = Duration::from_millis(500);
    for mode in [&["sleep", "3600"][..], &["loop"]] {
        let mut c = config(mode);
        c.limits.wall_time = limit;
        c.limits.fuel = u64::MAX / 2;
        let started = Instant::now();
        let err = hostile.run(&c).unwrap_err();
        let took = started.elapsed();
        assert_eq!(
            err,
            Error::Timeout {
                app: "hostile".into(),
                limit
            },
            "{mode:?}"
        );
        assert!(took < Duration::from_secs(2), "{mode:?} took {took:?}");
    }

    // Output: the limit exactly is fine, one byte more is not.
    let mut c = config(&["flood", "1048576"]);
    c.limits.max_output = 1 << 20;
    let out = hostile.run(&c).unwrap();
    assert_eq!(out.stdout.len() + out.stderr.len(), 1 << 20);
    let mut c = config(&["flood", "1048577"]);
    c.limits.max_output = 1 << 20;
    assert_eq!(
        hostile.run(&c).unwrap_err(),
        Error::OutputLimit {
            app: "hostile".into(),
            limit: 1 << 20
        }
    );
}

/// A store that was not prepared runs nothing: `apps::run` refuses it, and
/// the app's first store call fails naming `apps::prepare`; an engine
/// without fuel is refused with what it lacks.
#[test]
fn an_unprepared_store_or_an_engine_without_fuel_is_refused_clearly() {
    let hostile = Hostile::shared();
    let embedder = &hostile.embedder;
    let c = config(&["invalid-hashes"]);
    let unprepared = |engine: &wasmtime::Engine| {
        let data = embedder::RunData {
            label: "unprepared".into(),
            app: (embedder.host())
                .app_state(&c, wasmtime_wasi::WasiCtxBuilder::new())
                .unwrap(),
        };
        wasmtime::Store::new(engine, data)
    };
    let mut store = unprepared(embedder.engine());
    let err = (hostile.runtime)
        .block_on(apps::run(&mut store, &hostile.app))
        .unwrap_err();
    assert!(err.to_string().contains("apps::prepare"), "{err}");

    // Given fuel by hand, as an embedder that forgot `prepare` might.
    let mut store = unprepared(embedder.engine());
    store.set_fuel(1_000_000_000).unwrap();
    let err = (hostile.runtime)
        .block_on(async {
            let command = hostile.app.instantiate_async(&mut store).await?;
            command.wasi_cli_run().call_run(&mut store).await
        })
        .unwrap_err();
    assert!(format!("{err:#}").contains("apps::prepare"), "{err:#}");

    let mut store = unprepared(&wasmtime::Engine::default());
    let err = apps::prepare(&mut store).unwrap_err();
    assert!(err.to_string().contains("consume_fuel(true)"), "{err}");
}

//! Starting up: compiling or loading the core, opening stores, apps.

use std::hint::black_box;
use std::time::{Duration, Instant};

use artifacts::ArtifactStore;
use artifacts::apps::{AppConfig, AppHost};

use super::measure::time;

/// `--first-open`: what a process that has not touched the store yet
/// spends opening one (the core compiled on the way), printed in ms.
pub fn first_open_child() {
    let started = Instant::now();
    let store = ArtifactStore::open_memory().unwrap();
    let opened = started.elapsed();
    black_box(store.count().unwrap());
    println!("{}", opened.as_secs_f64() * 1e3);
}

/// The first open, in fresh processes (this benchmark run as a child): the
/// median of `runs`, in ms.
fn first_open_in_fresh_processes(runs: usize) -> f64 {
    let mut each: Vec<f64> = (0..runs)
        .map(|_| {
            let out = std::process::Command::new(std::env::current_exe().unwrap())
                .arg("--first-open")
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
        })
        .collect();
    each.sort_by(f64::total_cmp);
    each[each.len() / 2]
}

/// The core: first open in a fresh process (compiles), compile from
/// scratch, load precompiled, open again.
pub fn core(budget: Duration) {
    println!("\nStarting up:\n");
    // Before this process compiles anything itself: the children compile
    // the core each, with nothing warm.
    let first_open = first_open_in_fresh_processes(5);
    let _ = ArtifactStore::open_memory().unwrap();
    let compile_core = Instant::now();
    let engine = wasmtime::Engine::default();
    let core = wasmtime::component::Component::new(&engine, artifacts::CORE_COMPONENT).unwrap();
    let compile_core = compile_core.elapsed();
    let serialized = core.serialize().unwrap();
    let deserialize = Instant::now();
    // SAFETY: bytes this process serialized a moment ago.
    #[allow(unsafe_code)]
    let _ = unsafe { wasmtime::component::Component::deserialize(&engine, &serialized) }.unwrap();
    let deserialize = deserialize.elapsed();
    let open_again = time(budget, 10, |_| {
        black_box(ArtifactStore::open_memory().unwrap());
    });
    println!("| what | time |");
    println!("|---|---|");
    println!(
        "| first open in a fresh process (compiles the core; median of 5 processes) | {first_open:.1} ms |"
    );
    println!(
        "| compile the core component from scratch (in a process that did once already) | {:.1} ms |",
        compile_core.as_secs_f64() * 1e3
    );
    println!(
        "| load the core from its precompiled form | {:.2} ms |",
        deserialize.as_secs_f64() * 1e3
    );
    println!(
        "| open another store in the same process | {:.3} ms |",
        open_again * 1e3
    );
}

/// App start: cold (compile) and warm (cached, pre-instantiated).
pub fn app_start(budget: Duration) {
    let plugin = include_bytes!("../../../tests/apps/plugin.wasm");
    let host = AppHost::new(ArtifactStore::open_memory().unwrap()).unwrap();
    let cold = Instant::now();
    let app = host.load_file(plugin).unwrap();
    let cold = cold.elapsed();
    let config = AppConfig::new("bench");
    let warm_load = time(budget, 10, |_| {
        black_box(host.load_file(plugin).unwrap());
    });
    let mut each = Vec::new();
    let run = time(budget, 10, |_| {
        let started = Instant::now();
        assert_eq!(host.run(&app, &config).unwrap().exit_code, 0);
        each.push(started.elapsed());
    });
    each.sort();
    let (fastest, median) = (each[0], each[each.len() / 2]);
    println!(
        "| app load, cold (compile the plugin component) | {:.1} ms |",
        cold.as_secs_f64() * 1e3
    );
    println!(
        "| app load, warm (cached InstancePre) | {:.3} ms |",
        warm_load * 1e3
    );
    println!(
        "| app run, warm: instantiate + run the plugin (it puts and gets a config) | {:.3} ms |",
        run * 1e3
    );
    if std::env::args().any(|a| a == "--app-start") {
        // The mean above counts every preemption on a busy machine; these do not.
        println!(
            "| app run, warm: median, fastest of {} | {:.3} ms, {:.3} ms |",
            each.len(),
            median.as_secs_f64() * 1e3,
            fastest.as_secs_f64() * 1e3
        );
    }
}

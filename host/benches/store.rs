//! `cargo bench -p artifacts --bench store`: this store against a native
//! Rust baseline doing the same work, in the same process, with ratios.
//!
//! Native memory baseline: `blake3::hash` and a copy into a `DashMap` (put),
//! a copy out and `blake3::hash` to verify (get). Native file baseline: the
//! same durability work as the file backend (temp file, fsync, rename,
//! directory fsync for the blob and for a small record), and read + hash.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::hint::black_box;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use artifacts::apps::{AppConfig, AppHost};
use artifacts::{ArtifactStore, ArtifactType};
use dashmap::DashMap;
use object_store::ObjectStoreExt;

/// Starts the Garage server the S3 rows run against (shared with the tests).
#[path = "../../tests/integration/garage.rs"]
mod garage;

/// Runs `f` until `budget` is spent (at least `min` times); returns seconds per call.
fn time(budget: Duration, min: u32, mut f: impl FnMut(u64)) -> f64 {
    f(0); // warm up
    let start = Instant::now();
    let mut n = 0u64;
    while n < u64::from(min) || start.elapsed() < budget {
        n += 1;
        f(n);
    }
    start.elapsed().as_secs_f64() / n as f64
}

fn content(len: usize, salt: u64) -> Vec<u8> {
    let mut v: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    if let Some(first) = v.first_mut() {
        *first = salt as u8;
    }
    v.extend_from_slice(&salt.to_le_bytes());
    v
}

fn native_file_put(dir: &Path, data: &[u8]) {
    let hash = blake3::hash(data).to_hex();
    for (kind, bytes) in [("blobs", data), ("records", &[0u8; 50][..])] {
        let shard = dir.join(kind).join(&hash[..2]);
        std::fs::create_dir_all(&shard).unwrap();
        let tmp = dir.join("tmp").join(format!("{hash}.tmp"));
        let mut f = std::fs::File::create(&tmp).unwrap();
        f.write_all(bytes).unwrap();
        f.sync_all().unwrap();
        std::fs::rename(&tmp, shard.join(hash.as_str())).unwrap();
        std::fs::File::open(&shard).unwrap().sync_all().unwrap();
    }
}

fn native_file_get(dir: &Path, hash: &str) -> Vec<u8> {
    let data = std::fs::read(dir.join("blobs").join(&hash[..2]).join(hash)).unwrap();
    assert_eq!(blake3::hash(&data).to_hex().as_str(), hash);
    data
}

fn mbps(bytes: usize, secs: f64) -> f64 {
    bytes as f64 / secs / 1e6
}

fn row(what: &str, bytes: usize, native: f64, ours: f64) {
    println!(
        "| {what:<28} | {:>10.1} | {:>10.1} | {:>5.2} |",
        mbps(bytes, native),
        mbps(bytes, ours),
        native / ours
    );
}

/// `--stream-child get DIR HASH FILE` streams one artifact to FILE;
/// `--stream-child put DIR FILE` streams FILE into the store. Either prints
/// the seconds it took and its peak resident memory above where it started.
fn stream_child(args: &[String]) {
    let (mode, dir) = match args {
        [mode, dir, ..] => (mode.as_str(), dir),
        _ => panic!("--stream-child get|put DIR …"),
    };
    let store = ArtifactStore::builder()
        .max_artifact_bytes(1 << 30)
        .open_dir(dir)
        .unwrap();
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let before = peak_rss();
    let start = Instant::now();
    match (mode, args.get(2..)) {
        ("get", Some([hash, file])) => {
            let mut out = std::io::BufWriter::new(std::fs::File::create(file).unwrap());
            store.get_to(&hash.parse().unwrap(), &mut out).unwrap();
        }
        ("put", Some([file])) => {
            let mut input = std::fs::File::open(file).unwrap();
            store.put_from(&mut input, ArtifactType::Generic).unwrap();
        }
        _ => panic!("--stream-child get DIR HASH FILE | put DIR FILE"),
    }
    println!(
        "{} {}",
        start.elapsed().as_secs_f64(),
        peak_rss().saturating_sub(before)
    );
}

/// Runs `--stream-child ARGS` in a fresh process (so that nothing this one
/// has allocated hides or inflates its peak); returns its seconds and peak.
fn in_child(args: &[&std::ffi::OsStr]) -> (f64, u64) {
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .arg("--stream-child")
        .args(args)
        .output()
        .unwrap();
    assert!(
        child.status.success(),
        "{}",
        String::from_utf8_lossy(&child.stderr)
    );
    let report = String::from_utf8_lossy(&child.stdout).to_string();
    let mut fields = report.split_whitespace();
    let secs = fields.next().and_then(|f| f.parse().ok()).unwrap();
    let peak = fields.next().and_then(|f| f.parse().ok()).unwrap();
    (secs, peak)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--stream-child") {
        return stream_child(&args[at + 1..]);
    }
    // `--peak`: only the 1 GiB peak-memory rows.
    if args.iter().any(|a| a == "--peak") {
        return peak_memory();
    }
    // `--app-start`: only the app start rows.
    if args.iter().any(|a| a == "--app-start") {
        return app_start(Duration::from_millis(2000));
    }
    let quick = std::env::args().any(|a| a == "--quick");
    let budget = Duration::from_millis(if quick { 100 } else { 700 });
    println!(
        "Throughput in MB/s; ratio = this store / native (higher is better, 1.00 = parity).\n"
    );
    println!("| operation                    | native     | this store | ratio |");
    println!("|------------------------------|------------|------------|-------|");

    // Memory backend.
    let store = ArtifactStore::builder()
        .max_artifact_bytes(64 << 20)
        .open_memory()
        .unwrap();
    for (label, len) in [
        ("1 KiB", 1 << 10),
        ("64 KiB", 64 << 10),
        ("1 MiB", 1 << 20),
        ("16 MiB", 16 << 20),
    ] {
        let map: DashMap<blake3::Hash, Vec<u8>> = DashMap::new();
        let data = content(len, 0);
        let native_put = time(budget, 3, |i| {
            let d = if len <= 64 << 10 {
                content(len, i)
            } else {
                data.clone()
            };
            let h = blake3::hash(&d);
            map.insert(h, d.to_vec());
        });
        let ours_put = time(budget, 3, |i| {
            let d = if len <= 64 << 10 {
                content(len, i)
            } else {
                data.clone()
            };
            black_box(store.put(&d, ArtifactType::Generic).unwrap());
        });
        // Data generation is in both loops alike; hashing a fresh buffer each time for small sizes.
        row(&format!("memory put {label}"), len, native_put, ours_put);
        let h = blake3::hash(&data);
        map.insert(h, data.clone());
        let hash = store.put(&data, ArtifactType::Generic).unwrap();
        let native_get = time(budget, 3, |_| {
            let d = map.get(&h).unwrap().clone();
            assert_eq!(blake3::hash(&d), h);
            black_box(d);
        });
        let ours_get = time(budget, 3, |_| {
            black_box(store.get(&hash).unwrap());
        });
        row(&format!("memory get {label}"), len, native_get, ours_get);
    }

    // File backend.
    let dir = tempfile::tempdir().unwrap();
    let native_dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(native_dir.path().join("tmp")).unwrap();
    let fstore = ArtifactStore::builder()
        .max_artifact_bytes(64 << 20)
        .open_dir(dir.path())
        .unwrap();
    for (label, len) in [
        ("1 KiB", 1 << 10),
        ("64 KiB", 64 << 10),
        ("1 MiB", 1 << 20),
        ("16 MiB", 16 << 20),
    ] {
        let native_put = time(budget, 3, |i| {
            native_file_put(native_dir.path(), &content(len, i))
        });
        let ours_put = time(budget, 3, |i| {
            black_box(fstore.put(&content(len, i), ArtifactType::Generic).unwrap());
        });
        row(&format!("file put {label}"), len, native_put, ours_put);
        let data = content(len, 0);
        native_file_put(native_dir.path(), &data);
        let hash = fstore.put(&data, ArtifactType::Generic).unwrap();
        let hex = blake3::hash(&data).to_hex();
        let native_get = time(budget, 3, |_| {
            black_box(native_file_get(native_dir.path(), &hex));
        });
        let ours_get = time(budget, 3, |_| {
            black_box(fstore.get(&hash).unwrap());
        });
        row(&format!("file get {label}"), len, native_get, ours_get);
    }

    s3(budget);

    // Small-artifact operations per second.
    println!("\nSmall artifacts (1 KiB), memory backend, operations per second:\n");
    println!("| operation | native     | this store | ratio |");
    println!("|-----------|------------|------------|-------|");
    let map: DashMap<blake3::Hash, (Vec<u8>, u64)> = DashMap::new();
    let data = content(1024, 0);
    let h = blake3::hash(&data);
    map.insert(h, (data.clone(), 1));
    let hash = store.put(&data, ArtifactType::Generic).unwrap();
    let ops: [(&str, f64, f64); 3] = [
        (
            "put",
            time(budget, 100, |i| {
                let d = content(1024, i);
                map.insert(blake3::hash(&d), (d, 1));
            }),
            time(budget, 100, |i| {
                black_box(store.put(&content(1024, i), ArtifactType::Generic).unwrap());
            }),
        ),
        (
            "get",
            time(budget, 100, |_| {
                let d = map.get(&h).unwrap().0.clone();
                assert_eq!(blake3::hash(&d), h);
            }),
            time(budget, 100, |_| {
                black_box(store.get(&hash).unwrap());
            }),
        ),
        (
            "stat",
            time(budget, 100, |_| {
                black_box(map.get(&h).unwrap().1);
            }),
            time(budget, 100, |_| {
                black_box(store.stat(&hash).unwrap());
            }),
        ),
    ];
    for (op, native, ours) in ops {
        println!(
            "| {op:<9} | {:>10.0} | {:>10.0} | {:>5.2} |",
            1.0 / native,
            1.0 / ours,
            native / ours
        );
    }

    // Opening a store (the core is compiled once per process; later opens reuse it).
    println!("\nStarting up:\n");
    let first_open = Instant::now();
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
        "| first open in a process (compiles the core) | {:.1} ms |",
        first_open.elapsed().as_secs_f64() * 1e3
    );
    println!(
        "| compile the core component from scratch | {:.1} ms |",
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

    app_start(budget);
    peak_memory();
}

/// App start: cold (compile) and warm (cached, pre-instantiated).
fn app_start(budget: Duration) {
    let plugin = include_bytes!("../../tests/apps/plugin.wasm");
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

/// S3 backend on a local one-node Garage server, against a native baseline
/// doing the same requests with the same client (`object_store`): put = hash,
/// PUT the blob, PUT a small record; get = GET the blob and hash it.
fn s3(budget: Duration) {
    let garage = match garage::Garage::start(1) {
        Ok(g) => g,
        Err(reason) => {
            println!("| S3 rows skipped: {reason} |||| ");
            return;
        }
    };
    let config = garage.config(0, "bench-store");
    let store = ArtifactStore::builder()
        .max_artifact_bytes(64 << 20)
        .open_s3(&config)
        .unwrap();
    let native_cfg = garage.config(0, "bench-native");
    let (native, rt) = garage::raw_client(&native_cfg);
    let path = |kind: &str, hex: &str| {
        object_store::path::Path::from(format!("bench-native/{kind}/{}/{hex}", &hex[..2]))
    };
    let native_put = |data: &[u8]| {
        let hex = blake3::hash(data).to_hex();
        rt.block_on(async {
            native
                .put(&path("blobs", &hex), data.to_vec().into())
                .await
                .unwrap();
            native
                .put(&path("records", &hex), vec![0u8; 58].into())
                .await
                .unwrap();
        });
        hex
    };
    for (label, len) in [
        ("1 KiB", 1 << 10),
        ("64 KiB", 64 << 10),
        ("1 MiB", 1 << 20),
        ("16 MiB", 16 << 20),
    ] {
        let native_put_t = time(budget, 3, |i| {
            native_put(&content(len, i));
        });
        let ours_put = time(budget, 3, |i| {
            black_box(store.put(&content(len, i), ArtifactType::Generic).unwrap());
        });
        row(&format!("s3 put {label}"), len, native_put_t, ours_put);
        let data = content(len, 0);
        let hex = native_put(&data);
        let hash = store.put(&data, ArtifactType::Generic).unwrap();
        let native_get = time(budget, 3, |_| {
            let got = rt.block_on(async {
                native
                    .get(&path("blobs", &hex))
                    .await
                    .unwrap()
                    .bytes()
                    .await
                    .unwrap()
            });
            assert_eq!(blake3::hash(&got).to_hex(), hex);
        });
        let ours_get = time(budget, 3, |_| {
            black_box(store.get(&hash).unwrap());
        });
        row(&format!("s3 get {label}"), len, native_get, ours_get);
    }
}

/// The process's peak resident memory so far (VmHWM), in bytes.
fn peak_rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// Peak memory above the baseline for a 1 GiB artifact through the file backend.
fn peak_memory() {
    const GIB: usize = 1 << 30;
    let dir = tempfile::tempdir().unwrap();
    let store = ArtifactStore::builder()
        .max_artifact_bytes(GIB as u64)
        .open_dir(dir.path())
        .unwrap();
    let data = content(GIB - 8, 1);
    let baseline = peak_rss();
    let start = Instant::now();
    let hash = store.put(&data, ArtifactType::Generic).unwrap();
    let put_time = start.elapsed();
    let after_put = peak_rss();
    drop(data);
    // Reset the peak (Linux: "5" clears VmHWM) so the get is measured on its own.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let baseline_get = peak_rss();
    let start = Instant::now();
    let back = store.get(&hash).unwrap();
    let get_time = start.elapsed();
    let after_get = peak_rss();
    assert_eq!(back.len(), GIB);
    drop(back);
    // Streaming, each in a fresh process: get_to a file, then put_from that
    // file into a second store (and the native baseline's put of it).
    let target = dir.path().join("streamed");
    let (stream_time, stream_peak) = in_child(&[
        "get".as_ref(),
        dir.path().as_os_str(),
        hash.to_hex().as_str().as_ref(),
        target.as_os_str(),
    ]);
    assert_eq!(std::fs::metadata(&target).unwrap().len(), GIB as u64);
    let second = tempfile::tempdir().unwrap();
    let (put_stream_time, put_stream_peak) = in_child(&[
        "put".as_ref(),
        second.path().as_os_str(),
        target.as_os_str(),
    ]);
    let again = ArtifactStore::open_dir(second.path()).unwrap();
    assert_eq!(again.stat(&hash).unwrap().size, GIB as u64);
    drop(again);
    let data = std::fs::read(&target).unwrap();
    let native_dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(native_dir.path().join("tmp")).unwrap();
    let start = Instant::now();
    native_file_put(native_dir.path(), &data);
    let native_put_time = start.elapsed();
    drop(data);
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    println!("\nA 1 GiB artifact, file backend (peak resident memory above the 1 GiB input):\n");
    println!("| operation | time | peak memory above baseline |");
    println!("|---|---|---|");
    println!(
        "| put | {:.1} s | {:.0} MiB |",
        put_time.as_secs_f64(),
        mib(after_put.saturating_sub(baseline))
    );
    println!(
        "| get | {:.1} s | {:.0} MiB (including the 1 GiB result) |",
        get_time.as_secs_f64(),
        mib(after_get.saturating_sub(baseline_get))
    );
    println!(
        "| get_to a file (streamed, verified in pieces; a fresh process) | {stream_time:.1} s | {:.0} MiB |",
        mib(stream_peak)
    );
    println!(
        "| put_from a file (streamed, staged in pieces; a fresh process) | {put_stream_time:.1} s | {:.0} MiB |",
        mib(put_stream_peak)
    );
    println!(
        "| native put of the same 1 GiB held in memory (hash, write, sync) | {:.1} s | n/a |",
        native_put_time.as_secs_f64()
    );
}

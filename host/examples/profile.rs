//! A fixed workload to profile (`perf record`, `valgrind --tool=callgrind`):
//! `cargo run --release -p artifacts --example profile -- get|put|stat SIZE ROUNDS`,
//! SIZE in MiB, or with a `k` suffix in KiB (`64k`).
//! Set `ARTIFACTS_PERFMAP=1` so perf can name the core's wasm functions, and
//! `HASH_WORKERS=N` for how many core instances verify one get (default 2).

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use artifacts::{ArtifactStore, ArtifactType};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let op = args.get(1).map_or("get", String::as_str);
    let size_arg = args.get(2).map_or("16", String::as_str);
    let size: usize = match size_arg.strip_suffix('k') {
        Some(kib) => kib.parse::<usize>().unwrap() << 10,
        None => size_arg.parse::<usize>().unwrap() << 20,
    };
    let rounds: u64 = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(50);
    let workers = std::env::var("HASH_WORKERS")
        .ok()
        .and_then(|w| w.parse().ok())
        .unwrap_or(2);
    let store = ArtifactStore::builder()
        .max_artifact_bytes(256 << 20)
        .hash_workers(workers)
        .open_memory()
        .unwrap();
    let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    let hash = store.put(&data, ArtifactType::Generic).unwrap();
    let start = std::time::Instant::now();
    for i in 0..rounds {
        match op {
            "put" => {
                let mut d = data.clone();
                d[0] = i as u8;
                std::hint::black_box(store.put(&d, ArtifactType::Generic).unwrap());
            }
            "stat" => {
                std::hint::black_box(store.stat(&hash).unwrap());
            }
            _ => {
                std::hint::black_box(store.get(&hash).unwrap());
            }
        }
    }
    let per = start.elapsed().as_secs_f64() / rounds as f64;
    println!(
        "{op} {size} bytes: {:.2} us per call, {:.0} MB/s",
        per * 1e6,
        size as f64 / per / 1e6
    );
}

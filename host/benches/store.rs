//! `cargo bench -p artifacts --bench store`: this store against a native
//! Rust baseline doing the same work, in the same process, with ratios.
//!
//! Native memory baseline: `blake3::hash` and a copy into a `DashMap` (put),
//! a copy out and `blake3::hash` to verify (get). Native file baseline: the
//! same durability work as the file backend (temp file, fsync, rename,
//! directory fsync for the blob and for a small record), and read + hash.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::time::Duration;

/// Starts the Garage server the S3 rows run against (shared with the tests).
#[path = "../../tests/integration/garage.rs"]
mod garage;

#[path = "store/cli.rs"]
mod cli;
#[path = "store/measure.rs"]
mod measure;
#[path = "store/peak.rs"]
mod peak;
#[path = "store/range.rs"]
mod range;
#[path = "store/s3.rs"]
mod s3;
#[path = "store/small.rs"]
mod small;
#[path = "store/startup.rs"]
mod startup;
#[path = "store/streamed.rs"]
mod streamed;
#[path = "store/throughput.rs"]
mod throughput;
/// The tests' forwarding wrapper, which the range rows count reads with.
#[path = "../../tests/integration/watched.rs"]
mod watched;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--stream-child") {
        return peak::stream_child(&args[at + 1..]);
    }
    if args.iter().any(|a| a == "--first-open") {
        return startup::first_open_child();
    }
    // `--startup`: only the starting-up rows.
    if args.iter().any(|a| a == "--startup") {
        startup::core(Duration::from_millis(700));
        return startup::app_start(Duration::from_millis(700));
    }
    // `--small`: only the 1 KiB operations per second (and the empty call).
    if args.iter().any(|a| a == "--small") {
        let store = artifacts::ArtifactStore::open_memory().unwrap();
        return small::operations(Duration::from_millis(700), &store);
    }
    // `--cli`: only the whole-process rows.
    if args.iter().any(|a| a == "--cli") {
        return cli::rows();
    }
    // `--peak`: only the 1 GiB peak-memory rows.
    if args.iter().any(|a| a == "--peak") {
        return peak::peak_memory();
    }
    // `--app-start`: only the app start rows.
    if args.iter().any(|a| a == "--app-start") {
        return startup::app_start(Duration::from_millis(2000));
    }
    // `--range`: only the 4 KiB-of-1 GiB verified range rows.
    if args.iter().any(|a| a == "--range") {
        return range::range_rows(Duration::from_millis(2000));
    }
    let quick = std::env::args().any(|a| a == "--quick");
    // `--streamed`: only the 256 MiB upload and download rows.
    if args.iter().any(|a| a == "--streamed") {
        return streamed::rows(Duration::from_millis(700));
    }
    let budget = Duration::from_millis(if quick { 100 } else { 700 });
    println!(
        "Native BLAKE3 here: {}; the core's wasm SIMD: 4 chunks at once.\n",
        measure::native_simd()
    );
    println!(
        "Throughput in MB/s; ratio = this store / native (higher is better, 1.00 = parity).\n"
    );
    println!("| operation                    | native     | this store | ratio |");
    println!("|------------------------------|------------|------------|-------|");

    let store = throughput::memory(budget);
    throughput::file(budget);
    streamed::rows(budget);
    s3::rows(budget);
    small::operations(budget, &store);
    startup::core(budget);
    startup::app_start(budget);
    cli::rows();
    peak::peak_memory();
    range::range_rows(budget);
}

//! Put and verified get of 1 KiB, 1 MiB and 16 MiB: this store (file
//! backend), cacache and iroh-blobs (its file store), and the native
//! baseline (BLAKE3 and a plain file), all in one run on one machine.
//!
//! `cargo run --release` in this directory prints a Markdown table.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use artifacts::{ArtifactStore, ArtifactType};

const SIZES: [(&str, usize); 3] = [("1 KiB", 1 << 10), ("1 MiB", 1 << 20), ("16 MiB", 16 << 20)];

/// Seconds per call of `f`, over at least `min` calls and `budget` (after one warm-up).
fn time(budget: Duration, min: u64, mut f: impl FnMut(u64)) -> f64 {
    f(u64::MAX);
    let start = Instant::now();
    let mut n = 0;
    while n < min || start.elapsed() < budget {
        f(n);
        n += 1;
    }
    start.elapsed().as_secs_f64() / n as f64
}

/// `len` bytes, different for every `salt`.
fn content(len: usize, salt: u64) -> Vec<u8> {
    let mut v: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    v[..8].copy_from_slice(&salt.to_le_bytes());
    v
}

struct Row {
    who: &'static str,
    op: &'static str,
    size: &'static str,
    seconds: f64,
    bytes: usize,
}

fn main() {
    let budget = Duration::from_millis(
        std::env::var("PEERS_BUDGET_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1500),
    );
    let work = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut rows = Vec::new();
    for (label, size) in SIZES {
        let min = if size > 1 << 20 { 5 } else { 50 };
        let fixed = content(size, 0);
        let mut add = |who, op, seconds| {
            rows.push(Row { who, op, size: label, seconds, bytes: size })
        };

        // Native: hash, write a file (no fsync) / read the file, hash, compare.
        let dir = work.path().join(format!("native-{size}"));
        std::fs::create_dir_all(&dir).unwrap();
        add("native (BLAKE3 + a file, no fsync)", "put", time(budget, min, |i| {
            let c = content(size, i);
            let h = blake3::hash(&c);
            std::fs::write(dir.join(h.to_hex().as_str()), &c).unwrap();
        }));
        let h = blake3::hash(&fixed);
        let path = dir.join(h.to_hex().as_str());
        std::fs::write(&path, &fixed).unwrap();
        add("native (BLAKE3 + a file, no fsync)", "get", time(budget, min, |_| {
            let c = std::fs::read(&path).unwrap();
            assert_eq!(blake3::hash(&c), h);
            black_box(c);
        }));

        // This store, file backend: durable puts (fsync), every get verified.
        let store = ArtifactStore::open_dir(work.path().join(format!("artifacts-{size}"))).unwrap();
        add("artifacts (file)", "put", time(budget, min, |i| {
            black_box(store.put(&content(size, i), ArtifactType::Generic).unwrap());
        }));
        let hash = store.put(&fixed, ArtifactType::Generic).unwrap();
        add("artifacts (file)", "get", time(budget, min, |_| {
            black_box(store.get(&hash).unwrap());
        }));

        // cacache: content-addressed by SHA-256 (ssri), reads check integrity.
        let cache = work.path().join(format!("cacache-{size}"));
        add("cacache (write_hash_sync / read_hash_sync)", "put", time(budget, min, |i| {
            black_box(cacache::write_hash_sync(&cache, content(size, i)).unwrap());
        }));
        let sri = cacache::write_hash_sync(&cache, &fixed).unwrap();
        add("cacache (write_hash_sync / read_hash_sync)", "get", time(budget, min, |_| {
            black_box(cacache::read_hash_sync(&cache, &sri).unwrap());
        }));

        // iroh-blobs: BLAKE3 with a bao outboard, its file store.
        let blobs_dir = work.path().join(format!("iroh-{size}"));
        let fs = runtime
            .block_on(iroh_blobs::store::fs::FsStore::load(&blobs_dir))
            .unwrap();
        add("iroh-blobs (FsStore add_bytes / get_bytes)", "put", time(budget, min, |i| {
            let c = bytes::Bytes::from(content(size, i));
            black_box(runtime.block_on(async { fs.blobs().add_bytes(c).await }).unwrap());
        }));
        let tag = runtime
            .block_on(async { fs.blobs().add_bytes(fixed.clone()).await })
            .unwrap();
        add("iroh-blobs (FsStore add_bytes / get_bytes)", "get", time(budget, min, |_| {
            black_box(runtime.block_on(async { fs.blobs().get_bytes(tag.hash).await }).unwrap());
        }));
        runtime.block_on(fs.shutdown()).unwrap();
        let _ = Path::new(&blobs_dir);
    }
    println!("| store | op | size | MB/s | ratio to native |");
    println!("|---|---|---|---|---|");
    for r in &rows {
        let native = rows
            .iter()
            .find(|n| n.who.starts_with("native") && n.op == r.op && n.size == r.size)
            .map_or(f64::NAN, |n| n.seconds);
        println!(
            "| {} | {} | {} | {:.1} | {:.2} |",
            r.who,
            r.op,
            r.size,
            r.bytes as f64 / r.seconds / 1e6,
            native / r.seconds
        );
    }
}

//! `--range`: a 4 KiB verified range of a 1 GiB artifact (proven through
//! its outboard) against a full verified get, with the bytes each reads
//! from the backend, on the file and memory backends.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use artifacts::backend::Backend;
use artifacts::{ArtifactStore, ArtifactType, FileBackend, Hash, MemoryBackend};

use super::measure::{content, time};
use super::watched::{Watch, Watched};

const GIB: usize = 1 << 30;
const RANGE: u64 = 4096;

/// Counts the blob and outboard bytes read through a [`Watched`] backend.
#[derive(Default)]
struct ReadBytes(AtomicU64);

impl Watch for ReadBytes {
    fn blob_read(&self, _offset: Option<u64>, bytes: u64) {
        self.0.fetch_add(bytes, Ordering::Relaxed);
    }
    fn outboard_read(&self, _ranges: &[(u64, u64)], bytes: u64) {
        self.0.fetch_add(bytes, Ordering::Relaxed);
    }
}

/// Times a 4 KiB range at spread-out offsets, and a full verified get, of
/// the 1 GiB artifact `hash` behind `backend`; prints their rows.
fn rows<B: Backend>(name: &str, backend: B, hash: &Hash, budget: Duration) {
    let counted = Watched::new(Box::new(backend) as Box<dyn Backend>, ReadBytes::default());
    let store = ArtifactStore::builder()
        .max_artifact_bytes(GIB as u64)
        .open(counted.clone())
        .unwrap();
    let offset = |i: u64| (i.wrapping_mul(0x9e37_79b9_7f4a_7c15) % (GIB as u64 - RANGE)) & !7;
    let range_secs = time(budget, 100, |i| {
        let at = offset(i);
        black_box(store.get_range(hash, at..at + RANGE).unwrap());
    });
    counted.watch.0.store(0, Ordering::Relaxed);
    let reads = 100u64;
    for i in 0..reads {
        let at = offset(i + 1_000_000);
        black_box(store.get_range(hash, at..at + RANGE).unwrap());
    }
    let range_bytes = counted.watch.0.load(Ordering::Relaxed) / reads;
    counted.watch.0.store(0, Ordering::Relaxed);
    let start = Instant::now();
    let all = store.get(hash).unwrap();
    let get_secs = start.elapsed().as_secs_f64();
    assert_eq!(all.len(), GIB);
    drop(all);
    let get_bytes = counted.watch.0.load(Ordering::Relaxed);
    println!(
        "| {name} get_range 4 KiB of 1 GiB (proven through the outboard) | {:.1} µs | {:.1} KiB |",
        range_secs * 1e6,
        range_bytes as f64 / 1024.0
    );
    println!(
        "| {name} get 1 GiB (whole, verified) | {get_secs:.2} s | {:.0} MiB |",
        get_bytes as f64 / (1 << 20) as f64
    );
}

/// The `--range` rows: file backend, then memory.
pub fn range_rows(budget: Duration) {
    println!("A 4 KiB verified range of a 1 GiB artifact, against a full verified get:\n");
    println!("| operation | time | bytes read from the backend |");
    println!("|---|---|---|");
    let data = content(GIB - 8, 3);
    let dir = tempfile::tempdir().unwrap();
    let hash = ArtifactStore::builder()
        .max_artifact_bytes(GIB as u64)
        .open_dir(dir.path())
        .unwrap()
        .put(&data, ArtifactType::Generic)
        .unwrap();
    // Native: a 4 KiB pread of the same file, unverified.
    let file = FileBackend::open(dir.path()).unwrap();
    let path = file.blob_path(&hash);
    let native = time(budget, 100, |i| {
        use std::os::unix::fs::FileExt;
        let f = std::fs::File::open(&path).unwrap();
        let mut buf = vec![0u8; RANGE as usize];
        f.read_exact_at(&mut buf, (i * 7919 * 4096) % (GIB as u64 - RANGE))
            .unwrap();
        black_box(buf);
    });
    rows("file", file, &hash, budget);
    println!(
        "| file native 4 KiB read (open + pread, unverified) | {:.1} µs | 4.0 KiB |",
        native * 1e6
    );
    drop(dir);
    let memory = MemoryBackend::new();
    let hash = ArtifactStore::builder()
        .max_artifact_bytes(GIB as u64)
        .open(memory.clone())
        .unwrap()
        .put(&data, ArtifactType::Generic)
        .unwrap();
    drop(data);
    rows("memory", memory, &hash, budget);
}

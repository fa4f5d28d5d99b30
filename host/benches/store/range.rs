//! `--range`: a 4 KiB verified range of a 1 GiB artifact (proven through
//! its outboard) against a full verified get, with the bytes each reads
//! from the backend, on the file and memory backends.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use artifacts::{
    ArtifactStore, ArtifactType, Backend, BackendResult, BlobInfo, FileBackend, Hash, Listed,
    MemoryBackend, Space, Swap, SwapOutcome, VersionedRecord,
};

use super::measure::{content, time};

const GIB: usize = 1 << 30;
const RANGE: u64 = 4096;

/// A backend that counts the blob and outboard bytes read through it.
struct Counted<B> {
    inner: Arc<B>,
    bytes: Arc<AtomicU64>,
}

impl<B> Clone for Counted<B> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            bytes: self.bytes.clone(),
        }
    }
}

impl<B: Backend> Counted<B> {
    fn count(&self, n: u64) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
    }
}

impl<B: Backend> Backend for Counted<B> {
    fn write_blob(&self, key: &Hash, data: &[u8]) -> BackendResult<()> {
        self.inner.write_blob(key, data)
    }
    fn read_blob(&self, key: &Hash) -> BackendResult<Option<Vec<u8>>> {
        let blob = self.inner.read_blob(key)?;
        self.count(blob.as_ref().map_or(0, |b| b.len() as u64));
        Ok(blob)
    }
    fn read_blob_range(&self, key: &Hash, offset: u64, len: u64) -> BackendResult<Option<Vec<u8>>> {
        let part = self.inner.read_blob_range(key, offset, len)?;
        self.count(part.as_ref().map_or(0, |b| b.len() as u64));
        Ok(part)
    }
    fn blob_size(&self, key: &Hash) -> BackendResult<Option<u64>> {
        self.inner.blob_size(key)
    }
    fn size_hint(&self, key: &Hash) -> Option<u64> {
        self.inner.size_hint(key)
    }
    fn delete_blob(&self, key: &Hash, v: Option<u64>) -> BackendResult<bool> {
        self.inner.delete_blob(key, v)
    }
    fn list_blobs(&self, after: Option<&Hash>, limit: u32) -> BackendResult<Vec<BlobInfo>> {
        self.inner.list_blobs(after, limit)
    }
    fn read_record(&self, space: Space, key: &Hash) -> BackendResult<Option<VersionedRecord>> {
        self.inner.read_record(space, key)
    }
    fn swap_record(&self, space: Space, key: &Hash, swap: Swap<'_>) -> BackendResult<SwapOutcome> {
        self.inner.swap_record(space, key, swap)
    }
    fn list_records(&self, space: Space, after: Option<&Hash>, limit: u32) -> Listed {
        self.inner.list_records(space, after, limit)
    }
    fn list_owners(&self, after: Option<&Hash>, limit: u32) -> BackendResult<Vec<Hash>> {
        self.inner.list_owners(after, limit)
    }
    fn write_outboard(&self, key: &Hash, data: &[u8]) -> BackendResult<()> {
        self.inner.write_outboard(key, data)
    }
    fn read_outboard(
        &self,
        key: &Hash,
        ranges: &[(u64, u64)],
    ) -> BackendResult<Option<Vec<Vec<u8>>>> {
        let parts = self.inner.read_outboard(key, ranges)?;
        self.count(
            parts
                .as_ref()
                .map_or(0, |p| p.iter().map(|b| b.len() as u64).sum()),
        );
        Ok(parts)
    }
    fn outboard_size(&self, key: &Hash) -> BackendResult<Option<u64>> {
        self.inner.outboard_size(key)
    }
}

/// Times a 4 KiB range at spread-out offsets, and a full verified get, of
/// the 1 GiB artifact `hash` behind `backend`; prints their rows.
fn rows<B: Backend>(name: &str, backend: B, hash: &Hash, budget: Duration) {
    let counted = Counted {
        inner: Arc::new(backend),
        bytes: Arc::default(),
    };
    let store = ArtifactStore::builder()
        .max_artifact_bytes(GIB as u64)
        .open(counted.clone())
        .unwrap();
    let offset = |i: u64| (i.wrapping_mul(0x9e37_79b9_7f4a_7c15) % (GIB as u64 - RANGE)) & !7;
    let range_secs = time(budget, 100, |i| {
        let at = offset(i);
        black_box(store.get_range(hash, at..at + RANGE).unwrap());
    });
    counted.bytes.store(0, Ordering::Relaxed);
    let reads = 100u64;
    for i in 0..reads {
        let at = offset(i + 1_000_000);
        black_box(store.get_range(hash, at..at + RANGE).unwrap());
    }
    let range_bytes = counted.bytes.load(Ordering::Relaxed) / reads;
    counted.bytes.store(0, Ordering::Relaxed);
    let start = Instant::now();
    let all = store.get(hash).unwrap();
    let get_secs = start.elapsed().as_secs_f64();
    assert_eq!(all.len(), GIB);
    drop(all);
    let get_bytes = counted.bytes.load(Ordering::Relaxed);
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

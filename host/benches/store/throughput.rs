//! Put and get throughput, memory and file backends, against native
//! baselines doing the same work.

use std::hint::black_box;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use artifacts::{ArtifactStore, ArtifactType};
use dashmap::DashMap;

use super::measure::{SIZES, content, row, time};

pub fn native_file_put(dir: &Path, data: &[u8]) {
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

/// Put and get of 1 KiB to 16 MiB, memory backend; returns the store.
pub fn memory(budget: Duration) -> ArtifactStore {
    // Memory backend.
    let store = ArtifactStore::builder()
        .max_artifact_bytes(64 << 20)
        .open_memory()
        .unwrap();
    for (label, len) in SIZES {
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
    store
}

/// Put and get of 1 KiB to 16 MiB, file backend.
pub fn file(budget: Duration) {
    // File backend.
    let dir = tempfile::tempdir().unwrap();
    let native_dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(native_dir.path().join("tmp")).unwrap();
    let fstore = ArtifactStore::builder()
        .max_artifact_bytes(64 << 20)
        .open_dir(dir.path())
        .unwrap();
    for (label, len) in SIZES {
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
}

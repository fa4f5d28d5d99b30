//! Streamed uploads and downloads of 256 MiB (what an app does through the
//! WIT `streams`), file backend, against a native baseline that streams
//! the same bytes through `blake3::Hasher` into (or out of) a synced file.

use std::hint::black_box;
use std::io::{Read, Write};
use std::time::Duration;

use artifacts::{ArtifactStore, ArtifactType};

use super::measure::{content, row, time};

const SIZE: usize = 256 << 20;
const STEP: usize = 1 << 20;

/// `upload 256 MiB` and `download 256 MiB` rows, in 1 MiB writes and reads.
pub fn rows(budget: Duration) {
    let dir = tempfile::tempdir().unwrap();
    let native_dir = tempfile::tempdir().unwrap();
    let store = ArtifactStore::builder()
        .max_artifact_bytes(1 << 30)
        .open_dir(dir.path())
        .unwrap();
    let data = content(SIZE, 0);
    let native_put = time(budget, 2, |i| {
        let path = native_dir.path().join(format!("{i}.tmp"));
        let mut f = std::fs::File::create(&path).unwrap();
        let mut h = blake3::Hasher::new();
        for piece in data.chunks(STEP) {
            h.update(piece);
            f.write_all(piece).unwrap();
        }
        f.sync_all().unwrap();
        let name = native_dir.path().join(h.finalize().to_hex().as_str());
        std::fs::rename(&path, name).unwrap();
        std::fs::File::open(native_dir.path())
            .unwrap()
            .sync_all()
            .unwrap();
    });
    let ours_put = time(budget, 2, |_| {
        let mut up = store.upload(ArtifactType::Generic);
        for piece in data.chunks(STEP) {
            up.write(piece).unwrap();
        }
        black_box(up.finish().unwrap());
    });
    row("file upload 256 MiB", SIZE, native_put, ours_put);
    let hash = store.put(&data, ArtifactType::Generic).unwrap();
    let native_file = native_dir
        .path()
        .join(blake3::hash(&data).to_hex().as_str());
    let native_get = time(budget, 2, |_| {
        let mut f = std::fs::File::open(&native_file).unwrap();
        let mut h = blake3::Hasher::new();
        let mut piece = vec![0u8; STEP];
        loop {
            let n = f.read(&mut piece).unwrap();
            if n == 0 {
                break;
            }
            h.update(&piece[..n]);
            black_box(&piece[..n]);
        }
        assert_eq!(h.finalize().as_bytes(), hash.as_bytes());
    });
    let ours_get = time(budget, 2, |_| {
        let mut down = store.download(&hash).unwrap();
        while let Some(piece) = down.read(STEP).unwrap() {
            black_box(piece);
        }
    });
    row("file download 256 MiB", SIZE, native_get, ours_get);
}

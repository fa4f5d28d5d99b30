//! Verified ranges (`get_range`) on every backend: the bytes of a range are
//! proven through the artifact's outboard, reading only the range's 16 KiB
//! groups and the tree nodes on their path (measured, and asserted, with a
//! backend that records what is read); damage outside the range does not
//! fail the read, damage inside it always does, damaged path nodes never
//! give wrong bytes; a missing or damaged outboard is rebuilt.

use std::collections::BTreeSet;
use std::sync::Mutex;

use artifacts::backend::Backend;
use artifacts::backend::Side;
use artifacts::limits::RANGE_LIMIT;
use artifacts::{ArtifactStore, ArtifactType, Error, Hash, Quota};

use crate::fixture::{each_backend, pattern};
use crate::watched::{Watch, Watched};

const MIB: usize = 1 << 20;
const GROUP: u64 = 16 << 10;

/// What a [`Recording`] backend saw read.
#[derive(Default)]
struct Seen {
    /// Bytes of blobs read (whole or in ranges).
    blob_bytes: u64,
    /// Bytes of outboards read.
    outboard_bytes: u64,
    /// Outboard ranges read: (offset, length).
    outboard_ranges: BTreeSet<(u64, u64)>,
    /// Blob ranges read: (offset, length returned).
    blob_ranges: Vec<(u64, u64)>,
    /// Outboards written.
    outboard_writes: u64,
}

/// Records the blob and outboard bytes read through a [`Watched`]
/// backend, and the outboards written.
#[derive(Default)]
struct Recording {
    seen: Mutex<Seen>,
}

impl Recording {
    /// Any backend, recorded.
    fn new(inner: Box<dyn Backend>) -> Watched<Self> {
        Watched::new(inner, Self::default())
    }

    /// What it has seen since the last call, taken.
    fn take(&self) -> Seen {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

impl Watch for Recording {
    fn side(&self, name: &'static str, key: &Side) {
        if name == "write_side" && matches!(key, Side::Outboard(_)) {
            self.seen.lock().unwrap().outboard_writes += 1;
        }
    }
    fn blob_read(&self, offset: Option<u64>, bytes: u64) {
        let mut seen = self.seen.lock().unwrap();
        seen.blob_bytes += bytes;
        if let Some(offset) = offset {
            seen.blob_ranges.push((offset, bytes));
        }
    }
    fn outboard_read(&self, ranges: &[(u64, u64)], bytes: u64) {
        let mut seen = self.seen.lock().unwrap();
        seen.outboard_bytes += bytes;
        seen.outboard_ranges.extend(ranges.iter().copied());
    }
}

/// The most bytes a proof of `offset..offset + len` in `size` bytes may
/// read: the range rounded out to whole groups, and two 32-byte nodes per
/// level of the tree over the groups.
fn bound(size: u64, offset: u64, len: u64) -> u64 {
    let groups = (offset + len).div_ceil(GROUP) - offset / GROUP;
    let levels = u64::from(64 - size.div_ceil(GROUP).leading_zeros());
    groups * GROUP + 2 * levels * 32
}

/// The outboard of `hash`, read whole through `backend`.
fn outboard_of(backend: &dyn Backend, hash: &Hash) -> Vec<u8> {
    let key = Side::Outboard(*hash);
    let size = backend.side_size(&key).unwrap().expect("an outboard");
    let mut parts = backend
        .read_side_ranges(&key, &[(0, size)])
        .unwrap()
        .unwrap();
    parts.pop().unwrap()
}

fn flip(bytes: &mut [u8], at: u64) {
    bytes[usize::try_from(at).unwrap()] ^= 0x5a;
}

each_backend! {
    fn ranges_read_only_their_groups_and_path_and_survive_damage_elsewhere(fx) {
        let data = pattern(8 * MIB + 12_345);
        let size = data.len() as u64;
        let hash = fx.open().put(&data, ArtifactType::Generic).unwrap();
        let rec = Recording::new(fx.backend());
        let store = ArtifactStore::builder().open(rec.clone()).unwrap();
        assert!(rec.side_size(&Side::Outboard(hash)).unwrap().is_some(), "the put wrote the outboard");
        for (offset, len) in [
            (0, 4096),
            (3 * MIB as u64 + 100, 4096),
            (GROUP - 1, 2),
            (size - 4096, 4096),
            (size - 1, 1),
            (5 * MIB as u64, MIB as u64),
            (0, size),
        ] {
            rec.watch.take();
            let got = store.get_range(&hash, offset..offset + len).unwrap();
            assert!(got == data[offset as usize..(offset + len) as usize], "{offset}+{len}");
            let seen = rec.watch.take();
            let read = seen.blob_bytes + seen.outboard_bytes;
            let windows = len.div_ceil(RANGE_LIMIT);
            assert!(
                read <= bound(size, offset, len) + windows * bound(size, 0, 1),
                "{offset}+{len}: read {read} bytes"
            );
            assert_eq!(seen.outboard_writes, 0, "nothing rebuilt");
        }

        // One range: what its proof reads, clean.
        let (offset, len) = (3 * MIB as u64 + 100, 4096u64);
        let range = offset..offset + len;
        let want = &data[offset as usize..(offset + len) as usize];
        rec.watch.take();
        store.get_range(&hash, range.clone()).unwrap();
        let clean = rec.watch.take();
        let (first, end) = (offset / GROUP * GROUP, (offset + len).div_ceil(GROUP) * GROUP);
        assert_eq!(clean.blob_ranges, vec![(first, end - first)]);
        let good_outboard = outboard_of(&rec, &hash);

        // Every 4 KiB of content outside the range's groups damaged, every
        // outboard node off its path damaged: the range still reads, right.
        let mut damaged = data.clone();
        for at in (0..size).step_by(4096).chain([0, size - 1, first - 1, end]) {
            if at < first || at >= end {
                flip(&mut damaged, at);
            }
        }
        let mut outboard = good_outboard.clone();
        for node in (0..outboard.len() as u64).step_by(32) {
            if !clean.outboard_ranges.contains(&(node, 32)) {
                flip(&mut outboard, node + 9);
            }
        }
        rec.write_blob(&hash, &damaged).unwrap();
        rec.write_side(&Side::Outboard(hash), &outboard).unwrap();
        rec.watch.take();
        assert!(store.get_range(&hash, range.clone()).unwrap() == want);
        assert_eq!(rec.watch.take().outboard_writes, 0, "proven, not rebuilt");
        // The whole artifact is damaged, as get and verify say.
        assert!(matches!(store.get(&hash), Err(Error::Integrity { .. })));

        // Any byte inside the range: integrity, never bytes.
        for at in [offset, offset + 1, offset + len / 2, offset + len - 1] {
            let mut inside = damaged.clone();
            flip(&mut inside, at);
            rec.write_blob(&hash, &inside).unwrap();
            assert!(
                matches!(store.get_range(&hash, range.clone()), Err(Error::Integrity { .. })),
                "byte {at}"
            );
        }

        // A damaged node on the path, with intact content: rebuilt from the
        // whole content, right bytes, and the outboard repaired.
        rec.write_blob(&hash, &data).unwrap();
        for &(node, _) in clean.outboard_ranges.iter().take(3) {
            let mut bad = good_outboard.clone();
            flip(&mut bad, node);
            rec.write_side(&Side::Outboard(hash), &bad).unwrap();
            assert!(store.get_range(&hash, range.clone()).unwrap() == want);
            assert!(outboard_of(&rec, &hash) == good_outboard, "repaired");
        }
        // A damaged path and a damaged range: integrity, never wrong bytes,
        // and no outboard of damaged content.
        let mut bad = good_outboard.clone();
        flip(&mut bad, *clean.outboard_ranges.iter().next().map(|(o, _)| o).unwrap());
        rec.write_side(&Side::Outboard(hash), &bad).unwrap();
        let mut inside = data.clone();
        flip(&mut inside, offset + 7);
        rec.write_blob(&hash, &inside).unwrap();
        rec.watch.take();
        assert!(matches!(store.get_range(&hash, range.clone()), Err(Error::Integrity { .. })));
        assert_eq!(rec.watch.take().outboard_writes, 0);
        // A missing outboard (a store from before outboards): the first
        // range read rebuilds it, the next proves through it.
        rec.write_blob(&hash, &data).unwrap();
        assert!(rec.delete_side(&Side::Outboard(hash)).unwrap());
        assert!(store.get_range(&hash, range.clone()).unwrap() == want);
        assert_eq!(rec.watch.take().outboard_writes, 1);
        assert!(outboard_of(&rec, &hash) == good_outboard);
        rec.watch.take();
        store.get_range(&hash, range.clone()).unwrap();
        let seen = rec.watch.take();
        assert!(seen.blob_bytes + seen.outboard_bytes <= bound(size, offset, len));
    }

    fn edges_of_ranges_and_small_artifacts(fx) {
        let store = fx.open();
        for len in [0usize, 1, 1024, 1025, 20_000, (256 << 10) - 1, 256 << 10, MIB + 1] {
            let data = pattern(len);
            let hash = store.put(&data, ArtifactType::Generic).unwrap();
            let size = len as u64;
            assert_eq!(store.get_range(&hash, 0..0).unwrap(), b"");
            assert_eq!(store.get_range(&hash, size..size).unwrap(), b"");
            assert!(store.get_range(&hash, 0..size).unwrap() == data, "{len}");
            if len > 0 {
                assert_eq!(store.get_range(&hash, size - 1..size).unwrap(), &data[len - 1..]);
            }
            assert_eq!(
                store.get_range(&hash, size..size + 1),
                Err(Error::OutOfRange { offset: size, length: 1, size })
            );
            let has_outboard = fx.backend().side_size(&Side::Outboard(hash)).unwrap().is_some();
            assert_eq!(has_outboard, size >= 256 << 10, "{len}");
        }
        let missing = Hash::of(b"never stored");
        assert_eq!(store.get_range(&missing, 0..1), Err(Error::NotFound(missing)));
    }

    fn outboards_come_from_every_put_path_and_gc_removes_orphans(fx) {
        let store = fx.open();
        let backend = fx.backend();
        // put_from (streamed), an upload, an app's put, an app's upload.
        let a = pattern(9 * MIB + 1);
        let h = store.put_from(&mut a.as_slice(), ArtifactType::Generic).unwrap();
        assert!(backend.side_size(&Side::Outboard(h)).unwrap().is_some(), "put_from");
        let b = pattern(5 * MIB + 3);
        let mut up = store.upload(ArtifactType::Generic);
        up.write(&b).unwrap();
        let hb = up.finish().unwrap();
        assert!(backend.side_size(&Side::Outboard(hb)).unwrap().is_some(), "upload");
        let app = store.app("app-1", Quota::UNLIMITED).unwrap();
        let c = pattern(300_000);
        let hc = app.put(&c, ArtifactType::Generic).unwrap();
        assert!(backend.side_size(&Side::Outboard(hc)).unwrap().is_some(), "an app's put");
        assert_eq!(app.get_range(&hc, 10..20).unwrap(), &c[10..20]);
        // An app reads only what it holds, at most the limit at once.
        let other = store.app("app-2", Quota::UNLIMITED).unwrap();
        assert_eq!(other.get_range(&hc, 10..20), Err(Error::NotFound(hc)));
        assert_eq!(other.get_range(&h, 0..u64::MAX), Err(Error::NotFound(h)));
        let mut granted = other.clone();
        granted.grant(h);
        assert_eq!(granted.get_range(&h, 7..9).unwrap(), &a[7..9]);
        assert_eq!(
            granted.get_range(&h, 0..RANGE_LIMIT + 1),
            Err(Error::RangeTooLong { limit: RANGE_LIMIT })
        );
        // Released to nothing: the blob and its outboard go together.
        store.release(&h).unwrap();
        assert_eq!(backend.blob_size(&h).unwrap(), None);
        assert_eq!(backend.side_size(&Side::Outboard(h)).unwrap(), None);
        // One a crash left without its blob is garbage gc removes.
        backend.write_side(&Side::Outboard(h), &[0; 64]).unwrap();
        let report = store.gc(std::time::Duration::ZERO).unwrap();
        assert_eq!(report.outboards_removed, 1);
        assert_eq!(backend.side_size(&Side::Outboard(h)).unwrap(), None);
        // A quarantined blob reads as missing; a put of the content brings
        // it back, and the outboard it kept still proves ranges.
        assert!(store.quarantine(&hb).unwrap());
        assert_eq!(store.get_range(&hb, 0..10), Err(Error::MissingContent(hb)));
        let mut up = store.upload(ArtifactType::Generic);
        up.write(&b).unwrap();
        assert_eq!(up.finish().unwrap(), hb);
        assert_eq!(store.get_range(&hb, 100..200).unwrap(), &b[100..200]);
    }
}

/// O(log n), measured: 4 KiB from 64 MiB and from 256 MiB read the range's
/// groups and about two nodes per level, whatever the size.
#[test]
fn a_4_kib_range_reads_its_groups_and_log_n_nodes() {
    for mib in [64usize, 256] {
        let backend = artifacts::MemoryBackend::new();
        let data = pattern(mib * MIB + 999);
        let size = data.len() as u64;
        let hash = ArtifactStore::builder()
            .max_artifact_bytes(512 << 20)
            .open(backend.clone())
            .unwrap()
            .put(&data, ArtifactType::Generic)
            .unwrap();
        let rec = Recording::new(Box::new(backend));
        let store = ArtifactStore::builder()
            .max_artifact_bytes(512 << 20)
            .open(rec.clone())
            .unwrap();
        let offset = size / 3;
        let got = store.get_range(&hash, offset..offset + 4096).unwrap();
        assert!(got == data[offset as usize..offset as usize + 4096]);
        let seen = rec.watch.take();
        let read = seen.blob_bytes + seen.outboard_bytes;
        eprintln!(
            "4 KiB from {mib} MiB: {} bytes of content, {} bytes of outboard in {} nodes",
            seen.blob_bytes,
            seen.outboard_bytes,
            seen.outboard_ranges.len()
        );
        assert!(read <= bound(size, offset, 4096), "read {read} bytes");
        assert!(read <= 2 * GROUP + 2 * 32 * 16, "read {read} bytes");
    }
}

/// `artifacts get HASH --range A..B [-o FILE]`: parsed at the edge, bytes
/// out only once proven.
#[cfg(feature = "cli")]
#[test]
fn the_cli_reads_ranges() {
    use std::process::Command;
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_artifacts"))
            .arg("--dir")
            .arg(dir.path().join("store"))
            .args(args)
            .output()
            .unwrap()
    };
    let data = pattern(3 * MIB + 5);
    let file = dir.path().join("in");
    std::fs::write(&file, &data).unwrap();
    let put = run(&["put", file.to_str().unwrap()]);
    assert!(put.status.success());
    let hash = String::from_utf8(put.stdout).unwrap().trim().to_owned();
    let got = run(&["get", &hash, "--range", "1000..5096"]);
    assert!(
        got.status.success(),
        "{}",
        String::from_utf8_lossy(&got.stderr)
    );
    assert!(got.stdout == data[1000..5096]);
    let got = run(&["get", &hash, "--range", "3145000.."]);
    assert!(got.stdout == data[3_145_000..]);
    let got = run(&["get", &hash, "--range", "..10"]);
    assert!(got.stdout == data[..10]);
    let out = dir.path().join("out");
    let got = run(&[
        "get",
        &hash,
        "--range",
        "10..20",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(got.status.success());
    assert_eq!(std::fs::read(&out).unwrap(), &data[10..20]);
    for bad in ["5..4", "x..4", "4", "-1..3"] {
        let o = run(&["get", &hash, "--range", bad]);
        assert_eq!(o.status.code(), Some(2), "{bad}");
        assert!(o.stdout.is_empty());
    }
    let o = run(&["get", &hash, "--range", "3145728..3145734"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("not within the artifact, which has 3145733 bytes"),
        "{stderr}"
    );
    // Damage in the range: exit 4, nothing out, the file left as it was.
    let blob = dir.path().join("store/blobs").join(&hash[..2]).join(&hash);
    let mut damaged = data.clone();
    damaged[15] ^= 1;
    std::fs::write(&blob, &damaged).unwrap();
    let o = run(&[
        "get",
        &hash,
        "--range",
        "10..20",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(4));
    assert_eq!(std::fs::read(&out).unwrap(), &data[10..20]);
    let o = run(&["get", &hash, "--range", "10..20"]);
    assert_eq!(o.status.code(), Some(4));
    assert!(o.stdout.is_empty());
    // Outside it: the range still reads.
    let o = run(&["get", &hash, "--range", "2000000..2000010"]);
    assert!(o.status.success());
    assert!(o.stdout == data[2_000_000..2_000_010]);
}

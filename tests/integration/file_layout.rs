//! The file backend's on-disk layout, and what survives a reopen.

use artifacts::backend::Space;
use artifacts::{ArtifactStore, ArtifactType, FileBackend, Quota};

use crate::fixture::pattern;

/// The key of an owner's index space (as the core derives it).
fn owner_key(owner: &str) -> String {
    blake3::Hasher::new_derive_key("artifacts:store 2026 owner index v2")
        .update(owner.as_bytes())
        .finalize()
        .to_hex()
        .to_string()
}

/// The key of the usage record in every owner's index space.
fn usage_key() -> String {
    blake3::Hasher::new_derive_key("artifacts:store 2026 owner usage v2")
        .finalize()
        .to_hex()
        .to_string()
}

#[test]
fn blobs_are_sharded_by_their_first_byte_and_records_sit_beside_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = ArtifactStore::open_dir(dir.path()).unwrap();
    let h = store.put(&pattern(1024), ArtifactType::WasmModule).unwrap();
    let hex = h.to_string();
    let hex = hex.as_str();
    let blob = dir.path().join("blobs").join(&hex[..2]).join(hex);
    let record = dir.path().join("records").join(&hex[..2]).join(hex);
    assert_eq!(
        std::fs::read(&blob).unwrap(),
        pattern(1024),
        "blob holds the raw bytes"
    );
    let rec = std::fs::read(&record).unwrap();
    assert_eq!(rec.len(), 8 + 76, "8-byte version, record without marks");
    assert_eq!(
        &rec[8..16],
        b"ARTR\x02\x00\x00\x00",
        "magic, format 2, live, wasm-module"
    );
    assert_eq!(&rec[16..24], &1024u64.to_le_bytes());
    assert_eq!(&rec[32..40], &1u64.to_le_bytes(), "one owner, never who");
    let host = owner_key("@host");
    assert_eq!(
        &rec[40..72],
        &hex_bytes(&host),
        "origin: the host's first put"
    );
    assert_eq!(&rec[80..84], &0u32.to_le_bytes(), "no transition under way");
    // The host's index space: its entry for the artifact and its usage.
    let space = dir.path().join("owners").join(&host[..2]).join(&host);
    let entry = std::fs::read(space.join(hex)).unwrap();
    assert_eq!(entry.len(), 8 + 80);
    assert_eq!(
        &entry[8..16],
        b"ARTE\x02\x01\x00\x00",
        "entry, format 2, live, wasm-module"
    );
    assert_eq!(&entry[32..40], &1u64.to_le_bytes(), "one reference");
    let names: Vec<String> = std::fs::read_dir(&space)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(
        names,
        vec![hex.to_string()],
        "the host has no quota, so no usage record"
    );
    // An app's space: its entry and its usage record.
    let app = store.app("app-1", artifacts::Quota::UNLIMITED).unwrap();
    app.put(&pattern(1024), ArtifactType::Generic).unwrap();
    let key = owner_key("app-1");
    let space = dir.path().join("owners").join(&key[..2]).join(&key);
    let usage = std::fs::read(space.join(usage_key())).unwrap();
    assert_eq!(&usage[8..16], b"ARTU\x02\x00\x00\x00");
    assert_eq!(&usage[16..24], &1024u64.to_le_bytes(), "bytes");
    assert_eq!(&usage[24..32], &1u64.to_le_bytes(), "artifacts");
    assert_eq!(&usage[32..36], &0u32.to_le_bytes(), "no marks");
    let mut names: Vec<String> = std::fs::read_dir(&space)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let mut expected = vec![hex.to_string(), usage_key()];
    expected.sort();
    assert_eq!(names, expected, "nothing else in the space");
    let rec = std::fs::read(&record).unwrap();
    assert_eq!(&rec[32..40], &2u64.to_le_bytes(), "two owners now");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("FORMAT")).unwrap(),
        "artifacts-store 3\n"
    );
    assert_eq!(
        std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
        0,
        "no temp files left"
    );
}

fn hex_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

/// A format-1 record: every owner listed with its count.
fn v1_record(size: u64, owners: &[(&str, u64)]) -> Vec<u8> {
    let mut out = b"ARTR\x01\x00\x03\x00".to_vec();
    out.extend_from_slice(&size.to_le_bytes());
    out.extend_from_slice(&1_700_000_000_000u64.to_le_bytes());
    out.extend_from_slice(&(owners.len() as u32).to_le_bytes());
    for (owner, count) in owners {
        out.push(owner.len() as u8);
        out.extend_from_slice(owner.as_bytes());
        out.extend_from_slice(&count.to_le_bytes());
    }
    out
}

#[test]
fn a_format_1_directory_is_refused_until_migrated_and_then_reads_as_before() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(root.join("FORMAT"), "artifacts-store 1\n").unwrap();
    let mut hashes = Vec::new();
    for (content, owners) in [
        (&b"shared"[..], &[("@host", 2u64), ("app-1", 1)][..]),
        (b"mine", &[("app-1", 3)][..]),
    ] {
        let h = artifacts::Hash::of(content).to_string();
        for (kind, bytes) in [
            ("blobs", content.to_vec()),
            (
                "records",
                [
                    &7u64.to_le_bytes()[..],
                    &v1_record(content.len() as u64, owners),
                ]
                .concat(),
            ),
        ] {
            let shard = root.join(kind).join(&h[..2]);
            std::fs::create_dir_all(&shard).unwrap();
            std::fs::write(shard.join(&h), bytes).unwrap();
        }
        hashes.push(h.parse::<artifacts::Hash>().unwrap());
    }
    std::fs::create_dir_all(root.join("tmp")).unwrap();
    let err = ArtifactStore::open_dir(root).unwrap_err().to_string();
    assert!(err.contains("artifacts migrate --dir"), "{err}");
    assert_eq!(ArtifactStore::builder().migrate_dir(root).unwrap(), 2);
    assert_eq!(
        std::fs::read_to_string(root.join("FORMAT")).unwrap(),
        "artifacts-store 3\n"
    );
    assert_eq!(
        ArtifactStore::builder().migrate_dir(root).unwrap(),
        0,
        "idempotent"
    );
    let store = ArtifactStore::open_dir(root).unwrap();
    assert_eq!(store.count().unwrap(), 2);
    assert_eq!(store.stat(&hashes[0]).unwrap().reference_count, 2);
    let app = store.app("app-1", artifacts::Quota::UNLIMITED).unwrap();
    assert_eq!(app.stat(&hashes[1]).unwrap().reference_count, 3);
    assert_eq!(app.usage().unwrap().artifacts, 2);
    assert_eq!(app.usage().unwrap().bytes, 10);
    assert_eq!(app.get(&hashes[0]).unwrap(), b"shared");
    assert_eq!(app.release(&hashes[0]).unwrap(), 0);
    assert_eq!(
        store.get(&hashes[0]).unwrap(),
        b"shared",
        "the host still holds it"
    );
}

#[test]
fn a_directory_of_another_format_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("FORMAT"), "artifacts-store 99\n").unwrap();
    let err = ArtifactStore::open_dir(dir.path()).unwrap_err();
    assert!(
        err.to_string().contains("not a store of this version"),
        "{err}"
    );
}

#[test]
fn stray_files_in_the_store_directory_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let store = ArtifactStore::open_dir(dir.path()).unwrap();
    let h = store.put(b"x", ArtifactType::Generic).unwrap();
    std::fs::create_dir_all(dir.path().join("records/zz")).unwrap();
    std::fs::write(dir.path().join("records/zz/notes.txt"), "hi").unwrap();
    std::fs::write(
        dir.path()
            .join("records")
            .join(&h.to_hex().as_str()[..2])
            .join("README"),
        "hi",
    )
    .unwrap();
    let listed: Vec<_> = store.list().map(|m| m.unwrap().hash).collect();
    assert_eq!(listed, vec![h]);
}

#[test]
fn a_truncated_record_file_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let store = ArtifactStore::open_dir(dir.path()).unwrap();
    let h = store.put(b"x", ArtifactType::Generic).unwrap();
    let path = FileBackend::open(dir.path())
        .unwrap()
        .record_path(Space::Shared, &h);
    for damage in [
        &b""[..],
        b"1234",
        b"12345678",
        b"12345678garbage-garbage-garbage!",
    ] {
        std::fs::write(&path, damage).unwrap();
        let err = store.get(&h).unwrap_err();
        assert!(
            matches!(
                err,
                artifacts::Error::Backend(_) | artifacts::Error::CorruptRecord(_)
            ),
            "{damage:?}: {err}"
        );
    }
}

/// The outboard of content of 256 KiB or more, as stored: the chaining
/// values (32 bytes) of every node of BLAKE3's tree over the 16 KiB groups,
/// level by level from the groups up to the two nodes under the root (an odd
/// last node carried up, repeated), in `outboards/ab/abcdef…`. Computed here
/// independently, with BLAKE3's own hazmat API. The store stays format 3:
/// hosts from before outboards never look in `outboards/`.
#[test]
fn outboards_sit_in_their_own_sharded_folder_and_hold_the_tree_level_by_level() {
    use blake3::hazmat::{HasherExt, Mode, merge_subtrees_non_root};
    let dir = tempfile::tempdir().unwrap();
    let store = ArtifactStore::open_dir(dir.path()).unwrap();
    let data = pattern(5 * 16384 * 4 + 1000); // 21 groups: odd levels on the way up
    let h = store.put(&data, ArtifactType::Generic).unwrap();
    let hex = h.to_string();
    let path = dir.path().join("outboards").join(&hex[..2]).join(&hex);
    let stored = std::fs::read(&path).unwrap();
    let mut level: Vec<[u8; 32]> = data
        .chunks(16384)
        .enumerate()
        .map(|(i, group)| {
            blake3::Hasher::new()
                .set_input_offset(i as u64 * 16384)
                .update(group)
                .finalize_non_root()
        })
        .collect();
    let mut expected: Vec<u8> = Vec::new();
    loop {
        expected.extend(level.iter().flatten());
        if level.len() == 2 {
            break;
        }
        level = level
            .chunks(2)
            .map(|p| match p {
                [l, r] => merge_subtrees_non_root(l, r, Mode::Hash),
                [one] => *one,
                _ => unreachable!(),
            })
            .collect();
    }
    assert_eq!(
        blake3::hazmat::merge_subtrees_root(&level[0], &level[1], Mode::Hash),
        blake3::hash(&data)
    );
    assert_eq!(stored.len(), (21 + 11 + 6 + 3 + 2) * 32);
    assert!(stored == expected, "the outboard's bytes");
    assert_eq!(
        std::fs::read(dir.path().join("FORMAT")).unwrap(),
        b"artifacts-store 3\n"
    );
    // Below 256 KiB: no outboard.
    let small = store
        .put(&pattern(256 * 1024 - 1), ArtifactType::Generic)
        .unwrap();
    let small = small.to_string();
    assert!(
        !dir.path()
            .join("outboards")
            .join(&small[..2])
            .join(&small)
            .exists()
    );
}

/// The owner directories under `DIR/owners/*/`.
fn owner_dirs(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir.join("owners"))
        .unwrap()
        .map(|shard| std::fs::read_dir(shard.unwrap().path()).unwrap().count())
        .sum()
}

/// An owner's directory goes with its last entry, and gc removes the empty
/// ones a crash or an earlier version left once they are older than its
/// grace period, never one that holds something, and never one a
/// concurrent put is writing into (each removal is under the lock that
/// record swaps hold). Before, nothing removed them: 7,123 launched
/// children left 7,124 owner directories that every gc walked.
#[test]
fn gc_removes_empty_owner_directories_and_no_put_loses_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let store = ArtifactStore::open_dir(dir.path()).unwrap();
    let holder = store.app("holder", Quota::default()).unwrap();
    let kept = holder.put(b"kept", ArtifactType::Generic).unwrap();
    // Empty spaces as earlier versions left them.
    let left = 50;
    for i in 0..left {
        let key = owner_key(&format!("gone-{i}"));
        std::fs::create_dir_all(dir.path().join("owners").join(&key[..2]).join(&key)).unwrap();
    }
    assert_eq!(owner_dirs(dir.path()), left + 1);
    let within = store.gc(std::time::Duration::from_secs(3600)).unwrap();
    assert_eq!(
        (within.owner_spaces_removed, owner_dirs(dir.path())),
        (0, left + 1),
        "within the grace period, kept"
    );

    // An app storing and removing (its space made and removed each time)
    // while the backend's own sweep runs again and again.
    let busy = store.app("busy", Quota::default()).unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let swept = std::thread::scope(|s| {
        let sweeper = s.spawn(|| {
            let backend = FileBackend::open(dir.path()).unwrap();
            let mut removed = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                removed += backend.remove_empty_owner_dirs(0).unwrap();
            }
            removed
        });
        for i in 0..100u32 {
            let hash = busy.put(&i.to_le_bytes(), ArtifactType::Generic).unwrap();
            assert_eq!(busy.get(&hash).unwrap(), i.to_le_bytes(), "put {i} lost");
            busy.remove(&hash).unwrap();
        }
        let last = busy.put(b"last", ArtifactType::Generic).unwrap();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let swept = sweeper.join().unwrap();
        assert_eq!(busy.get(&last).unwrap(), b"last");
        swept
    });
    let after = store.gc(std::time::Duration::ZERO).unwrap();
    eprintln!(
        "{left} empty owner directories: the sweep removed {swept}, gc then {}; {} left",
        after.owner_spaces_removed,
        owner_dirs(dir.path())
    );
    assert_eq!(
        swept + after.owner_spaces_removed,
        left as u64,
        "the empty ones, no more"
    );
    assert_eq!(owner_dirs(dir.path()), 2, "the holder's and the busy app's");
    assert_eq!(holder.get(&kept).unwrap(), b"kept");
    assert_eq!(busy.count().unwrap(), 1);
}

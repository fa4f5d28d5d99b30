//! The file backend's on-disk layout, and what survives a reopen.

use artifacts::{ArtifactStore, ArtifactType, FileBackend};

use crate::fixture::pattern;

#[test]
fn blobs_are_sharded_by_their_first_byte_and_records_sit_beside_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = ArtifactStore::open_dir(dir.path()).unwrap();
    let h = store.put(&pattern(1024), ArtifactType::WasmModule).unwrap();
    let hex = h.as_str();
    let blob = dir.path().join("blobs").join(&hex[..2]).join(hex);
    let record = dir.path().join("records").join(&hex[..2]).join(hex);
    assert_eq!(
        std::fs::read(&blob).unwrap(),
        pattern(1024),
        "blob holds the raw bytes"
    );
    let rec = std::fs::read(&record).unwrap();
    assert_eq!(
        rec.len(),
        8 + 28 + 14,
        "8-byte version, record with one owner"
    );
    assert_eq!(
        &rec[8..16],
        b"ARTR\x01\x00\x00\x00",
        "magic, format 1, live, wasm-module"
    );
    assert_eq!(&rec[16..24], &1024u64.to_le_bytes());
    assert_eq!(&rec[32..36], &1u32.to_le_bytes(), "one owner");
    assert_eq!(&rec[36..42], b"\x05@host", "the host");
    assert_eq!(&rec[42..50], &1u64.to_le_bytes(), "one reference");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("FORMAT")).unwrap(),
        "artifacts-store 1\n"
    );
    assert_eq!(
        std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
        0,
        "no temp files left"
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
            .join(&h.as_str()[..2])
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
    let path = FileBackend::open(dir.path()).unwrap().record_path(&h);
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

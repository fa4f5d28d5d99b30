//! The one verified reader: every get (whole, into a writer, a download, a
//! range) of every size class reads the artifact's record once (an app's:
//! its own index entry once, and no shared record), counted at the backend.

use std::sync::atomic::Ordering;

use artifacts::{ArtifactStore, ArtifactType, Quota};

use crate::fixture::{Counting, counting, pattern};

/// One of each size class: whole in one core call, read and hashed in
/// pieces, and streamed (past 16 MiB, what `get_to` holds).
const SIZES: [usize; 4] = [1 << 10, 100 << 10, 1 << 20, (17 << 20) + 5];

/// Backend calls, shared records read and index entries read by `op`.
fn counted(backend: &Counting, op: impl FnOnce()) -> (u64, u64, u64) {
    let w = &backend.watch;
    let before = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::SeqCst);
    let (calls, shared, entries) = (
        before(&w.calls),
        before(&w.shared_read),
        before(&w.entries_read),
    );
    op();
    (
        before(&w.calls) - calls,
        before(&w.shared_read) - shared,
        before(&w.entries_read) - entries,
    )
}

/// Every read of `view` of an artifact of each size: the content, and the
/// (shared records, entries) read, checked by `expect(op)`.
fn each_read(
    backend: &Counting,
    view: &ArtifactStore,
    who: &str,
    expect: impl Fn(&str) -> (u64, u64),
) {
    for size in SIZES {
        let data = pattern(size);
        let hash = view.put(&data, ArtifactType::Generic).unwrap();
        let len = data.len() as u64;
        let mid = len / 2;
        let check = |op: &str, f: &mut dyn FnMut()| {
            let (calls, shared, entries) = counted(backend, f);
            eprintln!(
                "{who} {op} {size}: {calls} backend calls, {shared} records, {entries} entries"
            );
            assert_eq!((shared, entries), expect(op), "{who} {op} of {size} bytes");
        };
        check("get", &mut || assert!(view.get(&hash).unwrap() == data));
        check("get_to", &mut || {
            let mut out = Vec::new();
            assert_eq!(view.get_to(&hash, &mut out).unwrap().size, len);
            assert!(out == data);
        });
        check("download", &mut || {
            let mut d = view.download(&hash).unwrap();
            let mut out = Vec::new();
            while let Some(part) = d.read(1 << 20).unwrap() {
                out.extend_from_slice(&part);
            }
            assert!(out == data);
        });
        check("get_range", &mut || {
            let got = view.get_range(&hash, mid..(mid + 100).min(len)).unwrap();
            assert_eq!(got, &data[mid as usize..(mid + 100).min(len) as usize]);
        });
        check("get_range_to", &mut || {
            let mut out = Vec::new();
            assert_eq!(view.get_range_to(&hash, 1..len, &mut out).unwrap(), len - 1);
            assert!(out == data[1..]);
        });
    }
}

#[test]
fn every_read_of_every_size_reads_its_record_once() {
    let backend = counting();
    let store = ArtifactStore::builder()
        .hash_workers(2)
        .open(backend.clone())
        .unwrap();
    // The host: the shared record once; its own entry only where the
    // metadata (with its reference count) is answered.
    each_read(&backend, &store, "host", |op| match op {
        "get_to" => (1, 1),
        _ => (1, 0),
    });
    // An app: its own entry once, never the shared record.
    let app = store.app("reader", Quota::UNLIMITED).unwrap();
    each_read(&backend, &app, "app", |_| (0, 1));
}

#[test]
fn a_damaged_artifact_of_every_size_is_refused_by_every_read() {
    let backend = counting();
    let store = ArtifactStore::builder()
        .hash_workers(2)
        .open(backend.clone())
        .unwrap();
    for size in SIZES {
        let mut data = pattern(size);
        let hash = store.put(&data, ArtifactType::Generic).unwrap();
        data[size / 3] ^= 1;
        artifacts::backend::Backend::write_blob(&backend, &hash, &data).unwrap();
        let refused = |r: Result<(), artifacts::Error>| {
            assert!(
                matches!(r, Err(artifacts::Error::Integrity { .. })),
                "{size}: {r:?}"
            );
        };
        refused(store.get(&hash).map(drop));
        refused(store.get_to(&hash, &mut std::io::sink()).map(drop));
        refused(store.download(&hash).and_then(|mut d| {
            while d.read(1 << 20)?.is_some() {}
            Ok(())
        }));
        refused(
            store
                .get_range_to(&hash, 0..size as u64, &mut std::io::sink())
                .map(drop),
        );
        refused(store.verify(&hash).map(drop));
    }
}

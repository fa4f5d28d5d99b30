//! Every behaviour of the original store, through the wasm core, on each backend.

use std::io::Read;

use artifacts::{ArtifactStore, ArtifactType, Error, Hash};

use crate::fixture::{SIZES, counting, each_backend, pattern};

each_backend! {
    fn large_artifacts_verified_by_several_instances_round_trip_exactly(fx) {
        // Around the size where gets switch to parallel verification, and
        // sizes whose BLAKE3 split is uneven.
        for workers in [1, 2, 3] {
            let store = fx.open_with(ArtifactStore::builder().hash_workers(workers));
            for len in [(256 << 10) - 1, 256 << 10, (256 << 10) + 1, (1 << 20) + 1025, (3 << 20) + 7] {
                let mut content = pattern(len);
                content[len / 2] = workers as u8;
                let hash = store.put(&content, ArtifactType::Generic).unwrap();
                assert_eq!(hash.to_hex().as_str(), blake3::hash(&content).to_hex().as_str());
                assert_eq!(store.get(&hash).unwrap(), content, "{len} bytes, {workers} workers");
            }
        }
    }

    fn large_damaged_or_lost_content_is_detected_by_parallel_verification(fx) {
        let store = fx.open_with(ArtifactStore::builder().hash_workers(2));
        // Staged with an outboard (1 MiB), and verified in parallel by gets
        // alone (200 KiB: from GET_PARALLEL_BYTES, under PARALLEL_HASH_BYTES).
        for size in [(1 << 20) + 5, (200 << 10) + 5] {
            let content = pattern(size);
            let h = store.put(&content, ArtifactType::Generic).unwrap();
            // One flipped byte, deep in the second half.
            let mut flipped = content.clone();
            flipped[size / 8 * 7] ^= 1;
            fx.tamper(&h, &flipped);
            assert_eq!(
                store.get(&h),
                Err(Error::Integrity {
                    expected: h,
                    actual: artifacts::Hash::of(&flipped),
                })
            );
            // Cut short, then grown: never returned.
            fx.tamper(&h, &content[..content.len() - 1]);
            assert!(store.get(&h).is_err());
            let mut longer = content.clone();
            longer.push(0);
            fx.tamper(&h, &longer);
            assert!(store.get(&h).is_err());
            // Put back, then lost.
            fx.tamper(&h, &content);
            assert_eq!(store.get(&h).unwrap(), content);
            fx.lose_blob(&h);
            assert_eq!(store.get(&h), Err(Error::MissingContent(h)));
        }
        // Released to zero: not found, whatever the blob.
        let other = store.put(&pattern(300 << 10), ArtifactType::Generic).unwrap();
        assert_eq!(store.release(&other).unwrap(), 0);
        assert_eq!(store.get(&other), Err(Error::NotFound(other)));
    }

    fn put_from_streams_content_of_any_length_and_dedups_with_put(fx) {
        let store = fx.open();
        let p = 4 << 20;
        let lens = [0, 1025, p - 1, p, p + 1, 2 * p + 1025, 3 * p];
        for len in lens {
            let content = pattern(len);
            // Read in odd small pieces, as a pipe or socket would give them.
            let hash = store.put_from(&mut Trickle(&content), ArtifactType::WasmModule).unwrap();
            assert_eq!(hash.to_hex().as_str(), blake3::hash(&content).to_hex().as_str(), "{len}");
            assert_eq!(store.get(&hash).unwrap(), content, "{len}");
            assert_eq!(store.put(&content, ArtifactType::Generic).unwrap(), hash);
            assert_eq!(store.put_from(&mut &content[..], ArtifactType::Generic).unwrap(), hash);
            let meta = store.stat(&hash).unwrap();
            assert_eq!(
                (meta.size, meta.reference_count, meta.artifact_type),
                (len as u64, 3, ArtifactType::WasmModule),
                "{len}"
            );
        }
        assert_eq!(store.count().unwrap(), lens.len() as u64);
        assert_eq!(fx.temporary_files(), Vec::<String>::new());
    }

    fn put_from_repairs_a_lost_blob_and_stores_nothing_from_a_failing_or_overlong_reader(fx) {
        let store = fx.open_with(ArtifactStore::builder().max_artifact_bytes(10 << 20));
        let content = pattern((4 << 20) + 1025);
        let h = store.put_from(&mut &content[..], ArtifactType::Generic).unwrap();
        fx.lose_blob(&h);
        assert_eq!(store.put_from(&mut &content[..], ArtifactType::Generic).unwrap(), h);
        assert_eq!(store.get(&h).unwrap(), content);
        assert_eq!(store.stat(&h).unwrap().reference_count, 2);
        // A reader that fails part way: an input error, nothing stored.
        let start = pattern(6 << 20);
        let mut failing = (&start[..]).chain(Failing);
        assert!(matches!(
            store.put_from(&mut failing, ArtifactType::Generic),
            Err(Error::Input(_))
        ));
        // More than the store's limit: refused once the limit is passed.
        let over = pattern((10 << 20) + 1);
        assert_eq!(
            store.put_from(&mut &over[..], ArtifactType::Generic),
            Err(Error::TooLarge { size: (10 << 20) + 1, limit: 10 << 20 })
        );
        assert_eq!(store.count().unwrap(), 1);
        assert_eq!(fx.temporary_files(), Vec::<String>::new());
        assert_eq!(store.gc(std::time::Duration::ZERO).unwrap().orphans_removed, 0);
    }

    fn get_to_streams_large_artifacts_and_still_refuses_damage(fx) {
        let store = fx.open();
        // Small ones are verified whole, large ones stream in pieces.
        for len in [0, 1025, (16 << 20) + 1, (17 << 20) + 1025] {
            let content = pattern(len);
            let h = store.put(&content, ArtifactType::Generic).unwrap();
            let mut out = Vec::new();
            let meta = store.get_to(&h, &mut out).unwrap();
            assert_eq!(meta.size, len as u64);
            assert!(out == content, "{len} bytes came back different");
        }
        let content = pattern((17 << 20) + 1025);
        let h = store.put(&content, ArtifactType::Generic).unwrap();
        let mut flipped = content.clone();
        flipped[(13 << 20) + 5] ^= 0x80;
        fx.tamper(&h, &flipped);
        assert_eq!(
            store.get_to(&h, &mut std::io::sink()),
            Err(Error::Integrity {
                expected: h,
                actual: artifacts::Hash::of(&flipped),
            })
        );
        fx.tamper(&h, &content[..content.len() - 3]);
        assert!(matches!(store.get_to(&h, &mut std::io::sink()), Err(Error::Integrity { .. })));
        fx.tamper(&h, &content);
        // A writer that fails is reported as such.
        struct Full;
        impl std::io::Write for Full {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("disk full"))
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        assert!(matches!(store.get_to(&h, &mut Full), Err(Error::Output(m)) if m.contains("disk full")));
        fx.lose_blob(&h);
        assert_eq!(store.get_to(&h, &mut std::io::sink()), Err(Error::MissingContent(h)));
        let unknown = artifacts::Hash::of(b"never stored");
        assert_eq!(store.get_to(&unknown, &mut std::io::sink()), Err(Error::NotFound(unknown)));
    }

    fn round_trip_at_chunk_boundaries(fx) {
        let store = fx.open();
        for size in SIZES {
            let content = pattern(size);
            let hash = store.put(&content, ArtifactType::Generic).unwrap();
            assert_eq!(store.get(&hash).unwrap(), content, "size {size}");
            let meta = store.stat(&hash).unwrap();
            assert_eq!((meta.size, meta.reference_count), (size as u64, 1));
        }
        assert_eq!(store.count().unwrap(), SIZES.len() as u64);
    }

    fn duplicate_put_gives_one_artifact_and_counts_references(fx) {
        let store = fx.open();
        let a = store.put(b"plugin", ArtifactType::WasmModule).unwrap();
        let b = store.put(b"plugin", ArtifactType::WasmModule).unwrap();
        let c = store.put(b"plugin", ArtifactType::Generic).unwrap();
        assert_eq!((&a, &b), (&c, &c));
        assert_eq!(store.count().unwrap(), 1);
        assert_eq!(store.total_bytes().unwrap(), 6);
        let meta = store.stat(&a).unwrap();
        assert_eq!(meta.reference_count, 3);
        assert_eq!(meta.artifact_type, ArtifactType::WasmModule, "the first put's type is kept");
    }

    fn release_reports_the_count_and_deletes_at_zero(fx) {
        let store = fx.open();
        let h = store.put(b"x", ArtifactType::Generic).unwrap();
        store.put(b"x", ArtifactType::Generic).unwrap();
        assert_eq!(store.release(&h).unwrap(), 1);
        assert_eq!(store.get(&h).unwrap(), b"x");
        assert_eq!(store.release(&h).unwrap(), 0);
        assert!(!store.contains(&h).unwrap());
        assert_eq!(store.get(&h), Err(Error::NotFound(h)));
        assert_eq!(store.release(&h), Err(Error::NotFound(h)));
        assert_eq!((store.count().unwrap(), store.total_bytes().unwrap()), (0, 0));
    }

    fn remove_deletes_whatever_the_count(fx) {
        let store = fx.open();
        let h = store.put(b"x", ArtifactType::Generic).unwrap();
        let other = store.put(b"y", ArtifactType::Generic).unwrap();
        store.put(b"x", ArtifactType::Generic).unwrap();
        store.remove(&h).unwrap();
        assert!(!store.contains(&h).unwrap());
        assert_eq!(store.remove(&h), Err(Error::NotFound(h)));
        assert_eq!(store.get(&other).unwrap(), b"y");
        // Stored again after removal, it starts afresh.
        store.put(b"x", ArtifactType::AppManifest).unwrap();
        assert_eq!(store.stat(&h).unwrap().reference_count, 1);
        assert_eq!(store.stat(&h).unwrap().artifact_type, ArtifactType::AppManifest);
    }

    fn unknown_hash_is_not_found(fx) {
        let store = fx.open();
        let unknown = artifacts::Hash::of(b"never stored");
        assert_eq!(store.get(&unknown), Err(Error::NotFound(unknown)));
        assert_eq!(store.stat(&unknown), Err(Error::NotFound(unknown)));
        assert_eq!(store.remove(&unknown), Err(Error::NotFound(unknown)));
        assert!(!store.contains(&unknown).unwrap());
    }

    fn tampered_content_is_detected_on_load(fx) {
        let store = fx.open();
        let h = store.put(&pattern(1025), ArtifactType::WasmModule).unwrap();
        let other = store.put(&pattern(2049), ArtifactType::Generic).unwrap();
        let mut damaged = pattern(1025);
        damaged[1024] ^= 1;
        fx.tamper(&h, &damaged);
        let expected = Error::Integrity {
            expected: h,
            actual: artifacts::Hash::of(&damaged),
        };
        assert_eq!(store.get(&h), Err(expected.clone()));
        assert_eq!(store.verify(&h), Err(expected));
        assert_eq!(store.verify(&other).unwrap().size, 2049, "other artifacts unaffected");
        // Metadata does not read content, so it still answers.
        assert!(store.contains(&h).unwrap());
    }

    fn truncated_and_lost_content_is_detected(fx) {
        let store = fx.open();
        let h = store.put(&pattern(2048), ArtifactType::Generic).unwrap();
        fx.tamper(&h, &pattern(1024));
        assert!(matches!(store.get(&h), Err(Error::Integrity { .. })));
        fx.lose_blob(&h);
        assert_eq!(store.get(&h), Err(Error::MissingContent(h)));
    }

    fn total_bytes_and_list_track_every_change(fx) {
        let store = fx.open();
        let a = store.put(&pattern(1024), ArtifactType::Generic).unwrap();
        let b = store.put(&pattern(1025), ArtifactType::ConfigBundle).unwrap();
        store.put(&pattern(1024), ArtifactType::Generic).unwrap();
        assert_eq!(store.total_bytes().unwrap(), 2049);
        let listed: Vec<Hash> = store.list().map(|m| m.unwrap().hash).collect();
        let mut expected = vec![a, b];
        expected.sort();
        assert_eq!(listed, expected);
        store.remove(&b).unwrap();
        assert_eq!(store.total_bytes().unwrap(), 1024);
        assert_eq!(store.count().unwrap(), 1);
    }

    fn different_content_gives_different_hashes(fx) {
        let store = fx.open();
        let hashes: std::collections::HashSet<Hash> = (0..64u8)
            .map(|i| store.put(&[i], ArtifactType::Generic).unwrap())
            .collect();
        assert_eq!(hashes.len(), 64);
    }

    fn reopening_finds_every_artifact_with_its_metadata(fx) {
        let store = fx.open();
        let a = store.put(&pattern(1023), ArtifactType::WasmModule).unwrap();
        store.put(&pattern(1023), ArtifactType::WasmModule).unwrap();
        let b = store.put(b"{}", ArtifactType::AppManifest).unwrap();
        let before: Vec<_> = store.list().map(Result::unwrap).collect();
        drop(store);
        let again = fx.open();
        let after: Vec<_> = again.list().map(Result::unwrap).collect();
        assert_eq!(before, after);
        assert_eq!(again.stat(&a).unwrap().reference_count, 2);
        assert_eq!(again.stat(&b).unwrap().artifact_type, ArtifactType::AppManifest);
        assert_eq!(again.get(&a).unwrap(), pattern(1023));
    }

    fn listing_pages_past_a_thousand(fx) {
        let store = fx.open();
        let mut hashes: Vec<Hash> = (0..1003u32)
            .map(|i| store.put(&i.to_le_bytes(), ArtifactType::Generic).unwrap())
            .collect();
        hashes.sort();
        let first = store.list_page(None, 5000).unwrap();
        assert_eq!(first.len(), 1000, "a page holds at most 1000");
        let listed: Vec<Hash> = store.list().map(|m| m.unwrap().hash).collect();
        assert_eq!(listed, hashes);
        assert_eq!(store.count().unwrap(), 1003);
    }
}

/// A reader that gives at most 7777 bytes a call.
struct Trickle<'a>(&'a [u8]);

impl std::io::Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.0.len()).min(7777);
        let (now, rest) = self.0.split_at(n);
        buf[..n].copy_from_slice(now);
        self.0 = rest;
        Ok(n)
    }
}

/// A reader that always fails.
struct Failing;

impl std::io::Read for Failing {
    fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
        Err(std::io::Error::other("the connection dropped"))
    }
}

#[test]
fn invalid_hashes_are_rejected_without_touching_the_backend() {
    let backend = counting();
    let store = ArtifactStore::builder().open(backend.clone()).unwrap();
    let good = artifacts::Hash::of(b"x").to_string();
    let bad = [
        good.to_uppercase(),
        good[..63].to_string(),
        format!("{good}0"),
        "../../etc/passwd".to_string(),
        "zz".repeat(32),
        format!("{}/..", &good[..61]),
        String::new(),
        "\u{0}".repeat(64),
    ];
    // Every call takes a `Hash`: text is parsed before any call is made,
    // and none of these parse (the app boundary's test is the hostile
    // app's `invalid-hashes` mode).
    for hash in &bad {
        assert!(hash.parse::<artifacts::Hash>().is_err(), "{hash:?}");
    }
    let good: artifacts::Hash = format!("blake3:{good}").parse().unwrap();
    // A hash that parses does reach the backend (opening the store made
    // calls of its own: counted from here).
    let calls = || {
        backend
            .watch
            .calls
            .load(std::sync::atomic::Ordering::SeqCst)
    };
    let before = calls();
    assert_eq!(store.get(&good), Err(Error::NotFound(good)));
    assert!(
        calls() > before,
        "a get of a hash that parses asks the backend"
    );
}

/// Serves `content`, and runs a gc with no grace period once `at` bytes are out.
struct GcMidway<'a> {
    content: &'a [u8],
    served: usize,
    at: usize,
    store: ArtifactStore,
}

impl std::io::Read for GcMidway<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.served >= self.at && self.at > 0 {
            self.store.gc(std::time::Duration::ZERO).unwrap();
            self.at = 0;
        }
        let rest = &self.content[self.served..];
        let limit = if self.at > 0 {
            self.at - self.served
        } else {
            rest.len()
        };
        let n = buf.len().min(rest.len()).min(limit);
        buf[..n].copy_from_slice(&rest[..n]);
        self.served += n;
        Ok(n)
    }
}

#[test]
fn a_streamed_put_stalled_past_a_gc_fails_and_never_stores_a_part() {
    let dir = tempfile::tempdir().unwrap();
    let store = ArtifactStore::builder()
        .hash_workers(1)
        .open_dir(dir.path())
        .unwrap();
    let content = pattern((12 << 20) + 5);
    // The gc runs after the first pieces are staged, and removes the
    // staging file (it looks abandoned: no grace period).
    let mut reader = GcMidway {
        content: &content,
        served: 0,
        at: 9 << 20,
        store: store.clone(),
    };
    let result = store.put_from(&mut reader, ArtifactType::Generic);
    assert!(
        matches!(&result, Err(Error::Backend(m)) if m.contains("appending to")),
        "{result:?}"
    );
    assert_eq!(store.count().unwrap(), 0);
    // The same content, unhurried, is stored whole.
    let h = store
        .put_from(&mut &content[..], ArtifactType::Generic)
        .unwrap();
    assert_eq!(store.get(&h).unwrap(), content);
}

#[test]
fn content_over_the_limit_is_refused_before_the_core() {
    let store = ArtifactStore::builder()
        .max_artifact_bytes(1024)
        .open_memory()
        .unwrap();
    assert_eq!(
        store.put(&pattern(1025), ArtifactType::Generic),
        Err(Error::TooLarge {
            size: 1025,
            limit: 1024
        })
    );
    store.put(&pattern(1024), ArtifactType::Generic).unwrap();
}

#[test]
fn an_artifact_larger_than_wasmtimes_default_hostcall_limit_round_trips() {
    // wasmtime lets a guest hand the host at most 128 MiB per call unless
    // told otherwise; the store allows 256 MiB by default.
    let store = ArtifactStore::open_memory().unwrap();
    let content = vec![0x5a; (128 << 20) + 1025];
    let h = store.put(&content, ArtifactType::Generic).unwrap();
    assert_eq!(store.get(&h).unwrap(), content);
    assert_eq!(
        h.to_hex().as_str(),
        blake3::hash(&content).to_hex().as_str()
    );
}

#[test]
fn the_store_is_send_and_sync() {
    fn shareable<T: Send + Sync + Clone + 'static>() {}
    shareable::<ArtifactStore>();
}

each_backend! {
    fn missing_names_what_each_caller_cannot_see_in_order_each_once(fx) {
        let store = fx.open();
        let kept = store.put(b"kept", ArtifactType::Generic).unwrap();
        let released = store.put(b"released", ArtifactType::Generic).unwrap();
        assert_eq!(store.release(&released).unwrap(), 0);
        let never = Hash::of(b"never stored");
        let asked = [never, kept, released, never, kept];
        assert_eq!(store.missing(&asked).unwrap(), vec![never, released]);
        assert_eq!(store.missing(&[]).unwrap(), Vec::<Hash>::new());
        // An app sees only what it holds, and what it was granted while
        // that is stored.
        let mut app = store.app("asker", artifacts::Quota::default()).unwrap();
        let own = app.put(b"own", ArtifactType::Generic).unwrap();
        assert_eq!(
            app.missing(&[own, kept, released]).unwrap(),
            vec![kept, released]
        );
        app.grant(kept);
        app.grant(released);
        assert_eq!(app.missing(&[own, kept, released]).unwrap(), vec![released]);
        // More than one core call's worth: split, in order.
        let many: Vec<Hash> = (0..store.list_limit() as u64 + 5)
            .map(|i| Hash::of(&i.to_le_bytes()))
            .chain([kept])
            .collect();
        assert_eq!(store.missing(&many).unwrap(), many[..many.len() - 1].to_vec());
    }
}

/// `missing` reads one record per hash asked: for an app only its own index
/// entries, never the shared records (what others hold stays unseen).
#[test]
fn missing_reads_one_record_per_hash() {
    use std::sync::atomic::Ordering::SeqCst;
    let backend = counting();
    let store = ArtifactStore::builder().open(backend.clone()).unwrap();
    let kept = store.put(b"kept", ArtifactType::Generic).unwrap();
    let asked: Vec<Hash> = (0..50u64)
        .map(|i| Hash::of(&i.to_le_bytes()))
        .chain([kept])
        .collect();
    let reads = || {
        (
            backend.watch.shared_read.load(SeqCst),
            backend.watch.entries_read.load(SeqCst),
        )
    };
    let before = reads();
    assert_eq!(store.missing(&asked).unwrap().len(), 50);
    assert_eq!(reads(), (before.0 + 51, before.1));
    let app = store.app("asker", artifacts::Quota::default()).unwrap();
    let before = reads();
    assert_eq!(app.missing(&asked).unwrap().len(), 51);
    assert_eq!(reads(), (before.0, before.1 + 51));
}

//! Many threads on one store keep exact reference counts.

use std::sync::Barrier;

use artifacts::ArtifactType;

use crate::fixture::{each_backend, pattern};

const THREADS: usize = 8;

fn puts_per_thread(fx: &crate::fixture::Fixture) -> usize {
    match fx {
        crate::fixture::Fixture::Memory(_) => 50,
        crate::fixture::Fixture::File(_) => 12,
        crate::fixture::Fixture::S3(_) => 4,
    }
}

each_backend! {
    fn same_bytes_from_many_threads_make_one_blob_with_exact_count(fx) {
        let store = fx.open();
        let n = puts_per_thread(fx);
        let content = pattern(1025);
        let barrier = Barrier::new(THREADS);
        let hashes: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..THREADS)
                .map(|_| s.spawn(|| {
                    barrier.wait();
                    (0..n).map(|_| store.put(&content, ArtifactType::Generic).unwrap()).collect::<Vec<_>>()
                }))
                .collect();
            handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
        });
        assert!(hashes.windows(2).all(|w| w[0] == w[1]));
        assert_eq!(store.count().unwrap(), 1);
        assert_eq!(store.stat(&hashes[0]).unwrap().reference_count, (THREADS * n) as u64);

        // Now release them all from many threads: every count is seen once, the last is 0.
        let mut remaining: Vec<u64> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..THREADS)
                .map(|_| s.spawn(|| {
                    barrier.wait();
                    (0..n).map(|_| store.release(&hashes[0]).unwrap()).collect::<Vec<_>>()
                }))
                .collect();
            handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
        });
        remaining.sort_unstable();
        assert_eq!(remaining, (0..(THREADS * n) as u64).collect::<Vec<_>>());
        assert!(!store.contains(&hashes[0]).unwrap());
        assert_eq!(store.count().unwrap(), 0);
    }

    fn puts_racing_releases_to_zero_never_lose_content(fx) {
        let store = fx.open();
        let n = puts_per_thread(fx);
        let content = pattern(2049);
        // Half the threads put and release in turn (driving the count through
        // zero again and again); the others put and keep their reference.
        let kept: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..THREADS)
                .map(|t| {
                    let (store, content) = (&store, &content);
                    s.spawn(move || {
                        let mut kept = Vec::new();
                        for _ in 0..n {
                            let h = store.put(content, ArtifactType::Generic).unwrap();
                            if t % 2 == 0 {
                                store.release(&h).unwrap();
                            } else {
                                kept.push(h);
                                assert_eq!(store.get(&h).unwrap(), *content);
                            }
                        }
                        kept
                    })
                })
                .collect();
            handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
        });
        let meta = store.stat(&kept[0]).unwrap();
        assert_eq!(meta.reference_count, kept.len() as u64);
        assert_eq!(store.get(&kept[0]).unwrap(), content);
    }
}

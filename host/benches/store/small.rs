//! Small-artifact operations per second.

use std::hint::black_box;
use std::time::Duration;

use artifacts::{ArtifactStore, ArtifactType};
use dashmap::DashMap;

use super::measure::{content, time};

/// Put, get and stat of 1 KiB on `store` (memory backend), per second.
pub fn operations(budget: Duration, store: &ArtifactStore) {
    // Small-artifact operations per second.
    println!("\nSmall artifacts (1 KiB), memory backend, operations per second:\n");
    println!("| operation | native     | this store | ratio |");
    println!("|-----------|------------|------------|-------|");
    let map: DashMap<blake3::Hash, (Vec<u8>, u64)> = DashMap::new();
    let data = content(1024, 0);
    let h = blake3::hash(&data);
    map.insert(h, (data.clone(), 1));
    let hash = store.put(&data, ArtifactType::Generic).unwrap();
    let ops: [(&str, f64, f64); 4] = [
        (
            "put",
            time(budget, 100, |i| {
                let d = content(1024, i);
                map.insert(blake3::hash(&d), (d, 1));
            }),
            time(budget, 100, |i| {
                black_box(store.put(&content(1024, i), ArtifactType::Generic).unwrap());
            }),
        ),
        (
            "get",
            time(budget, 100, |_| {
                let d = map.get(&h).unwrap().0.clone();
                assert_eq!(blake3::hash(&d), h);
            }),
            time(budget, 100, |_| {
                black_box(store.get(&hash).unwrap());
            }),
        ),
        (
            // The floor: what any call costs before it does anything (the
            // native side: one lookup, as for stat).
            "empty call",
            time(budget, 100, |_| {
                black_box(map.get(&h).unwrap().1);
            }),
            time(budget, 100, |_| {
                black_box(store.empty_core_call().unwrap());
            }),
        ),
        (
            "stat",
            time(budget, 100, |_| {
                black_box(map.get(&h).unwrap().1);
            }),
            time(budget, 100, |_| {
                black_box(store.stat(&hash).unwrap());
            }),
        ),
    ];
    for (op, native, ours) in ops {
        println!(
            "| {op:<9} | {:>10.0} | {:>10.0} | {:>5.2} |",
            1.0 / native,
            1.0 / ours,
            native / ours
        );
    }
    let floor = ops[2].2;
    let stat = ops[3].2;
    println!(
        "\nstat takes {:.2}x an empty call into the core ({:.1} us against {:.1} us).",
        stat / floor,
        stat * 1e6,
        floor * 1e6
    );
}

//! What operations cost in backend calls: an owner reads only its own
//! index, and private dedup makes joins and leaves cost what new content
//! costs.

use super::*;

/// Backend calls an operation made on the shared records and on index entries.
fn reads(b: &Fake, op: impl FnOnce()) -> (u64, u64) {
    let (shared, entries) = (b.data().shared_reads, b.data().entry_reads);
    op();
    (
        b.data().shared_reads - shared,
        b.data().entry_reads - entries,
    )
}

#[test]
fn an_owner_reads_only_its_own_index_whatever_others_hold() {
    let b = Fake::default();
    let other = app("other", NO_LIMIT);
    let z = app("z", NO_LIMIT);
    let mut others = Vec::new();
    for i in 0..2000u32 {
        others.push(put(&b, &other, &i.to_le_bytes(), G).unwrap());
    }
    // Holding nothing: count, total, list, usage cost one listing, no shared read.
    assert_eq!(reads(&b, || assert_eq!(count(&b, &z).unwrap(), 0)), (0, 1));
    assert_eq!(
        reads(&b, || assert_eq!(total_bytes(&b, &z).unwrap(), 0)),
        (0, 1)
    );
    assert_eq!(
        reads(&b, || assert!(list(&b, &z, None, 1000).unwrap().is_empty())),
        (0, 1)
    );
    // contains/stat of a hash only others hold: one read of its own entry.
    assert_eq!(
        reads(&b, || assert!(!contains(&b, &z, &others[7]).unwrap())),
        (0, 1)
    );
    assert!(matches!(
        reads(&b, || assert!(stat(&b, &z, &others[7]).is_err())),
        (0, 1)
    ));
    let absent = hash_hex(b"nobody has this");
    assert_eq!(
        reads(&b, || assert!(!contains(&b, &z, &absent).unwrap())),
        (0, 1)
    );
    // Holding three: a listing that returns them (plus the usage record).
    for i in 0..3u32 {
        put(&b, &z, &(10_000 + i).to_le_bytes(), G).unwrap();
    }
    assert_eq!(
        reads(&b, || assert_eq!(count(&b, &z).unwrap(), 3)),
        (0, 1 + 4)
    );
    assert_eq!(
        reads(&b, || assert_eq!(list(&b, &z, None, 10).unwrap().len(), 3)),
        (0, 1 + 4)
    );
}

/// Backend calls (and blob writes) of one operation.
/// An app without limits, under `dedup`.
fn owner(name: &str, dedup: Dedup) -> Caller<'_> {
    Caller {
        dedup,
        ..app(name, NO_LIMIT)
    }
}

fn work(b: &Fake, op: impl FnOnce()) -> (u64, u64) {
    let (calls, blobs) = (
        b.data().calls,
        b.data().staged_writes + b.data().blob_writes,
    );
    op();
    (
        b.data().calls - calls,
        b.data().staged_writes + b.data().blob_writes - blobs,
    )
}

#[test]
fn private_dedup_makes_joining_and_leaving_cost_what_new_content_costs() {
    for dedup in [Dedup::Shared, Dedup::Private] {
        let b = Fake::default();
        let (other, me) = (owner("other", dedup), owner("me", dedup));
        put(&b, &other, b"held by other", G).unwrap();
        let joined = work(&b, || drop(put(&b, &me, b"held by other", G).unwrap()));
        let fresh = work(&b, || drop(put(&b, &me, b"fresh", G).unwrap()));
        let left = work(&b, || {
            assert_eq!(release(&b, &me, &hash_hex(b"held by other")).unwrap(), 0)
        });
        let last = work(&b, || {
            assert_eq!(release(&b, &me, &hash_hex(b"fresh")).unwrap(), 0)
        });
        if dedup == Dedup::Private {
            assert_eq!(joined, fresh, "put: backend calls and blob writes");
            assert_eq!(left, last, "release: backend calls and blob writes");
            // Both releases still count against the quota, until the run's
            // end settles them: only then is the last one's deletion
            // finished (or by gc, after a crash).
            assert_eq!(usage(&b, &me).unwrap().bytes, 18);
            assert!(b.data().blobs.contains_key(&hash_hex(b"fresh")));
            assert_eq!(settle(&b, &me).unwrap(), vec![hash_hex(b"fresh")]);
            assert!(!b.data().blobs.contains_key(&hash_hex(b"fresh")));
            assert_eq!(usage(&b, &me).unwrap().bytes, 0);
            assert_eq!(gc(&b, 0).unwrap().deletions_finished, 0);
        } else {
            assert_ne!(joined, fresh, "shared dedup: a join writes no blob");
            assert_ne!(left, last, "shared dedup: only the last release deletes");
        }
    }
}

#[test]
fn what_each_operation_costs_in_backend_calls() {
    // Printed for the docs (`--nocapture`); pinned loosely so a change in
    // cost is a conscious one.
    let b = Fake::default();
    let a = app("a", NO_LIMIT);
    let h = hash_hex(b"x");
    let mut costs = Vec::new();
    let mut cost = |what: &str, op: &mut dyn FnMut()| {
        let before = b.data().calls;
        op();
        costs.push((what.to_string(), b.data().calls - before));
    };
    cost("first put", &mut || drop(put(&b, &a, b"x", G).unwrap()));
    cost("put again", &mut || drop(put(&b, &a, b"x", G).unwrap()));
    cost("contains", &mut || assert!(contains(&b, &a, &h).unwrap()));
    cost("stat", &mut || drop(stat(&b, &a, &h).unwrap()));
    cost("count", &mut || assert_eq!(count(&b, &a).unwrap(), 1));
    cost("release, one left", &mut || {
        assert_eq!(release(&b, &a, &h).unwrap(), 1)
    });
    cost("last release", &mut || {
        assert_eq!(release(&b, &a, &h).unwrap(), 0)
    });
    eprintln!("{costs:?}");
    let of = |what: &str| costs.iter().find(|(w, _)| w == what).unwrap().1;
    assert!(of("first put") <= 20 && of("last release") <= 20);
    assert_eq!((of("put again"), of("contains"), of("stat")), (3, 1, 1));
    assert_eq!(of("release, one left"), 2);
}

/// Backend calls, blob writes and outboard writes of one operation.
fn large_work(b: &Fake, op: impl FnOnce()) -> (u64, u64, u64) {
    let outboards = b.data().outboard_writes;
    let (calls, blobs) = work(b, op);
    (calls, blobs, b.data().outboard_writes - outboards)
}

#[test]
fn a_large_put_of_deleted_content_costs_what_new_content_costs_and_held_too_if_private() {
    let large = |tag: u8| {
        let mut c = vec![7u8; 300_000];
        c[0] = tag;
        c
    };
    for dedup in [Dedup::Shared, Dedup::Private] {
        let b = Fake::default();
        let (other, me) = (owner("other", dedup), owner("me", dedup));
        put(&b, &me, b"mine", G).unwrap();
        put(&b, &other, b"theirs", G).unwrap();
        let (new, deleted, held) = (large(1), large(2), large(3));
        let fresh = large_work(&b, || drop(put(&b, &me, &new, G).unwrap()));
        let h = put(&b, &other, &deleted, G).unwrap();
        assert_eq!(release(&b, &other, &h).unwrap(), 0);
        if dedup == Dedup::Shared {
            assert!(!b.data().blobs.contains_key(&h));
            assert!(!b.data().outboards.contains_key(&h), "outboard left");
        }
        let again = large_work(&b, || drop(put(&b, &me, &deleted, G).unwrap()));
        put(&b, &other, &held, G).unwrap();
        let joined = large_work(&b, || drop(put(&b, &me, &held, G).unwrap()));
        assert_eq!(fresh, again, "{dedup:?}: put of deleted content");
        assert_eq!(fresh.2, 1, "new content gets an outboard");
        if dedup == Dedup::Private {
            assert_eq!(fresh, joined, "private: put of held content");
            // gc finishes the last release's deletion, outboard included.
            assert_eq!(release(&b, &me, &h).unwrap(), 0);
            assert_eq!(gc(&b, u64::MAX).unwrap().deletions_finished, 1);
            assert!(!b.data().blobs.contains_key(&h));
            assert!(!b.data().outboards.contains_key(&h), "outboard left");
        }
    }
}

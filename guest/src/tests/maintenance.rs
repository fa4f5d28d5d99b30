//! Maintenance: gc, what crashed calls leave behind, and migration from
//! format 1.

use super::*;

#[test]
fn gc_removes_only_old_unreferenced_blobs() {
    let b = Fake::default();
    b.data_mut().clock = 1_000;
    let kept = put(&b, &H, b"referenced", G).unwrap();
    let orphan = hash_hex(b"orphan");
    b.write_blob(&key(&orphan), b"orphan").unwrap();
    b.data_mut().clock = 5_000;
    let young = hash_hex(b"young");
    b.write_blob(&key(&young), b"young").unwrap();
    b.data_mut().clock = 10_000;
    let report = gc(&b, 6_000).unwrap();
    assert_eq!(
        report,
        GcReport {
            orphans_removed: 1,
            bytes_freed: 6,
            orphans_in_grace: 1,
            deletions_finished: 0
        }
    );
    assert!(!b.data().blobs.contains_key(&orphan));
    assert!(
        b.data().blobs.contains_key(&young),
        "within the grace period"
    );
    assert_eq!(
        get(&b, &H, &kept).unwrap(),
        b"referenced",
        "referenced blobs are never touched"
    );
    assert_eq!(gc(&b, 0).unwrap().orphans_removed, 1);
    assert_eq!(get(&b, &H, &kept).unwrap(), b"referenced");
}

#[test]
fn gc_finishes_abandoned_deletions() {
    let b = Fake::default();
    let h = put(&b, &H, b"x", G).unwrap();
    b.abandon_deletion(&h);
    assert_eq!(gc(&b, 0).unwrap().deletions_finished, 1);
    assert!(b.data().records.is_empty() && b.data().blobs.is_empty());
}

/// A private-dedup caller with `quota`.
fn private(owner: &str, quota: Quota) -> Caller<'_> {
    Caller {
        dedup: Dedup::Private,
        ..app(owner, quota)
    }
}

#[test]
fn under_private_dedup_released_bytes_count_until_settled_or_collected() {
    let b = Fake::default();
    let quota = Quota {
        max_bytes: 10,
        ..NO_LIMIT
    };
    let me = private("me", quota);
    let h = put(&b, &me, b"0123456789", G).unwrap();
    assert_eq!(release(&b, &me, &h).unwrap(), 0);
    // Still on disk: still counted, so a put of anything more is refused.
    assert!(b.data().blobs.contains_key(&h));
    assert_eq!(usage(&b, &me).unwrap().bytes, 10);
    assert!(matches!(
        put(&b, &me, b"x", G),
        Err(Error::QuotaExceeded {
            kind: QuotaKind::Bytes,
            ..
        })
    ));
    // The run crashed before settling: gc settles it.
    assert_eq!(gc(&b, 0).unwrap().deletions_finished, 1);
    assert!(!b.data().blobs.contains_key(&h));
    assert_eq!(usage(&b, &me).unwrap().bytes, 0);
    put(&b, &me, b"x", G).unwrap();
}

#[test]
fn under_private_dedup_at_most_max_waiting_leaves_wait() {
    let b = Fake::default();
    let me = private("me", NO_LIMIT);
    let n = 2048;
    let hashes: Vec<_> = (0..=n)
        .map(|i: u32| put(&b, &me, &i.to_le_bytes(), G).unwrap())
        .collect();
    for h in &hashes[..n as usize] {
        release(&b, &me, h).unwrap();
    }
    let last = &hashes[n as usize];
    let refused = release(&b, &me, last);
    assert!(
        matches!(
            refused,
            Err(Error::QuotaExceeded {
                kind: QuotaKind::Artifacts,
                limit: 2048,
                ..
            })
        ),
        "{refused:?}"
    );
    assert!(
        contains(&b, &me, last).unwrap(),
        "refused before any change"
    );
    assert!(matches!(
        put(&b, &me, b"one more", G),
        Err(Error::QuotaExceeded { .. })
    ));
    assert_eq!(settle(&b, &me).unwrap().len(), n as usize);
    assert_eq!(release(&b, &me, last).unwrap(), 0);
}

#[test]
fn a_crashed_first_put_is_finished_by_the_next_put_or_rolled_back_by_gc() {
    let b = Fake::default();
    b.data_mut().clock = 1_000;
    let a = app("a", NO_LIMIT);
    let h = hash_hex(b"x");
    // A put that died after writing its entry and charging its usage.
    let space = owner_key("a");
    let adding = crate::record::Entry {
        state: crate::record::EntryState::Adding,
        artifact_type: G,
        size: 1,
        stored_at: 1_000,
        count: 0,
        incarnation: 0,
        origin: crate::record::Origin::default(),
        named: 0,
    };
    let Ok(Swap::Written(v)) = b.swap_record(
        Space::Owner(&space).at(&key(&h)),
        None,
        Some(&adding.encode()),
    ) else {
        panic!()
    };
    let charged = Usage {
        bytes: 1,
        artifacts: 1,
        marks: vec![crate::record::Mark {
            join: true,
            key: crate::record::Entry::decode(&adding.encode())
                .map(|_| [0u8; 32])
                .unwrap(),
            version: v,
            size: 1,
        }],
    };
    let _ = charged;
    // Readers see nothing held.
    assert!(!contains(&b, &a, &h).unwrap());
    assert_eq!(count(&b, &a).unwrap(), 0);
    assert_eq!(release(&b, &a, &h), Err(Error::NotFound(h.clone())));
    // gc within the grace period leaves it; past it, rolls it back.
    assert_eq!(gc(&b, 10_000).unwrap().deletions_finished, 0);
    b.data_mut().clock = 20_000;
    assert_eq!(gc(&b, 10_000).unwrap().deletions_finished, 1);
    assert!(b.data().entries.is_empty());
    // The same crash again; this time the owner's next put finishes it and
    // takes its own reference too: the crashed put took effect.
    b.swap_record(
        Space::Owner(&space).at(&key(&h)),
        None,
        Some(&adding.encode()),
    )
    .unwrap();
    put(&b, &a, b"x", G).unwrap();
    assert_eq!(stat(&b, &a, &h).unwrap().reference_count, 2);
    assert_eq!(
        usage(&b, &a).unwrap(),
        Usage {
            bytes: 1,
            artifacts: 1,
            marks: vec![]
        }
    );
    assert!(b.record(&h).unwrap().marks.is_empty());
}

#[test]
fn migrate_turns_format_1_records_into_entries_and_counts() {
    use crate::record::RecordV1;
    let b = Fake::default();
    let (h1, h2, h3) = (hash_hex(b"one"), hash_hex(b"two"), hash_hex(b"three"));
    b.write_blob(&key(&h1), b"one").unwrap();
    b.write_blob(&key(&h2), b"two").unwrap();
    b.write_blob(&key(&h3), b"three").unwrap();
    let v1 = |owners: Vec<(&str, u64)>, state| RecordV1 {
        state,
        artifact_type: ArtifactType::AppManifest,
        size: 3,
        stored_at: 7,
        owners: owners
            .into_iter()
            .map(|(o, n)| (o.to_string(), n))
            .collect(),
    };
    let write = |k: &str, data: Vec<u8>| {
        b.swap_record(Space::Shared.at(&key(k)), None, Some(&data))
            .unwrap()
    };
    write(&h1, v1(vec![("@host", 2), ("a", 1)], State::Live).encode());
    write(&h2, v1(vec![("a", 3)], State::Live).encode());
    write(&h3, v1(vec![], State::Deleting).encode());
    // An old usage record (format 1) under the old key scheme.
    let mut old_usage = Usage::default().encode();
    old_usage[4] = 1;
    old_usage.truncate(24);
    write(&hash_hex(b"usage-key-of-a"), old_usage);
    assert!(
        matches!(count(&b, &H), Err(Error::CorruptRecord(_))),
        "format 1 is refused"
    );
    assert_eq!(migrate(&b).unwrap(), 2);
    assert_eq!(migrate(&b).unwrap(), 0, "idempotent");
    let a = app("a", NO_LIMIT);
    assert_eq!(count(&b, &H).unwrap(), 2);
    assert_eq!(stat(&b, &H, &h1).unwrap().reference_count, 2);
    assert_eq!(stat(&b, &a, &h1).unwrap().reference_count, 1);
    assert_eq!(stat(&b, &a, &h2).unwrap().reference_count, 3);
    assert_eq!(usage(&b, &a).unwrap().artifacts, 2);
    assert_eq!(usage(&b, &a).unwrap().bytes, 6);
    assert_eq!(b.record(&h1).unwrap().owners, 2);
    assert!(
        !b.data().blobs.contains_key(&h3),
        "the half-done deletion is finished"
    );
    assert_eq!(b.data().records.len(), 2, "the old usage record is gone");
    // And the store works as format 2 from here.
    assert_eq!(release(&b, &a, &h1).unwrap(), 0);
    assert_eq!(b.record(&h1).unwrap().owners, 1);
    for _ in 0..3 {
        release(&b, &a, &h2).unwrap();
    }
    assert!(b.record(&h2).is_none());
}

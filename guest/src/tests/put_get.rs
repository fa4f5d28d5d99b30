//! Puts and gets: round trips, staged puts, dedup, and integrity: what
//! is refused, and that nothing unverified is served.

use super::*;

#[test]
fn put_then_get_round_trips_sizes_around_a_chunk() {
    let b = Fake::default();
    for size in [0usize, 1, 1023, 1024, 1025, 2048, 2049] {
        let content: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        let hash = put(&b, &H, &content, G).unwrap();
        assert_eq!(hash, hash_hex(&content));
        assert_eq!(get(&b, &H, &hash).unwrap(), content);
    }
}

#[test]
fn put_staged_stores_the_staged_blob_once_and_dedups_like_put() {
    let b = Fake::default();
    let content: Vec<u8> = (0..3000).map(|i| (i % 251) as u8).collect();
    let hash = hash_hex(&content);
    b.data_mut().staged = Some(content.clone());
    let size = content.len() as u64;
    assert_eq!(put_staged(&b, &H, size, G, &hash).unwrap(), hash);
    assert_eq!(b.data().staged_writes, 1);
    assert_eq!(get(&b, &H, &hash).unwrap(), content);
    // Known content: one more reference, nothing stored again.
    assert_eq!(put_staged(&b, &H, size, G, &hash).unwrap(), hash);
    assert_eq!(b.data().staged_writes, 1);
    assert_eq!(put(&b, &H, &content, G).unwrap(), hash);
    assert_eq!(stat(&b, &H, &hash).unwrap().reference_count, 3);
    // A lost blob is repaired from the staged bytes.
    b.data_mut().blobs.remove(&hash);
    assert_eq!(put_staged(&b, &H, size, G, &hash).unwrap(), hash);
    assert_eq!(b.data().staged_writes, 2);
    assert_eq!(verify(&b, &H, &hash).unwrap().reference_count, 4);
    // The size is checked against the caller's limit before anything is read.
    let small = Caller {
        quota: Quota {
            max_artifact_bytes: size - 1,
            ..Quota::UNLIMITED
        },
        ..H
    };
    let calls = b.data().calls;
    assert!(matches!(
        put_staged(&b, &small, size, G, &hash),
        Err(Error::QuotaExceeded { .. })
    ));
    for bad in ["", "../x", &hash.to_uppercase(), &hash[..63]] {
        assert!(matches!(
            put_staged(&b, &H, size, G, bad),
            Err(Error::InvalidHash(_))
        ));
    }
    assert_eq!(b.data().calls, calls, "a refused put reached the backend");
    // Without a staged blob the backend's error comes back; no record is made.
    let other = Fake::default();
    assert!(matches!(
        put_staged(&other, &H, size, G, &hash),
        Err(Error::Backend(_))
    ));
    assert_eq!(count(&other, &H).unwrap(), 0);
}

#[test]
fn duplicate_put_dedups_and_counts_references() {
    let b = Fake::default();
    let h1 = put(&b, &H, b"same", ArtifactType::WasmModule).unwrap();
    let h2 = put(&b, &H, b"same", ArtifactType::Generic).unwrap();
    assert_eq!(h1, h2);
    assert_eq!(count(&b, &H).unwrap(), 1);
    let meta = stat(&b, &H, &h1).unwrap();
    assert_eq!(meta.reference_count, 2);
    assert_eq!(
        meta.artifact_type,
        ArtifactType::WasmModule,
        "first type kept"
    );
    assert_eq!(meta.stored_at, 42);
}

#[test]
fn different_content_gives_different_hashes() {
    let b = Fake::default();
    assert_ne!(put(&b, &H, b"a", G).unwrap(), put(&b, &H, b"b", G).unwrap());
}

#[test]
fn tampered_blob_is_refused_with_both_hashes() {
    let b = Fake::default();
    let h = put(&b, &H, b"original", G).unwrap();
    b.data_mut().blobs.insert(h.clone(), b"tampered".to_vec());
    let err = Error::Integrity {
        expected: h.clone(),
        actual: hash_hex(b"tampered"),
    };
    assert_eq!(get(&b, &H, &h), Err(err.clone()));
    assert_eq!(verify(&b, &H, &h), Err(err));
}

#[test]
fn missing_blob_is_reported_not_served() {
    let b = Fake::default();
    let h = put(&b, &H, b"x", G).unwrap();
    b.data_mut().blobs.clear();
    assert_eq!(get(&b, &H, &h), Err(Error::MissingContent(h)));
}

#[test]
fn invalid_hashes_never_reach_the_backend() {
    let b = Fake::default();
    let good = hash_hex(b"x");
    for bad in [
        good.to_uppercase(),
        good[..10].to_string(),
        "../../etc/passwd".into(),
        "zz".repeat(32),
    ] {
        assert!(matches!(get(&b, &H, &bad), Err(Error::InvalidHash(_))));
        assert!(matches!(stat(&b, &H, &bad), Err(Error::InvalidHash(_))));
        assert!(matches!(contains(&b, &H, &bad), Err(Error::InvalidHash(_))));
        assert!(matches!(release(&b, &H, &bad), Err(Error::InvalidHash(_))));
        assert!(matches!(remove(&b, &H, &bad), Err(Error::InvalidHash(_))));
        assert!(matches!(verify(&b, &H, &bad), Err(Error::InvalidHash(_))));
        assert!(matches!(
            list(&b, &H, Some(&bad), 1),
            Err(Error::InvalidHash(_))
        ));
    }
    assert_eq!(b.data().calls, 0);
}

#[test]
fn corrupt_record_is_an_error_not_a_panic() {
    let b = Fake::default();
    let h = put(&b, &H, b"x", G).unwrap();
    b.data_mut().records.get_mut(&h).unwrap().data = vec![1, 2, 3];
    assert!(matches!(get(&b, &H, &h), Err(Error::CorruptRecord(_))));
    let a = app("a", NO_LIMIT);
    assert!(matches!(put(&b, &a, b"x", G), Err(Error::CorruptRecord(_))));
    assert!(matches!(count(&b, &H), Err(Error::CorruptRecord(_))));
    assert!(
        !contains(&b, &a, &h).unwrap(),
        "the refused put left nothing held"
    );
    assert_eq!(usage(&b, &a).unwrap(), Usage::default(), "nor charged");
    // A damaged index entry is an error for its owner only.
    let space = owner_key("@host");
    b.data_mut()
        .entries
        .get_mut(&(space.to_string(), h.clone()))
        .unwrap()
        .data = vec![9];
    assert!(matches!(release(&b, &H, &h), Err(Error::CorruptRecord(_))));
    assert!(matches!(count(&b, &a), Ok(0)));
}

#[test]
fn a_put_of_known_content_repairs_a_lost_or_truncated_blob() {
    let b = Fake::default();
    let h = put(&b, &H, b"precious", G).unwrap();
    b.data_mut().blobs.remove(&h);
    put(&b, &H, b"precious", G).unwrap();
    assert_eq!(get(&b, &H, &h).unwrap(), b"precious");
    b.data_mut().blobs.insert(h.clone(), b"prec".to_vec());
    put(&b, &H, b"precious", G).unwrap();
    assert_eq!(get(&b, &H, &h).unwrap(), b"precious");
    assert_eq!(stat(&b, &H, &h).unwrap().reference_count, 3);
}

#[test]
fn check_content_gives_gets_verdict_without_the_bytes() {
    let b = Fake::default();
    let h = put(&b, &H, b"original", G).unwrap();
    assert_eq!(check_content(&b, &H, &h, b"original"), Ok(()));
    // Other bytes: the integrity error a get of them would give.
    let err = Error::Integrity {
        expected: h.clone(),
        actual: hash_hex(b"tampered"),
    };
    assert_eq!(check_content(&b, &H, &h, b"tampered"), Err(err));
    // A record whose size disagrees with the content: corrupt-record.
    let other = put(&b, &H, b"another", G).unwrap();
    let mut record = b.record(&other).unwrap();
    record.size += 1;
    b.data_mut().records.get_mut(&other).unwrap().data = record.encode();
    assert!(matches!(
        check_content(&b, &H, &other, b"another"),
        Err(Error::CorruptRecord(_))
    ));
    // Nothing stored under the hash, or a hash that is not one.
    let absent = hash_hex(b"absent");
    assert_eq!(
        check_content(&b, &H, &absent, b"absent"),
        Err(Error::NotFound(absent))
    );
    assert!(matches!(
        check_content(&b, &H, "nope", b""),
        Err(Error::InvalidHash(_))
    ));
    // An owner may check only what it holds.
    let a = app("a", NO_LIMIT);
    assert_eq!(
        check_content(&b, &a, &h, b"original"),
        Err(Error::NotFound(h.clone()))
    );
    put(&b, &a, b"original", G).unwrap();
    assert_eq!(check_content(&b, &a, &h, b"original"), Ok(()));
}

#[test]
fn a_hosts_get_reads_the_shared_record_once_and_no_entry() {
    let b = Fake::default();
    let h = put(&b, &H, b"x", G).unwrap();
    let (shared, entries) = (b.data().shared_reads, b.data().entry_reads);
    assert_eq!(get(&b, &H, &h).unwrap(), b"x");
    assert_eq!(check_content(&b, &H, &h, b"x"), Ok(()));
    assert_eq!(
        (
            b.data().shared_reads - shared,
            b.data().entry_reads - entries
        ),
        (2, 0),
        "one record read each; a get needs no reference count"
    );
}

#[test]
fn open_reads_the_record_once_and_answers_small_content_whole() {
    let b = Fake::default();
    let h = put(&b, &H, b"small", G).unwrap();
    let (shared, entries) = (b.data().shared_reads, b.data().entry_reads);
    let opened = open(&b, &H, &h, 16, false).unwrap();
    assert_eq!(opened.content.as_deref(), Some(&b"small"[..]));
    assert_eq!(
        (opened.metadata.size, opened.metadata.reference_count),
        (5, 0)
    );
    let counted = open(&b, &H, &h, 5, true).unwrap();
    assert_eq!(
        (counted.content, counted.metadata.reference_count),
        (None, 1)
    );
    assert_eq!(
        (
            b.data().shared_reads - shared,
            b.data().entry_reads - entries
        ),
        (2, 1),
        "one record read each; the count only when asked"
    );
    // An owner sees only what it holds, from its own entry.
    let a = app("a", NO_LIMIT);
    assert_eq!(open(&b, &a, &h, 16, false), Err(Error::NotFound(h.clone())));
    put(&b, &a, b"small", G).unwrap();
    assert_eq!(
        open(&b, &a, &h, 16, false)
            .unwrap()
            .metadata
            .reference_count,
        1
    );
    // Damaged small content is refused as a get refuses it.
    b.data_mut().blobs.insert(h.clone(), b"smalL".to_vec());
    assert!(matches!(
        open(&b, &H, &h, 16, false),
        Err(Error::Integrity { .. })
    ));
    assert!(open(&b, &H, &h, 5, false).unwrap().content.is_none());
}

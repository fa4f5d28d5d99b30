//! Owners: what each sees, its own counts, quotas and owner ids.

use super::*;

#[test]
fn apps_see_only_what_they_reference() {
    let b = Fake::default();
    let (a, z) = (app("a", NO_LIMIT), app("z", NO_LIMIT));
    let h = put(&b, &a, b"mine", G).unwrap();
    assert_eq!(get(&b, &z, &h), Err(Error::NotFound(h.clone())));
    assert_eq!(stat(&b, &z, &h), Err(Error::NotFound(h.clone())));
    assert_eq!(verify(&b, &z, &h), Err(Error::NotFound(h.clone())));
    assert!(!contains(&b, &z, &h).unwrap());
    assert_eq!(release(&b, &z, &h), Err(Error::NotFound(h.clone())));
    assert_eq!(remove(&b, &z, &h), Err(Error::NotFound(h.clone())));
    assert!(list(&b, &z, None, 10).unwrap().is_empty());
    assert_eq!(
        (count(&b, &z).unwrap(), total_bytes(&b, &z).unwrap()),
        (0, 0)
    );
    // The host sees everything; the owner still has its artifact.
    assert_eq!(get(&b, &H, &h).unwrap(), b"mine");
    assert_eq!(get(&b, &a, &h).unwrap(), b"mine");
}

#[test]
fn references_are_counted_per_owner() {
    let b = Fake::default();
    let (a, z) = (app("a", NO_LIMIT), app("z", NO_LIMIT));
    let h = put(&b, &a, b"shared", G).unwrap();
    put(&b, &a, b"shared", G).unwrap();
    put(&b, &z, b"shared", G).unwrap();
    assert_eq!(stat(&b, &a, &h).unwrap().reference_count, 2, "own count");
    assert_eq!(stat(&b, &z, &h).unwrap().reference_count, 1, "own count");
    assert_eq!(
        stat(&b, &H, &h).unwrap().reference_count,
        0,
        "the host sees the artifact, and its own references: none"
    );
    // z's remove drops only z's references.
    remove(&b, &z, &h).unwrap();
    assert!(!contains(&b, &z, &h).unwrap());
    assert_eq!(get(&b, &a, &h).unwrap(), b"shared");
    // a's releases: the last one deletes.
    assert_eq!(release(&b, &a, &h).unwrap(), 1);
    assert_eq!(release(&b, &a, &h).unwrap(), 0);
    assert!(!contains(&b, &H, &h).unwrap());
    assert!(b.data().blobs.is_empty());
}

#[test]
fn host_release_drops_only_host_references() {
    let b = Fake::default();
    let a = app("a", NO_LIMIT);
    let h = put(&b, &a, b"x", G).unwrap();
    assert_eq!(
        release(&b, &H, &h),
        Err(Error::NotFound(h.clone())),
        "host holds none"
    );
    put(&b, &H, b"x", G).unwrap();
    assert_eq!(release(&b, &H, &h).unwrap(), 0);
    assert_eq!(get(&b, &a, &h).unwrap(), b"x", "a's reference keeps it");
    // The host's remove deletes whatever the owners, and gives a's usage back.
    remove(&b, &H, &h).unwrap();
    assert!(!contains(&b, &a, &h).unwrap());
    assert_eq!(usage(&b, &a).unwrap(), Usage::default());
}

#[test]
fn quotas_are_enforced_before_anything_is_written() {
    let b = Fake::default();
    let q = Quota {
        max_bytes: 2048,
        max_artifacts: 3,
        max_artifact_bytes: 1024,
    };
    let a = app("a", q);
    let err = put(&b, &a, &[0; 1025], G).unwrap_err();
    assert_eq!(
        err,
        Error::QuotaExceeded {
            kind: QuotaKind::ArtifactBytes,
            limit: 1024,
            requested: 1025
        }
    );
    put(&b, &a, &[1; 1024], G).unwrap();
    put(&b, &a, &[2; 1024], G).unwrap();
    let blobs_before = b.data().blobs.len();
    let err = put(&b, &a, &[3; 1], G).unwrap_err();
    assert_eq!(
        err,
        Error::QuotaExceeded {
            kind: QuotaKind::Bytes,
            limit: 2048,
            requested: 2049
        }
    );
    assert_eq!(b.data().blobs.len(), blobs_before, "nothing written");
    // A repeat put of content it already holds costs nothing.
    put(&b, &a, &[1; 1024], G).unwrap();
    assert_eq!(
        usage(&b, &a).unwrap(),
        Usage {
            bytes: 2048,
            artifacts: 2,
            marks: vec![]
        }
    );
    // Content another owner stored still counts once against a when a references it.
    let z = app("z", NO_LIMIT);
    let small = put(&b, &z, &[9; 10], G).unwrap();
    let err = put(&b, &a, &[9; 10], G).unwrap_err();
    assert!(matches!(
        err,
        Error::QuotaExceeded {
            kind: QuotaKind::Bytes,
            ..
        }
    ));
    assert!(!contains(&b, &a, &small).unwrap());
    // Releasing frees quota.
    let first = hash_hex(&[1; 1024]);
    release(&b, &a, &first).unwrap();
    release(&b, &a, &first).unwrap();
    assert_eq!(
        usage(&b, &a).unwrap(),
        Usage {
            bytes: 1024,
            artifacts: 1,
            marks: vec![]
        }
    );
    put(&b, &a, &[9; 10], G).unwrap();
    let q1 = Quota {
        max_artifacts: 2,
        ..q
    };
    let err = put(&b, &app("a", q1), b"third", G).unwrap_err();
    assert!(matches!(
        err,
        Error::QuotaExceeded {
            kind: QuotaKind::Artifacts,
            limit: 2,
            requested: 3
        }
    ));
}

#[test]
fn invalid_owner_ids_are_refused() {
    let b = Fake::default();
    let long = "a".repeat(65);
    for owner in ["", "a\\b", "é", "with space", &long] {
        let c = app(owner, NO_LIMIT);
        assert!(
            matches!(put(&b, &c, b"x", G), Err(Error::InvalidOwner(_))),
            "{owner:?}"
        );
        assert!(matches!(list(&b, &c, None, 1), Err(Error::InvalidOwner(_))));
    }
    assert_eq!(b.data().calls, 0);
}

#[test]
fn an_owner_sees_its_own_first_put_not_anyone_elses() {
    let b = Fake::default();
    b.data_mut().clock = 1_000;
    let (a, z) = (app("a", NO_LIMIT), app("z", NO_LIMIT));
    let h = put(&b, &a, b"shared", ArtifactType::WasmModule).unwrap();
    b.data_mut().clock = 2_000;
    put(&b, &z, b"shared", ArtifactType::ConfigBundle).unwrap();
    let (ma, mz) = (stat(&b, &a, &h).unwrap(), stat(&b, &z, &h).unwrap());
    assert_eq!(
        (ma.artifact_type, ma.stored_at),
        (ArtifactType::WasmModule, 1_000)
    );
    assert_eq!(
        (mz.artifact_type, mz.stored_at),
        (ArtifactType::ConfigBundle, 2_000)
    );
    assert_eq!(list(&b, &z, None, 10).unwrap(), vec![mz.clone()]);
    assert_eq!(verify(&b, &z, &h).unwrap(), mz);
    // The host keeps the store-wide view: the first put in the store.
    let mh = stat(&b, &H, &h).unwrap();
    assert_eq!(
        (mh.artifact_type, mh.stored_at),
        (ArtifactType::WasmModule, 1_000)
    );
    // z leaves and comes back: its own new first put.
    release(&b, &z, &h).unwrap();
    b.data_mut().clock = 3_000;
    put(&b, &z, b"shared", G).unwrap();
    let mz = stat(&b, &z, &h).unwrap();
    assert_eq!((mz.artifact_type, mz.stored_at), (G, 3_000));
}

#[test]
fn any_number_of_owners_may_hold_one_artifact_in_a_small_record() {
    let b = Fake::default();
    let names: Vec<String> = (0..1500).map(|i| format!("app-{i}")).collect();
    for name in &names {
        put(&b, &app(name, NO_LIMIT), b"popular", G).unwrap();
    }
    let h = hash_hex(b"popular");
    let record = b.record(&h).unwrap();
    assert_eq!(record.owners, 1500);
    assert!(record.marks.is_empty());
    assert!(b.data().records[&h].data.len() < 100, "no owner list");
    // Every owner releases; the last deletes.
    for name in &names {
        assert_eq!(release(&b, &app(name, NO_LIMIT), &h).unwrap(), 0);
    }
    assert!(b.data().records.is_empty() && b.data().blobs.is_empty());
    assert!(b.data().entries.is_empty(), "no entries or usage left");
}

#[test]
fn missing_answers_per_caller_with_one_read_each() {
    let b = Fake::default();
    let (a, z) = (app("a", NO_LIMIT), app("z", NO_LIMIT));
    let held = put(&b, &a, b"held by a", G).unwrap();
    let other = put(&b, &z, b"held by z", G).unwrap();
    let absent = hash_hex(b"never stored");
    let asked = vec![absent.clone(), held.clone(), other.clone(), absent.clone()];
    // The host sees both stored ones; each missing hash is named once.
    assert_eq!(missing(&b, &H, &asked).unwrap(), vec![absent.clone()]);
    // An owner sees only its own: z's artifact is missing for a, and a's
    // question reads only a's own entries, one each.
    let reads = (b.data().shared_reads, b.data().entry_reads);
    assert_eq!(
        missing(&b, &a, &asked).unwrap(),
        vec![absent.clone(), other.clone()]
    );
    assert_eq!(
        (b.data().shared_reads, b.data().entry_reads),
        (reads.0, reads.1 + 4)
    );
    assert_eq!(missing(&b, &a, &[]).unwrap(), Vec::<String>::new());
    // One invalid hash refuses the batch.
    let bad = vec![held, "not a hash".to_string()];
    assert!(matches!(missing(&b, &a, &bad), Err(Error::InvalidHash(_))));
}

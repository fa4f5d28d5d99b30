//! Releases and removes, and the deletion protocol they end in.

use super::*;

#[test]
fn release_counts_down_and_deletes_at_zero() {
    let b = Fake::default();
    let h = put(&b, &H, b"x", G).unwrap();
    put(&b, &H, b"x", G).unwrap();
    assert_eq!(release(&b, &H, &h).unwrap(), 1);
    assert!(contains(&b, &H, &h).unwrap());
    assert_eq!(release(&b, &H, &h).unwrap(), 0);
    assert!(!contains(&b, &H, &h).unwrap());
    assert!(b.data().blobs.is_empty() && b.data().records.is_empty());
    assert_eq!(release(&b, &H, &h), Err(Error::NotFound(h.clone())));
    assert_eq!(get(&b, &H, &h), Err(Error::NotFound(h)));
}

#[test]
fn remove_deletes_whatever_the_count() {
    let b = Fake::default();
    let h = put(&b, &H, b"x", G).unwrap();
    put(&b, &H, b"x", G).unwrap();
    remove(&b, &H, &h).unwrap();
    assert_eq!(count(&b, &H).unwrap(), 0);
    assert_eq!(remove(&b, &H, &h), Err(Error::NotFound(h)));
}

#[test]
fn put_finishes_an_abandoned_deletion_and_stores_afresh() {
    let b = Fake::default();
    let h = put(&b, &H, b"x", G).unwrap();
    b.abandon_deletion(&h);
    assert!(
        !contains(&b, &H, &h).unwrap(),
        "a deleting artifact is invisible"
    );
    assert_eq!(put(&b, &H, b"x", G).unwrap(), h);
    assert_eq!(stat(&b, &H, &h).unwrap().reference_count, 1);
    assert_eq!(get(&b, &H, &h).unwrap(), b"x");
}

#[test]
fn a_stale_deleter_cannot_delete_a_blob_put_again() {
    let b = Fake::default();
    let h = put(&b, &H, b"x", G).unwrap();
    let deleting = b.abandon_deletion(&h);
    // Another core meets the deletion and stores the content again in a new
    // record (it takes the deletion over: the blob stays)...
    put(&b, &H, b"x", G).unwrap();
    // ...then the first deleter wakes up and tries to finish its own deletion.
    assert_eq!(b.delete_blob(&key(&h), Some(deleting)), Ok(false));
    assert_eq!(
        b.swap_record(Space::Shared.at(&key(&h)), Some(deleting), None),
        Ok(Swap::Conflict)
    );
    assert_eq!(get(&b, &H, &h).unwrap(), b"x");
}

//! Listing, counting and totals.

use super::*;

#[test]
fn list_pages_past_the_limit_in_hash_order() {
    let b = Fake::default();
    let n = LIST_LIMIT as usize + 5;
    let mut hashes: Vec<String> = (0..n)
        .map(|i| put(&b, &H, &i.to_le_bytes(), G).unwrap())
        .collect();
    hashes.sort();
    let first = list(&b, &H, None, u32::MAX).unwrap();
    assert_eq!(first.len(), LIST_LIMIT as usize);
    let rest = list(&b, &H, Some(&first.last().unwrap().hash), 100).unwrap();
    assert_eq!(rest.len(), 5);
    let listed: Vec<String> = first.iter().chain(&rest).map(|m| m.hash.clone()).collect();
    assert_eq!(listed, hashes);
    assert_eq!(count(&b, &H).unwrap(), n as u64);
    assert_eq!(total_bytes(&b, &H).unwrap(), 8 * n as u64);
}

#[test]
fn total_bytes_counts_each_content_once() {
    let b = Fake::default();
    put(&b, &H, &[1; 1024], G).unwrap();
    put(&b, &H, &[1; 1024], G).unwrap();
    put(&b, &H, &[2; 1025], G).unwrap();
    assert_eq!(total_bytes(&b, &H).unwrap(), 2049);
}

#[test]
fn usage_records_never_show_as_artifacts() {
    let b = Fake::default();
    let a = app("a", NO_LIMIT);
    let h = put(&b, &a, b"x", G).unwrap();
    assert_eq!(b.data().records.len(), 1, "the artifact record");
    assert_eq!(b.data().entries.len(), 2, "a's entry and usage record");
    let listed: Vec<String> = list(&b, &H, None, 10)
        .unwrap()
        .into_iter()
        .map(|m| m.hash)
        .collect();
    assert_eq!(listed, vec![h]);
    assert_eq!(count(&b, &H).unwrap(), 1);
    assert!(validate(&usage_key().to_string()).is_ok());
    assert_ne!(usage_key(), Hash::of(b""));
}

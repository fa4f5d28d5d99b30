//! Unit tests of the store's rules over an in-memory fake backend.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

use crate::hash::{hash_hex, validate};
use crate::ops::*;
use crate::record::{ArtifactType, Record, State, Usage};

#[derive(Default)]
struct Fake {
    blobs: RefCell<BTreeMap<String, Vec<u8>>>,
    modified: RefCell<BTreeMap<String, u64>>,
    clock: Cell<u64>,
    records: RefCell<BTreeMap<String, Versioned>>,
    /// Owner index spaces: (owner key, key) -> entry.
    entries: RefCell<BTreeMap<(String, String), Versioned>>,
    next_version: Cell<u64>,
    /// Calls that read or list index entries, and entries they returned.
    entry_reads: Cell<u64>,
    /// Calls that touched the shared records (read, swap, list).
    shared_reads: Cell<u64>,
    calls: Cell<u64>,
    /// What the host staged for `write_staged_blob`, and how often it was stored.
    staged: RefCell<Option<Vec<u8>>>,
    staged_writes: Cell<u64>,
    /// Blob writes over an existing blob.
    rewrites: Cell<u64>,
}

impl Fake {
    fn call(&self) {
        self.calls.set(self.calls.get() + 1);
    }
    fn record(&self, key: &str) -> Option<Record> {
        let data = self.records.borrow().get(key)?.data.clone();
        Record::decode(&data).ok()
    }
    /// The state a last owner's release leaves when it crashes right after
    /// swapping the record to `Deleting`: no entries, a deleting record.
    /// Returns the deleting record's version.
    fn abandon_deletion(&self, key: &str) -> u64 {
        self.entries.borrow_mut().clear();
        let mut rec = self.record(key).unwrap();
        rec.state = State::Deleting;
        rec.owners = 0;
        let v = self.records.borrow()[key].version;
        let Ok(Swap::Written(deleting)) = self.swap_record(key, Some(v), Some(&rec.encode()))
        else {
            panic!("swap failed")
        };
        deleting
    }
}

impl Backend for Fake {
    fn write_blob(&self, key: &str, data: &[u8]) -> Result<(), String> {
        self.call();
        if self.modified.borrow().contains_key(key) {
            self.rewrites.set(self.rewrites.get() + 1);
        }
        self.blobs.borrow_mut().insert(key.into(), data.to_vec());
        self.modified
            .borrow_mut()
            .insert(key.into(), self.clock.get());
        Ok(())
    }
    fn write_staged_blob(&self, key: &str) -> Result<(), String> {
        let data = self.staged.borrow().clone().ok_or("nothing staged")?;
        self.staged_writes.set(self.staged_writes.get() + 1);
        self.write_blob(key, &data)
    }
    fn read_blob(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        self.call();
        Ok(self.blobs.borrow().get(key).cloned())
    }
    fn blob_size(&self, key: &str) -> Result<Option<u64>, String> {
        self.call();
        Ok(self.blobs.borrow().get(key).map(|b| b.len() as u64))
    }
    fn delete_blob(&self, key: &str, record_version: Option<u64>) -> Result<bool, String> {
        self.call();
        let matches = self.records.borrow().get(key).map(|v| v.version) == record_version;
        Ok(matches && self.blobs.borrow_mut().remove(key).is_some())
    }
    fn list_blobs(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<(String, u64, u64)>, String> {
        self.call();
        let modified = self.modified.borrow();
        Ok(self
            .blobs
            .borrow()
            .iter()
            .filter(|(k, _)| after.is_none_or(|a| k.as_str() > a))
            .take(limit as usize)
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.len() as u64,
                    modified.get(k).copied().unwrap_or(0),
                )
            })
            .collect())
    }
    fn read_record(&self, key: &str) -> Result<Option<Versioned>, String> {
        self.call();
        self.shared_reads.set(self.shared_reads.get() + 1);
        Ok(self.records.borrow().get(key).cloned())
    }
    fn swap_record(
        &self,
        key: &str,
        expected: Option<u64>,
        new: Option<&[u8]>,
    ) -> Result<Swap, String> {
        self.call();
        self.shared_reads.set(self.shared_reads.get() + 1);
        let mut records = self.records.borrow_mut();
        if records.get(key).map(|v| v.version) != expected {
            return Ok(Swap::Conflict);
        }
        Ok(match new {
            None => {
                records.remove(key);
                Swap::Deleted
            }
            Some(data) => {
                let version = self.next_version.get() + 1;
                self.next_version.set(version);
                records.insert(
                    key.into(),
                    Versioned {
                        version,
                        data: data.to_vec(),
                    },
                );
                Swap::Written(version)
            }
        })
    }
    fn list_records(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<(String, Versioned)>, String> {
        self.call();
        self.shared_reads.set(self.shared_reads.get() + 1);
        Ok(self
            .records
            .borrow()
            .iter()
            .filter(|(k, _)| after.is_none_or(|a| k.as_str() > a))
            .take(limit as usize)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }
    fn read_entry(&self, owner: &str, key: &str) -> Result<Option<Versioned>, String> {
        self.call();
        self.entry_reads.set(self.entry_reads.get() + 1);
        Ok(self
            .entries
            .borrow()
            .get(&(owner.to_string(), key.to_string()))
            .cloned())
    }
    fn swap_entry(
        &self,
        owner: &str,
        key: &str,
        expected: Option<u64>,
        new: Option<&[u8]>,
    ) -> Result<Swap, String> {
        self.call();
        let mut entries = self.entries.borrow_mut();
        let k = (owner.to_string(), key.to_string());
        if entries.get(&k).map(|v| v.version) != expected {
            return Ok(Swap::Conflict);
        }
        Ok(match new {
            None => {
                entries.remove(&k);
                Swap::Deleted
            }
            Some(data) => {
                let version = self.next_version.get() + 1;
                self.next_version.set(version);
                entries.insert(
                    k,
                    Versioned {
                        version,
                        data: data.to_vec(),
                    },
                );
                Swap::Written(version)
            }
        })
    }
    fn list_entries(
        &self,
        owner: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<(String, Versioned)>, String> {
        self.call();
        let out: Vec<(String, Versioned)> = self
            .entries
            .borrow()
            .range((owner.to_string(), String::new())..)
            .take_while(|((o, _), _)| o == owner)
            .filter(|((_, k), _)| after.is_none_or(|a| k.as_str() > a))
            .take(limit as usize)
            .map(|((_, k), v)| (k.clone(), v.clone()))
            .collect();
        self.entry_reads
            .set(self.entry_reads.get() + 1 + out.len() as u64);
        Ok(out)
    }
    fn list_owners(&self, after: Option<&str>, limit: u32) -> Result<Vec<String>, String> {
        self.call();
        let mut owners: Vec<String> = self
            .entries
            .borrow()
            .keys()
            .map(|(o, _)| o.clone())
            .filter(|o| after.is_none_or(|a| o.as_str() > a))
            .collect();
        owners.dedup();
        owners.truncate(limit as usize);
        Ok(owners)
    }
    fn now(&self) -> u64 {
        self.clock.get().max(42)
    }
}

const G: ArtifactType = ArtifactType::Generic;
const H: Caller = Caller::HOST;

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
    *b.staged.borrow_mut() = Some(content.clone());
    let size = content.len() as u64;
    assert_eq!(put_staged(&b, &H, size, G, &hash).unwrap(), hash);
    assert_eq!(b.staged_writes.get(), 1);
    assert_eq!(get(&b, &H, &hash).unwrap(), content);
    // Known content: one more reference, nothing stored again.
    assert_eq!(put_staged(&b, &H, size, G, &hash).unwrap(), hash);
    assert_eq!(b.staged_writes.get(), 1);
    assert_eq!(put(&b, &H, &content, G).unwrap(), hash);
    assert_eq!(stat(&b, &H, &hash).unwrap().reference_count, 3);
    // A lost blob is repaired from the staged bytes.
    b.blobs.borrow_mut().remove(&hash);
    assert_eq!(put_staged(&b, &H, size, G, &hash).unwrap(), hash);
    assert_eq!(b.staged_writes.get(), 2);
    assert_eq!(verify(&b, &H, &hash).unwrap().reference_count, 4);
    // The size is checked against the caller's limit before anything is read.
    let small = Caller {
        quota: Quota {
            max_artifact_bytes: size - 1,
            ..Quota::UNLIMITED
        },
        ..H
    };
    let calls = b.calls.get();
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
    assert_eq!(b.calls.get(), calls, "a refused put reached the backend");
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
fn release_counts_down_and_deletes_at_zero() {
    let b = Fake::default();
    let h = put(&b, &H, b"x", G).unwrap();
    put(&b, &H, b"x", G).unwrap();
    assert_eq!(release(&b, &H, &h).unwrap(), 1);
    assert!(contains(&b, &H, &h).unwrap());
    assert_eq!(release(&b, &H, &h).unwrap(), 0);
    assert!(!contains(&b, &H, &h).unwrap());
    assert!(b.blobs.borrow().is_empty() && b.records.borrow().is_empty());
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
fn tampered_blob_is_refused_with_both_hashes() {
    let b = Fake::default();
    let h = put(&b, &H, b"original", G).unwrap();
    b.blobs.borrow_mut().insert(h.clone(), b"tampered".to_vec());
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
    b.blobs.borrow_mut().clear();
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
    assert_eq!(b.calls.get(), 0);
}

#[test]
fn corrupt_record_is_an_error_not_a_panic() {
    let b = Fake::default();
    let h = put(&b, &H, b"x", G).unwrap();
    b.records.borrow_mut().get_mut(&h).unwrap().data = vec![1, 2, 3];
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
    b.entries
        .borrow_mut()
        .get_mut(&(space, h.clone()))
        .unwrap()
        .data = vec![9];
    assert!(matches!(release(&b, &H, &h), Err(Error::CorruptRecord(_))));
    assert!(matches!(count(&b, &a), Ok(0)));
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
    // Another core meets the deletion, finishes it and stores the content again...
    put(&b, &H, b"x", G).unwrap();
    // ...then the first deleter wakes up and tries to finish its own deletion.
    assert_eq!(b.delete_blob(&h, Some(deleting)), Ok(false));
    assert_eq!(b.swap_record(&h, Some(deleting), None), Ok(Swap::Conflict));
    assert_eq!(get(&b, &H, &h).unwrap(), b"x");
}

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
fn different_content_gives_different_hashes() {
    let b = Fake::default();
    assert_ne!(put(&b, &H, b"a", G).unwrap(), put(&b, &H, b"b", G).unwrap());
}

fn app(owner: &str, quota: Quota) -> Caller<'_> {
    Caller {
        owner,
        admin: false,
        quota,
        dedup: Dedup::Shared,
    }
}

const NO_LIMIT: Quota = Quota::UNLIMITED;

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
    assert!(b.blobs.borrow().is_empty());
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
    let blobs_before = b.blobs.borrow().len();
    let err = put(&b, &a, &[3; 1], G).unwrap_err();
    assert_eq!(
        err,
        Error::QuotaExceeded {
            kind: QuotaKind::Bytes,
            limit: 2048,
            requested: 2049
        }
    );
    assert_eq!(b.blobs.borrow().len(), blobs_before, "nothing written");
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
    for owner in ["", "a/b", "../x", "with space"] {
        let c = app(owner, NO_LIMIT);
        assert!(
            matches!(put(&b, &c, b"x", G), Err(Error::InvalidOwner(_))),
            "{owner:?}"
        );
        assert!(matches!(list(&b, &c, None, 1), Err(Error::InvalidOwner(_))));
    }
    assert_eq!(b.calls.get(), 0);
}

#[test]
fn usage_records_never_show_as_artifacts() {
    let b = Fake::default();
    let a = app("a", NO_LIMIT);
    let h = put(&b, &a, b"x", G).unwrap();
    assert_eq!(b.records.borrow().len(), 1, "the artifact record");
    assert_eq!(b.entries.borrow().len(), 2, "a's entry and usage record");
    let listed: Vec<String> = list(&b, &H, None, 10)
        .unwrap()
        .into_iter()
        .map(|m| m.hash)
        .collect();
    assert_eq!(listed, vec![h]);
    assert_eq!(count(&b, &H).unwrap(), 1);
    assert!(validate(&usage_key()).is_ok());
    assert_ne!(usage_key(), hash_hex(b""));
}

#[test]
fn gc_removes_only_old_unreferenced_blobs() {
    let b = Fake::default();
    b.clock.set(1_000);
    let kept = put(&b, &H, b"referenced", G).unwrap();
    let orphan = hash_hex(b"orphan");
    b.write_blob(&orphan, b"orphan").unwrap();
    b.clock.set(5_000);
    let young = hash_hex(b"young");
    b.write_blob(&young, b"young").unwrap();
    b.clock.set(10_000);
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
    assert!(!b.blobs.borrow().contains_key(&orphan));
    assert!(
        b.blobs.borrow().contains_key(&young),
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
    assert!(b.records.borrow().is_empty() && b.blobs.borrow().is_empty());
}

#[test]
fn a_put_of_known_content_repairs_a_lost_or_truncated_blob() {
    let b = Fake::default();
    let h = put(&b, &H, b"precious", G).unwrap();
    b.blobs.borrow_mut().remove(&h);
    put(&b, &H, b"precious", G).unwrap();
    assert_eq!(get(&b, &H, &h).unwrap(), b"precious");
    b.blobs.borrow_mut().insert(h.clone(), b"prec".to_vec());
    put(&b, &H, b"precious", G).unwrap();
    assert_eq!(get(&b, &H, &h).unwrap(), b"precious");
    assert_eq!(stat(&b, &H, &h).unwrap().reference_count, 3);
}

#[test]
fn an_owner_sees_its_own_first_put_not_anyone_elses() {
    let b = Fake::default();
    b.clock.set(1_000);
    let (a, z) = (app("a", NO_LIMIT), app("z", NO_LIMIT));
    let h = put(&b, &a, b"shared", ArtifactType::WasmModule).unwrap();
    b.clock.set(2_000);
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
    b.clock.set(3_000);
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
    assert!(b.records.borrow()[&h].data.len() < 100, "no owner list");
    // Every owner releases; the last deletes.
    for name in &names {
        assert_eq!(release(&b, &app(name, NO_LIMIT), &h).unwrap(), 0);
    }
    assert!(b.records.borrow().is_empty() && b.blobs.borrow().is_empty());
    assert!(b.entries.borrow().is_empty(), "no entries or usage left");
}

/// Backend calls an operation made on the shared records and on index entries.
fn reads(b: &Fake, op: impl FnOnce()) -> (u64, u64) {
    let (shared, entries) = (b.shared_reads.get(), b.entry_reads.get());
    op();
    (b.shared_reads.get() - shared, b.entry_reads.get() - entries)
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

#[test]
fn a_crashed_first_put_is_finished_by_the_next_put_or_rolled_back_by_gc() {
    let b = Fake::default();
    b.clock.set(1_000);
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
    };
    let Ok(Swap::Written(v)) = b.swap_entry(&space, &h, None, Some(&adding.encode())) else {
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
    b.clock.set(20_000);
    assert_eq!(gc(&b, 10_000).unwrap().deletions_finished, 1);
    assert!(b.entries.borrow().is_empty());
    // The same crash again; this time the owner's next put finishes it and
    // takes its own reference too: the crashed put took effect.
    b.swap_entry(&space, &h, None, Some(&adding.encode()))
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
    b.write_blob(&h1, b"one").unwrap();
    b.write_blob(&h2, b"two").unwrap();
    b.write_blob(&h3, b"three").unwrap();
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
    let write = |k: &str, data: Vec<u8>| b.swap_record(k, None, Some(&data)).unwrap();
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
        !b.blobs.borrow().contains_key(&h3),
        "the half-done deletion is finished"
    );
    assert_eq!(b.records.borrow().len(), 2, "the old usage record is gone");
    // And the store works as format 2 from here.
    assert_eq!(release(&b, &a, &h1).unwrap(), 0);
    assert_eq!(b.record(&h1).unwrap().owners, 1);
    for _ in 0..3 {
        release(&b, &a, &h2).unwrap();
    }
    assert!(b.record(&h2).is_none());
}

/// Backend calls (and blob writes) of one operation.
fn work(b: &Fake, op: impl FnOnce()) -> (u64, u64) {
    let (calls, blobs) = (b.calls.get(), b.staged_writes.get() + b.blob_writes());
    op();
    (
        b.calls.get() - calls,
        b.staged_writes.get() + b.blob_writes() - blobs,
    )
}

impl Fake {
    fn blob_writes(&self) -> u64 {
        self.modified.borrow().len() as u64 + self.rewrites.get()
    }
}

#[test]
fn private_dedup_makes_joining_and_leaving_cost_what_new_content_costs() {
    for dedup in [Dedup::Shared, Dedup::Private] {
        let b = Fake::default();
        let other = Caller {
            dedup,
            ..app("other", NO_LIMIT)
        };
        let me = Caller {
            dedup,
            ..app("me", NO_LIMIT)
        };
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
            // The deletion the last release started is finished by gc.
            assert!(b.blobs.borrow().contains_key(&hash_hex(b"fresh")));
            assert_eq!(gc(&b, 0).unwrap().deletions_finished, 1);
            assert!(!b.blobs.borrow().contains_key(&hash_hex(b"fresh")));
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
        let before = b.calls.get();
        op();
        costs.push((what.to_string(), b.calls.get() - before));
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

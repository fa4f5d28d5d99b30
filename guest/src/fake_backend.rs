//! The one fake backend of the guest's native tests: an in-memory store
//! ([`Data`]) that counts what it is asked, reached through an [`Access`]
//! that says when a call runs: at once ([`Fake`], the unit tests), or when
//! a schedule says so (the interleaving explorer's `Scheduled`). Every
//! [`Access`] is a [`Backend`].

use std::cell::{Ref, RefCell, RefMut};
use std::collections::BTreeMap;

use crate::hash::Hash;
use crate::ops::{Backend, Keyed, Place, Reply, Space, Swap, Versioned};
use crate::record::{Record, State};

/// What the fake backend holds, and what it was asked.
#[derive(Default, Clone)]
pub(crate) struct Data {
    /// Blobs by key.
    pub blobs: BTreeMap<String, Vec<u8>>,
    /// When each key's blob was last written (kept after a delete).
    pub modified: BTreeMap<String, u64>,
    /// The shared records.
    pub records: BTreeMap<String, Versioned>,
    /// Owner index spaces: (owner key, key) -> entry.
    pub entries: BTreeMap<(String, String), Versioned>,
    /// The last version written (versions never repeat, across all keys).
    pub next_version: u64,
    /// The time blobs are written at; `now` never says less than 42.
    pub clock: u64,
    /// What the host staged for `write_staged_blob`.
    pub staged: Option<Vec<u8>>,
    /// Backend calls (`now` is not one).
    pub calls: u64,
    /// Calls that read or list index entries, and entries they returned.
    pub entry_reads: u64,
    /// Calls that touched the shared records (read, swap, list).
    pub shared_reads: u64,
    /// Blobs written, the staged ones included.
    pub blob_writes: u64,
    /// Staged blobs stored.
    pub staged_writes: u64,
    /// Outboards by key.
    pub outboards: BTreeMap<String, Vec<u8>>,
    /// Bytes of blobs and outboards read (whole or in ranges).
    pub bytes_read: u64,
    /// Outboards written.
    pub outboard_writes: u64,
}

impl Data {
    fn write_blob(&mut self, key: &str, data: Vec<u8>) {
        self.blob_writes += 1;
        self.blobs.insert(key.into(), data);
        self.modified.insert(key.into(), self.clock);
    }

    /// The decoded artifact record under `key`, if there is one that decodes.
    pub fn record(&self, key: &str) -> Option<Record> {
        Record::decode(&self.records.get(key)?.data).ok()
    }
}

/// Where [`Data::entries`] keeps the entry `key` of the index space `owner`.
fn entry_key(owner: &str, key: &str) -> (String, String) {
    (owner.into(), key.into())
}

/// A compare-and-swap on one map of versioned records (the shared records
/// or the index entries: the same contract).
fn swap<K: Ord>(
    map: &mut BTreeMap<K, Versioned>,
    next_version: &mut u64,
    key: K,
    expected: Option<u64>,
    new: Option<&[u8]>,
) -> Swap {
    if map.get(&key).map(|v| v.version) != expected {
        return Swap::Conflict;
    }
    match new {
        None => {
            map.remove(&key);
            Swap::Deleted
        }
        Some(data) => {
            *next_version += 1;
            let version = *next_version;
            let data = data.to_vec();
            map.insert(key, Versioned { version, data });
            Swap::Written(version)
        }
    }
}

/// `data` from `offset`, at most `len` bytes, cut at its end.
fn range_of(data: &[u8], offset: u64, len: u64) -> &[u8] {
    let start = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(data.len());
    let end = start
        .saturating_add(usize::try_from(len).unwrap_or(usize::MAX))
        .min(data.len());
    &data[start..end]
}

/// Up to `limit` items with keys after `after`, ascending.
fn page<'a, T: 'a>(
    items: impl Iterator<Item = (&'a String, T)>,
    after: Option<&str>,
    limit: u32,
) -> Vec<(String, T)> {
    items
        .filter(|(k, _)| after.is_none_or(|a| k.as_str() > a))
        .take(limit as usize)
        .map(|(k, t)| (k.clone(), t))
        .collect()
}

/// A key the fake keeps as text, as the core's [`Hash`] (it holds only keys
/// the core gave it).
fn hash(key: &str) -> Hash {
    Hash::parse(key).unwrap()
}

/// A listing of keys kept as text, as [`Backend`] gives it.
fn keyed(list: Vec<(String, Versioned)>) -> Vec<Keyed> {
    list.into_iter().map(|(k, v)| (hash(&k), v)).collect()
}

/// How a backend call reaches the [`Data`].
pub(crate) trait Access {
    /// Runs one backend call on the data: a scheduling point for the explorer.
    fn turn<T>(&self, f: impl FnOnce(&mut Data) -> T) -> T;
    /// Reads the data outside any schedule (reading the clock changes nothing).
    fn peek<T>(&self, f: impl FnOnce(&Data) -> T) -> T;
    /// One counted backend call.
    fn call<T>(&self, f: impl FnOnce(&mut Data) -> T) -> T {
        self.turn(|d| {
            d.calls += 1;
            f(d)
        })
    }
}

impl<A: Access> Backend for A {
    fn write_blob(&self, key: &Hash, data: &[u8]) -> Reply<()> {
        let key = key.to_string();
        let key = key.as_str();
        self.call(|d| d.write_blob(key, data.to_vec()));
        Ok(())
    }
    fn write_staged_blob(&self, key: &Hash) -> Reply<()> {
        let key = key.to_string();
        let key = key.as_str();
        self.call(|d| {
            let data = d.staged.clone().ok_or("nothing staged")?;
            d.staged_writes += 1;
            d.write_blob(key, data);
            Ok(())
        })
    }
    fn read_blob(&self, key: &Hash) -> Reply<Option<Vec<u8>>> {
        let key = key.to_string();
        let key = key.as_str();
        Ok(self.call(|d| {
            let blob = d.blobs.get(key).cloned();
            d.bytes_read += blob.as_ref().map_or(0, |b| b.len() as u64);
            blob
        }))
    }
    fn blob_size(&self, key: &Hash) -> Reply<Option<u64>> {
        let key = key.to_string();
        let key = key.as_str();
        Ok(self.call(|d| d.blobs.get(key).map(|b| b.len() as u64)))
    }
    fn read_blob_range(&self, key: &Hash, offset: u64, len: u64) -> Reply<Option<Vec<u8>>> {
        let key = key.to_string();
        let key = key.as_str();
        Ok(self.call(|d| {
            let part = d.blobs.get(key).map(|b| range_of(b, offset, len).to_vec());
            d.bytes_read += part.as_ref().map_or(0, |p| p.len() as u64);
            part
        }))
    }
    fn write_outboard(&self, key: &Hash, data: &[u8]) -> Reply<()> {
        let key = key.to_string();
        let key = key.as_str();
        self.call(|d| {
            d.outboard_writes += 1;
            d.outboards.insert(key.into(), data.to_vec());
        });
        Ok(())
    }
    fn read_outboard(&self, key: &Hash, ranges: &[(u64, u64)]) -> Reply<Option<Vec<Vec<u8>>>> {
        let key = key.to_string();
        let key = key.as_str();
        Ok(self.call(|d| {
            let parts: Option<Vec<Vec<u8>>> = d.outboards.get(key).map(|o| {
                ranges
                    .iter()
                    .map(|&(offset, len)| range_of(o, offset, len).to_vec())
                    .collect()
            });
            d.bytes_read += parts
                .as_ref()
                .map_or(0, |p| p.iter().map(|r| r.len() as u64).sum());
            parts
        }))
    }
    fn outboard_size(&self, key: &Hash) -> Reply<Option<u64>> {
        let key = key.to_string();
        let key = key.as_str();
        Ok(self.call(|d| d.outboards.get(key).map(|o| o.len() as u64)))
    }
    fn delete_outboard(&self, key: &Hash) -> Reply<bool> {
        let key = key.to_string();
        let key = key.as_str();
        Ok(self.call(|d| d.outboards.remove(key).is_some()))
    }
    fn delete_blob(&self, key: &Hash, record_version: Option<u64>) -> Reply<bool> {
        let key = key.to_string();
        let key = key.as_str();
        Ok(self.call(|d| {
            d.records.get(key).map(|v| v.version) == record_version && d.blobs.remove(key).is_some()
        }))
    }
    fn list_blobs(&self, after: Option<&Hash>, limit: u32) -> Reply<Vec<(Hash, u64, u64)>> {
        let after = after.map(Hash::to_string);
        let after = after.as_deref();
        Ok(self.call(|d| {
            let blobs = d.blobs.iter().map(|(k, b)| (k, b.len() as u64));
            page(blobs, after, limit)
                .into_iter()
                .map(|(k, size)| {
                    let modified = d.modified.get(&k).copied().unwrap_or(0);
                    (hash(&k), size, modified)
                })
                .collect()
        }))
    }
    fn read_record(&self, at: Place) -> Reply<Option<Versioned>> {
        let key = at.key.to_string();
        Ok(self.call(|d| match at.space {
            Space::Shared => {
                d.shared_reads += 1;
                d.records.get(&key).cloned()
            }
            Space::Owner(owner) => {
                d.entry_reads += 1;
                d.entries.get(&entry_key(&owner.to_string(), &key)).cloned()
            }
        }))
    }
    fn swap_record(&self, at: Place, expected: Option<u64>, new: Option<&[u8]>) -> Reply<Swap> {
        let key = at.key.to_string();
        Ok(self.call(|d| {
            let next = &mut d.next_version;
            match at.space {
                Space::Shared => {
                    d.shared_reads += 1;
                    swap(&mut d.records, next, key, expected, new)
                }
                Space::Owner(owner) => swap(
                    &mut d.entries,
                    next,
                    entry_key(&owner.to_string(), &key),
                    expected,
                    new,
                ),
            }
        }))
    }
    fn list_records(&self, space: Space, after: Option<&Hash>, limit: u32) -> Reply<Vec<Keyed>> {
        let after = after.map(Hash::to_string);
        let after = after.as_deref();
        Ok(self.call(|d| match space {
            Space::Shared => {
                d.shared_reads += 1;
                keyed(page(
                    d.records.iter().map(|(k, v)| (k, v.clone())),
                    after,
                    limit,
                ))
            }
            Space::Owner(owner) => {
                let owner = &owner.to_string();
                let space = d
                    .entries
                    .range(entry_key(owner, "")..)
                    .take_while(|((o, _), _)| o == owner)
                    .map(|((_, k), v)| (k, v.clone()));
                let out = page(space, after, limit);
                d.entry_reads += 1 + out.len() as u64;
                keyed(out)
            }
        }))
    }
    fn list_owners(&self, after: Option<&Hash>, limit: u32) -> Reply<Vec<Hash>> {
        let after = after.map(Hash::to_string);
        let after = after.as_deref();
        Ok(self.call(|d| {
            let mut owners: Vec<String> = d
                .entries
                .keys()
                .map(|(o, _)| o.clone())
                .filter(|o| after.is_none_or(|a| o.as_str() > a))
                .collect();
            owners.dedup();
            owners.truncate(limit as usize);
            owners.iter().map(|o| hash(o)).collect()
        }))
    }
    fn now(&self) -> u64 {
        self.peek(|d| d.clock.max(42))
    }
}

/// The unit tests' backend: every call runs at once.
#[derive(Default)]
pub(crate) struct Fake(RefCell<Data>);

impl Access for Fake {
    fn turn<T>(&self, f: impl FnOnce(&mut Data) -> T) -> T {
        f(&mut self.0.borrow_mut())
    }
    fn peek<T>(&self, f: impl FnOnce(&Data) -> T) -> T {
        f(&self.0.borrow())
    }
}

impl Fake {
    /// What the backend holds, to look at.
    pub fn data(&self) -> Ref<'_, Data> {
        self.0.borrow()
    }

    /// What the backend holds, to change behind the core's back.
    pub fn data_mut(&self) -> RefMut<'_, Data> {
        self.0.borrow_mut()
    }

    /// The decoded artifact record under `key`.
    pub fn record(&self, key: &str) -> Option<Record> {
        self.data().record(key)
    }

    /// The state a last owner's release leaves when it crashes right after
    /// swapping the record to `Deleting`: no entries, a deleting record.
    /// Returns the deleting record's version.
    pub fn abandon_deletion(&self, key: &str) -> u64 {
        self.data_mut().entries.clear();
        let mut rec = self.record(key).expect("a record to abandon");
        rec.state = State::Deleting;
        rec.owners = 0;
        let v = self.data().records.get(key).map(|r| r.version);
        let Ok(Swap::Written(deleting)) =
            self.swap_record(Space::Shared.at(&hash(key)), v, Some(&rec.encode()))
        else {
            panic!("swap failed")
        };
        deleting
    }
}

//! [`MemoryBackend`]: everything in a concurrent map, gone when dropped.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;

use super::{Backend, BlobInfo, Staging, SwapOutcome, VersionedRecord, foreign_staging};
use crate::{BackendError, Hash};

/// A backend in memory: a [`DashMap`] from hash to blob and record, and
/// one ordered map per owner index space (so listing one costs what it holds).
///
/// Cloning gives another handle on the same storage, which lets a test keep
/// a handle and reach behind the store (for example to damage a blob).
#[derive(Clone, Default)]
pub struct MemoryBackend {
    slots: Arc<DashMap<Hash, Slot>>,
    entries: Arc<DashMap<Hash, BTreeMap<Hash, VersionedRecord>>>,
    versions: Arc<AtomicU64>,
}

#[derive(Default)]
struct Slot {
    /// The content and when it was written. Shared with the staging it came
    /// from, if any, so that storing staged content copies nothing.
    blob: Option<(Arc<Vec<u8>>, u64)>,
    record: Option<VersionedRecord>,
}

impl MemoryBackend {
    /// An empty backend.
    pub fn new() -> Self {
        Self::default()
    }

    fn sorted_keys(&self, after: Option<&Hash>, has: impl Fn(&Slot) -> bool) -> Vec<Hash> {
        let mut keys: Vec<Hash> = self
            .slots
            .iter()
            .filter(|e| has(e.value()) && after.is_none_or(|a| e.key() > a))
            .map(|e| *e.key())
            .collect();
        keys.sort_unstable();
        keys
    }
}

/// Staged content: gathered, then shared with the blobs it was stored as.
enum MemoryStaging {
    Open(Vec<u8>),
    Stored(Arc<Vec<u8>>),
}

impl Backend for MemoryBackend {
    fn write_blob(&self, key: &Hash, data: &[u8]) -> Result<(), BackendError> {
        let now = self.now();
        self.slots.entry(*key).or_default().blob = Some((Arc::new(data.to_vec()), now));
        Ok(())
    }

    fn stage(&self) -> Result<Staging, BackendError> {
        Ok(Staging::new(MemoryStaging::Open(Vec::new())))
    }

    fn append_staged(&self, staging: &mut Staging, data: &[u8]) -> Result<(), BackendError> {
        match staging.state_mut::<MemoryStaging>() {
            Some(MemoryStaging::Open(bytes)) => {
                bytes.extend_from_slice(data);
                Ok(())
            }
            Some(MemoryStaging::Stored(_)) => Err(BackendError::Io(
                "appending to staged content that was already stored".into(),
            )),
            None => Err(foreign_staging()),
        }
    }

    fn write_staged(&self, staging: &mut Staging, key: &Hash) -> Result<(), BackendError> {
        let state = staging
            .state_mut::<MemoryStaging>()
            .ok_or_else(foreign_staging)?;
        let shared = match state {
            MemoryStaging::Stored(shared) => shared.clone(),
            MemoryStaging::Open(bytes) => {
                let shared = Arc::new(std::mem::take(bytes));
                *state = MemoryStaging::Stored(shared.clone());
                shared
            }
        };
        let now = self.now();
        self.slots.entry(*key).or_default().blob = Some((shared, now));
        Ok(())
    }

    fn read_blob(&self, key: &Hash) -> Result<Option<Vec<u8>>, BackendError> {
        Ok(self
            .slots
            .get(key)
            .and_then(|s| s.blob.as_ref().map(|(b, _)| b.to_vec())))
    }

    fn read_blob_range(
        &self,
        key: &Hash,
        offset: u64,
        len: u64,
    ) -> Result<Option<Vec<u8>>, BackendError> {
        Ok(self.slots.get(key).and_then(|s| {
            s.blob
                .as_ref()
                .map(|(b, _)| super::range_of(b, offset, len).to_vec())
        }))
    }

    fn size_hint(&self, key: &Hash) -> Option<u64> {
        self.blob_size(key).ok().flatten()
    }
    fn blob_size(&self, key: &Hash) -> Result<Option<u64>, BackendError> {
        Ok(self
            .slots
            .get(key)
            .and_then(|s| s.blob.as_ref().map(|(b, _)| b.len() as u64)))
    }

    fn delete_blob(&self, key: &Hash, record_version: Option<u64>) -> Result<bool, BackendError> {
        let Some(mut slot) = self.slots.get_mut(key) else {
            return Ok(false);
        };
        if slot.record.as_ref().map(|r| r.version) != record_version {
            return Ok(false);
        }
        let deleted = slot.blob.take().is_some();
        let empty = slot.record.is_none();
        drop(slot);
        if empty {
            self.slots
                .remove_if(key, |_, s| s.blob.is_none() && s.record.is_none());
        }
        Ok(deleted)
    }

    fn list_blobs(&self, after: Option<&Hash>, limit: u32) -> Result<Vec<BlobInfo>, BackendError> {
        Ok(self
            .sorted_keys(after, |s| s.blob.is_some())
            .into_iter()
            .filter_map(|key| {
                let (size, modified) = self
                    .slots
                    .get(&key)?
                    .blob
                    .as_ref()
                    .map(|(b, m)| (b.len() as u64, *m))?;
                Some(BlobInfo {
                    key,
                    size,
                    modified,
                })
            })
            .take(limit as usize)
            .collect())
    }

    fn read_record(&self, key: &Hash) -> Result<Option<VersionedRecord>, BackendError> {
        Ok(self.slots.get(key).and_then(|s| s.record.clone()))
    }

    fn swap_record(
        &self,
        key: &Hash,
        expected: Option<u64>,
        new: Option<&[u8]>,
    ) -> Result<SwapOutcome, BackendError> {
        let mut slot = self.slots.entry(*key).or_default();
        if slot.record.as_ref().map(|r| r.version) != expected {
            return Ok(SwapOutcome::Conflict);
        }
        Ok(match new {
            Some(data) => {
                let version = self.versions.fetch_add(1, Ordering::Relaxed) + 1;
                slot.record = Some(VersionedRecord {
                    version,
                    data: data.to_vec(),
                });
                SwapOutcome::Written(version)
            }
            None => {
                slot.record = None;
                let empty = slot.blob.is_none();
                drop(slot);
                if empty {
                    self.slots
                        .remove_if(key, |_, s| s.blob.is_none() && s.record.is_none());
                }
                SwapOutcome::Deleted
            }
        })
    }

    fn read_entry(
        &self,
        owner: &Hash,
        key: &Hash,
    ) -> Result<Option<VersionedRecord>, BackendError> {
        Ok(self.entries.get(owner).and_then(|s| s.get(key).cloned()))
    }

    fn swap_entry(
        &self,
        owner: &Hash,
        key: &Hash,
        expected: Option<u64>,
        new: Option<&[u8]>,
    ) -> Result<SwapOutcome, BackendError> {
        let mut space = self.entries.entry(*owner).or_default();
        if space.get(key).map(|r| r.version) != expected {
            return Ok(SwapOutcome::Conflict);
        }
        Ok(match new {
            Some(data) => {
                let version = self.versions.fetch_add(1, Ordering::Relaxed) + 1;
                space.insert(
                    *key,
                    VersionedRecord {
                        version,
                        data: data.to_vec(),
                    },
                );
                SwapOutcome::Written(version)
            }
            None => {
                space.remove(key);
                SwapOutcome::Deleted
            }
        })
    }

    fn list_entries(
        &self,
        owner: &Hash,
        after: Option<&Hash>,
        limit: u32,
    ) -> Result<Vec<(Hash, VersionedRecord)>, BackendError> {
        let Some(space) = self.entries.get(owner) else {
            return Ok(Vec::new());
        };
        let range = match after {
            Some(a) => {
                space.range::<Hash, _>((std::ops::Bound::Excluded(a), std::ops::Bound::Unbounded))
            }
            None => space.range::<Hash, _>(..),
        };
        Ok(range
            .take(limit as usize)
            .map(|(k, v)| (*k, v.clone()))
            .collect())
    }

    fn list_owners(&self, after: Option<&Hash>, limit: u32) -> Result<Vec<Hash>, BackendError> {
        let mut owners: Vec<Hash> = self
            .entries
            .iter()
            .map(|e| *e.key())
            .filter(|o| after.is_none_or(|a| o > a))
            .collect();
        owners.sort_unstable();
        owners.truncate(limit as usize);
        Ok(owners)
    }

    fn list_records(
        &self,
        after: Option<&Hash>,
        limit: u32,
    ) -> Result<Vec<(Hash, VersionedRecord)>, BackendError> {
        Ok(self
            .sorted_keys(after, |s| s.record.is_some())
            .into_iter()
            .filter_map(|k| {
                let record = self.slots.get(&k)?.record.clone()?;
                Some((k, record))
            })
            .take(limit as usize)
            .collect())
    }
}

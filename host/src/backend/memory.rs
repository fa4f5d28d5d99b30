//! [`MemoryBackend`]: everything in a concurrent map, gone when dropped.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;

use super::{
    Backend, BackendResult, BlobInfo, CleanedUp, Listed, Side, SideInfo, SideKind, Space, Staged,
    Staging, Swap, SwapOutcome, VersionedRecord,
};
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
    /// Side objects and when they were written.
    sides: Arc<DashMap<Side, Written>>,
    versions: Arc<AtomicU64>,
}

/// Bytes and when they were written (milliseconds since the epoch).
type Written = (Arc<Vec<u8>>, u64);

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

    /// Compare-and-swap on one record under its map's lock.
    fn swap_value(&self, record: &mut Option<VersionedRecord>, swap: Swap<'_>) -> SwapOutcome {
        if record.as_ref().map(|r| r.version) != swap.expected {
            return SwapOutcome::Conflict;
        }
        *record = swap.new.map(|data| VersionedRecord {
            version: self.versions.fetch_add(1, Ordering::Relaxed) + 1,
            data: data.to_vec(),
        });
        record
            .as_ref()
            .map_or(SwapOutcome::Deleted, |r| SwapOutcome::Written(r.version))
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

/// Staged content, with the blobs it is stored into.
struct MemoryStaging {
    slots: Arc<DashMap<Hash, Slot>>,
    content: Content,
}

/// Staged content: gathered, then shared with the blobs it was stored as.
enum Content {
    Open(Vec<u8>),
    Stored(Arc<Vec<u8>>),
}

impl Staged for MemoryStaging {
    fn append(&mut self, data: &[u8]) -> BackendResult<()> {
        match &mut self.content {
            Content::Open(bytes) => bytes.extend_from_slice(data),
            // Shared only once stored, which `Staging` refuses to append to.
            Content::Stored(_) => return Err(BackendError::Io("staging was stored".into())),
        }
        Ok(())
    }

    fn finish(&mut self) -> BackendResult<()> {
        // Nothing to make durable.
        Ok(())
    }

    fn store(&mut self, key: &Hash) -> BackendResult<()> {
        let shared = match &mut self.content {
            Content::Stored(shared) => shared.clone(),
            Content::Open(bytes) => {
                let shared = Arc::new(std::mem::take(bytes));
                self.content = Content::Stored(shared.clone());
                shared
            }
        };
        let now = super::millis(std::time::SystemTime::now());
        self.slots.entry(*key).or_default().blob = Some((shared, now));
        Ok(())
    }

    fn discard(self: Box<Self>) -> BackendResult<()> {
        Ok(())
    }
}

impl Backend for MemoryBackend {
    fn write_blob(&self, key: &Hash, data: &[u8]) -> BackendResult<()> {
        let now = self.now();
        self.slots.entry(*key).or_default().blob = Some((Arc::new(data.to_vec()), now));
        Ok(())
    }

    fn stage(&self) -> BackendResult<Staging> {
        Ok(Staging::new(MemoryStaging {
            slots: self.slots.clone(),
            content: Content::Open(Vec::new()),
        }))
    }

    fn staged_in_memory(&self, _staged: u64) -> u64 {
        // Its staging is the content it stores (bounded by the quota).
        0
    }

    fn read_blob(&self, key: &Hash) -> BackendResult<Option<Vec<u8>>> {
        Ok(self
            .slots
            .get(key)
            .and_then(|s| s.blob.as_ref().map(|(b, _)| b.to_vec())))
    }

    fn read_blob_range(&self, key: &Hash, offset: u64, len: u64) -> BackendResult<Option<Vec<u8>>> {
        Ok(self.slots.get(key).and_then(|s| {
            s.blob
                .as_ref()
                .map(|(b, _)| super::range_of(b, offset, len).to_vec())
        }))
    }

    fn size_hint(&self, key: &Hash) -> Option<u64> {
        self.blob_size(key).ok().flatten()
    }

    fn write_side(&self, key: &Side, data: &[u8]) -> BackendResult<()> {
        let now = self.now();
        self.sides.insert(*key, (Arc::new(data.to_vec()), now));
        Ok(())
    }

    fn read_side(&self, key: &Side) -> BackendResult<Option<Vec<u8>>> {
        Ok(self.sides.get(key).map(|s| s.0.to_vec()))
    }

    fn read_side_ranges(
        &self,
        key: &Side,
        ranges: &[(u64, u64)],
    ) -> BackendResult<Option<Vec<Vec<u8>>>> {
        // Cloned out of the map so that no shard lock is held while copying.
        let Some(side) = self.sides.get(key).map(|o| o.0.clone()) else {
            return Ok(None);
        };
        Ok(Some(
            ranges
                .iter()
                .map(|&(offset, len)| super::range_of(&side, offset, len).to_vec())
                .collect(),
        ))
    }

    fn side_size(&self, key: &Side) -> BackendResult<Option<u64>> {
        Ok(self.sides.get(key).map(|o| o.0.len() as u64))
    }

    fn delete_side(&self, key: &Side) -> BackendResult<bool> {
        Ok(self.sides.remove(key).is_some())
    }

    fn list_side(
        &self,
        kind: SideKind,
        after: Option<&Side>,
        limit: u32,
    ) -> BackendResult<Vec<SideInfo>> {
        let mut listed: Vec<SideInfo> = self
            .sides
            .iter()
            .filter(|e| e.key().kind() == kind && after.is_none_or(|a| e.key() > a))
            .map(|e| SideInfo {
                key: *e.key(),
                size: e.value().0.len() as u64,
                modified: e.value().1,
            })
            .collect();
        listed.sort_unstable_by_key(|i| i.key);
        listed.truncate(limit as usize);
        Ok(listed)
    }

    fn clean_up(&self, _older_than_ms: u64) -> BackendResult<CleanedUp> {
        // No temporaries, and a space goes with its last record.
        Ok(CleanedUp::default())
    }

    fn finish_migration(&self) -> BackendResult<()> {
        // Nothing persists, so there is no layout marker to write.
        Ok(())
    }

    fn blob_size(&self, key: &Hash) -> BackendResult<Option<u64>> {
        Ok(self
            .slots
            .get(key)
            .and_then(|s| s.blob.as_ref().map(|(b, _)| b.len() as u64)))
    }

    fn delete_blob(&self, key: &Hash, record_version: Option<u64>) -> BackendResult<bool> {
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

    fn list_blobs(&self, after: Option<&Hash>, limit: u32) -> BackendResult<Vec<BlobInfo>> {
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

    fn read_record(&self, space: Space, key: &Hash) -> BackendResult<Option<VersionedRecord>> {
        Ok(match space {
            Space::Shared => self.slots.get(key).and_then(|s| s.record.clone()),
            Space::Owner(owner) => self.entries.get(&owner).and_then(|s| s.get(key).cloned()),
        })
    }

    fn swap_record(&self, space: Space, key: &Hash, swap: Swap<'_>) -> BackendResult<SwapOutcome> {
        let Space::Owner(owner) = space else {
            let mut slot = self.slots.entry(*key).or_default();
            let outcome = self.swap_value(&mut slot.record, swap);
            let empty = slot.blob.is_none() && slot.record.is_none();
            drop(slot);
            if empty {
                self.slots
                    .remove_if(key, |_, s| s.blob.is_none() && s.record.is_none());
            }
            return Ok(outcome);
        };
        let mut space = self.entries.entry(owner).or_default();
        let mut record = space.remove(key);
        let outcome = self.swap_value(&mut record, swap);
        if let Some(record) = record {
            space.insert(*key, record);
        }
        // A space goes with its last record (as on S3).
        let empty = space.is_empty();
        drop(space);
        if empty {
            self.entries.remove_if(&owner, |_, s| s.is_empty());
        }
        Ok(outcome)
    }

    fn list_records(&self, space: Space, after: Option<&Hash>, limit: u32) -> Listed {
        let Space::Owner(owner) = space else {
            return Ok(self
                .sorted_keys(after, |s| s.record.is_some())
                .into_iter()
                .filter_map(|k| Some((k, self.slots.get(&k)?.record.clone()?)))
                .take(limit as usize)
                .collect());
        };
        let Some(space) = self.entries.get(&owner) else {
            return Ok(Vec::new());
        };
        let from = after.map_or(Bound::Unbounded, Bound::Excluded);
        Ok(space
            .range::<Hash, _>((from, Bound::Unbounded))
            .take(limit as usize)
            .map(|(k, v)| (*k, v.clone()))
            .collect())
    }

    fn list_owners(&self, after: Option<&Hash>, limit: u32) -> BackendResult<Vec<Hash>> {
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
}

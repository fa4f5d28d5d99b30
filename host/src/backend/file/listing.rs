//! How the file backend lists: hash names in sharded directories
//! (`blobs/`, `records/`, `owners/`) and in one owner's space.

use std::path::Path;

use super::{FileBackend, IoContext};
use crate::Hash;
use crate::backend::fs::Fs;
use crate::backend::layout;
use crate::backend::{Backend, BackendResult, VersionedRecord, millis};

impl<F: Fs> FileBackend<F> {
    /// Up to `limit` keys under `DIR/{kind}/*/` (`blobs` or `records`),
    /// greater than `after`, ascending.
    pub(super) fn list_keys(
        &self,
        kind: &str,
        after: Option<&Hash>,
        limit: u32,
    ) -> BackendResult<Vec<Hash>> {
        let base = self.root.join(kind);
        let shards = self.fs.list_dir(&base).at("listing", &base)?;
        self.in_shards(&base, shards, after, limit)
    }

    /// Up to `limit` owner keys with a space under `DIR/owners/*/`, greater
    /// than `after`, ascending (none if there is no `owners/`: format 1).
    pub(super) fn list_owner_keys(
        &self,
        after: Option<&Hash>,
        limit: u32,
    ) -> BackendResult<Vec<Hash>> {
        let base = self.root.join(layout::OWNERS);
        match self.fs.list_dir(&base).found_at("listing", &base)? {
            Some(shards) => self.in_shards(&base, shards, after, limit),
            None => Ok(Vec::new()),
        }
    }

    /// Removes the owner directories under `DIR/owners/*/` that are empty
    /// and unchanged for `older_than_ms`, each under the lock (so never
    /// one a swap is about to write into); returns how many. The empty-space
    /// half of `clean_up`, alone: safe beside running puts, which the
    /// temporary-file half with no grace is not.
    pub fn remove_empty_owner_dirs(&self, older_than_ms: u64) -> BackendResult<u64> {
        let base = self.root.join(layout::OWNERS);
        let Some(mut shards) = self.fs.list_dir(&base).found_at("listing", &base)? else {
            return Ok(0);
        };
        shards.retain(|s| layout::is_shard(s));
        let cutoff = self.now().saturating_sub(older_than_ms);
        let mut removed = 0;
        for shard in shards {
            for owner in self.hash_names(&base.join(&shard), None)? {
                let dir = self.root.join(layout::OwnerDirs::Sharded.dir(&owner));
                // Gone since the listing, or changed within the grace period.
                let Some((_, modified)) = self.fs.stat(&dir).found_at("inspecting", &dir)? else {
                    continue;
                };
                if millis(modified) > cutoff {
                    continue;
                }
                let _guard = self.lock()?;
                if self.remove_if_empty(&dir) {
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }

    /// Up to `limit` hash names in the `shards` of `base`, each in its right
    /// shard, greater than `after`, ascending. Anything else is skipped.
    fn in_shards(
        &self,
        base: &Path,
        mut shards: Vec<String>,
        after: Option<&Hash>,
        limit: u32,
    ) -> BackendResult<Vec<Hash>> {
        shards.retain(|s| layout::is_shard(s));
        shards.sort_unstable();
        let first = after.map(layout::shard);
        let mut out = Vec::new();
        for shard in shards {
            if first.as_ref().is_some_and(|first| shard < *first) {
                continue;
            }
            for key in self.hash_names(&base.join(&shard), after)? {
                if layout::shard(&key) != shard {
                    continue;
                }
                if out.len() >= limit as usize {
                    return Ok(out);
                }
                out.push(key);
            }
        }
        Ok(out)
    }

    /// Valid hash names in `dir` (none if it is missing), greater than
    /// `after`, ascending.
    pub(super) fn hash_names(&self, dir: &Path, after: Option<&Hash>) -> BackendResult<Vec<Hash>> {
        let names = self.fs.list_dir(dir).found_at("listing", dir)?;
        let mut keys: Vec<Hash> = names
            .iter()
            .flatten()
            .filter_map(|n| layout::parse_name(n))
            .filter(|h| after.is_none_or(|a| h > a))
            .collect();
        keys.sort_unstable();
        Ok(keys)
    }

    /// Up to `limit` of the listed `keys` with what `read` finds under them;
    /// a key deleted since the listing is skipped.
    pub(super) fn read_listed(
        &self,
        keys: Vec<Hash>,
        limit: u32,
        read: impl Fn(&Hash) -> BackendResult<Option<VersionedRecord>>,
    ) -> BackendResult<Vec<(Hash, VersionedRecord)>> {
        let mut out = Vec::new();
        for key in keys {
            if out.len() >= limit as usize {
                break;
            }
            if let Some(record) = read(&key)? {
                out.push((key, record));
            }
        }
        Ok(out)
    }
}

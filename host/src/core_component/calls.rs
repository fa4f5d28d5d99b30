//! The core's exports as typed calls on one [`Instance`]: hashes and types
//! in, the crate's types and errors out.

use wasmtime::Store;

use super::bindings::Core;
use super::bindings::ops;
use super::convert::{core_hash, metadata};
use super::imports::CoreState;
use super::pool::Instance;
use crate::backend::Staging;
use crate::{ArtifactType, Error, GcReport, Hash, Metadata, Quota, Usage};

/// Whose view of the store a call takes: the host's own (every artifact)
/// or one owner's; the core's `ops` calls take it as a value.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Caller<'a> {
    /// The host: every artifact, store-wide counts.
    Host,
    /// One owner (an app, or the host's own `@host`), within its quota.
    Owner(&'a str, Quota),
}

/// The caller of a core call, as the core's `ops` take it.
impl From<Caller<'_>> for ops::Caller {
    fn from(who: Caller<'_>) -> Self {
        match who {
            Caller::Host => Self::Host,
            Caller::Owner(id, quota) => Self::Owner(ops::Owner {
                id: id.to_string(),
                quota: quota.into(),
            }),
        }
    }
}

fn tree_error(what: &str) -> impl Fn(String) -> Error {
    move |m| Error::Core(format!("the core's tree {what}: {m}"))
}

impl Instance {
    /// Runs one call into the core. A trap (or any wasmtime failure) is the
    /// core's fault, not the caller's: it poisons this instance.
    pub(super) fn call<T>(
        &mut self,
        f: impl FnOnce(&Core, &mut Store<CoreState>) -> wasmtime::Result<T>,
    ) -> Result<T, Error> {
        super::imports::clear_backend_full();
        f(&self.core, &mut self.store).map_err(|e| {
            self.poisoned = true;
            Error::Core(format!("{e:#}"))
        })
    }

    /// The most entries one `list` call returns.
    pub(crate) fn list_limit(&mut self) -> Result<u32, Error> {
        self.call(|c, s| c.artifacts_store_ops().call_list_limit(s))
    }

    /// Stores `content`; a put over the store's size limit is refused by the
    /// core and reported with its size.
    pub(crate) fn put(
        &mut self,
        who: Caller<'_>,
        content: &[u8],
        artifact_type: ArtifactType,
    ) -> Result<Hash, Error> {
        let (who, t) = (ops::Caller::from(who), artifact_type.into());
        let result = self.call(|c, s| c.artifacts_store_ops().call_put(s, &who, content, t))?;
        core_hash(&result.map_err(|e| sized(e, content.len() as u64))?)
    }

    pub(crate) fn get(&mut self, who: Caller<'_>, hash: &Hash) -> Result<Vec<u8>, Error> {
        let who = ops::Caller::from(who);
        let hash = hash.to_string();
        Ok(self.call(|c, s| c.artifacts_store_ops().call_get(s, &who, &hash))??)
    }

    /// Opens `hash` for a read as `who` (one record read; see the WIT
    /// `open`): its metadata (the host's reference count only `with_count`)
    /// and, below `whole_below` bytes, its content verified.
    pub(crate) fn open(
        &mut self,
        who: Caller<'_>,
        hash: &Hash,
        whole_below: u64,
        with_count: bool,
    ) -> Result<(Metadata, Option<Vec<u8>>), Error> {
        let who = ops::Caller::from(who);
        let hash = hash.to_string();
        let opened = self.call(|c, s| {
            c.artifacts_store_ops()
                .call_open(s, &who, &hash, whole_below, with_count)
        })??;
        Ok((metadata(opened.metadata)?, opened.content))
    }

    /// `length` bytes from `offset` of `hash`, an artifact of `size` bytes
    /// the host opened, proven by the core without reading its record again.
    pub(crate) fn prove_range(
        &mut self,
        hash: &Hash,
        size: u64,
        offset: u64,
        length: u64,
    ) -> Result<Vec<u8>, Error> {
        let hash = hash.to_string();
        Ok(self.call(|c, s| {
            c.artifacts_store_ops()
                .call_prove_range(s, &hash, size, offset, length)
        })??)
    }

    /// The most bytes one `get-range` returns.
    #[cfg(test)]
    pub(crate) fn range_limit(&mut self) -> Result<u64, Error> {
        self.call(|c, s| c.artifacts_store_ops().call_range_limit(s))
    }

    pub(crate) fn contains(&mut self, who: Caller<'_>, hash: &Hash) -> Result<bool, Error> {
        let who = ops::Caller::from(who);
        let hash = hash.to_string();
        Ok(self.call(|c, s| c.artifacts_store_ops().call_contains(s, &who, &hash))??)
    }

    /// Which of `hashes` (at most `list-limit`) the caller cannot see.
    pub(crate) fn missing(&mut self, who: Caller<'_>, hashes: &[Hash]) -> Result<Vec<Hash>, Error> {
        let who = ops::Caller::from(who);
        let hashes: Vec<String> = hashes.iter().map(Hash::to_string).collect();
        let missing =
            self.call(|c, s| c.artifacts_store_ops().call_missing(s, &who, &hashes))??;
        missing.iter().map(|h| core_hash(h)).collect()
    }

    pub(crate) fn release(&mut self, who: Caller<'_>, hash: &Hash) -> Result<u64, Error> {
        let who = ops::Caller::from(who);
        let hash = hash.to_string();
        Ok(self.call(|c, s| c.artifacts_store_ops().call_release(s, &who, &hash))??)
    }

    pub(crate) fn remove(&mut self, who: Caller<'_>, hash: &Hash) -> Result<(), Error> {
        let who = ops::Caller::from(who);
        let hash = hash.to_string();
        Ok(self.call(|c, s| c.artifacts_store_ops().call_remove(s, &who, &hash))??)
    }

    pub(crate) fn stat(&mut self, who: Caller<'_>, hash: &Hash) -> Result<Metadata, Error> {
        let who = ops::Caller::from(who);
        let hash = hash.to_string();
        metadata(self.call(|c, s| c.artifacts_store_ops().call_stat(s, &who, &hash))??)
    }

    pub(crate) fn count(&mut self, who: Caller<'_>) -> Result<u64, Error> {
        let who = ops::Caller::from(who);
        Ok(self.call(|c, s| c.artifacts_store_ops().call_count(s, &who))??)
    }

    pub(crate) fn total_bytes(&mut self, who: Caller<'_>) -> Result<u64, Error> {
        let who = ops::Caller::from(who);
        Ok(self.call(|c, s| c.artifacts_store_ops().call_total_bytes(s, &who))??)
    }

    /// Up to `limit` artifacts with hashes after `after`, in hash order.
    pub(crate) fn list(
        &mut self,
        who: Caller<'_>,
        after: Option<&Hash>,
        limit: u32,
    ) -> Result<Vec<Metadata>, Error> {
        let after = after.map(Hash::to_string);
        let who = ops::Caller::from(who);
        self.call(|c, s| {
            c.artifacts_store_ops()
                .call_list(s, &who, after.as_ref(), limit)
        })??
        .into_iter()
        .map(metadata)
        .collect()
    }

    /// What an owner's artifacts add up to.
    pub(crate) fn usage(&mut self, owner: &str) -> Result<Usage, Error> {
        let who = ops::Caller::from(Caller::Owner(owner, Quota::UNLIMITED));
        let usage = self.call(|c, s| c.artifacts_store_ops().call_usage(s, &who))??;
        Ok(usage.into())
    }

    /// Stores the content staged in `staging` (of `size` bytes, hashing to
    /// `hash` as the host computed it) with the put rules, for `who`.
    /// `staging` is lent to the instance for the call and comes back even
    /// if the call traps.
    pub(crate) fn put_staged(
        &mut self,
        who: Caller<'_>,
        staging: &mut Staging,
        size: u64,
        hash: &Hash,
        artifact_type: ArtifactType,
    ) -> Result<Hash, Error> {
        let placeholder = Staging::lent();
        self.store.data_mut().staged = Some((std::mem::replace(staging, placeholder), *hash));
        let (who, hex, t) = (
            ops::Caller::from(who),
            hash.to_string(),
            artifact_type.into(),
        );
        let result = self.call(|c, s| {
            c.artifacts_store_ops()
                .call_put_staged(s, &who, size, t, &hex)
        });
        if let Some((staged, _)) = self.store.data_mut().staged.take() {
            *staging = staged;
        }
        core_hash(&result?.map_err(|e| sized(e, size))?)
    }

    /// The chaining value of the piece `bytes` at `offset` of an input.
    pub(crate) fn subtree(&mut self, bytes: &[u8], offset: u64) -> Result<Vec<u8>, Error> {
        self.call(|c, s| c.artifacts_store_tree().call_subtree(s, bytes, offset))?
            .map_err(tree_error("subtree"))
    }

    /// The chaining value of the piece `bytes` at `offset` (a multiple of
    /// 16 KiB) and its 16 KiB groups' values (32 bytes each, concatenated).
    pub(crate) fn subtree_groups(
        &mut self,
        bytes: &[u8],
        offset: u64,
    ) -> Result<(Vec<u8>, Vec<u8>), Error> {
        self.call(|c, s| {
            c.artifacts_store_tree()
                .call_subtree_groups(s, bytes, offset)
        })?
        .map_err(tree_error("subtree-groups"))
    }

    /// Has the core build the outboard of `hash` (`size` bytes) from its
    /// groups' values, check it against the hash and write it unless the
    /// backend has it; whether it wrote.
    pub(crate) fn store_outboard(
        &mut self,
        hash: &Hash,
        size: u64,
        groups: &[u8],
    ) -> Result<bool, Error> {
        let hex = hash.to_string();
        self.call(|c, s| {
            c.artifacts_store_tree()
                .call_store_outboard(s, &hex, size, groups)
        })?
        .map_err(tree_error("store-outboard"))
    }

    /// The chaining value of two adjacent subtrees.
    pub(crate) fn parent(&mut self, left: &[u8], right: &[u8]) -> Result<Vec<u8>, Error> {
        self.call(|c, s| c.artifacts_store_tree().call_parent(s, left, right))?
            .map_err(tree_error("parent"))
    }

    /// The hash of an input from its two top subtrees' chaining values.
    pub(crate) fn root(&mut self, left: &[u8], right: &[u8]) -> Result<Hash, Error> {
        let hex = self
            .call(|c, s| c.artifacts_store_tree().call_root(s, left, right))?
            .map_err(tree_error("root"))?;
        core_hash(&hex)
    }

    /// The core's part of a gc (the backend's temporary files are the host's).
    pub(crate) fn gc(&mut self, grace_ms: u64) -> Result<GcReport, Error> {
        let r = self.call(|c, s| c.artifacts_store_maintenance().call_gc(s, grace_ms))??;
        Ok(GcReport {
            orphans_removed: r.orphans_removed,
            bytes_freed: r.bytes_freed,
            orphans_in_grace: r.orphans_in_grace,
            deletions_finished: r.deletions_finished,
            temporary_files_removed: 0,
            outboards_removed: 0,
            aliases_removed: 0,
            owner_spaces_removed: 0,
        })
    }

    /// Settles `owner`'s finished releases (see the WIT `settle`): returns
    /// the hashes whose deletion it finished.
    pub(crate) fn settle(&mut self, owner: &str) -> Result<Vec<Hash>, Error> {
        let hashes = self.call(|c, s| c.artifacts_store_maintenance().call_settle(s, owner))??;
        hashes.iter().map(|h| core_hash(h)).collect()
    }

    /// Rewrites format 1 records as format 2; returns how many.
    pub(crate) fn migrate(&mut self) -> Result<u64, Error> {
        Ok(self.call(|c, s| c.artifacts_store_maintenance().call_migrate(s))??)
    }
}

/// The core's error for a put of `size` bytes.
fn sized(e: super::bindings::types::Error, size: u64) -> Error {
    match Error::from(e) {
        Error::TooLarge { limit, .. } => Error::TooLarge { size, limit },
        other => other,
    }
}

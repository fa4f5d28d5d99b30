//! The core's names calls (of its `ops` export) as typed calls on one
//! [`Instance`], for one owner (the host's own names are `@host`'s).

use super::bindings::ops;
use super::calls::Caller;
use super::convert::core_hash;
use super::pool::Instance;
use crate::{Error, Hash, Quota, Tag};

/// `owner` as the caller of a names call: names cost no quota.
fn named(owner: &str) -> ops::Caller {
    ops::Caller::from(Caller::Owner(owner, Quota::UNLIMITED))
}

impl Instance {
    /// The most names one owner keeps (the WIT's `name-limit`).
    pub(crate) fn name_limit(&mut self) -> Result<u32, Error> {
        self.call(|c, s| c.artifacts_store_ops().call_name_limit(s))
    }

    /// Points `owner`'s `name` at `hash`; returns what it pointed at before.
    pub(crate) fn tag_set(
        &mut self,
        owner: &str,
        name: &str,
        hash: &Hash,
    ) -> Result<Option<Hash>, Error> {
        let who = named(owner);
        let hash = hash.to_string();
        let before = self
            .call(|c, s| c.artifacts_store_ops().call_tag_set(s, &who, name, &hash))?
            .map_err(Error::from)?;
        before.as_deref().map(core_hash).transpose()
    }

    /// What `owner`'s `name` points at.
    pub(crate) fn tag_get(&mut self, owner: &str, name: &str) -> Result<Option<Hash>, Error> {
        let who = named(owner);
        let found = self.call(|c, s| c.artifacts_store_ops().call_tag_get(s, &who, name))??;
        found.as_deref().map(core_hash).transpose()
    }

    /// Removes `owner`'s `name`; returns what it pointed at.
    pub(crate) fn tag_delete(&mut self, owner: &str, name: &str) -> Result<Option<Hash>, Error> {
        let who = named(owner);
        let before = self
            .call(|c, s| c.artifacts_store_ops().call_tag_delete(s, &who, name))?
            .map_err(Error::from)?;
        before.as_deref().map(core_hash).transpose()
    }

    /// Points `owner`'s `name` at `new` if it points at `expected` now.
    pub(crate) fn tag_replace(
        &mut self,
        owner: &str,
        name: &str,
        expected: Option<&Hash>,
        new: &Hash,
    ) -> Result<(), Error> {
        let who = named(owner);
        let expected = expected.map(Hash::to_string);
        let new = new.to_string();
        Ok(self.call(|c, s| {
            c.artifacts_store_ops()
                .call_tag_replace(s, &who, name, expected.as_ref(), &new)
        })??)
    }

    /// Up to `limit` of `owner`'s names that start with `prefix`, after `after`.
    pub(crate) fn tag_list(
        &mut self,
        owner: &str,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Tag>, Error> {
        let who = named(owner);
        let page = self
            .call(|c, s| {
                c.artifacts_store_ops()
                    .call_tag_list(s, &who, prefix, after, limit)
            })?
            .map_err(Error::from)?;
        page.into_iter()
            .map(|t| {
                Ok(Tag {
                    hash: core_hash(&t.hash)?,
                    name: t.name,
                })
            })
            .collect()
    }
}

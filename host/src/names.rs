//! [`Names`]: an owner's labels for the artifacts it holds (the WIT `names`
//! interface), for the host itself or one app.

use crate::core_component::CoreClient;
use crate::{ArtifactStore, Error, Hash};

/// A name and the artifact it points at.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Tag {
    /// The name.
    pub name: String,
    /// The artifact's hash.
    pub hash: Hash,
}

/// One owner's names: what [`ArtifactStore::names`] returns (the host's
/// own, as `@host`, or an app's).
///
/// A name is 1 to 255 bytes of UTF-8 without control characters and points
/// at one artifact the owner holds; it holds a reference to it, so that
/// neither a release nor gc deletes it while the name points at it.
/// [`replace`](Names::replace) moves a name only if it still points where
/// the caller thinks, so `plugin@latest` can move from one version to the
/// next atomically. An owner keeps at most [`limit`](Names::limit) names.
///
/// ```
/// use artifacts::{ArtifactStore, ArtifactType};
///
/// let store = ArtifactStore::open_memory()?;
/// let v1 = store.put(b"plugin v1", ArtifactType::WasmModule)?;
/// let v2 = store.put(b"plugin v2", ArtifactType::WasmModule)?;
/// let names = store.names();
/// names.set("plugin@latest", &v1)?;
/// names.replace("plugin@latest", Some(&v1), &v2)?;
/// assert_eq!(names.get("plugin@latest")?, Some(v2));
/// store.release(&v2)?; // the name still holds it
/// assert!(store.contains(&v2)?);
/// # Ok::<(), artifacts::Error>(())
/// ```
#[derive(Clone, Copy)]
pub struct Names<'a> {
    core: &'a CoreClient,
    owner: &'a str,
}

impl ArtifactStore {
    /// The owner's names: the host's own (its owner `@host`), or the app's,
    /// private to it like its artifacts.
    pub fn names(&self) -> Names<'_> {
        Names {
            core: &self.core,
            owner: self.id(),
        }
    }
}

impl Names<'_> {
    /// The most names one owner keeps, and the most one
    /// [`list_page`](Self::list_page) returns.
    pub fn limit(&self) -> u32 {
        self.core.name_limit()
    }

    /// Points `name` at `hash`, which the owner must hold (else
    /// [`Error::NotFound`]); returns what it pointed at before.
    #[crate::traced(tag_set, owner = self.owner, hash = hash)]
    pub fn set(&self, name: &str, hash: &Hash) -> Result<Option<Hash>, Error> {
        self.core.names_write(|i| i.tag_set(self.owner, name, hash))
    }

    /// What `name` points at, if it exists.
    #[crate::traced(tag_get, owner = self.owner)]
    pub fn get(&self, name: &str) -> Result<Option<Hash>, Error> {
        self.core.with(|i| i.tag_get(self.owner, name))
    }

    /// Removes `name`; returns what it pointed at, if it existed. The
    /// artifact loses the name's reference, and is deleted if that was the
    /// last one anyone held.
    #[crate::traced(tag_delete, owner = self.owner)]
    pub fn delete(&self, name: &str) -> Result<Option<Hash>, Error> {
        self.core.names_write(|i| i.tag_delete(self.owner, name))
    }

    /// Points `name` at `new` only if it now points at `expected` (`None`:
    /// only if it does not exist); else fails with [`Error::NameConflict`]
    /// (carrying what it points at) and changes nothing.
    #[crate::traced(tag_replace, owner = self.owner, hash = new)]
    pub fn replace(&self, name: &str, expected: Option<&Hash>, new: &Hash) -> Result<(), Error> {
        self.core
            .names_write(|i| i.tag_replace(self.owner, name, expected, new))
    }

    /// Up to `limit` (at most [`limit`](Self::limit)) names that start with
    /// `prefix` and sort after `after` (in byte order), ascending.
    #[crate::traced(tag_list, owner = self.owner)]
    pub fn list_page(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Tag>, Error> {
        self.core
            .with(|i| i.tag_list(self.owner, prefix, after, limit))
    }

    /// Every name that starts with `prefix`, in byte order, a page at a time.
    pub fn list(&self, prefix: &str) -> Result<Vec<Tag>, Error> {
        let mut all: Vec<Tag> = Vec::new();
        loop {
            let after = all.last().map(|t| t.name.clone());
            let page = self.list_page(prefix, after.as_deref(), self.limit())?;
            let done = page.len() < self.limit() as usize;
            all.extend(page);
            if done {
                return Ok(all);
            }
        }
    }
}

//! [`AppView`]: the store as one app sees it, with its own references,
//! quota and grants.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::core_component::{Caller, HOST_OWNER};
use crate::{ArtifactStore, ArtifactType, Error, Hash, Metadata};

/// An app's limits on what it may keep in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Total size of the app's distinct artifacts, in bytes.
    pub max_bytes: u64,
    /// Number of the app's distinct artifacts.
    pub max_artifacts: u64,
    /// Size of one artifact, in bytes.
    pub max_artifact_bytes: u64,
}

impl Quota {
    /// No limits beyond the store's own.
    pub const UNLIMITED: Self = Self {
        max_bytes: u64::MAX,
        max_artifacts: u64::MAX,
        max_artifact_bytes: u64::MAX,
    };
}

impl Default for Quota {
    /// 256 MiB in at most 4096 artifacts of at most 64 MiB each.
    fn default() -> Self {
        Self {
            max_bytes: 256 << 20,
            max_artifacts: 4096,
            max_artifact_bytes: 64 << 20,
        }
    }
}

/// What an app's artifacts add up to, as its quota counts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Usage {
    /// Total size of its distinct artifacts.
    pub bytes: u64,
    /// Number of its distinct artifacts.
    pub artifacts: u64,
}

/// The store as one app sees it.
///
/// The app sees only artifacts it holds references to, plus the ones the
/// host [granted](AppView::grant) it (readable, not releasable); anything
/// else answers `NotFound`, exactly as if it did not exist. `release` and
/// `remove` drop only the app's own references, and a put that gives the
/// app its first reference to an artifact is charged to its [`Quota`]
/// before anything is written.
#[derive(Debug, Clone)]
pub struct AppView {
    store: ArtifactStore,
    app: String,
    quota: Quota,
    grants: HashSet<Hash>,
    /// How many calls into the core this view and its clones have made as
    /// the app (see [`calls`](AppView::calls)).
    calls: Arc<AtomicU64>,
    /// Under private dedup, what the app's launched children (ended this
    /// run) left waiting to be settled: it counts against the app's quota
    /// until the run's end settles it.
    children_waiting: Arc<Mutex<Usage>>,
}

impl ArtifactStore {
    /// The store as the app `app` sees it. App ids are owner ids (1 to 64
    /// ASCII letters, digits or `._:-`) without `@`: ids that start with
    /// `@` are the host's (`types.wit`, `invalid-owner`).
    pub fn app(&self, app: &str, quota: Quota) -> Result<AppView, Error> {
        let valid = !app.is_empty()
            && app.len() <= 64
            && app
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._:-".contains(c));
        if !valid {
            return Err(Error::InvalidOwner(format!("{app:.80?}")));
        }
        Ok(AppView {
            store: self.clone(),
            app: app.to_string(),
            quota,
            grants: HashSet::new(),
            calls: Arc::default(),
            children_waiting: Arc::default(),
        })
    }
}

impl ArtifactStore {
    /// The view of a launched app, `PARENT/NAME` (an id `app` refuses:
    /// only launches make ids with `/`).
    #[cfg(feature = "apps")]
    pub(crate) fn child_app(&self, id: String, quota: Quota) -> AppView {
        AppView {
            store: self.clone(),
            app: id,
            quota,
            grants: HashSet::new(),
            calls: Arc::default(),
            children_waiting: Arc::default(),
        }
    }
}

impl AppView {
    /// The app's id.
    pub fn id(&self) -> &str {
        &self.app
    }

    /// The app's quota.
    pub fn quota(&self) -> Quota {
        self.quota
    }

    /// Lets the app read `hash` (get, stat, contains, verify) without
    /// holding a reference to it. Its `stat` of a grant it holds none of
    /// shows the size, 0 references, and the type and time of the host's own
    /// first put if the host holds it, else `generic` and 0: nothing of
    /// what other owners put, or when. Once the app puts the content itself,
    /// it sees its own first put.
    pub fn grant(&mut self, hash: Hash) {
        self.grants.insert(hash);
    }

    /// The store this view is of.
    pub(crate) fn store(&self) -> &ArtifactStore {
        &self.store
    }

    fn granted(&self, hash: &Hash) -> bool {
        self.grants.contains(hash)
    }

    /// This app, as the core's calls name it: every call the app makes
    /// through this view (or a clone) takes it, and is counted.
    pub(crate) fn me(&self) -> Caller<'_> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let waiting = self.children_waiting();
        let quota = Quota {
            max_bytes: self.quota.max_bytes.saturating_sub(waiting.bytes),
            max_artifacts: self.quota.max_artifacts.saturating_sub(waiting.artifacts),
            ..self.quota
        };
        Caller::Owner(&self.app, quota)
    }

    /// What the app's children left waiting this run (see
    /// [`settle`](Self::settle)), counted against its quota.
    pub(crate) fn children_waiting(&self) -> Usage {
        *self
            .children_waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Counts what a child of the app left waiting against the app's quota.
    #[cfg(feature = "apps")]
    pub(crate) fn add_children_waiting(&self, left: Usage) {
        let mut w = self
            .children_waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        w.bytes = w.bytes.saturating_add(left.bytes);
        w.artifacts = w.artifacts.saturating_add(left.artifacts);
    }

    /// Under private dedup, ends what the host counts as one run of the
    /// app: an app's last release only marks the content for deletion
    /// (doing the same work whether or not others hold it), and its bytes
    /// keep counting against the app's quota until this finishes the
    /// deletions its releases started and frees them (or, after a crash,
    /// until a [`gc`](ArtifactStore::gc)). `AppHost` calls it when a run
    /// ends (a launched child's, when its root run ends); an embedder that
    /// drives a view itself calls it where the app cannot time it. Returns
    /// how many deletions it finished; nothing under shared dedup.
    pub fn settle(&self) -> Result<u64, Error> {
        let finished = self.store.settle(&self.app)?;
        *self
            .children_waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Usage::default();
        Ok(finished)
    }

    /// How many calls this view and its clones have made as the app so
    /// far. Within one run what the app holds grows only by such a call
    /// (its names hold only what it holds; the host's removals and gc only
    /// shrink it), so a figure read from [`usage`](Self::usage) stays true
    /// while this does not move, unless something else stores as the same
    /// app id meanwhile (another run of it, another view the embedder made):
    /// a staging check may then count too little held, as it counts only
    /// its own run's staging anyway, and the core's quota check at the put
    /// still refuses what would pass the quota.
    #[cfg(feature = "apps")]
    pub(crate) fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// The most entries one [`list_page`](Self::list_page) returns.
    pub fn list_limit(&self) -> u32 {
        self.store.list_limit()
    }

    /// Refuses content of `size` bytes that the store or the app's quota
    /// would refuse, before it is copied anywhere (the core makes the same
    /// checks, and decides).
    pub(crate) fn check_size(&self, size: u64) -> Result<(), Error> {
        self.store.check_size(size)?;
        let limit = self.quota.max_artifact_bytes;
        if size > limit {
            return Err(Error::QuotaExceeded {
                kind: crate::QuotaKind::ArtifactBytes,
                limit,
                requested: size,
            });
        }
        Ok(())
    }

    /// Stores `content` for the app, within its quota.
    #[crate::traced(put, owner = self.app, bytes = content.len())]
    pub fn put(&self, content: &[u8], artifact_type: ArtifactType) -> Result<Hash, Error> {
        self.check_size(content.len() as u64)?;
        self.store
            .core
            .with(|i| i.put(self.me(), content, artifact_type))
    }

    /// The verified content of an artifact the app references or was granted.
    #[crate::traced(get, owner = self.app, hash = hash)]
    pub fn get(&self, hash: &Hash) -> Result<Vec<u8>, Error> {
        if self.granted(hash) {
            return self.store.get(hash);
        }
        self.store.core.with(|i| i.get(self.me(), hash))
    }

    /// The bytes `range` of an artifact the app references or was granted,
    /// proven to belong to it without reading all of it (see
    /// [`ArtifactStore::get_range`]); at most [`RANGE_LIMIT`](crate::RANGE_LIMIT)
    /// bytes at a time (more is [`Error::RangeTooLong`]). Anything the app
    /// cannot see is `NotFound`, whatever the range.
    pub fn get_range(&self, hash: &Hash, range: std::ops::Range<u64>) -> Result<Vec<u8>, Error> {
        let (offset, length) = crate::store::offset_and_length(&range)?;
        self.get_length(hash, offset, length)
    }

    /// [`get_range`](Self::get_range) as `length` bytes from `offset` (so
    /// a range reaching past `u64::MAX` is refused for what was asked).
    #[crate::traced(get_range, owner = self.app, hash = hash)]
    pub(crate) fn get_length(
        &self,
        hash: &Hash,
        offset: u64,
        length: u64,
    ) -> Result<Vec<u8>, Error> {
        let who = if self.granted(hash) && !self.store.core.with(|i| i.contains(self.me(), hash))? {
            Caller::Host
        } else {
            self.me()
        };
        self.store
            .core
            .with(|i| i.get_range(who, hash, offset, length))
    }

    /// Whether the app references (or was granted) `hash`.
    #[crate::traced(contains, owner = self.app, hash = hash)]
    pub fn contains(&self, hash: &Hash) -> Result<bool, Error> {
        if self.granted(hash) {
            return self.store.contains(hash);
        }
        self.store.core.with(|i| i.contains(self.me(), hash))
    }

    /// Drops one of the app's references; returns how many it has left.
    #[crate::traced(release, owner = self.app, hash = hash)]
    pub fn release(&self, hash: &Hash) -> Result<u64, Error> {
        self.store.core.with(|i| i.release(self.me(), hash))
    }

    /// Drops all of the app's references; the artifact stays while others hold any.
    #[crate::traced(remove, owner = self.app, hash = hash)]
    pub fn remove(&self, hash: &Hash) -> Result<(), Error> {
        self.store.core.with(|i| i.remove(self.me(), hash))
    }

    /// Metadata as the app sees it: of its own first put (type, time) and
    /// its own reference count. For a grant it holds none of: see
    /// [`grant`](Self::grant).
    #[crate::traced(stat, owner = self.app, hash = hash)]
    pub fn stat(&self, hash: &Hash) -> Result<Metadata, Error> {
        let own = self.store.core.with(|i| i.stat(self.me(), hash));
        if self.granted(hash) && own.is_err() {
            let meta = self.store.stat(hash)?;
            return self.as_granted(meta);
        }
        own
    }

    /// Re-reads and checks an artifact the app references or was granted.
    #[crate::traced(verify, owner = self.app, hash = hash)]
    pub fn verify(&self, hash: &Hash) -> Result<Metadata, Error> {
        if self.granted(hash) && !self.store.core.with(|i| i.contains(self.me(), hash))? {
            let meta = self.store.verify(hash)?;
            return self.as_granted(meta);
        }
        self.store.core.with(|i| i.verify(self.me(), hash))
    }

    /// What a granted artifact the app holds none of shows it: its size,
    /// no references, and the type and time of the host's own first put if
    /// the host holds it (the host granted it: what it shows is its own),
    /// else `generic` and 0. Never what another owner put or when.
    fn as_granted(&self, store_wide: Metadata) -> Result<Metadata, Error> {
        let host = Caller::Owner(HOST_OWNER, crate::Quota::UNLIMITED);
        let (artifact_type, stored_at) =
            match self.store.core.with(|i| i.stat(host, &store_wide.hash)) {
                Ok(m) => (m.artifact_type, m.stored_at),
                Err(Error::Core(e)) => return Err(Error::Core(e)),
                Err(_) => (ArtifactType::Generic, 0),
            };
        Ok(Metadata {
            artifact_type,
            stored_at,
            reference_count: 0,
            ..store_wide
        })
    }

    /// How many artifacts the app references.
    #[crate::traced(count, owner = self.app)]
    pub fn count(&self) -> Result<u64, Error> {
        self.store.core.with(|i| i.count(self.me()))
    }

    /// The total size of the artifacts the app references.
    #[crate::traced(total_bytes, owner = self.app)]
    pub fn total_bytes(&self) -> Result<u64, Error> {
        self.store.core.with(|i| i.total_bytes(self.me()))
    }

    /// One page of the artifacts the app references, in hash order: up to
    /// `limit` (at most [`list_limit`](Self::list_limit)) after `after`.
    #[crate::traced(list, owner = self.app)]
    pub fn list_page(&self, after: Option<&Hash>, limit: u32) -> Result<Vec<Metadata>, Error> {
        self.store.core.with(|i| i.list(self.me(), after, limit))
    }

    /// What the app's artifacts add up to.
    #[crate::traced(usage, owner = self.app)]
    pub fn usage(&self) -> Result<Usage, Error> {
        self.store.core.with(|i| i.usage(&self.app))
    }
}

//! Whose view of the store an [`ArtifactStore`] is: the host's (every
//! artifact) or one app's ([`AppView`]: its own references, quota and
//! grants). Every operation is written once over this; here are what only
//! an app's view holds and the rules its reads follow.

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

/// The store as one app sees it: an [`ArtifactStore`] scoped to the app
/// (made by [`ArtifactStore::app`]), with the same operations.
///
/// The app sees only artifacts it holds references to, plus the ones the
/// host [granted](ArtifactStore::grant) it (readable, not releasable);
/// anything else answers `NotFound`, exactly as if it did not exist.
/// `release` and `remove` drop only the app's own references, and a put
/// that gives the app its first reference to an artifact is charged to its
/// [`Quota`] before anything is written. Upkeep (`gc`, `migrate`,
/// `quarantine`) is store-wide whichever view runs it.
pub type AppView = ArtifactStore;

/// Whose view a store is.
#[derive(Debug, Clone)]
pub(crate) enum Owner {
    /// The host: every artifact, store-wide counts, no quota.
    Host,
    /// One app. Shared by clones of its view, but for the grants, which a
    /// clone copies (see [`ArtifactStore::grant`]).
    App(Arc<AppOwner>),
}

/// What an app's view holds besides the store.
#[derive(Debug, Clone)]
pub(crate) struct AppOwner {
    id: String,
    quota: Quota,
    grants: HashSet<Hash>,
    /// How many calls into the core the view and its clones have made as
    /// the app (see [`ArtifactStore::calls`]).
    calls: Arc<AtomicU64>,
    /// Under private dedup, what the app's launched children (ended this
    /// run) left waiting to be settled: it counts against the app's quota
    /// until the run's end settles it.
    children_waiting: Arc<Mutex<Usage>>,
}

impl Owner {
    /// A new app view's owner: no grants, no calls, nothing waiting.
    fn app(id: String, quota: Quota) -> Self {
        Self::App(Arc::new(AppOwner {
            id,
            quota,
            grants: HashSet::new(),
            calls: Arc::default(),
            children_waiting: Arc::default(),
        }))
    }
}

impl AppOwner {
    fn children_waiting(&self) -> std::sync::MutexGuard<'_, Usage> {
        self.children_waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }
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
        Ok(self.with_owner(Owner::app(app.to_string(), quota)))
    }

    /// The view of a launched app, `PARENT/NAME` (an id `app` refuses:
    /// only launches make ids with `/`).
    #[cfg(feature = "apps")]
    pub(crate) fn child_app(&self, id: String, quota: Quota) -> AppView {
        self.with_owner(Owner::app(id, quota))
    }

    /// The app's id; the host's is `@host`.
    pub fn id(&self) -> &str {
        match &self.owner {
            Owner::Host => HOST_OWNER,
            Owner::App(app) => &app.id,
        }
    }

    /// The app's quota; the host's is [`Quota::UNLIMITED`] (the store's
    /// own limits still hold).
    pub fn quota(&self) -> Quota {
        match &self.owner {
            Owner::Host => Quota::UNLIMITED,
            Owner::App(app) => app.quota,
        }
    }

    /// Lets the app read `hash` (get, stat, contains, verify) without
    /// holding a reference to it. Its `stat` of a grant it holds none of
    /// shows the size, 0 references, and the type and time of the host's own
    /// first put if the host holds it, else `generic` and 0: nothing of
    /// what other owners put, or when. Once the app puts the content itself,
    /// it sees its own first put. The host reads everything already: on its
    /// view this does nothing.
    pub fn grant(&mut self, hash: Hash) {
        if let Owner::App(app) = &mut self.owner {
            Arc::make_mut(app).grants.insert(hash);
        }
    }

    /// Whether this is the host's view.
    pub(crate) fn is_host(&self) -> bool {
        matches!(self.owner, Owner::Host)
    }

    /// Whether this is an app's view granted `hash` (the host's grants
    /// nothing: it reads everything).
    pub(crate) fn granted(&self, hash: &Hash) -> bool {
        matches!(&self.owner, Owner::App(app) if app.grants.contains(hash))
    }

    /// This view's owner, as the core's calls name it: every call an app
    /// makes through its view (or a clone) takes it, and is counted; its
    /// quota is less what its children left waiting.
    pub(crate) fn caller(&self) -> Caller<'_> {
        let Owner::App(app) = &self.owner else {
            return Caller::Host;
        };
        app.calls.fetch_add(1, Ordering::Relaxed);
        let waiting = *app.children_waiting();
        let quota = Quota {
            max_bytes: app.quota.max_bytes.saturating_sub(waiting.bytes),
            max_artifacts: app.quota.max_artifacts.saturating_sub(waiting.artifacts),
            ..app.quota
        };
        Caller::Owner(&app.id, quota)
    }

    /// Whether the view's owner holds `hash` (a counted call for an app).
    pub(crate) fn holds(&self, hash: &Hash) -> Result<bool, Error> {
        self.core.with(|i| i.contains(self.caller(), hash))
    }

    /// What the app's children left waiting this run (see
    /// [`settle`](Self::settle)), counted against its quota; nothing for
    /// the host.
    #[cfg(any(test, feature = "apps"))]
    pub(crate) fn children_waiting(&self) -> Usage {
        match &self.owner {
            Owner::Host => Usage::default(),
            Owner::App(app) => *app.children_waiting(),
        }
    }

    /// Counts what a child of the app left waiting against the app's quota.
    #[cfg(feature = "apps")]
    pub(crate) fn add_children_waiting(&self, left: Usage) {
        if let Owner::App(app) = &self.owner {
            let mut w = app.children_waiting();
            w.bytes = w.bytes.saturating_add(left.bytes);
            w.artifacts = w.artifacts.saturating_add(left.artifacts);
        }
    }

    /// Under private dedup, ends what the host counts as one run of the
    /// app: an app's last release only marks the content for deletion
    /// (doing the same work whether or not others hold it), and its bytes
    /// keep counting against the app's quota until this finishes the
    /// deletions its releases started and frees them (or, after a crash,
    /// until a [`gc`](ArtifactStore::gc)). `AppHost` calls it when a run
    /// ends (a launched child's, when its root run ends); an embedder that
    /// drives a view itself calls it where the app cannot time it. Returns
    /// how many deletions it finished; nothing under shared dedup, nor for
    /// the host, whose releases leave nothing waiting.
    pub fn settle(&self) -> Result<u64, Error> {
        let Owner::App(app) = &self.owner else {
            return Ok(0);
        };
        let finished = self.settle_owner(&app.id)?;
        *app.children_waiting() = Usage::default();
        Ok(finished)
    }

    /// How many calls this view and its clones have made as the app so
    /// far (none for the host). Within one run what the app holds grows
    /// only by such a call (its names hold only what it holds; the host's
    /// removals and gc only shrink it), so a figure read from
    /// [`usage`](Self::usage) stays true while this does not move, unless
    /// something else stores as the same app id meanwhile (another run of
    /// it, another view the embedder made): a staging check may then count
    /// too little held, as it counts only its own run's staging anyway, and
    /// the core's quota check at the put still refuses what would pass the
    /// quota.
    #[cfg(feature = "apps")]
    pub(crate) fn calls(&self) -> u64 {
        match &self.owner {
            Owner::Host => 0,
            Owner::App(app) => app.calls.load(Ordering::Relaxed),
        }
    }

    /// What a granted artifact the app holds none of shows it: its size,
    /// no references, and the type and time of the host's own first put if
    /// the host holds it (the host granted it: what it shows is its own),
    /// else `generic` and 0. Never what another owner put or when.
    pub(crate) fn as_granted(&self, store_wide: Metadata) -> Result<Metadata, Error> {
        let host = Caller::Owner(HOST_OWNER, Quota::UNLIMITED);
        let (artifact_type, stored_at) = match self.core.with(|i| i.stat(host, &store_wide.hash)) {
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

    /// What the app's artifacts add up to; for the host, the whole store's.
    #[crate::traced(usage, owner = self.id())]
    pub fn usage(&self) -> Result<Usage, Error> {
        match &self.owner {
            Owner::Host => Ok(Usage {
                bytes: self.total_bytes()?,
                artifacts: self.count()?,
            }),
            Owner::App(app) => self.core.with(|i| i.usage(&app.id)),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_hosts_view_answers_the_app_accessors_for_the_whole_store() {
        let mut host = ArtifactStore::open_memory().unwrap();
        let app = host.app("app-1", Quota::default()).unwrap();
        let mine = app.put(b"the app's", ArtifactType::Generic).unwrap();
        let theirs = host.put(b"the host's", ArtifactType::Generic).unwrap();
        host.grant(mine);
        assert_eq!((host.id(), host.quota()), (HOST_OWNER, Quota::UNLIMITED));
        assert_eq!(host.settle().unwrap(), 0);
        assert_eq!(host.children_waiting(), Usage::default());
        let usage = Usage {
            bytes: 19,
            artifacts: 2,
        };
        assert_eq!(host.usage().unwrap(), usage);
        assert!(host.contains(&mine).unwrap());
        // The app's view: its own, and a grant it sees without holding.
        assert_eq!((app.id(), app.quota()), ("app-1", Quota::default()));
        assert_eq!(
            app.usage().unwrap(),
            Usage {
                bytes: 9,
                artifacts: 1
            }
        );
        assert!(matches!(app.get(&theirs), Err(Error::NotFound(_))));
        let mut granted = app.clone();
        granted.grant(theirs);
        assert_eq!(granted.get(&theirs).unwrap(), b"the host's");
        assert_eq!(granted.stat(&theirs).unwrap().reference_count, 0);
        assert!(
            !app.contains(&theirs).unwrap(),
            "a clone's grant is its own"
        );
    }
}

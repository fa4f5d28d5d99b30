//! Under private dedup an owner's last release only marks the content for
//! deletion (so that it does the same work whether others hold it or
//! not): the quota must still bound the bytes left on disk on the owner's
//! behalf. Each test churns (puts fresh content and releases it at once)
//! and measures the bytes on disk before every blob write or delete and
//! after the run: on the file backend the size of every file under the
//! store's directory, on memory and S3 the backend's blob and outboard
//! bytes, each over what was there before the churn.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use artifacts::backend::Backend;
use artifacts::backend::{Side, SideKind};
use artifacts::{ArtifactType, Error, Hash, Quota, StoreBuilder};

use crate::fixture::{Fixture, each_backend};
use crate::watched::{Watch, Watched};

/// What the file backend keeps beside the blobs that churn may leave
/// behind (records, usage, directories): at most this much over the
/// bytes the quota counts.
const SLACK: u64 = 64 << 10;

/// Bytes on disk now (see the module's comment).
type Probe = Box<dyn Fn() -> u64 + Send + Sync>;

fn file_bytes(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => file_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

fn blob_bytes(b: &dyn Backend) -> u64 {
    let mut total = 0;
    for outboards in [false, true] {
        let mut after = None;
        loop {
            let page: Vec<(Hash, u64)> = if outboards {
                let after = after.map(Side::Outboard);
                b.list_side(SideKind::Outboard, after.as_ref(), 1000)
                    .unwrap()
                    .into_iter()
                    .filter_map(|i| Some((i.key.hash_key()?, i.size)))
                    .collect()
            } else {
                b.list_blobs(after.as_ref(), 1000)
                    .unwrap()
                    .into_iter()
                    .map(|i| (i.key, i.size))
                    .collect()
            };
            total += page.iter().map(|i| i.1).sum::<u64>();
            match page.last() {
                Some(last) if page.len() == 1000 => after = Some(last.0),
                _ => break,
            }
        }
    }
    total
}

fn probe(fx: &Fixture) -> Probe {
    match fx {
        Fixture::File(dir) => {
            let dir: PathBuf = dir.path().to_owned();
            Box::new(move || file_bytes(&dir))
        }
        _ => {
            let backend = fx.backend();
            Box::new(move || blob_bytes(&*backend))
        }
    }
}

/// Counts a store's backend calls, and samples the bytes on disk before
/// each call that writes or deletes a blob or an outboard.
struct Disk {
    probe: Probe,
    calls: AtomicU64,
    peak: AtomicU64,
}

impl Watch for Disk {
    fn call(&self, name: &'static str) {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let moves_bytes = matches!(
            name,
            "write_blob"
                | "delete_blob"
                | "finish_staged"
                | "write_staged"
                | "write_side"
                | "delete_side"
        );
        if moves_bytes {
            self.peak.fetch_max((self.probe)(), Ordering::SeqCst);
        }
    }
}

impl Disk {
    fn now(&self) -> u64 {
        let now = (self.probe)();
        self.peak.fetch_max(now, Ordering::SeqCst);
        now
    }
    /// Starts a measure: the peak so far is what is on disk now.
    fn reset(&self) -> u64 {
        let now = (self.probe)();
        self.peak.store(now, Ordering::SeqCst);
        now
    }
    fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }
}

/// A private-dedup store over `fx`, watched by a [`Disk`].
fn private_store(fx: &Fixture) -> (artifacts::ArtifactStore, Arc<Disk>) {
    let watched = Watched::new(
        fx.backend(),
        Disk {
            probe: probe(fx),
            calls: AtomicU64::new(0),
            peak: AtomicU64::new(0),
        },
    );
    let disk = watched.watch.clone();
    let store = StoreBuilder::default()
        .private_dedup(true)
        .open(watched)
        .unwrap();
    (store, disk)
}

/// `size` bytes, distinct for each `(tag, i)`.
fn fresh(tag: &str, i: u32, size: usize) -> Vec<u8> {
    format!("{tag}/{i}/").bytes().cycle().take(size).collect()
}

const SIZE: usize = 256 << 10;
const CYCLES: u32 = 12;
const QUOTA: u64 = 1 << 20;

each_backend! {
    fn private_dedup_churn_through_a_view_stays_within_the_quota_on_disk(fx) {
        let (store, disk) = private_store(fx);
        let quota = Quota { max_bytes: QUOTA, ..Quota::default() };
        let app = store.app("churner", quota).unwrap();
        let base = disk.reset();
        let mut stored = 0;
        for i in 0..CYCLES {
            match app.put(&fresh("v", i, SIZE), ArtifactType::Generic) {
                Ok(hash) => {
                    app.release(&hash).unwrap();
                    stored += 1;
                }
                Err(Error::QuotaExceeded { .. }) => {}
                Err(e) => panic!("put {i}: {e}"),
            }
        }
        let peak = disk.peak.load(Ordering::SeqCst).max(disk.now()) - base;
        let usage = app.usage().unwrap();
        eprintln!(
            "{CYCLES} cycles of {SIZE} B, quota {QUOTA} B: {stored} stored, peak {peak} B on disk \
             ({:.2}x the quota), usage {} B before settling",
            peak as f64 / QUOTA as f64,
            usage.bytes
        );
        assert!(
            peak <= QUOTA + SLACK,
            "{peak} B on disk for an app with a {QUOTA} B quota"
        );
        // Settled (the run is over): the blobs are gone, and the quota free.
        let finished = app.settle().unwrap();
        let after = disk.now().saturating_sub(base);
        eprintln!("settled {finished} deletions: {after} B left on disk");
        assert!(after <= SLACK, "{after} B left on disk after settling");
        assert_eq!(app.usage().unwrap().bytes, 0);
        let hash = app.put(&fresh("v", CYCLES, SIZE), ArtifactType::Generic).unwrap();
        app.release(&hash).unwrap();
    }

    fn a_private_dedup_release_does_the_same_work_whether_last_or_not(fx) {
        // Counted on the same store, the app's release of content another
        // owner still holds and of content nobody else holds.
        let (store, disk) = private_store(fx);
        let app = store.app("leaver", Quota::default()).unwrap();
        let other = store.app("keeper", Quota::default()).unwrap();
        let held = fresh("held", 0, 4096);
        let h = app.put(&held, ArtifactType::Generic).unwrap();
        other.put(&held, ArtifactType::Generic).unwrap();
        let before = disk.calls();
        app.release(&h).unwrap();
        let not_last = disk.calls() - before;
        let alone = app.put(&fresh("alone", 0, 4096), ArtifactType::Generic).unwrap();
        let before = disk.calls();
        app.release(&alone).unwrap();
        let last = disk.calls() - before;
        eprintln!("backend calls of a release: {not_last} not last, {last} last");
        assert_eq!(not_last, last);
        // Both still count against the app until the run is settled.
        assert_eq!(app.usage().unwrap().bytes, 2 * 4096);
        assert_eq!(app.settle().unwrap(), 1);
        assert_eq!(app.usage().unwrap().bytes, 0);
    }
}

#[cfg(feature = "apps")]
mod runs {
    use super::*;
    use artifacts::apps::{AppConfig, AppHost};

    const LAUNCHER: &[u8] = include_bytes!("../apps/launcher.wasm");
    const CHILDREN: u32 = 3;
    const RUNS: u32 = 2;

    each_backend! {
        fn private_dedup_churn_by_runs_and_their_children_stays_within_the_quota_on_disk(fx) {
            let (store, disk) = private_store(fx);
            let host = AppHost::new(store.clone()).unwrap();
            let launcher = store.put(LAUNCHER, ArtifactType::WasmModule).unwrap();
            let app = host.load_file(LAUNCHER).unwrap();
            let base = disk.reset();
            let (mut peak, mut left) = (0, Vec::new());
            for run in 0..RUNS {
                let mut config = AppConfig::new("churner");
                config.quota = Quota { max_bytes: QUOTA, ..Quota::default() };
                config.allow_launch = true;
                config.grants = vec![launcher];
                config.args = [
                    "churn-children",
                    &launcher.to_hex(),
                    &CHILDREN.to_string(),
                    &CYCLES.to_string(),
                    &SIZE.to_string(),
                    &format!("r{run}"),
                ]
                .iter()
                .map(|a| a.to_string())
                .collect();
                let out = host.run(&app, &config).unwrap();
                let text = String::from_utf8_lossy(&out.stdout).into_owned();
                assert_eq!(out.exit_code, 0, "{text}");
                peak = peak.max(disk.peak.load(Ordering::SeqCst) - base);
                let after = disk.now().saturating_sub(base);
                eprintln!(
                    "run {run}: {CHILDREN} children and the app, {CYCLES} cycles of {SIZE} B \
                     each, quota {QUOTA} B: peak {peak} B on disk ({:.2}x), {after} B after \
                     the run\n{text}",
                    peak as f64 / QUOTA as f64
                );
                left.push(after);
            }
            assert!(
                peak <= QUOTA + SLACK && left.iter().all(|&after| after <= SLACK),
                "{peak} B on disk during {RUNS} runs of an app with a {QUOTA} B quota, \
                 {left:?} B left after each"
            );
        }
    }
}

//! I/O errors injected at every filesystem operation of a put, release and
//! remove: each gives a clear error, and nothing already stored is lost.

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use artifacts::backend::fs::{Fs, StdFs};
use artifacts::{ArtifactStore, ArtifactType, Error, FileBackend};

use crate::fixture::pattern;

/// Real I/O, except that operation number `fail_at` (counted from when it
/// was armed) fails with `errno`.
#[derive(Clone)]
struct FaultyFs {
    fail_at: Arc<AtomicI64>,
    ops: Arc<AtomicU64>,
    errno: i32,
    /// Fail every operation from `fail_at` on (a disk that died), not just that one.
    forever: bool,
    /// A filesystem without hard links (FAT, some network filesystems).
    no_links: bool,
}

impl FaultyFs {
    fn new(errno: i32, forever: bool) -> Self {
        Self {
            forever,
            no_links: false,
            fail_at: Arc::new(AtomicI64::new(-1)),
            ops: Arc::new(AtomicU64::new(0)),
            errno,
        }
    }
    fn arm(&self, at: i64) {
        self.ops.store(0, Ordering::SeqCst);
        self.fail_at.store(at, Ordering::SeqCst);
    }
    fn disarm(&self) -> bool {
        let fired = self.fail_at.load(Ordering::SeqCst) >= 0
            && self.ops.load(Ordering::SeqCst) as i64 > self.fail_at.load(Ordering::SeqCst);
        self.fail_at.store(-1, Ordering::SeqCst);
        fired
    }
    fn step(&self) -> io::Result<()> {
        let n = self.ops.fetch_add(1, Ordering::SeqCst) as i64;
        let at = self.fail_at.load(Ordering::SeqCst);
        if n == at || (self.forever && at >= 0 && n > at) {
            return Err(io::Error::from_raw_os_error(self.errno));
        }
        Ok(())
    }
}

impl FaultyFs {
    /// One operation that writes `data` with `write`; a short-write fault
    /// writes half of it, then fails.
    fn write_step(&self, data: &[u8], write: impl Fn(&[u8]) -> io::Result<()>) -> io::Result<()> {
        match self.step() {
            Err(e) if self.errno == SHORT_WRITE => {
                write(data.get(..data.len() / 2).unwrap_or_default())?;
                Err(io::Error::new(io::ErrorKind::WriteZero, e.to_string()))
            }
            Err(e) => Err(e),
            Ok(()) => write(data),
        }
    }
}

impl Fs for FaultyFs {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.step()?;
        StdFs.read(path)
    }
    fn write_new_synced(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        self.write_step(data, |d| StdFs.write_new_synced(path, d))
    }
    fn create_new(&self, path: &Path) -> io::Result<()> {
        self.step()?;
        StdFs.create_new(path)
    }
    fn append(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        self.write_step(data, |d| StdFs.append(path, d))
    }
    fn sync_file(&self, path: &Path) -> io::Result<()> {
        self.step()?;
        StdFs.sync_file(path)
    }
    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.step()?;
        if self.no_links {
            return Err(io::ErrorKind::Unsupported.into());
        }
        StdFs.hard_link(from, to)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.step()?;
        StdFs.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.step()?;
        StdFs.remove_file(path)
    }
    fn create_dir(&self, path: &Path) -> io::Result<bool> {
        self.step()?;
        StdFs.create_dir(path)
    }
    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        self.step()?;
        StdFs.remove_dir(path)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.step()?;
        StdFs.sync_dir(path)
    }
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        self.step()?;
        StdFs.list_dir(path)
    }
    fn stat(&self, path: &Path) -> io::Result<(u64, std::time::SystemTime)> {
        self.step()?;
        StdFs.stat(path)
    }
    fn lock(&self, path: &Path) -> io::Result<Box<dyn Send>> {
        self.step()?;
        StdFs.lock(path)
    }
}

const EIO: i32 = 5;
const ENOSPC: i32 = 28;
/// Each error, once (a transient fault) and forever (a dead or full disk).
/// Not an errno: the write stops half way (and reports EIO).
const SHORT_WRITE: i32 = EIO + 1000;
const FAULTS: [(i32, bool); 5] = [
    (EIO, false),
    (ENOSPC, false),
    (SHORT_WRITE, false),
    (EIO, true),
    (ENOSPC, true),
];

/// Runs `op` with a fault at operation 0, 1, 2, … until it runs through
/// without reaching the fault; after each, checks the store with `check`.
fn at_every_operation(
    (errno, forever): (i32, bool),
    setup: impl Fn(&ArtifactStore),
    op: impl Fn(&ArtifactStore) -> Result<(), Error>,
    check: impl Fn(&ArtifactStore, bool),
) -> usize {
    for at in 0.. {
        let dir = tempfile::tempdir().unwrap();
        let fs = FaultyFs::new(errno, forever);
        let store = ArtifactStore::builder()
            .open(FileBackend::open_with(dir.path(), fs.clone()).unwrap())
            .unwrap();
        setup(&store);
        fs.arm(at);
        let result = op(&store);
        let fired = fs.disarm();
        if !fired {
            result.unwrap();
            check(&store, true);
            return at as usize;
        }
        match &result {
            // Disk full stays its own error, from the backend up, wherever
            // the write was (the host's staging or the core's).
            Err(Error::Full(msg)) if errno == ENOSPC => {
                assert!(msg.contains("No space left"), "fault at op {at}: {msg}");
            }
            Err(Error::Backend(msg)) if errno != ENOSPC => {}
            Err(other) => panic!("fault at op {at} gave {other:?}"),
            Ok(()) => {}
        }
        check(&store, result.is_ok());
        // A clean reopen sees the same consistent store.
        let reopened = ArtifactStore::open_dir(dir.path()).unwrap();
        check(&reopened, result.is_ok());
        // And the store still works: the operation's content can be stored and read.
        let h = reopened.put(&new(), ArtifactType::Generic).unwrap();
        assert_eq!(reopened.get(&h).unwrap(), new());
    }
    unreachable!()
}

fn old() -> Vec<u8> {
    pattern(1024)
}

fn new() -> Vec<u8> {
    pattern(2049)
}

fn assert_old_intact(store: &ArtifactStore) {
    let h = artifacts::Hash::of(&old());
    assert_eq!(store.get(&h).unwrap(), old());
    assert_eq!(store.stat(&h).unwrap().reference_count, 1);
}

/// A put that succeeded holds its reference. One that failed part way may
/// have left its first reference under way (the artifact whole and visible
/// to the host, the host's own count still 0: the put may or may not take
/// effect); gc past the grace period then rolls it back, and the artifact
/// is gone, or it stays held by the one reference.
fn first_reference_or_under_way(s: &ArtifactStore, h: &artifacts::Hash, ok: bool) {
    match s.stat(h).unwrap().reference_count {
        1 => {}
        0 if !ok => {
            s.gc(std::time::Duration::ZERO).unwrap();
            match s.stat(h) {
                Err(Error::NotFound(_)) => {}
                Ok(m) => assert_eq!(m.reference_count, 1, "after gc"),
                Err(e) => panic!("after gc: {e}"),
            }
        }
        n => panic!("a put left {n} references (ok: {ok})"),
    }
}

#[test]
fn failed_puts_lose_nothing_and_leave_no_visible_partial_artifact() {
    for fault in FAULTS {
        let ops = at_every_operation(
            fault,
            |s| {
                s.put(&old(), ArtifactType::Generic).unwrap();
            },
            |s| s.put(&new(), ArtifactType::WasmModule).map(drop),
            |s, ok| {
                assert_old_intact(s);
                let h = artifacts::Hash::of(&new());
                if ok || s.contains(&h).unwrap() {
                    assert_eq!(s.get(&h).unwrap(), new(), "a visible artifact verifies");
                    first_reference_or_under_way(s, &h, ok);
                } else {
                    assert_eq!(s.get(&h), Err(Error::NotFound(h)));
                }
            },
        );
        assert!(
            ops >= 8,
            "a put of new content makes at least 8 fs operations, saw {ops}"
        );
    }
}

/// Just over one streaming piece (4 MiB), so `put_from` stages it in pieces.
fn streamed() -> Vec<u8> {
    pattern((4 << 20) + 3000)
}

#[test]
fn failed_streamed_puts_lose_nothing_and_leave_no_visible_partial_artifact() {
    for fault in FAULTS {
        let ops = at_every_operation(
            fault,
            |s| {
                s.put(&old(), ArtifactType::Generic).unwrap();
            },
            |s| {
                s.put_from(&mut &streamed()[..], ArtifactType::Generic)
                    .map(drop)
            },
            |s, ok| {
                assert_old_intact(s);
                let h = artifacts::Hash::of(&streamed());
                if ok || s.contains(&h).unwrap() {
                    assert_eq!(
                        s.get(&h).unwrap(),
                        streamed(),
                        "a visible artifact verifies"
                    );
                    first_reference_or_under_way(s, &h, ok);
                } else {
                    assert_eq!(s.get(&h), Err(Error::NotFound(h)));
                }
            },
        );
        assert!(
            ops >= 10,
            "a streamed put makes at least 10 fs operations, saw {ops}"
        );
    }
}

#[test]
fn a_filesystem_without_hard_links_still_stores_staged_content() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultyFs {
        no_links: true,
        ..FaultyFs::new(EIO, false)
    };
    let backend = FileBackend::open_with(dir.path(), fs).unwrap();
    artifacts::backend::conformance::check(&backend).unwrap();
    let store = ArtifactStore::builder().open(backend).unwrap();
    let h = store
        .put_from(&mut &streamed()[..], ArtifactType::Generic)
        .unwrap();
    assert_eq!(store.get(&h).unwrap(), streamed());
    assert_eq!(
        std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
        0
    );
}

#[test]
fn failed_releases_and_removes_keep_counts_consistent() {
    for fault in FAULTS {
        // Release from 2 to 1: the count is 2 or 1, never anything else.
        at_every_operation(
            fault,
            |s| {
                s.put(&old(), ArtifactType::Generic).unwrap();
                s.put(&new(), ArtifactType::Generic).unwrap();
                s.put(&new(), ArtifactType::Generic).unwrap();
            },
            |s| s.release(&artifacts::Hash::of(&new())).map(drop),
            |s, ok| {
                assert_old_intact(s);
                let h = artifacts::Hash::of(&new());
                let count = s.stat(&h).unwrap().reference_count;
                assert!(
                    if ok {
                        count == 1
                    } else {
                        count == 1 || count == 2
                    },
                    "count {count}"
                );
                assert_eq!(s.get(&h).unwrap(), new());
            },
        );
        // Remove: the artifact is whole or gone (or mid-deletion, which reads as gone).
        at_every_operation(
            fault,
            |s| {
                s.put(&old(), ArtifactType::Generic).unwrap();
                s.put(&new(), ArtifactType::Generic).unwrap();
            },
            |s| s.remove(&artifacts::Hash::of(&new())),
            |s, ok| {
                assert_old_intact(s);
                let h = artifacts::Hash::of(&new());
                if ok {
                    assert!(!s.contains(&h).unwrap());
                } else if s.contains(&h).unwrap() {
                    assert_eq!(s.get(&h).unwrap(), new());
                }
            },
        );
    }
}

#[test]
fn failed_sha256_puts_and_alias_collection_never_leave_a_wrong_alias() {
    use artifacts::sha256::Sha256Digest;
    let digest = Sha256Digest::of(&new());
    let h = artifacts::Hash::of(&new());
    let sha256_put = |s: &ArtifactStore| {
        let mut upload = s.upload_sha256(digest, ArtifactType::WasmModule);
        upload.write(&new())?;
        upload.finish().map(drop)
    };
    for fault in FAULTS {
        // The put and its alias: the alias resolves only to the whole
        // artifact, and always once the put returned.
        at_every_operation(
            fault,
            |s| {
                s.put(&old(), ArtifactType::Generic).unwrap();
            },
            sha256_put,
            |s, ok| {
                assert_old_intact(s);
                match s.resolve_sha256(&digest).unwrap() {
                    Some(found) => {
                        assert_eq!(found, h);
                        assert_eq!(s.get(&h).unwrap(), new());
                    }
                    None => assert!(!ok, "a finished sha256 put has no alias"),
                }
            },
        );
        // gc deleting the alias of a removed artifact: it never resolves,
        // and once a gc got through, nothing is left to delete.
        at_every_operation(
            fault,
            |s| {
                s.put(&old(), ArtifactType::Generic).unwrap();
                sha256_put(s).unwrap();
                s.remove(&h).unwrap();
            },
            |s| s.gc(std::time::Duration::ZERO).map(drop),
            |s, ok| {
                assert_old_intact(s);
                assert_eq!(s.resolve_sha256(&digest).unwrap(), None);
                if ok {
                    let again = s.gc(std::time::Duration::ZERO).unwrap();
                    assert_eq!(again.aliases_removed, 0, "gc left an alias");
                }
            },
        );
    }
}

/// gc's note of what it did (health's last gc) under a fault at every
/// operation of a gc: the gc fails cleanly or succeeds, and the note is
/// always a whole record, the previous one or the new one.
#[test]
fn a_fault_in_gc_leaves_its_note_whole() {
    for fault in FAULTS {
        let ops = at_every_operation(
            fault,
            |s| {
                s.put(&old(), ArtifactType::Generic).unwrap();
                s.gc(std::time::Duration::from_secs(7)).unwrap();
            },
            |s| s.gc(std::time::Duration::ZERO).map(drop),
            |s, ok| {
                assert_old_intact(s);
                let report = s.health().unwrap();
                assert!(report.problems.is_empty(), "{:?}", report.problems);
                let grace = report.last_gc.expect("a note, old or new").grace_ms;
                assert!(grace == 7000 || (ok && grace == 0), "{grace} (ok: {ok})");
            },
        );
        assert!(ops > 0, "{fault:?}");
    }
}

/// The health probe under a fault at every operation: it reports the store
/// unhealthy (never an error, never a panic), loses nothing, and a probe
/// blob it could not delete is an orphan the next gc removes.
#[test]
fn a_fault_in_the_health_probe_is_reported_and_leaves_nothing_for_long() {
    for fault in FAULTS {
        let ops = at_every_operation(
            fault,
            |s| {
                s.put(&old(), ArtifactType::Generic).unwrap();
            },
            |s| {
                let report = s.health()?;
                assert_eq!(report.healthy, report.problems.is_empty(), "{report:?}");
                Ok(())
            },
            |s, _| {
                assert_old_intact(s);
                s.gc(std::time::Duration::ZERO).unwrap();
                let report = s.health().unwrap();
                assert!(report.healthy, "{report:?}");
                let again = s.gc(std::time::Duration::ZERO).unwrap();
                assert_eq!(again.orphans_removed, 0, "no probe left after a gc");
                assert_eq!(s.count().unwrap(), 1);
            },
        );
        assert!(ops > 0, "{fault:?}");
    }
}

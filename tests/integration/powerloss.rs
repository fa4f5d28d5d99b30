//! Power loss, simulated: the file backend runs on an in-memory filesystem
//! that keeps, per file and directory, what is durable and what is only
//! cached. After every filesystem operation of a workload, every crash state
//! a power cut could leave (each directory's unsynced entries kept or lost,
//! each file's unsynced data kept, lost or torn at a 512-byte boundary) is
//! built, the store is reopened on it, and the guarantees are checked; then
//! recovery (gc) runs on it and they are checked again.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use artifacts::backend::SideKind;
use artifacts::backend::Space;
use artifacts::backend::fs::Fs;
use artifacts::{ArtifactStore, ArtifactType, Error, FileBackend};

use crate::fixture::pattern;

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Entry {
    File(u64),
    Dir,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
struct Dir {
    cached: BTreeMap<String, Entry>,
    durable: BTreeMap<String, Entry>,
}

/// File data, shared between snapshots.
type Data = Arc<[u8]>;

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
struct Inode {
    cached: Data,
    durable: Data,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
struct State {
    dirs: BTreeMap<PathBuf, Dir>,
    inodes: BTreeMap<u64, Inode>,
    next_inode: u64,
}

const ROOT: &str = "/sim";

impl State {
    fn new() -> Self {
        let mut dirs = BTreeMap::new();
        dirs.insert(PathBuf::from(ROOT), Dir::default());
        Self {
            dirs,
            ..Self::default()
        }
    }

    fn reachable(&self, dir: &Path) -> bool {
        if dir == Path::new(ROOT) {
            return true;
        }
        match (dir.parent(), dir.file_name()) {
            (Some(parent), Some(name)) => {
                self.reachable(parent)
                    && self
                        .dirs
                        .get(parent)
                        .and_then(|d| d.cached.get(name.to_str().unwrap_or_default()))
                        == Some(&Entry::Dir)
            }
            _ => false,
        }
    }

    fn split<'a>(&self, path: &'a Path) -> io::Result<(&'a Path, String)> {
        let parent = path
            .parent()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        if !self.reachable(parent) {
            return Err(io::ErrorKind::NotFound.into());
        }
        Ok((parent, name))
    }

    fn entry(&self, path: &Path) -> io::Result<Entry> {
        let (parent, name) = self.split(path)?;
        self.dirs[parent]
            .cached
            .get(&name)
            .cloned()
            .ok_or_else(|| io::ErrorKind::NotFound.into())
    }

    /// A new file at `path` (which must not exist) holding `cached`, nothing
    /// of it durable yet; returns its inode.
    fn create(&mut self, path: &Path, cached: Data) -> io::Result<u64> {
        let (parent, name) = self.split(path)?;
        let parent = parent.to_path_buf();
        if self.dirs[&parent].cached.contains_key(&name) {
            return Err(io::ErrorKind::AlreadyExists.into());
        }
        self.next_inode += 1;
        let ino = self.next_inode;
        self.inodes.insert(
            ino,
            Inode {
                cached,
                durable: Arc::from(&[][..]),
            },
        );
        self.dirs
            .get_mut(&parent)
            .unwrap()
            .cached
            .insert(name, Entry::File(ino));
        Ok(ino)
    }

    /// The directory entries whose cached value differs from the durable one.
    fn unsynced(&self) -> Vec<(PathBuf, String)> {
        let mut out = Vec::new();
        for (path, dir) in &self.dirs {
            let names: BTreeSet<&String> = dir.cached.keys().chain(dir.durable.keys()).collect();
            for name in names {
                if dir.cached.get(name) != dir.durable.get(name) {
                    out.push((path.clone(), name.clone()));
                }
            }
        }
        out
    }

    /// A crash state: the unsynced directory entries in `kept` made it to
    /// disk, every other one did not; each inode's data per `data` (default:
    /// what was synced).
    fn crash(&self, kept: &BTreeSet<(PathBuf, String)>, data: &BTreeMap<u64, Data>) -> State {
        let mut next = self.clone();
        for (path, dir) in &mut next.dirs {
            let mut entries = dir.durable.clone();
            for (p, name) in kept {
                if p == path {
                    match dir.cached.get(name) {
                        Some(e) => entries.insert(name.clone(), e.clone()),
                        None => entries.remove(name),
                    };
                }
            }
            dir.cached = entries.clone();
            dir.durable = entries;
        }
        for (ino, inode) in &mut next.inodes {
            let kept = data
                .get(ino)
                .cloned()
                .unwrap_or_else(|| inode.durable.clone());
            inode.cached = kept.clone();
            inode.durable = kept;
        }
        // Directories no longer reachable are gone, contents and all.
        let unreachable: Vec<PathBuf> = next
            .dirs
            .keys()
            .filter(|p| !next.reachable(p))
            .cloned()
            .collect();
        for p in unreachable {
            next.dirs.remove(&p);
        }
        next.forget_unlinked();
        next
    }

    /// Drops inodes that no directory entry (cached or durable) names.
    fn forget_unlinked(&mut self) {
        let linked: HashSet<u64> = self
            .dirs
            .values()
            .flat_map(|d| d.cached.values().chain(d.durable.values()))
            .filter_map(|e| match e {
                Entry::File(ino) => Some(*ino),
                Entry::Dir => None,
            })
            .collect();
        self.inodes.retain(|ino, _| linked.contains(ino));
    }
}

/// The simulated filesystem. Every call is one operation; while recording,
/// the state after each operation is kept.
#[derive(Clone)]
struct SimFs {
    state: Arc<Mutex<State>>,
    snapshots: Arc<Mutex<Option<Vec<State>>>>,
}

impl SimFs {
    fn new(state: State) -> Self {
        Self {
            state: Arc::new(Mutex::new(state)),
            snapshots: Arc::new(Mutex::new(None)),
        }
    }

    fn op<T>(&self, f: impl FnOnce(&mut State) -> io::Result<T>) -> io::Result<T> {
        let mut state = self.state.lock().unwrap();
        let result = f(&mut state);
        if let Some(snapshots) = self.snapshots.lock().unwrap().as_mut() {
            snapshots.push(state.clone());
        }
        result
    }

    fn record(&self) {
        *self.snapshots.lock().unwrap() = Some(Vec::new());
    }

    fn taken(&self) -> usize {
        self.snapshots.lock().unwrap().as_ref().map_or(0, Vec::len)
    }
}

impl Fs for SimFs {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.op(|s| match s.entry(path)? {
            Entry::File(ino) => Ok(s.inodes[&ino].cached.to_vec()),
            Entry::Dir => Err(io::Error::other("is a directory")),
        })
    }
    fn write_new_synced(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        // Two steps, each a crash point: the file created with its first
        // half written but nothing synced, then all of it written and synced.
        let half = data.get(..data.len() / 2).unwrap_or_default();
        let ino = self.op(|s| s.create(path, Arc::from(half)))?;
        self.op(|s| {
            let inode = s.inodes.get_mut(&ino).unwrap();
            inode.cached = Arc::from(data);
            inode.durable = Arc::from(data);
            Ok(())
        })
    }
    fn create_new(&self, path: &Path) -> io::Result<()> {
        self.op(|s| s.create(path, Arc::from(&[][..])).map(drop))
    }
    fn append(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        self.op(|s| {
            let Entry::File(ino) = s.entry(path)? else {
                return Err(io::Error::other("is a directory"));
            };
            let inode = s.inodes.get_mut(&ino).unwrap();
            inode.cached = [&inode.cached[..], data].concat().into();
            Ok(())
        })
    }
    fn sync_file(&self, path: &Path) -> io::Result<()> {
        self.op(|s| {
            let Entry::File(ino) = s.entry(path)? else {
                return Err(io::Error::other("is a directory"));
            };
            let inode = s.inodes.get_mut(&ino).unwrap();
            inode.durable = inode.cached.clone();
            Ok(())
        })
    }
    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.op(|s| {
            let entry @ Entry::File(_) = s.entry(from)? else {
                return Err(io::Error::other("is a directory"));
            };
            let (to_parent, to_name) = s.split(to)?;
            let to_parent = to_parent.to_path_buf();
            let dir = s.dirs.get_mut(&to_parent).unwrap();
            if dir.cached.contains_key(&to_name) {
                return Err(io::ErrorKind::AlreadyExists.into());
            }
            dir.cached.insert(to_name, entry);
            Ok(())
        })
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.op(|s| {
            let entry = s.entry(from)?;
            // POSIX: two names of one file: nothing happens, both stay.
            if s.entry(to).ok() == Some(entry.clone()) {
                return Ok(());
            }
            let (to_parent, to_name) = s.split(to)?;
            let (from_parent, from_name) = s.split(from)?;
            let (to_parent, from_parent) = (to_parent.to_path_buf(), from_parent.to_path_buf());
            s.dirs
                .get_mut(&from_parent)
                .unwrap()
                .cached
                .remove(&from_name);
            s.dirs
                .get_mut(&to_parent)
                .unwrap()
                .cached
                .insert(to_name, entry);
            Ok(())
        })
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.op(|s| {
            let Entry::File(_) = s.entry(path)? else {
                return Err(io::Error::other("is a directory"));
            };
            let (parent, name) = s.split(path)?;
            let parent = parent.to_path_buf();
            s.dirs.get_mut(&parent).unwrap().cached.remove(&name);
            Ok(())
        })
    }
    fn create_dir(&self, path: &Path) -> io::Result<bool> {
        self.op(|s| {
            if path == Path::new(ROOT) {
                return Ok(false);
            }
            let (parent, name) = s.split(path)?;
            let parent = parent.to_path_buf();
            match s.dirs[&parent].cached.get(&name) {
                Some(Entry::Dir) => return Ok(false),
                Some(Entry::File(_)) => return Err(io::ErrorKind::AlreadyExists.into()),
                None => {}
            }
            s.dirs
                .get_mut(&parent)
                .unwrap()
                .cached
                .insert(name, Entry::Dir);
            s.dirs.insert(path.to_path_buf(), Dir::default());
            Ok(true)
        })
    }
    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        self.op(|s| {
            if s.entry(path)? != Entry::Dir {
                return Err(io::Error::other("not a directory"));
            }
            if !s.dirs[path].cached.is_empty() {
                return Err(io::ErrorKind::DirectoryNotEmpty.into());
            }
            // Its entry goes from its parent (durable once the parent is
            // synced); what it durably held stays for a crash to bring back.
            let (parent, name) = s.split(path)?;
            let parent = parent.to_path_buf();
            s.dirs.get_mut(&parent).unwrap().cached.remove(&name);
            Ok(())
        })
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.op(|s| {
            if !s.reachable(path) {
                return Err(io::ErrorKind::NotFound.into());
            }
            let dir = s.dirs.get_mut(path).unwrap();
            dir.durable = dir.cached.clone();
            s.forget_unlinked();
            Ok(())
        })
    }
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        self.op(|s| {
            if !s.reachable(path) {
                return Err(io::ErrorKind::NotFound.into());
            }
            Ok(s.dirs[path].cached.keys().cloned().collect())
        })
    }
    fn stat(&self, path: &Path) -> io::Result<(u64, SystemTime)> {
        self.op(|s| match s.entry(path)? {
            Entry::File(ino) => Ok((s.inodes[&ino].cached.len() as u64, SystemTime::UNIX_EPOCH)),
            Entry::Dir => Ok((0, SystemTime::UNIX_EPOCH)),
        })
    }
    fn lock(&self, _path: &Path) -> io::Result<Box<dyn Send>> {
        self.op(|_| Ok(Box::new(()) as Box<dyn Send>))
    }
}

/// One step of the workload, on content number `n` of a small pool.
#[derive(Clone, Copy, Debug)]
enum Step {
    Put(u8),
    Release(u8),
    Remove(u8),
    Gc,
    /// The app `app-a` puts content `n` (its own references, its own index).
    AppPut(u8),
    /// The app `app-a` releases one of its references to content `n`.
    AppRelease(u8),
    /// The app names content `n` `slot-k` (moving the name if it exists).
    AppName(u8, u8),
    /// The app deletes its name `slot-k`.
    AppUnname(u8),
}

/// The app's name number `k`.
fn slot(k: u8) -> String {
    format!("slot-{k}")
}

/// The app of the workload's `AppPut` and `AppRelease` steps.
const APP: &str = "app-a";

/// Content number `n`: sizes around a chunk, and one large enough (256 KiB)
/// that the store stages it in the backend instead of passing it through the core.
fn content(n: u8) -> &'static [u8] {
    &pool()[usize::from(n)].0
}

fn hash(n: u8) -> &'static artifacts::Hash {
    &pool()[usize::from(n)].1
}

/// Every content number's bytes and hash, made once.
fn pool() -> &'static [(Vec<u8>, artifacts::Hash); 7] {
    static POOL: std::sync::OnceLock<[(Vec<u8>, artifacts::Hash); 7]> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        std::array::from_fn(|n| {
            let mut c = pattern([1, 1023, 1024, 1025, 2049, 256 << 10][n % 6]);
            c.push(n as u8);
            let h = artifacts::Hash::of(&c);
            (c, h)
        })
    })
}

/// What the app's names point at after the acknowledged steps (slot to
/// content number).
fn model_names(steps: &[Step]) -> BTreeMap<u8, u8> {
    let mut names = BTreeMap::new();
    for step in steps {
        match *step {
            Step::AppName(k, n) => drop(names.insert(k, n)),
            Step::AppUnname(k) => drop(names.remove(&k)),
            // The host's remove deletes the artifact and the names on it.
            Step::Remove(n) => names.retain(|_, m| *m != n),
            _ => {}
        }
    }
    names
}

/// Reference counts after the acknowledged steps: the host's and the app's
/// own (its puts; its names hold theirs apart, see [`model_names`]).
fn model(steps: &[Step]) -> [BTreeMap<u8, u64>; 2] {
    let mut m = [BTreeMap::new(), BTreeMap::new()];
    let release = |m: &mut BTreeMap<u8, u64>, n: u8| {
        if let Some(c) = m.get_mut(&n) {
            *c -= 1;
            if *c == 0 {
                m.remove(&n);
            }
        }
    };
    for step in steps {
        match *step {
            Step::Put(n) => *m[0].entry(n).or_insert(0) += 1,
            Step::AppPut(n) => *m[1].entry(n).or_insert(0) += 1,
            Step::Release(n) => release(&mut m[0], n),
            Step::AppRelease(n) => release(&mut m[1], n),
            Step::Remove(n) => {
                // The host's remove deletes the artifact whatever its owners.
                m[0].remove(&n);
                m[1].remove(&n);
            }
            Step::Gc | Step::AppName(..) | Step::AppUnname(_) => {}
        }
    }
    m
}

fn workload(len: usize, seed: u64) -> Vec<Step> {
    let mut rng = seed | 1;
    // Who holds what: [host, app]; and the app's names.
    let mut held: [BTreeMap<u8, u64>; 2] = [BTreeMap::new(), BTreeMap::new()];
    let mut names: BTreeMap<u8, u8> = BTreeMap::new();
    (0..len)
        .map(|_| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let n = (rng % 7) as u8;
            // A third of the puts and releases are the app's.
            let who = usize::from((rng >> 32).is_multiple_of(3));
            let (put, release) = if who == 0 {
                (Step::Put(n), Step::Release(n))
            } else {
                (Step::AppPut(n), Step::AppRelease(n))
            };
            let k = ((rng >> 40) % 3) as u8;
            match rng % 13 {
                10 if held[1].contains_key(&n) || names.values().any(|m| *m == n) => {
                    names.insert(k, n);
                    Step::AppName(k, n)
                }
                11 if names.contains_key(&k) => {
                    names.remove(&k);
                    Step::AppUnname(k)
                }
                5..=7 if held[who].contains_key(&n) => {
                    let c = held[who].get_mut(&n).unwrap();
                    *c -= 1;
                    if *c == 0 {
                        held[who].remove(&n);
                    }
                    release
                }
                8 if held.iter().any(|h| h.contains_key(&n)) => {
                    held[0].remove(&n);
                    held[1].remove(&n);
                    names.retain(|_, m| *m != n);
                    Step::Remove(n)
                }
                9 => Step::Gc,
                _ => {
                    *held[who].entry(n).or_insert(0) += 1;
                    put
                }
            }
        })
        .collect()
}

/// Checks the guarantees on a store reopened after a crash: every
/// acknowledged reference (the host's and the app's) is there and its
/// content verifies, through each owner's own view.
fn check(store: &ArtifactStore, acked: &[Step], in_flight: Option<Step>, what: &str) {
    let app = store.app(APP, artifacts::Quota::UNLIMITED).unwrap();
    for (who, expected) in model(acked).iter().enumerate() {
        for (n, count) in expected {
            // An operation in flight may have taken effect: a release takes
            // one away, a remove all.
            let floor = match in_flight {
                Some(Step::Release(m)) if m == *n && who == 0 => count - 1,
                Some(Step::AppRelease(m)) if m == *n && who == 1 => count - 1,
                Some(Step::Remove(m)) if m == *n => 0,
                _ => *count,
            };
            let (got, stat) = if who == 0 {
                (store.get(hash(*n)), store.stat(hash(*n)))
            } else {
                (app.get(hash(*n)), app.stat(hash(*n)))
            };
            match got {
                Ok(bytes) => {
                    assert_eq!(bytes, content(*n), "{what}: content {n}");
                    // Ranges of intact content read, right, whatever state
                    // its outboard is in (missing, torn, stale: rebuilt).
                    let len = bytes.len() as u64;
                    for range in [
                        0..1,
                        len / 2..len / 2 + 100.min(len / 2),
                        len.saturating_sub(4096)..len,
                    ] {
                        let part = if who == 0 {
                            store.get_range(hash(*n), range.clone())
                        } else {
                            app.get_range(hash(*n), range.clone())
                        };
                        match part {
                            Ok(part) => assert!(
                                part == bytes[range.start as usize..range.end as usize],
                                "{what}: content {n}, range {range:?}: wrong bytes"
                            ),
                            Err(e) => panic!("{what}: content {n}, range {range:?}: {e}"),
                        }
                    }
                }
                Err(Error::NotFound(_)) if floor == 0 => continue,
                Err(e) => panic!(
                    "{what}: acknowledged content {n} (owner {who}, count {count}) lost: {e}"
                ),
            }
            let actual = stat.unwrap().reference_count;
            assert!(
                actual >= floor,
                "{what}: content {n} has {actual} references of owner {who}, acknowledged {count}"
            );
        }
    }
    // Every acknowledged name points where it was set (unless the step in
    // flight moves it), and no name points at content that is gone.
    let removing = match in_flight {
        Some(Step::Remove(m)) => Some(*hash(m)),
        _ => None,
    };
    let expected = model_names(acked);
    for k in 0..3 {
        let got = app.names().get(&slot(k)).unwrap();
        let moving = matches!(in_flight, Some(Step::AppName(j, _) | Step::AppUnname(j)) if j == k);
        let want = expected.get(&k).map(|n| *hash(*n));
        if !moving && got != want && !(removing.is_some() && want == removing) {
            panic!("{what}: name {k} points at {got:?}, acknowledged {want:?}");
        }
        if let Some(h) = got
            && Some(h) != removing
            && let Err(e) = app.get(&h)
        {
            panic!("{what}: name {k} points at {h}, which is lost: {e}");
        }
    }
    for m in store.list() {
        let m = m.unwrap();
        if let Err(e) = store.verify(&m.hash) {
            panic!("{what}: visible artifact {} does not verify: {e}", m.hash);
        }
    }
}

/// After a complete gc, nothing is left under way and the owner index agrees
/// with the shared records: every entry is live and counted in the live
/// record of its origin, every record counts exactly the entries that hold
/// it and carries no marks, and every owner's usage is the sum of its live
/// entries (the layout of `guest/src/record.rs`, format 2).
fn index_agrees(b: &dyn artifacts::backend::Backend) -> Result<(), String> {
    let u64_at = |d: &[u8], at: usize| u64::from_le_bytes(d[at..at + 8].try_into().unwrap());
    let u32_at = |d: &[u8], at: usize| u32::from_le_bytes(d[at..at + 4].try_into().unwrap());
    let records = b
        .list_records(Space::Shared, None, u32::MAX)
        .map_err(|e| e.to_string())?;
    let mut held: BTreeMap<String, u64> = BTreeMap::new();
    for owner in b.list_owners(None, u32::MAX).map_err(|e| e.to_string())? {
        let (mut bytes, mut artifacts) = (0u64, 0u64);
        let mut usage = None;
        // Names per target, and the references entries hold for names.
        let (mut names, mut named): (BTreeMap<Vec<u8>, u64>, BTreeMap<Vec<u8>, u64>) =
            (BTreeMap::new(), BTreeMap::new());
        for (key, v) in b
            .list_records(Space::Owner(owner), None, u32::MAX)
            .map_err(|e| e.to_string())?
        {
            let d = &v.data;
            if d.starts_with(b"ARTU") {
                usage = Some((u64_at(d, 8), u64_at(d, 16), u32_at(d, 24)));
                continue;
            }
            if d.starts_with(b"ARTN\x03") {
                let mut at = 12;
                for _ in 0..u32_at(d, 8) {
                    at += 1 + usize::from(d[at]);
                    *names.entry(d[at..at + 32].to_vec()).or_default() += 1;
                    at += 32;
                }
                continue;
            }
            let version = d.get(4).copied();
            if !d.starts_with(b"ARTE") || !matches!(version, Some(2 | 3)) || d[5] != 1 {
                return Err(format!("{owner}/{key}: entry not live: {:?}", &d[..8]));
            }
            if version == Some(3) {
                named.insert(key.as_bytes().to_vec(), u64_at(d, 80));
            }
            let Some((_, rec)) = records.iter().find(|(k, _)| *k == key) else {
                return Err(format!("{owner}/{key}: live entry without a record"));
            };
            if rec.data[5] != 0 || rec.data[32..72] != d[40..80] {
                return Err(format!("{owner}/{key}: counted in another incarnation"));
            }
            *held.entry(key.to_string()).or_default() += 1;
            bytes += u64_at(d, 8);
            artifacts += 1;
        }
        // A name's reference is never missing (one a crash left without its
        // name is kept, not lost).
        for (target, n) in &names {
            let have = named.get(target).copied().unwrap_or(0);
            if have < *n {
                return Err(format!(
                    "{owner}: {n} names point at an entry holding {have} for names"
                ));
            }
        }
        // The host has no quota, so no usage record.
        let host = blake3::Hasher::new_derive_key("artifacts:store 2026 owner index v2")
            .update(b"@host")
            .finalize()
            .to_hex()
            .to_string();
        let sums = if owner.to_hex().as_str() == host {
            (0, 0, 0)
        } else {
            (bytes, artifacts, 0)
        };
        if usage.unwrap_or((0, 0, 0)) != sums {
            return Err(format!(
                "{owner}: usage {usage:?}, entries add up to {sums:?}"
            ));
        }
    }
    for (key, v) in &records {
        let d = &v.data;
        if u32_at(d, 72) != 0 {
            return Err(format!("{key}: marks left after gc"));
        }
        let holders = held.get(key.to_hex().as_str()).copied().unwrap_or(0);
        if d[5] == 0 && u64_at(d, 24) != holders {
            return Err(format!(
                "{key}: counts {} owners, {holders} hold it",
                u64_at(d, 24)
            ));
        }
    }
    Ok(())
}

/// The number of workload steps: `ARTIFACTS_POWERLOSS_STEPS`, else 300 (a
/// few thousand crash states; `.ci/run` runs 2000 steps, in release mode, for
/// more than 10,000).
fn steps() -> usize {
    std::env::var("ARTIFACTS_POWERLOSS_STEPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300)
}

/// Every state a power cut right after `snapshot` could leave, with how
/// many unsynced directory entries made it: each unsynced entry (a file
/// created, renamed over, removed) on disk or not, in every combination;
/// each file with unsynced data kept, lost, or torn at a sector boundary.
fn crash_states(snapshot: &State) -> Vec<(usize, State)> {
    let unsynced = snapshot.unsynced();
    assert!(
        unsynced.len() <= 10,
        "too many unsynced entries at once: {unsynced:?}"
    );
    let torn: Vec<(u64, Data)> = snapshot
        .inodes
        .iter()
        .filter(|(_, i)| i.cached != i.durable)
        .flat_map(|(ino, i)| {
            let half = (i.cached.len() / 2) / 512 * 512;
            [
                (*ino, i.cached.clone()),
                (*ino, Arc::from(&i.cached[..half])),
            ]
        })
        .collect();
    let data_variants: Vec<BTreeMap<u64, Data>> = std::iter::once(BTreeMap::new())
        .chain(torn.into_iter().map(|(i, d)| BTreeMap::from([(i, d)])))
        .collect();
    let mut out = Vec::new();
    for mask in 0u32..(1 << unsynced.len()) {
        let kept: BTreeSet<(PathBuf, String)> = unsynced
            .iter()
            .enumerate()
            .filter(|(i, _)| mask & (1 << i) != 0)
            .map(|(_, e)| e.clone())
            .collect();
        for data in &data_variants {
            out.push((kept.len(), snapshot.crash(&kept, data)));
        }
    }
    out
}

fn state_key(state: &State) -> u64 {
    use std::hash::{Hash, Hasher};
    /// BLAKE3 behind `Hasher`: the states hold whole files, and BLAKE3's
    /// SIMD code is fast even in a debug build, where SipHash is not.
    struct B3(blake3::Hasher);
    impl Hasher for B3 {
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
        fn finish(&self) -> u64 {
            let digest = self.0.finalize();
            u64::from_le_bytes(digest.as_bytes()[..8].try_into().unwrap())
        }
    }
    let mut h = B3(blake3::Hasher::new());
    state.hash(&mut h);
    h.finish()
}

/// The store's health after a crash: the probe writes, reads and deletes,
/// and gc's note, if any, is whole (never torn), so nothing is a problem.
/// (Checked on every 4th crash state: a probe is a few dozen simulated
/// filesystem operations.)
fn healthy(store: &ArtifactStore, what: &str) {
    let report = store.health().unwrap();
    assert!(
        report.healthy && report.problems.is_empty(),
        "{what}: {report:?}"
    );
}

#[test]
fn every_crash_state_of_every_operation_keeps_the_guarantees() {
    let steps = workload(steps(), 0x5eed);
    let fs = SimFs::new(State::new());
    let store = ArtifactStore::builder()
        .open(FileBackend::open_with(ROOT, fs.clone()).unwrap())
        .unwrap();
    // Everything before recording (the store's creation) is made durable.
    {
        let mut s = fs.state.lock().unwrap();
        let durable = s.crash(&s.unsynced().into_iter().collect(), &BTreeMap::new());
        *s = durable;
    }
    fs.record();
    let app = store.app(APP, artifacts::Quota::UNLIMITED).unwrap();
    // acks[i] = how many filesystem operations had run when step i returned.
    let mut acks = Vec::new();
    for step in &steps {
        match *step {
            Step::Put(n) => drop(store.put(content(n), ArtifactType::Generic).unwrap()),
            Step::Release(n) => drop(store.release(hash(n)).unwrap()),
            Step::Remove(n) => store.remove(hash(n)).unwrap(),
            Step::Gc => drop(store.gc(Duration::ZERO).unwrap()),
            Step::AppPut(n) => drop(app.put(content(n), ArtifactType::Generic).unwrap()),
            Step::AppRelease(n) => drop(app.release(hash(n)).unwrap()),
            Step::AppName(k, n) => drop(app.names().set(&slot(k), hash(n)).unwrap()),
            Step::AppUnname(k) => drop(app.names().delete(&slot(k)).unwrap()),
        }
        acks.push(fs.taken());
    }
    let snapshots = fs.snapshots.lock().unwrap().take().unwrap();
    // The large content's outboard is new durable state the crash states cover.
    let shard = format!("{ROOT}/outboards/{}", &hash(5).to_string()[..2]);
    assert!(
        snapshots.iter().any(|s| s
            .dirs
            .get(Path::new(&shard))
            .is_some_and(|d| d.durable.contains_key(&hash(5).to_string()))),
        "the workload wrote no outboard"
    );
    // So is gc's note of what it did (health's last gc).
    assert!(
        snapshots.iter().any(|s| s
            .dirs
            .get(Path::new(&format!("{ROOT}/notes")))
            .is_some_and(|d| d.durable.contains_key("last-gc"))),
        "the workload wrote no gc note"
    );
    drop(app);
    drop(store);

    let mut seen: HashSet<u64> = HashSet::new();
    let (mut states, mut recoveries, mut recovery_crashes) = (0u64, 0u64, 0u64);
    for (at, snapshot) in snapshots.iter().enumerate() {
        let done = acks.iter().take_while(|ops| **ops <= at + 1).count();
        let acked = &steps[..done];
        let in_flight = steps.get(done).copied();
        for (kept, crashed) in crash_states(snapshot) {
            {
                if !seen.insert(state_key(&crashed)) {
                    continue;
                }
                states += 1;
                let what = format!(
                    "crash after fs op {} (step {done}), {kept} unsynced entries kept",
                    at + 1,
                );
                let sim = SimFs::new(crashed);
                let reopened = ArtifactStore::builder()
                    .open(
                        FileBackend::open_with(ROOT, sim.clone())
                            .unwrap_or_else(|e| panic!("{what}: reopen: {e}")),
                    )
                    .unwrap();
                check(&reopened, acked, in_flight, &what);
                if states % 4 == 0 {
                    healthy(&reopened, &what);
                }
                // Recovery (gc) leaves the guarantees intact; and a crash in
                // the middle of recovery (every 8th state, at every operation
                // of the gc, unsynced changes lost) does too.
                let crash_recovery = states % 8 == 0;
                if crash_recovery {
                    sim.record();
                }
                reopened.gc(Duration::ZERO).unwrap();
                check(&reopened, acked, in_flight, &format!("{what}, after gc"));
                index_agrees(&FileBackend::open_with(ROOT, sim.clone()).unwrap())
                    .unwrap_or_else(|e| panic!("{what}, after gc: {e}"));
                recoveries += 1;
                if crash_recovery {
                    let during = sim.snapshots.lock().unwrap().take().unwrap();
                    for (i, mid) in during.iter().enumerate() {
                        let again = mid.crash(&BTreeSet::new(), &BTreeMap::new());
                        if !seen.insert(state_key(&again)) {
                            continue;
                        }
                        states += 1;
                        let store = ArtifactStore::builder()
                            .open(FileBackend::open_with(ROOT, SimFs::new(again)).unwrap())
                            .unwrap();
                        check(
                            &store,
                            acked,
                            in_flight,
                            &format!("{what}, crash {i} into gc"),
                        );
                        if states % 4 == 0 {
                            healthy(&store, &format!("{what}, crash {i} into gc"));
                        }
                        recovery_crashes += 1;
                    }
                }
            }
        }
    }
    eprintln!(
        "{} steps, {} filesystem operations, {states} distinct crash states checked, \
         {recoveries} recoveries, {recovery_crashes} of them crash states inside a recovery",
        steps.len(),
        snapshots.len()
    );
    // The workload names and unnames (it must: the names' guarantees are
    // checked only where it does).
    let naming = steps
        .iter()
        .filter(|s| matches!(s, Step::AppName(..) | Step::AppUnname(_)))
        .count();
    eprintln!("{naming} of the steps set or delete names");
    assert!(naming * 40 >= steps.len(), "only {naming} naming steps");
    let floor = if steps.len() >= 3000 {
        10_000
    } else {
        steps.len() * 2
    };
    assert!(states as usize >= floor, "only {states} crash states");
}

#[test]
fn a_staged_blob_is_whole_or_absent_after_any_crash_and_there_once_stored() {
    use artifacts::Hash;
    use artifacts::backend::Backend;
    let fs = SimFs::new(State::new());
    let backend = FileBackend::open_with(ROOT, fs.clone()).unwrap();
    {
        let mut s = fs.state.lock().unwrap();
        let durable = s.crash(&s.unsynced().into_iter().collect(), &BTreeMap::new());
        *s = durable;
    }
    let data = pattern(3000);
    let key = Hash::of(&data);
    fs.record();
    let mut staging = backend.stage().unwrap();
    for piece in data.chunks(1024) {
        staging.append(piece).unwrap();
    }
    staging.store(&key).unwrap();
    let stored = fs.taken();
    // Stored again (the core repairs a lost blob this way), then discarded.
    staging.store(&key).unwrap();
    staging.discard().unwrap();
    let snapshots = fs.snapshots.lock().unwrap().take().unwrap();
    let mut states = 0;
    for (at, snapshot) in snapshots.iter().enumerate() {
        for (kept, crashed) in crash_states(snapshot) {
            states += 1;
            let what = format!("crash after fs op {}, {kept} unsynced entries kept", at + 1);
            let reopened = FileBackend::open_with(ROOT, SimFs::new(crashed)).unwrap();
            match reopened.read_blob(&key).unwrap() {
                Some(blob) => assert_eq!(blob, data, "{what}: a partial blob"),
                None => assert!(at + 1 < stored, "{what}: the stored blob is gone"),
            }
        }
    }
    assert!(states >= 20, "only {states} crash states");
}

#[test]
fn a_sha256_alias_is_there_once_acknowledged_never_wrong_and_gone_after_gc() {
    use artifacts::backend::Backend;
    use artifacts::sha256::Sha256Digest;
    let fs = SimFs::new(State::new());
    let store = ArtifactStore::builder()
        .open(FileBackend::open_with(ROOT, fs.clone()).unwrap())
        .unwrap();
    {
        let mut s = fs.state.lock().unwrap();
        let durable = s.crash(&s.unsynced().into_iter().collect(), &BTreeMap::new());
        *s = durable;
    }
    let data = pattern(3000);
    let digest = Sha256Digest::of(&data);
    fs.record();
    // Stored with its alias (as a pull does), removed, collected.
    let mut upload = store.upload_sha256(digest, ArtifactType::WasmModule);
    upload.write(&data).unwrap();
    let hash = upload.finish().unwrap();
    let acked = fs.taken();
    store.remove(&hash).unwrap();
    assert_eq!(store.resolve_sha256(&digest).unwrap(), None);
    assert_eq!(store.gc(Duration::ZERO).unwrap().aliases_removed, 1);
    let collected = fs.taken();
    drop(store);
    let snapshots = fs.snapshots.lock().unwrap().take().unwrap();
    let mut states = 0;
    for (at, snapshot) in snapshots.iter().enumerate() {
        for (kept, crashed) in crash_states(snapshot) {
            states += 1;
            let what = format!("crash after fs op {}, {kept} unsynced entries kept", at + 1);
            let sim = SimFs::new(crashed);
            let reopened = ArtifactStore::builder()
                .open(FileBackend::open_with(ROOT, sim.clone()).unwrap())
                .unwrap();
            match reopened.resolve_sha256(&digest).unwrap() {
                Some(h) => {
                    assert_eq!(h, hash, "{what}: the alias names other content");
                    assert_eq!(reopened.get(&h).unwrap(), data, "{what}");
                }
                // Between the put's acknowledgement and the remove, it resolves.
                None => assert!(at + 1 != acked, "{what}: the acknowledged alias is lost"),
            }
            let aliases = || {
                FileBackend::open_with(ROOT, sim.clone())
                    .unwrap()
                    .list_side(SideKind::Alias, None, 10)
                    .unwrap()
            };
            if at + 1 >= collected {
                assert!(aliases().is_empty(), "{what}: gc's deletion is lost");
            }
            // Recovery: once the artifact is gone, gc leaves no alias.
            reopened.gc(Duration::ZERO).unwrap();
            if !reopened.contains(&hash).unwrap() {
                assert!(
                    aliases().is_empty(),
                    "{what}: an alias outlived its artifact"
                );
            }
        }
    }
    eprintln!(
        "{} filesystem operations, {states} crash states",
        snapshots.len()
    );
    assert!(states >= 20, "only {states} crash states");
}

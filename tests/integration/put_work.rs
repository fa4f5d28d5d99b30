//! What a large put does, counted (issue 27, hole 6): an app must not learn
//! that content was stored and deleted in the last hour, and under private
//! dedup not even that someone holds it. So a 1 MiB put (it keeps an
//! outboard) of content released to nothing just before does the work of a
//! put of new content, in both dedups, and under private dedup so does a put
//! of content another owner holds: the same backend calls and, on the file
//! backend, the same syncs, renames and bytes written. And an artifact's
//! outboard goes with its blob, not an hour later by gc.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};

use artifacts::backend::fs::{Fs, StdFs};
use artifacts::backend::{Backend, Space};
use artifacts::backend::{Side, SideKind};
use artifacts::limits::DEFAULT_GC_GRACE;
use artifacts::{ArtifactStore, ArtifactType, FileBackend, Hash, Quota, StoreBuilder};

use crate::fixture::{Fixture, each_backend};
use crate::watched::{Watch, Watched};

const G: ArtifactType = ArtifactType::Generic;
const MIB: usize = 1 << 20;

/// Counts of what was done, by name: backend calls (`call:write_blob`, …)
/// and, on the file backend, filesystem operations (`fs:rename`, …), syncs
/// (`syncs`: files written synced, files and directories synced) and bytes
/// written (`bytes written`).
#[derive(Default, Clone)]
struct Work(Arc<Mutex<BTreeMap<String, u64>>>);

impl Work {
    fn add(&self, what: &str, n: u64) {
        *self.0.lock().unwrap().entry(what.to_owned()).or_default() += n;
    }

    /// What `op` did. Clock reads (`now`) are left out: not work (a new
    /// record reads the clock for its time, a join does not).
    fn of(&self, op: impl FnOnce()) -> BTreeMap<String, u64> {
        self.0.lock().unwrap().clear();
        op();
        let mut done = std::mem::take(&mut *self.0.lock().unwrap());
        done.remove("call:now");
        done
    }
}

impl Watch for Work {
    fn call(&self, name: &'static str) {
        self.add(&format!("call:{name}"), 1);
    }
}

/// The real filesystem, every operation counted in a [`Work`].
#[derive(Clone)]
struct CountedFs(Work);

impl CountedFs {
    fn op(&self, name: &str) {
        self.0.add(&format!("fs:{name}"), 1);
    }
    fn wrote(&self, data: &[u8], synced: bool) {
        self.0.add("bytes written", data.len() as u64);
        if synced {
            self.0.add("syncs", 1);
        }
    }
}

impl Fs for CountedFs {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.op("read");
        StdFs.read(path)
    }
    fn read_range(&self, path: &Path, offset: u64, len: u64) -> io::Result<Vec<u8>> {
        self.op("read_range");
        StdFs.read_range(path, offset, len)
    }
    fn read_ranges(&self, path: &Path, ranges: &[(u64, u64)]) -> io::Result<Vec<Vec<u8>>> {
        self.op("read_ranges");
        StdFs.read_ranges(path, ranges)
    }
    fn write_new_synced(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        self.op("write_new_synced");
        self.wrote(data, true);
        StdFs.write_new_synced(path, data)
    }
    fn create_new(&self, path: &Path) -> io::Result<()> {
        self.op("create_new");
        StdFs.create_new(path)
    }
    fn append(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        self.op("append");
        self.wrote(data, false);
        StdFs.append(path, data)
    }
    fn sync_file(&self, path: &Path) -> io::Result<()> {
        self.op("sync_file");
        self.0.add("syncs", 1);
        StdFs.sync_file(path)
    }
    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.op("hard_link");
        StdFs.hard_link(from, to)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.op("rename");
        StdFs.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.op("remove_file");
        StdFs.remove_file(path)
    }
    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        self.op("remove_dir");
        StdFs.remove_dir(path)
    }
    fn create_dir(&self, path: &Path) -> io::Result<bool> {
        self.op("create_dir");
        StdFs.create_dir(path)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.op("sync_dir");
        self.0.add("syncs", 1);
        StdFs.sync_dir(path)
    }
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        self.op("list_dir");
        StdFs.list_dir(path)
    }
    fn stat(&self, path: &Path) -> io::Result<(u64, std::time::SystemTime)> {
        self.op("stat");
        StdFs.stat(path)
    }
    fn lock(&self, path: &Path) -> io::Result<Box<dyn Send>> {
        self.op("lock");
        StdFs.lock(path)
    }
}

/// A store over the fixture's storage whose backend calls (and, for files,
/// filesystem operations) are counted in the returned [`Work`].
fn counted(fx: &Fixture, private: bool) -> (ArtifactStore, Work) {
    let work = Work::default();
    let inner: Box<dyn Backend> = match fx {
        Fixture::File(dir) => {
            Box::new(FileBackend::open_with(dir.path(), CountedFs(work.clone())).unwrap())
        }
        _ => fx.backend(),
    };
    let store = StoreBuilder::default()
        .private_dedup(private)
        .open(Watched::new(inner, work.clone()))
        .unwrap();
    (store, work)
}

/// 1 MiB that no other call of this test stores.
fn content(tag: u8) -> Vec<u8> {
    let mut c = crate::fixture::pattern(MIB);
    c[..4].copy_from_slice(&[0xc0, 0xde, tag, 0x27]);
    c
}

/// On the file backend, makes the directories `hash`'s blob, record and
/// outboard go in, as any store that has held a few thousand artifacts has
/// them, so that a put of new content is not told apart by the directories
/// it creates (a leak about one hash prefix in 256, not about content).
fn directories_exist_for(fx: &Fixture, hash: &Hash) {
    if let Fixture::File(dir) = fx {
        let b = FileBackend::open(dir.path()).unwrap();
        for path in [
            b.blob_path(hash),
            b.outboard_path(hash),
            b.record_path(Space::Shared, hash),
        ] {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        }
    }
}

/// No outboard of `hash` is left, by the backend's account and, for files,
/// on disk.
fn no_outboard(fx: &Fixture, hash: &Hash) -> bool {
    let on_disk = match fx {
        Fixture::File(dir) => FileBackend::open(dir.path())
            .unwrap()
            .outboard_path(hash)
            .exists(),
        _ => false,
    };
    let key = Side::Outboard(*hash);
    let listed = fx
        .backend()
        .list_side(SideKind::Outboard, None, 1000)
        .unwrap();
    fx.backend().side_size(&key).unwrap().is_none()
        && !on_disk
        && listed.iter().all(|o| o.key != key)
}

/// The work of an app's 1 MiB put of (a) new content, (b) content another
/// app put and released to nothing just before, (c) content another app
/// holds; asserts (a) == (b), and under private dedup (a) == (c).
fn put_work(fx: &Fixture, private: bool) {
    let (store, work) = counted(fx, private);
    let me = store.app("measured", Quota::UNLIMITED).unwrap();
    let other = store.app("other", Quota::UNLIMITED).unwrap();
    // Both owners hold something throughout: their index spaces exist.
    me.put(b"mine", G).unwrap();
    other.put(b"theirs", G).unwrap();
    let mode = if private { 0x80 } else { 0 };
    let (new, deleted, held) = (content(mode | 1), content(mode | 2), content(mode | 3));
    for c in [&new, &deleted, &held] {
        directories_exist_for(fx, &Hash::of(c));
    }

    let a = work.of(|| {
        me.put(&new, G).unwrap();
    });

    let h = other.put(&deleted, G).unwrap();
    assert!(
        fx.backend()
            .side_size(&Side::Outboard(h))
            .unwrap()
            .is_some()
    );
    assert_eq!(other.release(&h).unwrap(), 0);
    // Under shared dedup the last release deleted the artifact.
    let outboard_outlived_blob = !private && !no_outboard(fx, &h);
    if !private {
        assert_eq!(fx.backend().blob_size(&h).unwrap(), None);
    }
    let b = work.of(|| {
        me.put(&deleted, G).unwrap();
    });

    other.put(&held, G).unwrap();
    let c = work.of(|| {
        me.put(&held, G).unwrap();
    });

    eprintln!("private {private}:\n new     {a:?}\n deleted {b:?}\n held    {c:?}");
    assert!(
        !outboard_outlived_blob,
        "the last release deleted the blob and left its outboard"
    );
    assert_eq!(
        a, b,
        "a put of content deleted just before did other work than one of new content"
    );
    if private {
        assert_eq!(
            a, c,
            "under private dedup a put of held content did other work than one of new content"
        );
        // The last release leaves the deletion to gc, which takes the
        // outboard with the blob, however young.
        assert_eq!(me.release(&h).unwrap(), 0);
        store.gc(DEFAULT_GC_GRACE).unwrap();
        assert_eq!(fx.backend().blob_size(&h).unwrap(), None);
        assert!(no_outboard(fx, &h), "an outboard outlived its blob");
    }
    // Every one is intact and proves ranges.
    for x in [&new, &deleted, &held] {
        let hash = Hash::of(x);
        if hash != h || !private {
            assert_eq!(store.get_range(&hash, 5..9).unwrap(), &x[5..9]);
        }
    }
}

each_backend! {
    fn shared_dedup_a_large_put_of_deleted_content_works_like_new_content(fx) {
        put_work(fx, false);
    }

    fn private_dedup_a_large_put_works_alike_for_new_deleted_and_held_content(fx) {
        put_work(fx, true);
    }
}

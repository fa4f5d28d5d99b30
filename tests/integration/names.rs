//! Names (the WIT `names` interface): set, get, move, list and delete, the
//! references they hold, privacy between owners, and the format marker, on
//! each backend.

use artifacts::{ArtifactStore, ArtifactType, Error, FileBackend, Hash, Quota, QuotaKind, Tag};

use crate::fixture::{each_backend, pattern};

fn put(store: &ArtifactStore, content: &[u8]) -> Hash {
    store.put(content, ArtifactType::WasmModule).unwrap()
}

each_backend! {
    fn names_point_move_list_and_go(fx) {
        let store = fx.open();
        let names = store.names();
        let (v1, v2) = (put(&store, b"plugin v1"), put(&store, b"plugin v2"));
        assert_eq!(names.get("plugin@latest").unwrap(), None);
        assert_eq!(names.set("plugin@latest", &v1).unwrap(), None);
        assert_eq!(names.set("plugin@1", &v1).unwrap(), None);
        assert_eq!(names.set("plugin@2", &v2).unwrap(), None);
        assert_eq!(names.set("other", &v2).unwrap(), None);
        assert_eq!(names.get("plugin@latest").unwrap(), Some(v1));
        // Moved: the old target comes back.
        assert_eq!(names.set("plugin@latest", &v2).unwrap(), Some(v1));
        assert_eq!(names.get("plugin@latest").unwrap(), Some(v2));
        let tag = |name: &str, hash: Hash| Tag { name: name.into(), hash };
        assert_eq!(
            names.list("plugin@").unwrap(),
            vec![tag("plugin@1", v1), tag("plugin@2", v2), tag("plugin@latest", v2)]
        );
        assert_eq!(names.list("").unwrap().len(), 4);
        assert_eq!(names.list("zz").unwrap(), vec![]);
        assert_eq!(
            names.list_page("plugin@", Some("plugin@1"), 1).unwrap(),
            vec![tag("plugin@2", v2)],
            "after and limit"
        );
        assert_eq!(names.delete("plugin@1").unwrap(), Some(v1));
        assert_eq!(names.delete("plugin@1").unwrap(), None);
        assert_eq!(names.get("plugin@1").unwrap(), None);
        // UTF-8 names sort by bytes.
        names.set("é", &v1).unwrap();
        assert_eq!(names.list("").unwrap().last().unwrap().name, "é");
    }

    fn replace_moves_a_name_only_from_where_the_caller_expects(fx) {
        let store = fx.open();
        let names = store.names();
        let (v1, v2, v3) = (put(&store, b"1"), put(&store, b"2"), put(&store, b"3"));
        names.replace("latest", None, &v1).unwrap();
        assert_eq!(
            names.replace("latest", None, &v2),
            Err(Error::NameConflict { current: Some(v1) }),
            "None expects the name to be new"
        );
        assert_eq!(
            names.replace("latest", Some(&v2), &v3),
            Err(Error::NameConflict { current: Some(v1) })
        );
        assert_eq!(
            names.replace("missing", Some(&v1), &v3),
            Err(Error::NameConflict { current: None })
        );
        assert_eq!(names.get("latest").unwrap(), Some(v1), "nothing changed");
        assert_eq!(names.get("missing").unwrap(), None);
        names.replace("latest", Some(&v1), &v2).unwrap();
        assert_eq!(names.get("latest").unwrap(), Some(v2));
        // A failed replace gave back the reference it took on its target.
        assert_eq!(store.stat(&v3).unwrap().reference_count, 1);
        assert_eq!(store.release(&v3).unwrap(), 0);
        assert!(!store.contains(&v3).unwrap(), "v3 deleted: no name held it");
    }

    fn a_named_artifact_outlives_release_and_gc_and_goes_with_its_last_name(fx) {
        let store = fx.open();
        let app = store.app("app-1", Quota::default()).unwrap();
        let content = pattern(300 << 10);
        let h = app.put(&content, ArtifactType::WasmModule).unwrap();
        app.names().set("keep", &h).unwrap();
        app.names().set("also", &h).unwrap();
        assert_eq!(app.stat(&h).unwrap().reference_count, 3, "a put and two names");
        assert_eq!(app.release(&h).unwrap(), 0, "no put references left");
        assert_eq!(app.release(&h).unwrap(), 0, "only names hold it: nothing to drop");
        assert_eq!(app.stat(&h).unwrap().reference_count, 2, "the names' two");
        app.remove(&h).unwrap();
        store.gc(std::time::Duration::ZERO).unwrap();
        assert_eq!(app.get(&h).unwrap(), content, "still held by its names");
        assert_eq!(app.usage().unwrap().artifacts, 1, "and still charged");
        assert_eq!(app.names().delete("keep").unwrap(), Some(h));
        assert_eq!(app.get(&h).unwrap(), content);
        assert_eq!(app.names().delete("also").unwrap(), Some(h));
        assert_eq!(app.get(&h), Err(Error::NotFound(h)), "the last name took it");
        assert!(!store.contains(&h).unwrap(), "deleted: no one held it");
        assert_eq!(app.usage().unwrap().artifacts, 0, "and refunded");
    }

    fn names_are_private_and_name_only_what_their_owner_holds(fx) {
        let store = fx.open();
        let (a, b) = (
            store.app("app-a", Quota::default()).unwrap(),
            store.app("app-b", Quota::default()).unwrap(),
        );
        let mine = a.put(b"a's plugin", ArtifactType::WasmModule).unwrap();
        a.names().set("plugin", &mine).unwrap();
        assert_eq!(b.names().get("plugin").unwrap(), None);
        assert_eq!(b.names().list("").unwrap(), vec![]);
        assert_eq!(store.names().get("plugin").unwrap(), None, "the host's are its own");
        assert_eq!(
            b.names().set("stolen", &mine),
            Err(Error::NotFound(mine)),
            "b cannot name what it does not hold"
        );
        assert_eq!(store.names().set("x", &mine), Err(Error::NotFound(mine)));
        // The same name in two owners points at two things.
        let theirs = b.put(b"b's plugin", ArtifactType::WasmModule).unwrap();
        b.names().set("plugin", &theirs).unwrap();
        assert_eq!(a.names().get("plugin").unwrap(), Some(mine));
        assert_eq!(b.names().get("plugin").unwrap(), Some(theirs));
        // Names are not artifacts: the app's count and list do not see them.
        assert_eq!(a.count().unwrap(), 1);
        assert_eq!(a.list_page(None, 10).unwrap().len(), 1);
    }

    fn bad_names_are_refused_before_anything_changes(fx) {
        let store = fx.open();
        let names = store.names();
        let h = put(&store, b"x");
        for bad in ["", "a\nb", "tab\there", "\u{1b}[31m", &"n".repeat(256)] {
            assert!(
                matches!(names.set(bad, &h), Err(Error::InvalidName(_))),
                "{bad:?} accepted"
            );
            assert!(matches!(names.get(bad), Err(Error::InvalidName(_))));
        }
        names.set(&"n".repeat(255), &h).unwrap();
        assert_eq!(store.stat(&h).unwrap().reference_count, 2, "one put, one name");
        let unknown = Hash::of(b"never stored");
        assert_eq!(names.set("u", &unknown), Err(Error::NotFound(unknown)));
        assert_eq!(names.get("u").unwrap(), None);
    }

    fn the_hosts_remove_deletes_a_named_artifact_and_its_names(fx) {
        let store = fx.open();
        let app = store.app("app-1", Quota::default()).unwrap();
        let h = app.put(b"named", ArtifactType::Generic).unwrap();
        app.names().set("n", &h).unwrap();
        store.names().set("n", &put(&store, b"named")).unwrap();
        store.remove(&h).unwrap();
        assert!(!store.contains(&h).unwrap());
        assert_eq!(app.names().get("n").unwrap(), None, "the app's name went with it");
        assert_eq!(store.names().get("n").unwrap(), None, "and the host's");
        // Stored again, it is not named by the old names.
        let again = app.put(b"named", ArtifactType::Generic).unwrap();
        assert_eq!(app.release(&again).unwrap(), 0);
        assert!(!store.contains(&again).unwrap());
    }
}

#[test]
fn an_owner_keeps_at_most_name_limit_names() {
    let store = ArtifactStore::open_memory().unwrap();
    let names = store.names();
    assert_eq!(names.limit(), 1000);
    let h = put(&store, b"x");
    for i in 0..1000 {
        names.set(&format!("name-{i:04}"), &h).unwrap();
    }
    assert_eq!(
        names.set("one-more", &h),
        Err(Error::QuotaExceeded {
            kind: QuotaKind::Names,
            limit: 1000,
            requested: 1001
        })
    );
    names.set("name-0000", &h).unwrap();
    assert_eq!(names.list("").unwrap().len(), 1000, "listed in pages");
    assert_eq!(store.stat(&h).unwrap().reference_count, 1001);
}

#[test]
fn a_format_2_store_is_used_as_it_is_and_marked_format_3_by_its_first_name() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("FORMAT");
    let h = {
        let store = ArtifactStore::open_dir(dir.path()).unwrap();
        put(&store, b"before names")
    };
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap(),
        "artifacts-store 3\n"
    );
    // As a store written before names would be.
    std::fs::write(&marker, "artifacts-store 2\n").unwrap();
    let store = ArtifactStore::open_dir(dir.path()).unwrap();
    assert_eq!(store.get(&h).unwrap(), b"before names");
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap(),
        "artifacts-store 2\n"
    );
    store.names().set("n", &h).unwrap();
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap(),
        artifacts::backend::file::FORMAT_MARKER
    );
    drop(store);
    FileBackend::open(dir.path()).unwrap();

    // A newer version that marks the store while this one has it open (as
    // format 2) is not written over by this one's first name: the name is
    // refused instead, and the marker stays the newer one.
    std::fs::write(&marker, "artifacts-store 2\n").unwrap();
    let store = ArtifactStore::open_dir(dir.path()).unwrap();
    std::fs::write(&marker, "artifacts-store 4\n").unwrap();
    let refused = store.names().set("m", &h).unwrap_err();
    assert!(
        refused.to_string().contains("not a store of this version"),
        "{refused}"
    );
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap(),
        "artifacts-store 4\n"
    );
    assert_eq!(store.names().get("m").ok().flatten(), None);
}

/// What names cost an app in fuel: by the bytes of the names record each
/// call reads and writes, at a put's and a get's rate.
#[cfg(feature = "apps")]
pub(crate) mod fuel {
    use std::sync::atomic::{AtomicU64, Ordering};

    use artifacts::apps::{AppConfig, AppHost};
    use artifacts::backend::{Backend, Space, Swap, SwapOutcome};
    use artifacts::{ArtifactStore, ArtifactType, Error, Quota};

    use crate::fixture::each_backend;
    use crate::watched::{Watch, Watched};

    const SPENDER: &[u8] = include_bytes!("../apps/spender.wasm");

    /// Bytes handed to the backend to keep, and bytes read from it.
    #[derive(Default)]
    pub(crate) struct Bytes {
        written: AtomicU64,
        read: AtomicU64,
    }

    impl Watch for Bytes {
        fn written(&self, _name: &'static str, bytes: u64) {
            self.written.fetch_add(bytes, Ordering::SeqCst);
        }
        fn records_read(&self, _space: Space, _records: u64, bytes: u64) {
            self.read.fetch_add(bytes, Ordering::SeqCst);
        }
        fn blob_read(&self, _offset: Option<u64>, bytes: u64) {
            self.read.fetch_add(bytes, Ordering::SeqCst);
        }
        fn outboard_read(&self, _ranges: &[(u64, u64)], bytes: u64) {
            self.read.fetch_add(bytes, Ordering::SeqCst);
        }
    }

    impl Bytes {
        /// (written, read) since the last call, taken.
        pub(crate) fn take(&self) -> (u64, u64) {
            (
                self.written.swap(0, Ordering::SeqCst),
                self.read.swap(0, Ordering::SeqCst),
            )
        }
    }

    /// Rewrites the one names record in `backend` (holding one name) with
    /// 1000 names of 255 bytes (`0…0` to `0…0999`), all pointing where that
    /// one does: the record format of `guest/src/record/names.rs`.
    pub(crate) fn fill_names(backend: &dyn Backend) {
        let owners = backend.list_owners(None, 100).unwrap();
        let (space, key, record) = owners
            .iter()
            .flat_map(|o| {
                let space = Space::Owner(*o);
                let records = backend.list_records(space, None, 1000).unwrap();
                records.into_iter().map(move |(k, r)| (space, k, r))
            })
            .find(|(_, _, r)| r.data.starts_with(b"ARTN"))
            .unwrap();
        let (header, hash) = (&record.data[..8], &record.data[record.data.len() - 32..]);
        let mut full = header.to_vec();
        full.extend_from_slice(&1000u32.to_le_bytes());
        for i in 0..1000u32 {
            full.push(255);
            full.extend_from_slice(format!("{i:0>255}").as_bytes());
            full.extend_from_slice(hash);
        }
        let swap = Swap::new(Some(record.version), Some(&full));
        assert!(matches!(
            backend.swap_record(space, &key, swap).unwrap(),
            SwapOutcome::Written(_)
        ));
    }

    /// Bytes written and read per unit of fuel.
    #[derive(Debug, Clone, Copy)]
    struct PerFuel {
        written: f64,
        read: f64,
    }

    each_backend! {
        fn names_cost_fuel_by_the_bytes_of_the_record_they_touch(fx) {
            let watched = Watched::new(fx.backend(), Bytes::default());
            let bytes = watched.watch.clone();
            let store = ArtifactStore::builder().open(watched.clone()).unwrap();

            // The spender's names record at its largest: 1000 names of 255
            // bytes, each 33 bytes more in the record. One is set through
            // the store; the record is then written with all 1000 behind its
            // back (a thousand sets would rewrite 144 MB; the other 999 hold
            // no references, which no call here touches).
            let view = store.app("spender", Quota::UNLIMITED).unwrap();
            let named = view.put(b"named", ArtifactType::Generic).unwrap();
            let name = |i: u32| format!("{i:0>255}");
            let longest = name(0);
            view.names().set(&longest, &named).unwrap();
            fill_names(&watched);
            bytes.take();
            assert_eq!(view.names().get(&name(999)).unwrap(), Some(named));
            let record = bytes.take().1;
            assert!(record >= 1000 * (33 + 255), "the names record: {record} bytes");
            assert_eq!(view.names().list("").unwrap().len(), 1000);

            let host = AppHost::new(store).unwrap();
            let spender = host.load_file(SPENDER).unwrap();
            // Runs the spender with `args` (to its end or out of `fuel`):
            // what it printed, and the bytes it made the backend write and
            // read per unit of the fuel it used.
            let run = |args: &[&str], fuel: u64| -> (String, PerFuel) {
                let mut c = AppConfig::new("spender");
                c.args = args.iter().map(|a| a.to_string()).collect();
                c.quota = Quota::UNLIMITED;
                c.limits.fuel = fuel;
                c.limits.wall_time = std::time::Duration::from_secs(30);
                bytes.take();
                let start = std::time::Instant::now();
                let (stdout, used) = match host.run(&spender, &c) {
                    Ok(out) => {
                        assert_eq!(out.exit_code, 0, "{args:?}");
                        (String::from_utf8(out.stdout).unwrap(), out.fuel_used)
                    }
                    Err(Error::OutOfFuel { .. }) => (String::new(), fuel),
                    Err(e) => panic!("{args:?}: {e}"),
                };
                let (written, read) = bytes.take();
                let per = PerFuel {
                    written: written as f64 / used as f64,
                    read: read as f64 / used as f64,
                };
                let secs = start.elapsed().as_secs_f64();
                println!(
                    "{}: {written} bytes written, {read} read, {used} fuel, {secs:.3} s: {per:?}",
                    args[0]
                );
                (stdout, per)
            };

            let fuel = 20_000_000;
            let (stored, put) = run(&["put", "1048576"], fuel);
            let hash = stored.trim().strip_prefix("stored ").unwrap().to_string();
            let (_, get) = run(&["get", &hash], fuel);
            // The loops run until the fuel is gone: at least a few calls,
            // each reading (tag-set: and writing) the whole record; the
            // bytes a unit of fuel buys are within 2x of a put's or get's.
            let (_, set) = run(&["tag-set", &longest, &named.to_string()], fuel);
            let (_, got) = run(&["tag-get", &longest], fuel);
            let (_, listed) = run(&["tag-list", "", "1"], fuel);
            let (_, listed_all) = run(&["tag-list", "", "1000"], fuel);
            let calls = |per_fuel: f64| per_fuel * fuel as f64 / record as f64;
            assert!(calls(set.written) >= 3.0, "{set:?}");
            assert!(
                set.written <= 2.0 * put.written,
                "tag-set writes {set:?}, a put {put:?}"
            );
            for (what, reads) in [
                ("tag-set", set),
                ("tag-get", got),
                ("tag-list", listed),
                ("tag-list of all", listed_all),
            ] {
                assert!(calls(reads.read) >= 3.0, "{what}: {reads:?}");
                assert!(
                    reads.read <= 2.0 * get.read,
                    "{what} reads {reads:?}, a get {get:?}"
                );
            }
        }
    }
}

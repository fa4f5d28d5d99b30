//! `wasi:blobstore` for apps: the blobber (written only against the
//! upstream WIT) runs unchanged through `AppHost` on every backend and with
//! `artifacts run`; containers are private to their app; writes are
//! charged to the app's quota, equal values stored once, and a hostile app
//! is held to its limits on open values, handles and bytes.

use artifacts::apps::blobstore::{MAX_BLOB_HANDLES, MAX_OPEN_VALUES};
use artifacts::apps::limits::FUEL_PER_BYTE;
use artifacts::apps::{AppConfig, AppHost, AppOutcome};
use std::sync::atomic::Ordering::SeqCst;

use artifacts::{ArtifactStore, ArtifactType, Error, Hash, Quota};

use crate::fixture::{Counts, each_backend, pattern};
use crate::watched::Watched;

const BLOBBER: &[u8] = include_bytes!("../apps/blobber.wasm");

/// The marker artifact of container `name` (see `apps/blobstore/naming.rs`).
fn marker_len(name: &str) -> u64 {
    format!("wasi:blobstore container {name}\n").len() as u64
}

fn config(id: &str, args: &[&str]) -> AppConfig {
    let mut c = AppConfig::new(id);
    c.args = args.iter().map(|a| a.to_string()).collect();
    c
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn run(host: &AppHost, c: &AppConfig) -> Result<AppOutcome, Error> {
    let app = host.load_file(BLOBBER).unwrap();
    host.run(&app, c)
}

/// Runs the blobber, which must succeed; returns its output, trimmed.
fn run_ok(host: &AppHost, c: &AppConfig) -> String {
    let out = run(host, c).unwrap();
    assert_eq!(out.exit_code, 0, "{:?}: {}", c.args, text(&out.stderr));
    text(&out.stdout).trim().to_string()
}

/// Stores `data` as `object` of `container` for app `id`, through the blobber.
fn put(
    host: &AppHost,
    id: &str,
    quota: Quota,
    container: &str,
    object: &str,
    data: &[u8],
) -> AppOutcome {
    let mut c = config(id, &["put", container, object]);
    c.quota = quota;
    c.stdin = data.to_vec().into();
    run(host, &c).unwrap()
}

each_backend! {
    fn the_upstream_guest_runs_unchanged_and_leaves_only_what_it_kept(fx) {
        let store = fx.open();
        let host = AppHost::new(store.clone()).unwrap();
        assert_eq!(run_ok(&host, &config("blob-a", &[])), "blobber: all checks passed");
        // Again, on the state the first run left (container `kept`).
        assert_eq!(run_ok(&host, &config("blob-a", &[])), "blobber: all checks passed");
        // Everything else it wrote (5 MiB objects, copies, moves) is gone:
        // the container `kept` (its marker) and `hello` are all it holds.
        let view = store.app("blob-a", Quota::default()).unwrap();
        let usage = view.usage().unwrap();
        assert_eq!((usage.artifacts, usage.bytes), (2, marker_len("kept") + 5));
        assert_eq!(store.count().unwrap(), 2, "nothing else is stored");
        let names: Vec<String> = (view.names().list("").unwrap().into_iter())
            .map(|t| t.name)
            .collect();
        assert_eq!(names, ["wasi:blobstore/kept", "wasi:blobstore/kept/greeting"]);
        let greeting = view.names().get("wasi:blobstore/kept/greeting").unwrap().unwrap();
        assert_eq!(greeting, Hash::of(b"hello"));
        assert!(fx.temporary_files().is_empty(), "no staging left behind");
        assert_eq!(run_ok(&host, &config("blob-a", &["get", "kept", "greeting"])), "hello");
    }

    fn every_read_is_verified(fx) {
        let store = fx.open();
        let host = AppHost::new(store.clone()).unwrap();
        let data = pattern(300 << 10);
        let out = put(&host, "v", Quota::default(), "c", "big", &data);
        assert_eq!(out.exit_code, 0, "{}", text(&out.stderr));
        let out = put(&host, "v", Quota::default(), "c", "small", b"hello");
        assert_eq!(out.exit_code, 0, "{}", text(&out.stderr));
        fx.tamper(&Hash::of(b"hello"), b"jello");
        let mut damaged = data.clone();
        damaged[200 << 10] ^= 1;
        fx.tamper(&Hash::of(&data), &damaged);
        for object in ["small", "big"] {
            let out = run(&host, &config("v", &["get", "c", object])).unwrap();
            assert_eq!(out.exit_code, 1, "{object}");
            assert!(out.stdout.is_empty(), "nothing of {object} was returned");
            assert!(text(&out.stderr).contains("integrity failure"), "{}", text(&out.stderr));
        }
    }

    fn another_app_cannot_see_or_reach_an_apps_containers(fx) {
        let store = fx.open();
        let host = AppHost::new(store.clone()).unwrap();
        run_ok(&host, &config("blob-a", &[]));
        assert_eq!(run_ok(&host, &config("blob-a", &["probe", "kept"])), "present 1");
        assert_eq!(run_ok(&host, &config("blob-b", &["probe", "kept"])), "absent");
        let out = run(&host, &config("blob-b", &["get", "kept", "greeting"])).unwrap();
        assert_eq!(out.exit_code, 1);
        assert!(text(&out.stderr).contains("container \\\"kept\\\" does not exist"), "{}", text(&out.stderr));
        // B's own container of the same name is its own.
        let out = put(&host, "blob-b", Quota::default(), "kept", "greeting", b"other");
        assert_eq!(out.exit_code, 0, "{}", text(&out.stderr));
        assert_eq!(run_ok(&host, &config("blob-b", &["get", "kept", "greeting"])), "other");
        assert_eq!(run_ok(&host, &config("blob-a", &["get", "kept", "greeting"])), "hello");
        // The app's other names are not objects: only those under the
        // reserved prefix are.
        let view = store.app("blob-a", Quota::default()).unwrap();
        let h = view.put(b"not an object", ArtifactType::Generic).unwrap();
        view.names().set("kept/extra", &h).unwrap();
        view.names().set("wasi:blobstore/keptextra", &h).unwrap();
        assert_eq!(run_ok(&host, &config("blob-a", &["probe", "kept"])), "present 1");
    }

    fn writes_are_charged_and_one_over_the_quota_stores_nothing(fx) {
        let store = fx.open();
        let host = AppHost::new(store.clone()).unwrap();
        let quota = Quota { max_bytes: 300 << 10, max_artifacts: 10, max_artifact_bytes: 1 << 20 };
        let view = store.app("q", quota).unwrap();
        let out = put(&host, "q", quota, "c", "first", &pattern(200 << 10));
        assert_eq!(out.exit_code, 0, "{}", text(&out.stderr));
        let charged = view.usage().unwrap();
        assert_eq!((charged.artifacts, charged.bytes), (2, (200 << 10) + marker_len("c")));
        // 200 KiB more would pass 300 KiB: refused, nothing stored.
        let other: Vec<u8> = pattern(200 << 10).into_iter().map(|b| b ^ 1).collect();
        let out = put(&host, "q", quota, "c", "second", &other);
        assert_eq!(out.exit_code, 1);
        assert!(text(&out.stderr).contains("quota"), "{}", text(&out.stderr));
        assert_eq!(view.usage().unwrap(), charged, "nothing was charged");
        assert!(!store.contains(&Hash::of(&other)).unwrap(), "nothing was stored");
        assert_eq!(run_ok(&host, &config("q", &["probe", "c"])), "present 1");
        assert!(fx.temporary_files().is_empty());
    }

    fn equal_values_are_stored_once(fx) {
        let store = fx.open();
        let host = AppHost::new(store.clone()).unwrap();
        let data = pattern(300 << 10);
        for (container, object) in [("c", "a"), ("c", "b"), ("d", "a")] {
            let out = put(&host, "dedup", Quota::default(), container, object, &data);
            assert_eq!(out.exit_code, 0, "{}", text(&out.stderr));
        }
        let usage = store.app("dedup", Quota::default()).unwrap().usage().unwrap();
        assert_eq!(usage.artifacts, 3, "two markers and one value");
        assert_eq!(usage.bytes, (300 << 10) + marker_len("c") + marker_len("d"));
        // Another app's equal value: still one artifact in the store.
        let out = put(&host, "dedup-2", Quota::default(), "e", "a", &data);
        assert_eq!(out.exit_code, 0, "{}", text(&out.stderr));
        assert_eq!(store.count().unwrap(), 4, "one value, three markers");
        assert_eq!(store.stat(&Hash::of(&data)).unwrap().size, 300 << 10);
    }

    fn a_hostile_app_is_held_to_its_open_values_and_handles(fx) {
        let store = fx.open();
        let host = AppHost::new(store.clone()).unwrap();
        // new-outgoing-value has no error in the WIT: past the limit it traps.
        let err = run(&host, &config("h", &["hostile-values"])).unwrap_err();
        assert!(
            matches!(&err, Error::AppTrap { message, .. }
                if message.contains(&format!("too many open values and value streams: at most {MAX_OPEN_VALUES}"))),
            "{err:?}"
        );
        assert_eq!(
            run_ok(&host, &config("h", &["hostile-reads"])),
            format!("held {MAX_OPEN_VALUES}: too many open values and value streams: at most {MAX_OPEN_VALUES} at once")
        );
        assert_eq!(
            run_ok(&host, &config("h", &["hostile-handles"])),
            format!("held {MAX_BLOB_HANDLES}: too many open containers and object-name streams: at most {MAX_BLOB_HANDLES} at once")
        );
    }

    fn a_value_written_past_the_limits_is_refused_as_it_grows(fx) {
        let store = fx.open();
        let host = AppHost::new(store.clone()).unwrap();
        // The artifact-size limit: refused at the write that passes 2 MiB.
        let mut c = config("w", &["hostile-write", "64"]);
        c.quota.max_artifact_bytes = 2 << 20;
        let out = run_ok(&host, &c);
        assert!(out.starts_with("refused after 2097152 bytes: Some(\"quota exceeded: "), "{out}");
        assert!(out.contains("finish: Err(\"the value was not stored: "), "{out}");
        // The quota's total: refused once it (with the container's marker,
        // which the app holds) would be passed.
        let mut c = config("w2", &["hostile-write", "64"]);
        c.quota = Quota { max_bytes: (3 << 20) + marker_len("w"), ..Quota::default() };
        let out = run_ok(&host, &c);
        assert!(out.starts_with("refused after 3145728 bytes"), "{out}");
        assert!(out.contains("quota"), "{out}");
        for app in ["w", "w2"] {
            let usage = store.app(app, Quota::default()).unwrap().usage().unwrap();
            assert_eq!((usage.artifacts, usage.bytes), (1, marker_len("w")), "the marker alone");
        }
        assert!(fx.temporary_files().is_empty(), "the staging was discarded");
    }

    fn a_value_written_in_tiny_pieces_reads_what_the_app_holds_once_not_per_piece(fx) {
        // Each write checks the app's quota total against what it holds;
        // that is read from the backend again only after the app's own
        // store calls, not for every piece (a review found 5,000 one-byte
        // writes made 5,000 unpaid record reads, S3 GETs on S3).
        let backend = Watched::new(fx.backend(), Counts::default());
        let store = ArtifactStore::builder().open(backend.clone()).unwrap();
        let host = AppHost::new(store.clone()).unwrap();
        let entries_read = |id: &str, writes: u64, len: u64| {
            let before = backend.watch.entries_read.load(SeqCst);
            let mut c = config(id, &["tiny-writes", &writes.to_string(), &len.to_string()]);
            c.quota = Quota { max_bytes: 64 << 20, ..Quota::default() };
            assert_eq!(run_ok(&host, &c), format!("stored {}", writes * len));
            backend.watch.entries_read.load(SeqCst) - before
        };
        let few = entries_read("tiny-a", 10, 1);
        let many = entries_read("tiny-b", 5000, 1);
        let empty = entries_read("tiny-c", 5000, 0);
        eprintln!("entry records read: 10 writes {few}, 5,000 writes {many}, 5,000 empty {empty}");
        assert!(many <= few + 2, "5,000 writes read {many} records, 10 read {few}");
        assert!(empty <= few + 2, "5,000 empty writes read {empty} records, 10 read {few}");
        let stored = store.app("tiny-b", Quota::default()).unwrap().usage().unwrap();
        assert_eq!(stored.bytes, 5000 + marker_len("t"), "the value and the container's marker");
    }

    fn the_bytes_an_app_writes_are_charged_in_fuel_as_they_are_written(fx) {
        let store = fx.open();
        let host = AppHost::new(store.clone()).unwrap();
        let small = put(&host, "f", Quota::default(), "c", "small", &pattern(1 << 20));
        let large = put(&host, "f", Quota::default(), "c", "large", &pattern(9 << 20));
        assert_eq!(large.exit_code, 0, "{}", text(&large.stderr));
        let extra = large.fuel_used - small.fuel_used;
        // 8 MiB more: at least FUEL_PER_BYTE for each byte the host hashed.
        assert!(extra >= (8 << 20) * FUEL_PER_BYTE, "8 MiB more cost {extra} fuel");
        eprintln!("fuel: 1 MiB put {}, 9 MiB put {}", small.fuel_used, large.fuel_used);
    }
}

each_backend! {
    /// Containers are names: asking whether one exists reads the app's
    /// whole names record, and is charged for its bytes as a get is for
    /// its content (`FUEL_PER_BYTE`).
    fn container_calls_cost_fuel_by_the_bytes_of_the_names_record(fx) {
        use crate::names::fuel::{Bytes, fill_names};
        let watched = Watched::new(fx.backend(), Bytes::default());
        let bytes = watched.watch.clone();
        let store = ArtifactStore::builder().open(watched.clone()).unwrap();
        // The blobber's names record at its largest: 1000 names of 255
        // bytes, 288 KB.
        let view = store.app("blobber", Quota::UNLIMITED).unwrap();
        let named = view.put(b"named", ArtifactType::Generic).unwrap();
        view.names().set("n", &named).unwrap();
        fill_names(&watched);
        let host = AppHost::new(store).unwrap();
        let mut c = config("blobber", &["exists-loop", "c"]);
        let fuel = 20_000_000;
        c.limits.fuel = fuel;
        c.limits.wall_time = std::time::Duration::from_secs(30);
        bytes.take();
        assert!(matches!(run(&host, &c), Err(Error::OutOfFuel { .. })));
        let read = bytes.take().1;
        let per_fuel = read as f64 / fuel as f64;
        println!("container-exists in a loop: {read} bytes read for {fuel} fuel, {per_fuel:.3} a unit");
        assert!(read >= 3 * 288_000, "at least 3 calls: {read}");
        let get = 1.0 / FUEL_PER_BYTE as f64;
        assert!(per_fuel <= 2.0 * get, "container-exists reads {per_fuel} a unit of fuel, a get {get}");
    }
}

#[test]
fn an_app_past_its_fuel_while_writing_a_value_is_stopped_with_nothing_stored() {
    let store = ArtifactStore::open_memory().unwrap();
    let host = AppHost::new(store.clone()).unwrap();
    let mut c = config("poor", &["put", "c", "x"]);
    c.stdin = pattern(8 << 20).into();
    c.limits.fuel = 20_000_000;
    let err = run(&host, &c).unwrap_err();
    assert_eq!(
        err,
        Error::OutOfFuel {
            app: "poor".into(),
            fuel: 20_000_000
        }
    );
    assert!(!store.contains(&Hash::of(&pattern(8 << 20))).unwrap());
}

#[cfg(feature = "cli")]
#[test]
fn the_upstream_guest_runs_unchanged_with_artifacts_run() {
    use std::path::Path;
    use std::process::Command;
    let dir = tempfile::tempdir().unwrap();
    let blobber = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/apps/blobber.wasm");
    let artifacts = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_artifacts"))
            .arg("--dir")
            .arg(dir.path())
            .args(args)
            .env_remove("ARTIFACTS_DIR")
            .env(
                "XDG_CONFIG_HOME",
                std::env::temp_dir().join("artifacts-test-config"),
            )
            .output()
            .unwrap()
    };
    let file = blobber.to_str().unwrap();
    let o = artifacts(&["run", file, "--app-id", "a"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout).trim(), "blobber: all checks passed");
    let o = artifacts(&[
        "run", file, "--app-id", "a", "--", "get", "kept", "greeting",
    ]);
    assert_eq!(text(&o.stdout), "hello");
    let o = artifacts(&["run", file, "--app-id", "b", "--", "probe", "kept"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout).trim(), "absent");
}

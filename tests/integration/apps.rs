//! Sandboxed apps: the installer stores a plugin that the host then
//! launches by hash; the hostile app's every attempt is refused or stopped.

use artifacts::apps::limits::AppLimits;
use artifacts::apps::{AppConfig, AppHost};
use artifacts::{ArtifactStore, ArtifactType, Error, Hash, Quota, QuotaKind};

use crate::fixture::each_backend;

const INSTALLER: &[u8] = include_bytes!("../apps/installer.wasm");
const HOSTILE: &[u8] = include_bytes!("../apps/hostile.wasm");
const PLUGIN: &[u8] = include_bytes!("../apps/plugin.wasm");
const LIBRARIAN: &[u8] = include_bytes!("../apps/librarian.wasm");
const STREAMER: &[u8] = include_bytes!("../apps/streamer.wasm");
/// The installer as built before names and streams (stop 21): apps built
/// against the WIT of an earlier release must still link and run.
const OLD_INSTALLER: &[u8] = include_bytes!("../apps/compat/installer-before-names.wasm");

fn config(id: &str, args: &[&str]) -> AppConfig {
    let mut c = AppConfig::new(id);
    c.args = args.iter().map(|a| a.to_string()).collect();
    c
}

/// The staging tests' quota: 3 MiB in all.
const STAGING_QUOTA: Quota = Quota {
    max_bytes: 3 << 20,
    max_artifacts: 10,
    max_artifact_bytes: 16 << 20,
};

/// Runs the streamer as `c` says, within [`STAGING_QUOTA`] and `memory`
/// bytes; it must succeed: its output, trimmed.
fn staging_run(host: &AppHost, mut c: AppConfig, memory: usize) -> String {
    let streamer = host.load_file(STREAMER).unwrap();
    c.quota = STAGING_QUOTA;
    c.limits.memory_bytes = memory;
    let out = host.run(&streamer, &c).unwrap();
    assert_eq!(out.exit_code, 0, "{:?}: {}", c.args, text(&out.stderr));
    text(&out.stdout).trim().to_string()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs the installer; returns the plugin's hash it printed.
fn install(host: &AppHost) -> Hash {
    let app = host.load_file(INSTALLER).unwrap();
    let out = host.run(&app, &config("installer", &[])).unwrap();
    assert_eq!(out.exit_code, 0, "installer failed: {}", text(&out.stderr));
    let hash: Hash = text(&out.stdout).trim().parse().unwrap();
    assert_eq!(hash, Hash::of(PLUGIN));
    hash
}

fn hostile(host: &AppHost, c: &AppConfig) -> Result<artifacts::apps::AppOutcome, Error> {
    let app = host.load_file(HOSTILE).unwrap();
    host.run(&app, c)
}

/// The installer's plugin is still there, whole, with its one reference.
fn plugin_intact(store: &ArtifactStore, hash: &Hash) {
    assert_eq!(store.verify(hash).unwrap().size, PLUGIN.len() as u64);
    let view = store.app("installer", Quota::default()).unwrap();
    assert_eq!(view.stat(hash).unwrap().reference_count, 1);
    assert_eq!(view.get(hash).unwrap(), PLUGIN);
}

#[test]
fn an_app_built_against_the_wit_before_names_and_streams_still_runs() {
    let store = ArtifactStore::open_memory().unwrap();
    let host = AppHost::new(store.clone()).unwrap();
    let app = host.load_file(OLD_INSTALLER).unwrap();
    let out = host.run(&app, &config("installer", &[])).unwrap();
    assert_eq!(out.exit_code, 0, "{}", text(&out.stderr));
    let hash: Hash = text(&out.stdout).trim().parse().unwrap();
    assert_eq!(
        store.stat(&hash).unwrap().artifact_type,
        ArtifactType::WasmModule
    );
}

each_backend! {
    fn an_app_with_16_mib_of_memory_stores_and_reads_back_256_mib(fx) {
        let store = fx.open();
        let host = AppHost::new(store.clone()).unwrap();
        let streamer = host.load_file(STREAMER).unwrap();
        // The streamer in 16 MiB of memory, within `quota`.
        let run = |quota: Quota, args: &[&str]| {
            let mut c = config("streamer", args);
            c.quota = quota;
            c.limits.memory_bytes = 16 << 20;
            c.limits.fuel = 200_000_000_000;
            c.limits.wall_time = std::time::Duration::from_secs(300);
            let out = host.run(&streamer, &c).unwrap();
            assert_eq!(out.exit_code, 0, "{args:?}: {}", text(&out.stderr));
            text(&out.stdout).trim().to_string()
        };
        let size = 256usize << 20;
        let expected = {
            let mut h = blake3::Hasher::new();
            let mut buf = vec![0u8; 1 << 20];
            for start in (0..size).step_by(buf.len()) {
                for (k, b) in buf.iter_mut().enumerate() {
                    let i = (start + k) as u64;
                    *b = (i.wrapping_mul(7).wrapping_add(i / 4093) % 251) as u8;
                }
                h.update(&buf);
            }
            h.finalize().to_hex().to_string()
        };
        let quota = Quota { max_bytes: 1 << 30, max_artifacts: 10, max_artifact_bytes: 1 << 30 };
        let view = store.app("streamer", quota).unwrap();
        // The app's default quota is 64 MiB an artifact: refused as it passes it.
        let out = host.run(&streamer, &{
            let mut c = config("streamer", &["put", &size.to_string()]);
            c.limits.memory_bytes = 16 << 20;
            c
        });
        assert!(out.is_err() || out.unwrap().exit_code != 0, "over the default quota");
        assert_eq!(view.count().unwrap(), 0, "nothing stored");
        let hash = run(quota, &["put", &size.to_string()]);
        assert_eq!(hash, expected, "the store's hash of what the app wrote");
        assert_eq!(run(quota, &["get", &hash]), format!("read {size}"));
        // A range of it, proven without reading the whole (16 MiB of memory).
        let at = (100usize << 20) + 3;
        assert_eq!(
            run(quota, &["range", &hash, &at.to_string(), "4096"]),
            format!(
                "range 4096 ok; past the end: Err(RangeError::OutOfRange(RangeFailure {{ offset: {size}, length: 1, size: {size} }}))"
            )
        );
        assert_eq!(view.usage().unwrap().bytes, size as u64);
        // Unfinished, nothing is stored; at most 4 streams at once.
        assert_eq!(run(quota, &["abandon", &(9usize << 20).to_string()]), "holds 1");
        assert_eq!(run(Quota::default(), &["too-many"]), "refused after 4 streams, limit 4");
        assert_eq!(run(quota, &["misuse"]), "handled", "(with room in its quota)");
        // Open uploads count against the quota's total as they grow, not
        // only when they finish: four uploads of 12 MiB (each within the
        // 16 MiB an artifact may have) are refused at the 20 MiB total.
        let small = Quota { max_bytes: 20 << 20, max_artifacts: 10, max_artifact_bytes: 16 << 20 };
        let held = store.app("streamer-2", small).unwrap();
        assert_eq!(held.put(b"held", artifacts::ArtifactType::Generic).map(|_| ()), Ok(()));
        let out = {
            let mut c = config("streamer-2", &["parallel", "4", &(12usize << 20).to_string()]);
            c.quota = small;
            // Room for the four 4 MiB pieces the host holds for the open
            // uploads, and on S3 the 8 MiB part each staging gathers, which
            // count against the app's memory (host_memory.rs).
            c.limits.memory_bytes = 64 << 20;
            let out = host.run(&streamer, &c).unwrap();
            assert_eq!(out.exit_code, 0, "{}", text(&out.stderr));
            text(&out.stdout).trim().to_string()
        };
        assert_eq!(
            out,
            format!(
                "refused after {} bytes in all: Error::QuotaExceeded(QuotaFailure {{ kind: QuotaKind::Bytes, limit: {}, requested: {} }})",
                19 << 20,
                20 << 20,
                (20 << 20) + 4
            ),
            "the 20th MiB would pass the total (4 bytes held already)"
        );
        assert_eq!(held.count().unwrap(), 1, "nothing more stored");
        assert!(fx.temporary_files().is_empty(), "no staging left");
    }

    fn uploads_and_blobstore_values_share_one_quota_total(fx) {
        // An app staging through both interfaces at once: what it has
        // written to unfinished uploads and to unfinished blobstore values
        // is counted together against its quota's total (each interface
        // used to count only its own, so an app could stage twice its
        // total: here 2 + 2 MiB within 3 MiB).
        let store = fx.open();
        let host = AppHost::new(store.clone()).unwrap();
        let two = (2u64 << 20).to_string();
        for (order, expected) in [
            (
                "upload-first",
                "upload took 2097152; value refused after 1048576: quota exceeded: total bytes limit is 3145728, the put would make it 4194304",
            ),
            (
                "value-first",
                "value took 2097152; upload refused after 1048576: StreamError::Store(Error::QuotaExceeded(QuotaFailure { kind: QuotaKind::Bytes, limit: 3145728, requested: 4194304 }))",
            ),
        ] {
            let said = staging_run(&host, config("stager", &["both", order, &two]), 32 << 20);
            assert_eq!(said, expected, "{order}");
            // Neither stored anything; nothing staged is left behind.
            assert_eq!(store.app("stager", STAGING_QUOTA).unwrap().usage().unwrap().bytes, 0);
            assert!(fx.temporary_files().is_empty(), "{order}: no staging left");
        }
    }

    fn a_launched_child_has_only_what_its_parent_has_not_staged(fx) {
        // The parent stages 2 MiB (an upload left open) within 3 MiB, then
        // launches itself to write 2 MiB to an upload of the child's own:
        // what the parent staged is spoken for, so the child has 1 MiB
        // (it had the parent's whole 3 MiB: 2 + 2 MiB staged at once).
        let store = fx.open();
        let host = AppHost::new(store.clone()).unwrap();
        let me = store.put(STREAMER, ArtifactType::WasmModule).unwrap();
        let two = (2u64 << 20).to_string();
        let mut c = config("stager-parent", &["stage-then-launch", &me.to_string(), &two]);
        c.grants = vec![me];
        c.allow_launch = true;
        assert_eq!(
            staging_run(&host, c, 128 << 20),
            "upload took 2097152; child: refused after 1048576 bytes in all: Error::QuotaExceeded(QuotaFailure { kind: QuotaKind::Bytes, limit: 1048576, requested: 2097152 })"
        );
    }

    fn a_value_made_before_a_put_counts_what_the_put_stored(fx) {
        // A wasi:blobstore value made while the app held nothing, written
        // after the app stored 2 MiB through an upload: its writes are
        // checked against what the app holds now (it was checked against
        // what it held when the value was made, so 2 + 2 MiB got through
        // within 3 MiB).
        let store = fx.open();
        let host = AppHost::new(store.clone()).unwrap();
        let c = config("late-value", &["value-after-put", &(2u64 << 20).to_string()]);
        assert_eq!(
            staging_run(&host, c, 32 << 20),
            "stored 2097152; value refused after 1048576: quota exceeded: total bytes limit is 3145728, the put would make it 4194304"
        );
        assert_eq!(store.app("late-value", STAGING_QUOTA).unwrap().usage().unwrap().bytes, 2 << 20);
    }

    fn an_app_finds_its_named_plugins_again_on_its_next_runs_and_only_its_own(fx) {
        let store = fx.open();
        let host = AppHost::new(store.clone()).unwrap();
        let librarian = host.load_file(LIBRARIAN).unwrap();
        let run = |id: &str, args: &[&str]| {
            let out = host.run(&librarian, &config(id, args)).unwrap();
            assert_eq!(out.exit_code, 0, "{args:?}: {}", text(&out.stderr));
            text(&out.stdout).trim().to_string()
        };
        assert_eq!(run("lib-a", &["latest"]), "none");
        let v1: Hash = run("lib-a", &["install", "1"]).parse().unwrap();
        assert_eq!(run("lib-a", &["latest"]), "plugin 1", "found again on the next run");
        let v2: Hash = run("lib-a", &["install", "2"]).parse().unwrap();
        assert_eq!(run("lib-a", &["latest"]), "plugin 2", "the name moved");
        assert_eq!(
            run("lib-a", &["list"]),
            format!("plugin@1 {v1}\nplugin@2 {v2}\nplugin@latest {v2}")
        );
        // Another app has names of its own, and none of these.
        assert_eq!(run("lib-b", &["latest"]), "none");
        assert_eq!(run("lib-b", &["list"]), "");
        // The names hold the plugins the app released: retiring a version
        // deletes it once nothing else holds it.
        let view = store.app("lib-a", Quota::default()).unwrap();
        assert_eq!(view.stat(&v1).unwrap().reference_count, 1, "held by plugin@1 alone");
        assert_eq!(run("lib-a", &["retire", "1"]), v1.to_string());
        assert!(!store.contains(&v1).unwrap(), "v1 went with its last name");
        assert_eq!(run("lib-a", &["latest"]), "plugin 2");
        assert_eq!(view.usage().unwrap().artifacts, 1);
    }

    fn installer_stores_a_plugin_that_the_host_launches_by_hash(fx) {
        let store = fx.open();
        let host = AppHost::new(store.clone()).unwrap();
        let hash = install(&host);
        let meta = store.stat(&hash).unwrap();
        assert_eq!((meta.artifact_type, meta.size), (ArtifactType::WasmModule, PLUGIN.len() as u64));

        let plugin = host.load(&hash).unwrap();
        let out = host.run(&plugin, &config("plugin", &["--greet", "world"])).unwrap();
        assert_eq!(out.exit_code, 0, "{}", text(&out.stderr));
        assert!(text(&out.stdout).starts_with("plugin ran; config "), "{}", text(&out.stdout));
        let view = store.app("plugin", Quota::default()).unwrap();
        assert_eq!(view.count().unwrap(), 1, "the plugin keeps its config as its own");

        // A second launch reuses the compiled, pre-instantiated plugin.
        let compiled = host.compiled();
        let again = host.load(&hash).unwrap();
        assert_eq!(host.compiled(), compiled, "no new compile");
        assert_eq!(host.run(&again, &config("plugin", &["--greet", "world"])).unwrap().exit_code, 0);
        let config_hash: Hash = text(&out.stdout).trim().trim_start_matches("plugin ran; config ").parse().unwrap();
        assert_eq!(view.stat(&config_hash).unwrap().reference_count, 2, "same args, same config");
    }

    fn hostile_app_cannot_use_invalid_or_path_like_hashes(fx) {
        let store = fx.open();
        let host = AppHost::new(store.clone()).unwrap();
        let out = hostile(&host, &config("hostile", &["invalid-hashes"])).unwrap();
        assert_eq!(out.exit_code, 0, "{}", text(&out.stderr));
        assert_eq!(text(&out.stdout).trim(), "refused 56");
        assert_eq!(store.count().unwrap(), 0, "nothing was written");
    }

    fn hostile_app_cannot_see_read_or_release_another_apps_artifact(fx) {
        let store = fx.open();
        let host = AppHost::new(store.clone()).unwrap();
        let hash = install(&host);
        let out = hostile(&host, &config("hostile", &["other", hash.to_hex().as_str()])).unwrap();
        assert_eq!(out.exit_code, 0, "{}", text(&out.stderr));
        assert_eq!(text(&out.stdout).trim(), "other app's artifact invisible");
        plugin_intact(&store, &hash);
    }

    fn hostile_app_is_stopped_at_its_quota(fx) {
        let store = fx.open();
        let host = AppHost::new(store.clone()).unwrap();
        let hash = install(&host);
        let mut c = config("hostile", &["quota"]);
        c.quota = Quota { max_bytes: 10 * 4096, max_artifacts: 100, max_artifact_bytes: 4096 };
        let out = hostile(&host, &c).unwrap();
        assert_eq!(out.exit_code, 0, "{}", text(&out.stderr));
        assert_eq!(text(&out.stdout).trim(), "stored 10 then quota-exceeded bytes limit 40960");
        let view = store.app("hostile", c.quota).unwrap();
        let usage = view.usage().unwrap();
        assert_eq!((usage.bytes, usage.artifacts), (40960, 10));
        assert_eq!(view.count().unwrap(), 10);
        // The same from the library: refused before anything is written.
        let err = view.put(&[0u8; 4096], ArtifactType::Generic).unwrap_err();
        assert_eq!(err, Error::QuotaExceeded { kind: QuotaKind::Bytes, limit: 40960, requested: 45056 });
        assert_eq!(store.count().unwrap(), 11, "ten of the hostile app's and the plugin");
        plugin_intact(&store, &hash);
    }

    fn hostile_app_cannot_send_enormous_inputs(fx) {
        let store = fx.open();
        let host = AppHost::new(store.clone()).unwrap();
        let mut c = config("hostile", &["huge-list"]);
        c.quota.max_artifact_bytes = 1 << 20;
        let out = hostile(&host, &c).unwrap();
        assert_eq!(out.exit_code, 0, "{}", text(&out.stderr));
        assert_eq!(text(&out.stdout).trim(), "huge inputs refused");
        assert_eq!(store.count().unwrap(), 0);
    }

    fn runaway_apps_are_stopped_and_the_host_carries_on(fx) {
        let store = fx.open();
        let host = AppHost::new(store.clone()).unwrap();
        let hash = install(&host);

        let mut c = config("hostile", &["loop"]);
        c.limits = AppLimits { fuel: 50_000_000, ..AppLimits::default() };
        let err = hostile(&host, &c).unwrap_err();
        assert_eq!(err, Error::OutOfFuel { app: "hostile".into(), fuel: 50_000_000 });

        let mut c = config("hostile", &["memory"]);
        c.limits = AppLimits { memory_bytes: 16 << 20, ..AppLimits::default() };
        let err = hostile(&host, &c).unwrap_err();
        assert_eq!(err, Error::OutOfMemory { app: "hostile".into(), limit: 16 << 20 });

        // Everything else still works.
        plugin_intact(&store, &hash);
        let plugin = host.load(&hash).unwrap();
        assert_eq!(host.run(&plugin, &config("plugin", &[])).unwrap().exit_code, 0);
    }
}

#[test]
fn apps_get_no_filesystem_environment_or_network() {
    // The test process has files, environment variables and a network; the app sees none.
    let host = AppHost::new(ArtifactStore::open_memory().unwrap()).unwrap();
    let out = hostile(&host, &config("hostile", &["sandbox"])).unwrap();
    assert_eq!(out.exit_code, 0, "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).trim(),
        "no filesystem, environment or network"
    );
}

#[test]
fn a_tampered_stored_app_is_refused_before_it_is_compiled() {
    let backend = artifacts::MemoryBackend::new();
    let store = ArtifactStore::builder().open(backend.clone()).unwrap();
    let hash = store.put(PLUGIN, ArtifactType::WasmModule).unwrap();
    let mut evil = PLUGIN.to_vec();
    evil[100] ^= 0xff;
    artifacts::backend::Backend::write_blob(&backend, &hash, &evil).unwrap();
    let host = AppHost::new(store).unwrap();
    assert!(matches!(host.load(&hash), Err(Error::Integrity { .. })));
    assert_eq!(host.compiled(), 0);
}

#[test]
fn things_that_are_not_apps_are_refused_clearly() {
    let store = ArtifactStore::open_memory().unwrap();
    let host = AppHost::new(store.clone()).unwrap();
    let text_hash = store.put(b"not wasm", ArtifactType::Generic).unwrap();
    assert!(matches!(host.load(&text_hash), Err(Error::InvalidApp(_))));
    assert!(
        matches!(
            host.load_file(b"\0asm\x01\0\0\0"),
            Err(Error::InvalidApp(_))
        ),
        "a core module is not a command"
    );
    assert!(matches!(
        host.load(&"0".repeat(64).parse().unwrap()),
        Err(Error::NotFound(_))
    ));
    assert!("../../etc/passwd".parse::<Hash>().is_err());
    let app = host.load_file(HOSTILE).unwrap();
    assert!(matches!(
        host.run(&app, &config("bad/id", &[])),
        Err(Error::InvalidOwner(_))
    ));
}

#[test]
fn granted_artifacts_are_readable_but_not_releasable() {
    let store = ArtifactStore::open_memory().unwrap();
    let h = store
        .put(b"shared config", ArtifactType::ConfigBundle)
        .unwrap();
    let mut view = store.app("reader", Quota::default()).unwrap();
    assert_eq!(view.get(&h), Err(Error::NotFound(h)));
    view.grant(h);
    assert_eq!(view.get(&h).unwrap(), b"shared config");
    assert_eq!(view.stat(&h).unwrap().reference_count, 0, "it holds none");
    assert_eq!(view.release(&h), Err(Error::NotFound(h)));
    assert_eq!(view.remove(&h), Err(Error::NotFound(h)));
    assert_eq!(store.stat(&h).unwrap().reference_count, 1);
}

#[test]
fn compiled_apps_are_cached_on_disk_sealed_with_the_host_key() {
    let work = tempfile::tempdir().unwrap();
    let cache_dir = work.path().join("cache");
    let key = [7u8; 32];
    let store = ArtifactStore::open_memory().unwrap();
    let cache = || artifacts::CompileCache::new(&cache_dir, key);

    let first = AppHost::new(store.clone())
        .unwrap()
        .with_compile_cache(cache());
    first.load_file(HOSTILE).unwrap();
    assert_eq!(first.compiled(), 1);

    // A new host (as in a new process) loads it from disk without compiling.
    let second = AppHost::new(store.clone())
        .unwrap()
        .with_compile_cache(cache());
    let app = second.load_file(HOSTILE).unwrap();
    assert_eq!(second.compiled(), 0);
    let out = second
        .run(&app, &config("hostile", &["invalid-hashes"]))
        .unwrap();
    assert_eq!(text(&out.stdout).trim(), "refused 56");

    // An entry sealed with another key, or forged, is never deserialized: it is recompiled.
    let other_key = AppHost::new(store.clone())
        .unwrap()
        .with_compile_cache(artifacts::CompileCache::new(&cache_dir, [8u8; 32]));
    other_key.load_file(HOSTILE).unwrap();
    assert_eq!(other_key.compiled(), 1);
    let entry = std::fs::read_dir(&cache_dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut forged = std::fs::read(&entry).unwrap();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    std::fs::write(&entry, &forged).unwrap();
    let third = AppHost::new(store).unwrap().with_compile_cache(cache());
    assert_eq!(
        third
            .run(
                &third.load_file(HOSTILE).unwrap(),
                &config("h", &["invalid-hashes"])
            )
            .unwrap()
            .exit_code,
        0
    );
    assert_eq!(third.compiled(), 1);
}

#[test]
fn the_cache_key_is_created_once_and_kept_private() {
    let work = tempfile::tempdir().unwrap();
    let path = work.path().join("config/artifacts/cache-key");
    let key = artifacts::CompileCache::load_or_create_key(&path).unwrap();
    assert_eq!(
        artifacts::CompileCache::load_or_create_key(&path).unwrap(),
        key
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    std::fs::write(&path, b"short").unwrap();
    assert!(artifacts::CompileCache::load_or_create_key(&path).is_err());
}

/// Runs the hostile app in `mode` under a wall clock of `limit` (and fuel
/// enough for hours); returns the error and how long the run took.
fn timed_out(host: &AppHost, args: &[&str], limit: std::time::Duration) -> (Error, f64) {
    let mut c = config("hostile", args);
    c.limits.wall_time = limit;
    c.limits.fuel = 1_000_000_000_000_000;
    let started = std::time::Instant::now();
    let err = hostile(host, &c).unwrap_err();
    (err, started.elapsed().as_secs_f64())
}

#[test]
fn apps_that_sleep_wait_or_spin_are_stopped_at_their_wall_clock_limit() {
    let store = ArtifactStore::open_memory().unwrap();
    let host = AppHost::new(store.clone()).unwrap();
    host.load_file(HOSTILE).unwrap(); // compiled before the clock starts
    let limit = std::time::Duration::from_millis(1000);
    for mode in [&["sleep", "3600"][..], &["poll"], &["loop"]] {
        let (err, took) = timed_out(&host, mode, limit);
        assert_eq!(
            err,
            Error::Timeout {
                app: "hostile".into(),
                limit
            },
            "{mode:?}"
        );
        eprintln!("{mode:?}: stopped after {took:.3} s (limit 1 s)");
        assert!((1.0..2.0).contains(&took), "{mode:?} took {took:.3} s");
    }
    // The host carries on: a short sleep finishes, a plugin runs.
    let mut c = config("hostile", &["sleep", "0"]);
    c.limits.wall_time = limit;
    let out = hostile(&host, &c).unwrap();
    assert_eq!(text(&out.stdout), "slept 0 s\n");
    let plugin = host.load_file(PLUGIN).unwrap();
    assert_eq!(
        host.run(&plugin, &config("plugin", &[])).unwrap().exit_code,
        0
    );
    assert_eq!(
        store
            .app("plugin", Quota::default())
            .unwrap()
            .count()
            .unwrap(),
        1
    );
}

#[test]
fn wall_clocks_hold_for_apps_run_at_once_and_from_async_code() {
    let host = std::sync::Arc::new(AppHost::new(ArtifactStore::open_memory().unwrap()).unwrap());
    host.load_file(HOSTILE).unwrap();
    let limit = std::time::Duration::from_millis(1000);
    // Four apps at once, each stopped after its own second (not one after another).
    let started = std::time::Instant::now();
    let runs: Vec<_> = (0..4)
        .map(|i| {
            let host = host.clone();
            std::thread::spawn(move || {
                let mode: &[&str] = if i % 2 == 0 {
                    &["sleep", "60"]
                } else {
                    &["loop"]
                };
                timed_out(&host, mode, limit)
            })
        })
        .collect();
    for run in runs {
        let (err, took) = run.join().unwrap();
        assert!(matches!(err, Error::Timeout { .. }), "{err}");
        assert!(took < 2.0, "took {took:.3} s");
    }
    let all = started.elapsed().as_secs_f64();
    assert!(all < 2.5, "four runs at once took {all:.3} s");

    // From inside a tokio runtime (where blocking is forbidden): still a blocking call that works.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (err, took) = runtime.block_on(async { timed_out(&host, &["sleep", "60"], limit) });
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    assert!((1.0..2.0).contains(&took), "took {took:.3} s");
}

/// The host's instance pool holds [`MAX_CONCURRENT_APPS`] runs: of one
/// more started at the same time, exactly one is refused at once with
/// `Busy`, the others are undisturbed, and a slot freed is used again.
#[test]
fn a_full_pool_refuses_one_more_app_and_the_rest_carry_on() {
    use artifacts::apps::limits::MAX_CONCURRENT_APPS;
    let host = std::sync::Arc::new(AppHost::new(ArtifactStore::open_memory().unwrap()).unwrap());
    let app = host.load_file(HOSTILE).unwrap();
    let runs: Vec<_> = (0..=MAX_CONCURRENT_APPS)
        .map(|_| {
            let (host, app) = (host.clone(), app.clone());
            std::thread::spawn(move || {
                let started = std::time::Instant::now();
                let result = host.run(&app, &config("hostile", &["sleep", "5"]));
                (result, started.elapsed().as_secs_f64())
            })
        })
        .collect();
    let (mut slept, mut refused) = (0, 0);
    for run in runs {
        match run.join().unwrap() {
            (Ok(out), _) => {
                assert_eq!(text(&out.stdout), "slept 5 s\n");
                slept += 1;
            }
            (Err(e), took) => {
                assert_eq!(
                    e,
                    Error::Busy {
                        app: "hostile".into(),
                        limit: MAX_CONCURRENT_APPS
                    }
                );
                assert!(took < 1.0, "refused after {took:.3} s");
                refused += 1;
            }
        }
    }
    assert_eq!((slept, refused), (MAX_CONCURRENT_APPS, 1));
    let out = host.run(&app, &config("hostile", &["sleep", "0"])).unwrap();
    assert_eq!(text(&out.stdout), "slept 0 s\n");
}

#[test]
fn output_is_capped_for_stdout_and_stderr_together() {
    let host = AppHost::new(ArtifactStore::open_memory().unwrap()).unwrap();
    // Exactly the limit is allowed, and captured byte for byte.
    let mut c = config("hostile", &["flood", "1048576"]);
    c.limits.max_output = 1 << 20;
    let out = hostile(&host, &c).unwrap();
    assert_eq!(out.exit_code, 0);
    assert_eq!((out.stdout.len(), out.stderr.len()), (512 << 10, 512 << 10));
    // One byte more is not.
    let mut c = config("hostile", &["flood", "1048577"]);
    c.limits.max_output = 1 << 20;
    assert_eq!(
        hostile(&host, &c).unwrap_err(),
        Error::OutputLimit {
            app: "hostile".into(),
            limit: 1 << 20
        }
    );
    // An app writing 2 GiB is stopped at the default 16 MiB, fast.
    let started = std::time::Instant::now();
    let err = hostile(&host, &config("hostile", &["flood", "2147483648"])).unwrap_err();
    let took = started.elapsed().as_secs_f64();
    assert_eq!(
        err,
        Error::OutputLimit {
            app: "hostile".into(),
            limit: 16 << 20
        }
    );
    eprintln!("2 GiB flood stopped at 16 MiB after {took:.3} s");
    assert!(took < 10.0, "took {took:.3} s");
}

#[test]
fn captured_output_is_kept_byte_for_byte_and_apps_are_not_told_of_a_terminal() {
    let host = AppHost::new(ArtifactStore::open_memory().unwrap()).unwrap();
    let out = hostile(&host, &config("hostile", &["escapes"])).unwrap();
    assert_eq!(out.exit_code, 0);
    assert!(
        out.stdout.starts_with(b"title\x1b]0;pwned\x07"),
        "{:?}",
        text(&out.stdout)
    );
    assert!(out.stderr.ends_with(b"\nartifacts: app finished cleanly"));
    assert_eq!(
        artifacts::apps::terminal_safe(&out.stderr),
        "\\x1b[31mred\\x1b[0m\nartifacts: app finished cleanly"
    );
}

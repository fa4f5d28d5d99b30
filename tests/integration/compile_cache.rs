//! The sealed compile cache: entries keyed by engine configuration too, and
//! a key file that others may read is refused with the fix.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use artifacts::CompileCache;
use artifacts::apps::AppHost;
use artifacts::{ArtifactStore, CORE_COMPONENT};

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".cwasm"))
        .collect();
    names.sort();
    names
}

#[test]
fn running_the_core_as_an_app_never_replaces_the_cores_own_entry() {
    let work = tempfile::tempdir().unwrap();
    let cache_dir = work.path().join("cache");
    let cache = CompileCache::new(&cache_dir, [3u8; 32]);
    let store = ArtifactStore::builder()
        .core_cache(cache.clone())
        .open_memory()
        .unwrap();
    store.put(b"x", artifacts::ArtifactType::Generic).unwrap();
    let core_hash: artifacts::Hash = blake3::hash(CORE_COMPONENT)
        .to_hex()
        .as_str()
        .parse()
        .unwrap();
    // The core's engine: what the store compiles the core with.
    let mut config = wasmtime::Config::new();
    config.wasm_component_model(true);
    let core_engine = wasmtime::Engine::new(&config).unwrap();
    assert!(
        cache.contains(&core_engine, &core_hash),
        "{:?}",
        entries(&cache_dir)
    );

    // The core is no command: loading it as an app fails, after compiling
    // it for the app engine, which may cache its own entry beside it.
    let host = AppHost::new(store.clone())
        .unwrap()
        .with_compile_cache(cache.clone());
    assert!(host.load_file(CORE_COMPONENT).is_err());
    assert!(
        cache.get(&core_engine, &core_hash).is_some(),
        "the core's entry was replaced: {:?}",
        entries(&cache_dir)
    );
    let names = entries(&cache_dir);
    assert!(
        names
            .iter()
            .filter(|n| n.starts_with(core_hash.to_hex().as_str()))
            .count()
            >= 1,
        "{names:?}"
    );
    assert_eq!(names.len(), 2, "one entry per engine: {names:?}");
    assert!(cache.get(host.engine(), &core_hash).is_some());
}

#[test]
fn a_key_file_others_may_read_is_refused_with_the_fix() {
    let work = tempfile::tempdir().unwrap();
    let path = work.path().join("config/artifacts/cache-key");
    let key = CompileCache::load_or_create_key(&path).unwrap();
    for mode in [0o644, 0o640, 0o604, 0o660, 0o602] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        let err = CompileCache::load_or_create_key(&path).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(&format!("chmod 600 {}", path.display()))
                && text.contains(&format!("{mode:04o}")),
            "{text}"
        );
    }
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(CompileCache::load_or_create_key(&path).unwrap(), key);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
    assert_eq!(CompileCache::load_or_create_key(&path).unwrap(), key);
    // Another user's key (only root can make one to test with).
    if std::os::unix::fs::chown(&path, Some(65534), None).is_ok() {
        let text = CompileCache::load_or_create_key(&path)
            .unwrap_err()
            .to_string();
        assert!(text.contains("owned by user 65534"), "{text}");
    }
}

#[test]
fn the_cli_warns_about_a_shared_key_and_carries_on_without_the_cache() {
    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("config");
    let key = config.join("artifacts/cache-key");
    CompileCache::load_or_create_key(&key).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let file = work.path().join("f");
    std::fs::write(&file, b"hello").unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_artifacts"))
        .arg("--dir")
        .arg(work.path().join("store"))
        .arg("put")
        .arg(&file)
        .env("XDG_CONFIG_HOME", &config)
        .env_remove("ARTIFACTS_DIR")
        .output()
        .unwrap();
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("not caching compiled code") && err.contains("chmod 600"),
        "{err}"
    );
    assert!(!work.path().join("store/cache").exists());
}

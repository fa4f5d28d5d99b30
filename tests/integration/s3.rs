//! The S3 backend against real Garage servers: several host processes on
//! one bucket, a node killed under load, locks, faults and the layout.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use artifacts::backend::{Backend, Space, Swap, SwapOutcome};
use artifacts::{ArtifactStore, ArtifactType, Hash, S3Backend, S3Config};
use futures::TryStreamExt;
use object_store::ObjectStore;

use crate::fixture::{pattern, run_at_once};
use crate::garage::{self, Garage};

fn cli(garage: &Garage, url: &str, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_artifacts"));
    c.arg("--s3")
        .arg(url)
        .args(args)
        .envs(garage.env())
        .env(
            "XDG_CONFIG_HOME",
            std::env::temp_dir().join("artifacts-test-config"),
        )
        .env(
            "ARTIFACTS_DIR",
            std::env::temp_dir().join("artifacts-s3-cli-cache"),
        );
    c
}

/// Writes an object under the prefix directly.
fn raw_put(config: &S3Config, key: &str, data: &[u8]) {
    let (store, rt) = garage::raw_client(config);
    let path = object_store::path::Path::from(format!("{}/{key}", config.prefix));
    rt.block_on(object_store::ObjectStoreExt::put(
        &store,
        &path,
        data.to_vec().into(),
    ))
    .unwrap();
}

/// Every object key under the prefix, relative to it.
fn object_keys(config: &S3Config) -> Vec<String> {
    let (store, rt) = garage::raw_client(config);
    let prefix = object_store::path::Path::from(config.prefix.as_str());
    let metas: Vec<_> = rt
        .block_on(store.list(Some(&prefix)).try_collect())
        .unwrap();
    let mut keys: Vec<String> = metas
        .into_iter()
        .map(|m| {
            m.location
                .as_ref()
                .strip_prefix(&format!("{}/", config.prefix))
                .unwrap()
                .to_owned()
        })
        .collect();
    keys.sort();
    keys
}

#[test]
fn several_host_processes_sharing_a_bucket_keep_exact_counts() {
    let Some(garage) = garage::shared_or_skip("several_host_processes") else {
        return;
    };
    let url = format!(
        "s3://{}/{}",
        garage::BUCKET,
        garage::fresh_prefix("processes")
    );
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("shared");
    std::fs::write(&file, pattern(1025)).unwrap();
    let hash = artifacts::Hash::of(&pattern(1025)).to_string();
    const PROCESSES: usize = 8;
    const ROUNDS: usize = 3;
    for _ in 0..ROUNDS {
        let printed = run_at_once(PROCESSES, || {
            cli(garage, &url, &["put", file.to_str().unwrap()])
        });
        assert!(printed.iter().all(|h| *h == hash), "{printed:?}");
    }
    let stat = cli(garage, &url, &["stat", "--json", &hash])
        .output()
        .unwrap();
    let stat: serde_json::Value = serde_json::from_slice(&stat.stdout).unwrap();
    assert_eq!(stat["reference_count"], (PROCESSES * ROUNDS) as u64);
    // Releases from many processes at once: each count is printed exactly once.
    let mut left: Vec<u64> = run_at_once(PROCESSES * ROUNDS, || {
        cli(garage, &url, &["release", &hash])
    })
    .iter()
    .map(|n| n.parse().unwrap())
    .collect();
    left.sort_unstable();
    assert_eq!(left, (0..(PROCESSES * ROUNDS) as u64).collect::<Vec<_>>());
    let gone = cli(garage, &url, &["stat", &hash]).output().unwrap();
    assert_eq!(
        gone.status.code(),
        Some(3),
        "not found after the last release"
    );
}

#[test]
fn three_node_cluster_keeps_serving_and_loses_nothing_when_a_node_is_killed() {
    if garage::binary().is_err() && !garage::required() {
        eprintln!(
            "skipped three_node_cluster: {}",
            garage::binary().unwrap_err()
        );
        return;
    }
    let mut cluster = Garage::start(3).unwrap();
    let prefix = garage::fresh_prefix("cluster");
    // Two hosts, each talking to a different node; node 2 will die.
    let hosts: Vec<ArtifactStore> = (0..2)
        .map(|i| {
            ArtifactStore::builder()
                .open_s3(&cluster.config(i, &prefix))
                .unwrap()
        })
        .collect();
    let killed = AtomicBool::new(false);
    let acked: Vec<(Hash, Vec<u8>, bool)> = std::thread::scope(|s| {
        let writers: Vec<_> = hosts
            .iter()
            .enumerate()
            .map(|(w, store)| {
                let killed = &killed;
                s.spawn(move || {
                    let mut acked = Vec::new();
                    for i in 0..60usize {
                        // Sizes around the 1 KiB chunk, and one shared artifact.
                        let content = if i % 10 == 0 {
                            pattern(4096)
                        } else {
                            let mut c = pattern(1000 + i);
                            c.extend_from_slice(format!("writer {w} item {i}").as_bytes());
                            c
                        };
                        let after_kill = killed.load(Ordering::SeqCst);
                        let hash = store.put(&content, ArtifactType::Generic).unwrap();
                        assert_eq!(store.get(&hash).unwrap(), content, "verified get");
                        acked.push((hash, content, after_kill));
                    }
                    acked
                })
            })
            .collect();
        // Kill node 2 with SIGKILL once the writers are under way.
        let start = Instant::now();
        while hosts[0].count().unwrap_or(0) < 20 && start.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(20));
        }
        cluster.kill(2);
        let dead = cluster.endpoint(2).trim_start_matches("http://").to_owned();
        assert!(
            std::net::TcpStream::connect(&dead).is_err(),
            "node 2 still answers"
        );
        killed.store(true, Ordering::SeqCst);
        writers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    let after_kill = acked.iter().filter(|a| a.2).count();
    assert!(after_kill >= 20, "only {after_kill} puts after the kill");
    // Everything acknowledged is there, verified, through either live node.
    for store in &hosts {
        for (hash, content, _) in &acked {
            assert_eq!(&store.get(hash).unwrap(), content);
        }
    }
    let shared = artifacts::Hash::of(&pattern(4096));
    assert_eq!(hosts[1].stat(&shared).unwrap().reference_count, 12);
    eprintln!(
        "three-node cluster: {} puts and verified gets, {after_kill} after node 2 was killed",
        acked.len()
    );
}

#[test]
fn bucket_layout_is_pinned_and_locks_leave_nothing_behind() {
    let Some(garage) = garage::shared_or_skip("bucket_layout") else {
        return;
    };
    let config = garage.config(0, &garage::fresh_prefix("layout"));
    let store = ArtifactStore::builder().open_s3(&config).unwrap();
    let hash = store.put(b"layout", ArtifactType::Generic).unwrap();
    store.put(b"layout", ArtifactType::Generic).unwrap();
    store.release(&hash).unwrap();
    let h = hash.to_string();
    let shard = &h[..2];
    let keys = object_keys(&config);
    assert_eq!(keys.first().map(String::as_str), Some("FORMAT"));
    assert!(keys.contains(&format!("blobs/{shard}/{h}")), "{keys:?}");
    assert!(keys.contains(&format!("records/{shard}/{h}")), "{keys:?}");
    assert!(
        keys.iter().all(|k| !k.starts_with("locks/")),
        "claims left: {keys:?}"
    );
    // A store of another format in the same place is refused, and left alone.
    let foreign = S3Config {
        prefix: format!("{}-foreign", config.prefix),
        ..config.clone()
    };
    raw_put(&foreign, "FORMAT", b"artifacts-store 9 s3\n");
    let err = S3Backend::open(&foreign).unwrap_err().to_string();
    assert!(err.contains("not a store of this version"), "{err}");
    assert_eq!(object_keys(&foreign), ["FORMAT"]);
}

#[test]
fn a_live_claim_excludes_other_hosts_and_a_dead_hosts_claim_expires() {
    let Some(garage) = garage::shared_or_skip("claims") else {
        return;
    };
    let config = S3Config {
        lease: Some(Duration::from_secs(2)),
        ..garage.config(0, &garage::fresh_prefix("claims"))
    };
    let backend = Arc::new(S3Backend::open(&config).unwrap());
    let key: Hash = blake3::hash(b"claimed")
        .to_hex()
        .to_string()
        .parse()
        .unwrap();
    // Another host's claim, written straight into the bucket, and never removed:
    // a host that died holding the lock.
    raw_put(&config, &format!("locks/{key}/00000000deadbeef"), b"");
    let started = Instant::now();
    assert_eq!(
        backend
            .swap_record(Space::Shared, &key, Swap::new(None, Some(b"mine")))
            .unwrap(),
        SwapOutcome::Written(
            backend
                .read_record(Space::Shared, &key)
                .unwrap()
                .unwrap()
                .version
        )
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(2),
        "the swap went ahead after {waited:?} while another host held the lock"
    );
    assert!(
        waited < Duration::from_secs(30),
        "the dead host's claim never expired ({waited:?})"
    );
    assert!(
        object_keys(&config)
            .iter()
            .all(|k| !k.starts_with("locks/"))
    );
}

#[test]
fn an_unreachable_server_is_a_clear_error_and_credentials_are_never_printed() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = S3Config {
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        bucket: "nowhere".into(),
        prefix: "p".into(),
        region: "garage".into(),
        access_key_id: "GKnotakey".into(),
        secret_access_key: "very-secret-value".into(),
        lease: None,
    };
    assert!(!format!("{config:?}").contains("very-secret-value"));
    let started = Instant::now();
    let err = S3Backend::open(&config).unwrap_err().to_string();
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "gave up only after {:?}",
        started.elapsed()
    );
    assert!(err.contains("s3 GET") && err.contains("FORMAT"), "{err}");
    assert!(!err.contains("very-secret-value"), "{err}");
    // The CLI says the same, with its exit code for a failure, and no secret.
    let out = Command::new(env!("CARGO_BIN_EXE_artifacts"))
        .args(["--s3", "s3://nowhere/p", "ls"])
        .env("AWS_ENDPOINT_URL", config.endpoint.as_deref().unwrap())
        .env("AWS_ACCESS_KEY_ID", "GKnotakey")
        .env("AWS_SECRET_ACCESS_KEY", "very-secret-value")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("s3 GET"), "{stderr}");
    assert!(!stderr.contains("very-secret-value"), "{stderr}");
    // Missing keys are named.
    let out = Command::new(env!("CARGO_BIN_EXE_artifacts"))
        .args(["--s3", "s3://bucket", "ls"])
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("AWS_ACCESS_KEY_ID"));
}

#[test]
fn wrong_credentials_are_refused_without_printing_them() {
    let Some(garage) = garage::shared_or_skip("wrong_credentials") else {
        return;
    };
    let config = S3Config {
        secret_access_key: "0000000000000000000000000000000000000000000000000000000000000000"
            .into(),
        ..garage.config(0, "wrong")
    };
    let err = S3Backend::open(&config).unwrap_err().to_string();
    assert!(err.contains("s3 GET"), "{err}");
    assert!(!err.contains(&config.secret_access_key), "{err}");
}

#[test]
fn a_server_that_never_answers_times_out_with_a_clear_error() {
    // Accepts connections and reads requests, but never replies.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    let config = S3Config {
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        bucket: "silent".into(),
        prefix: String::new(),
        region: "garage".into(),
        access_key_id: "GKsilent".into(),
        secret_access_key: "silent-secret".into(),
        lease: None,
    };
    let started = Instant::now();
    let err = S3Backend::open(&config).unwrap_err().to_string();
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(5),
        "no timeout at all? {waited:?}: {err}"
    );
    assert!(
        waited < Duration::from_secs(90),
        "bounded retries took {waited:?}"
    );
    assert!(err.contains("s3 GET") && err.contains("FORMAT"), "{err}");
    eprintln!("silent server: gave up after {waited:?}: {err}");
}

#[test]
fn damaged_content_is_quarantined_in_the_bucket_and_a_put_repairs_it() {
    let Some(garage) = garage::shared_or_skip("quarantine") else {
        return;
    };
    let config = garage.config(0, &garage::fresh_prefix("quarantine"));
    let store = ArtifactStore::builder().open_s3(&config).unwrap();
    let content = pattern(2049);
    let hash = store.put(&content, ArtifactType::Generic).unwrap();
    S3Backend::open(&config)
        .unwrap()
        .write_blob(&hash, b"flipped")
        .unwrap();
    assert!(matches!(
        store.verify(&hash),
        Err(artifacts::Error::Integrity { .. })
    ));
    assert!(store.quarantine(&hash).unwrap());
    let keys = object_keys(&config);
    assert!(keys.contains(&format!("quarantine/{hash}")), "{keys:?}");
    assert!(!keys.iter().any(|k| k.starts_with("blobs/")), "{keys:?}");
    store.put(&content, ArtifactType::Generic).unwrap();
    assert_eq!(store.get(&hash).unwrap(), content);
    assert_eq!(store.stat(&hash).unwrap().reference_count, 2);
}

#[test]
fn large_puts_upload_in_parts_and_leave_no_staging_behind() {
    let Some(garage) = garage::shared_or_skip("multipart") else {
        return;
    };
    let config = garage.config(0, &garage::fresh_prefix("multipart"));
    let store = ArtifactStore::builder().open_s3(&config).unwrap();
    // Over 16 MiB: a multipart upload of 8 MiB parts, copied to its blob.
    let content = pattern((20 << 20) + 1025);
    let hash = store
        .put_from(&mut &content[..], ArtifactType::Generic)
        .unwrap();
    assert_eq!(
        hash.to_hex().as_str(),
        blake3::hash(&content).to_hex().as_str()
    );
    let mut back = Vec::new();
    store.get_to(&hash, &mut back).unwrap();
    assert_eq!(back, content);
    // The same, held whole by the caller; then known content (no upload kept).
    assert_eq!(store.put(&content, ArtifactType::Generic).unwrap(), hash);
    assert_eq!(store.stat(&hash).unwrap().reference_count, 2);
    assert_eq!(store.count().unwrap(), 1);
    let keys = object_keys(&config);
    assert!(
        keys.iter().all(|k| k == "FORMAT"
            || k.starts_with("blobs/")
            || k.starts_with("records/")
            || k.starts_with("outboards/")
            || k.starts_with("owners/")),
        "{keys:?}"
    );
    assert_eq!(keys.iter().filter(|k| k.starts_with("blobs/")).count(), 1);
    // Its outboard (for verified ranges), written once, beside the blob.
    assert_eq!(
        keys.iter()
            .filter(|k| k.starts_with("outboards/"))
            .collect::<Vec<_>>(),
        vec![&format!("outboards/{}/{hash}", hash.shard())]
    );
    let (raw, rt) = garage::raw_client(&config);
    let blob =
        object_store::path::Path::from(format!("{}/blobs/{}/{hash}", config.prefix, hash.shard()));
    let meta = rt
        .block_on(object_store::ObjectStoreExt::head(&raw, &blob))
        .unwrap();
    // It went up in three parts (8 + 8 + 4 MiB): Garage keeps a multipart
    // upload's ETag, `"…-3"`, through the copy.
    let etag = meta.e_tag.unwrap_or_default();
    assert!(etag.ends_with("-3\""), "{etag}");
}

struct FailingReader;

impl std::io::Read for FailingReader {
    fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
        Err(std::io::Error::other("the connection dropped"))
    }
}

#[test]
fn a_failed_large_put_aborts_its_upload() {
    if garage::binary().is_err() && !garage::required() {
        eprintln!("skipped: {}", garage::binary().unwrap_err());
        return;
    }
    // A node of its own: its incomplete uploads are this test's alone.
    let garage = Garage::start(1).unwrap();
    let config = garage.config(0, "aborts");
    let store = ArtifactStore::builder().open_s3(&config).unwrap();
    // The reader fails after 30 MiB: well into a multipart upload.
    let start = pattern(30 << 20);
    let mut failing = std::io::Read::chain(&start[..], FailingReader);
    assert!(matches!(
        store.put_from(&mut failing, ArtifactType::Generic),
        Err(artifacts::Error::Input(_))
    ));
    assert_eq!(store.count().unwrap(), 0);
    let out = garage
        .cli(&[
            "bucket",
            "cleanup-incomplete-uploads",
            "--older-than",
            "0s",
            "artifacts",
        ])
        .unwrap();
    // Garage says "BUCKET: N uploads deleted" when any were left.
    assert!(out.contains("no uploads deleted"), "{out}");
}

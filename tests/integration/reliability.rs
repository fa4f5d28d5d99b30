//! Garbage collection, several processes on one directory, and a writer
//! killed with SIGKILL hundreds of times: nothing acknowledged is lost.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use artifacts::CompileCache;
use artifacts::backend::{Backend, Space};
use artifacts::{ArtifactStore, ArtifactType, Error, FileBackend};

use crate::fixture::{each_backend, pattern, run_at_once};

each_backend! {
    fn gc_removes_old_orphans_and_never_a_referenced_blob(fx) {
        let store = fx.open();
        let kept = store.put(&pattern(1025), ArtifactType::Generic).unwrap();
        let released = store.put(&pattern(2049), ArtifactType::Generic).unwrap();
        store.release(&released).unwrap();
        // An orphan: a blob whose put never created its record (a crash, say).
        let orphan = artifacts::Hash::of(b"orphan");
        fx.backend().write_blob(&orphan, b"orphan").unwrap();
        let young = store.gc(Duration::from_secs(3600)).unwrap();
        assert_eq!((young.orphans_removed, young.orphans_in_grace), (0, 1), "{young:?}");
        let old = store.gc(Duration::ZERO).unwrap();
        assert_eq!((old.orphans_removed, old.bytes_freed), (1, 6), "{old:?}");
        assert_eq!(store.get(&kept).unwrap(), pattern(1025));
        assert_eq!(store.gc(Duration::ZERO).unwrap().orphans_removed, 0);
    }

    fn gc_racing_puts_and_releases_of_referenced_content_loses_nothing(fx) {
        let store = fx.open();
        let content = pattern(1024);
        let h = store.put(&content, ArtifactType::Generic).unwrap();
        // The file backend's temporary files belong to puts in flight: a
        // grace period protects them. The memory backend has none: grace 0.
        let grace = match fx {
            crate::fixture::Fixture::Memory(_) => Duration::ZERO,
            crate::fixture::Fixture::File(_) | crate::fixture::Fixture::S3(_) => Duration::from_secs(30),
        };
        let stop = std::sync::atomic::AtomicBool::new(false);
        /// Stops the gc thread even if a writer panics, so the test fails instead of hanging.
        struct Stop<'a>(&'a std::sync::atomic::AtomicBool);
        impl Drop for Stop<'_> {
            fn drop(&mut self) {
                self.0.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
        std::thread::scope(|s| {
            let gc = s.spawn(|| {
                let mut runs = 0;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    store.gc(grace).unwrap();
                    runs += 1;
                }
                runs
            });
            let writers: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        for _ in 0..25 {
                            let again = store.put(&content, ArtifactType::Generic).unwrap();
                            assert_eq!(store.get(&again).unwrap(), content);
                            store.release(&again).unwrap();
                        }
                    })
                })
                .collect();
            let stopper = Stop(&stop);
            writers.into_iter().for_each(|w| w.join().unwrap());
            drop(stopper);
            assert!(gc.join().unwrap() > 0);
        });
        assert_eq!(store.stat(&h).unwrap().reference_count, 1);
        assert_eq!(store.get(&h).unwrap(), content);
    }
}

fn artifacts_cli(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_artifacts"));
    c.arg("--dir").arg(dir).args(args).env(
        "XDG_CONFIG_HOME",
        std::env::temp_dir().join("artifacts-test-config"),
    );
    c
}

#[test]
fn several_processes_sharing_a_directory_keep_exact_counts() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("store");
    let file = work.path().join("shared");
    std::fs::write(&file, pattern(1025)).unwrap();
    let hash = artifacts::Hash::of(&pattern(1025)).to_string();
    const PROCESSES: usize = 8;
    const ROUNDS: usize = 4;
    for _ in 0..ROUNDS {
        let printed = run_at_once(PROCESSES, || {
            artifacts_cli(&dir, &["put", file.to_str().unwrap()])
        });
        assert!(printed.iter().all(|h| *h == hash), "{printed:?}");
    }
    let store = ArtifactStore::open_dir(&dir).unwrap();
    let hash: artifacts::Hash = hash.parse().unwrap();
    assert_eq!(
        store.stat(&hash).unwrap().reference_count,
        (PROCESSES * ROUNDS) as u64
    );
    // And releases from many processes at once: each count is printed exactly once.
    let mut left: Vec<u64> = run_at_once(PROCESSES * ROUNDS, || {
        artifacts_cli(&dir, &["release", hash.to_hex().as_str()])
    })
    .iter()
    .map(|n| n.parse().unwrap())
    .collect();
    left.sort_unstable();
    assert_eq!(left, (0..(PROCESSES * ROUNDS) as u64).collect::<Vec<_>>());
    assert!(!store.contains(&hash).unwrap());
}

#[test]
fn gc_and_verify_quarantine_from_the_cli() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("store");
    let file = work.path().join("f");
    std::fs::write(&file, pattern(2048)).unwrap();
    let out = artifacts_cli(&dir, &["put", file.to_str().unwrap()])
        .output()
        .unwrap();
    let hash = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let blob = dir.join("blobs").join(&hash[..2]).join(&hash);
    std::fs::write(&blob, b"bit rot").unwrap();
    std::fs::write(dir.join("tmp/leftover"), b"half a blob").unwrap();

    let out = artifacts_cli(&dir, &["verify", "--quarantine"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stdout).contains("moved to quarantine"));
    let quarantined: Vec<_> = std::fs::read_dir(dir.join("quarantine")).unwrap().collect();
    assert_eq!(quarantined.len(), 1);
    assert!(!blob.exists());
    // Now it reads as missing; a put of the right content restores it.
    let out = artifacts_cli(&dir, &["get", &hash]).output().unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing"));
    assert!(
        artifacts_cli(&dir, &["put", file.to_str().unwrap()])
            .output()
            .unwrap()
            .status
            .success()
    );
    assert!(
        artifacts_cli(&dir, &["verify"])
            .output()
            .unwrap()
            .status
            .success()
    );

    let out = artifacts_cli(&dir, &["gc", "--grace", "0", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["temporary_files_removed"], 1);
    assert_eq!(report["orphans_removed"], 0);
}

/// The child side of the crash test: runs only when the parent sets
/// ARTIFACTS_CRASH_DIR, writing until it is killed and acknowledging each
/// operation on stdout only after it returned.
#[test]
#[ignore = "the crash test runs it as a child process"]
fn crash_writer_child() {
    let Some(dir) = std::env::var_os("ARTIFACTS_CRASH_DIR") else {
        return;
    };
    let seed: u64 = std::env::var("ARTIFACTS_CRASH_SEED")
        .unwrap()
        .parse()
        .unwrap();
    let key = [42u8; 32];
    let store = ArtifactStore::builder()
        .core_cache(CompileCache::new(Path::new(&dir).join("cache"), key))
        .open_dir(&dir)
        .unwrap();
    let mut out = std::io::stdout().lock();
    // The kill's random moment counts from here: from the first write, not
    // from the process's start-up (slower in a debug build, or on a loaded
    // machine), so that kills land among the writes.
    writeln!(out, "ready").unwrap();
    out.flush().unwrap();
    let shared = pattern(3000);
    let mut last: Option<String> = None;
    for i in 0u64.. {
        let n = seed.wrapping_mul(1000).wrapping_add(i);
        let content: Vec<u8> = pattern(((n * 7919) % 70_000) as usize)
            .into_iter()
            .chain(n.to_le_bytes())
            .collect();
        let h = store.put(&content, ArtifactType::Generic).unwrap();
        writeln!(out, "ack put {h}").unwrap();
        out.flush().unwrap();
        if i % 3 == 0 {
            let s = store.put(&shared, ArtifactType::Generic).unwrap();
            store.release(&s).unwrap();
        }
        if i % 5 == 4
            && let Some(prev) = last.take()
        {
            writeln!(out, "removing {prev}").unwrap();
            out.flush().unwrap();
            store.remove(&prev.parse().unwrap()).unwrap();
        }
        last = Some(h.to_string());
    }
}

#[test]
fn kill_9_at_random_moments_loses_nothing_acknowledged() {
    const KILLS: u64 = 200;
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    // The children load the compiled core from this cache (as the CLI does), so
    // each one starts writing within milliseconds instead of compiling first.
    let store = ArtifactStore::builder()
        .core_cache(CompileCache::new(dir.join("cache"), [42u8; 32]))
        .open_dir(dir)
        .unwrap();
    let shared = store.put(&pattern(3000), ArtifactType::Generic).unwrap();
    let mut acked: Vec<String> = Vec::new();
    let mut removed: std::collections::HashSet<String> = Default::default();
    let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ std::process::id() as u64;
    let started = Instant::now();
    for kill in 0..KILLS {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "reliability::crash_writer_child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("ARTIFACTS_CRASH_DIR", dir)
            .env("ARTIFACTS_CRASH_SEED", kill.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let acked_before = acked.len();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        // Wait until it writes (its "ready" follows the harness's "test … ").
        let ready = lines
            .by_ref()
            .map_while(Result::ok)
            .any(|l| l.ends_with("ready"));
        assert!(ready, "the writer did not start");
        std::thread::sleep(Duration::from_millis(20 + rng % 120));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        for line in lines.map_while(Result::ok) {
            if let Some(h) = line.strip_prefix("ack put ") {
                acked.push(h.to_string());
            } else if let Some(h) = line.strip_prefix("removing ") {
                // Announced before the call: it may or may not have happened.
                removed.insert(h.to_string());
            }
        }
        // After every crash: each acknowledged put that was not removed is
        // there (this round's re-read and verified; all of them again at the end).
        let reopened = ArtifactStore::open_dir(dir).unwrap();
        for (i, h) in acked.iter().enumerate() {
            if removed.contains(h) {
                continue;
            }
            let check = if i >= acked_before {
                reopened.verify(&h.parse().unwrap())
            } else {
                reopened.stat(&h.parse().unwrap())
            };
            check.unwrap_or_else(|e| panic!("after kill {kill}: {h}: {e}"));
        }
        assert!(reopened.stat(&shared).unwrap().reference_count >= 1);
        reopened.verify(&shared).unwrap();
    }
    // Every acknowledged put verifies, nothing visible is damaged, and gc clears every leftover.
    let store = ArtifactStore::open_dir(dir).unwrap();
    for h in acked.iter().filter(|h| !removed.contains(*h)) {
        store
            .verify(&h.parse().unwrap())
            .unwrap_or_else(|e| panic!("at the end: {h}: {e}"));
    }
    for m in store.list() {
        let m = m.unwrap();
        match store.verify(&m.hash) {
            Ok(_) => {}
            Err(
                e @ (Error::Integrity { .. } | Error::MissingContent(_) | Error::CorruptRecord(_)),
            ) => {
                panic!("{}: {e}", m.hash)
            }
            Err(e) => panic!("{e}"),
        }
    }
    store.gc(Duration::ZERO).unwrap();
    let backend = FileBackend::open(dir).unwrap();
    let blobs = backend.list_blobs(None, u32::MAX).unwrap().len();
    let records = backend
        .list_records(Space::Shared, None, u32::MAX)
        .unwrap()
        .len();
    assert_eq!(
        blobs, records,
        "no orphan blobs or blobless records after gc"
    );
    assert_eq!(std::fs::read_dir(dir.join("tmp")).unwrap().count(), 0);
    eprintln!(
        "{KILLS} kills in {:.1} s; {} puts acknowledged, all intact",
        started.elapsed().as_secs_f64(),
        acked.len()
    );
    assert!(
        acked.len() as u64 > KILLS,
        "the writer made progress between kills"
    );
}

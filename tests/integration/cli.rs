//! The `artifacts` command line, run as a user would.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::fixture::pattern;

fn artifacts(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_artifacts"))
        .arg("--dir")
        .arg(dir)
        .args(args)
        .env_remove("ARTIFACTS_DIR")
        .env(
            "XDG_CONFIG_HOME",
            std::env::temp_dir().join("artifacts-test-config"),
        )
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

fn put(dir: &Path, file: &Path, extra: &[&str]) -> String {
    let mut args = vec!["put", file.to_str().unwrap()];
    args.extend_from_slice(extra);
    let o = artifacts(dir, &args);
    assert!(o.status.success(), "{}", stderr(&o));
    let hash = stdout(&o);
    assert_eq!(hash.len(), 65, "put prints only the hash: {hash:?}");
    hash.trim().to_string()
}

#[test]
fn put_get_stat_ls_release_rm_across_processes() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("store");
    let file = work.path().join("plugin.wasm");
    let mut content = b"\0asm\x01\0\0\0".to_vec();
    content.extend(pattern(2049));
    std::fs::write(&file, &content).unwrap();

    let hash = put(&dir, &file, &[]);
    assert_eq!(hash, blake3::hash(&content).to_hex().as_str());
    assert_eq!(put(&dir, &file, &["--type", "generic"]), hash);

    let o = artifacts(&dir, &["get", &hash]);
    assert!(o.status.success());
    assert_eq!(o.stdout, content);
    let out = work.path().join("copy.wasm");
    assert!(
        artifacts(&dir, &["get", &hash, "-o", out.to_str().unwrap()])
            .status
            .success()
    );
    assert_eq!(std::fs::read(&out).unwrap(), content);

    let o = artifacts(&dir, &["stat", &hash, "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["hash"], hash.as_str());
    assert_eq!(json["size"], content.len() as u64);
    assert_eq!(
        json["type"], "wasm-module",
        "wasm detected, first type kept"
    );
    assert_eq!(json["reference_count"], 2);
    assert!(json["stored_at"].as_u64().unwrap() > 1_600_000_000_000);
    let human = stdout(&artifacts(&dir, &["stat", &hash]));
    assert!(
        human.contains("reference_count: 2") && human.contains("type:            wasm-module"),
        "{human}"
    );

    let ls: serde_json::Value =
        serde_json::from_slice(&artifacts(&dir, &["ls", "--json"]).stdout).unwrap();
    assert_eq!(ls.as_array().unwrap().len(), 1);
    assert!(stdout(&artifacts(&dir, &["ls"])).starts_with(&hash));

    assert_eq!(stdout(&artifacts(&dir, &["release", &hash])), "1\n");
    assert_eq!(stdout(&artifacts(&dir, &["release", &hash])), "0\n");
    let o = artifacts(&dir, &["get", &hash]);
    assert_eq!(o.status.code(), Some(3), "not found exits 3");
    assert!(stderr(&o).contains("no artifact"), "{}", stderr(&o));

    put(&dir, &file, &["--type", "app-manifest"]);
    assert!(artifacts(&dir, &["rm", &hash]).status.success());
    assert_eq!(artifacts(&dir, &["rm", &hash]).status.code(), Some(3));
    assert_eq!(stdout(&artifacts(&dir, &["ls"])), "");
}

#[test]
fn put_reads_standard_input() {
    let work = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_artifacts"))
        .args([
            "--dir",
            work.path().to_str().unwrap(),
            "put",
            "-",
            "--type",
            "config-bundle",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"key = 1").unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success());
    assert_eq!(
        stdout(&o).trim(),
        blake3::hash(b"key = 1").to_hex().as_str()
    );
}

#[test]
fn the_store_directory_comes_from_the_environment() {
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("f");
    std::fs::write(&file, "x").unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_artifacts"))
        .args(["put", file.to_str().unwrap()])
        .env("ARTIFACTS_DIR", work.path().join("env-store"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(work.path().join("env-store/FORMAT").exists());
}

#[test]
fn verify_reports_each_damaged_artifact_and_fails() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("store");
    let mut hashes = Vec::new();
    for (i, size) in [1023usize, 1024, 1025].into_iter().enumerate() {
        let f = work.path().join(format!("f{i}"));
        std::fs::write(&f, pattern(size)).unwrap();
        hashes.push(put(&dir, &f, &[]));
    }
    let o = artifacts(&dir, &["verify"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("verified 3 artifacts: 3 ok, 0 damaged"),
        "{}",
        stderr(&o)
    );

    let blob = |h: &str| dir.join("blobs").join(&h[..2]).join(h);
    std::fs::write(blob(&hashes[0]), b"flipped").unwrap();
    std::fs::remove_file(blob(&hashes[2])).unwrap();
    let o = artifacts(&dir, &["verify"]);
    assert_eq!(o.status.code(), Some(4));
    let report = stdout(&o);
    assert!(
        report.contains(&format!("{}  corrupt", hashes[0])),
        "{report}"
    );
    assert!(
        report.contains(&format!("{}  missing", hashes[2])),
        "{report}"
    );
    assert!(!report.contains(&hashes[1]), "{report}");
    assert_eq!(artifacts(&dir, &["get", &hashes[0]]).status.code(), Some(4));
}

#[test]
fn bad_input_gives_clear_errors_and_no_panic() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("store");
    for (args, code, needle) in [
        (vec!["get", "../../etc/passwd"], 1, "invalid hash"),
        (vec!["stat", "ABCDEF"], 1, "invalid hash"),
        (vec!["release", &"G".repeat(64)], 1, "invalid hash"),
        (
            vec!["put", "/definitely/not/here"],
            1,
            "opening /definitely/not/here",
        ),
        (
            vec!["put", "Cargo.toml", "--type", "banana"],
            2,
            "unknown artifact type",
        ),
        (vec!["frobnicate"], 2, "unrecognized subcommand"),
        (vec!["get"], 2, "required"),
    ] {
        let o = artifacts(&dir, &args);
        assert_eq!(o.status.code(), Some(code), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"), "{args:?}");
    }
    // A directory that is a file.
    let file = work.path().join("plain");
    std::fs::write(&file, "x").unwrap();
    let o = artifacts(&file, &["ls"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("cannot open store"), "{}", stderr(&o));
}

#[test]
fn get_into_a_closed_pipe_does_not_panic() {
    let work = tempfile::tempdir().unwrap();
    let f = work.path().join("big");
    std::fs::write(&f, pattern(4 << 20)).unwrap();
    let hash = put(work.path(), &f, &[]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_artifacts"))
        .args(["--dir", work.path().to_str().unwrap(), "get", &hash])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
}

#[test]
fn run_installs_a_plugin_then_runs_it_by_hash_and_stops_runaways() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("store");
    let apps = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/apps");
    let installer = apps.join("installer.wasm");
    let hostile = apps.join("hostile.wasm");

    let o = artifacts(&dir, &["run", installer.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let hash = stdout(&o).trim().to_string();
    let o = artifacts(&dir, &["run", &hash, "--app-id", "plugin", "--", "x"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with("plugin ran; config "),
        "{}",
        stdout(&o)
    );

    let o = artifacts(
        &dir,
        &["run", hostile.to_str().unwrap(), "--", "other", &hash],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = artifacts(
        &dir,
        &[
            "run",
            hostile.to_str().unwrap(),
            "--fuel",
            "1000000",
            "--",
            "loop",
        ],
    );
    assert_eq!(o.status.code(), Some(125));
    assert!(
        stderr(&o).contains("used up its CPU budget"),
        "{}",
        stderr(&o)
    );
    let o = artifacts(
        &dir,
        &[
            "run",
            hostile.to_str().unwrap(),
            "--memory",
            "8000000",
            "--",
            "memory",
        ],
    );
    assert_eq!(o.status.code(), Some(125));
    assert!(
        stderr(&o).contains("past its limit of 8000000 bytes"),
        "{}",
        stderr(&o)
    );
    let o = artifacts(
        &dir,
        &["run", hostile.to_str().unwrap(), "--", "no-such-mode"],
    );
    assert_eq!(o.status.code(), Some(1), "the app's own failure");
    let o = artifacts(&dir, &["run", "Cargo.toml"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(
        stderr(&o).contains("not a valid component"),
        "{}",
        stderr(&o)
    );
    assert!(artifacts(&dir, &["verify"]).status.success());
}

#[test]
fn get_to_a_file_streams_large_artifacts_and_never_leaves_unverified_content() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("store");
    let file = work.path().join("big");
    let content = pattern((20 << 20) + 1025);
    std::fs::write(&file, &content).unwrap();
    let hash = put(&dir, &file, &[]);
    let out = work.path().join("out");
    let o = artifacts(&dir, &["get", &hash, "-o", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(std::fs::read(&out).unwrap() == content);
    // To standard output, too (held in a temporary file until verified).
    let o = artifacts(&dir, &["get", &hash]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(o.stdout == content);
    // Damage the stored blob: get -o fails with the damage exit code and
    // neither creates nor replaces the output file.
    let blob = artifacts::FileBackend::open(&dir)
        .unwrap()
        .blob_path(&hash.parse().unwrap());
    let mut damaged = content.clone();
    damaged[(19 << 20) + 3] ^= 1;
    std::fs::write(&blob, &damaged).unwrap();
    let fresh = work.path().join("fresh");
    let o = artifacts(&dir, &["get", &hash, "-o", fresh.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(stderr(&o).contains("integrity"), "{}", stderr(&o));
    assert!(!fresh.exists());
    let o = artifacts(&dir, &["get", &hash]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(o.stdout.is_empty(), "unverified bytes went out");
    let o = artifacts(&dir, &["get", &hash, "-o", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(4));
    assert!(
        std::fs::read(&out).unwrap() == content,
        "the old file was replaced"
    );
    let leftovers: Vec<_> = std::fs::read_dir(work.path()).unwrap().collect();
    assert_eq!(leftovers.len(), 3, "temporary files left: {leftovers:?}");
}

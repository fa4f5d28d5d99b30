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
    // The digest form names the same artifact; what is printed is bare hex.
    let digest = format!("blake3:{hash}");
    let o = artifacts(&dir, &["stat", &digest, "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["hash"], hash.as_str());
    assert_eq!(artifacts(&dir, &["get", &digest]).stdout, content);
    // sha256: is an alias (content pushed or pulled through OCI): none
    // here, so no such artifact; any other prefix is no hash at all.
    let o = artifacts(&dir, &["get", &format!("sha256:{hash}")]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("no artifact answers to"),
        "{}",
        stderr(&o)
    );
    let o = artifacts(&dir, &["get", &format!("md5:{hash}")]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("invalid hash"), "{}", stderr(&o));
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
    let o = artifacts(&dir, &["run", "./Cargo.toml"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(
        stderr(&o).contains("not a valid component"),
        "{}",
        stderr(&o)
    );
    let o = artifacts(&dir, &["run", "Cargo.toml"]);
    assert_eq!(o.status.code(), Some(2), "neither a hash nor path-like");
    assert!(stderr(&o).contains("./Cargo.toml"), "{}", stderr(&o));
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

fn test_apps() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/apps")
}

/// The CLI in `cwd`, as a user would run it there.
fn artifacts_in(cwd: &Path, dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_artifacts"))
        .current_dir(cwd)
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

#[test]
fn an_app_is_known_by_its_content_not_its_file_name() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("store");
    let (real, impostor) = (work.path().join("real"), work.path().join("impostor"));
    std::fs::create_dir_all(&real).unwrap();
    std::fs::create_dir_all(&impostor).unwrap();
    std::fs::copy(test_apps().join("plugin.wasm"), real.join("plugin.wasm")).unwrap();
    std::fs::copy(
        test_apps().join("hostile.wasm"),
        impostor.join("plugin.wasm"),
    )
    .unwrap();

    // The real plugin keeps a config as its own.
    let o = artifacts_in(&real, &dir, &["run", "plugin.wasm", "--", "x"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let config = stdout(&o)
        .trim()
        .trim_start_matches("plugin ran; config ")
        .to_string();
    assert_eq!(config.len(), 64, "{}", stdout(&o));

    // Another component saved under the same name is another app: it cannot see,
    // read, release or remove the plugin's config (its mode exits 0 only then).
    let o = artifacts_in(
        &impostor,
        &dir,
        &["run", "plugin.wasm", "--", "other", &config],
    );
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(stdout(&o).trim(), "other app's artifact invisible");
    // (The host's own `stat` counts only the host's references.)
    let plugin_id = format!(
        "app-{}",
        &blake3::hash(&std::fs::read(real.join("plugin.wasm")).unwrap()).to_hex()[..32]
    );
    let view = artifacts::ArtifactStore::open_dir(&dir)
        .unwrap()
        .app(&plugin_id, artifacts::Quota::default())
        .unwrap();
    assert_eq!(
        view.stat(&config.parse().unwrap()).unwrap().reference_count,
        1,
        "the plugin's config is untouched"
    );

    // The same plugin run by its hash is the same app, whatever it was called.
    let plugin = put(&dir, &real.join("plugin.wasm"), &[]);
    let o = artifacts_in(&impostor, &dir, &["run", &plugin, "--", "x"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), format!("plugin ran; config {config}"));
    assert_eq!(
        view.stat(&config.parse().unwrap()).unwrap().reference_count,
        2,
        "same app, same config, one more reference"
    );
}

#[test]
fn a_hash_always_names_the_stored_app_never_a_file() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("store");
    let plugin = put(&dir, &test_apps().join("plugin.wasm"), &[]);
    // A file named like the plugin's hash, holding another component, in the current directory.
    std::fs::copy(test_apps().join("hostile.wasm"), work.path().join(&plugin)).unwrap();

    let o = artifacts_in(work.path(), &dir, &["run", &plugin, "--", "x"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with("plugin ran; config "),
        "the stored app ran: {}",
        stdout(&o)
    );

    // The file, by a path.
    let o = artifacts_in(
        work.path(),
        &dir,
        &["run", &format!("./{plugin}"), "--", "invalid-hashes"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "refused 56");

    // A hash of nothing stored is not found, even with the file there; an
    // upper-case one is refused, not looked up as a file.
    std::fs::copy(
        test_apps().join("hostile.wasm"),
        work.path().join("a".repeat(64)),
    )
    .unwrap();
    let o = artifacts_in(work.path(), &dir, &["run", &"a".repeat(64)]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let upper = plugin.to_uppercase();
    std::fs::copy(test_apps().join("hostile.wasm"), work.path().join(&upper)).unwrap();
    let o = artifacts_in(work.path(), &dir, &["run", &upper, "--", "invalid-hashes"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("invalid hash"), "{}", stderr(&o));
    assert_eq!(stdout(&o), "");
}

/// The hostile test app's path, run once on the store at `dir` so that it
/// is compiled and cached before a test times it.
fn hostile_compiled(dir: &Path) -> String {
    let hostile = test_apps().join("hostile.wasm");
    let hostile = hostile.to_str().unwrap().to_string();
    let o = artifacts(dir, &["run", &hostile, "--", "sleep", "0"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    hostile
}

#[test]
fn run_stops_an_app_at_its_timeout_with_exit_125() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("store");
    let hostile = hostile_compiled(&dir);
    let hostile = hostile.as_str();
    for mode in [&["sleep", "3600"][..], &["poll"], &["loop"]] {
        let started = std::time::Instant::now();
        let mut args = vec![
            "run",
            hostile,
            "--timeout",
            "1.5",
            "--fuel",
            "1000000000000000",
            "--",
        ];
        args.extend_from_slice(mode);
        let o = artifacts(&dir, &args);
        let took = started.elapsed().as_secs_f64();
        assert_eq!(o.status.code(), Some(125), "{mode:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("ran longer than its wall-clock limit of 1s 500ms"),
            "{}",
            stderr(&o)
        );
        eprintln!("{mode:?}: the CLI exited {took:.3} s after it started (limit 1.5 s)");
        // The whole process, start-up included, within a second of the limit.
        assert!((1.5..2.5).contains(&took), "{mode:?} took {took:.3} s");
    }
    let o = artifacts(
        &dir,
        &["run", hostile, "--timeout", "0", "--", "sleep", "1"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

/// The peak resident memory (KiB) of the CLI running `args`, its exit code
/// and its standard output and error; None without GNU time.
fn peak_kib(dir: &Path, args: &[&str]) -> Option<(u64, Option<i32>, Vec<u8>, String)> {
    let time = Path::new("/usr/bin/time");
    if !time.exists() {
        eprintln!("skipped: no /usr/bin/time to measure peak memory");
        return None;
    }
    let report = tempfile::NamedTempFile::new().unwrap();
    let o = Command::new(time)
        .args(["-f", "%M", "-o"])
        .arg(report.path())
        .arg(env!("CARGO_BIN_EXE_artifacts"))
        .arg("--dir")
        .arg(dir)
        .args(args)
        .env(
            "XDG_CONFIG_HOME",
            std::env::temp_dir().join("artifacts-test-config"),
        )
        .output()
        .unwrap();
    let kib = std::fs::read_to_string(report.path()).unwrap();
    let kib = kib.lines().last().unwrap().trim().parse().unwrap();
    let err = stderr(&o);
    Some((kib, o.status.code(), o.stdout, err))
}

#[test]
fn run_caps_output_and_streams_it_in_bounded_memory() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("store");
    let hostile = hostile_compiled(&dir);
    let hostile = hostile.as_str();

    // 2 GiB asked for: stopped at the default 16 MiB, stdout and stderr together.
    let started = std::time::Instant::now();
    let o = artifacts(&dir, &["run", hostile, "--", "flood", "2147483648"]);
    let took = started.elapsed().as_secs_f64();
    assert_eq!(o.status.code(), Some(125));
    let message = "artifacts: app app-";
    let err = &o.stderr;
    let at = err
        .windows(message.len())
        .position(|w| w == message.as_bytes())
        .unwrap();
    assert!(stderr(&o)[at..].contains("wrote more than its output limit of 16777216 bytes"));
    assert_eq!(o.stdout.len() + at, 16 << 20, "exactly the limit went out");
    eprintln!(
        "2 GiB flood: {} bytes out, stopped after {took:.3} s",
        o.stdout.len() + at
    );
    assert!(took < 10.0, "took {took:.3} s");

    // Memory: 256 MiB of output costs no more than 16 MiB does (it streams).
    let Some((small, code, ..)) = peak_kib(&dir, &["run", hostile, "--", "flood", "16777216"])
    else {
        return;
    };
    assert_eq!(code, Some(0));
    let (large, code, out, _) = peak_kib(
        &dir,
        &[
            "run",
            hostile,
            "--max-output",
            "268435456",
            "--",
            "flood",
            "268435456",
        ],
    )
    .unwrap();
    assert_eq!(code, Some(0));
    assert_eq!(out.len(), 128 << 20, "half of it on stdout");
    eprintln!("peak memory: {small} KiB writing 16 MiB, {large} KiB writing 256 MiB");
    assert!(large < small + 16 * 1024, "{large} KiB against {small} KiB");
}

#[test]
fn app_output_to_a_terminal_has_its_control_sequences_escaped() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("store");
    let hostile = test_apps().join("hostile.wasm");
    // Not a terminal: byte for byte.
    let o = artifacts(&dir, &["run", hostile.to_str().unwrap(), "--", "escapes"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(o.stdout.starts_with(b"title\x1b]0;pwned\x07 clip\x1b]52;"));
    assert!(o.stderr.ends_with(b"artifacts: app finished cleanly"));

    // A terminal: util-linux `script` runs the CLI on a pseudo-terminal.
    if !Path::new("/usr/bin/script").exists() {
        eprintln!("skipped: no /usr/bin/script for a pseudo-terminal");
        return;
    }
    let command = format!(
        "{} --dir {} run {} -- escapes; echo \"exit $?\"",
        env!("CARGO_BIN_EXE_artifacts"),
        dir.display(),
        hostile.display()
    );
    let o = Command::new("/usr/bin/script")
        .args(["-qec", &command, "/dev/null"])
        .env(
            "XDG_CONFIG_HOME",
            std::env::temp_dir().join("artifacts-test-config"),
        )
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    let shown = String::from_utf8(o.stdout.clone())
        .unwrap()
        .replace("\r\n", "\n");
    eprintln!("{shown}");
    assert!(shown.contains("exit 0"), "{shown}");
    for raw in [
        &b"\x1b"[..],
        b"\x07",
        b"\x9b",
        b"\xc2\x9b",
        "\u{202e}".as_bytes(),
        b"\x7f",
        b"hidden\r",
    ] {
        assert!(
            !o.stdout.windows(raw.len()).any(|w| w == raw),
            "{raw:?} reached the terminal: {shown}"
        );
    }
    for visible in [
        r"title\x1b]0;pwned\x07 clip\x1b]52;c;ZXZpbA==\x07 clear\x1b[2J\x1b[H",
        r"hidden\x0dshown \x9b31m \u{9b}31m bell\x07 del\x7f",
        "rtl \\u{202e}txt.exe tab\there é ✓\n",
        r"\x1b[31mred\x1b[0m",
        // The app's unfinished line is ended, so nothing the host prints joins it.
        "\nartifacts: app finished cleanly\nexit 0",
    ] {
        assert!(shown.contains(visible), "{visible:?} not in {shown}");
    }

    // The host's own message on a terminal is bold; app output cannot be.
    let command = format!(
        "{} --dir {} run {} --max-output 10 -- escapes",
        env!("CARGO_BIN_EXE_artifacts"),
        dir.display(),
        hostile.display()
    );
    let o = Command::new("/usr/bin/script")
        .args(["-qec", &command, "/dev/null"])
        .env(
            "XDG_CONFIG_HOME",
            std::env::temp_dir().join("artifacts-test-config"),
        )
        .env_remove("NO_COLOR")
        .env("TERM", "xterm")
        .output()
        .unwrap();
    let shown = String::from_utf8(o.stdout.clone())
        .unwrap()
        .replace("\r\n", "\n");
    assert!(
        shown.starts_with("title\\x1b]0;p\n\x1b[1martifacts: app app-"),
        "{shown:?}"
    );
    assert!(
        shown.contains("output limit of 10 bytes\x1b[0m\n"),
        "{shown:?}"
    );
}

#[test]
fn run_stops_an_app_whose_reader_stopped_reading() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("store");
    let hostile = hostile_compiled(&dir);
    let hostile = hostile.as_str();
    // Standard output is a pipe nobody reads: it fills at 64 KiB and the app's next write waits.
    let started = std::time::Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_artifacts"))
        .arg("--dir")
        .arg(&dir)
        .args(["run", hostile, "--timeout", "1", "--", "flood", "100000000"])
        .env(
            "XDG_CONFIG_HOME",
            std::env::temp_dir().join("artifacts-test-config"),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Standard error is read (the host reports there); standard output never is.
    let mut stderr_pipe = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut err = String::new();
        std::io::Read::read_to_string(&mut stderr_pipe, &mut err).unwrap();
        err
    });
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > std::time::Duration::from_secs(20) {
            child.kill().unwrap();
            panic!("still running after 20 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    let took = started.elapsed().as_secs_f64();
    let err = reader.join().unwrap();
    let err = &err[err.find("artifacts:").unwrap_or(0)..];
    assert_eq!(status.code(), Some(125), "{err}");
    assert!(err.contains("wall-clock limit of 1s"), "{err}");
    eprintln!("stalled reader: the CLI exited after {took:.3} s (limit 1 s)");
    assert!(took < 2.5, "took {took:.3} s");
}

#[test]
fn tag_sets_moves_lists_and_removes_names_across_processes() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("store");
    let (f1, f2) = (work.path().join("v1"), work.path().join("v2"));
    std::fs::write(&f1, b"plugin v1").unwrap();
    std::fs::write(&f2, b"plugin v2").unwrap();
    let (v1, v2) = (put(&dir, &f1, &[]), put(&dir, &f2, &[]));
    let ok = |args: &[&str]| {
        let o = artifacts(&dir, args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        stdout(&o)
    };
    assert_eq!(ok(&["tag", "set", "plugin@latest", &v1]), "");
    assert_eq!(ok(&["tag", "get", "plugin@latest"]), format!("{v1}\n"));
    // Compare-and-swap: refused from the wrong place, nothing changed.
    let o = artifacts(&dir, &["tag", "set", "plugin@latest", &v2, "--expect", &v2]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("points at {v1}")),
        "{}",
        stderr(&o)
    );
    assert_eq!(ok(&["tag", "get", "plugin@latest"]), format!("{v1}\n"));
    assert_eq!(
        ok(&["tag", "set", "plugin@latest", &v2, "--expect", &v1]),
        ""
    );
    assert_eq!(ok(&["tag", "set", "plugin@1", &format!("blake3:{v1}")]), "");
    assert_eq!(
        ok(&["tag", "set", "plugin@1", &v1]),
        format!("{v1}\n"),
        "prints what it pointed at"
    );
    assert_eq!(
        ok(&["tag", "ls", "plugin@"]),
        format!("plugin@1  {v1}\nplugin@latest  {v2}\n")
    );
    let json: serde_json::Value = serde_json::from_str(&ok(&["tag", "ls", "--json"])).unwrap();
    assert_eq!(json[1]["name"], "plugin@latest");
    assert_eq!(json[1]["hash"], v2.as_str());
    // A named artifact outlives its release; its last name takes it.
    assert_eq!(ok(&["release", &v2]), "0\n");
    assert_eq!(ok(&["get", &v2]).as_bytes(), b"plugin v2");
    assert_eq!(ok(&["tag", "rm", "plugin@latest"]), format!("{v2}\n"));
    let o = artifacts(&dir, &["get", &v2]);
    assert_eq!(o.status.code(), Some(3), "deleted with its last name");
    let o = artifacts(&dir, &["tag", "get", "plugin@latest"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(
        stderr(&o).contains("no name \"plugin@latest\""),
        "{}",
        stderr(&o)
    );
    let o = artifacts(&dir, &["tag", "set", "bad\u{7}name", &v1]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("invalid name"), "{}", stderr(&o));
}

#[test]
fn run_lets_an_app_launch_only_with_allow_launch() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("store");
    let launcher = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/apps/launcher.wasm");
    let run = |extra: &[&str]| {
        let mut args = vec!["run", launcher.to_str().unwrap(), "--app-id", "host-app"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--", "try"]);
        let o = artifacts(&dir, &args);
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o)
    };
    assert_eq!(run(&[]).trim(), "try: LaunchError::NotAllowed");
    let out = run(&["--allow-launch"]);
    assert!(
        out.starts_with("try: exit 0: v1 as host-app/plugin: stdin \"\""),
        "{out}"
    );
}

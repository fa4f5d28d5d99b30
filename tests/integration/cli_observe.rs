//! The command line's digests (`blake3:<hex>` in, `--digest` out), `-v`
//! logging, `health`, and progress bars only on a terminal.

use std::path::Path;
use std::process::{Command, Output};

use crate::fixture::pattern;

fn command(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_artifacts"));
    c.arg("--dir")
        .arg(dir)
        .args(args)
        .env_remove("ARTIFACTS_DIR")
        .env_remove("ARTIFACTS_S3")
        .env_remove("RUST_LOG")
        .env(
            "XDG_CONFIG_HOME",
            std::env::temp_dir().join("artifacts-test-config"),
        );
    c
}

fn artifacts(dir: &Path, args: &[&str]) -> Output {
    command(dir, args).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs and asserts success; the standard output, trimmed.
fn ok(dir: &Path, args: &[&str]) -> String {
    let o = artifacts(dir, args);
    assert!(o.status.success(), "{args:?}: {}", text(&o.stderr));
    text(&o.stdout).trim().to_owned()
}

#[test]
fn every_hash_argument_takes_the_digest_form_and_digest_prints_it() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("store");
    let file = work.path().join("a");
    std::fs::write(&file, pattern(3000)).unwrap();
    let hex = ok(&dir, &["put", file.to_str().unwrap()]);
    assert_eq!(hex.len(), 64, "bare hex by default: {hex}");
    let digest = format!("blake3:{hex}");
    assert_eq!(
        ok(&dir, &["--digest", "put", file.to_str().unwrap()]),
        digest
    );
    assert_eq!(
        ok(&dir, &["put", "--digest", file.to_str().unwrap()]),
        digest,
        "global"
    );

    assert_eq!(artifacts(&dir, &["get", &digest]).stdout, pattern(3000));
    assert_eq!(
        artifacts(&dir, &["get", &digest, "--range", "10..20"]).stdout,
        &pattern(3000)[10..20]
    );
    let out = work.path().join("out");
    ok(&dir, &["get", &digest, "-o", out.to_str().unwrap()]);
    assert_eq!(std::fs::read(&out).unwrap(), pattern(3000));
    assert!(ok(&dir, &["stat", &digest]).starts_with(&format!("hash:            {hex}\n")));
    assert!(
        ok(&dir, &["--digest", "stat", &hex]).starts_with(&format!("hash:            {digest}\n"))
    );
    let json: serde_json::Value =
        serde_json::from_str(&ok(&dir, &["stat", &digest, "--json", "--digest"])).unwrap();
    assert_eq!(json["hash"], digest.as_str());
    let json: serde_json::Value =
        serde_json::from_str(&ok(&dir, &["stat", &digest, "--json"])).unwrap();
    assert_eq!(json["hash"], hex.as_str());
    assert!(ok(&dir, &["ls"]).starts_with(&format!("{hex}  ")));
    assert!(ok(&dir, &["ls", "--digest"]).starts_with(&format!("{digest}  ")));
    let json: serde_json::Value =
        serde_json::from_str(&ok(&dir, &["ls", "--json", "--digest"])).unwrap();
    assert_eq!(json[0]["hash"], digest.as_str());

    // Names: set, --expect, get, ls, rm, each way round.
    assert_eq!(ok(&dir, &["tag", "set", "v", &digest]), "");
    assert_eq!(
        ok(&dir, &["tag", "set", "v", &hex, "--expect", &digest]),
        ""
    );
    assert_eq!(ok(&dir, &["tag", "get", "v"]), hex);
    assert_eq!(ok(&dir, &["tag", "get", "v", "--digest"]), digest);
    assert_eq!(ok(&dir, &["tag", "ls", "--digest"]), format!("v  {digest}"));
    let json: serde_json::Value =
        serde_json::from_str(&ok(&dir, &["--digest", "tag", "ls", "--json"])).unwrap();
    assert_eq!(json[0]["hash"], digest.as_str());
    assert_eq!(json[0]["name"], "v");
    assert_eq!(ok(&dir, &["--digest", "tag", "rm", "v"]), digest);

    // run: a stored app and its grants by digest (a stored non-component
    // is refused as an app, after being found by its digest).
    let o = artifacts(&dir, &["run", &digest, "--grant", &digest]);
    assert_eq!(o.status.code(), Some(125), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("cannot load app"),
        "{}",
        text(&o.stderr)
    );

    assert_eq!(ok(&dir, &["release", &digest]), "2", "three puts");
    ok(&dir, &["rm", &digest]);
    let o = artifacts(&dir, &["stat", &digest]);
    assert_eq!(o.status.code(), Some(3), "gone: {}", text(&o.stderr));

    // `sha256:` is another address (an alias, which only pushed or pulled
    // content has: none here), anything else is not a hash: refused.
    let o = artifacts(&dir, &["get", &format!("sha256:{hex}")]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    for bad in [
        format!("BLAKE3:{hex}"),
        format!("blake3:{}", hex.to_uppercase()),
        format!("blake3:{}", &hex[..63]),
        format!("blake3:blake3:{hex}"),
    ] {
        let o = artifacts(&dir, &["get", &bad]);
        assert_eq!(o.status.code(), Some(1), "{bad}");
        assert!(
            text(&o.stderr).contains("invalid hash"),
            "{}",
            text(&o.stderr)
        );
        assert!(o.stdout.is_empty());
    }
}

#[test]
fn verbose_logs_a_line_per_operation_to_stderr_and_nothing_without_it() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("store");
    let file = work.path().join("a");
    std::fs::write(&file, pattern(1500)).unwrap();
    let quiet = artifacts(&dir, &["put", file.to_str().unwrap()]);
    assert!(quiet.status.success());
    assert!(quiet.stderr.is_empty(), "{}", text(&quiet.stderr));
    let hash = text(&quiet.stdout).trim().to_owned();

    let loud = artifacts(&dir, &["-v", "put", file.to_str().unwrap()]);
    assert!(loud.status.success());
    assert_eq!(text(&loud.stdout).trim(), hash, "standard output unchanged");
    let log = text(&loud.stderr);
    let line = log
        .lines()
        .find(|l| l.contains("put_from") && l.contains("close"))
        .unwrap_or_else(|| panic!("no line for the put: {log}"));
    for part in [
        "INFO",
        "operation=\"put_from\"",
        "owner=@host",
        &format!("hash={hash}"),
        "outcome=\"ok\"",
        "duration_us=",
    ] {
        assert!(line.contains(part), "{part} missing from {line}");
    }

    let o = artifacts(&dir, &["-v", "get", &Pattern::absent()]);
    assert_eq!(o.status.code(), Some(3));
    assert!(
        text(&o.stderr).contains("outcome=\"not-found\""),
        "{}",
        text(&o.stderr)
    );

    // RUST_LOG decides when it is set.
    let o = command(&dir, &["stat", &hash])
        .env("RUST_LOG", "artifacts=info")
        .output()
        .unwrap();
    assert!(
        text(&o.stderr).contains("operation=\"stat\""),
        "{}",
        text(&o.stderr)
    );
    let o = command(&dir, &["-vv", "stat", &hash])
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert!(o.stderr.is_empty(), "{}", text(&o.stderr));
}

struct Pattern;

impl Pattern {
    /// A hash nothing in these tests stores.
    fn absent() -> String {
        blake3::hash(b"absent from every store")
            .to_hex()
            .to_string()
    }
}

#[test]
fn health_reports_and_exits_by_it() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("store");
    let file = work.path().join("a");
    std::fs::write(&file, pattern(2000)).unwrap();
    ok(&dir, &["put", file.to_str().unwrap()]);
    let report = ok(&dir, &["health"]);
    for part in [
        "healthy:      yes",
        "backend:      reachable, writable",
        "artifacts:    1 (2000 bytes)",
        "last gc:      none recorded",
        "quarantined:  none",
    ] {
        assert!(report.contains(part), "{part} missing from:\n{report}");
    }
    ok(&dir, &["gc", "--grace", "0"]);
    let json: serde_json::Value = serde_json::from_str(&ok(&dir, &["health", "--json"])).unwrap();
    assert_eq!(json["healthy"], true);
    assert_eq!(json["backend"]["writable"], true);
    assert_eq!(json["artifacts"], 1);
    assert_eq!(json["total_bytes"], 2000);
    assert_eq!(json["last_gc"]["grace_ms"], 0);
    assert!(json["last_gc"]["finished_at"].as_u64().unwrap() > 0);
    assert_eq!(json["last_gc"]["report"]["orphans_removed"], 0);
    assert_eq!(json["problems"], serde_json::json!([]));
}

#[test]
fn health_of_a_read_only_directory_exits_non_zero() {
    use std::os::unix::fs::PermissionsExt;
    let work = tempfile::tempdir().unwrap();
    std::fs::set_permissions(work.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let dir = work.path().join("store");
    let file = work.path().join("a");
    std::fs::write(&file, pattern(2000)).unwrap();
    ok(&dir, &["put", file.to_str().unwrap()]);
    // Read-only for everyone but root, which ignores permissions: run the
    // CLI as nobody then.
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    let mut readable = vec![dir.clone()];
    while let Some(d) = readable.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                readable.push(path.clone());
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o555)).unwrap();
            } else {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
            }
        }
    }
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o555)).unwrap();
    let exe = env!("CARGO_BIN_EXE_artifacts");
    let mut c = if root {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", exe]);
        c
    } else {
        Command::new(exe)
    };
    let o = c
        .arg("--dir")
        .arg(&dir)
        .args(["health", "--json"])
        .env_remove("RUST_LOG")
        .env("XDG_CONFIG_HOME", work.path().join("config"))
        .output()
        .unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    if root && o.status.code() != Some(1) && text(&o.stderr).contains("setpriv") {
        eprintln!("skipped: cannot run as another user here");
        return;
    }
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let json: serde_json::Value = serde_json::from_str(&text(&o.stdout)).unwrap();
    assert_eq!(json["healthy"], false);
    assert_eq!(json["backend"]["reachable"], true);
    assert_eq!(json["backend"]["writable"], false);
    assert_eq!(json["artifacts"], 1, "what can be read still is");
    let problems = json["problems"].to_string();
    assert!(
        problems.contains("writing a probe blob") && problems.contains("ermission denied"),
        "{problems}"
    );
}

#[cfg(feature = "s3")]
#[test]
fn health_of_an_unreachable_s3_endpoint_exits_non_zero() {
    let work = tempfile::tempdir().unwrap();
    // Nothing listens on port 9 of loopback (discard; refused).
    let start = std::time::Instant::now();
    let o = command(
        work.path(),
        &["--s3", "s3://nowhere/prefix", "health", "--json"],
    )
    .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    .env("AWS_ACCESS_KEY_ID", "GKnobody")
    .env("AWS_SECRET_ACCESS_KEY", "secret")
    .output()
    .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let json: serde_json::Value = serde_json::from_str(&text(&o.stdout)).unwrap();
    assert_eq!(json["healthy"], false);
    assert_eq!(json["backend"]["reachable"], false);
    assert!(
        json["problems"][0]
            .as_str()
            .unwrap()
            .contains("opening the store"),
        "{json}"
    );
    eprintln!("unreachable endpoint reported in {:?}", start.elapsed());
}

#[test]
fn no_progress_bar_when_standard_error_is_not_a_terminal() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("store");
    let file = work.path().join("big");
    std::fs::write(&file, pattern(64 << 20)).unwrap();
    let o = artifacts(&dir, &["put", file.to_str().unwrap()]);
    assert!(o.status.success());
    assert!(o.stderr.is_empty(), "{}", text(&o.stderr));
    let hash = text(&o.stdout).trim().to_owned();
    let out = work.path().join("out");
    let o = artifacts(&dir, &["get", &hash, "-o", out.to_str().unwrap()]);
    assert!(o.status.success());
    assert!(o.stderr.is_empty(), "{}", text(&o.stderr));
}

/// On a terminal (a pseudo-terminal from `script`), a large put and get
/// draw a bar on standard error; a small one does not.
#[test]
fn a_progress_bar_on_a_terminal_for_large_transfers() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: no `script` to give the CLI a terminal");
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("store");
    let big = work.path().join("big");
    std::fs::write(&big, pattern(80 << 20)).unwrap();
    let small = work.path().join("small");
    std::fs::write(&small, pattern(1 << 20)).unwrap();
    let on_terminal = |args: &str| {
        let exe = env!("CARGO_BIN_EXE_artifacts");
        let line = format!("{exe} --dir {} {args}", dir.display());
        let o = Command::new("script")
            .args(["-q", "-e", "-c", &line, "/dev/null"])
            .env_remove("RUST_LOG")
            .env("COLUMNS", "120")
            .env("XDG_CONFIG_HOME", work.path().join("config"))
            .output()
            .unwrap();
        assert!(o.status.success(), "{args}: {}", text(&o.stdout));
        text(&o.stdout)
    };
    let shown = on_terminal(&format!("put {}", big.display()));
    assert!(shown.contains("put") && shown.contains("MiB"), "{shown:?}");
    let hash = blake3::hash(&pattern(80 << 20)).to_hex().to_string();
    let out = work.path().join("out");
    let shown = on_terminal(&format!("get {hash} -o {}", out.display()));
    assert!(shown.contains("get") && shown.contains("MiB"), "{shown:?}");
    let shown = on_terminal(&format!("put {}", small.display()));
    assert!(!shown.contains("MiB"), "{shown:?}");
}

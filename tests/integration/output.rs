//! `get -o PATH` writes what PATH is, never destroys it: a new or regular
//! file is replaced by a rename (mode by the umask, or kept), a symlink is
//! followed, a device or FIFO is written through once the content has
//! verified, a directory is refused; and a failed or interrupted get leaves
//! each as it was.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::fixture::pattern;

/// A store with one artifact, and a way to damage it.
struct Setup {
    work: tempfile::TempDir,
    store: PathBuf,
    hash: String,
    content: Vec<u8>,
}

impl Setup {
    fn new(size: usize) -> Self {
        let work = tempfile::tempdir().unwrap();
        let store = work.path().join("store");
        let content = pattern(size);
        let file = work.path().join("content");
        fs::write(&file, &content).unwrap();
        let o = cli(&store, &["put", file.to_str().unwrap()], None);
        assert!(o.status.success(), "{}", text(&o.stderr));
        let hash = text(&o.stdout).trim().to_string();
        Setup {
            work,
            store,
            hash,
            content,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.work.path().join(name)
    }

    /// `get HASH -o path`, under umask 022.
    fn get_to(&self, path: &Path) -> Output {
        cli(
            &self.store,
            &["get", &self.hash, "-o", path.to_str().unwrap()],
            Some("022"),
        )
    }

    /// Flips one bit of the stored blob: every get fails from now on.
    fn damage(&self) {
        let blob = artifacts::FileBackend::open(&self.store)
            .unwrap()
            .blob_path(&self.hash.parse().unwrap());
        let mut bytes = fs::read(&blob).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 1;
        fs::write(&blob, &bytes).unwrap();
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The CLI on `store`, as the tests run it.
fn command(store: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_artifacts"));
    c.arg("--dir")
        .arg(store)
        .args(args)
        .env_remove("ARTIFACTS_DIR")
        .env(
            "XDG_CONFIG_HOME",
            std::env::temp_dir().join("artifacts-test-config"),
        );
    c
}

/// The CLI on `store`, optionally under a umask (through `sh`, as a user's
/// shell would set it).
fn cli(store: &Path, args: &[&str], umask: Option<&str>) -> Output {
    let exe = env!("CARGO_BIN_EXE_artifacts");
    let mut command = match umask {
        Some(mask) => {
            let mut c = Command::new("sh");
            c.arg("-c")
                .arg(format!("umask {mask} && exec \"$0\" \"$@\""))
                .arg(exe);
            c
        }
        None => Command::new(exe),
    };
    command
        .arg("--dir")
        .arg(store)
        .args(args)
        .env_remove("ARTIFACTS_DIR")
        .env(
            "XDG_CONFIG_HOME",
            std::env::temp_dir().join("artifacts-test-config"),
        )
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// Files in the work directory whose names mark them as our temporary files.
fn leftovers(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".artifacts-get."))
        .collect()
}

#[test]
fn a_new_file_gets_the_umask_mode_and_a_replaced_one_keeps_its_mode() {
    let s = Setup::new(3000);
    let new = s.path("new");
    let o = s.get_to(&new);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(fs::read(&new).unwrap(), s.content);
    assert_eq!(mode(&new), 0o644, "0666 under umask 022");

    let old = s.path("old");
    fs::write(&old, b"old").unwrap();
    fs::set_permissions(&old, fs::Permissions::from_mode(0o640)).unwrap();
    // Where we may give files away (as root), the owner is kept too.
    let given = std::os::unix::fs::chown(&old, Some(65534), Some(65534)).is_ok();
    let o = s.get_to(&old);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(fs::read(&old).unwrap(), s.content);
    assert_eq!(mode(&old), 0o640, "the replaced file's mode is kept");
    if given {
        use std::os::unix::fs::MetadataExt;
        let meta = fs::metadata(&old).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (65534, 65534), "owner kept");
    }

    // A relative path in the current directory works too.
    let o = command(Path::new("store"), &["get", &s.hash, "-o", "relative"])
        .current_dir(s.work.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(fs::read(s.path("relative")).unwrap(), s.content);
    assert!(leftovers(s.work.path()).is_empty());

    // A failed get touches neither, and leaves no temporary file.
    s.damage();
    let o = s.get_to(&old);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o.stderr));
    assert_eq!(fs::read(&old).unwrap(), s.content);
    assert_eq!(mode(&old), 0o640);
    let o = s.get_to(&s.path("never"));
    assert_eq!(o.status.code(), Some(4));
    assert!(!s.path("never").exists());
    assert!(leftovers(s.work.path()).is_empty());
}

#[test]
fn a_symlink_is_followed_not_replaced() {
    let s = Setup::new(5000);
    let target = s.path("target");
    fs::write(&target, b"before").unwrap();
    fs::set_permissions(&target, fs::Permissions::from_mode(0o600)).unwrap();
    let link = s.path("link");
    symlink("target", &link).unwrap(); // relative, as ln -s makes them
    let chain = s.path("chain");
    symlink(&link, &chain).unwrap();

    let o = s.get_to(&chain);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(
        fs::symlink_metadata(&chain)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(fs::read_link(&link).unwrap(), Path::new("target"));
    assert_eq!(fs::read(&target).unwrap(), s.content);
    assert_eq!(mode(&target), 0o600);

    // A dangling link creates what it points at.
    let dangling = s.path("dangling");
    symlink("created", &dangling).unwrap();
    let o = s.get_to(&dangling);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        fs::symlink_metadata(&dangling)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(fs::read(s.path("created")).unwrap(), s.content);

    // A loop is a clear error.
    symlink("loop-b", s.path("loop-a")).unwrap();
    symlink("loop-a", s.path("loop-b")).unwrap();
    let o = s.get_to(&s.path("loop-a"));
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("symlinks"), "{}", text(&o.stderr));

    // Failed: the link and its target are as they were.
    fs::write(&target, b"before").unwrap();
    s.damage();
    let o = s.get_to(&link);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o.stderr));
    assert!(
        fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(fs::read(&target).unwrap(), b"before");
    assert!(leftovers(s.work.path()).is_empty());
}

#[test]
fn a_directory_is_refused_with_a_clear_error() {
    let s = Setup::new(100);
    let dir = s.path("outdir");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("inside"), b"kept").unwrap();
    let o = s.get_to(&dir);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("is a directory"),
        "{}",
        text(&o.stderr)
    );
    assert!(fs::metadata(&dir).unwrap().is_dir());
    assert_eq!(fs::read(dir.join("inside")).unwrap(), b"kept");
    // Through a symlink too.
    symlink(&dir, s.path("to-dir")).unwrap();
    let o = s.get_to(&s.path("to-dir"));
    assert_eq!(o.status.code(), Some(1));
    assert!(
        fs::symlink_metadata(s.path("to-dir"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

#[test]
fn a_device_node_is_written_through_never_replaced() {
    let s = Setup::new(20 << 20); // over 16 MiB: held in a temporary file
    let node = s.path("null");
    // A private copy of /dev/null (never the machine's own): needs CAP_MKNOD.
    let made = Command::new("mknod")
        .arg(&node)
        .args(["c", "1", "3"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !made {
        eprintln!("skipped: mknod is not permitted here");
        return;
    }
    let o = s.get_to(&node);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let meta = fs::symlink_metadata(&node).unwrap();
    assert!(meta.file_type().is_char_device(), "the node was replaced");
    assert_eq!(
        meta.permissions().mode() & 0o777,
        0o644,
        "its mode untouched"
    );
    // Through a symlink, as /dev/stdout and friends are.
    symlink(&node, s.path("to-null")).unwrap();
    let o = s.get_to(&s.path("to-null"));
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        fs::symlink_metadata(s.path("to-null"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(fs::metadata(&node).unwrap().file_type().is_char_device());
    // Failed and interrupted gets leave it a device too.
    s.damage();
    let o = s.get_to(&node);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o.stderr));
    assert!(fs::metadata(&node).unwrap().file_type().is_char_device());
    assert!(leftovers(s.work.path()).is_empty());
}

/// A reader of the FIFO at `path`: opens it (waiting for a writer) and
/// reads it to the end.
fn read_in_background(path: &Path) -> std::thread::JoinHandle<Vec<u8>> {
    let path = path.to_path_buf();
    std::thread::spawn(move || {
        let mut got = Vec::new();
        fs::File::open(&path)
            .unwrap()
            .read_to_end(&mut got)
            .unwrap();
        got
    })
}

#[test]
fn a_fifo_gets_only_verified_content_and_is_never_replaced() {
    let s = Setup::new(70_000);
    let fifo = s.path("fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let reader = read_in_background(&fifo);
    let o = s.get_to(&fifo);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(reader.join().unwrap(), s.content);
    assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());

    // A failed get never opens it: the reader sees only what we write next.
    s.damage();
    let reader = read_in_background(&fifo);
    let o = s.get_to(&fifo);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o.stderr));
    assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
    fs::OpenOptions::new()
        .write(true)
        .open(&fifo)
        .unwrap()
        .write_all(b"after")
        .unwrap();
    assert_eq!(reader.join().unwrap(), b"after");
}

#[test]
fn standard_output_named_as_a_path_is_written_through() {
    let s = Setup::new(4096);
    // A link of our own to /proc/self/fd/1 (what /dev/stdout is), so that a
    // regression would replace this link, not the machine's /dev/stdout.
    let link = s.path("stdout");
    symlink("/proc/self/fd/1", &link).unwrap();
    let o = s.get_to(&link); // standard output is a pipe here
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(o.stdout, s.content);
    assert!(
        fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );

    // Standard output redirected to a regular file, appending (`>> log`):
    // written after what is there, never truncating it.
    let log = s.path("log");
    fs::write(&log, b"earlier lines\n").unwrap();
    let o = command(&s.store, &["get", &s.hash, "-o", link.to_str().unwrap()])
        .stdout(fs::OpenOptions::new().append(true).open(&log).unwrap())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let mut expected = b"earlier lines\n".to_vec();
    expected.extend_from_slice(&s.content);
    assert!(
        fs::read(&log).unwrap() == expected,
        "the log was not appended to"
    );

    // Redirected with `>` (truncated by the shell): written in place.
    let file = s.path("redirected");
    let o = command(&s.store, &["get", &s.hash, "-o", link.to_str().unwrap()])
        .stdout(fs::File::create(&file).unwrap())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(fs::read(&file).unwrap(), s.content);
    assert!(leftovers(s.work.path()).is_empty());
}

#[test]
fn a_read_only_directory_is_a_clear_error_and_its_file_untouched() {
    let s = Setup::new(1000);
    // Root ignores directory permissions: run the CLI as nobody then.
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    let area = s.path("area");
    fs::create_dir(&area).unwrap();
    fs::set_permissions(s.work.path(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(&area, fs::Permissions::from_mode(0o777)).unwrap();
    let ro = area.join("ro");
    fs::create_dir(&ro).unwrap();
    let out = ro.join("out");
    fs::write(&out, b"old").unwrap();
    fs::set_permissions(&out, fs::Permissions::from_mode(0o666)).unwrap();
    fs::set_permissions(&ro, fs::Permissions::from_mode(0o555)).unwrap();
    let content = s.path("content");
    fs::set_permissions(&content, fs::Permissions::from_mode(0o644)).unwrap();
    let as_user = |args: &[&str]| -> Output {
        let exe = env!("CARGO_BIN_EXE_artifacts");
        let mut c = if root {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups", exe]);
            c
        } else {
            Command::new(exe)
        };
        c.arg("--dir")
            .arg(area.join("store"))
            .args(args)
            .env("XDG_CONFIG_HOME", area.join("config"))
            .output()
            .unwrap()
    };
    let o = as_user(&["put", content.to_str().unwrap()]);
    if root && !o.status.success() && text(&o.stderr).contains("setpriv") {
        eprintln!("skipped: cannot run as another user here");
        return;
    }
    assert!(o.status.success(), "{}", text(&o.stderr));
    let hash = text(&o.stdout).trim().to_string();
    let o = as_user(&["get", &hash, "-o", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.contains("cannot create a file beside") && err.contains("ermission denied"),
        "{err}"
    );
    assert_eq!(fs::read(&out).unwrap(), b"old");
    fs::set_permissions(&ro, fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn an_interrupted_get_leaves_a_regular_file_old_or_new_never_partial() {
    let s = Setup::new(48 << 20);
    let out = s.path("out");
    let old = pattern(1000);
    for delay_ms in [0u64, 5, 20, 60, 150, 400] {
        fs::write(&out, &old).unwrap();
        let mut child = command(&s.store, &["get", &s.hash, "-o", out.to_str().unwrap()])
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        let now = fs::read(&out).unwrap();
        assert!(
            now == old || now == s.content,
            "killed after {delay_ms} ms: {} bytes, neither old nor new",
            now.len()
        );
    }
}

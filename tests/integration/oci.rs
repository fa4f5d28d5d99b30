//! `artifacts push` and `artifacts pull` against a real registry (Debian's
//! `docker-registry`, the CNCF distribution registry, on 127.0.0.1 with its
//! storage in a temporary directory) and a real independent client (the
//! `oras` Python package): both directions byte for byte, the wkg layout,
//! pull by digest, and what a registry must not make us do (a tampered
//! layer, a layer over the store's limit, two layers, a manifest too large).
//!
//! Skipped, with the reason printed, when the registry or oras is missing,
//! unless `ARTIFACTS_REQUIRE_REGISTRY` is set (`.ci/run` sets it): then they fail.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::Digest as _;

/// The wasm media types wkg and the CNCF layout use.
const CONFIG_TYPE: &str = "application/vnd.wasm.config.v0+json";
const LAYER_TYPE: &str = "application/wasm";
const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";

/// The oras side, one command per call: `push HOST REF FILE...` (each file
/// `PATH:MEDIATYPE`, the config last as `PATH:MEDIATYPE`), `pull REF DIR`,
/// `manifest URL` (raw bytes to stdout), `put-manifest URL FILE`.
const ORAS: &str = r#"
import sys, json
cmd = sys.argv[1]
if cmd == "push":
    import oras.client
    host, ref, files, config = sys.argv[2], sys.argv[3], sys.argv[4:-1], sys.argv[-1]
    c = oras.client.OrasClient(hostname=host, insecure=True)
    r = c.push(target=ref, files=files, manifest_config=config,
               disable_path_validation=True, quiet=True)
    print(r.headers["Docker-Content-Digest"])
elif cmd == "pull":
    import oras.client
    ref, outdir = sys.argv[2], sys.argv[3]
    host = ref.split("/")[0]
    c = oras.client.OrasClient(hostname=host, insecure=True)
    for f in c.pull(target=ref, outdir=outdir):
        print(f)
elif cmd == "manifest":
    import requests
    r = requests.get(sys.argv[2], headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
    r.raise_for_status()
    sys.stdout.buffer.write(r.content)
elif cmd == "put-manifest":
    import requests
    body = open(sys.argv[3], "rb").read()
    r = requests.put(sys.argv[2], data=body,
                     headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    r.raise_for_status()
"#;

fn required() -> bool {
    std::env::var_os("ARTIFACTS_REQUIRE_REGISTRY").is_some()
}

/// A registry on 127.0.0.1, stopped when dropped.
struct Registry {
    child: Child,
    host: String,
    storage: PathBuf,
    work: tempfile::TempDir,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn registry_binary() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("docker-registry"))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| {
        let fixed = PathBuf::from("/usr/bin/docker-registry");
        fixed.is_file().then_some(fixed)
    })
}

fn oras_missing() -> Option<String> {
    let o = Command::new("python3")
        .args(["-c", "import oras.client, requests"])
        .output();
    match o {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(format!(
            "the oras Python package is missing: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Some(format!("python3 cannot run: {e}")),
    }
}

/// Starts a registry, or `None` after printing why the test skips.
fn registry_or_skip(test: &str) -> Option<Registry> {
    registry_with_auth_or_skip(test, None)
}

/// [`registry_or_skip`], with basic auth (htpasswd, bcrypt) for `user:password`.
fn registry_with_auth_or_skip(test: &str, auth: Option<(&str, &str)>) -> Option<Registry> {
    match start_registry(auth) {
        Ok(r) => Some(r),
        Err(reason) if !required() => {
            eprintln!("skipped {test}: {reason}");
            None
        }
        Err(reason) => {
            panic!("{test} needs a registry and oras (ARTIFACTS_REQUIRE_REGISTRY is set): {reason}")
        }
    }
}

fn start_registry(auth: Option<(&str, &str)>) -> Result<Registry, String> {
    let binary =
        registry_binary().ok_or("no docker-registry (Debian: apt-get install docker-registry)")?;
    if let Some(reason) = oras_missing() {
        return Err(reason);
    }
    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    let storage = work.path().join("storage");
    // A free port: bound, read, let go (the registry binds it next).
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let host = format!("127.0.0.1:{port}");
    let mut yaml = format!(
        "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {host}\n",
        storage.display()
    );
    if let Some((user, password)) = auth {
        // The registry takes bcrypt only: Python's crypt makes it (glibc).
        let o = Command::new("python3")
            .args(["-W", "ignore", "-c"])
            .arg("import crypt, sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH)))")
            .arg(password)
            .output()
            .map_err(|e| e.to_string())?;
        let hashed = text(&o.stdout).trim().to_string();
        if !o.status.success() || !hashed.starts_with("$2") {
            return Err(format!(
                "cannot make a bcrypt password: {}",
                text(&o.stderr)
            ));
        }
        let htpasswd = work.path().join("htpasswd");
        std::fs::write(&htpasswd, format!("{user}:{hashed}\n")).map_err(|e| e.to_string())?;
        yaml.push_str(&format!(
            "auth:\n  htpasswd:\n    realm: test\n    path: {}\n",
            htpasswd.display()
        ));
    }
    let config = work.path().join("config.yml");
    std::fs::write(&config, yaml).map_err(|e| e.to_string())?;
    let child = Command::new(&binary)
        .arg("serve")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{}: {e}", binary.display()))?;
    let registry = Registry {
        child,
        host,
        storage,
        work,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(mut s) = TcpStream::connect(&registry.host) {
            let _ = s.write_all(b"GET /v2/ HTTP/1.0\r\n\r\n");
            let mut line = String::new();
            let read = BufReader::new(s).read_line(&mut line).is_ok();
            if read && (line.contains(" 200 ") || line.contains(" 401 ")) {
                return Ok(registry);
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!(
        "the registry did not answer on {} within 20 s",
        registry.host
    ))
}

impl Registry {
    fn dir(&self) -> &Path {
        self.work.path()
    }

    /// oras pushes `files` (`(path, media type)`) with a wasm config;
    /// returns the manifest's digest.
    fn oras_push(&self, repo_tag: &str, files: &[(&Path, &str)]) -> String {
        let config = self.dir().join("config.json");
        std::fs::write(&config, br#"{"architecture":"wasm","os":"wasip1"}"#).unwrap();
        let mut args: Vec<String> = vec![
            "push".into(),
            self.host.clone(),
            format!("{}/{repo_tag}", self.host),
        ];
        args.extend(files.iter().map(|(p, t)| format!("{}:{t}", p.display())));
        args.push(format!("{}:{CONFIG_TYPE}", config.display()));
        let o = python(&args);
        assert!(o.status.success(), "oras push: {}", text(&o.stderr));
        text(&o.stdout).trim().to_string()
    }

    /// oras pulls `repo_tag` into a new directory; returns its files.
    fn oras_pull(&self, repo_ref: &str) -> Vec<PathBuf> {
        let out = tempfile::tempdir_in(self.dir()).unwrap().keep();
        let o = python(&[
            "pull".into(),
            format!("{}/{repo_ref}", self.host),
            out.display().to_string(),
        ]);
        assert!(o.status.success(), "oras pull: {}", text(&o.stderr));
        text(&o.stdout).lines().map(PathBuf::from).collect()
    }

    fn manifest(&self, repo: &str, reference: &str) -> Vec<u8> {
        let o = python(&[
            "manifest".into(),
            format!("http://{}/v2/{repo}/manifests/{reference}", self.host),
        ]);
        assert!(o.status.success(), "manifest: {}", text(&o.stderr));
        o.stdout
    }

    fn put_manifest(&self, repo: &str, tag: &str, manifest: &serde_json::Value) {
        let file = self.dir().join("manifest.json");
        std::fs::write(&file, serde_json::to_vec(manifest).unwrap()).unwrap();
        let o = python(&[
            "put-manifest".into(),
            format!("http://{}/v2/{repo}/manifests/{tag}", self.host),
            file.display().to_string(),
        ]);
        assert!(o.status.success(), "put manifest: {}", text(&o.stderr));
    }

    /// Where the registry keeps the blob `sha256:HEX`.
    fn blob_data(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.storage
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

fn python(args: &[String]) -> Output {
    Command::new("python3")
        .arg("-c")
        .arg(ORAS)
        .args(args)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The CLI on the store `dir`, with no docker credentials (anonymous).
fn cli(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_artifacts"));
    cmd.arg("--dir")
        .arg(dir)
        .args(args)
        .env_remove("ARTIFACTS_DIR")
        .env("DOCKER_CONFIG", dir.with_extension("docker"))
        .env(
            "XDG_CONFIG_HOME",
            std::env::temp_dir().join("artifacts-test-config"),
        );
    cmd
}

fn artifacts(dir: &Path, args: &[&str]) -> Output {
    cli(dir, args).output().unwrap()
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "failed: {}", text(&o.stderr));
    text(&o.stdout).trim().to_string()
}

fn count(store: &Path) -> usize {
    let o = artifacts(store, &["ls", "--json"]);
    let all: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    all.as_array().unwrap().len()
}

/// The sha256 digest, from the sha2 crate directly (not the store's type).
fn sha256(bytes: &[u8]) -> String {
    let digest: [u8; 32] = sha2::Sha256::digest(bytes).into();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// A valid core module of about `len` bytes: the preamble and one custom
/// section of patterned bytes.
fn module(len: usize) -> Vec<u8> {
    let payload: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
    let mut body = vec![3, b'p', b'a', b'd'];
    body.extend_from_slice(&payload);
    let mut out = b"\0asm\x01\0\0\0".to_vec();
    out.push(0);
    let mut n = body.len();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        out.push(if n == 0 { byte } else { byte | 0x80 });
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&body);
    out
}

#[test]
fn pull_stores_what_oras_pushed_and_answers_to_its_sha256() {
    let Some(reg) = registry_or_skip("oci::pull_stores_what_oras_pushed") else {
        return;
    };
    let content = module(300_000);
    let file = reg.dir().join("hello.wasm");
    std::fs::write(&file, &content).unwrap();
    reg.oras_push("wasm/hello:v1", &[(&file, LAYER_TYPE)]);

    let store = reg.dir().join("store");
    let source = format!("oci://{}/wasm/hello:v1", reg.host);
    let hash = ok(&artifacts(&store, &["pull", &source, "--name", "hello"]));
    assert_eq!(hash, blake3::hash(&content).to_hex().as_str());
    assert_eq!(artifacts(&store, &["get", &hash]).stdout, content);
    assert_eq!(ok(&artifacts(&store, &["tag", "get", "hello"])), hash);

    // The sha256 alias: get and stat by the layer's digest.
    let digest = sha256(&content);
    assert_eq!(artifacts(&store, &["get", &digest]).stdout, content);
    let stat = ok(&artifacts(&store, &["stat", &digest, "--json"]));
    let stat: serde_json::Value = serde_json::from_str(&stat).unwrap();
    assert_eq!(stat["hash"], hash.as_str());
    assert_eq!(stat["type"], "wasm-module");

    // Gone with its artifact: removed, the alias answers nothing (exit 3),
    // and gc deletes it.
    ok(&artifacts(&store, &["rm", &hash]));
    let o = artifacts(&store, &["get", &digest]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains(&digest), "{}", text(&o.stderr));
    let gc = ok(&artifacts(&store, &["gc", "--json"]));
    let gc: serde_json::Value = serde_json::from_str(&gc).unwrap();
    assert_eq!(gc["aliases_removed"], 1);
    assert!(
        std::fs::read_dir(store.join("aliases"))
            .unwrap()
            .all(|shard| std::fs::read_dir(shard.unwrap().path())
                .unwrap()
                .next()
                .is_none()),
        "an alias file outlived gc"
    );
}

#[test]
fn oras_pulls_what_push_published_byte_for_byte_in_wkg_layout() {
    let Some(reg) = registry_or_skip("oci::oras_pulls_what_push_published") else {
        return;
    };
    let component_file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/apps/plugin.wasm");
    let component = std::fs::read(&component_file).unwrap();
    let store = reg.dir().join("store");
    let hash = ok(&artifacts(
        &store,
        &["put", component_file.to_str().unwrap()],
    ));
    ok(&artifacts(&store, &["tag", "set", "plugin", &hash]));

    // By name; prints the manifest's digest.
    let target = format!("oci://{}/wasm/plugin:1.0.0", reg.host);
    let manifest_digest = ok(&artifacts(&store, &["push", "plugin", &target]));
    let files = reg.oras_pull("wasm/plugin:1.0.0");
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(
        std::fs::read(&files[0]).unwrap(),
        component,
        "oras got other bytes"
    );

    let raw = reg.manifest("wasm/plugin", "1.0.0");
    assert_eq!(sha256(&raw), manifest_digest);
    let manifest: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(manifest["schemaVersion"], 2);
    assert_eq!(manifest["mediaType"], MANIFEST_TYPE);
    assert_eq!(manifest["config"]["mediaType"], CONFIG_TYPE);
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1);
    assert_eq!(layers[0]["mediaType"], LAYER_TYPE);
    assert_eq!(layers[0]["digest"], sha256(&component).as_str());
    assert_eq!(layers[0]["size"], component.len() as u64);

    // The config: wkg's fields, the component's world.
    let config_digest = manifest["config"]["digest"].as_str().unwrap();
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(reg.blob_data(config_digest)).unwrap()).unwrap();
    assert_eq!(config["architecture"], "wasm");
    assert_eq!(config["os"], "wasip2");
    assert_eq!(config["layerDigests"][0], sha256(&component).as_str());
    let exports = config["component"]["exports"].as_array().unwrap();
    assert!(
        exports
            .iter()
            .any(|e| e.as_str().unwrap().starts_with("wasi:cli/run@")),
        "{config}"
    );
    assert!(
        !config["component"]["imports"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // Went to OCI: answers to its sha256 too.
    let o = artifacts(&store, &["stat", &sha256(&component), "--json"]);
    let stat: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(stat["hash"], hash.as_str());

    // Not a wasm binary: refused, nothing pushed.
    let text_file = reg.dir().join("notes.txt");
    std::fs::write(&text_file, b"just text").unwrap();
    let notes = ok(&artifacts(&store, &["put", text_file.to_str().unwrap()]));
    let o = artifacts(
        &store,
        &["push", &notes, &format!("oci://{}/wasm/notes:1", reg.host)],
    );
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("not a wasm binary"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn a_tampered_layer_is_refused_and_nothing_is_stored() {
    let Some(reg) = registry_or_skip("oci::a_tampered_layer_is_refused") else {
        return;
    };
    // Small (held in one piece) and large (staged in pieces): neither is kept.
    for (tag, len) in [("small", 20_000), ("large", 9 << 20)] {
        let content = module(len);
        let file = reg.dir().join(format!("{tag}.wasm"));
        std::fs::write(&file, &content).unwrap();
        reg.oras_push(&format!("wasm/tampered:{tag}"), &[(&file, LAYER_TYPE)]);
        let digest = sha256(&content);
        // Other bytes of the same length, where the registry keeps the blob.
        let mut other = content.clone();
        for b in other.iter_mut().skip(100) {
            *b ^= 0x5a;
        }
        std::fs::write(reg.blob_data(&digest), &other).unwrap();

        let store = reg.dir().join("store");
        ok(&artifacts(&store, &["put", "/dev/null"]));
        let before = count(&store);
        let source = format!("oci://{}/wasm/tampered:{tag}", reg.host);
        let o = artifacts(&store, &["pull", &source, "--name", "tampered"]);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(4), "{err}");
        assert!(err.contains(&digest), "names the expected digest: {err}");
        assert!(
            err.contains(&sha256(&other)),
            "names the actual digest: {err}"
        );
        assert_eq!(count(&store), before, "something was stored");
        let o = artifacts(&store, &["tag", "get", "tampered"]);
        assert_eq!(o.status.code(), Some(3), "the name was set");
        let blake = blake3::hash(&other).to_hex().to_string();
        assert_eq!(artifacts(&store, &["stat", &blake]).status.code(), Some(3));
        let staged = std::fs::read_dir(store.join("tmp")).unwrap().count();
        assert_eq!(staged, 0, "a staged file was left behind");
    }
}

#[test]
fn pull_by_digest_and_a_wrong_digest() {
    let Some(reg) = registry_or_skip("oci::pull_by_digest") else {
        return;
    };
    let content = module(5_000);
    let file = reg.dir().join("m.wasm");
    std::fs::write(&file, &content).unwrap();
    let manifest_digest = reg.oras_push("wasm/bydigest:v1", &[(&file, LAYER_TYPE)]);
    let store = reg.dir().join("store");
    let source = format!("oci://{}/wasm/bydigest@{manifest_digest}", reg.host);
    let hash = ok(&artifacts(&store, &["pull", &source]));
    assert_eq!(hash, blake3::hash(&content).to_hex().as_str());

    // A digest the registry has no manifest for: an error, nothing stored.
    let before = count(&store);
    let wrong = format!("oci://{}/wasm/bydigest@{}", reg.host, sha256(b"no such"));
    let o = artifacts(&store, &["pull", &wrong]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert_eq!(count(&store), before);
    // Not a digest at all: bad usage.
    let o = artifacts(
        &store,
        &["pull", &format!("oci://{}/wasm/x@sha256:abc", reg.host)],
    );
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn a_layer_over_the_limit_or_two_layers_are_refused() {
    let Some(reg) = registry_or_skip("oci::a_layer_over_the_limit_or_two_layers") else {
        return;
    };
    let content = module(1_000);
    let file = reg.dir().join("one.wasm");
    std::fs::write(&file, &content).unwrap();
    let second = reg.dir().join("two.wasm");
    std::fs::write(&second, module(2_000)).unwrap();
    reg.oras_push("wasm/two:v1", &[(&file, LAYER_TYPE), (&second, LAYER_TYPE)]);
    let store = reg.dir().join("store");
    ok(&artifacts(&store, &["put", "/dev/null"]));
    let before = count(&store);
    let o = artifacts(
        &store,
        &["pull", &format!("oci://{}/wasm/two:v1", reg.host)],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("2 layers"), "{}", text(&o.stderr));

    // A manifest claiming a layer of 1 TiB (the registry does not check
    // sizes): refused from the manifest, before a byte of the layer.
    reg.oras_push("wasm/huge:v1", &[(&file, LAYER_TYPE)]);
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&reg.manifest("wasm/huge", "v1")).unwrap();
    manifest["layers"][0]["size"] = serde_json::json!(1u64 << 40);
    reg.put_manifest("wasm/huge", "v1", &manifest);
    let started = Instant::now();
    let o = artifacts(
        &store,
        &["pull", &format!("oci://{}/wasm/huge:v1", reg.host)],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("exceeds this store's limit"),
        "{}",
        text(&o.stderr)
    );
    assert!(started.elapsed() < Duration::from_secs(10));

    // A layer that is not application/wasm.
    reg.oras_push(
        "wasm/tar:v1",
        &[(&file, "application/vnd.oci.image.layer.v1.tar")],
    );
    let o = artifacts(
        &store,
        &["pull", &format!("oci://{}/wasm/tar:v1", reg.host)],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("not application/wasm"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(count(&store), before, "something was stored");
}

/// A hostile registry of our own (a loopback socket): a manifest without
/// end is cut off at 4 MiB, and refused.
#[test]
fn an_endless_manifest_is_refused_at_4_mib() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let host = listener.local_addr().unwrap().to_string();
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = sent.clone();
    let server = std::thread::spawn(move || {
        listener.set_nonblocking(false).unwrap();
        for stream in listener.incoming().take(4) {
            let Ok(mut stream) = stream else { return };
            let mut request = [0u8; 4096];
            let n = stream.read(&mut request).unwrap_or(0);
            let request = String::from_utf8_lossy(&request[..n]).into_owned();
            if request.starts_with("GET /v2/ ") {
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}",
                );
                continue;
            }
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/vnd.oci.image.manifest.v1+json\r\nconnection: close\r\n\r\n",
            );
            let chunk = vec![b' '; 64 << 10];
            // At most 64 MiB, then it gives up (bounded, whatever happens).
            for _ in 0..1024 {
                if stream.write_all(&chunk).is_err() {
                    break;
                }
                counter.fetch_add(chunk.len() as u64, std::sync::atomic::Ordering::Relaxed);
            }
            return;
        }
    });
    let work = tempfile::tempdir().unwrap();
    let store = work.path().join("store");
    let o = artifacts(&store, &["pull", &format!("oci://{host}/evil/endless:v1")]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("larger than 4194304 bytes"),
        "{}",
        text(&o.stderr)
    );
    server.join().unwrap();
    let sent = sent.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!("the endless manifest server sent {sent} bytes before the client hung up");
    assert!(sent < 64 << 20, "the client read the whole 64 MiB");
}

#[test]
fn basic_auth_comes_from_the_docker_config() {
    let Some(reg) = registry_with_auth_or_skip(
        "oci::basic_auth_comes_from_the_docker_config",
        Some(("tester", "s3cret")),
    ) else {
        return;
    };
    let component_file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/apps/plugin.wasm");
    let store = reg.dir().join("store");
    let hash = ok(&artifacts(
        &store,
        &["put", component_file.to_str().unwrap()],
    ));
    let target = format!("oci://{}/private/plugin:v1", reg.host);

    // No docker config: anonymous, and the registry says no.
    let o = artifacts(&store, &["push", &hash, &target]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("401"), "{}", text(&o.stderr));

    // Credentials for another host only: still anonymous.
    let docker = store.with_extension("docker");
    std::fs::create_dir_all(&docker).unwrap();
    // The docker config's `auth`: base64 of `user:password`.
    let auth = |user_password: &str| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(user_password)
    };
    std::fs::write(
        docker.join("config.json"),
        format!(
            r#"{{"auths":{{"127.0.0.1:1":{{"auth":"{}"}}}}}}"#,
            auth("tester:s3cret")
        ),
    )
    .unwrap();
    assert_eq!(
        artifacts(&store, &["push", &hash, &target]).status.code(),
        Some(1)
    );

    // An `auths` entry for the host (as `docker login` writes it): push
    // and pull get through.
    std::fs::write(
        docker.join("config.json"),
        format!(
            r#"{{"auths":{{"{}":{{"auth":"{}"}}}}}}"#,
            reg.host,
            auth("tester:s3cret")
        ),
    )
    .unwrap();
    ok(&artifacts(&store, &["push", &hash, &target]));
    let other = reg.dir().join("other");
    let other_docker = other.with_extension("docker");
    std::fs::create_dir_all(&other_docker).unwrap();
    std::fs::copy(docker.join("config.json"), other_docker.join("config.json")).unwrap();
    assert_eq!(ok(&artifacts(&other, &["pull", &target])), hash);

    // A wrong password: refused.
    std::fs::write(
        other_docker.join("config.json"),
        format!(
            r#"{{"auths":{{"{}":{{"auth":"{}"}}}}}}"#,
            reg.host,
            auth("tester:wrong")
        ),
    )
    .unwrap();
    let o = artifacts(&other, &["pull", &target]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("401"), "{}", text(&o.stderr));
}

#[test]
fn a_name_the_core_refuses_is_refused_before_anything_is_fetched() {
    // No registry at all: the name is checked first, so the error is the
    // name's, not the connection's, and nothing is stored.
    let work = tempfile::tempdir().unwrap();
    let store = work.path().join("store");
    let o = artifacts(
        &store,
        &[
            "pull",
            "oci://127.0.0.1:9/nothing/here:1",
            "--name",
            "bad\u{1}name",
        ],
    );
    let err = text(&o.stderr);
    assert_ne!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("name"), "{err}");
    assert!(
        !err.contains("127.0.0.1:9"),
        "the registry was contacted: {err}"
    );
    assert_eq!(count(&store), 0);
}

/// A registry that trickles its answer a byte at a time (each read well
/// within the per-read timeout) cannot hold a pull past `--timeout`.
#[test]
fn a_trickling_registry_cannot_hold_a_pull_past_its_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let host = listener.local_addr().unwrap().to_string();
    let server = std::thread::spawn(move || {
        for stream in listener.incoming().take(4) {
            let Ok(mut stream) = stream else { return };
            let mut request = [0u8; 4096];
            let n = stream.read(&mut request).unwrap_or(0);
            let request = String::from_utf8_lossy(&request[..n]).into_owned();
            if request.starts_with("GET /v2/ ") {
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}",
                );
                continue;
            }
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/vnd.oci.image.manifest.v1+json\r\nconnection: close\r\n\r\n",
            );
            // A byte every 200 ms for at most 60 s, then it gives up.
            for _ in 0..300 {
                if stream.write_all(b" ").is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            return;
        }
    });
    let work = tempfile::tempdir().unwrap();
    let store = work.path().join("store");
    let started = Instant::now();
    let o = artifacts(
        &store,
        &[
            "pull",
            &format!("oci://{host}/slow/trickle:v1"),
            "--timeout",
            "3",
        ],
    );
    let took = started.elapsed();
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("gave up after 3 s"), "{err}");
    assert!(took < Duration::from_secs(20), "the pull took {took:?}");
    assert_eq!(count(&store), 0);
    server.join().unwrap();
}

// ---------------------------------------------------------------------------
// Hostile registries of the test's own

/// What a hostile registry sends at most in one answer: far past every
/// bound the client states, and a bound on the test itself.
const HOSTILE_CAP: u64 = 256 << 20;
/// The most a hostile answer may add to a push's or pull's peak resident
/// memory, over the same command failing at once (its runtime, the store
/// and the core; about 58 MiB in a debug build): the bounded reads (1 MiB
/// at most) and the HTTP client's buffers.
const HOSTILE_EXTRA_MIB: f64 = 16.0;
/// The most a hostile registry may get sent before the client hangs up:
/// the client's read limits (at most 4 MiB) and what loopback's socket
/// buffers take in besides.
const SENT_BOUND: u64 = 16 << 20;

/// What a fake registry answers one request with (then it closes).
enum Answer {
    /// These bytes.
    Bytes(Vec<u8>),
    /// This head, then `filler` over and over (up to [`HOSTILE_CAP`]).
    Endless(String, Vec<u8>),
}

/// An answer `status` with `headers` and `body`.
fn http(status: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
    let mut head = format!(
        "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    Answer::Bytes(bytes)
}

/// An answer `status` whose body has no end.
fn endless_body(status: &str, content_type: &str) -> Answer {
    Answer::Endless(
        format!("HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\nconnection: close\r\n\r\n"),
        vec![b' '; 64 << 10],
    )
}

/// A fake registry (or a foreign host) on 127.0.0.1: answers each request
/// head with `answer(head, its own host)`, one connection at a time;
/// counts the connections it takes and the bytes it sends. Stops when
/// dropped (or after 60 s).
struct Fake {
    host: String,
    sent: Arc<AtomicU64>,
    connections: Arc<AtomicU64>,
    requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Fake {
    fn start(answer: impl Fn(&str, &str) -> Answer + Send + 'static) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let (sent, connections) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (sent, connections, requests, stop, own) = (
                sent.clone(),
                connections.clone(),
                requests.clone(),
                stop.clone(),
                host.clone(),
            );
            std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(60);
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            connections.fetch_add(1, Ordering::Relaxed);
                            serve(stream, &own, &answer, &sent, &requests);
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(2));
                        }
                        Err(_) => return,
                    }
                }
            })
        };
        Fake {
            host,
            sent,
            connections,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Reads one request's head from `stream` and sends `answer`'s.
fn serve(
    mut stream: TcpStream,
    own: &str,
    answer: &impl Fn(&str, &str) -> Answer,
    sent: &AtomicU64,
    requests: &Mutex<Vec<String>>,
) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 << 10 {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let head = text(&head);
    requests
        .lock()
        .unwrap()
        .push(head.lines().next().unwrap_or_default().to_owned());
    match answer(&head, own) {
        Answer::Bytes(bytes) => {
            if stream.write_all(&bytes).is_ok() {
                sent.fetch_add(bytes.len() as u64, Ordering::Relaxed);
            }
        }
        Answer::Endless(start, filler) => {
            if stream.write_all(start.as_bytes()).is_err() {
                return;
            }
            let mut total = 0;
            while total < HOSTILE_CAP && stream.write_all(&filler).is_ok() {
                total += filler.len() as u64;
                sent.fetch_add(filler.len() as u64, Ordering::Relaxed);
            }
        }
    }
}

/// A wasm artifact's manifest for the layer `content`, with `urls` on it
/// if given.
fn manifest_for(content: &[u8], urls: &[String]) -> Vec<u8> {
    let mut layer = serde_json::json!({
        "mediaType": LAYER_TYPE,
        "digest": sha256(content),
        "size": content.len(),
    });
    if !urls.is_empty() {
        layer["urls"] = serde_json::json!(urls);
    }
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": {"mediaType": CONFIG_TYPE, "digest": sha256(b"{}"), "size": 2},
        "layers": [layer],
    }))
    .unwrap()
}

/// Runs the CLI on `store` against a hostile registry and checks what a
/// hostile answer may cost: it fails (exit 1) promptly, with `error` in its
/// message, its peak resident memory at most [`HOSTILE_EXTRA_MIB`] over
/// the same command failing at once (no registry at all), and the registry
/// sent it less than [`SENT_BOUND`].
fn refused_within_bounds(fake: &Fake, store: &Path, args: &[&str], error: &str) {
    let nowhere: Vec<String> = args
        .iter()
        .map(|a| a.replace(&fake.host, "127.0.0.1:9"))
        .collect();
    let nowhere: Vec<&str> = nowhere.iter().map(String::as_str).collect();
    let baseline = crate::hostile::measure(cli(store, &nowhere));
    assert_eq!(baseline.code, Some(1), "{}", baseline.stderr);
    let before = fake.sent();
    let m = crate::hostile::measure(cli(store, args));
    let sent = fake.sent() - before;
    eprintln!(
        "{args:?}: exit {:?} in {:.1} s, peak {:.1} MiB (failing at once: {:.1} MiB), the registry sent {sent} bytes: {}",
        m.code,
        m.seconds,
        m.peak_mib,
        baseline.peak_mib,
        m.stderr.trim()
    );
    assert_eq!(m.code, Some(1), "{}", m.stderr);
    assert!(m.stderr.contains(error), "{error:?} not in {}", m.stderr);
    assert!(
        m.peak_mib < baseline.peak_mib + HOSTILE_EXTRA_MIB,
        "{args:?} peaked at {:.1} MiB, {:.1} MiB failing at once",
        m.peak_mib,
        baseline.peak_mib
    );
    assert!(sent < SENT_BOUND, "{args:?} took {sent} bytes");
    assert!(m.seconds < 10.0, "{args:?} took {:.1} s", m.seconds);
}

/// A component pushed to a hostile registry: stored first.
fn stored_module(store: &Path) -> String {
    let file = store.with_extension("wasm");
    std::fs::write(&file, module(10_000)).unwrap();
    ok(&artifacts(store, &["put", file.to_str().unwrap()]))
}

/// A token endpoint answering without end: pull and push read at most the
/// token limit, fail naming it, and stay small.
#[test]
fn an_endless_token_is_cut_off_in_pull_and_push() {
    let fake = Fake::start(|head, own| {
        if head.starts_with("GET /v2/ ") {
            let challenge = format!("Bearer realm=\"http://{own}/token\",service=\"fake\"");
            http(
                "401 Unauthorized",
                &[("www-authenticate", challenge.as_str())],
                b"",
            )
        } else if head.starts_with("GET /token") {
            endless_body("200 OK", "application/json")
        } else {
            http("404 Not Found", &[], b"")
        }
    });
    let work = tempfile::tempdir().unwrap();
    let store = work.path().join("store");
    let hash = stored_module(&store);
    let reference = format!("oci://{}/evil/token:v1", fake.host);
    let limit = "larger than 1048576 bytes";
    refused_within_bounds(&fake, &store, &["pull", &reference], limit);
    refused_within_bounds(&fake, &store, &["push", &hash, &reference], limit);
    assert_eq!(count(&store), 1, "the pull stored something");

    // The same flow with a token of a sane size: the pull goes through,
    // the token sent with every request to the registry.
    let content = module(2_000);
    let manifest = manifest_for(&content, &[]);
    let served = content.clone();
    let fair = Fake::start(move |head, own| {
        let bearer = head
            .lines()
            .any(|l| l.eq_ignore_ascii_case("authorization: Bearer fair-token"));
        if head.starts_with("GET /token?") {
            http("200 OK", &[], br#"{"token":"fair-token"}"#)
        } else if !bearer {
            let challenge = format!("Bearer realm=\"http://{own}/token\",service=\"fake\"");
            http(
                "401 Unauthorized",
                &[("www-authenticate", challenge.as_str())],
                b"",
            )
        } else if head.starts_with("GET /v2/fair/token/manifests/v1 ") {
            http("200 OK", &[("content-type", MANIFEST_TYPE)], &manifest)
        } else if head.starts_with("GET /v2/fair/token/blobs/") {
            http("200 OK", &[], &served)
        } else {
            http("404 Not Found", &[], b"")
        }
    });
    let reference = format!("oci://{}/fair/token:v1", fair.host);
    let pulled = ok(&artifacts(&store, &["pull", &reference]));
    assert_eq!(pulled, blake3::hash(&content).to_hex().as_str());
}

/// Error answers (a 500 on the layer, on the upload) without end, and
/// headers without end: cut off at their limits, and the runs stay small.
#[test]
fn endless_error_bodies_and_headers_are_cut_off() {
    let content = module(1_000);
    let manifest = manifest_for(&content, &[]);
    let fake = Fake::start(move |head, _| {
        let line = head.lines().next().unwrap_or_default();
        if line.starts_with("GET /v2/ ") {
            http("200 OK", &[], b"{}")
        } else if line.starts_with("GET /v2/evil/err/manifests/v1 ") {
            http("200 OK", &[("content-type", MANIFEST_TYPE)], &manifest)
        } else if line.starts_with("GET /v2/evil/err/manifests/headers ") {
            // Header lines without end.
            let mut filler = b"x-filler: ".to_vec();
            filler.extend_from_slice(&[b'a'; 1000]);
            filler.extend_from_slice(b"\r\n");
            Answer::Endless("HTTP/1.1 200 OK\r\n".into(), filler.repeat(64))
        } else if line.starts_with("GET /v2/evil/err/blobs/")
            || line.starts_with("POST /v2/evil/err/blobs/uploads/")
        {
            endless_body("500 Internal Server Error", "text/plain")
        } else {
            http("404 Not Found", &[], b"")
        }
    });
    let work = tempfile::tempdir().unwrap();
    let store = work.path().join("store");
    let hash = stored_module(&store);
    let reference = format!("oci://{}/evil/err:v1", fake.host);
    let cut = "read no further than 16384 bytes";
    refused_within_bounds(&fake, &store, &["pull", &reference], cut);
    refused_within_bounds(&fake, &store, &["push", &hash, &reference], cut);
    let headers = format!("oci://{}/evil/err:headers", fake.host);
    refused_within_bounds(&fake, &store, &["pull", &headers], "head");
    assert_eq!(count(&store), 1, "the pull stored something");
}

/// A manifest's layer `urls` are never followed, nor a redirect to plain
/// HTTP off loopback, nor a token realm on plain HTTP off loopback: the
/// foreign host (a plain server, and the HTTP proxy through which any
/// request to a non-loopback host would go) is never contacted.
#[test]
fn pull_contacts_no_url_off_the_registry() {
    let content = module(1_000);
    let served = content.clone();
    // The foreign host serves the right layer: only its not being
    // contacted tells the pulls apart.
    let foreign = Fake::start(move |_, _| {
        http(
            "200 OK",
            &[("content-type", "application/octet-stream")],
            &served,
        )
    });
    let proxy = format!("http://{}", foreign.host);
    let env_proxy = |mut cmd: Command| {
        cmd.env("http_proxy", &proxy)
            .env("HTTP_PROXY", &proxy)
            .env("NO_PROXY", "127.0.0.1")
            .env("no_proxy", "127.0.0.1");
        cmd
    };
    let work = tempfile::tempdir().unwrap();
    let store = work.path().join("store");
    ok(&artifacts(&store, &["put", "/dev/null"]));

    // A layer with `urls` (one on loopback, one off it) that the
    // registry does not serve itself.
    let urls = vec![
        format!("http://{}/layer.wasm", foreign.host),
        "https://blobs.example/layer.wasm".to_owned(),
    ];
    let manifest = manifest_for(&content, &urls);
    let registry = Fake::start(move |head, _| {
        if head.starts_with("GET /v2/ ") {
            http("200 OK", &[], b"{}")
        } else if head.starts_with("GET /v2/evil/urls/manifests/") {
            http("200 OK", &[("content-type", MANIFEST_TYPE)], &manifest)
        } else {
            http("404 Not Found", &[], b"")
        }
    });
    let reference = format!("oci://{}/evil/urls:v1", registry.host);
    let o = env_proxy(cli(&store, &["pull", &reference]))
        .output()
        .unwrap();
    refused_unreached(&foreign, &o, "a layer's urls", "404");

    // A redirect of the layer to plain HTTP off loopback.
    let manifest = manifest_for(&content, &[]);
    let registry = Fake::start(move |head, _| {
        if head.starts_with("GET /v2/ ") {
            http("200 OK", &[], b"{}")
        } else if head.starts_with("GET /v2/evil/redirect/manifests/") {
            http("200 OK", &[("content-type", MANIFEST_TYPE)], &manifest)
        } else if head.starts_with("GET /v2/evil/redirect/blobs/") {
            let to = [("location", "http://blobs.example/layer.wasm")];
            http("307 Temporary Redirect", &to, b"")
        } else {
            http("404 Not Found", &[], b"")
        }
    });
    let reference = format!("oci://{}/evil/redirect:v1", registry.host);
    let o = env_proxy(cli(&store, &["pull", &reference]))
        .output()
        .unwrap();
    refused_unreached(
        &foreign,
        &o,
        "a redirect off loopback",
        "http://blobs.example/layer.wasm",
    );

    // A token realm on plain HTTP off loopback.
    let registry = Fake::start(|head, _| {
        if head.starts_with("GET /v2/ ") {
            let challenge = "Bearer realm=\"http://auth.example/token\",service=\"fake\"";
            http("401 Unauthorized", &[("www-authenticate", challenge)], b"")
        } else {
            http("404 Not Found", &[], b"")
        }
    });
    let reference = format!("oci://{}/evil/realm:v1", registry.host);
    let o = env_proxy(cli(&store, &["pull", &reference]))
        .output()
        .unwrap();
    refused_unreached(
        &foreign,
        &o,
        "a plain-HTTP realm off loopback",
        "http://auth.example/token",
    );
    assert_eq!(count(&store), 1, "a pull stored something");
}

/// An upload location on another host: push sends nothing there.
#[test]
fn push_sends_nothing_off_the_registry() {
    let foreign = Fake::start(|_, _| http("202 Accepted", &[("location", "/next")], b""));
    let to = format!("http://{}/upload/1", foreign.host);
    let registry = Fake::start(move |head, _| {
        let line = head.lines().next().unwrap_or_default();
        if line.starts_with("GET /v2/ ") {
            http("200 OK", &[], b"{}")
        } else if line.starts_with("POST /v2/evil/upload/blobs/uploads/") {
            http("202 Accepted", &[("location", to.as_str())], b"")
        } else {
            http("404 Not Found", &[], b"")
        }
    });
    let work = tempfile::tempdir().unwrap();
    let store = work.path().join("store");
    let hash = stored_module(&store);
    let reference = format!("oci://{}/evil/upload:v1", registry.host);
    let o = artifacts(&store, &["push", &hash, &reference]);
    refused_unreached(&foreign, &o, "an upload location", &foreign.host);
}

/// What a run that met a URL off the registry must show: the foreign host
/// took no connection, and the run failed (exit 1) saying `error`.
fn refused_unreached(foreign: &Fake, o: &Output, what: &str, error: &str) {
    let err = text(&o.stderr);
    eprintln!(
        "{what}: exit {:?}, the foreign host took {} connections: {}",
        o.status.code(),
        foreign.connections(),
        err.trim()
    );
    assert_eq!(
        foreign.connections(),
        0,
        "{what} was followed: {:?}",
        foreign.requests()
    );
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains(error), "{error:?} not in {err}");
}

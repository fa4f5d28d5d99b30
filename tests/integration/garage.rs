//! Real Garage servers for the S3 backend's tests (and the benchmark): one
//! node shared by a test run, or a cluster of several for the kill test.
//!
//! Each server runs under a small shell that holds a pipe from this process:
//! when this process exits, or [`Garage::kill`] drops the pipe, the shell
//! kills the server with SIGKILL, so no server outlives its tests.

#![allow(dead_code)]

use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use artifacts::backend::Backend;
use artifacts::{S3Backend, S3Config};

/// The bucket every test server has.
pub const BUCKET: &str = "artifacts";
/// The access key id every test server knows.
const KEY_ID: &str = "GK0123456789abcdef01234567";
/// Its secret (test servers listen on 127.0.0.1 only).
const SECRET: &str = "8f2c6c1b0e6d4f35a7b9c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2";
const RPC_SECRET: &str = "4b1f1a5e7c3d9b2a6e8f0c4d2b6a9e1f3c5d7b9a2e4f6c8d0b1a3e5f7c9d2b4a";

/// The `garage` binary: `$ARTIFACTS_GARAGE`, else on `PATH`, else `~/.cargo/bin`.
pub fn binary() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("ARTIFACTS_GARAGE") {
        return Ok(PathBuf::from(path));
    }
    let on_path = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("garage"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    on_path
        .into_iter()
        .chain(cargo_home.map(|c| c.join("bin/garage")))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            "no `garage` binary (install it with `cargo install garage --locked`, or set ARTIFACTS_GARAGE)"
                .to_owned()
        })
}

struct Node {
    config: PathBuf,
    s3_port: u16,
    shell: Child,
    pipe: Option<ChildStdin>,
}

/// A running Garage cluster (one node or more) with a bucket and a key.
pub struct Garage {
    dir: tempfile::TempDir,
    nodes: Vec<Node>,
    binary: PathBuf,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl Garage {
    /// Starts `nodes` servers with replication factor `nodes`, joined into one
    /// cluster, with the test bucket and key; returns once S3 answers.
    pub fn start(nodes: usize) -> Result<Self, String> {
        let binary = binary()?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let mut this = Self {
            dir,
            nodes: Vec::new(),
            binary,
        };
        for i in 0..nodes {
            this.spawn_node(i, nodes)?;
        }
        let ids: Vec<String> = (0..nodes)
            .map(|i| this.cli_retrying(i, &["node", "id", "-q"]))
            .collect::<Result<_, _>>()?;
        for id in ids.iter().skip(1) {
            this.cli_retrying(0, &["node", "connect", id.trim()])?;
        }
        for (i, id) in ids.iter().enumerate() {
            let short = id.split('@').next().unwrap_or_default();
            let zone = format!("dc{}", i + 1);
            this.cli_retrying(0, &["layout", "assign", "-z", &zone, "-c", "1G", short])?;
        }
        this.cli_retrying(0, &["layout", "apply", "--version", "1"])?;
        this.cli_retrying(0, &["bucket", "create", BUCKET])?;
        this.cli_retrying(
            0,
            &[
                "key",
                "import",
                "--yes",
                "-n",
                "artifacts-tests",
                KEY_ID,
                SECRET,
            ],
        )?;
        this.cli_retrying(
            0,
            &[
                "bucket", "allow", "--read", "--write", "--owner", BUCKET, "--key", KEY_ID,
            ],
        )?;
        // S3 answers once every node has the layout and the bucket.
        let deadline = Instant::now() + Duration::from_secs(60);
        for i in 0..nodes {
            loop {
                let probe = S3Backend::open(&this.config(i, "probe"))
                    .and_then(|b| b.list_blobs(None, 1).map(|_| ()));
                match probe {
                    Ok(()) => break,
                    Err(e) if Instant::now() > deadline => {
                        return Err(format!("garage node {i} S3 never came up: {e}"));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(200)),
                }
            }
        }
        Ok(this)
    }

    fn spawn_node(&mut self, i: usize, replication: usize) -> Result<(), String> {
        let root = self.dir.path().join(format!("node{i}"));
        std::fs::create_dir_all(&root).map_err(|e| e.to_string())?;
        let (rpc, s3) = (free_port(), free_port());
        let config = root.join("garage.toml");
        let text = format!(
            r#"metadata_dir = "{root}/meta"
data_dir = "{root}/data"
db_engine = "sqlite"
replication_factor = {replication}
rpc_bind_addr = "127.0.0.1:{rpc}"
rpc_public_addr = "127.0.0.1:{rpc}"
rpc_secret = "{RPC_SECRET}"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:{s3}"
root_domain = ".s3.garage.localhost"
"#,
            root = root.display()
        );
        std::fs::write(&config, text).map_err(|e| e.to_string())?;
        let log = root.join("server.log");
        let mut shell = Command::new("sh")
            .arg("-c")
            .arg(r#""$0" -c "$1" server >"$2" 2>&1 & pid=$!; read _; kill -9 $pid; wait $pid"#)
            .arg(&self.binary)
            .arg(&config)
            .arg(&log)
            .stdin(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting garage: {e}"))?;
        let pipe = shell.stdin.take();
        self.nodes.push(Node {
            config,
            s3_port: s3,
            shell,
            pipe,
        });
        Ok(())
    }

    /// Runs `garage -c NODE_CONFIG ARGS…` until it succeeds (the server may
    /// still be starting), for up to 30 s; returns its standard output.
    fn cli_retrying(&self, node: usize, args: &[&str]) -> Result<String, String> {
        let config = &self.nodes.get(node).ok_or("no such node")?.config;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = Command::new(&self.binary)
                .arg("-c")
                .arg(config)
                .args(args)
                .output()
                .map_err(|e| e.to_string())?;
            if out.status.success() {
                return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "garage {args:?} failed: {}{}",
                    String::from_utf8_lossy(&out.stderr),
                    self.log_tail(node)
                ));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Runs `garage ARGS…` against node 0; returns its standard output.
    pub fn cli(&self, args: &[&str]) -> Result<String, String> {
        self.cli_retrying(0, args)
    }

    fn log_tail(&self, node: usize) -> String {
        let Some(n) = self.nodes.get(node) else {
            return String::new();
        };
        let log = n.config.with_file_name("server.log");
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(10).collect();
        format!(
            "\nserver log (last lines):\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )
    }

    /// The S3 endpoint of node `i`.
    pub fn endpoint(&self, i: usize) -> String {
        format!(
            "http://127.0.0.1:{}",
            self.nodes.get(i).map_or(0, |n| n.s3_port)
        )
    }

    /// How to reach the bucket through node `i`, under `prefix`.
    pub fn config(&self, i: usize, prefix: &str) -> S3Config {
        S3Config {
            endpoint: Some(self.endpoint(i)),
            bucket: BUCKET.to_owned(),
            prefix: prefix.to_owned(),
            region: "garage".to_owned(),
            access_key_id: KEY_ID.to_owned(),
            secret_access_key: SECRET.to_owned(),
            lease: None,
        }
    }

    /// The environment that points the CLI at this bucket through node 0.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint(0)),
            ("AWS_REGION", "garage".to_owned()),
            ("AWS_ACCESS_KEY_ID", KEY_ID.to_owned()),
            ("AWS_SECRET_ACCESS_KEY", SECRET.to_owned()),
        ]
    }

    /// Kills node `i` with SIGKILL and waits until it is gone.
    pub fn kill(&mut self, i: usize) {
        if let Some(node) = self.nodes.get_mut(i) {
            if let Some(mut pipe) = node.pipe.take() {
                let _ = pipe.write_all(b"\n");
            }
            let _ = node.shell.wait();
        }
    }

    /// The folder holding node `i`'s files.
    pub fn node_dir(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("node{i}"))
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}

/// A plain S3 client on the bucket of `config` (to look behind the
/// backend's back, or as a native baseline), with a runtime to drive it.
pub fn raw_client(config: &S3Config) -> (object_store::aws::AmazonS3, tokio::runtime::Runtime) {
    let store = object_store::aws::AmazonS3Builder::new()
        .with_endpoint(config.endpoint.clone().unwrap_or_default())
        .with_allow_http(true)
        .with_bucket_name(&config.bucket)
        .with_region(&config.region)
        .with_access_key_id(&config.access_key_id)
        .with_secret_access_key(&config.secret_access_key)
        .build()
        .expect("an S3 client");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    (store, rt)
}

/// One node shared by every test in this process, or why there is none.
pub fn shared() -> Result<&'static Garage, String> {
    static SHARED: OnceLock<Result<Garage, String>> = OnceLock::new();
    SHARED
        .get_or_init(|| Garage::start(1))
        .as_ref()
        .map_err(Clone::clone)
}

/// A fresh, empty prefix in the shared node's bucket.
pub fn fresh_prefix(tag: &str) -> String {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("random bytes");
    format!("{tag}-{}", u64::from_le_bytes(bytes))
}

/// Whether the tests that need Garage must run (`.ci/run` sets this): then
/// a missing Garage fails them instead of skipping.
pub fn required() -> bool {
    std::env::var_os("ARTIFACTS_REQUIRE_GARAGE").is_some()
}

/// The shared node, or `None` after printing why the caller skips.
pub fn shared_or_skip(test: &str) -> Option<&'static Garage> {
    match shared() {
        Ok(g) => Some(g),
        Err(reason) if !required() => {
            eprintln!("skipped {test} on S3: {reason}");
            None
        }
        Err(reason) => panic!("{test} needs Garage (ARTIFACTS_REQUIRE_GARAGE is set): {reason}"),
    }
}

//! How to run an app ([`AppConfig`], [`AppLimits`], [`Stdio`]) and how it
//! ended ([`AppOutcome`]).

use std::time::Duration;

use crate::{Hash, Quota};

/// An app's resource limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppLimits {
    /// The app's memory budget, in bytes: all its linear memories, all its
    /// tables (at [`TABLE_ELEMENT_BYTES`](super::limits::TABLE_ELEMENT_BYTES) per element) and the buffers
    /// the host holds for it between calls (stream pieces, `wasi:blobstore`
    /// values, captured output) together.
    pub memory_bytes: usize,
    /// The most core instances the app may create.
    pub max_instances: usize,
    /// The most linear memories the app may create.
    pub max_memories: usize,
    /// The most tables the app may create.
    pub max_tables: usize,
    /// The CPU budget, in wasmtime fuel (about one unit per wasm instruction).
    pub fuel: u64,
    /// The largest component the host will compile, in bytes.
    pub max_component_bytes: u64,
    /// The longest a run may take, from instantiation to exit, whether the
    /// app computes, sleeps or waits; past it the app is stopped with
    /// [`Error::Timeout`](crate::Error::Timeout).
    pub wall_time: Duration,
    /// The most output a run may write, standard output and error
    /// together, in bytes (as the app wrote them, before any escaping); an
    /// app that tries to write more is stopped with [`Error::OutputLimit`](crate::Error::OutputLimit)
    /// once its output up to the limit is out.
    pub max_output: u64,
}

impl Default for AppLimits {
    /// 64 MiB of memory in at most 32 instances, 4 memories and 32 tables;
    /// 10 billion fuel; 32 MiB components; 60 s of wall clock and 16 MiB of
    /// output.
    fn default() -> Self {
        Self {
            memory_bytes: 64 << 20,
            max_instances: 32,
            max_memories: 4,
            max_tables: 32,
            fuel: 10_000_000_000,
            max_component_bytes: 32 << 20,
            wall_time: Duration::from_secs(60),
            max_output: 16 << 20,
        }
    }
}

/// Where an app's standard output and error go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stdio {
    /// The host process's own. Where that is a terminal, control
    /// characters are escaped (ESC becomes the text `\x1b`), so the app
    /// cannot move the cursor, set the title or the clipboard; a file or a
    /// pipe gets the bytes unchanged.
    Inherit,
    /// Kept, byte for byte, and returned in [`AppOutcome`] (at most
    /// [`AppLimits::max_output`], both streams together).
    Capture,
}

/// How to run one app.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// The app's identity: whose references it takes and sees.
    pub id: String,
    /// What it may keep in the store.
    pub quota: Quota,
    /// Its memory and CPU limits.
    pub limits: AppLimits,
    /// Its arguments (after its name).
    pub args: Vec<String>,
    /// Artifacts it may read without holding a reference.
    pub grants: Vec<Hash>,
    /// Where its output goes.
    pub stdio: Stdio,
    /// Its standard input (empty: end of input at once).
    pub stdin: bytes::Bytes,
    /// Whether it may run stored components (the WIT `launch` interface;
    /// without it every launch is `not-allowed`). Its children draw every
    /// limit from what it has left, and may launch in turn if it lets them,
    /// up to [`MAX_LAUNCH_DEPTH`](super::limits::MAX_LAUNCH_DEPTH).
    pub allow_launch: bool,
}

impl AppConfig {
    /// Defaults for the app `id`: default quota and limits, no arguments,
    /// no grants, no input, output captured, no launching.
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            quota: Quota::default(),
            limits: AppLimits::default(),
            args: Vec::new(),
            grants: Vec::new(),
            stdio: Stdio::Capture,
            stdin: bytes::Bytes::new(),
            allow_launch: false,
        }
    }
}

/// How an app ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppOutcome {
    /// 0 for success; the code it exited with otherwise.
    pub exit_code: i32,
    /// What it wrote to standard output, if captured.
    pub stdout: Vec<u8>,
    /// What it wrote to standard error, if captured.
    pub stderr: Vec<u8>,
    /// The fuel it used.
    pub fuel_used: u64,
    /// The most of its memory limit ([`AppLimits::memory_bytes`]) it had in
    /// use at once: its memories and tables, and the buffers the host held
    /// for it (stream pieces, `wasi:blobstore` values, captured output).
    pub peak_memory: u64,
}

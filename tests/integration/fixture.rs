//! One fixture per backend, so every behaviour is tested on each.

use std::sync::atomic::{AtomicU64, Ordering};

use artifacts::backend::{Backend, Space};
use artifacts::{ArtifactStore, FileBackend, Hash, MemoryBackend, StoreBuilder};
#[cfg(feature = "s3")]
use artifacts::{S3Backend, S3Config};
use tempfile::TempDir;

use crate::watched::{Watch, Watched};

/// Without the `s3` feature there is no S3 fixture: a configuration that
/// cannot exist, and a backend that can never be opened.
#[cfg(not(feature = "s3"))]
pub enum S3Config {}

#[cfg(not(feature = "s3"))]
struct S3Backend;

#[cfg(not(feature = "s3"))]
impl S3Backend {
    fn open(config: &S3Config) -> artifacts::backend::BackendResult<MemoryBackend> {
        match *config {}
    }
}

/// Content of `len` bytes in the pattern of BLAKE3's official test vectors.
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// Starts `n` processes from `command` at once, waits for all, asserts each
/// succeeded and returns their standard outputs, trimmed.
#[cfg(feature = "cli")]
pub fn run_at_once(n: usize, command: impl Fn() -> std::process::Command) -> Vec<String> {
    use std::process::Stdio;
    let children: Vec<_> = (0..n)
        .map(|_| {
            command()
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    children
        .into_iter()
        .map(|child| {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap().trim().to_owned()
        })
        .collect()
}

/// The sizes around BLAKE3's 1024-byte chunk that the tests use.
pub const SIZES: [usize; 7] = [0, 1, 1023, 1024, 1025, 2048, 2049];

pub enum Fixture {
    Memory(MemoryBackend),
    File(TempDir),
    /// A fresh prefix in the bucket of the Garage node this test run shares.
    #[cfg_attr(not(feature = "s3"), allow(dead_code))]
    S3(S3Config),
}

impl Fixture {
    pub fn memory() -> Self {
        Self::Memory(MemoryBackend::new())
    }

    pub fn file() -> Self {
        Self::File(tempfile::tempdir().unwrap())
    }

    /// A fresh prefix on the shared Garage node, or `None` (having said why)
    /// when there is no Garage to run against.
    #[cfg(feature = "s3")]
    pub fn s3(test: &str) -> Option<Self> {
        let garage = crate::garage::shared_or_skip(test)?;
        Some(Self::S3(
            garage.config(0, &crate::garage::fresh_prefix(test)),
        ))
    }

    /// Built without the `s3` feature: always `None`, saying so.
    #[cfg(not(feature = "s3"))]
    pub fn s3(test: &str) -> Option<Self> {
        eprintln!("skipped {test} on S3: built without the `s3` feature");
        None
    }

    /// A store over this fixture's storage; a second call opens the same data again.
    pub fn open(&self) -> ArtifactStore {
        self.open_with(ArtifactStore::builder())
    }

    /// The same, with the builder's settings.
    pub fn open_with(&self, builder: StoreBuilder) -> ArtifactStore {
        match self {
            Self::Memory(b) => builder.open(b.clone()).unwrap(),
            Self::File(dir) => builder.open_dir(dir.path()).unwrap(),
            Self::S3(config) => builder.open(S3Backend::open(config).unwrap()).unwrap(),
        }
    }

    /// The raw backend under the store, for writing behind its back.
    pub fn backend(&self) -> Box<dyn Backend> {
        match self {
            Self::Memory(b) => Box::new(b.clone()),
            Self::File(dir) => Box::new(FileBackend::open(dir.path()).unwrap()),
            Self::S3(config) => Box::new(S3Backend::open(config).unwrap()),
        }
    }

    /// Replaces the stored bytes of `hash` behind the store's back.
    pub fn tamper(&self, hash: &Hash, bytes: &[u8]) {
        match self {
            Self::Memory(b) => b.write_blob(hash, bytes).unwrap(),
            Self::File(dir) => {
                let path = FileBackend::open(dir.path()).unwrap().blob_path(hash);
                assert!(path.exists(), "blob file {} missing", path.display());
                std::fs::write(path, bytes).unwrap();
            }
            Self::S3(_) => {
                let b = self.backend();
                assert!(b.blob_size(hash).unwrap().is_some(), "blob {hash} missing");
                b.write_blob(hash, bytes).unwrap();
            }
        }
    }

    /// Files left in the file backend's `tmp/` (other backends keep none).
    pub fn temporary_files(&self) -> Vec<String> {
        match self {
            Self::File(dir) => std::fs::read_dir(dir.path().join("tmp"))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect(),
            Self::Memory(_) | Self::S3(_) => Vec::new(),
        }
    }

    /// The owner index spaces the backend lists (what gc, `health` and the
    /// host's `remove` walk), and on the file backend the owner directories
    /// on disk (`owners/*/*`).
    #[cfg(feature = "apps")]
    pub fn owner_spaces(&self) -> (Vec<Hash>, Option<usize>) {
        let listed = self.backend().list_owners(None, 100_000).unwrap();
        let dirs = match self {
            Self::File(dir) => {
                let owners = dir.path().join("owners");
                let mut n = 0;
                for shard in std::fs::read_dir(owners).unwrap() {
                    n += std::fs::read_dir(shard.unwrap().path()).unwrap().count();
                }
                Some(n)
            }
            Self::Memory(_) | Self::S3(_) => None,
        };
        (listed, dirs)
    }

    /// Deletes the stored bytes of `hash` behind the store's back.
    pub fn lose_blob(&self, hash: &Hash) {
        match self {
            Self::Memory(b) => {
                let version = b.read_record(Space::Shared, hash).unwrap().unwrap().version;
                assert!(b.delete_blob(hash, Some(version)).unwrap());
            }
            Self::File(dir) => {
                let path = FileBackend::open(dir.path()).unwrap().blob_path(hash);
                std::fs::remove_file(path).unwrap();
            }
            Self::S3(_) => {
                let b = self.backend();
                let version = b.read_record(Space::Shared, hash).unwrap().unwrap().version;
                assert!(b.delete_blob(hash, Some(version)).unwrap());
            }
        }
    }
}

/// Runs the test body once per backend: `mod name { fn memory(); fn file(); fn s3(); }`
/// (`s3` skips, saying why, when there is no Garage to run against).
/// Attributes before a `fn` (`#[ignore = "..."]`) go on all three.
macro_rules! each_backend {
    ($($(#[$attr:meta])* fn $name:ident($fx:ident) $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;
                fn body($fx: &crate::fixture::Fixture) $body
                #[test]
                $(#[$attr])*
                fn memory() { body(&crate::fixture::Fixture::memory()) }
                #[test]
                $(#[$attr])*
                fn file() { body(&crate::fixture::Fixture::file()) }
                #[test]
                $(#[$attr])*
                fn s3() {
                    if let Some(fx) = crate::fixture::Fixture::s3(stringify!($name)) {
                        body(&fx)
                    }
                }
            }
        )*
    };
}
pub(crate) use each_backend;

/// Counts the calls a [`Watched`] backend gets, and the records it reads:
/// shared records (read or listed) and index entries (read or listed).
#[derive(Default)]
pub struct Counts {
    pub calls: AtomicU64,
    pub shared_read: AtomicU64,
    pub entries_read: AtomicU64,
}

impl Watch for Counts {
    fn call(&self, _name: &'static str) {
        self.calls.fetch_add(1, Ordering::SeqCst);
    }
    fn records_read(&self, space: Space, records: u64, _bytes: u64) {
        let counter = match space {
            Space::Shared => &self.shared_read,
            Space::Owner(_) => &self.entries_read,
        };
        counter.fetch_add(records, Ordering::SeqCst);
    }
}

/// A memory backend, counted.
pub type Counting = Watched<Counts>;

/// A new memory backend, counted.
pub fn counting() -> Counting {
    Watched::new(
        Box::new(MemoryBackend::new()) as Box<dyn Backend>,
        Counts::default(),
    )
}

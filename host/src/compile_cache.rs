//! A disk cache of compiled components, authenticated with a host secret.
//!
//! `Component::deserialize` runs whatever machine code it is given, so it
//! must never see bytes that an app, or anyone who can write the store's
//! disk, could have made. Each entry is therefore sealed with a keyed BLAKE3
//! MAC under a 32-byte secret that lives outside the store (the CLI keeps it
//! in `~/.config/artifacts/cache-key`, mode 0600): an entry whose MAC does
//! not verify is ignored and recompiled. wasmtime itself refuses entries
//! made by another engine version or configuration; those are recompiled too.
//!
//! Entries are keyed by the content hash *and* the engine's configuration
//! (wasmtime's compatibility hash), so engines configured differently (the
//! store's core engine, the app engine) never replace each other's entries.
//!
//! Entry layout: `DIR/<hash>.<engine>.cwasm` = 32-byte MAC ‖ wasmtime's
//! serialized component, where `<engine>` is 16 hex digits of the engine's
//! compatibility hash and MAC = keyed_blake3(secret, content hash ‖ engine ‖
//! serialized).
//!
//! A key file that group or others may read or write is refused (as ssh
//! refuses such private keys): whoever can read it can make "compiled code"
//! this host will run.

use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

use crate::Hash;

/// A directory of sealed compiled components.
#[derive(Clone)]
pub struct CompileCache {
    dir: PathBuf,
    key: [u8; 32],
}

impl std::fmt::Debug for CompileCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.debug_struct("CompileCache")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl CompileCache {
    /// A cache in `dir` (created when first written) sealed with `key`.
    pub fn new(dir: impl Into<PathBuf>, key: [u8; 32]) -> Self {
        Self {
            dir: dir.into(),
            key,
        }
    }

    /// Reads the secret from `path`, creating it (random, mode 0600) if
    /// missing. A key file that group or others may access (or, where the
    /// host can tell, that another user owns) is refused with an error that
    /// says how to fix it.
    pub fn load_or_create_key(path: &Path) -> std::io::Result<[u8; 32]> {
        match std::fs::read(path) {
            Ok(bytes) => {
                check_private(path)?;
                <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("{} is not a 32-byte key", path.display()),
                    )
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; 32];
                getrandom::fill(&mut key).map_err(|e| std::io::Error::other(e.to_string()))?;
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                match options.open(path) {
                    Ok(mut file) => {
                        std::io::Write::write_all(&mut file, &key)?;
                        file.sync_all()?;
                        Ok(key)
                    }
                    // Another process made it first: use theirs.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        Self::load_or_create_key(path)
                    }
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    fn path(&self, fingerprint: &str, hash: &Hash) -> PathBuf {
        self.dir.join(format!("{hash}.{fingerprint}.cwasm"))
    }

    fn mac(&self, fingerprint: &str, hash: &Hash, serialized: &[u8]) -> blake3::Hash {
        let mut h = blake3::Hasher::new_keyed(&self.key);
        h.update(hash.to_hex().as_bytes())
            .update(fingerprint.as_bytes())
            .update(serialized);
        h.finalize()
    }

    /// Whether there is an entry for `hash` compiled by an engine configured
    /// like `engine` (sealed or not: [`get`](Self::get) checks).
    pub fn contains(&self, engine: &Engine, hash: &Hash) -> bool {
        self.path(&engine_fingerprint(engine), hash).exists()
    }

    /// The cached component for `hash`, if there is a sealed entry made by
    /// an engine configured like `engine`.
    pub fn get(&self, engine: &Engine, hash: &Hash) -> Option<Component> {
        let fingerprint = engine_fingerprint(engine);
        let bytes = std::fs::read(self.path(&fingerprint, hash)).ok()?;
        let (mac, serialized) = bytes.split_first_chunk::<32>()?;
        // blake3::Hash compares in constant time.
        if self.mac(&fingerprint, hash, serialized) != blake3::Hash::from_bytes(*mac) {
            return None;
        }
        deserialize(engine, serialized)
    }

    /// Seals and stores `component` (compiled by `engine`) for `hash`. Best
    /// effort: a cache that cannot be written only costs a recompile later.
    pub fn put(&self, engine: &Engine, hash: &Hash, component: &Component) {
        let Ok(serialized) = component.serialize() else {
            return;
        };
        let fingerprint = engine_fingerprint(engine);
        let mac = self.mac(&fingerprint, hash, &serialized);
        if std::fs::create_dir_all(&self.dir).is_err() {
            return;
        }
        let Ok(mut tmp) = tempfile::NamedTempFile::new_in(&self.dir) else {
            return;
        };
        let written = std::io::Write::write_all(&mut tmp, mac.as_bytes())
            .and_then(|()| std::io::Write::write_all(&mut tmp, &serialized));
        if written.is_ok() {
            let _ = tmp.persist(self.path(&fingerprint, hash));
        }
    }
}

/// 16 hex digits naming `engine`'s configuration: engines with equal
/// fingerprints accept each other's compiled code (wasmtime's
/// compatibility hash, fed through BLAKE3 so it is the same in every process
/// of one build).
fn engine_fingerprint(engine: &Engine) -> String {
    struct Blake3Hasher(blake3::Hasher);
    impl std::hash::Hasher for Blake3Hasher {
        fn finish(&self) -> u64 {
            let bytes = self.0.finalize();
            let mut first = [0u8; 8];
            first.copy_from_slice(bytes.as_bytes().get(..8).unwrap_or(&[0; 8]));
            u64::from_le_bytes(first)
        }
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
    }
    let mut hasher = Blake3Hasher(blake3::Hasher::new());
    std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut hasher);
    format!("{:016x}", std::hash::Hasher::finish(&hasher))
}

/// Refuses a key file that others may use (mode bits for group or others,
/// or, where `/proc/self` tells who we are, another owner).
fn check_private(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let meta = std::fs::metadata(path)?;
        let mode = meta.permissions().mode() & 0o777;
        let shown = path.display();
        if mode & 0o077 != 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                format!(
                    "{shown} may be read or written by others (mode {mode:04o}): anyone who can \
                     read it can make compiled code this host would run. Fix: chmod 600 {shown}"
                ),
            ));
        }
        if let Ok(me) = std::fs::metadata("/proc/self")
            && me.uid() != meta.uid()
        {
            return Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                format!(
                    "{shown} is owned by user {} and we are user {}: refusing another \
                     user's key. Fix: remove it (a new one is made) or chown it",
                    meta.uid(),
                    me.uid()
                ),
            ));
        }
    }
    Ok(())
}

/// Deserializes bytes whose MAC under the host's secret was just verified.
#[allow(unsafe_code)]
fn deserialize(engine: &Engine, serialized: &[u8]) -> Option<Component> {
    // SAFETY: `serialized` was produced by `Component::serialize` in a
    // process holding the secret key: its MAC verified above, and no one
    // without the key can make one that does. wasmtime checks that it was
    // made by a compatible engine and configuration, and errors otherwise.
    unsafe { Component::deserialize(engine, serialized) }.ok()
}

//! The library's error type.

use crate::Hash;

/// Why a store operation failed.
///
/// The first variants mirror the WIT `error` variant that the wasm core
/// returns; the rest come from opening a store or from the core itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No artifact is stored under this hash.
    #[error("no artifact {0}")]
    NotFound(Hash),
    /// The text is not 64 lowercase hex digits.
    #[error("invalid hash: {0}")]
    InvalidHash(String),
    /// The stored content does not hash to its address; it was not returned.
    #[error("integrity failure: {expected} holds content that hashes to {actual}")]
    Integrity {
        /// The address the content was stored under.
        expected: Hash,
        /// The hash of what was read back.
        actual: Hash,
    },
    /// The owner (app) id is not 1 to 64 ASCII letters, digits or `._:-`.
    #[error("invalid app id: {0}")]
    InvalidOwner(String),
    /// The put would break the app's quota; nothing was written.
    #[error("quota exceeded: {kind} limit is {limit}, the put would make it {requested}")]
    QuotaExceeded {
        /// Which limit.
        kind: QuotaKind,
        /// The limit.
        limit: u64,
        /// What the put would have made it.
        requested: u64,
    },
    /// The artifact's record exists but its content is gone.
    #[error("artifact {0} has a record but its content is missing")]
    MissingContent(Hash),
    /// A metadata record could not be decoded.
    #[error("corrupt record: {0}")]
    CorruptRecord(String),
    /// The content exceeds the store's size limit.
    #[error("artifact of {size} bytes exceeds this store's limit of {limit} bytes")]
    TooLarge {
        /// The content's size, or as much of it as was read before it was
        /// refused: always over `limit`.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// Concurrent writers kept changing the record; nothing changed.
    #[error("too much contention on {0}; nothing was changed, try again")]
    Contended(Hash),
    /// A name is empty, longer than 255 bytes or holds a control character.
    #[error("invalid name: {0}")]
    InvalidName(String),
    /// [`Names::replace`](crate::Names::replace) found the name
    /// pointing elsewhere (`None`: it does not exist); nothing changed.
    #[error("the name points at {}, not at what was expected; nothing was changed", show_target(.current))]
    NameConflict {
        /// What the name points at now.
        current: Option<Hash>,
    },
    /// A range that runs past the end of its artifact; nothing was read.
    #[error(
        "bytes {offset}..{} are not within the artifact, which has {size} bytes",
        u128::from(*offset) + u128::from(*length)
    )]
    OutOfRange {
        /// The first byte asked for.
        offset: u64,
        /// How many bytes were asked for.
        length: u64,
        /// The artifact's size.
        size: u64,
    },
    /// A range whose start is after its end.
    #[error("{start}..{end} is not a range: it starts after its end")]
    InvalidRange {
        /// Where it starts.
        start: u64,
        /// Where it ends.
        end: u64,
    },
    /// A range longer than one call may return (an app's `get-range`: the
    /// core's `range-limit`); nothing was read.
    #[error("a range of more than {limit} bytes was asked for in one call")]
    RangeTooLong {
        /// The most bytes one call returns.
        limit: u64,
    },
    /// Content given with its sha256 digest (an OCI layer, say) hashed to
    /// another; nothing was stored.
    #[error(
        "sha256 mismatch: expected {expected}, the content hashes to {actual}; nothing was stored"
    )]
    Sha256Mismatch {
        /// The digest the content was given with.
        expected: crate::sha256::Sha256Digest,
        /// The digest of what was received.
        actual: crate::sha256::Sha256Digest,
    },
    /// The storage backend failed.
    #[error("backend failure: {0}")]
    Backend(String),
    /// The storage backend has no space left for a write (a full disk or
    /// bucket quota); the operation did not complete.
    #[error("no space left in the store: {0}")]
    Full(String),
    /// The writer given to [`ArtifactStore::get_to`](crate::ArtifactStore::get_to) failed.
    #[error("writing the content out: {0}")]
    Output(String),
    /// The reader given to [`ArtifactStore::put_from`](crate::ArtifactStore::put_from)
    /// failed; nothing was stored.
    #[error("reading the content in: {0}")]
    Input(String),
    /// The store could not be opened: its backend failed (or is not in
    /// this build), with the backend's error as the source.
    #[error("cannot open store: {0}")]
    Open(#[source] BackendError),
    /// The wasm core trapped or could not run.
    #[error("the wasm core failed: {0}")]
    Core(String),
    /// An app could not be loaded: not a component, too large, or it does
    /// not fit the host's imports.
    #[error("cannot load app: {0}")]
    InvalidApp(String),
    /// An app used up its CPU budget and was stopped.
    #[error("app {app} was stopped: it used up its CPU budget of {fuel} fuel")]
    OutOfFuel {
        /// The app's id.
        app: String,
        /// The budget.
        fuel: u64,
    },
    /// An app tried to grow its memory past its limit and was stopped.
    #[error("app {app} was stopped: it tried to grow its memory past its limit of {limit} bytes")]
    OutOfMemory {
        /// The app's id.
        app: String,
        /// The limit.
        limit: usize,
    },
    /// An app ran past its wall-clock limit and was stopped (whether it
    /// was computing, sleeping or waiting).
    #[error(
        "app {app} was stopped: it ran longer than its wall-clock limit of {}",
        humantime::format_duration(*limit)
    )]
    Timeout {
        /// The app's id.
        app: String,
        /// The limit.
        limit: std::time::Duration,
    },
    /// An app tried to write more output (standard output and error
    /// together) than its limit, and was stopped; what it wrote up to the
    /// limit went out.
    #[error("app {app} was stopped: it wrote more than its output limit of {limit} bytes")]
    OutputLimit {
        /// The app's id.
        app: String,
        /// The limit, in bytes.
        limit: u64,
    },
    /// The app host was already running as many apps as its pool holds
    /// ([`crate::apps::limits::MAX_CONCURRENT_APPS`]); nothing ran, try again.
    #[error("app {app} did not start: the host is running its maximum of {limit} apps at once")]
    Busy {
        /// The app's id.
        app: String,
        /// How many apps the host runs at once.
        limit: u32,
    },
    /// An app trapped.
    #[error("app {app} trapped: {message}")]
    AppTrap {
        /// The app's id.
        app: String,
        /// What wasmtime said.
        message: String,
    },
}

fn show_target(target: &Option<Hash>) -> String {
    target.map_or_else(|| "nothing".to_owned(), |h| h.to_string())
}

impl From<BackendError> for Error {
    /// A backend failure as the store reports it: no space left stays
    /// [`Error::Full`], so that callers (and the CLI's exit status) can
    /// tell it apart.
    fn from(e: BackendError) -> Self {
        match e {
            BackendError::Full(detail) => Error::Full(detail),
            other => Error::Backend(other.to_string()),
        }
    }
}

/// Which limit of a quota an operation would have broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaKind {
    /// The total size of the app's distinct artifacts.
    Bytes,
    /// The number of the app's distinct artifacts.
    Artifacts,
    /// The size of one artifact.
    ArtifactBytes,
    /// The number of the app's names.
    Names,
    /// The number of streams (uploads, downloads) an app has open at once.
    Streams,
}

impl std::fmt::Display for QuotaKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Bytes => "total bytes",
            Self::Artifacts => "artifact count",
            Self::ArtifactBytes => "artifact size",
            Self::Names => "name count",
            Self::Streams => "open streams",
        })
    }
}

/// Why a [`Backend`](crate::backend::Backend) call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// An I/O or transport failure, with context.
    #[error("{0}")]
    Io(String),
    /// No space left for the write.
    #[error("no space left: {0}")]
    Full(String),
    /// The key is not a valid hash.
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// The backend does not keep this kind of object (or cannot do this):
    /// a refusal, never a silent success.
    #[error("this backend does not support {what}")]
    Unsupported {
        /// What it lacks (`outboards`, `aliases`, `staging`, ...).
        what: &'static str,
    },
}

impl BackendError {
    /// Wraps an I/O error with what was being done, keeping disk-full apart.
    pub fn io(context: impl std::fmt::Display, err: &std::io::Error) -> Self {
        if err.kind() == std::io::ErrorKind::StorageFull || err.raw_os_error() == Some(28) {
            Self::Full(format!("{context}: {err}"))
        } else {
            Self::Io(format!("{context}: {err}"))
        }
    }
}

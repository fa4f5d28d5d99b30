//! The one place where WIT types become the crate's types and back.

use super::bindings::{backend, ops, types};
use super::imports::digest;
use crate::{ArtifactType, BackendError, Error, Hash, Metadata, Quota, QuotaKind, Usage};

/// A hash the core returned. The core only returns valid hashes, so a bad
/// one is a fault in the core, not in the caller's input.
pub(crate) fn core_hash(hex: &str) -> Result<Hash, Error> {
    Hash::from_hex(hex).map_err(|e| Error::Core(format!("the core returned {e}")))
}

impl From<ArtifactType> for types::ArtifactType {
    fn from(t: ArtifactType) -> Self {
        match t {
            ArtifactType::WasmModule => Self::WasmModule,
            ArtifactType::AppManifest => Self::AppManifest,
            ArtifactType::ConfigBundle => Self::ConfigBundle,
            ArtifactType::Generic => Self::Generic,
        }
    }
}

impl From<types::ArtifactType> for ArtifactType {
    fn from(t: types::ArtifactType) -> Self {
        match t {
            types::ArtifactType::WasmModule => Self::WasmModule,
            types::ArtifactType::AppManifest => Self::AppManifest,
            types::ArtifactType::ConfigBundle => Self::ConfigBundle,
            types::ArtifactType::Generic => Self::Generic,
        }
    }
}

impl From<QuotaKind> for types::QuotaKind {
    fn from(k: QuotaKind) -> Self {
        match k {
            QuotaKind::Bytes => Self::Bytes,
            QuotaKind::Artifacts => Self::Artifacts,
            QuotaKind::ArtifactBytes => Self::ArtifactBytes,
            // Names and streams refuse with errors of their own.
            QuotaKind::Names | QuotaKind::Streams => Self::Artifacts,
        }
    }
}

impl From<types::QuotaKind> for QuotaKind {
    fn from(k: types::QuotaKind) -> Self {
        match k {
            types::QuotaKind::Bytes => Self::Bytes,
            types::QuotaKind::Artifacts => Self::Artifacts,
            types::QuotaKind::ArtifactBytes => Self::ArtifactBytes,
        }
    }
}

/// Metadata the core returned.
pub(crate) fn metadata(m: types::Metadata) -> Result<Metadata, Error> {
    Ok(Metadata {
        hash: core_hash(&m.hash)?,
        size: m.size,
        artifact_type: m.artifact_type.into(),
        stored_at: m.stored_at,
        reference_count: m.reference_count,
    })
}

impl From<Metadata> for types::Metadata {
    fn from(m: Metadata) -> Self {
        Self {
            hash: m.hash.to_string(),
            size: m.size,
            artifact_type: m.artifact_type.into(),
            stored_at: m.stored_at,
            reference_count: m.reference_count,
        }
    }
}

impl From<Quota> for ops::Quota {
    fn from(q: Quota) -> Self {
        Self {
            max_bytes: q.max_bytes,
            max_artifacts: q.max_artifacts,
            max_artifact_bytes: q.max_artifact_bytes,
        }
    }
}

impl From<ops::UsageTotals> for Usage {
    fn from(u: ops::UsageTotals) -> Self {
        Self {
            bytes: u.bytes,
            artifacts: u.artifacts,
        }
    }
}

/// What the core's error means for the host's caller.
impl From<types::Error> for Error {
    fn from(e: types::Error) -> Self {
        use types::Error as E;
        // The core names only valid hashes; one that is not is its fault.
        let hashed = |h: String, variant: fn(Hash) -> Error| match core_hash(&h) {
            Ok(h) => variant(h),
            Err(e) => e,
        };
        match e {
            E::NotFound(h) => hashed(h, Error::NotFound),
            E::InvalidHash(m) => Error::InvalidHash(m),
            E::Integrity(f) => match (core_hash(&f.expected), core_hash(&f.actual)) {
                (Ok(expected), Ok(actual)) => Error::Integrity { expected, actual },
                (Err(e), _) | (_, Err(e)) => e,
            },
            E::InvalidOwner(m) => Error::InvalidOwner(m),
            E::QuotaExceeded(q) => Error::QuotaExceeded {
                kind: q.kind.into(),
                limit: q.limit,
                requested: q.requested,
            },
            // No store format returns it (the WIT keeps the case in place).
            E::TooManyOwners(h) => {
                Error::Core(format!("the core answered too-many-owners for {h}"))
            }
            E::MissingContent(h) => hashed(h, Error::MissingContent),
            E::CorruptRecord(m) => Error::CorruptRecord(m),
            // The core refuses before it knows more than that the size is over.
            E::TooLarge(limit) => Error::TooLarge {
                size: limit.saturating_add(1),
                limit,
            },
            E::Contended(h) => hashed(h, Error::Contended),
            E::Backend(m) => super::imports::backend_failure(m),
        }
    }
}

/// An error as an app sees it: the store's own errors are values the app
/// handles; running out of fuel for the host's work is the same trap as
/// running out in wasm; any other failure of the host traps the app (it is
/// not the app's to handle).
#[cfg(feature = "apps")]
pub(crate) fn app_error(err: Error) -> wasmtime::Result<types::Error> {
    use types::Error as W;
    Ok(match err {
        Error::NotFound(h) => W::NotFound(h.to_string()),
        Error::InvalidHash(m) => W::InvalidHash(m),
        Error::Integrity { expected, actual } => W::Integrity(types::IntegrityFailure {
            expected: expected.to_string(),
            actual: actual.to_string(),
        }),
        Error::MissingContent(h) => W::MissingContent(h.to_string()),
        Error::CorruptRecord(m) => W::CorruptRecord(m),
        Error::TooLarge { limit, .. } => W::TooLarge(limit),
        Error::Contended(h) => W::Contended(h.to_string()),
        Error::Backend(m) => W::Backend(m),
        e @ Error::Full(_) => W::Backend(e.to_string()),
        Error::InvalidOwner(m) => W::InvalidOwner(m),
        Error::QuotaExceeded {
            kind,
            limit,
            requested,
        } => W::QuotaExceeded(types::QuotaFailure {
            kind: kind.into(),
            limit,
            requested,
        }),
        Error::OutOfFuel { .. } => return Err(wasmtime::Trap::OutOfFuel.into()),
        other => return Err(wasmtime::Error::msg(other.to_string())),
    })
}

impl From<BackendError> for backend::BackendError {
    fn from(e: BackendError) -> Self {
        match e {
            BackendError::Io(m) => Self::Io(m),
            BackendError::Full(m) => Self::Full(m),
            BackendError::InvalidKey(m) => Self::InvalidKey(m),
            // The WIT has no case for it: the core sees the refusal as text.
            e @ BackendError::Unsupported { .. } => Self::Io(e.to_string()),
        }
    }
}

impl From<crate::VersionedRecord> for backend::VersionedRecord {
    fn from(r: crate::VersionedRecord) -> Self {
        Self {
            version: r.version,
            data: r.data,
        }
    }
}

impl From<(Hash, crate::VersionedRecord)> for backend::KeyedRecord {
    fn from((key, record): (Hash, crate::VersionedRecord)) -> Self {
        Self {
            key: digest(&key),
            record: record.into(),
        }
    }
}

impl From<crate::SwapOutcome> for backend::SwapOutcome {
    fn from(outcome: crate::SwapOutcome) -> Self {
        match outcome {
            crate::SwapOutcome::Conflict => Self::Conflict,
            crate::SwapOutcome::Written(v) => Self::Written(v),
            crate::SwapOutcome::Deleted => Self::Deleted,
        }
    }
}

impl From<crate::BlobInfo> for backend::BlobInfo {
    fn from(b: crate::BlobInfo) -> Self {
        Self {
            key: digest(&b.key),
            size: b.size,
            modified: b.modified,
        }
    }
}

impl From<crate::Tag> for types::Tag {
    fn from(t: crate::Tag) -> Self {
        Self {
            name: t.name,
            hash: t.hash.to_string(),
        }
    }
}

/// What a `get-range` call's error means for the host's caller.
impl From<types::RangeError> for Error {
    fn from(e: types::RangeError) -> Self {
        match e {
            types::RangeError::Store(e) => e.into(),
            types::RangeError::OutOfRange(f) => Error::OutOfRange {
                offset: f.offset,
                length: f.length,
                size: f.size,
            },
            types::RangeError::TooLong(limit) => Error::RangeTooLong { limit },
        }
    }
}

/// A `get-range` error as an app sees it (see [`app_error`]).
#[cfg(feature = "apps")]
pub(crate) fn app_range_error(err: Error) -> wasmtime::Result<types::RangeError> {
    use types::RangeError as R;
    Ok(match err {
        Error::OutOfRange {
            offset,
            length,
            size,
        } => R::OutOfRange(types::RangeFailure {
            offset,
            length,
            size,
        }),
        Error::RangeTooLong { limit } => R::TooLong(limit),
        other => R::Store(app_error(other)?),
    })
}

/// What a `names` call's error means for the host's caller.
impl From<types::NameError> for Error {
    fn from(e: types::NameError) -> Self {
        use types::NameError as N;
        match e {
            N::Store(e) => e.into(),
            N::InvalidName(m) => Error::InvalidName(m),
            N::NameConflict(current) => match current.as_deref().map(core_hash).transpose() {
                Ok(current) => Error::NameConflict { current },
                Err(e) => e,
            },
            N::TooManyNames(limit) => Error::QuotaExceeded {
                kind: QuotaKind::Names,
                limit: limit.into(),
                requested: u64::from(limit) + 1,
            },
        }
    }
}

/// A `names` error as an app sees it (see [`app_error`]).
#[cfg(feature = "apps")]
pub(crate) fn app_name_error(err: Error) -> wasmtime::Result<types::NameError> {
    use types::NameError as N;
    Ok(match err {
        Error::InvalidName(m) => N::InvalidName(m),
        Error::NameConflict { current } => N::NameConflict(current.map(|h| h.to_string())),
        Error::QuotaExceeded {
            kind: QuotaKind::Names,
            limit,
            ..
        } => N::TooManyNames(u32::try_from(limit).unwrap_or(u32::MAX)),
        other => N::Store(app_error(other)?),
    })
}

/// A `streams` error as an app sees it (see [`app_error`]).
#[cfg(feature = "apps")]
pub(crate) fn app_stream_error(err: Error) -> wasmtime::Result<types::StreamError> {
    use types::StreamError as S;
    Ok(match err {
        Error::QuotaExceeded {
            kind: QuotaKind::Streams,
            limit,
            ..
        } => S::TooManyStreams(u32::try_from(limit).unwrap_or(u32::MAX)),
        Error::Input(_) => S::Spent,
        other => S::Store(app_error(other)?),
    })
}

//! The wasm adapter: WIT exports call [`crate::ops`] over the imported backend.

use crate::hash::Hash;
use crate::ops::{
    self, Backend, Caller, Keyed, Metadata, Place, Quota, Reply, Space, Swap, Versioned,
};
use crate::record;

wit_bindgen::generate!({
    path: "../wit",
    world: "core",
});

use artifacts::store::backend::{
    self as imports, BackendError, KeyedRecord, SwapOutcome, VersionedRecord,
};
use artifacts::store::types::{
    ArtifactType, Error, IntegrityFailure, NameError, QuotaFailure, QuotaKind, RangeError,
    RangeFailure, Tag,
};
use exports::artifacts::store::ops as ops_wit;

/// The backend the host supplies, seen through [`ops::Backend`].
struct Imported;

fn text(e: BackendError) -> String {
    match e {
        BackendError::Io(m) => m,
        BackendError::Full(m) => format!("no space left: {m}"),
        BackendError::InvalidKey(m) => format!("invalid key: {m}"),
    }
}

impl From<VersionedRecord> for Versioned {
    fn from(r: VersionedRecord) -> Self {
        Self {
            version: r.version,
            data: r.data,
        }
    }
}

impl From<SwapOutcome> for Swap {
    fn from(o: SwapOutcome) -> Self {
        match o {
            SwapOutcome::Conflict => Swap::Conflict,
            SwapOutcome::Written(v) => Swap::Written(v),
            SwapOutcome::Deleted => Swap::Deleted,
        }
    }
}

/// A listing of a record space, as [`Backend`] gives it.
fn keyed(list: Vec<KeyedRecord>) -> Vec<Keyed> {
    list.into_iter()
        .map(|k| (Hash::from_words(k.key), k.record.into()))
        .collect()
}

impl Backend for Imported {
    fn write_blob(&self, key: &Hash, data: &[u8]) -> Reply<()> {
        imports::write_blob(key.words(), data).map_err(text)
    }
    fn write_staged_blob(&self, key: &Hash) -> Reply<()> {
        imports::write_staged_blob(key.words()).map_err(text)
    }
    fn read_blob(&self, key: &Hash) -> Reply<Option<Vec<u8>>> {
        imports::read_blob(key.words()).map_err(text)
    }
    fn blob_size(&self, key: &Hash) -> Reply<Option<u64>> {
        imports::blob_size(key.words()).map_err(text)
    }
    fn read_blob_range(&self, key: &Hash, offset: u64, len: u64) -> Reply<Option<Vec<u8>>> {
        imports::read_blob_range(key.words(), offset, len).map_err(text)
    }
    fn write_outboard(&self, key: &Hash, data: &[u8]) -> Reply<()> {
        imports::write_outboard(key.words(), data).map_err(text)
    }
    fn read_outboard(&self, key: &Hash, ranges: &[(u64, u64)]) -> Reply<Option<Vec<Vec<u8>>>> {
        imports::read_outboard(key.words(), ranges).map_err(text)
    }
    fn outboard_size(&self, key: &Hash) -> Reply<Option<u64>> {
        imports::outboard_size(key.words()).map_err(text)
    }
    fn delete_outboard(&self, key: &Hash) -> Reply<bool> {
        imports::delete_outboard(key.words()).map_err(text)
    }
    fn delete_blob(&self, key: &Hash, record_version: Option<u64>) -> Reply<bool> {
        imports::delete_blob(key.words(), record_version).map_err(text)
    }
    fn list_blobs(&self, after: Option<&Hash>, limit: u32) -> Reply<Vec<(Hash, u64, u64)>> {
        let blobs = imports::list_blobs(after.map(Hash::words), limit).map_err(text)?;
        Ok(blobs
            .into_iter()
            .map(|b| (Hash::from_words(b.key), b.size, b.modified))
            .collect())
    }
    fn read_record(&self, at: Place) -> Reply<Option<Versioned>> {
        let key = at.key.words();
        match at.space {
            Space::Shared => imports::read_record(key),
            Space::Owner(owner) => imports::read_entry(owner.words(), key),
        }
        .map(|r| r.map(Versioned::from))
        .map_err(text)
    }
    fn swap_record(&self, at: Place, expected: Option<u64>, new: Option<&[u8]>) -> Reply<Swap> {
        let key = at.key.words();
        match at.space {
            Space::Shared => imports::swap_record(key, expected, new),
            Space::Owner(owner) => imports::swap_entry(owner.words(), key, expected, new),
        }
        .map(Swap::from)
        .map_err(text)
    }
    fn list_records(&self, space: Space, after: Option<&Hash>, limit: u32) -> Reply<Vec<Keyed>> {
        let after = after.map(Hash::words);
        match space {
            Space::Shared => imports::list_records(after, limit),
            Space::Owner(owner) => imports::list_entries(owner.words(), after, limit),
        }
        .map(keyed)
        .map_err(text)
    }
    fn list_owners(&self, after: Option<&Hash>, limit: u32) -> Reply<Vec<Hash>> {
        let owners = imports::list_owners(after.map(Hash::words), limit).map_err(text)?;
        Ok(owners.into_iter().map(Hash::from_words).collect())
    }
    fn now(&self) -> u64 {
        imports::now()
    }
}

/// The store's dedup, as the host configured it.
fn dedup() -> ops::Dedup {
    if imports::private_dedup() {
        ops::Dedup::Private
    } else {
        ops::Dedup::Shared
    }
}

impl From<ops::Error> for Error {
    fn from(e: ops::Error) -> Self {
        match e {
            ops::Error::NotFound(h) => Error::NotFound(h),
            ops::Error::InvalidHash(m) => Error::InvalidHash(m),
            ops::Error::Integrity { expected, actual } => {
                Error::Integrity(IntegrityFailure { expected, actual })
            }
            ops::Error::InvalidOwner(m) => Error::InvalidOwner(m),
            ops::Error::QuotaExceeded {
                kind,
                limit,
                requested,
            } => Error::QuotaExceeded(QuotaFailure {
                kind: match kind {
                    ops::QuotaKind::Bytes => QuotaKind::Bytes,
                    ops::QuotaKind::Artifacts => QuotaKind::Artifacts,
                    ops::QuotaKind::ArtifactBytes => QuotaKind::ArtifactBytes,
                    // Only names calls refuse this, as `name-error`.
                    ops::QuotaKind::Names => return Error::Backend("too many names".into()),
                },
                limit,
                requested,
            }),
            ops::Error::MissingContent(h) => Error::MissingContent(h),
            ops::Error::CorruptRecord(m) => Error::CorruptRecord(m),
            ops::Error::Contended(h) => Error::Contended(h),
            ops::Error::Backend(m) => Error::Backend(m),
            // Only names calls fail so, as `name-error`.
            ops::Error::InvalidName(m) => Error::Backend(format!("invalid name: {m}")),
            ops::Error::NameConflict(_) => Error::Backend("name conflict".into()),
            // Only get-range fails so, as `range-error`.
            ops::Error::OutOfRange { .. } | ops::Error::RangeTooLong(_) => {
                Error::Backend("a range outside its artifact".into())
            }
        }
    }
}

/// A get-range call's error: its own cases, else the store's.
fn range_error(e: ops::Error) -> RangeError {
    match e {
        ops::Error::OutOfRange {
            offset,
            length,
            size,
        } => RangeError::OutOfRange(RangeFailure {
            offset,
            length,
            size,
        }),
        ops::Error::RangeTooLong(limit) => RangeError::TooLong(limit),
        other => RangeError::Store(other.into()),
    }
}

/// A names call's error: its own cases, else the store's.
fn name_error(e: ops::Error) -> NameError {
    match e {
        ops::Error::InvalidName(m) => NameError::InvalidName(m),
        ops::Error::NameConflict(current) => NameError::NameConflict(current),
        ops::Error::QuotaExceeded {
            kind: ops::QuotaKind::Names,
            limit,
            ..
        } => NameError::TooManyNames(u32::try_from(limit).unwrap_or(u32::MAX)),
        other => NameError::Store(other.into()),
    }
}

fn to_wit_type(t: record::ArtifactType) -> ArtifactType {
    match t {
        record::ArtifactType::WasmModule => ArtifactType::WasmModule,
        record::ArtifactType::AppManifest => ArtifactType::AppManifest,
        record::ArtifactType::ConfigBundle => ArtifactType::ConfigBundle,
        record::ArtifactType::Generic => ArtifactType::Generic,
    }
}

fn from_wit_type(t: ArtifactType) -> record::ArtifactType {
    match t {
        ArtifactType::WasmModule => record::ArtifactType::WasmModule,
        ArtifactType::AppManifest => record::ArtifactType::AppManifest,
        ArtifactType::ConfigBundle => record::ArtifactType::ConfigBundle,
        ArtifactType::Generic => record::ArtifactType::Generic,
    }
}

fn to_wit_metadata(m: Metadata) -> artifacts::store::types::Metadata {
    artifacts::store::types::Metadata {
        hash: m.hash,
        size: m.size,
        artifact_type: to_wit_type(m.artifact_type),
        stored_at: m.stored_at,
        reference_count: m.reference_count,
    }
}

struct Core;

type WitMetadata = artifacts::store::types::Metadata;

fn metas(list: Vec<Metadata>) -> Vec<WitMetadata> {
    list.into_iter().map(to_wit_metadata).collect()
}

/// The host: its own references, sees everything, the store's dedup.
fn host() -> Caller<'static> {
    Caller {
        dedup: dedup(),
        ..Caller::HOST
    }
}

/// One owner: its own references, no admin rights, its quota.
fn owner(id: &str, quota: Quota) -> Caller<'_> {
    Caller {
        owner: id,
        admin: false,
        quota,
        dedup: dedup(),
    }
}

/// The WIT's caller as the core's: the one place a call's view is decided.
fn caller(c: &ops_wit::Caller) -> Caller<'_> {
    match c {
        ops_wit::Caller::Host => host(),
        ops_wit::Caller::Owner(o) => owner(
            &o.id,
            Quota {
                max_bytes: o.quota.max_bytes,
                max_artifacts: o.quota.max_artifacts,
                max_artifact_bytes: o.quota.max_artifact_bytes,
            },
        ),
    }
}

impl ops_wit::Guest for Core {
    fn list_limit() -> u32 {
        ops::LIST_LIMIT
    }
    fn range_limit() -> u64 {
        ops::RANGE_LIMIT
    }
    fn name_limit() -> u32 {
        record::MAX_NAMES as u32
    }
    fn put(
        c: ops_wit::Caller,
        content: Vec<u8>,
        artifact_type: ArtifactType,
    ) -> Result<String, Error> {
        let ty = from_wit_type(artifact_type);
        Ok(ops::put(&Imported, &caller(&c), &content, ty)?)
    }
    fn put_staged(
        c: ops_wit::Caller,
        size: u64,
        artifact_type: ArtifactType,
        hash: String,
    ) -> Result<String, Error> {
        let ty = from_wit_type(artifact_type);
        Ok(ops::put_staged(&Imported, &caller(&c), size, ty, &hash)?)
    }
    fn get(c: ops_wit::Caller, hash: String) -> Result<Vec<u8>, Error> {
        Ok(ops::get(&Imported, &caller(&c), &hash)?)
    }
    fn open(
        c: ops_wit::Caller,
        hash: String,
        whole_below: u64,
        with_count: bool,
    ) -> Result<ops_wit::Opened, Error> {
        let opened = ops::open(&Imported, &caller(&c), &hash, whole_below, with_count)?;
        Ok(ops_wit::Opened {
            metadata: to_wit_metadata(opened.metadata),
            content: opened.content,
        })
    }
    fn prove_range(
        hash: String,
        size: u64,
        offset: u64,
        length: u64,
    ) -> Result<Vec<u8>, RangeError> {
        ops::prove_range(&Imported, &hash, size, offset, length).map_err(range_error)
    }
    fn contains(c: ops_wit::Caller, hash: String) -> Result<bool, Error> {
        Ok(ops::contains(&Imported, &caller(&c), &hash)?)
    }
    fn missing(c: ops_wit::Caller, hashes: Vec<String>) -> Result<Vec<String>, Error> {
        Ok(ops::missing(&Imported, &caller(&c), &hashes)?)
    }
    fn release(c: ops_wit::Caller, hash: String) -> Result<u64, Error> {
        Ok(ops::release(&Imported, &caller(&c), &hash)?)
    }
    fn remove(c: ops_wit::Caller, hash: String) -> Result<(), Error> {
        Ok(ops::remove(&Imported, &caller(&c), &hash)?)
    }
    fn stat(c: ops_wit::Caller, hash: String) -> Result<WitMetadata, Error> {
        Ok(to_wit_metadata(ops::stat(&Imported, &caller(&c), &hash)?))
    }
    fn count(c: ops_wit::Caller) -> Result<u64, Error> {
        Ok(ops::count(&Imported, &caller(&c))?)
    }
    fn total_bytes(c: ops_wit::Caller) -> Result<u64, Error> {
        Ok(ops::total_bytes(&Imported, &caller(&c))?)
    }
    fn list(
        c: ops_wit::Caller,
        after: Option<String>,
        limit: u32,
    ) -> Result<Vec<WitMetadata>, Error> {
        let listed = ops::list(&Imported, &caller(&c), after.as_deref(), limit)?;
        Ok(metas(listed))
    }
    fn usage(c: ops_wit::Caller) -> Result<ops_wit::UsageTotals, Error> {
        let u = ops::usage(&Imported, &caller(&c))?;
        Ok(ops_wit::UsageTotals {
            bytes: u.bytes,
            artifacts: u.artifacts,
        })
    }
    fn tag_set(
        c: ops_wit::Caller,
        name: String,
        hash: String,
    ) -> Result<Option<String>, NameError> {
        ops::tag_set(&Imported, &caller(&c), &name, &hash).map_err(name_error)
    }
    fn tag_get(c: ops_wit::Caller, name: String) -> Result<Option<String>, NameError> {
        ops::tag_get(&Imported, &caller(&c), &name).map_err(name_error)
    }
    fn tag_delete(c: ops_wit::Caller, name: String) -> Result<Option<String>, NameError> {
        ops::tag_delete(&Imported, &caller(&c), &name).map_err(name_error)
    }
    fn tag_replace(
        c: ops_wit::Caller,
        name: String,
        expected: Option<String>,
        new: String,
    ) -> Result<(), NameError> {
        let expected = expected.as_deref();
        ops::tag_replace(&Imported, &caller(&c), &name, expected, &new).map_err(name_error)
    }
    fn tag_list(
        c: ops_wit::Caller,
        prefix: String,
        after: Option<String>,
        limit: u32,
    ) -> Result<Vec<Tag>, NameError> {
        let listed = ops::tag_list(&Imported, &caller(&c), &prefix, after.as_deref(), limit)
            .map_err(name_error)?;
        Ok(listed
            .into_iter()
            .map(|(name, hash)| Tag { name, hash })
            .collect())
    }
}

impl exports::artifacts::store::maintenance::Guest for Core {
    fn gc(grace_ms: u64) -> Result<exports::artifacts::store::maintenance::GcReport, Error> {
        let r = ops::gc(&Imported, grace_ms)?;
        Ok(exports::artifacts::store::maintenance::GcReport {
            orphans_removed: r.orphans_removed,
            bytes_freed: r.bytes_freed,
            orphans_in_grace: r.orphans_in_grace,
            deletions_finished: r.deletions_finished,
        })
    }
    fn migrate() -> Result<u64, Error> {
        Ok(ops::migrate(&Imported)?)
    }
    fn settle(id: String) -> Result<Vec<String>, Error> {
        Ok(ops::settle(&Imported, &owner(&id, Quota::UNLIMITED))?)
    }
}

impl exports::artifacts::store::tree::Guest for Core {
    fn subtree(data: Vec<u8>, offset: u64) -> Result<Vec<u8>, String> {
        crate::tree::subtree(&data, offset).map(Vec::from)
    }
    fn subtree_groups(data: Vec<u8>, offset: u64) -> Result<(Vec<u8>, Vec<u8>), String> {
        let (cv, groups) = crate::outboard::groups(&data, offset)?;
        Ok((cv.to_vec(), groups.concat()))
    }
    fn store_outboard(hash: String, size: u64, groups: Vec<u8>) -> Result<bool, String> {
        let hash = Hash::parse(&hash)?;
        let groups = crate::outboard::cvs(&groups)?;
        ops::store_outboard(&Imported, dedup(), &hash, size, &groups)
    }
    fn parent(left: Vec<u8>, right: Vec<u8>) -> Result<Vec<u8>, String> {
        crate::tree::parent(&left, &right).map(Vec::from)
    }
    fn root(left: Vec<u8>, right: Vec<u8>) -> Result<String, String> {
        crate::tree::root(&left, &right)
    }
}

export!(Core);

//! The backend contract, checked on every backend the crate ships.

use artifacts::backend::conformance::check;
use artifacts::backend::{
    Backend, BackendError, BackendResult, BlobInfo, Listed, Space, Swap, SwapOutcome,
    VersionedRecord,
};
use artifacts::backend::{CleanedUp, Side, SideInfo, SideKind, Staging};
use artifacts::{FileBackend, Hash, MemoryBackend};

#[test]
fn memory_backend_conforms() {
    check(&MemoryBackend::new()).unwrap();
}

#[test]
fn file_backend_conforms() {
    let dir = tempfile::tempdir().unwrap();
    check(&FileBackend::open(dir.path()).unwrap()).unwrap();
    // Staging (stored twice under one key, too) leaves nothing in tmp/.
    let left: Vec<_> = std::fs::read_dir(dir.path().join("tmp"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[cfg(feature = "s3")]
#[test]
fn s3_backend_conforms() {
    let Some(garage) = crate::garage::shared_or_skip("s3_backend_conforms") else {
        return;
    };
    let config = garage.config(0, &crate::garage::fresh_prefix("conformance"));
    check(&artifacts::S3Backend::open(&config).unwrap()).unwrap();
}

/// A memory backend that mishandles one kind of side object: says `Ok` to
/// writing one and keeps nothing (`refuse` false), or refuses honestly
/// with `Unsupported` (`refuse` true). Written out method by method: this
/// is what a backend implements.
struct Lossy {
    inner: MemoryBackend,
    kind: SideKind,
    refuse: bool,
}

impl Backend for Lossy {
    fn write_blob(&self, key: &Hash, data: &[u8]) -> BackendResult<()> {
        self.inner.write_blob(key, data)
    }
    fn read_blob_range(&self, key: &Hash, offset: u64, len: u64) -> BackendResult<Option<Vec<u8>>> {
        self.inner.read_blob_range(key, offset, len)
    }
    fn blob_size(&self, key: &Hash) -> BackendResult<Option<u64>> {
        self.inner.blob_size(key)
    }
    fn delete_blob(&self, key: &Hash, record_version: Option<u64>) -> BackendResult<bool> {
        self.inner.delete_blob(key, record_version)
    }
    fn list_blobs(&self, after: Option<&Hash>, limit: u32) -> BackendResult<Vec<BlobInfo>> {
        self.inner.list_blobs(after, limit)
    }
    fn read_record(&self, space: Space, key: &Hash) -> BackendResult<Option<VersionedRecord>> {
        self.inner.read_record(space, key)
    }
    fn swap_record(&self, space: Space, key: &Hash, swap: Swap<'_>) -> BackendResult<SwapOutcome> {
        self.inner.swap_record(space, key, swap)
    }
    fn list_records(&self, space: Space, after: Option<&Hash>, limit: u32) -> Listed {
        self.inner.list_records(space, after, limit)
    }
    fn list_owners(&self, after: Option<&Hash>, limit: u32) -> BackendResult<Vec<Hash>> {
        self.inner.list_owners(after, limit)
    }
    fn write_side(&self, key: &Side, data: &[u8]) -> BackendResult<()> {
        match key.kind() == self.kind {
            true if self.refuse => Err(BackendError::Unsupported {
                what: self.kind.name(),
            }),
            // The bug this catches: success, and nothing kept.
            true => Ok(()),
            false => self.inner.write_side(key, data),
        }
    }
    fn read_side(&self, key: &Side) -> BackendResult<Option<Vec<u8>>> {
        self.inner.read_side(key)
    }
    fn side_size(&self, key: &Side) -> BackendResult<Option<u64>> {
        self.inner.side_size(key)
    }
    fn delete_side(&self, key: &Side) -> BackendResult<bool> {
        self.inner.delete_side(key)
    }
    fn list_side(
        &self,
        kind: SideKind,
        after: Option<&Side>,
        limit: u32,
    ) -> BackendResult<Vec<SideInfo>> {
        self.inner.list_side(kind, after, limit)
    }
    fn stage(&self) -> BackendResult<Staging> {
        self.inner.stage()
    }
    fn clean_up(&self, older_than_ms: u64) -> BackendResult<CleanedUp> {
        self.inner.clean_up(older_than_ms)
    }
    fn finish_migration(&self) -> BackendResult<()> {
        self.inner.finish_migration()
    }
}

#[test]
fn a_backend_that_drops_a_side_object_fails_and_one_that_refuses_passes() {
    for kind in SideKind::ALL {
        let lossy = |refuse| Lossy {
            inner: MemoryBackend::new(),
            kind,
            refuse,
        };
        let failure = check(&lossy(false)).expect_err(kind.name());
        assert!(
            failure.contains(kind.name()) || failure.contains("quarantine"),
            "{failure}"
        );
        check(&lossy(true)).unwrap_or_else(|e| panic!("refusing {}: {e}", kind.name()));
    }
}

//! The backend contract, checked on every backend the crate ships.

use artifacts::backend::conformance::check;
use artifacts::{FileBackend, MemoryBackend};

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

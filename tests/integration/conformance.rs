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
}

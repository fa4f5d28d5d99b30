//! Unit tests of the store's rules over the fake backend
//! (`fake_backend.rs`), one file per topic.

mod costs;
mod listing;
mod maintenance;
mod owners;
mod put_get;
mod ranges;
mod references;

use crate::fake_backend::Fake;
use crate::hash::{Hash, hash_hex, validate};
use crate::ops::*;
use crate::record::{ArtifactType, State, Usage};

/// A hash the tests hold as text, as the backend takes it.
fn key(hex: &str) -> Hash {
    Hash::parse(hex).unwrap()
}

const G: ArtifactType = ArtifactType::Generic;
const H: Caller = Caller::HOST;

fn app(owner: &str, quota: Quota) -> Caller<'_> {
    Caller {
        owner,
        admin: false,
        quota,
        dedup: Dedup::Shared,
    }
}

const NO_LIMIT: Quota = Quota::UNLIMITED;

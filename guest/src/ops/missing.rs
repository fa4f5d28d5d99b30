//! `missing`: which of a batch of hashes the caller cannot see, in one call
//! (REAPI's FindMissingBlobs): what a client must still upload.

use super::backend::Backend;
use super::caller::Caller;
use super::error::Outcome;
use super::read::contains;

/// The hashes of `hashes` that the caller cannot see (for an owner: does
/// not hold), in the order given, each once; an invalid hash refuses the
/// whole batch. Each costs what `contains` costs: one record read (for an
/// owner, of its own entry). The host sends at most `list-limit` a call.
pub fn missing(backend: &impl Backend, caller: &Caller, hashes: &[String]) -> Outcome<Vec<String>> {
    let mut missing: Vec<String> = Vec::new();
    for hash in hashes {
        if !contains(backend, caller, hash)? && !missing.contains(hash) {
            missing.push(hash.clone());
        }
    }
    Ok(missing)
}

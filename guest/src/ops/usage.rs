//! An owner's usage as its quota counts it, and settling its finished leaves.

use super::backend::Backend;
use super::caller::Caller;
use super::error::{Outcome, checked_caller};
use super::steps::index::{At, hash_of, owner_key};
use super::steps::usage::{read_usage, settle_leave, untracked, waiting};
use crate::record::Usage;

/// The owner's usage, as its quota counts it (first puts under way and
/// refunds waiting to be settled included).
pub fn usage(backend: &impl Backend, caller: &Caller) -> Outcome<Usage> {
    checked_caller(caller)?;
    let (_, u) = read_usage(backend, &owner_key(caller.owner))?;
    let (bytes, artifacts) = waiting(&u);
    Ok(Usage {
        bytes: u.bytes.saturating_add(bytes),
        artifacts: u.artifacts.saturating_add(artifacts),
        marks: Vec::new(),
    })
}

/// Settles every finished leave of the owner (see `waiting`): the host
/// calls it when what it counts as the owner's run is over, so that the
/// work of finishing the last owner's deletions is never the app's to
/// time. Returns the hashes whose deletion it finished (their blobs are
/// gone: the host drops what it keeps beside them).
pub fn settle(backend: &impl Backend, caller: &Caller) -> Outcome<Vec<String>> {
    checked_caller(caller)?;
    let space = owner_key(caller.owner);
    if untracked(&space) {
        return Ok(Vec::new());
    }
    let (_, u) = read_usage(backend, &space)?;
    let mut finished = Vec::new();
    for m in u.marks.iter().filter(|m| !m.join) {
        let hash = hash_of(&m.key);
        let at = At {
            space: &space,
            hash: &hash,
        };
        if settle_leave(backend, at, m.version)? {
            finished.push(hash.to_string());
        }
    }
    Ok(finished)
}

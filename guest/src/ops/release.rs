//! Dropping references: an owner's release and remove, the host's remove.

use super::artifact::{delete, finish_delete, read_artifact};
use super::backend::{Backend, Swap};
use super::caller::Caller;
use super::error::{Error, Outcome, be, checked, checked_caller};
use super::index::{At, owner_key};
use super::list::pages;
use super::read::shared;
use super::transition::finish_remove;
use super::{LIST_LIMIT, MAX_ATTEMPTS};
use crate::record::{EntryState, State};

/// Sets the caller's references to `hash` with `update(current) -> new`;
/// at 0 the caller leaves the artifact (deleted when no owner is left).
/// Returns the caller's new count.
fn drop_references(
    backend: &impl Backend,
    caller: &Caller,
    hash: &str,
    update: impl Fn(u64) -> u64,
) -> Outcome<u64> {
    checked_caller(caller)?;
    checked(hash)?;
    let space = owner_key(caller.owner);
    let at = At {
        space: &space,
        hash,
    };
    for _ in 0..MAX_ATTEMPTS {
        let (v, mut e) = match at.entry(backend)? {
            None => return Err(Error::NotFound(hash.to_string())),
            Some((v, e)) if e.state == EntryState::Removing => {
                finish_remove(backend, caller, at, v, &e)?;
                return Err(Error::NotFound(hash.to_string()));
            }
            Some((_, e)) if e.state == EntryState::Adding => {
                return Err(Error::NotFound(hash.to_string()));
            }
            Some(found) => found,
        };
        let left = update(e.count);
        if left > 0 {
            e.count = left;
            if !matches!(at.swap_entry(backend, Some(v), Some(&e))?, Swap::Conflict) {
                return Ok(left);
            }
            continue;
        }
        e.state = EntryState::Removing;
        if let Swap::Written(removing) = at.swap_entry(backend, Some(v), Some(&e))? {
            finish_remove(backend, caller, at, removing, &e)?;
            return Ok(0);
        }
    }
    Err(Error::Contended(hash.to_string()))
}

/// Drops one of the caller's references; returns how many it has left.
/// When no owner has any left, the artifact is deleted.
pub fn release(backend: &impl Backend, caller: &Caller, hash: &str) -> Outcome<u64> {
    drop_references(backend, caller, hash, |n| n - 1)
}

/// Drops all of the caller's references, deleting the artifact if no other
/// owner has any. For an admin, deletes the artifact whatever its owners:
/// every owner's references are dropped (an admin-only cost of one read
/// per owner in the store).
pub fn remove(backend: &impl Backend, caller: &Caller, hash: &str) -> Outcome<()> {
    if !caller.admin {
        return drop_references(backend, caller, hash, |_| 0).map(drop);
    }
    checked(hash)?;
    if shared(backend, hash)?.is_none() {
        return Err(Error::NotFound(hash.to_string()));
    }
    let owners = |after: Option<&str>| be(backend.list_owners(after, LIST_LIMIT));
    pages(owners, String::clone, |owners| {
        for space in &owners {
            let at = At { space, hash };
            for _ in 0..MAX_ATTEMPTS {
                let (v, mut e) = match at.entry(backend)? {
                    Some(found) if found.1.state != EntryState::Adding => found,
                    _ => break,
                };
                if e.state == EntryState::Live {
                    e.state = EntryState::Removing;
                    let Swap::Written(v) = at.swap_entry(backend, Some(v), Some(&e))? else {
                        continue;
                    };
                    finish_remove(backend, caller, at, v, &e)?;
                } else {
                    finish_remove(backend, caller, at, v, &e)?;
                }
                break;
            }
        }
        Ok(())
    })?;
    // What is left has no owner holding it (a count a crash left too high)
    // unless a first put is under way: then that put wins, as if after us.
    for _ in 0..MAX_ATTEMPTS {
        let Some((version, record)) = read_artifact(backend, hash)? else {
            return Ok(());
        };
        if record.state == State::Deleting {
            return finish_delete(backend, hash, version);
        }
        if record.marks.iter().any(|m| m.join) {
            return Ok(());
        }
        if delete(backend, hash, version, record)? {
            return Ok(());
        }
    }
    Err(Error::Contended(hash.to_string()))
}

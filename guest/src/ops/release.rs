//! Dropping references: an owner's release and remove, the host's remove.

use super::backend::{Backend, Swap};
use super::caller::{Caller, Dedup};
use super::error::{Error, Outcome, QuotaKind, be, checked, checked_caller, within};
use super::steps::artifact::{delete, finish_delete, read_artifact, shared};
use super::steps::index::{At, owner_key};
use super::steps::pages::pages;
use super::steps::transition::finish_remove;
use super::steps::usage::{MAX_WAITING, read_usage, untracked, waiting};
use super::steps::{LIST_LIMIT, MAX_ATTEMPTS};
use crate::hash::Hash;
use crate::record::{Entry, EntryState, State};

/// Changes the caller's references at `at` with `update`, which gives the
/// entry's new `(count, named)` (`None`: no change); at a count of 0 the
/// caller leaves the artifact (deleted when no owner is left). Returns the
/// references left that are not names' (`count - named`). `capped`: a leave
/// may be refused for too many refunds waiting (not a name's: its name is
/// gone already, and names are few).
fn drop_references(
    backend: &impl Backend,
    caller: &Caller,
    at: At,
    capped: bool,
    update: impl Fn(&Entry) -> Outcome<Option<(u64, u64)>>,
) -> Outcome<u64> {
    let gone = || Error::NotFound(at.hash.to_string());
    for _ in 0..MAX_ATTEMPTS {
        let (v, mut e) = match at.entry(backend)? {
            None => return Err(gone()),
            Some((v, e)) if e.state == EntryState::Removing => {
                finish_remove(backend, caller, at, v, &e)?;
                return Err(gone());
            }
            Some((_, e)) if e.state == EntryState::Adding => return Err(gone()),
            Some(found) => found,
        };
        let Some((count, named)) = update(&e)? else {
            return Ok(e.count - e.named);
        };
        (e.count, e.named) = (count, named);
        if count > 0 {
            if !matches!(at.swap_entry(backend, Some(v), Some(&e))?, Swap::Conflict) {
                return Ok(count - named);
            }
            continue;
        }
        if capped {
            refuse_if_too_many_waiting(backend, caller, at)?;
        }
        e.state = EntryState::Removing;
        if let Swap::Written(removing) = at.swap_entry(backend, Some(v), Some(&e))? {
            finish_remove(backend, caller, at, removing, &e)?;
            return Ok(0);
        }
    }
    Err(Error::Contended(at.hash.to_string()))
}

/// Under private dedup an owner's last release leaves a refund waiting to
/// be settled in its usage record (`usage::waiting`); past
/// [`MAX_WAITING`] of them the release is refused (the quota's artifact
/// limit, before anything changes), so the record stays bounded.
fn refuse_if_too_many_waiting(backend: &impl Backend, caller: &Caller, at: At) -> Outcome<()> {
    if caller.dedup != Dedup::Private || caller.admin || untracked(at.space) {
        return Ok(());
    }
    let (_, u) = read_usage(backend, at.space)?;
    let (_, waiting) = waiting(&u);
    within(
        QuotaKind::Artifacts,
        MAX_WAITING as u64,
        waiting.saturating_add(1),
    )
}

/// The caller's entry of `hash`, checked.
fn own(caller: &Caller, hash: &str) -> Outcome<(Hash, Hash)> {
    checked_caller(caller)?;
    Ok((owner_key(caller.owner), checked(hash)?))
}

/// Drops one of the caller's own references (not one a name holds);
/// returns how many it has left. When no owner has any left, the artifact
/// is deleted. With only names' references left, nothing changes and the
/// answer is 0: the names keep it.
pub fn release(backend: &impl Backend, caller: &Caller, hash: &str) -> Outcome<u64> {
    let (space, hash) = own(caller, hash)?;
    let at = At {
        space: &space,
        hash: &hash,
    };
    drop_references(backend, caller, at, true, |e| {
        Ok((e.count > e.named).then(|| (e.count - 1, e.named)))
    })
}

/// Drops the reference a name of the owner at `at` held (see
/// `ops::names`); nothing if the entry is gone or no name holds it (the
/// host's remove deleted it meanwhile).
pub(super) fn drop_named(backend: &impl Backend, caller: &Caller, at: At) -> Outcome<()> {
    let dropped = drop_references(backend, caller, at, false, |e| {
        Ok((e.named > 0).then(|| (e.count - 1, e.named - 1)))
    });
    match dropped {
        Ok(_) | Err(Error::NotFound(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Drops all of the caller's own references (names keep theirs), deleting
/// the artifact if no other owner has any. For an admin, deletes the
/// artifact whatever its owners and names: every owner's names on it and
/// references are dropped (an admin-only cost of a few reads per owner in
/// the store).
pub fn remove(backend: &impl Backend, caller: &Caller, hash: &str) -> Outcome<()> {
    if !caller.admin {
        // Its own references; what names hold stays.
        let (space, hash) = own(caller, hash)?;
        let at = At {
            space: &space,
            hash: &hash,
        };
        return drop_references(backend, caller, at, true, |e| {
            Ok((e.count > e.named).then_some((e.named, e.named)))
        })
        .map(drop);
    }
    let hash = &checked(hash)?;
    if shared(backend, hash)?.is_none() {
        return Err(Error::NotFound(hash.to_string()));
    }
    let owners = |after: Option<&Hash>| be(backend.list_owners(after, LIST_LIMIT));
    pages(
        owners,
        |h: &Hash| *h,
        |owners| {
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
        },
    )?;
    // What is left has no owner holding it (a count a crash left too high)
    // unless a first put is under way: then that put wins, as if after us.
    for _ in 0..MAX_ATTEMPTS {
        let Some((version, record)) = read_artifact(backend, hash)? else {
            return Ok(());
        };
        if record.state == State::Deleting {
            return finish_delete(backend, hash, version, record.size);
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

//! An owner's first put (`Adding`) and last release (`Removing`): the
//! entry, the artifact record and the usage changed together, finished or
//! rolled back by whoever meets them.

use super::artifact::{join, leave, unmark_artifact};
use super::content::Content;
use super::index::{At, Progress, Unmark};
use super::names::forget;
use super::usage::{account, unmark_usage};
use crate::ops::backend::{Backend, Swap};
use crate::ops::caller::{Caller, Dedup, Quota};
use crate::ops::error::Outcome;
use crate::record::{Entry, EntryState};

/// Finishes the first put whose entry is `Adding` at `v`: charge the
/// owner's usage, count it into the artifact, confirm the entry, clear the
/// marks. Returns false if the entry was rolled back meanwhile (the put
/// starts over). A refused quota or a failure rolls the entry back.
pub(in crate::ops) fn finish_add(
    b: &impl Backend,
    caller: &Caller,
    at: At,
    v: u64,
    entry: &Entry,
    content: Content,
) -> Outcome<bool> {
    let applied = account(b, at, v, entry.size, true, caller.quota)
        .and_then(|()| join(b, caller.dedup, at, v, entry, content));
    let origin = match applied {
        Ok(Some(origin)) => origin,
        Ok(None) => return confirmed_or_undone(b, at, v),
        Err(e) => {
            // Best effort: what is left, gc rolls back after the grace period.
            let _ = roll_back(b, at, v);
            return Err(e);
        }
    };
    let live = Entry {
        state: EntryState::Live,
        count: 1,
        incarnation: v,
        origin,
        ..entry.clone()
    };
    if matches!(at.swap_entry(b, Some(v), Some(&live))?, Swap::Conflict) {
        return confirmed_or_undone(b, at, v);
    }
    unmark_artifact(b, at, v, Unmark::Joined)?;
    unmark_usage(b, at, v, Unmark::Joined)?;
    Ok(true)
}

/// After the entry of a first put at `v` moved on under us: if someone
/// else (a put of the same owner) confirmed it, clear the marks and report
/// it done; if it was rolled back (by gc, or a put refused its quota), undo
/// what is ours and report that the put must start over.
fn confirmed_or_undone(b: &impl Backend, at: At, v: u64) -> Outcome<bool> {
    if at.progress(b, v)? == Progress::Confirmed {
        unmark_artifact(b, at, v, Unmark::Joined)?;
        unmark_usage(b, at, v, Unmark::Joined)?;
        Ok(true)
    } else {
        undo_add(b, at, v)?;
        Ok(false)
    }
}

/// Undoes whatever a first put at `v` applied (its entry is gone or moved on).
fn undo_add(b: &impl Backend, at: At, v: u64) -> Outcome<()> {
    // Both, even if one fails (a damaged artifact record must not keep the
    // owner charged).
    let usage = unmark_usage(b, at, v, Unmark::UndoJoin);
    unmark_artifact(b, at, v, Unmark::UndoJoin).and(usage)
}

/// Rolls back the first put whose entry is `Adding` at `v`: deletes the
/// entry first (so nobody confirms it any more), then undoes its marks.
pub(in crate::ops) fn roll_back(b: &impl Backend, at: At, v: u64) -> Outcome<()> {
    at.swap_entry(b, Some(v), None)?;
    if at.progress(b, v)? == Progress::Confirmed {
        return Ok(()); // confirmed before we got to it
    }
    undo_add(b, at, v)
}

/// Finishes the last release whose entry is `Removing` at `v`: count the
/// owner out of the artifact, refund its usage, delete the entry, clear the
/// marks. Idempotent; anyone may finish it. Under private dedup (but for
/// the host's remove, which deletes the artifact) the usage's leave mark
/// stays: its bytes count until `usage::settle` or gc has finished the
/// content's deletion, whether or not this leave was the last.
pub(in crate::ops) fn finish_remove(
    b: &impl Backend,
    caller: &Caller,
    at: At,
    v: u64,
    entry: &Entry,
) -> Outcome<()> {
    if entry.named > 0 && at.still_at(b, v)? {
        // Only the host's remove takes an entry that names hold: the names
        // go first, so that none is left pointing at a deleted artifact
        // (unless this finisher is stale: a newer entry has names of its own).
        forget(b, at.space, at.hash)?;
    }
    leave(b, caller.dedup, at, v, &entry.origin)?;
    account(b, at, v, entry.size, false, Quota::UNLIMITED)?;
    at.swap_entry(b, Some(v), None)?;
    unmark_artifact(b, at, v, Unmark::Left)?;
    if caller.dedup == Dedup::Private && !caller.admin {
        return Ok(());
    }
    unmark_usage(b, at, v, Unmark::Left)
}

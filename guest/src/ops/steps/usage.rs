//! The owner's usage record: charges and refunds, each applied once, and
//! the quota checked on a charge.

use super::MAX_ATTEMPTS;
use super::artifact::{finish_delete, read_artifact};
use super::index::{At, Progress, Unmark, owner_key, usage_key};
use crate::hash::Hash;
use crate::ops::backend::{Backend, Space, Swap};
use crate::ops::caller::{HOST_OWNER, Quota};
use crate::ops::error::{Error, Outcome, QuotaKind, be, within};
use crate::record::{MAX_MARKS, Mark, Marks, State, Usage};

/// The most refunds waiting to be settled that one usage record keeps (see
/// `waiting`): a release or first put that would add one more is refused
/// (a name's drop is not, and an owner has at most `MAX_NAMES`). Half of
/// what a record may hold, leaving room for those and transitions in flight.
pub(in crate::ops) const MAX_WAITING: usize = MAX_MARKS / 2;

/// What the owner's leave marks add up to: `(bytes, artifacts)`. Under
/// private dedup a leave's mark stays until [`settle`](crate::ops::settle) (or gc) has finished
/// the content's deletion, and until then its bytes and artifact count
/// against the quota as if still held, whoever else holds the content.
pub(in crate::ops) fn waiting(u: &Usage) -> (u64, u64) {
    u.marks
        .iter()
        .filter(|m| !m.join)
        .fold((0, 0), |(b, n), m| {
            (b.saturating_add(m.size), n.saturating_add(1))
        })
}

/// The owner's usage record and its version.
pub(in crate::ops) fn read_usage(b: &impl Backend, space: &Hash) -> Outcome<(Option<u64>, Usage)> {
    match be(b.read_record(Space::Owner(space).at(&usage_key())))? {
        Some(v) => Ok((
            Some(v.version),
            Usage::decode(&v.data)
                .map_err(|why| Error::CorruptRecord(format!("usage record: {why}")))?,
        )),
        None => Ok((None, Usage::default())),
    }
}

/// Writes the usage record (deleting it when it is empty). Returns false on a conflict.
pub(in crate::ops) fn write_usage(
    b: &impl Backend,
    space: &Hash,
    expected: Option<u64>,
    u: &Usage,
) -> Outcome<bool> {
    let new = (*u != Usage::default()).then(|| u.encode());
    Ok(!matches!(
        be(b.swap_record(
            Space::Owner(space).at(&usage_key()),
            expected,
            new.as_deref()
        ))?,
        Swap::Conflict
    ))
}

/// Whether `space` is the host's index space, whose usage is not tracked
/// (the host has no quota), which saves a first put two writes.
pub(in crate::ops) fn untracked(space: &Hash) -> bool {
    *space == owner_key(HOST_OWNER)
}

/// Charges (join) or refunds (leave) the artifact at `at` to the owner's
/// usage, marked with the entry version `v`, once: checks the quota for a
/// charge. A refund also drops the owner's stale join marks for this hash.
pub(in crate::ops) fn account(
    b: &impl Backend,
    at: At,
    v: u64,
    size: u64,
    join: bool,
    quota: Quota,
) -> Outcome<()> {
    let key = at.key();
    update(b, at, |u| {
        if u.marks.has_mark(join, &key, v) {
            return Ok(false);
        }
        if join {
            let (bytes, artifacts) = (u.bytes.saturating_add(size), u.artifacts.saturating_add(1));
            let (waiting_bytes, waiting_artifacts) = waiting(u);
            within(
                QuotaKind::Bytes,
                quota.max_bytes,
                bytes.saturating_add(waiting_bytes),
            )?;
            within(
                QuotaKind::Artifacts,
                quota.max_artifacts,
                artifacts.saturating_add(waiting_artifacts),
            )?;
            within(
                QuotaKind::Artifacts,
                MAX_WAITING as u64,
                waiting_artifacts.saturating_add(1),
            )?;
            (u.bytes, u.artifacts) = (bytes, artifacts);
        } else {
            u.bytes = u.bytes.saturating_sub(size);
            u.artifacts = u.artifacts.saturating_sub(1);
            u.marks.retain(|m| !(m.join && m.key == key));
        }
        u.marks.push(Mark {
            join,
            key,
            version: v,
            size,
        });
        at.still_at(b, v)
    })
}

/// Removes the usage mark of the transition `v`; [`Unmark::UndoJoin`]
/// also gives back what it charged.
pub(in crate::ops) fn unmark_usage(b: &impl Backend, at: At, v: u64, how: Unmark) -> Outcome<()> {
    update(b, at, |u| {
        let Some(mark) = u.marks.take_mark(how.join(), &at.key(), v) else {
            return Ok(false);
        };
        if how == Unmark::UndoJoin {
            u.bytes = u.bytes.saturating_sub(mark.size);
            u.artifacts = u.artifacts.saturating_sub(1);
        }
        Ok(true)
    })
}

/// Changes the usage of the owner of `at` (none for the host, which has no
/// quota) by compare-and-swap, retrying on conflict: `change` changes what
/// it read and says whether to write it.
fn update(
    b: &impl Backend,
    at: At,
    mut change: impl FnMut(&mut Usage) -> Outcome<bool>,
) -> Outcome<()> {
    if untracked(at.space) {
        return Ok(());
    }
    for _ in 0..MAX_ATTEMPTS {
        let (version, mut u) = read_usage(b, at.space)?;
        if !change(&mut u)? || write_usage(b, at.space, version, &u)? {
            return Ok(());
        }
    }
    Err(Error::Contended(at.hash.to_string()))
}

/// Settles the leave of `at` at entry version `v`, once it is over: if the
/// content's record is `Deleting` (this leave or a later one was the last),
/// finishes the deletion, then drops the leave's mark, which frees its
/// bytes. Returns whether it finished a deletion.
pub(in crate::ops) fn settle_leave(b: &impl Backend, at: At, v: u64) -> Outcome<bool> {
    if at.progress(b, v)? == Progress::UnderWay {
        return Ok(false);
    }
    let mut finished = false;
    if let Some((version, record)) = read_artifact(b, at.hash)?
        && record.state == State::Deleting
    {
        finish_delete(b, at.hash, version, record.size)?;
        finished = true;
    }
    unmark_usage(b, at, v, Unmark::Left)?;
    Ok(finished)
}

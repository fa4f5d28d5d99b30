//! The artifact record's side of a transition: an owner joining (the
//! record created with its blob, or counted up), leaving (counted down,
//! deleted at zero), and the deletion protocol.

use super::MAX_ATTEMPTS;
use super::content::Content;
use super::index::{At, Unmark};
use crate::hash::Hash;
use crate::ops::backend::{Backend, Space, Swap};
use crate::ops::caller::Dedup;
use crate::ops::error::{Error, Outcome, be, decode};
use crate::outboard::Shape;
use crate::record::{Entry, Mark, Marks, Origin, Record, State};

/// The artifact record of `hash` and its version, if there is one.
pub(in crate::ops) fn read_artifact(
    b: &impl Backend,
    hash: &Hash,
) -> Outcome<Option<(u64, Record)>> {
    let Some(v) = be(b.read_record(Space::Shared.at(hash)))? else {
        return Ok(None);
    };
    Ok(Some((v.version, decode(hash, &v.data)?)))
}

/// The live shared record of `hash`, if any.
pub(in crate::ops) fn shared(backend: &impl Backend, hash: &Hash) -> Outcome<Option<Record>> {
    let record = read_artifact(backend, hash)?.map(|(_, record)| record);
    Ok(record.filter(|r| r.state == State::Live))
}

/// Compare-and-swap on the artifact record of `hash` (`None` deletes it).
pub(in crate::ops) fn swap_artifact(
    b: &impl Backend,
    hash: &Hash,
    expected: Option<u64>,
    new: Option<&Record>,
) -> Outcome<Swap> {
    let data = new.map(Record::encode);
    be(b.swap_record(Space::Shared.at(hash), expected, data.as_deref()))
}

/// Finishes a deletion whose `Deleting` record has `version` (content of
/// `size` bytes): the blob, its outboard, then the record. Idempotent:
/// whoever comes second finds the version gone and does nothing.
///
/// The outboard goes with the blob, before the record (so a crash leaves
/// the deletion for gc to finish), not by gc an hour later: an outboard
/// left behind would tell a later put that the content was stored.
pub(in crate::ops) fn finish_delete(
    backend: &impl Backend,
    hash: &Hash,
    version: u64,
    size: u64,
) -> Outcome<()> {
    be(backend.delete_blob(hash, Some(version)))?;
    if Shape::of(size).is_some() {
        // Whoever revived the artifact meanwhile at worst loses its outboard,
        // which a range read rebuilds.
        be(backend.delete_outboard(hash))?;
    }
    swap_artifact(backend, hash, Some(version), None)?;
    Ok(())
}

/// Swaps the record to `Deleting` and deletes the artifact.
/// Returns false if the version moved on meanwhile.
pub(in crate::ops) fn delete(
    backend: &impl Backend,
    hash: &Hash,
    version: u64,
    mut record: Record,
) -> Outcome<bool> {
    record.state = State::Deleting;
    match swap_artifact(backend, hash, Some(version), Some(&record))? {
        Swap::Written(deleting) => {
            finish_delete(backend, hash, deleting, record.size).map(|()| true)
        }
        Swap::Conflict | Swap::Deleted => Ok(false),
    }
}

/// Counts the owner of `at` into the artifact record (creating it, with its
/// blob, if there is none), marked with the entry version `v`, once.
/// Returns the origin of the record it is counted in, or `None` if the
/// entry moved on meanwhile (someone else finished or rolled back the put).
pub(in crate::ops) fn join(
    b: &impl Backend,
    dedup: Dedup,
    at: At,
    v: u64,
    entry: &Entry,
    content: Content,
) -> Outcome<Option<Origin>> {
    let (owner, hash, size) = (at.owner(), at.hash, entry.size);
    let mark = Mark {
        join: true,
        key: owner,
        version: v,
        size,
    };
    for _ in 0..MAX_ATTEMPTS {
        let (first, expected, record) = match read_artifact(b, hash)? {
            Some((version, mut record)) if record.state != State::Deleting => {
                if record.marks.has_mark(true, &owner, v) {
                    return Ok(Some(record.origin));
                }
                // Known content: nothing to write, unless its blob was lost or
                // damaged to another size (this put repairs it), or the store
                // keeps dedup private (a join does the work of a first put).
                if dedup == Dedup::Private || be(b.blob_size(hash))? != Some(record.size) {
                    content.write(b, hash)?;
                }
                record.owners = record.owners.saturating_add(1);
                record.marks.push(mark);
                (false, Some(version), record)
            }
            // No artifact, or one being deleted (under private dedup, left
            // for gc by its last owner): a first put. It replaces a deleting
            // record rather than finishing the deletion first, so that it
            // does the same work either way; a finisher still at work on the
            // old version then deletes nothing (and a blob it deleted before
            // our swap is written again below).
            found => {
                content.write(b, hash)?;
                let record = Record {
                    state: State::Live,
                    artifact_type: entry.artifact_type,
                    size,
                    stored_at: b.now(),
                    owners: 1,
                    origin: Origin {
                        key: owner,
                        version: v,
                    },
                    marks: vec![mark],
                };
                (true, found.map(|(version, _)| version), record)
            }
        };
        if !at.still_at(b, v)? {
            return Ok(None);
        }
        match swap_artifact(b, hash, expected, Some(&record))? {
            Swap::Conflict => continue,
            Swap::Written(_) | Swap::Deleted => {
                // A new record: a gc that listed this content as an
                // unreferenced blob before our record existed may have
                // deleted the blob since (the interleaving iroh-blobs #247
                // shipped). Now that the record exists no gc can delete it, so
                // one look settles it.
                // (Private dedup makes the same check after a join, so that
                // joining costs what creating costs.)
                let check = first || dedup == Dedup::Private;
                if check && be(b.blob_size(hash))? != Some(size) {
                    content.write(b, hash)?;
                }
                return Ok(Some(record.origin));
            }
        }
    }
    Err(Error::Contended(hash.to_string()))
}

/// Counts the owner of `at` out of the artifact record (the incarnation
/// `origin`), marked with the entry version `v`, once; deletes the artifact
/// when no owner is left. Also drops the owner's stale join marks.
pub(in crate::ops) fn leave(
    b: &impl Backend,
    dedup: Dedup,
    at: At,
    v: u64,
    origin: &Origin,
) -> Outcome<()> {
    let (owner, hash) = (at.owner(), at.hash);
    for _ in 0..MAX_ATTEMPTS {
        let Some((version, mut record)) = read_artifact(b, hash)? else {
            return Ok(());
        };
        if record.origin != *origin {
            // That incarnation is gone: its last owner has left.
            return Ok(());
        }
        if record.state == State::Deleting {
            return finish_delete(b, hash, version, record.size);
        }
        if record.marks.has_mark(false, &owner, v) {
            return Ok(());
        }
        record.owners = record.owners.saturating_sub(1);
        record.marks.retain(|m| !(m.join && m.key == owner));
        if !at.still_at(b, v)? {
            return Ok(());
        }
        if record.owners == 0 && dedup == Dedup::Shared {
            if delete(b, hash, version, record)? {
                return Ok(());
            }
            continue;
        }
        if record.owners == 0 {
            // Private dedup: the last leave costs what any leave costs (one
            // swap of the record); the deletion it starts is invisible at
            // once and finished by the next gc or put of the content.
            record.state = State::Deleting;
        }
        record.marks.push(Mark {
            join: false,
            key: owner,
            version: v,
            size: record.size,
        });
        match swap_artifact(b, hash, Some(version), Some(&record))? {
            Swap::Conflict => continue,
            Swap::Written(_) | Swap::Deleted => return Ok(()),
        }
    }
    Err(Error::Contended(hash.to_string()))
}

/// Removes the artifact mark of the transition `v` (of owner `at.space`);
/// [`Unmark::UndoJoin`] also counts the owner back out.
pub(in crate::ops) fn unmark_artifact(
    b: &impl Backend,
    at: At,
    v: u64,
    how: Unmark,
) -> Outcome<()> {
    let (hash, undo) = (at.hash, how == Unmark::UndoJoin);
    for _ in 0..MAX_ATTEMPTS {
        let Some((version, mut record)) = read_artifact(b, hash)? else {
            return Ok(());
        };
        // A deleting record keeps its marks only under private dedup (the
        // last leave's); clearing it changes its version, which makes a
        // finisher holding the old one do nothing, and the next finishes it.
        if (undo && record.state == State::Deleting)
            || record.marks.take_mark(how.join(), &at.owner(), v).is_none()
        {
            return Ok(());
        }
        if undo {
            record.owners = record.owners.saturating_sub(1);
            if record.owners == 0 {
                if delete(b, hash, version, record)? {
                    return Ok(());
                }
                continue;
            }
        }
        if !matches!(
            swap_artifact(b, hash, Some(version), Some(&record))?,
            Swap::Conflict
        ) {
            return Ok(());
        }
    }
    Err(Error::Contended(hash.to_string()))
}

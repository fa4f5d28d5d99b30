//! Garbage collection: orphaned blobs, and what crashed calls left half done.

use super::backend::{Backend, Space};
use super::caller::Caller;
use super::error::{Outcome, be, decode};
use super::steps::LIST_LIMIT;
use super::steps::artifact::{finish_delete, unmark_artifact};
use super::steps::index::{At, Progress, Unmark, hash_of, names_key, usage_key};
use super::steps::pages::pages;
use super::steps::transition::{finish_remove, roll_back};
use super::steps::usage::{read_usage, settle_leave, unmark_usage};
use crate::hash::Hash;
use crate::record::{Entry, EntryState, Record, State};

/// What [`gc`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GcReport {
    /// Unreferenced blobs older than the grace period, deleted.
    pub orphans_removed: u64,
    /// Their total size.
    pub bytes_freed: u64,
    /// Unreferenced blobs younger than the grace period, kept.
    pub orphans_in_grace: u64,
    /// Half-done deletions, releases and first puts (rolled back) finished.
    pub deletions_finished: u64,
}

/// Resolves an artifact's marks whose entries have moved on: a join whose
/// entry never went live is undone; a finished one is only unmarked.
fn sweep_record_marks(backend: &impl Backend, hash: &Hash, record: &Record) -> Outcome<()> {
    for m in &record.marks {
        let space = hash_of(&m.key);
        let at = At {
            space: &space,
            hash,
        };
        match at.progress(backend, m.version)? {
            Progress::UnderWay => continue,
            p => unmark_artifact(backend, at, m.version, Unmark::after(m.join, p))?,
        }
    }
    Ok(())
}

/// Resolves an owner's usage marks, as [`sweep_record_marks`] does; a
/// leave's is settled (its content's deletion finished first). Returns how
/// many deletions that finished.
fn sweep_usage_marks(backend: &impl Backend, space: &Hash) -> Outcome<u64> {
    let (_, u) = read_usage(backend, space)?;
    let mut finished = 0;
    for m in &u.marks {
        let hash = hash_of(&m.key);
        let at = At { space, hash: &hash };
        if !m.join {
            finished += u64::from(settle_leave(backend, at, m.version)?);
            continue;
        }
        match at.progress(backend, m.version)? {
            Progress::UnderWay => continue,
            p => unmark_usage(backend, at, m.version, Unmark::after(m.join, p))?,
        }
    }
    Ok(finished)
}

/// Deletes blobs no record references that were written more than
/// `grace_ms` ago, and finishes what crashed processes left half done:
/// deletions, last releases (finished), first puts older than the grace
/// period (rolled back), and marks whose transitions are over.
pub fn gc(backend: &impl Backend, grace_ms: u64) -> Outcome<GcReport> {
    let mut report = GcReport::default();
    let cutoff = backend.now().saturating_sub(grace_ms);
    let host = Caller::HOST;
    // Every owner's index: transitions a crash left behind.
    pages(
        |after| be(backend.list_owners(after, LIST_LIMIT)),
        |h: &Hash| *h,
        |owners| {
            for space in owners {
                pages(
                    |after| be(backend.list_records(Space::Owner(&space), after, LIST_LIMIT)),
                    |(k, _)| *k,
                    |page| {
                        for (key, v) in page {
                            if key == usage_key() || key == names_key() {
                                continue;
                            }
                            let Ok(e) = Entry::decode(&v.data) else {
                                continue;
                            };
                            let at = At {
                                space: &space,
                                hash: &key,
                            };
                            match e.state {
                                EntryState::Removing => {
                                    finish_remove(backend, &host, at, v.version, &e)?;
                                    report.deletions_finished += 1;
                                }
                                EntryState::Adding if e.stored_at <= cutoff => {
                                    roll_back(backend, at, v.version)?;
                                    report.deletions_finished += 1;
                                }
                                _ => {}
                            }
                        }
                        Ok(())
                    },
                )?;
                report.deletions_finished += sweep_usage_marks(backend, &space)?;
            }
            Ok(())
        },
    )?;
    // Abandoned deletions and stale marks in the shared records: finishing
    // a deletion is idempotent and guarded by the record's version, so a
    // deleter still at work loses nothing.
    pages(
        |after| be(backend.list_records(Space::Shared, after, LIST_LIMIT)),
        |(k, _)| *k,
        |page| {
            for (key, v) in page {
                let record = decode(&key, &v.data)?;
                if record.state == State::Deleting {
                    finish_delete(backend, &key, v.version, record.size)?;
                    report.deletions_finished += 1;
                } else if !record.marks.is_empty() {
                    sweep_record_marks(backend, &key, &record)?;
                }
            }
            Ok(())
        },
    )?;
    // Orphans: blobs without a record. The delete is atomic with record
    // swaps (only if there is still no record), and the grace period covers
    // a put between writing its blob and creating its record.
    pages(
        |after| be(backend.list_blobs(after, LIST_LIMIT)),
        |(k, _, _)| *k,
        |page| {
            for (key, size, modified) in page {
                if be(backend.read_record(Space::Shared.at(&key)))?.is_some() {
                    continue;
                }
                if modified > cutoff {
                    report.orphans_in_grace += 1;
                } else if be(backend.delete_blob(&key, None))? {
                    report.orphans_removed += 1;
                    report.bytes_freed = report.bytes_freed.saturating_add(size);
                }
            }
            Ok(())
        },
    )?;
    Ok(report)
}

//! Migration of a format-1 store in place.

use super::backend::{Backend, Space};
use super::error::{Error, Outcome, be};
use super::steps::LIST_LIMIT;
use super::steps::artifact::{finish_delete, swap_artifact};
use super::steps::index::{owner_key, usage_key};
use super::steps::pages::pages;
use super::steps::usage::{untracked, write_usage};
use crate::hash::Hash;
use crate::record::{Entry, EntryState, Origin, Record, RecordV1, State, Usage};

/// Migrates a format-1 store in place: every format-1 artifact record
/// becomes owner entries (one per owner, with its count) and a format-2
/// record counting its owners; usage records are rebuilt from the entries;
/// format-1 usage records are deleted. Idempotent and safe to interrupt:
/// a format-1 record stays the truth until it is rewritten, and entries are
/// written (overwritten) from it first. Run with no other writer. Returns
/// how many artifact records were migrated.
pub fn migrate(backend: &impl Backend) -> Outcome<u64> {
    let mut migrated = 0u64;
    pages(
        |after| be(backend.list_records(Space::Shared, after, LIST_LIMIT)),
        |(k, _)| *k,
        |page| {
            for (key, v) in page {
                if !RecordV1::is_v1(&v.data) {
                    continue;
                }
                if Usage::is_usage(&v.data) {
                    continue; // rebuilt below, deleted last
                }
                let old = RecordV1::decode(&v.data)
                    .map_err(|why| Error::CorruptRecord(format!("record of {key}: {why}")))?;
                if old.state == State::Deleting || old.owners.is_empty() {
                    finish_delete(backend, &key, v.version, old.size)?;
                    continue;
                }
                let first = old.owners.first().map_or("", |(o, _)| o.as_str());
                let origin = Origin {
                    key: *owner_key(first).as_bytes(),
                    version: v.version,
                };
                for (owner, count) in &old.owners {
                    let space = owner_key(owner);
                    let entry = Entry {
                        state: EntryState::Live,
                        artifact_type: old.artifact_type,
                        size: old.size,
                        stored_at: old.stored_at,
                        count: *count,
                        incarnation: v.version,
                        origin,
                        named: 0,
                    };
                    let at = Space::Owner(&space).at(&key);
                    let current = be(backend.read_record(at))?.map(|c| c.version);
                    be(backend.swap_record(at, current, Some(&entry.encode())))?;
                }
                let record = Record {
                    state: State::Live,
                    artifact_type: old.artifact_type,
                    size: old.size,
                    stored_at: old.stored_at,
                    owners: old.owners.len() as u64,
                    origin,
                    marks: Vec::new(),
                };
                swap_artifact(backend, &key, Some(v.version), Some(&record))?;
                migrated += 1;
            }
            Ok(())
        },
    )?;
    // Usage, exactly: the sum of every owner's live entries (all owners,
    // since an interrupted run may have touched others).
    let mut owners: Vec<Hash> = Vec::new();
    pages(
        |after| be(backend.list_owners(after, LIST_LIMIT)),
        |h: &Hash| *h,
        |page| {
            owners.extend(page);
            Ok(())
        },
    )?;
    for space in owners.into_iter().filter(|s| !untracked(s)) {
        let mut u = Usage::default();
        pages(
            |after| be(backend.list_records(Space::Owner(&space), after, LIST_LIMIT)),
            |(k, _)| *k,
            |page| {
                for (key, v) in page {
                    if key == usage_key() {
                        continue;
                    }
                    if let Ok(e) = Entry::decode(&v.data)
                        && e.state == EntryState::Live
                    {
                        u.bytes = u.bytes.saturating_add(e.size);
                        u.artifacts += 1;
                    }
                }
                Ok(())
            },
        )?;
        let version =
            be(backend.read_record(Space::Owner(&space).at(&usage_key())))?.map(|v| v.version);
        write_usage(backend, &space, version, &u)?;
    }
    pages(
        |after| be(backend.list_records(Space::Shared, after, LIST_LIMIT)),
        |(k, _)| *k,
        |page| {
            for (key, v) in page {
                if Usage::is_usage(&v.data) && RecordV1::is_v1(&v.data) {
                    be(backend.swap_record(Space::Shared.at(&key), Some(v.version), None))?;
                }
            }
            Ok(())
        },
    )?;
    Ok(migrated)
}

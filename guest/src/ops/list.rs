//! Listing what a caller may see, and what it adds up to.

use super::backend::{Backend, Space, Versioned};
use super::caller::Caller;
use super::error::{Outcome, be, checked, checked_caller, decode, decode_entry};
use super::read::Metadata;
use super::steps::LIST_LIMIT;
use super::steps::index::{names_key, owner_key, usage_key};
use crate::hash::Hash;
use crate::record::{Entry, EntryState, Record, State};

/// Up to `limit` artifacts the caller may see with hashes after `after`,
/// ascending: an owner's from its own index (reading only its entries),
/// the host's from the shared records.
pub fn list(
    backend: &impl Backend,
    caller: &Caller,
    after: Option<&str>,
    limit: u32,
) -> Outcome<Vec<Metadata>> {
    checked_caller(caller)?;
    let after = after.map(checked).transpose()?;
    let after = after.as_ref();
    let limit = limit.min(LIST_LIMIT) as usize;
    let mut out = Vec::new();
    if caller.admin {
        scan_shared(backend, after, limit, |key, record| {
            out.push(Metadata::of_record(backend, caller, &key, &record)?);
            Ok(())
        })?;
    } else {
        scan_own(backend, caller, after, limit, |key, e| {
            out.push(Metadata::of_entry(&key, &e));
            Ok(())
        })?;
    }
    Ok(out)
}

/// Calls `each` on up to `limit` live shared records after `after`.
fn scan_shared(
    backend: &impl Backend,
    after: Option<&Hash>,
    limit: usize,
    each: impl FnMut(Hash, Record) -> Outcome<()>,
) -> Outcome<()> {
    let list = |after: Option<&Hash>| be(backend.list_records(Space::Shared, after, LIST_LIMIT));
    scan(after, limit, list, each, |key, v| {
        let record = decode(key, &v.data)?;
        Ok((record.state == State::Live).then_some(record))
    })
}

/// Calls `each` on up to `limit` of the caller's live entries after `after`.
fn scan_own(
    backend: &impl Backend,
    caller: &Caller,
    after: Option<&Hash>,
    limit: usize,
    each: impl FnMut(Hash, Entry) -> Outcome<()>,
) -> Outcome<()> {
    let space = owner_key(caller.owner);
    let (usage, names) = (usage_key(), names_key());
    let list =
        |after: Option<&Hash>| be(backend.list_records(Space::Owner(&space), after, LIST_LIMIT));
    scan(after, limit, list, each, |key, v| {
        if *key == usage || *key == names {
            return Ok(None);
        }
        let e = decode_entry(key, &v.data)?;
        Ok((e.state == EntryState::Live).then_some(e))
    })
}

/// Calls `each` on up to `limit` live items after `after` of a paged
/// listing (`list`), which stops once it has them. `live` decodes every
/// item listed (an undecodable one fails the scan) and keeps the live ones.
fn scan<T>(
    after: Option<&Hash>,
    limit: usize,
    mut list: impl FnMut(Option<&Hash>) -> Outcome<Vec<(Hash, Versioned)>>,
    mut each: impl FnMut(Hash, T) -> Outcome<()>,
    mut live: impl FnMut(&Hash, &Versioned) -> Outcome<Option<T>>,
) -> Outcome<()> {
    let mut cursor = after.copied();
    let mut seen = 0;
    while seen < limit {
        let page = list(cursor.as_ref())?;
        let Some((last, _)) = page.last() else { break };
        cursor = Some(*last);
        let full_page = page.len() as u32 >= LIST_LIMIT;
        for (key, v) in page {
            if let Some(item) = live(&key, &v)?
                && seen < limit
            {
                seen += 1;
                each(key, item)?;
            }
        }
        if !full_page {
            break;
        }
    }
    Ok(())
}

/// Calls `each` on the size of every artifact the caller may see.
fn sizes(backend: &impl Backend, caller: &Caller, mut each: impl FnMut(u64)) -> Outcome<()> {
    checked_caller(caller)?;
    if caller.admin {
        scan_shared(backend, None, usize::MAX, |_, r| {
            each(r.size);
            Ok(())
        })
    } else {
        scan_own(backend, caller, None, usize::MAX, |_, e| {
            each(e.size);
            Ok(())
        })
    }
}

/// How many artifacts the caller may see: for an owner, a walk of its own index.
pub fn count(backend: &impl Backend, caller: &Caller) -> Outcome<u64> {
    let mut n = 0u64;
    sizes(backend, caller, |_| n += 1)?;
    Ok(n)
}

/// The total size of the content the caller may see.
pub fn total_bytes(backend: &impl Backend, caller: &Caller) -> Outcome<u64> {
    let mut total = 0u64;
    sizes(backend, caller, |s| total = total.saturating_add(s))?;
    Ok(total)
}

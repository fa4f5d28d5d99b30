//! Listing what a caller may see, and what it adds up to.

use super::LIST_LIMIT;
use super::backend::Backend;
use super::caller::Caller;
use super::error::{Error, Outcome, be, checked, checked_caller, decode};
use super::index::{owner_key, usage_key};
use super::read::{Metadata, held};
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
    if let Some(after) = after {
        checked(after)?;
    }
    let limit = limit.min(LIST_LIMIT) as usize;
    let mut out = Vec::new();
    if caller.admin {
        scan_shared(backend, after, limit, |key, record| {
            let own = held(backend, caller, &key)?.map_or(0, |e| e.count);
            out.push(Metadata {
                hash: key,
                size: record.size,
                artifact_type: record.artifact_type,
                stored_at: record.stored_at,
                reference_count: own,
            });
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
    after: Option<&str>,
    limit: usize,
    mut each: impl FnMut(String, Record) -> Outcome<()>,
) -> Outcome<()> {
    let mut cursor = after.map(str::to_string);
    let mut seen = 0;
    while seen < limit {
        let page = be(backend.list_records(cursor.as_deref(), LIST_LIMIT))?;
        let Some((last, _)) = page.last() else { break };
        cursor = Some(last.clone());
        let full_page = page.len() as u32 >= LIST_LIMIT;
        for (key, v) in page {
            checked(&key)
                .map_err(|_| Error::Backend(format!("backend listed an invalid key {key:.80?}")))?;
            let record = decode(&key, &v.data)?;
            if record.state == State::Live && seen < limit {
                seen += 1;
                each(key, record)?;
            }
        }
        if !full_page {
            break;
        }
    }
    Ok(())
}

/// Calls `each` on up to `limit` of the caller's live entries after `after`.
fn scan_own(
    backend: &impl Backend,
    caller: &Caller,
    after: Option<&str>,
    limit: usize,
    mut each: impl FnMut(String, Entry) -> Outcome<()>,
) -> Outcome<()> {
    let space = owner_key(caller.owner);
    let usage = usage_key();
    let mut cursor = after.map(str::to_string);
    let mut seen = 0;
    while seen < limit {
        let page = be(backend.list_entries(&space, cursor.as_deref(), LIST_LIMIT))?;
        let Some((last, _)) = page.last() else { break };
        cursor = Some(last.clone());
        let full_page = page.len() as u32 >= LIST_LIMIT;
        for (key, v) in page {
            if key == usage {
                continue;
            }
            checked(&key)
                .map_err(|_| Error::Backend(format!("backend listed an invalid key {key:.80?}")))?;
            let e = Entry::decode(&v.data)
                .map_err(|why| Error::CorruptRecord(format!("index entry of {key}: {why}")))?;
            if e.state == EntryState::Live && seen < limit {
                seen += 1;
                each(key, e)?;
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

/// Calls `each` on every page of `list` (a paged listing) until a short page.
pub(super) fn pages<T: Clone>(
    mut list: impl FnMut(Option<&str>) -> Outcome<Vec<T>>,
    key: impl Fn(&T) -> String,
    mut each: impl FnMut(Vec<T>) -> Outcome<()>,
) -> Outcome<()> {
    let mut after: Option<String> = None;
    loop {
        let page = list(after.as_deref())?;
        let full = page.len() as u32 >= LIST_LIMIT;
        after = page.last().map(&key);
        each(page)?;
        if !full {
            return Ok(());
        }
    }
}

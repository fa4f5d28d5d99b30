//! Names: an owner's labels for artifacts it holds, in one record in its
//! index space (see [`crate::record::Names`]).
//!
//! A name holds a reference to what it points at: its entry's `count`
//! includes it and `named` counts it, so the last-release protocol needs
//! nothing new, and an owner's own `release` and `remove` drop only the
//! references that are not names'. Moving a name takes the new target's
//! reference first (a compare-and-swap on its entry), then swaps the names
//! record, then drops the old target's; so a crash between the steps can
//! leave a reference that no name holds (the artifact is kept, never lost)
//! but never a name without its reference.

use super::backend::{Backend, Space, Swap};
use super::caller::Caller;
use super::error::{Error, Outcome, QuotaKind, be, checked, checked_caller};
use super::release::drop_named;
use super::steps::index::{At, hash_of, names_key, owner_key};
use super::steps::names::read_names;
use super::steps::{LIST_LIMIT, MAX_ATTEMPTS};
use crate::hash::Hash;
use crate::record::{EntryState, MAX_NAMES, check_name};

fn checked_name(name: &str) -> Outcome<()> {
    check_name(name).map_err(Error::InvalidName)
}

/// Takes one reference to the artifact for a name: only on a live entry
/// (the owner holds it), else `NotFound`. Returns the entry's incarnation.
fn hold(b: &impl Backend, at: At) -> Outcome<u64> {
    for _ in 0..MAX_ATTEMPTS {
        let (v, mut e) = match at.entry(b)? {
            Some((v, e)) if e.state == EntryState::Live => (v, e),
            _ => return Err(Error::NotFound(at.hash.to_string())),
        };
        e.count = e.count.saturating_add(1);
        e.named = e.named.saturating_add(1);
        if !matches!(at.swap_entry(b, Some(v), Some(&e))?, Swap::Conflict) {
            return Ok(e.incarnation);
        }
    }
    Err(Error::Contended(at.hash.to_string()))
}

/// Whether the entry at `at` is still the live one of `incarnation`: a name
/// written after the host's remove took it (and forgot its names) must not
/// stay.
fn still_held(b: &impl Backend, at: At, incarnation: u64) -> Outcome<bool> {
    Ok(at
        .entry(b)?
        .is_some_and(|(_, e)| e.state == EntryState::Live && e.incarnation == incarnation))
}

/// What a change of one name requires of its current target.
#[derive(Clone, Copy)]
enum Expect {
    /// Whatever it points at (or nothing).
    Any,
    /// Exactly this (`None`: that the name does not exist).
    Exactly(Option<[u8; 32]>),
}

/// Points `name` at `new` (`None`: removes it) if its target is as
/// `expect`ed; returns what it pointed at before.
fn change(
    b: &impl Backend,
    caller: &Caller,
    name: &str,
    expect: Expect,
    new: Option<&str>,
) -> Outcome<Option<String>> {
    checked_caller(caller)?;
    checked_name(name)?;
    let new = new.map(checked).transpose()?;
    let new = new.as_ref();
    let space = owner_key(caller.owner);
    let at = |hash| At {
        space: &space,
        hash,
    };
    let held = match new {
        Some(hash) => Some((hash, hold(b, at(hash))?)),
        None => None,
    };
    let previous = match swap_names(b, &space, name, expect, new.map(|h| *h.as_bytes())) {
        Ok(previous) => previous,
        Err(e) => {
            // Refused before anything was written: give back the reference
            // taken for the name (if this fails too, the artifact stays
            // held: kept, not lost). A backend failure may have come after
            // the write landed: then the reference stays with the name.
            let refused = matches!(
                e,
                Error::NameConflict(_) | Error::QuotaExceeded { .. } | Error::Contended(_)
            );
            if let (true, Some(hash)) = (refused, new) {
                let _ = drop_named(b, caller, at(hash));
            }
            return Err(e);
        }
    };
    if let Some((hash, incarnation)) = held
        && !still_held(b, at(hash), incarnation)?
    {
        // The host removed it meanwhile: put the name back as it was (its
        // old target kept its reference), or remove it if that was this
        // artifact too; unless someone moved it since.
        let ours = *hash.as_bytes();
        let back = previous.filter(|p| *p != ours);
        match swap_names(b, &space, name, Expect::Exactly(Some(ours)), back) {
            Ok(_) => {}
            // Forgotten with our target, or moved since: the old target's
            // name is gone either way, and so must its reference be.
            Err(Error::NameConflict(_)) => {
                if let Some(old) = back {
                    drop_named(b, caller, at(&hash_of(&old)))?;
                }
            }
            Err(e) => return Err(e),
        }
        return Err(Error::NotFound(hash.to_string()));
    }
    let previous = previous.map(|h| hash_of(&h));
    if let Some(old) = &previous {
        drop_named(b, caller, at(old))?;
    }
    Ok(previous.as_ref().map(Hash::to_string))
}

/// The compare-and-swap on the names record for [`change`].
fn swap_names(
    b: &impl Backend,
    space: &Hash,
    name: &str,
    expect: Expect,
    new: Option<[u8; 32]>,
) -> Outcome<Option<[u8; 32]>> {
    let key = names_key();
    for _ in 0..MAX_ATTEMPTS {
        let (version, mut names) = read_names(b, space)?;
        let current = names.get(name);
        if let Expect::Exactly(expected) = expect
            && expected != current
        {
            return Err(Error::NameConflict(
                current.map(|h| hash_of(&h).to_string()),
            ));
        }
        if current.is_none() && new.is_some() && names.len() >= MAX_NAMES {
            return Err(Error::QuotaExceeded {
                kind: QuotaKind::Names,
                limit: MAX_NAMES as u64,
                requested: MAX_NAMES as u64 + 1,
            });
        }
        let previous = match new {
            Some(hash) => names.set(name, hash),
            None => names.remove(name),
        };
        if new.is_none() && previous.is_none() {
            return Ok(None);
        }
        let data = (!names.is_empty()).then(|| names.encode());
        let at = Space::Owner(space).at(&key);
        if !matches!(
            be(b.swap_record(at, version, data.as_deref()))?,
            Swap::Conflict
        ) {
            return Ok(previous);
        }
    }
    Err(Error::Contended(names_key().to_string()))
}

/// Points `name` at `hash` (which the caller must hold), whatever it
/// pointed at; returns that.
pub fn tag_set(
    b: &impl Backend,
    caller: &Caller,
    name: &str,
    hash: &str,
) -> Outcome<Option<String>> {
    change(b, caller, name, Expect::Any, Some(hash))
}

/// Points `name` at `new` only if it points at `expected` now (`None`:
/// only if it does not exist); else `NameConflict`, and nothing changes.
pub fn tag_replace(
    b: &impl Backend,
    caller: &Caller,
    name: &str,
    expected: Option<&str>,
    new: &str,
) -> Outcome<()> {
    let expected = expected.map(checked).transpose()?;
    let expect = Expect::Exactly(expected.map(|h| *h.as_bytes()));
    change(b, caller, name, expect, Some(new)).map(drop)
}

/// Removes `name`; returns what it pointed at.
pub fn tag_delete(b: &impl Backend, caller: &Caller, name: &str) -> Outcome<Option<String>> {
    change(b, caller, name, Expect::Any, None)
}

/// What `name` points at.
pub fn tag_get(b: &impl Backend, caller: &Caller, name: &str) -> Outcome<Option<String>> {
    checked_caller(caller)?;
    checked_name(name)?;
    let (_, names) = read_names(b, &owner_key(caller.owner))?;
    Ok(names.get(name).map(|h| hash_of(&h).to_string()))
}

/// Up to `limit` (at most [`LIST_LIMIT`]) names that start with `prefix`
/// and sort after `after`, with what they point at.
pub fn tag_list(
    b: &impl Backend,
    caller: &Caller,
    prefix: &str,
    after: Option<&str>,
    limit: u32,
) -> Outcome<Vec<(String, String)>> {
    checked_caller(caller)?;
    let (_, names) = read_names(b, &owner_key(caller.owner))?;
    Ok(names
        .listed(prefix, after)
        .take(limit.min(LIST_LIMIT) as usize)
        .map(|(n, h)| (n.to_string(), hash_of(h).to_string()))
        .collect())
}

//! The owner's names record, as the protocol steps read and change it.

use super::MAX_ATTEMPTS;
use super::index::names_key;
use crate::hash::Hash;
use crate::ops::backend::{Backend, Space, Swap};
use crate::ops::error::{Error, Outcome, be};
use crate::record::Names;

/// The owner's names record and its version (`None`: it has none yet).
pub(in crate::ops) fn read_names(b: &impl Backend, space: &Hash) -> Outcome<(Option<u64>, Names)> {
    let key = names_key();
    match be(b.read_record(Space::Owner(space).at(&key)))? {
        None => Ok((None, Names::default())),
        Some(v) => Names::decode(&v.data)
            .map(|names| (Some(v.version), names))
            .map_err(|why| Error::CorruptRecord(format!("names record: {why}"))),
    }
}

/// Removes every name of the owner `space` that points at `hash` (the
/// host's remove deletes the artifact whatever points at it); the names'
/// references go with the entry.
pub(in crate::ops) fn forget(b: &impl Backend, space: &Hash, hash: &Hash) -> Outcome<()> {
    let key = names_key();
    let target = *hash.as_bytes();
    for _ in 0..MAX_ATTEMPTS {
        let (version, mut names) = read_names(b, space)?;
        if names.remove_pointing_at(&target) == 0 {
            return Ok(());
        }
        let data = (!names.is_empty()).then(|| names.encode());
        let at = Space::Owner(space).at(&key);
        if !matches!(
            be(b.swap_record(at, version, data.as_deref()))?,
            Swap::Conflict
        ) {
            return Ok(());
        }
    }
    Err(Error::Contended(hash.to_string()))
}

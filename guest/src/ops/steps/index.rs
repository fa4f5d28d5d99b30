//! An owner's index space: its key, and the entry under a hash in it.

use crate::hash::Hash;
use crate::ops::backend::{Backend, Place, Space, Swap};
use crate::ops::caller::HOST_OWNER;
use crate::ops::error::{Outcome, be, decode_entry};
use crate::record::{Entry, EntryState};

/// The key of `owner`'s index space: a BLAKE3 key derivation of its id
/// (the host's, which nearly every host call reads, is written out rather
/// than derived each time).
pub fn owner_key(owner: &str) -> Hash {
    if owner == HOST_OWNER {
        return HOST_KEY;
    }
    derived_owner_key(owner)
}

/// [`owner_key`] of [`HOST_OWNER`], as derived (a test checks it).
const HOST_KEY: Hash = Hash::from_bytes([
    0x20, 0xc7, 0x58, 0xe9, 0xf1, 0x50, 0x75, 0xc8, 0x36, 0x40, 0x5e, 0x47, 0x2d, 0x9d, 0x7a, 0xb8,
    0x87, 0xd4, 0xbf, 0xd2, 0x17, 0xe7, 0xb2, 0x66, 0x2a, 0x9b, 0x59, 0xf9, 0xe8, 0xdb, 0xc9, 0x6f,
]);

fn derived_owner_key(owner: &str) -> Hash {
    blake3::Hasher::new_derive_key("artifacts:store 2026 owner index v2")
        .update(owner.as_bytes())
        .finalize()
        .into()
}

/// The key of the usage record in every owner's index space: a BLAKE3 key
/// derivation, which can never equal the plain BLAKE3 hash of any content.
pub fn usage_key() -> Hash {
    blake3::Hasher::new_derive_key("artifacts:store 2026 owner usage v2")
        .finalize()
        .into()
}

/// The key of the names record in every owner's index space: a BLAKE3 key
/// derivation, which can never equal the plain BLAKE3 hash of any content.
pub fn names_key() -> Hash {
    blake3::Hasher::new_derive_key("artifacts:store 2026 owner names v3")
        .finalize()
        .into()
}

/// Where a transition (named by the entry version it began at) stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::ops) enum Progress {
    /// The entry is still at that version.
    UnderWay,
    /// A first put that went live (the entry's incarnation).
    Confirmed,
    /// Rolled back, or finished and moved on.
    Over,
}

/// How to clear the mark a transition left on a record (the artifact
/// record or the owner's usage) once the transition is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::ops) enum Unmark {
    /// A join that went live: only its mark goes.
    Joined,
    /// A join that never went live: its change is undone too.
    UndoJoin,
    /// A leave: only its mark goes (a leave is never undone).
    Left,
}

impl Unmark {
    /// How to clear the mark of a join (or leave) whose transition stands
    /// at `p`, over: a join whose entry never went live is undone.
    pub(in crate::ops) fn after(join: bool, p: Progress) -> Self {
        match (join, p) {
            (false, _) => Self::Left,
            (true, Progress::Confirmed) => Self::Joined,
            (true, _) => Self::UndoJoin,
        }
    }

    /// Whether the mark is a join's.
    pub(in crate::ops) fn join(self) -> bool {
        self != Self::Left
    }
}

/// An owner's index space and the hash an operation is about.
#[derive(Clone, Copy)]
pub(in crate::ops) struct At<'a> {
    pub(in crate::ops) space: &'a Hash,
    pub(in crate::ops) hash: &'a Hash,
}

impl<'a> At<'a> {
    pub(in crate::ops) fn entry(&self, b: &impl Backend) -> Outcome<Option<(u64, Entry)>> {
        let Some(v) = be(b.read_record(self.place()))? else {
            return Ok(None);
        };
        Ok(Some((v.version, decode_entry(self.hash, &v.data)?)))
    }

    /// Where the transition that the entry began at version `v` stands.
    pub(in crate::ops) fn progress(&self, b: &impl Backend, v: u64) -> Outcome<Progress> {
        Ok(match self.entry(b)? {
            Some((version, _)) if version == v => Progress::UnderWay,
            Some((_, e)) if e.incarnation == v && e.state != EntryState::Adding => {
                Progress::Confirmed
            }
            _ => Progress::Over,
        })
    }

    pub(in crate::ops) fn swap_entry(
        &self,
        b: &impl Backend,
        expected: Option<u64>,
        new: Option<&Entry>,
    ) -> Outcome<Swap> {
        let data = new.map(Entry::encode);
        be(b.swap_record(self.place(), expected, data.as_deref()))
    }

    /// Whether the entry is still at `version` (the transition it names is
    /// still under way): checked after reading a record and before swapping
    /// it, so that a marked change is never applied once it was finished.
    pub(in crate::ops) fn still_at(&self, b: &impl Backend, version: u64) -> Outcome<bool> {
        Ok(be(b.read_record(self.place()))?.is_some_and(|v| v.version == version))
    }

    /// Where the entry is.
    pub(in crate::ops) fn place(&self) -> Place<'a> {
        Space::Owner(self.space).at(self.hash)
    }

    pub(in crate::ops) fn owner(&self) -> [u8; 32] {
        *self.space.as_bytes()
    }

    pub(in crate::ops) fn key(&self) -> [u8; 32] {
        *self.hash.as_bytes()
    }
}

/// The hash of 32 raw bytes (a mark's key, a name's target).
pub(in crate::ops) fn hash_of(raw: &[u8; 32]) -> Hash {
    Hash::from_bytes(*raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hosts_key_is_its_derived_key() {
        assert_eq!(owner_key(HOST_OWNER), derived_owner_key(HOST_OWNER));
        assert_eq!(owner_key("app-1"), derived_owner_key("app-1"));
    }
}

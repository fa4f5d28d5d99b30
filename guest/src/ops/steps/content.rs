//! What a put stores, as the protocol steps that write it see it.

use crate::hash::Hash;
use crate::ops::backend::Backend;
use crate::ops::error::{Outcome, be, checked};

/// What a put stores: bytes passed in (hashed here), or bytes the host
/// staged and hashed.
#[derive(Clone, Copy)]
pub(in crate::ops) enum Content<'a> {
    Bytes(&'a [u8]),
    /// Bytes whose hash the core has computed already (with the outboard).
    Hashed(&'a [u8], Hash),
    /// The host's hash as it passed it: checked by [`Content::hash`].
    Staged {
        size: u64,
        hash: &'a str,
    },
}

impl Content<'_> {
    pub(in crate::ops) fn size(self) -> u64 {
        match self {
            Content::Bytes(b) | Content::Hashed(b, _) => b.len() as u64,
            Content::Staged { size, .. } => size,
        }
    }

    /// The content's hash: computed, or the host's checked.
    pub(in crate::ops) fn hash(self) -> Outcome<Hash> {
        match self {
            Content::Bytes(b) => Ok(Hash::of(b)),
            Content::Hashed(_, hash) => Ok(hash),
            Content::Staged { hash, .. } => checked(hash),
        }
    }

    pub(in crate::ops) fn write(self, backend: &impl Backend, hash: &Hash) -> Outcome<()> {
        be(match self {
            Content::Bytes(b) | Content::Hashed(b, _) => backend.write_blob(hash, b),
            Content::Staged { .. } => backend.write_staged_blob(hash),
        })
    }
}

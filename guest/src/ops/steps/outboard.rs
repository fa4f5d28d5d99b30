//! Writing an artifact's outboard beside its blob, once a put has the tree.

use crate::hash::Hash;
use crate::ops::backend::{Backend, Reply};
use crate::ops::caller::Dedup;

/// After a put of content held whole under `hash`: its `outboard` (built
/// with the hash), unless `outboard_kept`. Best effort: the put has
/// succeeded whatever happens here, and a range read rebuilds a missing
/// outboard.
pub(in crate::ops) fn write_outboard_after_put(
    backend: &impl Backend,
    dedup: Dedup,
    hash: &Hash,
    outboard: &[u8],
) {
    if outboard_kept(backend, dedup, hash, outboard.len()) != Ok(true) {
        let _ = backend.write_outboard(hash, outboard);
    }
}

/// Whether a put may skip writing the outboard of `hash`: under shared
/// dedup, when the backend has one of its length (the content is held, as
/// a put can tell anyway; deletion takes the outboard with the blob).
/// Under private dedup never: a put writes it as for new content, so that
/// it does the same work whoever holds the content.
pub(in crate::ops) fn outboard_kept(
    backend: &impl Backend,
    dedup: Dedup,
    hash: &Hash,
    len: usize,
) -> Reply<bool> {
    Ok(dedup == Dedup::Shared && backend.outboard_size(hash)? == Some(len as u64))
}

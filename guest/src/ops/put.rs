//! Puts: content passed in, or staged by the host and hashed in pieces.

use super::backend::{Backend, Swap};
use super::caller::Caller;
use super::error::{Error, Outcome, QuotaKind, be, checked_caller, within};
use super::steps::MAX_ATTEMPTS;
use super::steps::content::Content;
use super::steps::index::{At, owner_key};
use super::steps::outboard::write_outboard_after_put;
use super::steps::transition::{finish_add, finish_remove};
use crate::hash::Hash;
use crate::outboard::{Shape, group_values};
use crate::record::{ArtifactType, Entry, EntryState, Origin};

/// Stores `content` for the caller and returns its hash; known content
/// takes one more reference. A caller's first reference to an artifact is
/// charged to its quota before anything is written.
///
/// Content large enough to keep an outboard (see [`crate::outboard`]) gets
/// one once the put has succeeded, unless the backend has it already.
pub fn put(b: &impl Backend, caller: &Caller, content: &[u8], ty: ArtifactType) -> Outcome<String> {
    // Content large enough for an outboard is hashed once, a group at a
    // time: the groups' root is its hash (the size is checked first).
    let outboard = match Shape::of(content.len() as u64) {
        Some(_) if content.len() as u64 > caller.quota.max_artifact_bytes => None,
        Some(shape) => Some(outboard_of(&shape, content)?),
        None => None,
    };
    let Some((outboard, root)) = outboard else {
        return put_content(b, caller, Content::Bytes(content), ty).map(|h| h.to_string());
    };
    let hash = put_content(b, caller, Content::Hashed(content, root), ty)?;
    write_outboard_after_put(b, caller.dedup, &hash, &outboard);
    Ok(hash.to_string())
}

/// The outboard of `content` and its hash (the root it builds).
fn outboard_of(shape: &Shape, content: &[u8]) -> Outcome<(Vec<u8>, Hash)> {
    group_values(content, 0)
        .and_then(|groups| shape.build(&groups))
        .map_err(Error::Backend)
}

/// [`put`] for a host that has already hashed the content with the `tree`
/// functions (in several instances at once) and staged its `size` bytes in
/// the backend rather than passing them in: the same rules, without hashing
/// again; where a put writes the blob, the backend stores the staged bytes
/// ([`Backend::write_staged_blob`]). `hash` must be a valid hash; only the
/// host may call this (it is not in the apps' interface), and it vouches
/// that `hash` and `size` are the content's.
pub fn put_staged(
    b: &impl Backend,
    caller: &Caller,
    size: u64,
    ty: ArtifactType,
    hash: &str,
) -> Outcome<String> {
    put_content(b, caller, Content::Staged { size, hash }, ty).map(|h| h.to_string())
}

/// The checks every put makes before touching the backend (the content is
/// hashed only once they pass), then the put.
fn put_content(
    backend: &impl Backend,
    caller: &Caller,
    content: Content,
    artifact_type: ArtifactType,
) -> Outcome<Hash> {
    checked_caller(caller)?;
    let size = content.size();
    within(
        QuotaKind::ArtifactBytes,
        caller.quota.max_artifact_bytes,
        size,
    )?;
    let hash = content.hash()?;
    let space = owner_key(caller.owner);
    let at = At {
        space: &space,
        hash: &hash,
    };
    for _ in 0..MAX_ATTEMPTS {
        match at.entry(backend)? {
            None => {
                let adding = Entry {
                    state: EntryState::Adding,
                    artifact_type,
                    size,
                    stored_at: backend.now(),
                    count: 0,
                    incarnation: 0,
                    origin: Origin::default(),
                    named: 0,
                };
                if let Swap::Written(v) = at.swap_entry(backend, None, Some(&adding))?
                    && finish_add(backend, caller, at, v, &adding, content)?
                {
                    return Ok(hash);
                }
            }
            // A first put of this owner under way (or abandoned by a crash):
            // finish it (this put has the content), then take our reference.
            Some((v, e)) if e.state == EntryState::Adding => {
                finish_add(backend, caller, at, v, &e, content)?;
            }
            Some((v, e)) if e.state == EntryState::Removing => {
                finish_remove(backend, caller, at, v, &e)?;
            }
            Some((v, mut e)) => {
                if e.size != size {
                    return Err(Error::CorruptRecord(format!(
                        "index entry of {hash}: size {} but the content has {size} bytes",
                        e.size
                    )));
                }
                // Known content: nothing to write, unless its blob was lost or
                // damaged to another size, in which case this put repairs it.
                if be(backend.blob_size(&hash))? != Some(size) {
                    content.write(backend, &hash)?;
                }
                e.count = e.count.saturating_add(1);
                if !matches!(at.swap_entry(backend, Some(v), Some(&e))?, Swap::Conflict) {
                    return Ok(hash);
                }
            }
        }
    }
    Err(Error::Contended(hash.to_string()))
}

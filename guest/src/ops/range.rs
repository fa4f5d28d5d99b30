//! Verified ranges: bytes of an artifact proven to belong to it without
//! reading all of it, through its outboard (see [`crate::outboard`]), and
//! the outboards themselves (written at put, rebuilt when missing or
//! damaged).

use crate::hash::Hash;
use blake3::hazmat::ChainingValue;

use super::backend::Backend;
use super::caller::{Caller, Dedup};
use super::error::{Error, Outcome, be, checked, checked_caller};
use super::read::{stat_of, verified_content};
use super::steps::outboard::outboard_kept;
use crate::outboard::{CV_LEN, GROUP_LEN, Shape, group_values};

/// The most bytes one `get-range` returns: 4 MiB.
pub const RANGE_LIMIT: u64 = 4 << 20;

/// How much of an artifact a rebuild reads at a time (a whole number of groups).
const REBUILD_PIECE: u64 = 64 * GROUP_LEN;

/// `len` bytes of the artifact `hash` from `offset`, verified: through the
/// outboard for content that keeps one (the groups the range touches and
/// their path's nodes), else the whole content. An outboard that is
/// missing, short or does not prove the range is rebuilt from the whole
/// content (which is then verified whole, and the range served from it).
/// The caller must see the artifact (an owner reads only its own entry
/// before deciding).
pub fn get_range(
    backend: &impl Backend,
    caller: &Caller,
    hash: &str,
    offset: u64,
    len: u64,
) -> Outcome<Vec<u8>> {
    checked_caller(caller)?;
    let hash = &checked(hash)?;
    let meta = stat_of(backend, caller, hash)?;
    range_of(backend, hash, meta.size, offset, len)
}

/// [`get_range`] of an artifact the host has opened (its record read, its
/// `size` known): the same proof and errors without reading the record
/// again. A wrong `size` proves nothing (the range then fails as damaged).
pub fn prove_range(
    backend: &impl Backend,
    hash: &str,
    size: u64,
    offset: u64,
    len: u64,
) -> Outcome<Vec<u8>> {
    range_of(backend, &checked(hash)?, size, offset, len)
}

/// `len` bytes from `offset` of the artifact `hash` of `size` bytes, proven.
fn range_of(
    backend: &impl Backend,
    hash: &Hash,
    size: u64,
    offset: u64,
    len: u64,
) -> Outcome<Vec<u8>> {
    if len > RANGE_LIMIT {
        return Err(Error::RangeTooLong(RANGE_LIMIT));
    }
    if offset > size || len > size - offset {
        return Err(Error::OutOfRange {
            offset,
            length: len,
            size,
        });
    }
    if len == 0 {
        return Ok(Vec::new());
    }
    let Some(shape) = Shape::of(size) else {
        let content = verified_content(backend, hash, size)?;
        return Ok(slice(&content, 0, offset, len).to_vec());
    };
    if let Some(bytes) = proven(backend, hash, &shape, offset, len)? {
        return Ok(bytes);
    }
    rebuild(backend, hash, &shape, offset, len)
}

/// `content` (which starts at byte `at`) from `offset`, `len` bytes.
fn slice(content: &[u8], at: u64, offset: u64, len: u64) -> &[u8] {
    let start = usize::try_from(offset - at).unwrap_or(usize::MAX);
    let end = start.saturating_add(usize::try_from(len).unwrap_or(usize::MAX));
    content.get(start..end).unwrap_or_default()
}

/// The range proven through the outboard; `None` if the outboard is
/// missing or does not prove it (damaged, stale, short), or the content
/// read is shorter than its record says.
fn proven(
    backend: &impl Backend,
    hash: &Hash,
    shape: &Shape,
    offset: u64,
    len: u64,
) -> Outcome<Option<Vec<u8>>> {
    let (first, end) = shape.groups_of(offset, len);
    let path = shape.path(first, end);
    let ranges: Vec<(u64, u64)> = path
        .iter()
        .map(|&node| (shape.position(node), CV_LEN))
        .collect();
    let Some(nodes) = be(backend.read_outboard(hash, &ranges))? else {
        return Ok(None);
    };
    let stored: Option<Vec<ChainingValue>> =
        nodes.iter().map(|n| n.as_slice().try_into().ok()).collect();
    let Some(stored) = stored.filter(|s| s.len() == path.len()) else {
        return Ok(None);
    };
    let (at, n) = shape.bytes_of(first, end);
    let Some(data) = be(backend.read_blob_range(hash, at, n))? else {
        return Err(Error::MissingContent(hash.to_string()));
    };
    if data.len() as u64 != n {
        return Ok(None);
    }
    let computed = group_values(&data, at).map_err(Error::Backend)?;
    match shape.root_of_range(first, end, &computed, &stored) {
        Ok(root) if root == *hash => Ok(Some(slice(&data, at, offset, len).to_vec())),
        _ => Ok(None),
    }
}

/// Reads the whole content a piece at a time, checks it against `hash`,
/// writes the outboard it builds (best effort: a failed write fails no
/// read), and returns the range from it.
fn rebuild(
    backend: &impl Backend,
    hash: &Hash,
    shape: &Shape,
    offset: u64,
    len: u64,
) -> Outcome<Vec<u8>> {
    match be(backend.blob_size(hash))? {
        None => return Err(Error::MissingContent(hash.to_string())),
        // The whole read reports exactly what is wrong (integrity, size).
        Some(n) if n != shape.size() => {
            let content = verified_content(backend, hash, shape.size())?;
            return Ok(slice(&content, 0, offset, len).to_vec());
        }
        Some(_) => {}
    }
    let mut groups = Vec::with_capacity(usize::try_from(shape.groups()).unwrap_or(0));
    let mut out = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    let mut at = 0;
    while at < shape.size() {
        let want = REBUILD_PIECE.min(shape.size() - at);
        let piece = match be(backend.read_blob_range(hash, at, want))? {
            Some(piece) if piece.len() as u64 == want => piece,
            // Changed while read: the whole read says how.
            _ => {
                let content = verified_content(backend, hash, shape.size())?;
                return Ok(slice(&content, 0, offset, len).to_vec());
            }
        };
        groups.extend(group_values(&piece, at).map_err(Error::Backend)?);
        let (from, to) = (offset.max(at), (offset + len).min(at + want));
        if from < to {
            out.extend_from_slice(slice(&piece, at, from, to - from));
        }
        at += want;
    }
    let (outboard, root) = shape.build(&groups).map_err(Error::Backend)?;
    if root != *hash {
        return Err(Error::Integrity {
            expected: hash.to_string(),
            actual: root.to_string(),
        });
    }
    let _ = backend.write_outboard(hash, &outboard);
    Ok(out)
}

/// Writes the outboard of `hash` (content of `size` bytes) from its groups'
/// chaining values, after checking that they merge into `hash`, unless
/// `outboard_kept` says the backend has it. Returns whether it wrote.
pub fn store_outboard(
    backend: &impl Backend,
    dedup: Dedup,
    hash: &Hash,
    size: u64,
    groups: &[ChainingValue],
) -> Result<bool, String> {
    let shape = Shape::of(size).ok_or_else(|| format!("{size} bytes keep no outboard"))?;
    let (outboard, root) = shape.build(groups)?;
    if root != *hash {
        return Err(format!("the groups merge into {root}, not {hash}"));
    }
    if outboard_kept(backend, dedup, hash, outboard.len())? {
        return Ok(false);
    }
    backend.write_outboard(hash, &outboard)?;
    Ok(true)
}

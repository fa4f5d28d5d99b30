//! An artifact's *outboard*: BLAKE3's tree over its 16 KiB groups, kept
//! beside the content so that a range can be proven to belong to the
//! artifact from the groups it touches and the nodes on their path to the
//! root, without reading the rest.
//!
//! A group is 16 chunks (16 KiB, the last one shorter), as in iroh-blobs'
//! bao-tree. For content of at least [`OUTBOARD_MIN`] bytes (so at least 16
//! groups) BLAKE3's tree above the groups is the tree that pairs
//! neighbours level by level and carries an odd last node up unchanged
//! (BLAKE3 splits every node at the largest power of two of chunks, and a
//! group is a power of two of chunks). The outboard stores, level by level
//! from the groups up to the level of two nodes under the root, the
//! chaining value of every node (32 bytes each, a carried node repeated):
//! node `i` of level `k` covers groups `i·2^k .. (i+1)·2^k` and sits at a
//! position computed from `k` and `i` alone, so a range needs only its
//! path. About 2 × 32 bytes per 16 KiB (0.4 %: 4 MiB for 1 GiB).
//!
//! An outboard is a function of the content: whoever writes it, whatever
//! is read back is only trusted once it merges, with the range's own
//! groups, into the artifact's hash.

use blake3::hazmat::{ChainingValue, Mode, merge_subtrees_non_root, merge_subtrees_root};

use crate::hash::Hash;
use crate::tree::{CHUNK_LEN, subtree};

/// Chunks per group, as a power of two.
pub const GROUP_LOG: u32 = 4;
/// Bytes per group: 16 KiB.
pub const GROUP_LEN: u64 = CHUNK_LEN << GROUP_LOG;
/// Content this large or larger keeps an outboard; smaller content is
/// verified whole by a range read (at most 256 KiB of reading and hashing,
/// and puts of it stay one core call with no second write).
pub const OUTBOARD_MIN: u64 = 256 << 10;
/// Bytes of a chaining value.
pub const CV_LEN: u64 = 32;

/// The tree of content of one size that keeps an outboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    size: u64,
    groups: u64,
}

/// One node of the tree: level `k` (0: groups), index `i` on it.
pub type Node = (u32, u64);

impl Shape {
    /// The tree of content of `size` bytes, if it keeps an outboard.
    pub fn of(size: u64) -> Option<Self> {
        (size >= OUTBOARD_MIN).then(|| Self {
            size,
            groups: size.div_ceil(GROUP_LEN),
        })
    }

    /// The content's size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// How many groups the content has.
    pub fn groups(&self) -> u64 {
        self.groups
    }

    /// How many nodes level `k` has.
    fn width(&self, k: u32) -> u64 {
        self.groups.div_ceil(1u64 << k)
    }

    /// The level right under the root (two nodes wide).
    fn top(&self) -> u32 {
        let mut k = 0;
        while self.width(k + 1) > 1 {
            k += 1;
        }
        k
    }

    /// Where node `(k, i)` starts in the outboard.
    pub fn position(&self, (k, i): Node) -> u64 {
        let before: u64 = (0..k).map(|j| self.width(j)).sum();
        (before + i) * CV_LEN
    }

    /// The outboard's length in bytes.
    pub fn outboard_len(&self) -> u64 {
        (0..=self.top()).map(|k| self.width(k)).sum::<u64>() * CV_LEN
    }

    /// The groups `first..end` that bytes `offset..offset + len` touch
    /// (`len` > 0, within the content), and where their bytes are.
    pub fn groups_of(&self, offset: u64, len: u64) -> (u64, u64) {
        let first = offset / GROUP_LEN;
        let end = (offset + len).div_ceil(GROUP_LEN).min(self.groups);
        (first, end)
    }

    /// The bytes of groups `first..end`: (offset, length).
    pub fn bytes_of(&self, first: u64, end: u64) -> (u64, u64) {
        let start = first * GROUP_LEN;
        (start, (end * GROUP_LEN).min(self.size) - start)
    }

    /// The groups node `(k, i)` covers.
    fn covers(&self, (k, i): Node) -> (u64, u64) {
        let start = i << k;
        (start, ((i + 1) << k).min(self.groups))
    }

    /// Whether node `(k, i)` (k > 0) has a right child, or carries its left one.
    fn has_right(&self, (k, i): Node) -> bool {
        ((i << k) + (1u64 << (k - 1))) < self.groups
    }

    /// The stored nodes that, with groups `first..end` computed from the
    /// content, make up the root: in the order [`root_of_range`](Self::root_of_range)
    /// takes them. At most two per level.
    pub fn path(&self, first: u64, end: u64) -> Vec<Node> {
        let mut out = Vec::new();
        let top = self.top();
        for child in [(top, 0), (top, 1)] {
            self.walk(child, first, end, &mut |n, inside| {
                if !inside {
                    out.push(n);
                }
                [0; 32]
            });
        }
        out
    }

    /// The chaining value of node `n`: `value(node, false)` for a stored
    /// node outside groups `first..end`, `value(group, true)` for a group
    /// inside, merged up.
    fn walk(
        &self,
        n: Node,
        first: u64,
        end: u64,
        value: &mut impl FnMut(Node, bool) -> ChainingValue,
    ) -> ChainingValue {
        let (start, stop) = self.covers(n);
        if stop <= first || start >= end {
            return value(n, false);
        }
        let (k, i) = n;
        if k == 0 {
            return value(n, true);
        }
        let left = self.walk((k - 1, 2 * i), first, end, value);
        if !self.has_right(n) {
            return left;
        }
        let right = self.walk((k - 1, 2 * i + 1), first, end, value);
        merge_subtrees_non_root(&left, &right, Mode::Hash)
    }

    /// The root (the hash, lowercase hex) from the chaining values of
    /// groups `first..end` (computed from the content) and the stored
    /// nodes [`path`](Self::path) named, in its order.
    pub fn root_of_range(
        &self,
        first: u64,
        end: u64,
        computed: &[ChainingValue],
        stored: &[ChainingValue],
    ) -> Result<Hash, String> {
        if computed.len() as u64 != end.saturating_sub(first) {
            return Err("the range's groups do not fit its tree".into());
        }
        let mut stored = stored.iter();
        let mut missing = false;
        let mut value = |(_, i): Node, inside: bool| -> ChainingValue {
            let cv = if inside {
                usize::try_from(i - first)
                    .ok()
                    .and_then(|j| computed.get(j))
            } else {
                stored.next()
            };
            cv.copied().unwrap_or_else(|| {
                missing = true;
                [0; 32]
            })
        };
        let top = self.top();
        let left = self.walk((top, 0), first, end, &mut value);
        let right = self.walk((top, 1), first, end, &mut value);
        if missing || stored.next().is_some() {
            return Err("the range's nodes do not fit its tree".into());
        }
        Ok(merge_subtrees_root(&left, &right, Mode::Hash).into())
    }

    /// The outboard built from every group's chaining value, and the root
    /// they merge into.
    pub fn build(&self, groups: &[ChainingValue]) -> Result<(Vec<u8>, Hash), String> {
        if groups.len() as u64 != self.groups {
            return Err(format!(
                "{} bytes have {} groups, not {}",
                self.size,
                self.groups,
                groups.len()
            ));
        }
        let mut out = Vec::with_capacity(usize::try_from(self.outboard_len()).unwrap_or(0));
        let mut level = groups.to_vec();
        loop {
            for cv in &level {
                out.extend_from_slice(cv);
            }
            if level.len() == 2 {
                let (l, r) = (level.first(), level.get(1));
                let (Some(l), Some(r)) = (l, r) else {
                    return Err("an empty level".into());
                };
                let root = merge_subtrees_root(l, r, Mode::Hash).into();
                return Ok((out, root));
            }
            level = pair_up(&level);
        }
    }
}

/// The next level up: neighbours merged, an odd last node carried.
fn pair_up(level: &[ChainingValue]) -> Vec<ChainingValue> {
    level
        .chunks(2)
        .map(|pair| match pair {
            [l, r] => merge_subtrees_non_root(l, r, Mode::Hash),
            [one] => *one,
            _ => [0; 32],
        })
        .collect()
}

/// The chaining values of the 16 KiB groups of `data`, which starts at
/// byte `offset` (a multiple of [`GROUP_LEN`]) of its input.
pub fn group_values(data: &[u8], offset: u64) -> Result<Vec<ChainingValue>, String> {
    if !offset.is_multiple_of(GROUP_LEN) {
        return Err(format!("offset {offset} is not a multiple of {GROUP_LEN}"));
    }
    data.chunks(GROUP_LEN as usize)
        .enumerate()
        .map(|(j, group)| subtree(group, offset + j as u64 * GROUP_LEN))
        .collect()
}

/// The chaining value of the subtree `data` (which starts at byte `offset`,
/// a multiple of [`GROUP_LEN`], of its input, and is no longer than a
/// subtree there may be), and its groups' values ([`group_values`]), which
/// merge into it.
pub fn groups(data: &[u8], offset: u64) -> Result<(ChainingValue, Vec<ChainingValue>), String> {
    subtree_fits(data.len() as u64, offset)?;
    let cvs = group_values(data, offset)?;
    let mut level = cvs.clone();
    while level.len() > 1 {
        level = pair_up(&level);
    }
    let cv = level
        .first()
        .copied()
        .ok_or("a subtree has at least one byte")?;
    Ok((cv, cvs))
}

fn subtree_fits(len: u64, offset: u64) -> Result<(), String> {
    match blake3::hazmat::max_subtree_len(offset) {
        Some(max) if len > max => Err(format!(
            "{len} bytes at offset {offset} exceed the largest subtree there ({max})"
        )),
        _ => Ok(()),
    }
}

/// Chaining values from their concatenation.
pub fn cvs(bytes: &[u8]) -> Result<Vec<ChainingValue>, String> {
    if !(bytes.len() as u64).is_multiple_of(CV_LEN) {
        return Err(format!(
            "{} bytes are not a whole number of chaining values",
            bytes.len()
        ));
    }
    Ok(bytes
        .chunks(CV_LEN as usize)
        .map(|c| c.try_into().unwrap_or([0; 32]))
        .collect())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 % 251) as u8).collect()
    }

    fn outboard_of(data: &[u8]) -> (Shape, Vec<u8>, Hash) {
        let shape = Shape::of(data.len() as u64).unwrap();
        let (_, cvs) = groups(data, 0).unwrap();
        let (ob, root) = shape.build(&cvs).unwrap();
        (shape, ob, root)
    }

    fn prove(shape: &Shape, data: &[u8], ob: &[u8], offset: u64, len: u64) -> Hash {
        let (first, end) = shape.groups_of(offset, len);
        let (at, n) = shape.bytes_of(first, end);
        let computed = group_values(&data[at as usize..(at + n) as usize], at).unwrap();
        let stored: Vec<ChainingValue> = shape
            .path(first, end)
            .into_iter()
            .map(|node| {
                let p = shape.position(node) as usize;
                ob[p..p + 32].try_into().unwrap()
            })
            .collect();
        shape.root_of_range(first, end, &computed, &stored).unwrap()
    }

    #[test]
    fn the_outboard_root_is_blake3_at_every_shape() {
        for len in [
            256 << 10,
            (256 << 10) + 1,
            (256 << 10) + 16384,
            (256 << 10) + 16385,
            (272 << 10) + 1,
            (1 << 20) - 1,
            (1 << 20) + 1025,
            (3 << 20) + 7,
        ] {
            let data = pattern(len);
            let (shape, ob, root) = outboard_of(&data);
            assert_eq!(root, Hash::of(&data), "{len}");
            assert_eq!(ob.len() as u64, shape.outboard_len());
            let (cv, _) = groups(&data[..1 << 18], 0).unwrap();
            assert_eq!(cv, subtree(&data[..1 << 18], 0).unwrap());
        }
    }

    #[test]
    fn every_range_proves_to_the_hash_through_its_path_only() {
        for len in [256 << 10, (256 << 10) + 5, (1 << 20) + 1025, (2 << 20) - 3] {
            let data = pattern(len);
            let (shape, ob, root) = outboard_of(&data);
            let len = len as u64;
            for (offset, n) in [
                (0, 1),
                (0, len),
                (len - 1, 1),
                (16383, 2),
                (16384, 16384),
                (12345, 4096),
                (len / 2, 4096.min(len / 2)),
                (len - 4096, 4096),
            ] {
                assert_eq!(
                    prove(&shape, &data, &ob, offset, n),
                    root,
                    "{len} {offset}+{n}"
                );
                let (first, end) = shape.groups_of(offset, n);
                assert!(shape.path(first, end).len() <= 2 * (shape.top() as usize + 1));
            }
        }
    }

    #[test]
    fn damaged_path_nodes_or_groups_change_the_root_and_others_do_not_matter() {
        let data = pattern((1 << 20) + 1025);
        let (shape, ob, root) = outboard_of(&data);
        let (offset, n) = (300_000u64, 4096u64);
        let (first, end) = shape.groups_of(offset, n);
        let path = shape.path(first, end);
        for node in &path {
            let mut bad = ob.clone();
            bad[shape.position(*node) as usize + 5] ^= 1;
            assert_ne!(prove(&shape, &data, &bad, offset, n), root);
        }
        // Every other node and every other group: the proof is unchanged.
        let mut bad = ob.clone();
        for k in 0..shape.outboard_len() / 32 {
            let p = (k * 32) as usize;
            if !path.iter().any(|&node| shape.position(node) as usize == p) {
                bad[p] ^= 0xff;
            }
        }
        let mut other = data.clone();
        other[0] ^= 1;
        *other.last_mut().unwrap() ^= 1;
        assert_eq!(prove(&shape, &other, &bad, offset, n), root);
        let mut inside = data.clone();
        inside[offset as usize + 17] ^= 1;
        assert_ne!(prove(&shape, &inside, &ob, offset, n), root);
    }

    #[test]
    fn wrong_inputs_are_refused() {
        assert_eq!(Shape::of((256 << 10) - 1), None);
        let shape = Shape::of(256 << 10).unwrap();
        assert!(shape.build(&[[0; 32]; 3]).is_err());
        assert!(groups(&[1; 100], 1024).is_err());
        assert!(groups(&[1; 65536], 16384).is_err());
        assert!(cvs(&[0; 33]).is_err());
        assert!(shape.root_of_range(0, 1, &[], &[]).is_err());
    }
}

//! BLAKE3's tree, in pieces: the chaining values of subtrees and their
//! parents, so that a host can hash the parts of one large input in several
//! core instances at once and combine them into exactly `blake3::hash`.
//!
//! The host splits an input the way BLAKE3 does (the left subtree is the
//! largest power-of-two number of chunks that leaves something on the
//! right), asks instances for the chaining value of each piece, then asks one
//! instance to merge them. These functions check what they are given, so a
//! host that splits wrongly gets an error where it can be told (an offset off
//! a chunk boundary, a piece too long for its place, a value of the wrong
//! length); that the pieces are the input's, in order, rests on the host.

use blake3::hazmat::{ChainingValue, HasherExt, Mode, max_subtree_len};

/// BLAKE3's chunk length.
pub const CHUNK_LEN: u64 = blake3::CHUNK_LEN as u64;

/// The chaining value of the subtree `data`, which starts at byte `offset`
/// of its input; no longer than a subtree starting at `offset` may be. (An
/// input of one chunk has no subtrees: hash it whole.)
pub fn subtree(data: &[u8], offset: u64) -> Result<ChainingValue, String> {
    let len = data.len() as u64;
    if !offset.is_multiple_of(CHUNK_LEN) {
        return Err(format!("offset {offset} is not a multiple of {CHUNK_LEN}"));
    }
    if len == 0 {
        return Err("a subtree has at least one byte".into());
    }
    if let Some(max) = max_subtree_len(offset)
        && len > max
    {
        return Err(format!(
            "{len} bytes at offset {offset} exceed the largest subtree there ({max})"
        ));
    }
    Ok(blake3::Hasher::new()
        .set_input_offset(offset)
        .update(data)
        .finalize_non_root())
}

fn cv(bytes: &[u8]) -> Result<ChainingValue, String> {
    bytes
        .try_into()
        .map_err(|_| format!("a chaining value has 32 bytes, not {}", bytes.len()))
}

/// The chaining value of the parent of two adjacent subtrees.
pub fn parent(left: &[u8], right: &[u8]) -> Result<ChainingValue, String> {
    Ok(blake3::hazmat::merge_subtrees_non_root(
        &cv(left)?,
        &cv(right)?,
        Mode::Hash,
    ))
}

/// The input's hash, in lowercase hex, from its two top subtrees.
pub fn root(left: &[u8], right: &[u8]) -> Result<String, String> {
    Ok(
        blake3::hazmat::merge_subtrees_root(&cv(left)?, &cv(right)?, Mode::Hash)
            .to_hex()
            .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8).collect()
    }

    /// Splits like the host: pieces of at most `piece` bytes, merged back up.
    fn tree_hash(data: &[u8], piece: u64) -> String {
        fn node(data: &[u8], offset: u64, piece: u64) -> ChainingValue {
            let len = data.len() as u64;
            if len <= piece.max(CHUNK_LEN) {
                return subtree(data, offset).unwrap();
            }
            let left = blake3::hazmat::left_subtree_len(len) as usize;
            let (l, r) = data.split_at(left);
            parent(
                &node(l, offset, piece),
                &node(r, offset + left as u64, piece),
            )
            .unwrap()
        }
        let left = blake3::hazmat::left_subtree_len(data.len() as u64) as usize;
        let (l, r) = data.split_at(left);
        root(&node(l, 0, piece), &node(r, left as u64, piece)).unwrap()
    }

    #[test]
    fn pieces_merged_give_exactly_the_hash_at_every_boundary() {
        for len in [
            1025,
            2047,
            2048,
            2049,
            3072,
            4095,
            4096,
            4097,
            65_536,
            65_537,
            1 << 20,
            (1 << 20) + 1025,
        ] {
            let data = pattern(len);
            let expected = blake3::hash(&data).to_hex().to_string();
            for piece in [1024, 4096, 65_536, 1 << 20] {
                assert_eq!(
                    tree_hash(&data, piece),
                    expected,
                    "len {len}, piece {piece}"
                );
            }
        }
    }

    #[test]
    fn a_wrong_offset_or_oversized_piece_is_refused() {
        assert!(
            subtree(&pattern(2048), 1000)
                .unwrap_err()
                .contains("multiple")
        );
        assert!(
            subtree(&pattern(4096), 2048)
                .unwrap_err()
                .contains("largest subtree")
        );
        assert!(subtree(&[], 1024).is_err());
        assert!(parent(&[0; 31], &[0; 32]).unwrap_err().contains("32 bytes"));
        assert!(root(&[0; 32], &[0; 33]).is_err());
    }

    #[test]
    fn a_piece_hashed_at_the_wrong_offset_changes_the_hash() {
        let data = pattern(4096);
        let good = root(
            &subtree(&data[..2048], 0).unwrap(),
            &subtree(&data[2048..], 2048).unwrap(),
        )
        .unwrap();
        assert_eq!(good, blake3::hash(&data).to_hex().to_string());
        let shifted = root(
            &subtree(&data[..2048], 0).unwrap(),
            &subtree(&data[2048..], 4096).unwrap(),
        )
        .unwrap();
        assert_ne!(shifted, good);
    }
}

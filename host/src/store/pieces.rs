//! One large input hashed by several core instances at once, and the size
//! plan that decides when.
//!
//! BLAKE3 is a tree: the hash of an input is the root over the chaining
//! values of its subtrees, whatever computed them. A verified get of a large
//! artifact splits the content the way BLAKE3 does, lets a few core
//! instances on their own threads compute the subtrees' chaining values (the
//! core's `tree` interface), and has one instance merge them up to the root.
//! The hashing stays in the core; the host only chooses the pieces.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use blake3::hazmat::left_subtree_len;

use super::workers;
use crate::core_component::CoreClient;
use crate::{Error, Hash};

/// Content at least this large is hashed by several instances at once.
pub const PARALLEL_HASH_BYTES: u64 = 256 << 10;

/// A get of content at least this large is verified by several instances
/// at once (a put waits for [`PARALLEL_HASH_BYTES`], where it is staged and
/// keeps an outboard): below it, more core calls, merging the pieces'
/// values and waking a worker cost more than the second instance saves
/// (docs/benchmarks.md, Figures behind constants).
pub const GET_PARALLEL_BYTES: u64 = 128 << 10;

/// Content at least this large keeps an outboard (the core's threshold:
/// the same as [`PARALLEL_HASH_BYTES`], so every staged put makes one).
pub const OUTBOARD_MIN: u64 = 256 << 10;

/// [`ArtifactStore::get_to`](crate::ArtifactStore::get_to) streams content
/// larger than this (smaller content is verified whole before any of it is
/// written; the CLI holds that much in memory before spilling to a file).
pub const STREAM_ABOVE_BYTES: u64 = 16 << 20;

/// How a call moves content of a given size: decided once per call, here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SizePlan {
    /// Under [`PARALLEL_HASH_BYTES`]: one call into the core, content whole.
    Whole,
    /// Hashed in pieces by several core instances; puts are staged in the
    /// backend, gets held in memory.
    Pieces,
    /// Over [`STREAM_ABOVE_BYTES`]: in pieces, and `get_to` streams it.
    Streamed,
}

impl SizePlan {
    /// The plan for content of `size` bytes.
    pub(crate) fn of(size: u64) -> Self {
        if size < PARALLEL_HASH_BYTES {
            Self::Whole
        } else if size <= STREAM_ABOVE_BYTES {
            Self::Pieces
        } else {
            Self::Streamed
        }
    }
}

impl SizePlan {
    /// The plan for reading `size` bytes with `workers` hashing instances,
    /// holding at most `hold` bytes of it at once: whole in one core call
    /// below [`whole_below`](Self::whole_below), streamed past `hold`,
    /// else read by the host and hashed in pieces.
    pub(crate) fn read(size: u64, workers: usize, hold: u64) -> Self {
        if size > hold {
            Self::Streamed
        } else if size < Self::whole_below(workers, hold) {
            Self::Whole
        } else {
            Self::Pieces
        }
    }

    /// Below how many bytes a read takes the content whole from the core:
    /// [`GET_PARALLEL_BYTES`] when several instances can hash at once, else
    /// everything it may hold.
    pub(crate) fn whole_below(workers: usize, hold: u64) -> u64 {
        if workers < 2 {
            hold.saturating_add(1)
        } else {
            GET_PARALLEL_BYTES.min(hold.saturating_add(1))
        }
    }
}

/// Pieces per instance, so that BLAKE3's uneven splits still balance.
const PIECES_PER_WORKER: u64 = 4;

/// The largest piece one instance hashes at a time, so that no instance
/// grows past what the pool keeps (64 MiB) however large the artifact.
const MAX_PIECE: u64 = 16 << 20;

pub(super) const CHUNK_LEN: u64 = blake3::CHUNK_LEN as u64;

/// The outboard's group (16 chunks): no piece is smaller (but the last),
/// so that every piece's groups are the artifact's.
pub(super) const GROUP_LEN: u64 = 16 * CHUNK_LEN;

/// How many instances hash at once by default: the machine's cores, up to 4.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
}

/// The leaves of the split, in input order: `(offset, len)`.
pub(super) fn split(offset: u64, len: u64, max_piece: u64, out: &mut Vec<(u64, u64)>) {
    if len <= max_piece || len <= CHUNK_LEN {
        out.push((offset, len));
        return;
    }
    let left = left_subtree_len(len);
    split(offset, left, max_piece, out);
    split(offset + left, len - left, max_piece, out);
}

/// The largest piece for `len` bytes over `workers` instances: a few pieces
/// each, so that uneven splits balance, and never above `cap`.
pub(super) fn max_piece(len: u64, workers: usize, cap: u64) -> u64 {
    (len / (workers.max(1) as u64 * PIECES_PER_WORKER)).clamp(GROUP_LEN, cap.max(GROUP_LEN))
}

/// The chaining value of a subtree of `len` bytes, merging its pieces'
/// values (taken in order from `cvs`) as the split made them.
fn node(
    parent: &mut impl FnMut(&[u8], &[u8]) -> Result<Vec<u8>, Error>,
    len: u64,
    max_piece: u64,
    cvs: &mut impl Iterator<Item = Vec<u8>>,
) -> Result<Vec<u8>, Error> {
    if len <= max_piece || len <= CHUNK_LEN {
        return cvs
            .next()
            .ok_or_else(|| Error::Core("a piece's chaining value is missing".into()));
    }
    let left = left_subtree_len(len);
    let l = node(parent, left, max_piece, cvs)?;
    let r = node(parent, len - left, max_piece, cvs)?;
    parent(&l, &r)
}

/// The BLAKE3 hash (lowercase hex) of `data`, computed by up to `workers`
/// core instances at once. `data` must be longer than one piece.
pub(crate) fn hash(core: &CoreClient, data: &[u8], workers: usize) -> Result<Hash, Error> {
    hash_grouped(core, data, workers).map(|(hash, _)| hash)
}

/// [`hash`], and the chaining values of the 16 KiB groups of `data` (32
/// bytes each, in order), which the core's `subtree-groups` computes in the
/// same pass: what the outboard is built from.
pub(crate) fn hash_grouped(
    core: &CoreClient,
    data: &[u8],
    workers: usize,
) -> Result<(Hash, Vec<u8>), Error> {
    let len = data.len() as u64;
    let max_piece = max_piece(len, workers, MAX_PIECE);
    if len <= max_piece {
        return Err(Error::Core(format!("{len} bytes are too few to split")));
    }
    let mut pieces = Vec::new();
    split(0, len, max_piece, &mut pieces);
    let cvs: Vec<OnceLock<PieceValues>> = pieces.iter().map(|_| OnceLock::new()).collect();
    let next = AtomicUsize::new(0);
    let work = || {
        core.with(|i| {
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                let (Some(&(offset, piece_len)), Some(slot)) = (pieces.get(k), cvs.get(k)) else {
                    break;
                };
                let bytes = usize::try_from(offset)
                    .ok()
                    .zip(usize::try_from(offset + piece_len).ok())
                    .and_then(|(a, b)| data.get(a..b))
                    .ok_or_else(|| Error::Core("a piece outside the input".into()))?;
                let _ = slot.set(i.subtree_groups(bytes, offset)?);
            }
            Ok(())
        })
    };
    workers::each(workers.max(1), |_| work())
        .into_iter()
        .collect::<Result<Vec<()>, Error>>()?;
    let mut values = Vec::with_capacity(cvs.len());
    let mut groups = Vec::with_capacity(usize::try_from(len.div_ceil(GROUP_LEN) * 32).unwrap_or(0));
    for cv in cvs {
        let (cv, piece_groups) = cv
            .into_inner()
            .ok_or_else(|| Error::Core("a piece was not hashed".into()))?;
        values.push(cv);
        groups.extend_from_slice(&piece_groups);
    }
    Ok((root(core, len, max_piece, values)?, groups))
}

/// The hash of an input of `len` bytes from its pieces' chaining values.
pub(super) fn root(
    core: &CoreClient,
    len: u64,
    max_piece: u64,
    values: Vec<Vec<u8>>,
) -> Result<Hash, Error> {
    let mut values = values.into_iter();
    core.with(|i| {
        let left = left_subtree_len(len);
        let mut parent = |l: &[u8], r: &[u8]| i.parent(l, r);
        let l = node(&mut parent, left, max_piece, &mut values)?;
        let r = node(&mut parent, len - left, max_piece, &mut values)?;
        i.root(&l, &r)
    })
}

/// The largest piece a streaming read or put holds at a time.
pub(crate) const STREAM_PIECE: u64 = 4 << 20;

/// A piece's chaining value, and its 16 KiB groups' (32 bytes each).
pub(super) type PieceValues = (Vec<u8>, Vec<u8>);

/// The chaining values of `pieces` (each at its offset, a multiple of
/// 16 KiB), each with its groups' values, one instance per piece, each on
/// its own thread.
pub(super) fn subtrees(
    core: &CoreClient,
    pieces: &[(u64, &[u8])],
) -> Result<Vec<PieceValues>, Error> {
    workers::each(pieces.len(), |k| {
        let &(offset, bytes) = pieces
            .get(k)
            .ok_or_else(|| Error::Core("a piece outside the input".into()))?;
        core.with(|i| i.subtree_groups(bytes, offset))
    })
    .into_iter()
    .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::super::streaming::hash_pieces;
    use super::*;
    use crate::{ArtifactStore, ArtifactType, MemoryBackend};

    #[test]
    fn instances_in_parallel_give_exactly_blake3() {
        let store = ArtifactStore::builder().open(MemoryBackend::new()).unwrap();
        for len in [
            16_385usize,
            65_537,
            262_144,
            (1 << 20) + 1025,
            (3 << 20) + 7,
        ] {
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let expected = Hash::of(&data);
            for workers in [1, 2, 3, 4] {
                assert_eq!(
                    hash(&store.core, &data, workers).unwrap(),
                    expected,
                    "{len} {workers}"
                );
            }
        }
        assert!(hash(&store.core, &[0; 16384], 2).is_err());
    }

    /// Two stores over one memory backend: with two hashing instances, and one.
    fn two_and_one() -> (MemoryBackend, ArtifactStore, ArtifactStore) {
        let backend = MemoryBackend::new();
        let with = |workers| {
            ArtifactStore::builder()
                .hash_workers(workers)
                .open(backend.clone())
                .unwrap()
        };
        let (two, one) = (with(2), with(1));
        (backend, two, one)
    }

    #[test]
    fn large_puts_hashed_in_parallel_dedup_with_ordinary_puts() {
        let (backend, two, one) = two_and_one();
        for len in [(256usize << 10) - 1, 256 << 10, (1 << 20) + 1025] {
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let h = two.put(&data, ArtifactType::Generic).unwrap();
            assert_eq!(h, Hash::of(&data));
            assert_eq!(one.put(&data, ArtifactType::Generic).unwrap(), h);
            assert_eq!(two.stat(&h).unwrap().reference_count, 2);
            assert_eq!(crate::Backend::read_blob(&backend, &h).unwrap(), Some(data));
        }
        assert_eq!(one.count().unwrap(), 3);
    }

    #[test]
    fn a_large_get_takes_the_parallel_path_only_for_clean_content() {
        use super::super::reader::{Purpose, Reader};
        let (backend, two, one) = two_and_one();
        let data: Vec<u8> = (0..(1 << 20) + 3).map(|i| (i % 251) as u8).collect();
        let h = two.put(&data, ArtifactType::Generic).unwrap();
        let reader = Reader::open(&two, &h, Purpose::Verify).unwrap();
        assert_eq!(reader.plan(), SizePlan::Pieces);
        assert_eq!(reader.metadata().size, data.len() as u64);
        assert_eq!(
            Reader::open(&two, &h, Purpose::Get)
                .unwrap()
                .content()
                .unwrap(),
            data
        );
        let whole = Reader::open(&one, &h, Purpose::Get).unwrap();
        assert_eq!(
            whole.plan(),
            SizePlan::Whole,
            "one instance: the core's whole read"
        );
        let small = two.put(b"small", ArtifactType::Generic).unwrap();
        assert_eq!(
            Reader::open(&two, &small, Purpose::Get).unwrap().plan(),
            SizePlan::Whole
        );
        let mut bad = data.clone();
        bad[7] ^= 1;
        crate::Backend::write_blob(&backend, &h, &bad).unwrap();
        assert!(matches!(two.get(&h), Err(crate::Error::Integrity { .. })));
        assert!(matches!(one.get(&h), Err(crate::Error::Integrity { .. })));
        assert!(matches!(
            two.verify(&h),
            Err(crate::Error::Integrity { .. })
        ));
    }

    #[test]
    fn the_read_plan_is_chosen_once_from_the_size() {
        let plan = |size, workers, hold| SizePlan::read(size, workers, hold);
        assert_eq!(plan(1024, 2, u64::MAX), SizePlan::Whole);
        assert_eq!(plan(GET_PARALLEL_BYTES, 2, u64::MAX), SizePlan::Pieces);
        assert_eq!(plan(GET_PARALLEL_BYTES, 1, u64::MAX), SizePlan::Whole);
        assert_eq!(
            plan(STREAM_ABOVE_BYTES, 2, STREAM_ABOVE_BYTES),
            SizePlan::Pieces
        );
        assert_eq!(
            plan(STREAM_ABOVE_BYTES + 1, 1, STREAM_ABOVE_BYTES),
            SizePlan::Streamed
        );
        assert_eq!(plan(STREAM_PIECE + 1, 2, STREAM_PIECE), SizePlan::Streamed);
        assert_eq!(plan(0, 4, 0), SizePlan::Whole);
    }

    #[test]
    fn pieces_of_one_size_hash_to_exactly_blake3_whatever_the_length() {
        let store = ArtifactStore::builder().open(MemoryBackend::new()).unwrap();
        let p = STREAM_PIECE as usize;
        for len in [p + 1, p + 1024, p + 1025, 2 * p, 3 * p - 1, 5 * p + 7] {
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            for workers in [1, 2, 3] {
                let mut pieces = data.chunks(p).map(<[u8]>::to_vec);
                let mut written = Vec::new();
                let hashed = hash_pieces(
                    &store.core,
                    workers,
                    || Ok(pieces.next()),
                    |b| {
                        written.extend_from_slice(b);
                        Ok(())
                    },
                )
                .unwrap();
                assert_eq!(hashed.hash, Hash::of(&data), "{len} {workers}");
                assert_eq!((hashed.size, written.len()), (len as u64, len));
                assert_eq!(
                    hashed.groups.len() as u64,
                    (len as u64).div_ceil(GROUP_LEN) * 32
                );
            }
        }
        // One piece is not a tree of pieces; pieces are never empty or oversized.
        let one = |pieces: Vec<Vec<u8>>| {
            let mut pieces = pieces.into_iter();
            hash_pieces(&store.core, 2, || Ok(pieces.next()), |_| Ok(()))
        };
        assert!(one(vec![vec![1; p]]).is_err());
        assert!(one(vec![vec![1; p], vec![]]).is_err());
        assert!(one(vec![vec![1; p + 1]]).is_err());
    }

    #[test]
    fn pieces_cover_the_input_in_order_without_gaps() {
        for len in [
            1025u64,
            4096,
            262_144,
            262_145,
            1 << 20,
            (1 << 20) + 1025,
            16 << 20,
        ] {
            for max_piece in [1024u64, 65_536, len / 8] {
                let mut pieces = Vec::new();
                split(0, len, max_piece.max(1024), &mut pieces);
                let mut at = 0;
                for (offset, piece) in &pieces {
                    assert_eq!(*offset, at);
                    assert!(*piece <= max_piece.max(1024));
                    at += piece;
                }
                assert_eq!(at, len);
            }
        }
    }
}

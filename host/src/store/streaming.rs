//! Content that is never held whole: hashed a piece at a time by core
//! instances (see `pieces`), as it is read from a backend (`get_to`, a
//! download's first pass) or as it arrives (`put_from`, an upload).
//!
//! Pieces of [`STREAM_PIECE`] bytes, aligned to it, are subtrees of
//! BLAKE3's tree whatever the final length, so each is hashed as soon as it
//! is there, and the root is merged from their chaining values at the end.

use super::pieces::{CHUNK_LEN, STREAM_PIECE, max_piece, root, split, subtrees};
use crate::core_component::CoreClient;
use crate::{Error, Hash};

/// The chaining values of the pieces of an input of `len` bytes split at
/// `max_piece`: `read(offset, len)` supplies each piece in order, up to
/// `workers` core instances hash a batch of pieces at once, and `write`
/// receives every piece, in order, once it has been hashed. `None` if a
/// piece is missing or shorter than asked for.
pub(crate) fn piece_values(
    core: &CoreClient,
    len: u64,
    max_piece: u64,
    workers: usize,
    mut read: impl FnMut(u64, u64) -> Result<Option<Vec<u8>>, Error>,
    mut write: impl FnMut(&[u8]) -> Result<(), Error>,
) -> Result<Option<Vec<Vec<u8>>>, Error> {
    let mut pieces = Vec::new();
    split(0, len, max_piece, &mut pieces);
    let mut values = Vec::with_capacity(pieces.len());
    for batch in pieces.chunks(workers.max(1)) {
        let mut buffers = Vec::with_capacity(batch.len());
        for &(offset, piece_len) in batch {
            match read(offset, piece_len)? {
                Some(bytes) if bytes.len() as u64 == piece_len => buffers.push(bytes),
                _ => return Ok(None),
            }
        }
        let located: Vec<(u64, &[u8])> = batch
            .iter()
            .zip(&buffers)
            .map(|(&(offset, _), bytes)| (offset, bytes.as_slice()))
            .collect();
        values.extend(subtrees(core, &located)?.into_iter().map(|(cv, _)| cv));
        for bytes in &buffers {
            write(bytes)?;
        }
    }
    Ok(Some(values))
}

/// The BLAKE3 hash of an input of `len` bytes that is not held in memory:
/// [`piece_values`] over pieces balanced for `workers`, at most 4 MiB each
/// (at most `workers` of them held at a time), merged to the root. `None`
/// if a piece is missing or shorter than asked for (the input is not `len`
/// bytes long).
pub(crate) fn hash_streaming(
    core: &CoreClient,
    len: u64,
    workers: usize,
    read: impl FnMut(u64, u64) -> Result<Option<Vec<u8>>, Error>,
    write: impl FnMut(&[u8]) -> Result<(), Error>,
) -> Result<Option<Hash>, Error> {
    if len <= CHUNK_LEN {
        return Err(Error::Core(format!("{len} bytes are too few to split")));
    }
    let max_piece = max_piece(len, workers.max(1), STREAM_PIECE);
    match piece_values(core, len, max_piece, workers, read, write)? {
        Some(values) => root(core, len, max_piece, values).map(Some),
        None => Ok(None),
    }
}

/// An input of unknown length hashed as it arrives, in pieces of exactly
/// [`STREAM_PIECE`] bytes but the last.
#[derive(Debug, Default)]
pub(crate) struct PieceHasher {
    len: u64,
    values: Vec<Vec<u8>>,
    groups: Vec<u8>,
    over: bool,
}

/// An input hashed in pieces: its hash, its size, and its 16 KiB groups'
/// chaining values (32 bytes each, in order), for its outboard.
#[derive(Debug)]
pub(crate) struct Hashed {
    pub(crate) hash: Hash,
    pub(crate) size: u64,
    pub(crate) groups: Vec<u8>,
}

impl PieceHasher {
    /// How many bytes were hashed.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Hashes the next pieces (by several instances at once): each exactly
    /// [`STREAM_PIECE`] bytes, but the input's last, which may be shorter
    /// (nothing may follow it).
    pub(crate) fn add(&mut self, core: &CoreClient, pieces: &[&[u8]]) -> Result<(), Error> {
        let mut located = Vec::with_capacity(pieces.len());
        for piece in pieces {
            let piece_len = piece.len() as u64;
            if self.over || piece_len == 0 || piece_len > STREAM_PIECE {
                return Err(Error::Core(format!(
                    "a streamed piece of {piece_len} bytes"
                )));
            }
            located.push((self.len, *piece));
            self.len += piece_len;
            self.over = piece_len < STREAM_PIECE;
        }
        let hashed = subtrees(core, &located)?;
        // Grown once for the whole batch, as `held_after` counts it.
        let needed = self.groups.len() + hashed.iter().map(|(_, g)| g.len()).sum::<usize>();
        let target = groups_capacity(self.groups.capacity(), needed);
        self.groups.reserve_exact(target - self.groups.len());
        for (cv, groups) in hashed {
            self.values.push(cv);
            self.groups.extend_from_slice(&groups);
        }
        Ok(())
    }

    /// What it holds on the host once `pieces` more full pieces are
    /// hashed: its groups' chaining values (32 bytes per 16 KiB, 8 KiB a
    /// piece, in a buffer that doubles) and each piece's chaining value.
    #[cfg(feature = "apps")]
    pub(crate) fn held_after(&self, pieces: usize) -> usize {
        let per_piece = (STREAM_PIECE / super::pieces::GROUP_LEN * 32) as usize;
        let needed = self.groups.len() + pieces * per_piece;
        let values = self.values.len() + pieces;
        groups_capacity(self.groups.capacity(), needed)
            + values * (32 + std::mem::size_of::<Vec<u8>>())
    }

    /// The input's hash, length and groups; it must be longer than one piece.
    pub(crate) fn finish(self, core: &CoreClient) -> Result<Hashed, Error> {
        if self.len <= STREAM_PIECE {
            return Err(Error::Core(format!(
                "{} bytes are too few to stream",
                self.len
            )));
        }
        Ok(Hashed {
            hash: root(core, self.len, STREAM_PIECE, self.values)?,
            size: self.len,
            groups: self.groups,
        })
    }
}

/// The capacity of a groups buffer of capacity `capacity` that must hold
/// `needed` bytes: unchanged if it does, else doubled, at least `needed`.
fn groups_capacity(capacity: usize, needed: usize) -> usize {
    if needed <= capacity {
        capacity
    } else {
        capacity.saturating_mul(2).max(needed)
    }
}

/// The BLAKE3 hash, length and groups of an input of unknown length, longer than
/// one [`STREAM_PIECE`]: `next` supplies it in pieces of exactly
/// `STREAM_PIECE` bytes but the last (shorter, or `None` once it is over),
/// up to `workers` core instances hash a batch of pieces at once
/// ([`PieceHasher`]), and `write` receives every piece, in order, once it
/// has been hashed.
pub(crate) fn hash_pieces(
    core: &CoreClient,
    workers: usize,
    mut next: impl FnMut() -> Result<Option<Vec<u8>>, Error>,
    mut write: impl FnMut(&[u8]) -> Result<(), Error>,
) -> Result<Hashed, Error> {
    let mut hasher = PieceHasher::default();
    let mut over = false;
    while !over {
        let mut batch = Vec::with_capacity(workers.max(1));
        while batch.len() < workers.max(1) {
            let Some(piece) = next()? else {
                over = true;
                break;
            };
            over = (piece.len() as u64) < STREAM_PIECE;
            batch.push(piece);
            if over {
                break;
            }
        }
        let pieces: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
        hasher.add(core, &pieces)?;
        for bytes in &batch {
            write(bytes)?;
        }
    }
    hasher.finish(core)
}

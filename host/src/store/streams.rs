//! [`Upload`] and [`Download`]: artifacts larger than memory, a piece at a
//! time, for the host and (through the WIT `streams` interface) for apps.
//!
//! An upload hashes each 4 MiB piece in a core instance as it fills
//! (pieces aligned to 4 MiB are subtrees of BLAKE3's tree) and appends it
//! to a backend staging area; `finish` merges the pieces' chaining values
//! into the hash and has the core store the staged content with the put
//! rules. A download of more than 16 MiB first reads the artifact once,
//! keeping each piece's chaining value and checking that they merge into
//! its hash; then every piece read again is hashed and compared with its
//! value before any byte of it is handed over. Either way at most one
//! piece is held per stream.

use super::pieces::{STREAM_PIECE, SizePlan};
use super::reader::{Purpose, Reader};
use super::streaming::PieceHasher;
use super::{ArtifactStore, ArtifactType};
use crate::backend::Staging;
use crate::{Error, Hash};

/// An artifact being stored a piece at a time: [`write`](Self::write) the
/// content, then [`finish`](Self::finish). Dropped unfinished, nothing is
/// stored. Holds at most one 4 MiB piece. An app's upload is stored as
/// the app, within its quota.
pub struct Upload {
    /// Whose upload it is.
    view: ArtifactStore,
    artifact_type: ArtifactType,
    /// The piece filling up (flushed once full and more comes).
    piece: Vec<u8>,
    hasher: PieceHasher,
    staging: Option<Staging>,
    spent: bool,
}

impl std::fmt::Debug for Upload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upload")
            .field("written", &self.written())
            .finish_non_exhaustive()
    }
}

impl Upload {
    fn new(view: ArtifactStore, artifact_type: ArtifactType) -> Self {
        Self {
            view,
            artifact_type,
            piece: Vec::new(),
            hasher: PieceHasher::default(),
            staging: None,
            spent: false,
        }
    }

    /// How many bytes were written so far.
    pub fn written(&self) -> u64 {
        self.hasher.len() + self.piece.len() as u64
    }

    /// [`write`](Self::write) for an app, whose memory account counts the
    /// piece buffer in `held`: what it will take once `bytes` are written
    /// is counted before it grows (refused: nothing is written, and the
    /// app traps), what it takes after (nothing, once the upload failed)
    /// once they are.
    #[cfg(feature = "apps")]
    pub(crate) fn write_counted(
        &mut self,
        bytes: &[u8],
        held: &mut crate::apps::Held,
    ) -> Result<Result<(), Error>, crate::apps::MemoryRefused> {
        let written = match self.room_for(bytes.len()) {
            Ok(()) => {
                held.set(self.held_after(bytes.len()))?;
                self.write(bytes)
            }
            Err(e) => Err(e),
        };
        held.set(self.held_after(0))?;
        Ok(written)
    }

    /// What it takes on the host once `more` bytes are written, until it
    /// is finished: its piece buffer (at most one piece, [`STREAM_PIECE`],
    /// never more than was written to it), what its hasher keeps of the
    /// pieces handed on, the last at its finish included (see
    /// [`PieceHasher::held_after`]), and what the backend holds in memory
    /// of them while they are staged ([`Backend::staged_in_memory`]: the S3
    /// backend one part, the file and memory backends nothing).
    ///
    /// [`Backend::staged_in_memory`]: crate::Backend::staged_in_memory
    #[cfg(feature = "apps")]
    fn held_after(&self, more: usize) -> usize {
        let piece_len = STREAM_PIECE as usize;
        let len = self.piece.len().saturating_add(more);
        // The pieces a staged upload hands on from here: those this write
        // fills and, at its finish, the last (an upload of one piece is
        // never staged: its finish is an ordinary put).
        let handed_on = if self.staging.is_some() || len > piece_len {
            len.div_ceil(piece_len)
        } else {
            0
        };
        let piece = if len > piece_len {
            piece_len
        } else {
            grown(self.piece.capacity(), len)
        };
        let staged = self.hasher.len() + (handed_on * piece_len) as u64;
        let backend = self.view.core.backend().staged_in_memory(staged);
        piece
            .saturating_add(self.hasher.held_after(handed_on))
            .saturating_add(usize::try_from(backend).unwrap_or(usize::MAX))
    }

    /// Whether `more` bytes may be written: refused (and the upload spent)
    /// if it is spent, or if they would pass the store's (or the app's)
    /// limit on one artifact.
    fn room_for(&mut self, more: usize) -> Result<(), Error> {
        if self.spent {
            return Err(Error::Input("the upload failed or was finished".into()));
        }
        let checked = self.view.check_size(self.written() + more as u64);
        if let Err(e) = checked {
            self.abandon();
            return Err(e);
        }
        Ok(())
    }

    /// Appends `bytes`. Fails as soon as the content passes the store's
    /// (or the app's) limit on one artifact, and the upload is then spent.
    pub fn write(&mut self, mut bytes: &[u8]) -> Result<(), Error> {
        self.room_for(bytes.len())?;
        let piece_len = STREAM_PIECE as usize;
        while !bytes.is_empty() {
            if self.piece.len() == piece_len
                && let Err(e) = self.flush()
            {
                self.abandon();
                return Err(e);
            }
            let room = piece_len - self.piece.len();
            let (now, later) = bytes.split_at(room.min(bytes.len()));
            let needed = self.piece.len() + now.len();
            if needed > self.piece.capacity() {
                // Doubling (so small writes do not copy the piece each
                // time), never past one piece: what `held_after` counts.
                let target = grown(self.piece.capacity(), needed);
                self.piece.reserve_exact(target - self.piece.len());
            }
            self.piece.extend_from_slice(now);
            bytes = later;
        }
        Ok(())
    }

    /// Hashes the piece in hand and appends it to the staging area.
    fn flush(&mut self) -> Result<(), Error> {
        let store = self.view.clone();
        let staging = match &mut self.staging {
            Some(staging) => staging,
            None => self.staging.insert(store.core.backend().stage()?),
        };
        self.hasher.add(&store.core, &[&self.piece])?;
        staging.append(&self.piece)?;
        self.piece.clear();
        Ok(())
    }

    /// Gives the upload up (its staging discarded; later calls are refused).
    pub(crate) fn abandon(&mut self) {
        self.spent = true;
        self.piece = Vec::new();
        self.hasher = PieceHasher::default();
        if let Some(staging) = self.staging.take() {
            let _ = staging.discard();
        }
    }

    /// Stores what was written, with the put rules, and returns its hash.
    pub fn finish(mut self) -> Result<Hash, Error> {
        self.finish_now()
    }

    /// [`finish`](Self::finish), leaving the upload spent.
    #[crate::traced(upload, owner = self.view.id(), bytes = self.written())]
    pub(crate) fn finish_now(&mut self) -> Result<Hash, Error> {
        if self.spent {
            return Err(Error::Input("the upload failed or was finished".into()));
        }
        self.spent = true;
        if self.staging.is_none() {
            // One piece at most: an ordinary put.
            let stored = self.view.put(&self.piece, self.artifact_type);
            self.piece = Vec::new();
            return stored;
        }
        let result = self.store_staged();
        self.abandon();
        result
    }

    fn store_staged(&mut self) -> Result<Hash, Error> {
        self.flush()?;
        let store = self.view.clone();
        let hasher = std::mem::take(&mut self.hasher);
        let hashed = hasher.finish(&store.core)?;
        let staging = self
            .staging
            .as_mut()
            .ok_or_else(|| Error::Core("an upload lost its staging".into()))?;
        staging.finish()?;
        store.store_staged(store.caller(), staging, &hashed, self.artifact_type)
    }
}

/// The capacity of a piece buffer of capacity `capacity` that must hold
/// `needed` bytes: unchanged if it does, else doubled (from 64 KiB), at
/// least `needed`, at most one piece.
fn grown(capacity: usize, needed: usize) -> usize {
    if needed <= capacity {
        return capacity;
    }
    let piece = STREAM_PIECE as usize;
    capacity
        .saturating_mul(2)
        .max(64 << 10)
        .max(needed)
        .min(piece.max(needed))
}

impl Drop for Upload {
    fn drop(&mut self) {
        self.abandon();
    }
}

/// An artifact being read a piece at a time: every byte
/// [`read`](Self::read) returns was checked against the hash first.
pub struct Download {
    reader: Reader,
    hash: Hash,
    size: u64,
    state: Pieces,
}

impl std::fmt::Debug for Download {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Download")
            .field("hash", &self.hash)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

/// What a download holds: the verified piece in hand and where it is in it.
struct Pieces {
    /// Each piece's chaining value, checked to merge into the hash (empty
    /// when the whole content is in `current`).
    values: Vec<Vec<u8>>,
    next: usize,
    current: Vec<u8>,
    pos: usize,
}

impl Download {
    /// Opens `hash` as `view` sees it; the pieces are then read as the host
    /// reads them (`view` showed the artifact to its owner).
    fn open(view: &ArtifactStore, hash: &Hash) -> Result<Self, Error> {
        let mut reader = Reader::open(view, hash, Purpose::Download)?;
        let mut state = Pieces {
            values: Vec::new(),
            next: 0,
            current: Vec::new(),
            pos: 0,
        };
        // Over one piece, it holds one piece at a time (each proven
        // against the chaining values read here); one piece or less is
        // read and verified whole now.
        if reader.plan() == SizePlan::Streamed {
            state.values = reader.piece_values()?;
        } else {
            state.current = reader.content()?;
        }
        let size = reader.metadata().size;
        Ok(Self {
            reader,
            hash: *hash,
            size,
            state,
        })
    }

    /// The artifact's size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The most it holds on the host at once, from open to drop: one piece
    /// ([`STREAM_PIECE`]), or the whole artifact if smaller.
    #[cfg(feature = "apps")]
    pub(crate) fn held_bytes(&self) -> usize {
        usize::try_from(self.size.min(STREAM_PIECE)).unwrap_or(usize::MAX)
    }

    /// Up to `max` bytes (at most 4 MiB), verified, or `None` at the end. A
    /// piece that no longer hashes to its place fails with
    /// [`Error::Integrity`] (or the core's verdict, if it is gone), and
    /// nothing of it is returned.
    pub fn read(&mut self, max: usize) -> Result<Option<Vec<u8>>, Error> {
        let s = &mut self.state;
        if s.pos == s.current.len() {
            if s.next >= s.values.len() {
                return Ok(None);
            }
            s.current = self.reader.verified_piece(&s.values, s.next)?;
            s.next += 1;
            s.pos = 0;
        }
        let take = max.min(STREAM_PIECE as usize).min(s.current.len() - s.pos);
        let out = s
            .current
            .get(s.pos..s.pos + take)
            .unwrap_or_default()
            .to_vec();
        s.pos += take;
        Ok(Some(out))
    }
}

impl ArtifactStore {
    /// Starts storing an artifact a piece at a time (see [`Upload`]).
    pub fn upload(&self, artifact_type: ArtifactType) -> Upload {
        Upload::new(self.clone(), artifact_type)
    }

    /// Starts reading an artifact (for an app, one it holds or was
    /// granted) a piece at a time (see [`Download`]).
    #[crate::traced(download, owner = self.id(), hash = hash)]
    pub fn download(&self, hash: &Hash) -> Result<Download, Error> {
        Download::open(self, hash)
    }
}

#[cfg(test)]
mod tests {
    use super::grown;

    #[test]
    fn a_piece_buffer_doubles_from_64_kib_up_to_one_piece() {
        let piece = super::STREAM_PIECE as usize;
        assert_eq!(grown(0, 1), 64 << 10);
        assert_eq!(
            grown(64 << 10, 64 << 10),
            64 << 10,
            "room enough: unchanged"
        );
        assert_eq!(grown(64 << 10, (64 << 10) + 1), 128 << 10);
        assert_eq!(grown(64 << 10, 1 << 20), 1 << 20, "at least what is needed");
        assert_eq!(grown(3 << 20, (3 << 20) + 1), piece, "never past one piece");
        assert_eq!(grown(piece, piece), piece);
    }
}

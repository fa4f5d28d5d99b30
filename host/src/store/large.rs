//! Content too large to cross into the core whole: hashed in pieces by
//! several core instances (see `pieces`), staged in the backend for puts,
//! streamed for `put_from` and `get_to`.

use super::pieces::{self, STREAM_PIECE};
use super::reader::{Purpose, Reader};
use super::streaming::{self, Hashed};
use super::{ArtifactStore, ArtifactType, Metadata};
use crate::backend::Staging;
use crate::core_component::Caller;
use crate::{Error, Hash};

/// Up to `len` bytes from `reader`: fewer only at its end.
fn read_piece(reader: &mut dyn std::io::Read, len: u64) -> Result<Vec<u8>, Error> {
    use std::io::Read;
    let mut out = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    reader
        .take(len)
        .read_to_end(&mut out)
        .map_err(|e| Error::Input(e.to_string()))?;
    Ok(out)
}

impl ArtifactStore {
    /// Stores everything `reader` yields, like [`put`](Self::put), holding
    /// only a few MiB at a time however large it is: content longer than
    /// 4 MiB is read in 4 MiB pieces, hashed by core instances in parallel
    /// and appended to a staging area of the backend (a temporary file in
    /// the file backend; other backends may gather it in memory), which the
    /// core then stores under the hash with the usual rules. Nothing is
    /// stored if the reader fails or yields more than the store's (or the
    /// app's) limit.
    #[crate::traced(put_from, owner = self.id())]
    pub fn put_from(
        &self,
        reader: &mut dyn std::io::Read,
        artifact_type: ArtifactType,
    ) -> Result<Hash, Error> {
        let piece = STREAM_PIECE;
        let first = read_piece(reader, piece)?;
        if (first.len() as u64) < piece {
            return self.put(&first, artifact_type);
        }
        let second = read_piece(reader, piece)?;
        if second.is_empty() {
            return self.put(&first, artifact_type);
        }
        let mut read = [first, second].into_iter();
        let mut total = 0u64;
        let mut over = false;
        let next = || {
            if over {
                return Ok(None);
            }
            let bytes = match read.next() {
                Some(bytes) => bytes,
                None => read_piece(reader, piece)?,
            };
            total += bytes.len() as u64;
            self.check_size(total)?;
            over = (bytes.len() as u64) < piece;
            Ok((!bytes.is_empty()).then_some(bytes))
        };
        self.put_via_staging(self.caller(), artifact_type, |staging| {
            streaming::hash_pieces(&self.core, self.hash_workers, next, |b| {
                Ok(staging.append(b)?)
            })
        })
    }

    /// Starts a staging area in the backend, fills it with `fill` (which
    /// returns the content's hash, size and groups), stores it
    /// ([`store_staged`](Self::store_staged)) and discards it.
    pub(crate) fn put_via_staging(
        &self,
        who: Caller<'_>,
        artifact_type: ArtifactType,
        fill: impl FnOnce(&mut Staging) -> Result<Hashed, Error>,
    ) -> Result<Hash, Error> {
        let mut staging = self.core.backend().stage()?;
        let result = fill(&mut staging)
            .and_then(|hashed| self.store_staged(who, &mut staging, &hashed, artifact_type));
        // Once the put is decided, a staging area left behind is only
        // clutter (gc removes it), not a reason to fail the put.
        let _ = staging.discard();
        result
    }

    /// The one end of every staged put (bytes, a reader, an upload stream,
    /// a sha256-checked pull): the core stores the content staged in
    /// `staging`, hashed as `hashed`, with the put rules (`ops.put-staged`),
    /// then its outboard ([`store_outboard`](Self::store_outboard)).
    pub(crate) fn store_staged(
        &self,
        who: Caller<'_>,
        staging: &mut Staging,
        hashed: &Hashed,
        artifact_type: ArtifactType,
    ) -> Result<Hash, Error> {
        let hash = self
            .core
            .with(|i| i.put_staged(who, staging, hashed.size, &hashed.hash, artifact_type))?;
        self.store_outboard(hashed);
        Ok(hash)
    }

    /// After a put: the core builds the outboard from the groups' chaining
    /// values the hashing produced, checks that it merges into the hash,
    /// and writes it unless the backend has it (a put of content already
    /// stored writes none). Best effort: the put has succeeded either way,
    /// and a range read rebuilds a missing outboard.
    fn store_outboard(&self, hashed: &Hashed) {
        if hashed.size < pieces::OUTBOARD_MIN {
            return;
        }
        let _ = self
            .core
            .with(|i| i.store_outboard(&hashed.hash, hashed.size, &hashed.groups));
    }

    /// Writes the artifact's content to `out` and returns its metadata,
    /// holding only a few MiB at a time however large it is: pieces are read
    /// from the backend, hashed by core instances in parallel and written in
    /// order. The hash is complete only after the last piece, so on an error
    /// `out` may already hold part (or all) of the content: discard it. (The
    /// CLI's `get -o FILE` writes to a temporary file and renames it only once
    /// verified.) Artifacts up to 16 MiB are verified whole before anything is
    /// written. An app's view reads only what its [`stat`](Self::stat)
    /// shows it, and then reads it as the host does.
    #[crate::traced(get_to, owner = self.id(), hash = hash)]
    pub fn get_to(&self, hash: &Hash, out: &mut dyn std::io::Write) -> Result<Metadata, Error> {
        Reader::open(self, hash, Purpose::Write)?.write_to(out)
    }
}

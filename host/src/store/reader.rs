//! The one verified reader: every get (whole, into a writer, a download, a
//! range, a verify) opens the artifact with one core call (`ops.open`: the
//! record read once, the caller's right to read it decided, small content
//! verified and returned whole) and then follows one [`SizePlan`], chosen
//! once from its size. No byte reaches the caller before it is verified.

use super::pieces::{self, STREAM_ABOVE_BYTES, STREAM_PIECE, SizePlan};
use super::ranges::RANGE_LIMIT;
use super::streaming::{self, piece_values};
use super::{ArtifactStore, Metadata};
use crate::core_component::Caller;
use crate::{Error, Hash};

/// What a read is for: how much of the content it may hold at once and
/// whether it answers the metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Purpose {
    /// The whole content, in memory.
    Get,
    /// The whole content checked; the metadata answered.
    Verify,
    /// The content written out (`get_to`), streamed past 16 MiB.
    Write,
    /// A [`Download`](super::Download), one 4 MiB piece at a time.
    Download,
    /// Ranges proven through the outboard: no content at open.
    Range,
}

impl Purpose {
    /// The most content it holds at once.
    fn hold(self) -> u64 {
        match self {
            Self::Get | Self::Verify => u64::MAX,
            Self::Write => STREAM_ABOVE_BYTES,
            Self::Download => STREAM_PIECE,
            Self::Range => 0,
        }
    }

    /// Whether it answers the metadata (with the caller's reference count).
    fn with_count(self) -> bool {
        matches!(self, Self::Verify | Self::Write)
    }
}

/// An artifact opened for a read: its metadata, its plan, and its content
/// when the core returned it whole.
#[derive(Debug)]
pub(super) struct Reader {
    view: ArtifactStore,
    /// Whether the core reads it as the host: the host's view, or an app's
    /// grant that it holds none of.
    as_host: bool,
    hash: Hash,
    meta: Metadata,
    plan: SizePlan,
    content: Option<Vec<u8>>,
}

impl Reader {
    /// Opens `hash` as `view` sees it (for an app: an artifact it holds, or
    /// else one it was granted, read as the host reads it).
    pub(super) fn open(view: &ArtifactStore, hash: &Hash, purpose: Purpose) -> Result<Self, Error> {
        Self::open_with(view, hash, purpose, false)
    }

    /// Opens `hash` as the host, whatever the view.
    pub(super) fn open_as_host(
        view: &ArtifactStore,
        hash: &Hash,
        purpose: Purpose,
    ) -> Result<Self, Error> {
        Self::open_with(view, hash, purpose, true)
    }

    fn open_with(
        view: &ArtifactStore,
        hash: &Hash,
        purpose: Purpose,
        host_only: bool,
    ) -> Result<Self, Error> {
        let workers = view.hash_workers;
        let whole_below = match purpose {
            Purpose::Range => 0,
            _ => SizePlan::whole_below(workers, purpose.hold()),
        };
        let with_count = purpose.with_count();
        let open = |who| {
            view.core
                .with(|i| i.open(who, hash, whole_below, with_count))
        };
        let (as_host, (mut meta, content)) = if host_only || view.is_host() {
            (true, open(Caller::Host)?)
        } else {
            match open(view.caller()) {
                Err(Error::NotFound(_)) if view.granted(hash) => (true, open(Caller::Host)?),
                other => (false, other?),
            }
        };
        if as_host && with_count && !host_only && !view.is_host() {
            meta = view.as_granted(meta)?;
        }
        let plan = SizePlan::read(meta.size, workers, purpose.hold());
        Ok(Self {
            view: view.clone(),
            as_host,
            hash: *hash,
            meta,
            plan,
            content,
        })
    }

    /// The artifact's metadata (the reference count only for
    /// [`Purpose::Verify`] and [`Purpose::Write`]).
    pub(super) fn metadata(&self) -> &Metadata {
        &self.meta
    }

    /// The plan its size chose.
    pub(super) fn plan(&self) -> SizePlan {
        self.plan
    }

    /// Whose view the core reads it with.
    fn who(&self) -> Caller<'_> {
        if self.as_host {
            Caller::Host
        } else {
            self.view.caller()
        }
    }

    /// The whole content, verified: as the core returned it, else read by
    /// the host and hashed in pieces by several instances. Anything but a
    /// clean read (no blob, wrong size, wrong hash, a read error) has the
    /// core's own `get` read again and say exactly what is wrong.
    pub(super) fn content(&mut self) -> Result<Vec<u8>, Error> {
        if let Some(content) = self.content.take() {
            return Ok(content);
        }
        if let Some(content) = self.in_pieces()? {
            return Ok(content);
        }
        self.view.core.with(|i| i.get(self.who(), &self.hash))
    }

    /// The content read by the host and hashed in pieces; `None` unless clean.
    fn in_pieces(&self) -> Result<Option<Vec<u8>>, Error> {
        let Ok(Some(content)) = self.view.core.backend().read_blob(&self.hash) else {
            return Ok(None);
        };
        let size = self.meta.size;
        let workers = self.view.hash_workers.max(1);
        if content.len() as u64 != size || size <= pieces::max_piece(size, workers, u64::MAX) {
            return Ok(None);
        }
        let actual = pieces::hash(&self.view.core, &content, workers)?;
        Ok((actual == self.hash).then_some(content))
    }

    /// Writes the content to `out`: verified whole first, unless the plan
    /// streams it (then each batch of pieces is written once hashed, and
    /// the hash is complete only after the last: on an error, discard `out`).
    pub(super) fn write_to(mut self, out: &mut dyn std::io::Write) -> Result<Metadata, Error> {
        let output = |e: std::io::Error| Error::Output(e.to_string());
        if self.plan != SizePlan::Streamed {
            let content = self.content()?;
            out.write_all(&content).map_err(output)?;
            return Ok(self.meta);
        }
        let (core, hash) = (&self.view.core, &self.hash);
        let backend = core.backend();
        let actual = streaming::hash_streaming(
            core,
            self.meta.size,
            self.view.hash_workers,
            |offset, len| Ok(backend.read_blob_range(hash, offset, len)?),
            |bytes| out.write_all(bytes).map_err(output),
        )?;
        match actual {
            Some(actual) if actual == *hash => Ok(self.meta),
            Some(actual) => Err(Error::Integrity {
                expected: *hash,
                actual,
            }),
            // Missing or cut short: what was written is not whole.
            None => Err(self.view.what_is_wrong(hash)),
        }
    }

    /// Proves `length` bytes from `offset`, [`RANGE_LIMIT`] bytes at a time,
    /// handing each part to `take` once proven. The record is not read again.
    pub(super) fn range(
        &self,
        offset: u64,
        length: u64,
        mut take: impl FnMut(&[u8]) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let size = self.meta.size;
        if offset > size || length > size - offset {
            return Err(Error::OutOfRange {
                offset,
                length,
                size,
            });
        }
        let (mut at, end) = (offset, offset + length);
        while at < end {
            let n = RANGE_LIMIT.min(end - at);
            let part = self
                .view
                .core
                .with(|i| i.prove_range(&self.hash, size, at, n))?;
            take(&part)?;
            at += n;
        }
        Ok(())
    }

    /// The chaining values of the 4 MiB pieces, read once and checked to
    /// merge into the hash (a download's first pass).
    pub(super) fn piece_values(&self) -> Result<Vec<Vec<u8>>, Error> {
        let (core, hash, size) = (&self.view.core, &self.hash, self.meta.size);
        let backend = core.backend();
        let read = |offset, len| Ok(backend.read_blob_range(hash, offset, len)?);
        let values = piece_values(
            core,
            size,
            STREAM_PIECE,
            self.view.hash_workers,
            read,
            |_| Ok(()),
        )?;
        let Some(values) = values else {
            return Err(self.view.what_is_wrong(hash));
        };
        let actual = pieces::root(core, size, STREAM_PIECE, values.clone())?;
        if actual != *hash {
            return Err(Error::Integrity {
                expected: *hash,
                actual,
            });
        }
        Ok(values)
    }

    /// Piece `k`, read again and checked against its chaining value.
    pub(super) fn verified_piece(&self, values: &[Vec<u8>], k: usize) -> Result<Vec<u8>, Error> {
        let (core, hash, size) = (&self.view.core, &self.hash, self.meta.size);
        let offset = k as u64 * STREAM_PIECE;
        let len = STREAM_PIECE.min(size - offset);
        let bytes = match core.backend().read_blob_range(hash, offset, len)? {
            Some(bytes) if bytes.len() as u64 == len => bytes,
            _ => return Err(self.view.what_is_wrong(hash)),
        };
        let value = core.with(|i| i.subtree(&bytes, offset))?;
        if values.get(k) != Some(&value) {
            let mut now = values.to_vec();
            if let Some(slot) = now.get_mut(k) {
                *slot = value;
            }
            return Err(Error::Integrity {
                expected: *hash,
                actual: pieces::root(core, size, STREAM_PIECE, now)?,
            });
        }
        Ok(bytes)
    }
}

impl ArtifactStore {
    /// [`verify`](Self::verify) as the host, whatever the view.
    pub(crate) fn verify_as_host(&self, hash: &Hash) -> Result<Metadata, Error> {
        let mut reader = Reader::open_as_host(self, hash, Purpose::Verify)?;
        reader.content()?;
        Ok(reader.meta)
    }

    /// Why content could not be read whole: the core's verdict (as the
    /// host's `verify`), or, if it finds nothing wrong now, that it changed
    /// under the read (removed and put again, say).
    pub(super) fn what_is_wrong(&self, hash: &Hash) -> Error {
        match self.verify_as_host(hash) {
            Err(e) => e,
            Ok(_) => Error::Contended(*hash),
        }
    }
}

//! The apps' `streams` imports: uploads and downloads as resources in the
//! app's own table, each call charged like a store call (its bytes
//! included), at most [`MAX_OPEN_STREAMS`](crate::apps::limits::MAX_OPEN_STREAMS) open at once.

use wasmtime::component::Resource;

use super::AppStoreCtx;
use super::bindings::{app_streams, types};
use super::limits::{MAX_OPEN_STREAMS as STREAM_LIMIT, STREAM_PIECE_BYTES as PIECE_LIMIT};
use crate::core_component::app_stream_error;
use crate::{Download, Error, QuotaKind, Upload};

/// A streams call's result as the app receives it.
fn answer<T>(result: Result<T, Error>) -> Answer<T> {
    match result {
        Ok(value) => Ok(Ok(value)),
        Err(e) => app_stream_error(e).map(Err),
    }
}

type Answer<T> = wasmtime::Result<Result<T, types::StreamError>>;

impl AppStoreCtx {
    /// Counts one more open stream, if the app may have one.
    fn open_one(&mut self) -> Result<(), Error> {
        if self.open_streams >= STREAM_LIMIT {
            return Err(Error::QuotaExceeded {
                kind: QuotaKind::Streams,
                limit: u64::from(STREAM_LIMIT),
                requested: u64::from(STREAM_LIMIT) + 1,
            });
        }
        self.open_streams += 1;
        Ok(())
    }

    /// Puts a new stream in the app's table.
    fn keep<T: Send + 'static>(&mut self, stream: T) -> wasmtime::Result<Resource<T>> {
        Ok(self.streams.push(stream)?)
    }

    /// Refuses `more` bytes for an upload if what the app holds and what
    /// its open uploads hold would then pass its quota's total: uploads
    /// are checked as they grow, not only when they finish (an upload of
    /// content the app already holds is counted too, though its finish
    /// would cost nothing).
    fn check_upload_room(&self, more: u64) -> Result<(), Error> {
        self.staged_total.check(self.view(), more)
    }

    /// Forgets what the upload `rep` staged (finished, failed or dropped).
    fn unstage(&mut self, rep: u32) {
        if let Some(bytes) = self.staged.remove(&rep) {
            self.staged_total.remove(bytes);
        }
    }

    /// Takes a stream out of the table for good (what it held on the host
    /// given back to the app's memory account).
    fn close<T: Send + 'static>(&mut self, handle: Resource<T>) -> wasmtime::Result<T> {
        self.open_streams = self.open_streams.saturating_sub(1);
        self.held.remove(&handle.rep());
        Ok(self.streams.delete(handle)?)
    }

    /// Counts `bytes` as what the stream `rep` holds on the host, against
    /// the app's memory account; refused, the app traps (out of memory).
    fn hold(&mut self, rep: u32, bytes: usize) -> wasmtime::Result<()> {
        let memory = &self.memory;
        let held = self.held.entry(rep).or_insert_with(|| memory.hold());
        held.set(bytes)?;
        Ok(())
    }
}

impl app_streams::Host for AppStoreCtx {
    fn start_upload(&mut self, t: types::ArtifactType) -> Answer<Resource<Upload>> {
        let upload = self.charged(0, |view| Ok(view.upload(t.into())));
        match upload.and_then(|u| self.open_one().map(|()| u)) {
            Ok(upload) => Ok(Ok(self.keep(upload)?)),
            Err(e) => answer(Err(e)),
        }
    }

    fn open_download(&mut self, hash: String) -> Answer<Resource<Download>> {
        if let Err(e) = self.open_one() {
            return answer(Err(e));
        }
        // Charged for its size: a large artifact is read and hashed once
        // here (then again, piece by piece, as it is read).
        match self.charged_read(&hash, |view, hash| view.download(hash)) {
            Ok(download) => {
                // It holds at most one piece at a time, from the first read
                // to its close: counted for its whole life.
                let holds = download.held_bytes();
                let handle = self.keep(download)?;
                if let Err(e) = self.hold(handle.rep(), holds) {
                    drop(self.close(handle)?);
                    return Err(e);
                }
                Ok(Ok(handle))
            }
            Err(e) => {
                self.open_streams -= 1;
                answer(Err(e))
            }
        }
    }

    fn piece_limit(&mut self) -> wasmtime::Result<u32> {
        Ok(PIECE_LIMIT)
    }

    fn stream_limit(&mut self) -> wasmtime::Result<u32> {
        Ok(STREAM_LIMIT)
    }
}

impl app_streams::HostUpload for AppStoreCtx {
    fn write(&mut self, upload: Resource<Upload>, piece: Vec<u8>) -> Answer<()> {
        if piece.len() > PIECE_LIMIT as usize {
            return Ok(Err(types::StreamError::PieceTooLarge(PIECE_LIMIT)));
        }
        let size = piece.len() as u64;
        self.work.begin()?;
        self.work.bytes(size)?;
        let written = match self.check_upload_room(size) {
            Ok(()) => {
                let memory = &self.memory;
                let held = self
                    .held
                    .entry(upload.rep())
                    .or_insert_with(|| memory.hold());
                self.streams.get_mut(&upload)?.write_counted(&piece, held)?
            }
            Err(e) => {
                self.streams.get_mut(&upload)?.abandon();
                // Abandoned, its piece holds nothing.
                self.hold(upload.rep(), 0)?;
                Err(e)
            }
        };
        match written {
            Ok(()) => {
                *self.staged.entry(upload.rep()).or_default() += size;
                self.staged_total.add(size);
            }
            Err(_) => self.unstage(upload.rep()),
        }
        self.work.end()?;
        answer(written)
    }

    fn finish(&mut self, upload: Resource<Upload>) -> Answer<String> {
        self.unstage(upload.rep());
        self.work.begin()?;
        let stored = self.streams.get_mut(&upload)?.finish_now();
        // Finished, it holds nothing.
        self.hold(upload.rep(), 0)?;
        self.work.end()?;
        answer(stored.map(|h| h.to_string()))
    }

    fn drop(&mut self, upload: Resource<Upload>) -> wasmtime::Result<()> {
        // Unfinished: its staging is discarded, nothing is stored.
        self.unstage(upload.rep());
        drop(self.close(upload)?);
        Ok(())
    }
}

impl app_streams::HostDownload for AppStoreCtx {
    fn size(&mut self, download: Resource<Download>) -> wasmtime::Result<u64> {
        Ok(self.streams.get(&download)?.size())
    }

    fn read(&mut self, download: Resource<Download>, max: u32) -> Answer<Option<Vec<u8>>> {
        let want = u64::from(max.min(PIECE_LIMIT));
        self.work.begin()?;
        self.work.bytes(want)?;
        let read = self.streams.get_mut(&download)?.read(want as usize);
        self.work.end()?;
        answer(read)
    }

    fn drop(&mut self, download: Resource<Download>) -> wasmtime::Result<()> {
        drop(self.close(download)?);
        Ok(())
    }
}

// The host's pieces are what it lets an app write and read at once.
const _: () = assert!(PIECE_LIMIT as u64 == crate::store::pieces::STREAM_PIECE);

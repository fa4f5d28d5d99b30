//! The `types` interface's values: an outgoing value is an [`Upload`] that
//! its `wasi:io` output stream writes into (stored when the value is
//! finished, then named by each object it was written to); an incoming
//! value is a verified range of an artifact, held (up to 4 MiB) or read 4
//! MiB at a time through its input stream.

use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use wasmtime::component::Resource;
use wasmtime_wasi::p2::{
    DynInputStream, DynOutputStream, InputStream, OutputStream, Pollable, StreamError, StreamResult,
};

use super::bindings::types;
use super::containers::{object_hash, set_object};
use super::naming::ContainerName;
use super::{BlobError, BlobView, MAX_WRITE_TARGETS, Slot, answer};
use crate::apps::limits::WorkMeter;
use crate::apps::memory::{Held, MemoryRefused};
use crate::apps::store_ctx::StagedTotal;
use crate::{AppView, ArtifactType, Error, Hash, RANGE_LIMIT, Upload};

/// The most bytes one `write` to a value's output stream is permitted
/// (`check-write`).
const WRITE_PERMIT: usize = 1 << 20;

/// A value being written: its bytes go to an upload (one piece held, the
/// rest staged in the backend) as they come.
pub struct OutgoingValue {
    body: Arc<Mutex<Body>>,
    body_taken: bool,
    /// The objects `write-data` wrote it to, named when it is finished.
    targets: Vec<(ContainerName, String)>,
    _slot: Slot,
}

/// What an outgoing value and its stream share.
struct Body {
    upload: Upload,
    /// Why a write failed: the value is then not stored.
    failed: Option<String>,
    /// Bytes written so far (counted in `staged_total` until the body goes).
    written: u64,
    /// Bytes staged by all of the app's unfinished values and uploads.
    staged_total: StagedTotal,
    /// The app's view: its quota, and what it holds (read again at a
    /// write after the app's other calls: it may have stored more since
    /// the value was made).
    view: AppView,
    /// What the upload's piece takes on the host, counted against the
    /// app's memory.
    memory: Held,
}

impl Drop for Body {
    fn drop(&mut self) {
        self.staged_total.remove(self.written);
    }
}

fn lock(body: &Mutex<Body>) -> MutexGuard<'_, Body> {
    body.lock().unwrap_or_else(|p| p.into_inner())
}

/// The trap for a buffer the app's memory has no room for.
fn trap(e: MemoryRefused) -> StreamError {
    StreamError::Trap(wasmtime::Error::new(e))
}

fn failed(message: &str) -> StreamError {
    StreamError::LastOperationFailed(wasmtime::Error::msg(message.to_string()))
}

impl Body {
    /// Appends `bytes`, refused once the value (with the app's other
    /// unfinished values and what it holds) passes its quota's total, or
    /// passes the store's or the app's limit on one artifact.
    fn write(&mut self, bytes: &[u8], meter: &WorkMeter) -> StreamResult<()> {
        if let Some(why) = &self.failed {
            return Err(failed(why));
        }
        if bytes.is_empty() {
            return Ok(());
        }
        let len = bytes.len() as u64;
        // The check is measured too: it may read what the app holds.
        let (upload, memory) = (&mut self.upload, &mut self.memory);
        let (staged_total, view) = (&self.staged_total, &self.view);
        let written = meter
            .measure(len, || match staged_total.check(view, len) {
                Err(e) => Ok(Err(e)),
                Ok(()) => upload.write_counted(bytes, memory),
            })
            .map_err(trap)?;
        match written {
            Ok(()) => {
                self.written += len;
                self.staged_total.add(len);
                Ok(())
            }
            Err(e) => {
                let why = e.to_string();
                self.upload.abandon();
                self.staged_total.remove(self.written);
                self.written = 0;
                self.failed = Some(why.clone());
                // Abandoned, its piece holds nothing.
                self.memory.set(0).map_err(trap)?;
                Err(failed(&why))
            }
        }
    }
}

impl OutgoingValue {
    /// Records that the value is to be stored as `object` of `c` when it is
    /// finished.
    pub(super) fn write_to(&mut self, c: ContainerName, object: String) -> Result<(), BlobError> {
        if self.targets.len() >= MAX_WRITE_TARGETS {
            return Err(BlobError::TooManyTargets(MAX_WRITE_TARGETS));
        }
        self.targets.push((c, object));
        Ok(())
    }
}

/// An outgoing value's output stream.
struct ValueWriter {
    body: Arc<Mutex<Body>>,
    meter: WorkMeter,
}

/// Always ready: writes are taken (or refused) at once.
#[async_trait::async_trait]
impl Pollable for ValueWriter {
    async fn ready(&mut self) {}
}

impl OutputStream for ValueWriter {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        lock(&self.body).write(&bytes, &self.meter)
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        match &lock(&self.body).failed {
            Some(why) => Err(failed(why)),
            None => Ok(WRITE_PERMIT),
        }
    }
}

/// A range of an object, as `get-data` returned it.
pub struct IncomingValue {
    source: Source,
    size: u64,
    /// What `source` holds on the host (counted against the app's memory).
    held: Held,
    _slot: Slot,
}

/// Where an incoming value's bytes are.
enum Source {
    /// Read (and verified) when the value was made: it outlives the object.
    Held(Vec<u8>),
    /// Read when consumed: `size` bytes of `hash` from `start`.
    Later {
        view: AppView,
        hash: Hash,
        start: u64,
    },
}

/// An incoming value's input stream: each 4 MiB piece proven by the core
/// before any of it is returned.
struct ValueReader {
    source: Source,
    /// Bytes of the value taken from the source so far.
    pos: u64,
    size: u64,
    piece: Bytes,
    meter: WorkMeter,
    /// What `piece` takes on the host (counted against the app's memory).
    held: Held,
    _slot: Slot,
}

/// Always ready: each read reads (and proves) its piece at once.
#[async_trait::async_trait]
impl Pollable for ValueReader {
    async fn ready(&mut self) {}
}

impl InputStream for ValueReader {
    fn read(&mut self, size: usize) -> StreamResult<Bytes> {
        if self.piece.is_empty() {
            if self.pos >= self.size {
                return Err(StreamError::Closed);
            }
            let Source::Later { view, hash, start } = &self.source else {
                return Err(StreamError::Closed);
            };
            let n = RANGE_LIMIT.min(self.size - self.pos);
            self.piece = Bytes::new();
            self.held
                .set(usize::try_from(n).unwrap_or(usize::MAX))
                .map_err(trap)?;
            let at = start.saturating_add(self.pos);
            let piece = self
                .meter
                .measure(n, || view.get_range(hash, at..at.saturating_add(n)))
                .map_err(|e| {
                    let _ = self.held.set(0);
                    failed(&e.to_string())
                })?;
            self.pos += n;
            self.piece = Bytes::from(piece);
        }
        let take = size.min(self.piece.len());
        Ok(self.piece.split_to(take))
    }
}

/// `size` bytes of `hash` from `start`, read and proven 4 MiB at a time.
fn read_all(view: &AppView, hash: &Hash, start: u64, size: u64) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    let mut at = start;
    let end = start.saturating_add(size);
    while at < end {
        let n = RANGE_LIMIT.min(end - at);
        out.extend(view.get_range(hash, at..at + n)?);
        at += n;
    }
    Ok(out)
}

impl BlobView<'_> {
    /// The value of bytes `start..=end` of object `name` of `c` (the end
    /// cut at the object's end).
    pub(super) fn incoming(
        &mut self,
        c: &ContainerName,
        name: &str,
        start: u64,
        end: u64,
    ) -> Result<IncomingValue, BlobError> {
        let slot = self.ctx.values.take()?;
        let mut held = self.store.memory.hold();
        self.charged(0, |view| {
            let hash = object_hash(view, c, name)?;
            let size = view.stat(&hash)?.size;
            if start > end || start > size {
                return Err(BlobError::BadRange { start, end, size });
            }
            let stop = end.saturating_add(1).min(size);
            let len = stop - start;
            let source = if len <= RANGE_LIMIT {
                held.set(usize::try_from(len).unwrap_or(usize::MAX))?;
                Source::Held(view.get_range(&hash, start..stop)?)
            } else {
                Source::Later {
                    view: view.clone(),
                    hash,
                    start,
                }
            };
            Ok(IncomingValue {
                source,
                size: len,
                held,
                _slot: slot,
            })
        })
    }
}

type Answer<T> = wasmtime::Result<Result<T, String>>;

impl types::Host for BlobView<'_> {}

impl types::HostOutgoingValue for BlobView<'_> {
    fn new_outgoing_value(&mut self) -> wasmtime::Result<Resource<OutgoingValue>> {
        // The WIT gives this no error: an app over its limit of open
        // values traps, as it would for running out of fuel.
        let slot = self
            .ctx
            .values
            .take()
            .map_err(|e| wasmtime::Error::msg(e.to_string()))?;
        let staged_total = self.store.staged_total.clone();
        let memory = self.store.memory.hold();
        let body = self
            .charged(0, |view| {
                Ok(Body {
                    upload: view.upload(ArtifactType::Generic),
                    failed: None,
                    written: 0,
                    staged_total,
                    view: view.clone(),
                    memory,
                })
            })
            .map_err(|e| match e {
                BlobError::Store(Error::OutOfFuel { .. }) => wasmtime::Trap::OutOfFuel.into(),
                e => wasmtime::Error::msg(e.to_string()),
            })?;
        Ok(self.table.push(OutgoingValue {
            body: Arc::new(Mutex::new(body)),
            body_taken: false,
            targets: Vec::new(),
            _slot: slot,
        })?)
    }

    fn outgoing_value_write_body(
        &mut self,
        value: Resource<OutgoingValue>,
    ) -> wasmtime::Result<Result<Resource<DynOutputStream>, ()>> {
        let meter = self.meter();
        let v = self.table.get_mut(&value)?;
        if v.body_taken {
            return Ok(Err(()));
        }
        v.body_taken = true;
        let writer: DynOutputStream = Box::new(ValueWriter {
            body: v.body.clone(),
            meter,
        });
        Ok(Ok(self.table.push_child(writer, &value)?))
    }

    fn finish(&mut self, value: Resource<OutgoingValue>) -> Answer<()> {
        // Fails (a trap) while its output stream is open, as the WIT says.
        let value = self.table.delete(value)?;
        let cap = self.store.max_names;
        let mut body = lock(&value.body);
        if let Some(why) = &body.failed {
            return answer(Err(BlobError::ValueFailed(why.clone())));
        }
        if value.targets.is_empty() {
            body.upload.abandon();
            return Ok(Ok(()));
        }
        // The bytes were charged as they were written; storing them is
        // charged for the records and bytes the core handles.
        answer(self.charged(0, |view| {
            let hash = body.upload.finish_now()?;
            let named = (value.targets.iter())
                .try_for_each(|(c, object)| set_object(view, cap, c, object, &hash));
            // The names hold it now (or, if none was set, nothing does).
            view.release(&hash)?;
            named
        }))
    }

    fn drop(&mut self, value: Resource<OutgoingValue>) -> wasmtime::Result<()> {
        // Unfinished: nothing is stored, its staging is discarded.
        self.table.delete(value)?;
        Ok(())
    }
}

impl types::HostIncomingValue for BlobView<'_> {
    fn incoming_value_consume_sync(&mut self, value: Resource<IncomingValue>) -> Answer<Vec<u8>> {
        let value = self.table.delete(value)?;
        let left = self.memory_left;
        answer(match value.source {
            Source::Held(bytes) => Ok(bytes),
            Source::Later { .. } if value.size > left => Err(BlobError::TooLargeForSync {
                size: value.size,
                left,
            }),
            Source::Later { view, hash, start } => self.charged(value.size, |_| {
                Ok(read_all(&view, &hash, start, value.size)?)
            }),
        })
    }

    fn incoming_value_consume_async(
        &mut self,
        value: Resource<IncomingValue>,
    ) -> Answer<Resource<DynInputStream>> {
        let IncomingValue {
            source,
            size,
            held,
            _slot,
        } = self.table.delete(value)?;
        let (source, pos, piece) = match source {
            Source::Held(bytes) => (Source::Held(Vec::new()), size, Bytes::from(bytes)),
            later => (later, 0, Bytes::new()),
        };
        let reader: DynInputStream = Box::new(ValueReader {
            source,
            pos,
            size,
            piece,
            meter: self.meter(),
            held,
            _slot,
        });
        Ok(Ok(self.table.push(reader)?))
    }

    fn size(&mut self, value: Resource<IncomingValue>) -> wasmtime::Result<u64> {
        Ok(self.table.get(&value)?.size)
    }

    fn drop(&mut self, value: Resource<IncomingValue>) -> wasmtime::Result<()> {
        self.table.delete(value)?;
        Ok(())
    }
}

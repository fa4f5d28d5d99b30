//! What an app writes to its standard output and error: capped in total, and
//! on a terminal made harmless.
//!
//! Each run gets one [`OutputBudget`] shared by its standard output and
//! error. A write that would take the run past it is cut at the limit and
//! traps the app (the host then reports [`Error::OutputLimit`](crate::Error::OutputLimit)),
//! so a run never writes more than the limit, and the host holds at most
//! one write (64 KiB, four times that once escaped) per stream whatever the app writes.
//! Output kept in memory ([`Capture`]: `Stdio::Capture`, a launched child's)
//! is held for the app, its buffer counted against the app's memory: a
//! write it has no room for traps the app (out of memory).
//!
//! Output to a terminal is escaped: C0 control characters other than
//! newline and tab (ESC, CR, BEL, backspace…) and DEL become `\xNN`, C1
//! control characters (U+0080 to U+009F) and the bidirectional-text
//! controls become `\u{NNNN}`, and bytes that are not UTF-8 become `\xNN`,
//! so an app cannot move the cursor, rewrite a line, set the window title
//! or the clipboard, or reorder what the terminal shows. Anything else
//! (text, `\n`, `\t`) passes unchanged, and output that is not a terminal
//! (a file, a pipe, a capture) is passed byte for byte.
//!
//! Writes to the host's own standard output and error happen on tokio's
//! blocking threads, so an app whose reader has stopped reading (a full
//! pipe) waits in an async poll and is still stopped by its wall-clock
//! limit.

use std::io::{self, Write};
use std::sync::{Arc, Mutex, MutexGuard};

use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};

use super::budget::{OutputBudget, OutputLimitReached};
use super::escape::{escape, push_byte_escape};
use super::memory::{Held, MemoryRefused};

/// The most one `write` may carry (what `check-write` grants).
const PERMIT: usize = 64 << 10;

/// Where a stream's bytes end up.
#[derive(Clone)]
pub(crate) enum Sink {
    /// The host process's standard output.
    Stdout,
    /// The host process's standard error.
    Stderr,
    /// Kept in memory (`Stdio::Capture`, a launched child's, and tests).
    Memory(Arc<Mutex<Capture>>),
}

/// Output kept in memory, its buffer counted against the app's memory
/// while the host holds it.
#[derive(Debug)]
pub(crate) struct Capture {
    bytes: Vec<u8>,
    held: Held,
}

impl Capture {
    /// Nothing captured yet, counted in `held`'s account.
    pub(crate) fn new(held: Held) -> Arc<Mutex<Self>> {
        Arc::new(Mutex::new(Self {
            bytes: Vec::new(),
            held,
        }))
    }

    /// Appends `more`, counted before it is kept: the bytes captured (the
    /// buffer's spare capacity, never written, is not resident), so an
    /// app's peak is what it needs, whatever the buffer's growth.
    fn push(&mut self, more: &[u8]) -> Result<(), MemoryRefused> {
        self.held.set(self.bytes.len().saturating_add(more.len()))?;
        self.bytes.extend_from_slice(more);
        Ok(())
    }

    /// Takes what was captured, no longer counted: its owner counts it
    /// where it goes next.
    pub(crate) fn take(&mut self) -> Vec<u8> {
        let mut bytes = std::mem::take(&mut self.bytes);
        bytes.shrink_to_fit();
        let _ = self.held.set(0);
        bytes
    }
}

impl Sink {
    fn is_host(&self) -> bool {
        matches!(self, Sink::Stdout | Sink::Stderr)
    }

    /// Writes `bytes` to a [`Sink::Memory`]: refused (the app traps) past
    /// its memory.
    fn capture(&self, bytes: &[u8]) -> StreamResult<()> {
        match self {
            Sink::Memory(capture) => lock(capture)
                .push(bytes)
                .map_err(|e| StreamError::Trap(wasmtime::Error::new(e))),
            Sink::Stdout | Sink::Stderr => self
                .write_all(bytes)
                .map_err(|e| StreamError::LastOperationFailed(e.into())),
        }
    }

    fn write_all(&self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Sink::Stdout => {
                let mut out = io::stdout().lock();
                out.write_all(bytes).and_then(|()| out.flush())
            }
            Sink::Stderr => {
                let mut out = io::stderr().lock();
                out.write_all(bytes).and_then(|()| out.flush())
            }
            Sink::Memory(capture) => lock(capture).push(bytes).map_err(io::Error::other),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One of an app's output streams (its stdout or its stderr): the
/// [`StdoutStream`] given to WASI. Every handle the app opens on it shares
/// one state, so writes stay in order.
#[derive(Clone)]
pub(crate) struct AppOutput {
    shared: Arc<Shared>,
}

struct Shared {
    sink: Sink,
    /// Escape control characters (the sink is a terminal).
    escape: bool,
    budget: Arc<OutputBudget>,
    state: Mutex<State>,
    /// Notified when a write on a blocking thread finishes.
    written: tokio::sync::Notify,
}

#[derive(Default)]
struct State {
    /// The start of a UTF-8 sequence that the next write may complete (escaping only).
    pending: Vec<u8>,
    /// A write is on a blocking thread.
    busy: bool,
    /// Why the last write failed, told to the app at its next call.
    failed: Option<io::Error>,
    /// The last byte that went out was not a newline (escaping only).
    mid_line: bool,
}

impl AppOutput {
    /// A stream to `sink`, escaped if `escape`, counted against `budget`.
    pub(crate) fn new(sink: Sink, escape: bool, budget: Arc<OutputBudget>) -> Self {
        Self {
            shared: Arc::new(Shared {
                sink,
                escape,
                budget,
                state: Mutex::new(State::default()),
                written: tokio::sync::Notify::new(),
            }),
        }
    }

    /// Waits for writes in flight; then, on a terminal, writes out (escaped)
    /// any incomplete UTF-8 the app left and ends its last line, so that
    /// whatever the host prints next starts on a line of its own.
    pub(crate) async fn finish(&self) {
        let mut stream = Stream {
            shared: self.shared.clone(),
        };
        stream.ready().await;
        if !self.shared.escape {
            return;
        }
        let tail = {
            let mut state = lock(&self.shared.state);
            let mut tail = Vec::new();
            for b in std::mem::take(&mut state.pending) {
                push_byte_escape(&mut tail, b);
            }
            if state.mid_line || !tail.is_empty() {
                tail.push(b'\n');
                state.mid_line = false;
            }
            tail
        };
        if !tail.is_empty() {
            // Only a terminal is escaped: the host's own output, whose
            // failures the app can no longer hear of.
            let _ = stream.send(tail);
            stream.ready().await;
        }
    }
}

impl IsTerminal for AppOutput {
    /// Always false: what the app writes goes through the host's filter,
    /// not straight to a terminal, so well-behaved apps print plain text.
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for AppOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(Stream {
            shared: self.shared.clone(),
        })
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        // Only WASI 0.3 asks for this, and the host links 0.2 only.
        Box::new(Stream {
            shared: self.shared.clone(),
        })
    }
}

/// One handle on an [`AppOutput`].
struct Stream {
    shared: Arc<Shared>,
}

impl Stream {
    /// Hands `bytes` to the sink: in memory at once (a trap if the app's
    /// memory has no room for them); to the host's own output on a
    /// blocking thread (inline if there is no tokio runtime).
    fn send(&mut self, bytes: Vec<u8>) -> StreamResult<()> {
        let shared = &self.shared;
        if !shared.sink.is_host() {
            return shared.sink.capture(&bytes);
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            if let Err(e) = shared.sink.write_all(&bytes) {
                lock(&shared.state).failed = Some(e);
            }
            return Ok(());
        };
        lock(&shared.state).busy = true;
        let shared = shared.clone();
        runtime.spawn_blocking(move || {
            let result = shared.sink.write_all(&bytes);
            {
                let mut state = lock(&shared.state);
                state.busy = false;
                if let Err(e) = result {
                    state.failed = Some(e);
                }
            }
            shared.written.notify_waiters();
        });
        Ok(())
    }

    /// The last write's failure, if any, as the app should see it.
    fn take_failure(&self) -> StreamResult<()> {
        match lock(&self.shared.state).failed.take() {
            None => Ok(()),
            Some(e) if e.kind() == io::ErrorKind::BrokenPipe => Err(StreamError::Closed),
            Some(e) => Err(StreamError::LastOperationFailed(e.into())),
        }
    }
}

impl OutputStream for Stream {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        self.take_failure()?;
        if bytes.len() > PERMIT || lock(&self.shared.state).busy {
            return Err(StreamError::trap("write without a permit from check-write"));
        }
        let allowed = self.shared.budget.take(bytes.len());
        let kept = bytes.get(..allowed).unwrap_or_default();
        let out = if self.shared.escape {
            let mut state = lock(&self.shared.state);
            let mut out = Vec::with_capacity(kept.len() + 16);
            escape(&mut state.pending, kept, &mut out);
            if let Some(&last) = out.last() {
                state.mid_line = last != b'\n';
            }
            out
        } else {
            kept.to_vec()
        };
        if !out.is_empty() {
            self.send(out)?;
        }
        if allowed < bytes.len() {
            return Err(StreamError::Trap(wasmtime::Error::new(OutputLimitReached)));
        }
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        // Every write is flushed as it goes; check-write waits for it.
        self.take_failure()
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        self.take_failure()?;
        Ok(if lock(&self.shared.state).busy {
            0
        } else {
            PERMIT
        })
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for Stream {
    async fn ready(&mut self) {
        loop {
            let written = self.shared.written.notified();
            if !lock(&self.shared.state).busy {
                return;
            }
            written.await;
        }
    }
}

impl tokio::io::AsyncWrite for Stream {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        // Written inline: this path is not used by WASI 0.2.
        let len = buf.len().min(PERMIT);
        let chunk = bytes::Bytes::copy_from_slice(buf.get(..len).unwrap_or_default());
        let shared = self.shared.clone();
        let result = match self.as_mut().get_mut().write_inline(&shared, chunk) {
            Ok(()) => Ok(len),
            Err(e) => Err(io::Error::other(e.to_string())),
        };
        std::task::Poll::Ready(result)
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

impl Stream {
    /// [`OutputStream::write`], but writing on this thread.
    fn write_inline(&mut self, shared: &Arc<Shared>, bytes: bytes::Bytes) -> StreamResult<()> {
        let allowed = shared.budget.take(bytes.len());
        let kept = bytes.get(..allowed).unwrap_or_default();
        let mut out = Vec::new();
        if shared.escape {
            escape(&mut lock(&shared.state).pending, kept, &mut out);
        } else {
            out.extend_from_slice(kept);
        }
        shared.sink.capture(&out)?;
        if allowed < bytes.len() {
            return Err(StreamError::Trap(wasmtime::Error::new(OutputLimitReached)));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    fn run_stream(
        escape: bool,
        limit: u64,
        writes: &[&[u8]],
    ) -> (Vec<u8>, Vec<StreamResult<()>>, bool) {
        let buffer = Capture::new(super::super::memory::MemoryAccount::unlimited().hold());
        let budget = OutputBudget::new(limit);
        let output = AppOutput::new(Sink::Memory(buffer.clone()), escape, budget.clone());
        let mut stream = output.p2_stream();
        let results = writes
            .iter()
            .map(|w| {
                stream.check_write()?;
                stream.write(bytes::Bytes::copy_from_slice(w))
            })
            .collect();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(output.finish());
        let out = lock(&buffer).take();
        (out, results, budget.exceeded())
    }

    #[test]
    fn the_stream_escapes_only_for_a_terminal_and_ends_the_last_line() {
        let (out, _, _) = run_stream(true, 1 << 20, &[b"\x1b[31mred", b"\x1b[0m"]);
        assert_eq!(String::from_utf8(out).unwrap(), "\\x1b[31mred\\x1b[0m\n");
        let (out, _, _) = run_stream(false, 1 << 20, &[b"\x1b[31mred", b"\x1b[0m"]);
        assert_eq!(out, b"\x1b[31mred\x1b[0m", "not a terminal: byte for byte");
        assert!(!AppOutput::new(Sink::Stdout, true, OutputBudget::new(1)).is_terminal());
    }

    #[test]
    fn captured_output_is_counted_in_the_apps_memory_and_a_write_past_it_traps() {
        use super::super::memory::MemoryAccount;
        let account = MemoryAccount::new(100 << 10);
        let capture = Capture::new(account.hold());
        let output = AppOutput::new(
            Sink::Memory(capture.clone()),
            false,
            OutputBudget::new(1 << 30),
        );
        let mut stream = output.p2_stream();
        let piece = bytes::Bytes::from(vec![b'x'; 1 << 10]);
        for _ in 0..100 {
            stream.write(piece.clone()).unwrap();
        }
        assert_eq!(
            account.used(),
            100 << 10,
            "all of it, grown exactly at the end"
        );
        assert!(
            !account.denied(),
            "growing by less than a quarter is not a refusal"
        );
        let refused = stream.write(piece.clone());
        assert!(matches!(&refused, Err(StreamError::Trap(e)) if e.is::<MemoryRefused>()));
        assert!(account.denied());
        assert_eq!(lock(&capture).take().len(), 100 << 10);
        assert_eq!(account.used(), 0, "taken, no longer counted");
    }

    #[test]
    fn the_budget_cuts_at_the_limit_and_traps() {
        let (out, results, exceeded) = run_stream(false, 10, &[b"12345678", b"abcd", b"x"]);
        assert_eq!(out, b"12345678ab");
        assert!(results[0].is_ok());
        assert!(matches!(&results[1], Err(StreamError::Trap(e)) if e.is::<OutputLimitReached>()));
        assert!(exceeded);
        let (out, results, exceeded) = run_stream(false, 4, &[b"1234"]);
        assert_eq!(
            (out.as_slice(), results[0].is_ok(), exceeded),
            (&b"1234"[..], true, false)
        );
    }
}

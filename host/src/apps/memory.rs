//! One memory account per app run. Everything the app makes the host keep
//! in memory draws on it: its linear memories and tables as they grow
//! (through [`Budget`](super::limits::Budget), wasmtime's resource limiter)
//! and the buffers the host holds for it between calls, each a [`Held`]:
//! the piece an upload is filling, the piece a download hands out, a
//! `wasi:blobstore` value read in advance or being written, its captured
//! output, a launched child's output being handed to it. So an app's
//! [`memory_bytes`](super::limits::AppLimits::memory_bytes) bounds all of them at
//! once, not each alone.
//!
//! Not counted: a backend's own staging (the S3 backend gathers up to 16
//! MiB of a staged put before it becomes a multipart upload; the memory
//! backend's staging is its stored content), and what a single call lifts
//! and lowers while it runs (bounded per call by the hostcall fuel).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// An app's memory: its limit, what is counted against it, and whether
/// anything was refused. Clones share the account.
#[derive(Debug, Clone)]
pub(crate) struct MemoryAccount(Arc<Account>);

#[derive(Debug)]
struct Account {
    limit: usize,
    used: AtomicUsize,
    /// The most `used` has been.
    peak: AtomicUsize,
    /// Set once anything was refused, so that the trap that follows is
    /// reported as running out of memory.
    denied: AtomicBool,
}

impl MemoryAccount {
    /// An account of `limit` bytes.
    pub(crate) fn new(limit: usize) -> Self {
        Self(Arc::new(Account {
            limit,
            used: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            denied: AtomicBool::new(false),
        }))
    }

    /// An account nothing is refused by (an embedder's store with no
    /// budget of ours).
    pub(crate) fn unlimited() -> Self {
        Self::new(usize::MAX)
    }

    /// Counts `more` bytes for good (a memory or table growing: wasm never
    /// gives them back during a run); `None` (an overflowed request) or
    /// past the limit is refused, counts nothing and marks the account.
    pub(crate) fn take(&self, more: Option<usize>) -> bool {
        let limit = self.0.limit;
        let taken = more.is_some_and(|more| {
            (self.0.used)
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                    used.checked_add(more).filter(|&total| total <= limit)
                })
                .map(|before| self.0.peak.fetch_max(before + more, Ordering::AcqRel))
                .is_ok()
        });
        if !taken {
            self.0.denied.store(true, Ordering::Release);
        }
        taken
    }

    fn give_back(&self, bytes: usize) {
        self.0.used.fetch_sub(bytes, Ordering::AcqRel);
    }

    /// Bytes counted now.
    pub(crate) fn used(&self) -> usize {
        self.0.used.load(Ordering::Acquire)
    }

    /// The most bytes counted at once so far.
    pub(crate) fn peak(&self) -> usize {
        self.0.peak.load(Ordering::Acquire)
    }

    /// Bytes not counted yet.
    pub(crate) fn left(&self) -> usize {
        self.0.limit.saturating_sub(self.used())
    }

    /// Whether anything was refused.
    pub(crate) fn denied(&self) -> bool {
        self.0.denied.load(Ordering::Acquire)
    }

    /// A hold of nothing yet, for a buffer the host keeps for the app.
    pub(crate) fn hold(&self) -> Held {
        Held {
            account: self.clone(),
            bytes: 0,
        }
    }
}

/// Bytes the host holds for an app, counted against its account while
/// held, given back when dropped.
#[derive(Debug)]
pub(crate) struct Held {
    account: MemoryAccount,
    bytes: usize,
}

impl Held {
    /// Counts `bytes` as held from now on, in place of what was. Growing
    /// past the account's limit is refused: nothing changes, and the
    /// account is marked (the caller then traps the app).
    pub(crate) fn set(&mut self, bytes: usize) -> Result<(), MemoryRefused> {
        if bytes > self.bytes {
            if !self.account.take(Some(bytes - self.bytes)) {
                return Err(MemoryRefused {
                    limit: self.account.0.limit,
                    held: self.bytes,
                    wanted: bytes,
                });
            }
        } else {
            self.account.give_back(self.bytes - bytes);
        }
        self.bytes = bytes;
        Ok(())
    }

    /// Bytes counted now.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.account.give_back(self.bytes);
    }
}

/// The trap for a buffer the host would hold for an app past its memory
/// limit; the run reports it as [`Error::OutOfMemory`](crate::Error::OutOfMemory).
#[derive(Debug, thiserror::Error)]
#[error(
    "the app's memory limit ({limit} bytes, its memories and what the host holds for it) \
     has no room for the host to hold {wanted} bytes for it (held {held})"
)]
pub struct MemoryRefused {
    limit: usize,
    held: usize,
    wanted: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_and_growth_share_the_limit_and_holds_give_back_on_drop() {
        let account = MemoryAccount::new(10 << 20);
        assert!(account.take(Some(4 << 20)), "a memory of 4 MiB");
        let mut a = account.hold();
        a.set(4 << 20).unwrap();
        let mut b = account.hold();
        let refused = b.set(3 << 20).unwrap_err();
        assert!(
            refused.to_string().contains("hold 3145728 bytes"),
            "{refused}"
        );
        assert!(account.denied());
        assert_eq!((b.bytes(), account.used()), (0, 8 << 20), "nothing changed");
        b.set(2 << 20).unwrap();
        assert_eq!(account.left(), 0);
        assert!(!account.take(Some(1)), "memory growth sees the holds");
        a.set(1 << 20).unwrap();
        assert_eq!(account.used(), 7 << 20, "shrinking gives back");
        drop(b);
        drop(a);
        assert_eq!(account.used(), 4 << 20, "dropping gives back the rest");
        assert_eq!(account.peak(), 10 << 20);
        assert!(!account.take(None), "an overflowed request is refused");
        assert!(!account.take(Some(usize::MAX)), "no overflow");
        assert_eq!(account.used(), 4 << 20);
    }
}

//! The output budget of one run: how many bytes its apps may still write,
//! standard output and error together, and the trap for writing past it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// How many bytes the apps of one run may still write, stdout and stderr together.
#[derive(Debug)]
pub(crate) struct OutputBudget {
    limit: u64,
    used: AtomicU64,
    exceeded: AtomicBool,
}

impl OutputBudget {
    pub(crate) fn new(limit: u64) -> Arc<Self> {
        Arc::new(Self {
            limit,
            used: AtomicU64::new(0),
            exceeded: AtomicBool::new(false),
        })
    }

    /// Takes up to `want` bytes of the budget; returns how many it got.
    /// Getting fewer marks the budget exceeded.
    pub(crate) fn take(&self, want: usize) -> usize {
        let want = want as u64;
        let mut got = 0;
        let _ = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                got = want.min(self.limit.saturating_sub(used));
                Some(used + got)
            });
        if got < want {
            self.exceeded.store(true, Ordering::Release);
        }
        usize::try_from(got).unwrap_or(usize::MAX)
    }

    /// Bytes not written yet.
    pub(crate) fn left(&self) -> u64 {
        self.limit.saturating_sub(self.used.load(Ordering::Acquire))
    }

    /// Whether an app tried to write past the limit.
    pub(crate) fn exceeded(&self) -> bool {
        self.exceeded.load(Ordering::Acquire)
    }
}

/// The trap an app gets for writing past its output limit.
#[derive(Debug)]
pub(crate) struct OutputLimitReached;

impl std::fmt::Display for OutputLimitReached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the app wrote more output than its limit allows")
    }
}

impl std::error::Error for OutputLimitReached {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_are_granted_up_to_the_limit_and_then_mark_it_exceeded() {
        let budget = OutputBudget::new(10);
        assert_eq!((budget.take(6), budget.exceeded()), (6, false));
        assert_eq!((budget.take(4), budget.exceeded()), (4, false));
        assert_eq!((budget.take(1), budget.exceeded()), (0, true));
        let budget = OutputBudget::new(3);
        assert_eq!((budget.take(5), budget.exceeded()), (3, true));
    }
}

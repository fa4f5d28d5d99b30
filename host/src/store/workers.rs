//! The threads that hash pieces and stage blobs beside the caller: made once
//! per process and kept (a rayon pool), so that a call pays a wake-up, not a
//! thread's creation, its first entry into wasm and its exit, which cost
//! a large part of a 1 MiB verified get (docs/benchmarks.md).
//!
//! The caller always does its own share on its own thread, so a call makes
//! progress even while every pool thread is busy with other calls' work.

use std::panic::AssertUnwindSafe;
use std::sync::{Mutex, OnceLock};

use crate::Error;

/// The process's worker threads (`None` if the system refused to make them:
/// then everything runs on the caller's thread, one job after another).
fn pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
    POOL.get_or_init(|| {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 16));
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("artifacts-worker-{i}"))
            .build()
            .ok()
    })
    .as_ref()
}

/// `job()`, with a panic turned into an error.
fn caught<T>(job: impl FnOnce() -> Result<T, Error>) -> Result<T, Error> {
    std::panic::catch_unwind(AssertUnwindSafe(job))
        .unwrap_or_else(|_| Err(Error::Core("a worker thread panicked".into())))
}

/// Runs `away` on a worker thread and `here` on this one, at once; returns
/// both results when both have finished.
pub(crate) fn join<A, B>(
    away: impl FnOnce() -> Result<A, Error> + Send,
    here: impl FnOnce() -> B,
) -> (Result<A, Error>, B)
where
    A: Send,
{
    let Some(pool) = pool() else {
        let b = here();
        return (caught(away), b);
    };
    let slot = Slot::default();
    let b = pool.in_place_scope(|s| {
        s.spawn(|_| slot.set(caught(away)));
        here()
    });
    (slot.take(), b)
}

/// Runs `job(0)` on this thread and `job(1)` to `job(n - 1)` on worker
/// threads, all at once; returns the results in that order when all have
/// finished.
pub(crate) fn each<T: Send>(
    n: usize,
    job: impl Fn(usize) -> Result<T, Error> + Sync,
) -> Vec<Result<T, Error>> {
    let Some(pool) = pool().filter(|_| n > 1) else {
        return (0..n).map(|k| caught(|| job(k))).collect();
    };
    let slots: Vec<Slot<T>> = (0..n).map(|_| Slot::default()).collect();
    pool.in_place_scope(|s| {
        for (k, slot) in slots.iter().enumerate().skip(1) {
            let job = &job;
            s.spawn(move |_| slot.set(caught(|| job(k))));
        }
        if let Some(first) = slots.first() {
            first.set(caught(|| job(0)));
        }
    });
    slots.into_iter().map(Slot::take).collect()
}

/// Where a job leaves its result for the caller.
struct Slot<T>(Mutex<Option<Result<T, Error>>>);

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Self(Mutex::new(None))
    }
}

impl<T> Slot<T> {
    fn set(&self, result: Result<T, Error>) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(result);
        }
    }

    fn take(self) -> Result<T, Error> {
        self.0
            .into_inner()
            .ok()
            .flatten()
            .unwrap_or_else(|| Err(Error::Core("a worker's job did not run".into())))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn every_job_runs_once_in_order_and_panics_become_errors() {
        let results = each(5, |k| Ok(k * 10));
        let values: Vec<usize> = results.into_iter().map(Result::unwrap).collect();
        assert_eq!(values, [0, 10, 20, 30, 40]);

        let results = each(3, |k| {
            if k == 2 {
                panic!("boom");
            }
            Ok(k)
        });
        assert!(matches!(results[2], Err(Error::Core(_))));
        assert_eq!(*results[1].as_ref().unwrap(), 1);

        let (a, b) = join(
            || Ok(std::thread::current().name().map(str::to_owned)),
            || 7,
        );
        assert_eq!(b, 7);
        assert!(a.unwrap().unwrap().starts_with("artifacts-worker-"));
    }

    #[test]
    fn nested_calls_from_many_threads_finish() {
        // More callers than pool threads, each waiting on the pool: the
        // callers' own shares keep every call moving.
        std::thread::scope(|s| {
            for t in 0..8 {
                s.spawn(move || {
                    for _ in 0..50 {
                        let r = each(4, |k| Ok(t + k));
                        assert_eq!(r.len(), 4);
                    }
                });
            }
        });
    }
}

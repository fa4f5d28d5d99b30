//! The per-record claim lock (see the module docs of [`super`]): a claim
//! object under `locks/KEY/`, held while a listing shows no other live claim.

use std::time::{Duration, Instant};

use object_store::path::Path;

use super::S3Backend;
use super::bucket::{Bucket, Lane, millis};
use crate::BackendError;
use crate::backend::{BackendResult, new_version};

/// How long to keep trying to take a contended lock, beyond one lease
/// (a dead host's claim can only be broken a lease after it was written).
const LOCK_PATIENCE: Duration = Duration::from_secs(60);

impl S3Backend {
    /// Takes the lock whose claims live in `folder`, on the record or entry
    /// `what`.
    ///
    /// Safety rests on one rule: a host holds the lock only when a listing
    /// made after its claim was written shows no other live claim. For
    /// progress under contention, the oldest visible claim (by server time,
    /// then name) is kept while its host re-lists until the others withdraw;
    /// every other claimant withdraws, then waits for the folder to empty
    /// before claiming again.
    pub(super) fn lock_at(&self, folder: Path, what: &str) -> BackendResult<LockGuard<'_>> {
        let bucket = &self.bucket;
        let started = Instant::now();
        let patience = LOCK_PATIENCE + self.lease;
        let mut attempt = 0u32;
        loop {
            let claim = format!("{:016x}", new_version(None));
            let path = folder.clone().join(claim.as_str());
            let taken = Instant::now();
            bucket.put(Lane::Short, &path, Vec::<u8>::new())?;
            let guard = LockGuard {
                bucket,
                lease: self.lease,
                path: path.clone(),
                taken,
                keep: false,
            };
            let mut relists = 0u32;
            loop {
                let claims = bucket.list(&folder, None, usize::MAX)?;
                let Some(mine) = claims.iter().find(|m| m.location == path) else {
                    break; // broken as stale by someone else: start again
                };
                let mut oldest = true;
                let mut alone = true;
                for other in claims.iter().filter(|m| m.location != path) {
                    let age = (mine.last_modified - other.last_modified).to_std();
                    if age.is_ok_and(|age| age > self.lease) {
                        bucket.delete(&other.location)?;
                        continue;
                    }
                    alone = false;
                    if (other.last_modified, &other.location) < (mine.last_modified, &mine.location)
                    {
                        oldest = false;
                    }
                }
                // A claim kept waiting too long would leave too little lease.
                if alone && taken.elapsed() < self.lease / 8 {
                    return Ok(guard);
                }
                if alone || !oldest || started.elapsed() > patience {
                    break;
                }
                relists = relists.saturating_add(1);
                std::thread::sleep(jitter(relists, 50));
            }
            drop(guard);
            if started.elapsed() > patience {
                return Err(BackendError::Io(format!(
                    "s3 lock on record {what} still contended after {patience:?}"
                )));
            }
            // Wait for the holder and the oldest waiter to finish; claims
            // of dead hosts never go away, so claim again after a while.
            for _ in 0..8 {
                attempt = attempt.saturating_add(1);
                std::thread::sleep(jitter(attempt, 500));
                if bucket.list(&folder, None, 1)?.is_empty() {
                    break;
                }
            }
        }
    }

    /// The servers' current time, from the timestamp of a probe object
    /// (claims are aged by it, never by this host's clock).
    pub(super) fn server_now(&self) -> BackendResult<u64> {
        let probe = self
            .bucket
            .path(&format!("clock/{:016x}", new_version(None)));
        self.bucket.put(Lane::Short, &probe, Vec::<u8>::new())?;
        let meta = self.bucket.head(&probe)?;
        self.bucket.delete(&probe)?;
        meta.map(|m| millis(&m))
            .ok_or_else(|| BackendError::Io(format!("s3 probe {probe} vanished")))
    }
}

/// A random pause of up to `2^n` ms, at most `cap_ms`.
fn jitter(n: u32, cap_ms: u64) -> Duration {
    let bound = (1u64 << n.min(20)).clamp(2, cap_ms.max(2));
    Duration::from_millis(1 + new_version(None) % bound)
}

/// A held record lock; dropping it deletes the claim.
pub(super) struct LockGuard<'a> {
    bucket: &'a Bucket,
    lease: Duration,
    path: Path,
    taken: Instant,
    /// Leave the claim in place when dropped (a write failed and may still land).
    keep: bool,
}

impl LockGuard<'_> {
    /// Runs a write under the lock, if it has not been held too long. If the
    /// write fails, the claim stays until it goes stale: a request that
    /// timed out here may still be applied by the server, and no other host
    /// may write this record before that can no longer happen.
    pub(super) fn write<T>(&mut self, f: impl FnOnce() -> BackendResult<T>) -> BackendResult<T> {
        self.check()?;
        let result = f();
        self.keep |= result.is_err();
        result
    }

    /// Fails (before any write) once the lock has been held too long.
    fn check(&self) -> BackendResult<()> {
        let limit = self.lease / 4;
        if self.taken.elapsed() > limit {
            return Err(BackendError::Io(format!(
                "s3 lock {} held longer than {limit:?}; nothing was written",
                self.path
            )));
        }
        Ok(())
    }
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        // A claim left behind is stale after the lease and broken by the next
        // taker; until then it blocks the record, so try twice.
        if !self.keep && self.bucket.delete(&self.path).is_err() {
            let _ = self.bucket.delete(&self.path);
        }
    }
}

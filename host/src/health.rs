//! [`ArtifactStore::health`]: is the backend there and writable, what the
//! store holds, when gc last ran and what it did, what is quarantined.
//!
//! The probe writes, reads back and deletes a small blob through the
//! [`Backend`] trait, under a key no artifact can have: an artifact's key is
//! the BLAKE3 hash of its content, and the probe's is a BLAKE3 key
//! derivation (its own context string) of a random nonce, so content with
//! that key would be a BLAKE3 preimage. A fresh nonce per probe keeps
//! concurrent probes apart; a probe that a crash leaves behind is an
//! unreferenced blob, which gc removes once it is older than its grace
//! period, like any other.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::backend::{Backend, Note, Side, SideInfo, SideKind};
pub use crate::store::GcReport;
use crate::{ArtifactStore, Error, Hash};

/// The context string of the probe's key derivation.
const PROBE_CONTEXT: &str = "artifacts 2026-12-04 health probe key";
/// What a probe blob starts with (then its 16-byte nonce).
const PROBE_MAGIC: &[u8] = b"artifacts health probe\n";
/// The most quarantined blobs a report lists.
pub const QUARANTINE_LISTED: u32 = 100;

/// What [`ArtifactStore::health`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthReport {
    /// The backend answered, a probe blob was written, read back intact
    /// and deleted, and everything else in the report could be read (no
    /// `problems`).
    pub healthy: bool,
    /// The probe.
    pub backend: BackendHealth,
    /// How many artifacts the store holds (`None`: it could not be counted,
    /// see `problems`).
    pub artifacts: Option<u64>,
    /// Their total size in bytes, each artifact counted once.
    pub total_bytes: Option<u64>,
    /// How many owners (apps, and the host's own names) have an index.
    pub owners: Option<u64>,
    /// What the last gc did, if one recorded it (`None`: no gc has run
    /// since this version, or the backend keeps no notes, which a custom
    /// backend by default does not).
    pub last_gc: Option<GcRecord>,
    /// Blobs quarantined by `verify --quarantine` that the backend keeps
    /// (the file backend, in `DIR/quarantine/`), the first
    /// [`QUARANTINE_LISTED`]; their artifacts read as missing until a put of
    /// the right content.
    pub quarantined: Vec<Quarantined>,
    /// What went wrong, one line each.
    pub problems: Vec<String>,
}

/// The write-read-delete probe's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackendHealth {
    /// A read reached the backend.
    pub reachable: bool,
    /// The probe blob was written, read back intact and deleted.
    pub writable: bool,
    /// How long the probe took, in microseconds.
    pub probe_us: u64,
}

/// A quarantined blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Quarantined {
    /// Its hash (the artifact it was stored as).
    pub hash: Hash,
    /// Its size in bytes.
    pub size: u64,
    /// When it was moved aside, in milliseconds since the Unix epoch.
    pub quarantined_at: u64,
}

impl Quarantined {
    /// The quarantined blob a side object listing shows, if it is one.
    fn of(side: SideInfo) -> Option<Self> {
        let Side::Quarantined(hash) = side.key else {
            return None;
        };
        Some(Self {
            hash,
            size: side.size,
            quarantined_at: side.modified,
        })
    }
}

/// What a gc did and when, as it recorded it ([`Note::LastGc`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct GcRecord {
    /// When it finished, in milliseconds since the Unix epoch.
    pub finished_at: u64,
    /// How long it took, in milliseconds.
    pub took_ms: u64,
    /// Its grace period, in milliseconds.
    pub grace_ms: u64,
    /// What it removed and finished.
    pub report: GcReport,
}

/// The first line of a gc note: its kind and version.
const GC_NOTE_HEAD: &str = "artifacts gc 1";

impl GcRecord {
    /// The note's text: a head line, then `name value` lines.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let r = &self.report;
        let fields = [
            ("finished_at", self.finished_at),
            ("took_ms", self.took_ms),
            ("grace_ms", self.grace_ms),
            ("orphans_removed", r.orphans_removed),
            ("bytes_freed", r.bytes_freed),
            ("orphans_in_grace", r.orphans_in_grace),
            ("deletions_finished", r.deletions_finished),
            ("temporary_files_removed", r.temporary_files_removed),
            ("outboards_removed", r.outboards_removed),
            ("aliases_removed", r.aliases_removed),
            ("owner_spaces_removed", r.owner_spaces_removed),
        ];
        let mut text = format!("{GC_NOTE_HEAD}\n");
        for (name, value) in fields {
            text.push_str(&format!("{name} {value}\n"));
        }
        text.into_bytes()
    }

    /// A note's text read back; `None` if it is not one (unknown lines are
    /// skipped, so a later version may add some).
    pub(crate) fn decode(bytes: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut lines = text.lines();
        if lines.next()? != GC_NOTE_HEAD {
            return None;
        }
        let mut record = Self {
            finished_at: 0,
            took_ms: 0,
            grace_ms: 0,
            report: GcReport::default(),
        };
        for line in lines {
            let (name, value) = line.split_once(' ')?;
            let value: u64 = value.parse().ok()?;
            let r = &mut record.report;
            match name {
                "finished_at" => record.finished_at = value,
                "took_ms" => record.took_ms = value,
                "grace_ms" => record.grace_ms = value,
                "orphans_removed" => r.orphans_removed = value,
                "bytes_freed" => r.bytes_freed = value,
                "orphans_in_grace" => r.orphans_in_grace = value,
                "deletions_finished" => r.deletions_finished = value,
                "temporary_files_removed" => r.temporary_files_removed = value,
                "outboards_removed" => r.outboards_removed = value,
                "aliases_removed" => r.aliases_removed = value,
                "owner_spaces_removed" => r.owner_spaces_removed = value,
                _ => {}
            }
        }
        Some(record)
    }
}

impl ArtifactStore {
    /// Checks the store: whether the backend answers and takes a write
    /// (a probe blob written, read back and deleted; see the module docs),
    /// how many artifacts and bytes it holds, how many owners, what the
    /// last gc did, and what is quarantined. Never fails: whatever cannot
    /// be found out is `None` in the report and a line in its `problems`.
    /// [`HealthReport::healthy`] is whether the probe succeeded and there
    /// were no problems.
    #[crate::traced(health)]
    pub fn health(&self) -> Result<HealthReport, Error> {
        let backend: &dyn Backend = &**self.core.backend();
        let mut problems = Vec::new();
        let mut note =
            |what: &str, e: &dyn std::fmt::Display| problems.push(format!("{what}: {e}"));
        let started = Instant::now();
        let (reachable, writable) = probe(backend, &mut note);
        let probe_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        let mut counted = |what: &str, r: Result<u64, Error>| r.map_err(|e| note(what, &e)).ok();
        let artifacts = counted("counting artifacts", self.count());
        let total_bytes = counted("adding up their sizes", self.total_bytes());
        let owners = counted("counting owners", count_owners(backend));
        let last_gc = match backend.read_side(&Side::Note(Note::LastGc)) {
            Ok(None) => None,
            Ok(Some(bytes)) => GcRecord::decode(&bytes).or_else(|| {
                note("reading the last gc's record", &"not a gc record");
                None
            }),
            Err(e) => {
                note("reading the last gc's record", &e);
                None
            }
        };
        let quarantined = match backend.list_side(SideKind::Quarantined, None, QUARANTINE_LISTED) {
            Ok(listed) => listed.into_iter().filter_map(Quarantined::of).collect(),
            Err(e) => {
                note("listing quarantined blobs", &e);
                Vec::new()
            }
        };
        Ok(HealthReport {
            healthy: reachable && writable && problems.is_empty(),
            backend: BackendHealth {
                reachable,
                writable,
                probe_us,
            },
            artifacts,
            total_bytes,
            owners,
            last_gc,
            quarantined,
            problems,
        })
    }

    /// Records what a gc did ([`Note::LastGc`]), so that [`health`](Self::health)
    /// can say when it last ran. A gc whose work is done is not failed by
    /// this: a record that cannot be written is a warning in the log.
    pub(crate) fn record_gc(&self, report: &GcReport, grace: Duration, started: Instant) {
        let backend = self.core.backend();
        let record = GcRecord {
            finished_at: backend.now(),
            took_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            grace_ms: u64::try_from(grace.as_millis()).unwrap_or(u64::MAX),
            report: *report,
        };
        if let Err(e) = backend.write_side(&Side::Note(Note::LastGc), &record.encode()) {
            tracing::warn!(error = %e, "gc could not record what it did");
        }
    }
}

/// The write-read-delete probe: (reachable, writable), each failure told to `note`.
fn probe(
    backend: &dyn Backend,
    note: &mut impl FnMut(&str, &dyn std::fmt::Display),
) -> (bool, bool) {
    let mut nonce = [0u8; 16];
    if let Err(e) = getrandom::fill(&mut nonce) {
        note("drawing the probe's nonce", &e);
        return (false, false);
    }
    let key = Hash::from_bytes(blake3::derive_key(PROBE_CONTEXT, &nonce));
    let content = [PROBE_MAGIC, &nonce].concat();
    if let Err(e) = backend.blob_size(&key) {
        note("reaching the backend", &e);
        return (false, false);
    }
    if let Err(e) = backend.write_blob(&key, &content) {
        note("writing a probe blob", &e);
        return (true, false);
    }
    let read = backend.read_blob(&key);
    // Deleted whatever the read said: a probe never stays behind on purpose.
    let deleted = backend.delete_blob(&key, None);
    let mut writable = true;
    match read {
        Ok(Some(back)) if back == content => {}
        Ok(Some(_)) => {
            note("reading the probe blob back", &"it came back different");
            writable = false;
        }
        Ok(None) => {
            note("reading the probe blob back", &"it was not there");
            writable = false;
        }
        Err(e) => {
            note("reading the probe blob back", &e);
            writable = false;
        }
    }
    match deleted {
        Ok(true) => {}
        Ok(false) => {
            note("deleting the probe blob", &"it was not there to delete");
            writable = false;
        }
        Err(e) => {
            note("deleting the probe blob", &e);
            writable = false;
        }
    }
    (true, writable)
}

/// How many owners have an index space, a page at a time.
fn count_owners(backend: &dyn Backend) -> Result<u64, Error> {
    const PAGE: u32 = 1000;
    let mut count = 0u64;
    let mut after: Option<Hash> = None;
    loop {
        let page = backend.list_owners(after.as_ref(), PAGE)?;
        count += page.len() as u64;
        match page.last() {
            Some(last) if page.len() == PAGE as usize => after = Some(*last),
            _ => return Ok(count),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_gc_record_reads_back_and_anything_else_is_refused() {
        let record = GcRecord {
            finished_at: 1_764_000_000_000,
            took_ms: 12,
            grace_ms: 3_600_000,
            report: GcReport {
                orphans_removed: 3,
                bytes_freed: 4096,
                orphans_in_grace: 1,
                deletions_finished: 2,
                temporary_files_removed: 5,
                outboards_removed: 6,
                aliases_removed: 7,
                owner_spaces_removed: 8,
            },
        };
        assert_eq!(GcRecord::decode(&record.encode()), Some(record));
        let mut later = record.encode();
        later.extend_from_slice(b"something_new 7\n");
        assert_eq!(GcRecord::decode(&later), Some(record));
        for bad in [
            &b""[..],
            b"artifacts gc 2\n",
            b"artifacts gc 1\nfinished_at x\n",
            b"\xff",
        ] {
            assert_eq!(GcRecord::decode(bad), None, "{bad:?}");
        }
    }
}

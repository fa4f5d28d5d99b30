//! Upkeep: gc, migration between formats, quarantine.

use super::{ArtifactStore, GcReport};
use crate::backend::{Side, SideKind};
use crate::{Error, Hash};

impl ArtifactStore {
    /// Deletes blobs that no artifact references and that are older than
    /// `grace`, finishes abandoned deletions, and removes temporary files
    /// older than `grace` and owner spaces empty and unchanged for `grace`.
    /// Never touches a referenced blob; a concurrent put of the same
    /// content is safe as long as it takes less than `grace`.
    /// Records what it did and when ([`Note::LastGc`](crate::backend::Note::LastGc)),
    /// which [`health`](Self::health) reports.
    #[crate::traced(gc)]
    pub fn gc(&self, grace: std::time::Duration) -> Result<GcReport, Error> {
        let started = std::time::Instant::now();
        let grace_ms = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX);
        let report = self.core.with(|i| i.gc(grace_ms))?;
        let cleaned = self.core.backend().clean_up(grace_ms)?;
        let report = GcReport {
            temporary_files_removed: cleaned.temporary,
            outboards_removed: self.clean_outboards(grace_ms)?,
            aliases_removed: self.clean_aliases()?,
            owner_spaces_removed: cleaned.empty_spaces,
            ..report
        };
        self.record_gc(&report, grace, started);
        Ok(report)
    }

    /// Under private dedup, settles what `owner`'s releases left waiting
    /// (see [`settle`](Self::settle)): finishes the
    /// deletions they started, with their outboards, then frees their bytes
    /// in its quota. Returns how many deletions it finished.
    pub(crate) fn settle_owner(&self, owner: &str) -> Result<u64, Error> {
        if !self.core.private_dedup() {
            return Ok(0);
        }
        // The core's deletion takes each outboard with its blob.
        let finished = self.core.with(|i| i.settle(owner))?;
        Ok(finished.len() as u64)
    }

    /// Removes outboards whose blob is gone (deleted, quarantined, or
    /// collected just now), older than the grace period. An outboard is a
    /// function of its blob's content, so this is the one rule about them:
    /// one that races a put of the same content is at worst rebuilt by the
    /// next range read.
    fn clean_outboards(&self, grace_ms: u64) -> Result<u64, Error> {
        let backend = self.core.backend();
        let now = backend.now();
        let mut removed = 0;
        let mut after: Option<Side> = None;
        loop {
            let page = backend.list_side(SideKind::Outboard, after.as_ref(), 1000)?;
            for outboard in &page {
                let Side::Outboard(blob) = outboard.key else {
                    continue;
                };
                if outboard.modified <= now.saturating_sub(grace_ms)
                    && backend.blob_size(&blob)?.is_none()
                    && backend.delete_side(&outboard.key)?
                {
                    removed += 1;
                }
            }
            match page.last() {
                Some(last) if page.len() == 1000 => after = Some(last.key),
                _ => return Ok(removed),
            }
        }
    }

    /// Brings a store of format 1 (artifact records listing every owner) to
    /// format 2 (owner counts, per-owner index entries) in place, then marks
    /// it as this version's format, 3 (the backend's [`finish_migration`]). Idempotent and
    /// safe to interrupt: run it again. Run it with nothing else using the
    /// store. Returns how many artifact records it rewrote.
    ///
    /// [`finish_migration`]: crate::backend::Backend::finish_migration
    #[crate::traced(migrate)]
    pub fn migrate(&self) -> Result<u64, Error> {
        let migrated = self.core.with(|i| i.migrate())?;
        self.core.backend().finish_migration()?;
        Ok(migrated)
    }

    /// Moves the content of `hash` out of the store (the file backend keeps
    /// it in `DIR/quarantine/`); its record stays, so `get` reports the
    /// content missing until a put of the right content stores it again.
    /// Returns whether there was content to move.
    #[crate::traced(quarantine, hash = hash)]
    pub fn quarantine(&self, hash: &Hash) -> Result<bool, Error> {
        Ok(self.core.backend().quarantine_blob(hash)?)
    }
}

//! The file backend's side objects ([`Side`]): outboards, aliases and
//! notes at the paths the layout gives them (`outboards/ab/…`,
//! `aliases/ab/<sha256 hex>`, `notes/<name>`), quarantined blobs as
//! `quarantine/HASH.MS` (MS: when it was moved, in ms since the epoch),
//! all written like every file (temporary file, sync, rename, directory
//! sync) through the [`Fs`] trait.

use std::path::PathBuf;

use super::{FileBackend, IoContext};
use crate::Hash;
use crate::backend::fs::Fs;
use crate::backend::{Backend, BackendResult, Side, SideInfo, SideKind, layout, millis};

/// The folder of quarantined blobs.
const QUARANTINE: &str = "quarantine";

impl<F: Fs> FileBackend<F> {
    /// Where the side object `key` lives; for a quarantined blob, its
    /// newest copy (`None`: there is none).
    fn side_path(&self, key: &Side) -> BackendResult<Option<PathBuf>> {
        Ok(Some(match key {
            Side::Outboard(hash) => self.outboard_path(hash),
            Side::Alias(digest) => self.root.join(layout::alias_key(digest)),
            Side::Note(note) => self.root.join(layout::note_key(*note)),
            Side::Quarantined(hash) => {
                let copies = self.quarantined()?;
                match copies.into_iter().rfind(|(k, _, _)| k == hash) {
                    Some((_, _, name)) => self.root.join(QUARANTINE).join(name),
                    None => return Ok(None),
                }
            }
        }))
    }

    /// The folder of `kind`.
    fn side_folder(kind: SideKind) -> &'static str {
        match kind {
            SideKind::Outboard => layout::OUTBOARDS,
            SideKind::Alias => layout::ALIASES,
            SideKind::Note => layout::NOTES,
            SideKind::Quarantined => QUARANTINE,
        }
    }

    /// [`Backend::write_side`](crate::backend::Backend::write_side). Each folder is
    /// made by its first object (stores made before it have none), synced
    /// into the root like every directory.
    pub(super) fn write_side_file(&self, key: &Side, data: &[u8]) -> BackendResult<()> {
        self.ensure_dir(&self.root.join(Self::side_folder(key.kind())))?;
        let (path, tag) = match key {
            Side::Quarantined(hash) => {
                let name = format!("{}.{}", layout::name(hash), self.now());
                (self.root.join(QUARANTINE).join(name), layout::name(hash))
            }
            Side::Note(note) => (self.root.join(layout::note_key(*note)), note.name().into()),
            Side::Outboard(hash) => (self.outboard_path(hash), layout::name(hash)),
            Side::Alias(digest) => (
                self.root.join(layout::alias_key(digest)),
                layout::name(&digest.as_key()),
            ),
        };
        self.write_atomically(&path, data, &tag)
    }

    /// [`Backend::read_side_ranges`](crate::backend::Backend::read_side_ranges): one
    /// open file for all the ranges, so one version of the object.
    pub(super) fn read_side_file(
        &self,
        key: &Side,
        ranges: &[(u64, u64)],
    ) -> BackendResult<Option<Vec<Vec<u8>>>> {
        let Some(path) = self.side_path(key)? else {
            return Ok(None);
        };
        self.fs
            .read_ranges(&path, ranges)
            .found_at("reading", &path)
    }

    /// [`Backend::read_side`](crate::backend::Backend::read_side).
    pub(super) fn read_side_whole(&self, key: &Side) -> BackendResult<Option<Vec<u8>>> {
        let Some(path) = self.side_path(key)? else {
            return Ok(None);
        };
        self.fs.read(&path).found_at("reading", &path)
    }

    /// [`Backend::side_size`](crate::backend::Backend::side_size).
    pub(super) fn side_file_size(&self, key: &Side) -> BackendResult<Option<u64>> {
        let Some(path) = self.side_path(key)? else {
            return Ok(None);
        };
        let stat = self.fs.stat(&path).found_at("inspecting", &path)?;
        Ok(stat.map(|(size, _)| size))
    }

    /// [`Backend::delete_side`](crate::backend::Backend::delete_side): a
    /// quarantined blob's every copy.
    pub(super) fn delete_side_file(&self, key: &Side) -> BackendResult<bool> {
        if let Side::Quarantined(hash) = key {
            let mut removed = false;
            for (_, _, name) in self.quarantined()?.into_iter().filter(|c| c.0 == *hash) {
                removed |= self.remove(&self.root.join(QUARANTINE).join(name))?;
            }
            return Ok(removed);
        }
        match self.side_path(key)? {
            Some(path) => self.remove(&path),
            None => Ok(false),
        }
    }

    /// [`Backend::list_side`](crate::backend::Backend::list_side).
    pub(super) fn list_side_files(
        &self,
        kind: SideKind,
        after: Option<&Side>,
        limit: u32,
    ) -> BackendResult<Vec<SideInfo>> {
        crate::backend::check_listed_after(kind, after)?;
        let base = self.root.join(Self::side_folder(kind));
        if self.fs.stat(&base).found_at("inspecting", &base)?.is_none() {
            return Ok(Vec::new());
        }
        let limit = limit as usize;
        let mut out = Vec::new();
        match kind {
            SideKind::Quarantined => {
                for (hash, modified, name) in self.quarantined()? {
                    let key = Side::Quarantined(hash);
                    if after.is_some_and(|a| key <= *a) {
                        continue;
                    }
                    let path = base.join(name);
                    if let Some((size, _)) = self.fs.stat(&path).found_at("inspecting", &path)? {
                        out.push(SideInfo {
                            key,
                            size,
                            modified,
                        });
                    }
                    if out.len() >= limit {
                        break;
                    }
                }
            }
            SideKind::Note => {
                let names = self.fs.list_dir(&base).found_at("listing", &base)?;
                let mut notes: Vec<_> = names
                    .iter()
                    .flatten()
                    .filter_map(|n| layout_note(n))
                    .map(Side::Note)
                    .filter(|k| after.is_none_or(|a| k > a))
                    .collect();
                notes.sort_unstable();
                for key in notes.into_iter().take(limit) {
                    self.push_listed(&mut out, key)?;
                }
            }
            _ => {
                let after = after.and_then(Side::hash_key);
                let folder = Self::side_folder(kind);
                for hash in self.list_keys(folder, after.as_ref(), limit as u32)? {
                    if let Some(key) = Side::of_kind(kind, hash) {
                        self.push_listed(&mut out, key)?;
                    }
                }
            }
        }
        Ok(out)
    }

    /// Adds `key`, with its size and time, to a listing (unless it was
    /// deleted since).
    fn push_listed(&self, out: &mut Vec<SideInfo>, key: Side) -> BackendResult<()> {
        let Some(path) = self.side_path(&key)? else {
            return Ok(());
        };
        if let Some((size, modified)) = self.fs.stat(&path).found_at("inspecting", &path)? {
            out.push(SideInfo {
                key,
                size,
                modified: millis(modified),
            });
        }
        Ok(())
    }

    /// The quarantined copies `(hash, when moved, file name)`, in order.
    fn quarantined(&self) -> BackendResult<Vec<(Hash, u64, String)>> {
        let dir = self.root.join(QUARANTINE);
        let names = (self.fs.list_dir(&dir).found_at("listing", &dir)?).unwrap_or_default();
        let mut copies: Vec<(Hash, u64, String)> = names
            .into_iter()
            .filter_map(|name| {
                let (key, when) = name.split_once('.')?;
                let key = layout::parse_name(key)?;
                let when = when.parse::<u64>().ok()?;
                Some((key, when, name))
            })
            .collect();
        copies.sort_unstable();
        Ok(copies)
    }

    /// [`Backend::quarantine_blob`](crate::backend::Backend::quarantine_blob): the
    /// blob's file renamed to `quarantine/HASH.MS`.
    pub(super) fn quarantine_file(&self, key: &Hash) -> BackendResult<bool> {
        let dir = self.root.join(QUARANTINE);
        self.ensure_dir(&dir)?;
        let dest = dir.join(format!("{}.{}", layout::name(key), self.now()));
        let from = self.blob_path(key);
        let moved = self
            .fs
            .rename(&from, &dest)
            .found_at("quarantining", &from)?;
        Ok(moved.is_some())
    }
}

/// The note a file in `notes/` holds, if it is one.
fn layout_note(name: &str) -> Option<crate::backend::Note> {
    crate::backend::Note::from_name(name)
}

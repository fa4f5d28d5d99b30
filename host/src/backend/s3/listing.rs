//! How the S3 backend lists: keys under `blobs/` and `records/` (one
//! listing, in key order, skipping foreign objects), an owner's folder, and
//! the owners.

use object_store::ObjectMeta;

use super::S3Backend;
use super::bucket::millis;
use crate::Hash;
use crate::backend::layout::{self, OwnerDirs};
use crate::backend::{BackendResult, Listed, Note, Side, SideInfo, SideKind, Space};

/// How many records `list_records` fetches at once.
const RECORD_FETCH_CONCURRENCY: usize = 16;

/// The folder of quarantined blobs (`quarantine/abcdef…`, not sharded).
pub(super) const QUARANTINE: &str = "quarantine";

/// A folder whose objects are named by hashes.
#[derive(Clone, Copy)]
pub(super) enum Folder {
    /// `blobs/`, `records/`, `outboards/` or `aliases/`, sharded by each
    /// key's first byte.
    Sharded(&'static str),
    /// `quarantine/`: every key in the folder itself.
    Flat(&'static str),
    /// `owners/1234…/`: one owner's index space.
    Owner(Hash),
}

impl Folder {
    /// The folder of `space`'s records.
    pub(super) fn of(space: Space) -> Self {
        match space {
            Space::Shared => Self::Sharded(layout::RECORDS),
            Space::Owner(owner) => Self::Owner(owner),
        }
    }

    fn root(self) -> String {
        match self {
            Self::Sharded(kind) | Self::Flat(kind) => kind.to_owned(),
            Self::Owner(owner) => OwnerDirs::Flat.dir(&owner),
        }
    }

    /// Where `key` lives in this folder.
    pub(super) fn key(self, key: &Hash) -> String {
        match self {
            Self::Sharded(kind) => layout::key_in(kind, key),
            Self::Flat(kind) => format!("{kind}/{}", layout::name(key)),
            Self::Owner(owner) => OwnerDirs::Flat.entry(&owner, key),
        }
    }
}

impl S3Backend {
    /// Up to `limit` keys in `folder` after `after`, ascending, skipping
    /// anything that is not named by a valid hash in its right place.
    pub(super) fn list_keyed(
        &self,
        folder: Folder,
        after: Option<&Hash>,
        limit: u32,
    ) -> BackendResult<Vec<(Hash, ObjectMeta)>> {
        let root = self.bucket.path(&folder.root());
        let mut cursor = after.map(|h| self.bucket.path(&folder.key(h)));
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let mut out = Vec::new();
        // Foreign objects are skipped, so keep listing until `limit` keys.
        loop {
            let want = limit.saturating_sub(out.len());
            let page = self.bucket.list(&root, cursor.as_ref(), want)?;
            let Some(last) = page.last() else { break };
            cursor = Some(last.location.clone());
            let full = page.len() == want;
            for meta in page {
                if let Some(key) = meta.location.filename().and_then(layout::parse_name)
                    && meta.location == self.bucket.path(&folder.key(&key))
                {
                    out.push((key, meta));
                }
            }
            if !full || out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// [`Backend::list_records`](crate::backend::Backend::list_records): a listing
    /// (an owner's space is its own folder, so a listing of it never sees
    /// anyone else's), then the records fetched [`RECORD_FETCH_CONCURRENCY`]
    /// at a time.
    pub(super) fn list_space(&self, space: Space, after: Option<&Hash>, limit: u32) -> Listed {
        let (keys, paths): (Vec<Hash>, Vec<_>) = self
            .list_keyed(Folder::of(space), after, limit)?
            .into_iter()
            .map(|(key, meta)| (key, meta.location))
            .unzip();
        let fetched = self.bucket.get_many(paths, RECORD_FETCH_CONCURRENCY)?;
        let mut out = Vec::with_capacity(fetched.len());
        for (key, (path, got)) in keys.into_iter().zip(fetched) {
            // A record deleted between the listing and the read is simply gone.
            if let Some(bytes) = got {
                let what = format_args!("s3 record {path}");
                out.push((key, layout::decode_record(&bytes, what)?));
            }
        }
        Ok(out)
    }

    /// [`Backend::list_owners`](crate::backend::Backend::list_owners): the folders
    /// under `owners/` named by a hash.
    pub(super) fn list_owner_keys(
        &self,
        after: Option<&Hash>,
        limit: u32,
    ) -> BackendResult<Vec<Hash>> {
        let folders = self
            .bucket
            .list_folders(&self.bucket.path(layout::OWNERS))?;
        let mut owners: Vec<Hash> = folders
            .iter()
            .filter_map(|p| p.filename().and_then(layout::parse_name))
            .filter(|o| after.is_none_or(|a| o > a))
            .collect();
        owners.sort_unstable();
        owners.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(owners)
    }

    /// [`Backend::list_side`](crate::backend::Backend::list_side): the folder of
    /// `kind`, named by hashes (notes: by their names).
    pub(super) fn list_sides(
        &self,
        kind: SideKind,
        after: Option<&Side>,
        limit: u32,
    ) -> BackendResult<Vec<SideInfo>> {
        crate::backend::check_listed_after(kind, after)?;
        let folder = match kind {
            SideKind::Outboard => Folder::Sharded(layout::OUTBOARDS),
            SideKind::Alias => Folder::Sharded(layout::ALIASES),
            SideKind::Quarantined => Folder::Flat(QUARANTINE),
            SideKind::Note => return self.list_notes(after, limit),
        };
        let after = after.and_then(Side::hash_key);
        Ok(self
            .list_keyed(folder, after.as_ref(), limit)?
            .into_iter()
            .filter_map(|(key, meta)| {
                Some(SideInfo {
                    key: Side::of_kind(kind, key)?,
                    size: meta.size,
                    modified: millis(&meta),
                })
            })
            .collect())
    }

    /// The notes under `notes/`, in order.
    fn list_notes(&self, after: Option<&Side>, limit: u32) -> BackendResult<Vec<SideInfo>> {
        let root = self.bucket.path(layout::NOTES);
        let mut out: Vec<SideInfo> = self
            .bucket
            .list(&root, None, usize::MAX)?
            .into_iter()
            .filter_map(|meta| {
                let note = Note::from_name(meta.location.filename()?)?;
                Some(SideInfo {
                    key: Side::Note(note),
                    size: meta.size,
                    modified: millis(&meta),
                })
            })
            .filter(|i| after.is_none_or(|a| i.key > *a))
            .collect();
        out.sort_unstable_by_key(|i| i.key);
        out.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(out)
    }
}

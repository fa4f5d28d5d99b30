//! How the S3 backend lists: keys under `blobs/` and `records/` (one
//! listing, in key order, skipping foreign objects), an owner's folder, and
//! the owners.

use object_store::ObjectMeta;

use super::S3Backend;
use crate::backend::VersionedRecord;
use crate::backend::layout::{self, OwnerDirs};
use crate::{BackendError, Hash};

/// How many records `list_records` fetches at once.
const RECORD_FETCH_CONCURRENCY: usize = 16;

impl S3Backend {
    /// The keys under a `blobs/` or `records/` folder, skipping anything
    /// that is not named by a valid hash in its right shard.
    pub(super) fn list_keyed(
        &self,
        kind: &str,
        after: Option<&Hash>,
        limit: u32,
    ) -> Result<Vec<(Hash, ObjectMeta)>, BackendError> {
        let folder = self.bucket.path(kind);
        let mut cursor = after.map(|h| self.bucket.path(&layout::key_in(kind, h)));
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let mut out = Vec::new();
        // Foreign objects are skipped, so keep listing until `limit` keys.
        loop {
            let want = limit.saturating_sub(out.len());
            let page = self.bucket.list(&folder, cursor.as_ref(), want)?;
            let Some(last) = page.last() else { break };
            cursor = Some(last.location.clone());
            let full = page.len() == want;
            for meta in page {
                let mut parts = meta.location.parts().collect::<Vec<_>>().into_iter().rev();
                let (Some(name), Some(shard)) = (parts.next(), parts.next()) else {
                    continue;
                };
                if let Some(key) = layout::parse_name(name.as_ref())
                    && layout::shard(&key) == shard.as_ref()
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

    /// [`Backend::list_records`](crate::Backend::list_records): a listing,
    /// then the records fetched [`RECORD_FETCH_CONCURRENCY`] at a time.
    pub(super) fn list_record_keys(
        &self,
        after: Option<&Hash>,
        limit: u32,
    ) -> Result<Vec<(Hash, VersionedRecord)>, BackendError> {
        let (keys, paths): (Vec<Hash>, Vec<_>) = self
            .list_keyed(layout::RECORDS, after, limit)?
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

    /// [`Backend::list_entries`](crate::Backend::list_entries): one folder
    /// per owner, so a listing of it never sees anyone else's.
    pub(super) fn list_space(
        &self,
        owner: &Hash,
        after: Option<&Hash>,
        limit: u32,
    ) -> Result<Vec<(Hash, VersionedRecord)>, BackendError> {
        let folder = self.bucket.path(&OwnerDirs::Flat.dir(owner));
        let offset = after.map(|a| self.entry_path(owner, a));
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let mut out = Vec::new();
        for meta in self.bucket.list(&folder, offset.as_ref(), limit)? {
            let Some(key) = meta.location.filename().and_then(layout::parse_name) else {
                continue;
            };
            // An entry deleted since the listing is simply gone.
            if let Some(entry) = self.read_at(&meta.location)? {
                out.push((key, entry));
            }
        }
        Ok(out)
    }

    /// [`Backend::list_owners`](crate::Backend::list_owners): the folders
    /// under `owners/` named by a hash.
    pub(super) fn list_owner_keys(
        &self,
        after: Option<&Hash>,
        limit: u32,
    ) -> Result<Vec<Hash>, BackendError> {
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
}

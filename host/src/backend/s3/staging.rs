//! A large put staged by the S3 backend: gathered in memory up to one
//! [`PART`] and stored with one `PUT`; beyond it, uploaded in parts of
//! [`PART`] to `staging/RANDOM` as it comes, then copied to its blob on the
//! server (`CopyObject`, atomic like a `PUT`). Either way a staging holds
//! at most one part in memory ([`held_in_memory`]), which an app's memory
//! limit counts.

use object_store::path::Path;
use object_store::{MultipartUpload, PutPayload};

use super::S3Backend;
use super::bucket::{Lane, failed};
use crate::backend::{BackendResult, Staging, new_version};
use crate::{BackendError, Hash};

/// The part size of a staged upload (S3 wants at least 5 MiB but the
/// last), and the most staged content kept in memory: up to it, content is
/// written with one `PUT`; beyond it, uploaded in parts as it comes.
const PART: usize = 8 << 20;

/// [`Backend::staged_in_memory`](crate::Backend::staged_in_memory): one
/// part's buffer, from the first byte staged.
pub(super) fn held_in_memory(staged: u64) -> u64 {
    if staged == 0 { 0 } else { PART as u64 }
}

/// A large put's content: gathered in memory up to one [`PART`], else
/// uploaded in parts to `path` as it comes.
pub(super) struct S3Staging {
    path: Path,
    /// What is not yet uploaded.
    buffer: Vec<u8>,
    /// Small content, once stored by a single `PUT`.
    whole: Option<PutPayload>,
    /// The multipart upload, from the first part until it is completed.
    upload: Option<Box<dyn MultipartUpload>>,
    /// Whether `path` holds the whole content (the upload completed).
    uploaded: bool,
}

impl S3Backend {
    /// [`Backend::stage`](crate::Backend::stage): nothing sent yet.
    pub(super) fn start_staging(&self) -> Staging {
        Staging::new(S3Staging {
            path: self
                .bucket
                .path(&format!("staging/{:016x}", new_version(None))),
            buffer: Vec::new(),
            whole: None,
            upload: None,
            uploaded: false,
        })
    }

    /// [`Backend::append_staged`](crate::Backend::append_staged).
    pub(super) fn append_to_staging(
        &self,
        staging: &mut Staging,
        data: &[u8],
    ) -> BackendResult<()> {
        let staged = staging.to_append::<S3Staging>()?;
        if staged.uploaded {
            return Err(BackendError::Io(format!(
                "{} was already uploaded: it cannot grow",
                staged.path
            )));
        }
        if staged.upload.is_none() && staged.buffer.len().saturating_add(data.len()) > PART {
            staged.upload = Some(self.bucket.upload(&staged.path)?);
        }
        self.feed_parts(staged, data)
    }

    /// [`Backend::finish_staged`](crate::Backend::finish_staged): uploads
    /// the last part and completes the upload, if there is one; gives the
    /// staging back.
    pub(super) fn complete_staging(&self, staged: &mut S3Staging) -> BackendResult<()> {
        if staged.upload.is_none() {
            // Small content stays in memory until it is stored with one PUT.
            return Ok(());
        }
        if !staged.buffer.is_empty() {
            let last = std::mem::take(&mut staged.buffer);
            self.upload_part(staged, last)?;
        }
        if let Some(mut upload) = staged.upload.take() {
            let (mut upload, result) = self.bucket.run(async move {
                let result = upload.complete().await;
                (upload, result)
            })?;
            if let Err(e) = result {
                // Not completed: abort it, so its parts do not linger.
                let _ = self.bucket.run(async move { upload.abort().await });
                return Err(failed("completing the upload of", &staged.path, &e));
            }
            staged.uploaded = true;
        }
        Ok(())
    }

    /// [`Backend::write_staged`](crate::Backend::write_staged): one `PUT`
    /// of small content, else a server-side copy of the upload.
    pub(super) fn store_staging(&self, staging: &mut Staging, key: &Hash) -> BackendResult<()> {
        let staged = staging.to_store::<S3Staging>()?;
        self.complete_staging(staged)?;
        let to = self.blob_path(key);
        if !staged.uploaded {
            // Kept as one payload, so that storing it again copies nothing.
            let payload = match &staged.whole {
                Some(payload) => payload.clone(),
                None => {
                    let payload = PutPayload::from(std::mem::take(&mut staged.buffer));
                    staged.whole = Some(payload.clone());
                    payload
                }
            };
            return self.bucket.put(Lane::Blob, &to, payload);
        }
        self.bucket
            .copy(&staged.path, &to)?
            .map_err(|e| failed("COPY to", &to, &e))
    }

    /// [`Backend::discard_staged`](crate::Backend::discard_staged): aborts
    /// an upload under way, deletes a completed one.
    pub(super) fn drop_staging(&self, staging: Staging) -> BackendResult<()> {
        let mut staged = staging.into_state::<S3Staging>()?;
        if let Some(mut upload) = staged.upload.take() {
            let result = self.bucket.run(async move { upload.abort().await })?;
            result.map_err(|e| failed("aborting the upload of", &staged.path, &e))?;
        }
        if staged.uploaded {
            self.bucket.delete(&staged.path)?;
        }
        Ok(())
    }

    /// Fills the buffer up to a part and, once an upload has started,
    /// uploads each full part, as often as `data` allows: every byte is
    /// copied once, and at most one part is held (the next buffer is made
    /// only once the full one has been sent).
    fn feed_parts(&self, staged: &mut S3Staging, data: &[u8]) -> BackendResult<()> {
        let mut rest = data;
        while !rest.is_empty() {
            if staged.buffer.capacity() < PART {
                staged.buffer.reserve_exact(PART - staged.buffer.len());
            }
            let room = PART.saturating_sub(staged.buffer.len());
            let (now, later) = rest.split_at(room.min(rest.len()));
            staged.buffer.extend_from_slice(now);
            rest = later;
            if staged.buffer.len() >= PART && staged.upload.is_some() {
                let part = std::mem::take(&mut staged.buffer);
                self.upload_part(staged, part)?;
            }
        }
        Ok(())
    }

    fn upload_part(&self, staged: &mut S3Staging, part: Vec<u8>) -> BackendResult<()> {
        let upload = staged.upload.as_mut().ok_or_else(|| {
            BackendError::Io(format!("no upload in progress for {}", staged.path))
        })?;
        let sending = upload.put_part(PutPayload::from(part));
        self.bucket
            .run(sending)?
            .map_err(|e| failed("uploading a part of", &staged.path, &e))
    }
}

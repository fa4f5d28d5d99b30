//! A large put staged by the S3 backend: gathered in memory up to one
//! [`PART`] and stored with one `PUT`; beyond it, uploaded in parts of
//! [`PART`] to `staging/RANDOM` as it comes, then copied to its blob on the
//! server (`CopyObject`, atomic like a `PUT`). Either way a staging holds
//! at most one part in memory ([`held_in_memory`]), which an app's memory
//! limit counts.

use object_store::path::Path;
use object_store::{MultipartUpload, PutPayload};

use std::sync::Arc;

use super::S3Backend;
use super::bucket::{Bucket, Lane, failed};
use crate::backend::{BackendResult, Staged, Staging, layout, new_version};
use crate::{BackendError, Hash};

/// The part size of a staged upload (S3 wants at least 5 MiB but the
/// last), and the most staged content kept in memory: up to it, content is
/// written with one `PUT`; beyond it, uploaded in parts as it comes.
const PART: usize = 8 << 20;

/// [`Backend::staged_in_memory`](crate::backend::Backend::staged_in_memory): one
/// part's buffer, from the first byte staged.
pub(super) fn held_in_memory(staged: u64) -> u64 {
    if staged == 0 { 0 } else { PART as u64 }
}

/// A large put's content: gathered in memory up to one [`PART`], else
/// uploaded in parts to `path` as it comes.
struct S3Staging {
    bucket: Arc<Bucket>,
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
    /// [`Backend::stage`](crate::backend::Backend::stage): nothing sent yet.
    pub(super) fn start_staging(&self) -> Staging {
        Staging::new(S3Staging {
            bucket: self.bucket.clone(),
            path: self
                .bucket
                .path(&format!("staging/{:016x}", new_version(None))),
            buffer: Vec::new(),
            whole: None,
            upload: None,
            uploaded: false,
        })
    }
}

impl Staged for S3Staging {
    fn append(&mut self, data: &[u8]) -> BackendResult<()> {
        if self.uploaded {
            return Err(BackendError::Io(format!(
                "{} was already uploaded: it cannot grow",
                self.path
            )));
        }
        if self.upload.is_none() && self.buffer.len().saturating_add(data.len()) > PART {
            self.upload = Some(self.bucket.upload(&self.path)?);
        }
        self.feed_parts(data)
    }

    /// Uploads the last part and completes the upload, if there is one.
    fn finish(&mut self) -> BackendResult<()> {
        if self.upload.is_none() {
            // Small content stays in memory until it is stored with one PUT.
            return Ok(());
        }
        if !self.buffer.is_empty() {
            let last = std::mem::take(&mut self.buffer);
            self.upload_part(last)?;
        }
        if let Some(mut upload) = self.upload.take() {
            let (mut upload, result) = self.bucket.run(async move {
                let result = upload.complete().await;
                (upload, result)
            })?;
            if let Err(e) = result {
                // Not completed: abort it, so its parts do not linger.
                let _ = self.bucket.run(async move { upload.abort().await });
                return Err(failed("completing the upload of", &self.path, &e));
            }
            self.uploaded = true;
        }
        Ok(())
    }

    /// One `PUT` of small content, else a server-side copy of the upload.
    fn store(&mut self, key: &Hash) -> BackendResult<()> {
        self.finish()?;
        let to = self.bucket.path(&layout::blob_key(key));
        if !self.uploaded {
            // Kept as one payload, so that storing it again copies nothing.
            let payload = match &self.whole {
                Some(payload) => payload.clone(),
                None => {
                    let payload = PutPayload::from(std::mem::take(&mut self.buffer));
                    self.whole = Some(payload.clone());
                    payload
                }
            };
            return self.bucket.put(Lane::Blob, &to, payload);
        }
        self.bucket
            .copy(&self.path, &to)?
            .map_err(|e| failed("COPY to", &to, &e))
    }

    /// Aborts an upload under way, deletes a completed one.
    fn discard(mut self: Box<Self>) -> BackendResult<()> {
        if let Some(mut upload) = self.upload.take() {
            let result = self.bucket.run(async move { upload.abort().await })?;
            result.map_err(|e| failed("aborting the upload of", &self.path, &e))?;
        }
        if self.uploaded {
            self.bucket.delete(&self.path)?;
        }
        Ok(())
    }
}

impl S3Staging {
    /// Fills the buffer up to a part and, once an upload has started,
    /// uploads each full part, as often as `data` allows: every byte is
    /// copied once, and at most one part is held (the next buffer is made
    /// only once the full one has been sent).
    fn feed_parts(&mut self, data: &[u8]) -> BackendResult<()> {
        let mut rest = data;
        while !rest.is_empty() {
            if self.buffer.capacity() < PART {
                self.buffer.reserve_exact(PART - self.buffer.len());
            }
            let room = PART.saturating_sub(self.buffer.len());
            let (now, later) = rest.split_at(room.min(rest.len()));
            self.buffer.extend_from_slice(now);
            rest = later;
            if self.buffer.len() >= PART && self.upload.is_some() {
                let part = std::mem::take(&mut self.buffer);
                self.upload_part(part)?;
            }
        }
        Ok(())
    }

    fn upload_part(&mut self, part: Vec<u8>) -> BackendResult<()> {
        let upload = self
            .upload
            .as_mut()
            .ok_or_else(|| BackendError::Io(format!("no upload in progress for {}", self.path)))?;
        let sending = upload.put_part(PutPayload::from(part));
        self.bucket
            .run(sending)?
            .map_err(|e| failed("uploading a part of", &self.path, &e))
    }
}

//! The async bridge: two `object_store` clients on the bucket (short time
//! limits for records and locks, [`BLOB_TIMEOUT`] for blob transfers) and
//! the small tokio runtime they run on, behind blocking calls that name the
//! request and the object when they fail.

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{
    ClientOptions, MultipartUpload, ObjectMeta, ObjectStore, ObjectStoreExt, PutPayload,
    RetryConfig,
};

use super::config::{BLOB_TIMEOUT, S3Config, request_timeout, retry_timeout};
use crate::BackendError;
use crate::backend::BackendResult;

/// An object fetched by [`Bucket::get_many`]: its path and its bytes, if any.
pub(super) type Fetched = (Path, Option<Vec<u8>>);

/// Which of the two clients a request goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Lane {
    /// Records, locks and small requests: time limits derived from the lease.
    Short,
    /// Blob transfers: [`BLOB_TIMEOUT`].
    Blob,
}

/// The bucket, reached through a runtime of its own.
pub(super) struct Bucket {
    short: Arc<AmazonS3>,
    blob: Arc<AmazonS3>,
    prefix: String,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for Bucket {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// A failed request, naming what it was and on which object.
pub(super) fn failed(op: &str, path: &Path, e: &object_store::Error) -> BackendError {
    BackendError::Io(format!("s3 {op} {path}: {e}"))
}

/// A request's result with a missing object as `None`.
pub(super) trait Found<T> {
    /// `Ok(None)` for `NotFound`, else as it was.
    fn found(self) -> object_store::Result<Option<T>>;
}

impl<T> Found<T> for object_store::Result<T> {
    fn found(self) -> object_store::Result<Option<T>> {
        match self {
            Ok(t) => Ok(Some(t)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// When the server last wrote the object, in milliseconds since the Unix epoch.
pub(super) fn millis(meta: &ObjectMeta) -> u64 {
    u64::try_from(meta.last_modified.timestamp_millis()).unwrap_or(0)
}

fn client(config: &S3Config, timeout: Duration, retry: Duration) -> BackendResult<AmazonS3> {
    let mut builder = AmazonS3Builder::new()
        .with_bucket_name(&config.bucket)
        .with_region(&config.region)
        .with_access_key_id(&config.access_key_id)
        .with_secret_access_key(&config.secret_access_key)
        .with_virtual_hosted_style_request(false)
        .with_client_options(
            ClientOptions::new()
                .with_timeout(timeout)
                .with_connect_timeout(Duration::from_secs(5)),
        )
        .with_retry(RetryConfig {
            max_retries: 5,
            retry_timeout: retry,
            ..RetryConfig::default()
        });
    if let Some(endpoint) = &config.endpoint {
        builder = builder
            .with_endpoint(endpoint)
            .with_allow_http(endpoint.starts_with("http://"));
    }
    builder
        .build()
        .map_err(|e| BackendError::Io(format!("s3 configuration: {e}")))
}

impl Bucket {
    /// The two clients and the runtime, for `config` with `lease`.
    pub(super) fn connect(config: &S3Config, lease: Duration) -> BackendResult<Self> {
        let short = client(config, request_timeout(lease), retry_timeout(lease))?;
        let blob = client(config, BLOB_TIMEOUT, BLOB_TIMEOUT)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("artifacts-s3")
            .enable_all()
            .build()
            .map_err(|e| BackendError::io("starting the S3 client runtime", &e))?;
        Ok(Self {
            short: Arc::new(short),
            blob: Arc::new(blob),
            prefix: config.prefix.trim_matches('/').to_owned(),
            runtime: Some(runtime),
        })
    }

    /// `rest` under the store's prefix.
    pub(super) fn path(&self, rest: &str) -> Path {
        if self.prefix.is_empty() {
            Path::from(rest)
        } else {
            Path::from(format!("{}/{rest}", self.prefix))
        }
    }

    /// Runs a request on the bucket's own runtime and waits for it; works
    /// from any thread, inside another async runtime or not.
    pub(super) fn run<T: Send + 'static>(
        &self,
        fut: impl Future<Output = T> + Send + 'static,
    ) -> BackendResult<T> {
        let rt = self
            .runtime
            .as_ref()
            .ok_or_else(|| BackendError::Io("the S3 client has shut down".into()))?;
        futures::executor::block_on(rt.spawn(fut))
            .map_err(|e| BackendError::Io(format!("s3 request task failed: {e}")))
    }

    /// The client of `lane`.
    pub(super) fn client(&self, lane: Lane) -> Arc<AmazonS3> {
        match lane {
            Lane::Short => self.short.clone(),
            Lane::Blob => self.blob.clone(),
        }
    }

    /// Runs `request` with `lane`'s client on `path`; a failure says `op` and `path`.
    fn request<T, F>(
        &self,
        lane: Lane,
        op: &str,
        path: &Path,
        request: impl FnOnce(Arc<AmazonS3>, Path) -> F,
    ) -> BackendResult<T>
    where
        T: Send + 'static,
        F: Future<Output = object_store::Result<T>> + Send + 'static,
    {
        self.run(request(self.client(lane), path.clone()))?
            .map_err(|e| failed(op, path, &e))
    }

    /// The whole object, or `None` if there is none.
    pub(super) fn get(&self, lane: Lane, path: &Path) -> BackendResult<Option<Vec<u8>>> {
        let got = self.request(lane, "GET", path, |s, p| async move {
            match s.get(&p).await.found()? {
                Some(r) => r.bytes().await.map(Some),
                None => Ok(None),
            }
        })?;
        Ok(got.map(|b| b.to_vec()))
    }

    /// Bytes `range` of the object, or `None` if there is none.
    pub(super) fn get_range(
        &self,
        path: &Path,
        range: Range<u64>,
    ) -> BackendResult<Option<Vec<u8>>> {
        let got = self.request(Lane::Blob, "GET range", path, |s, p| async move {
            s.get_range(&p, range).await.found()
        })?;
        Ok(got.map(|b| b.to_vec()))
    }

    /// Bytes `ranges` of the object, fetched together (object_store
    /// coalesces near ones and fetches the rest concurrently), or `None` if
    /// there is none. Every range must lie within the object.
    pub(super) fn get_ranges(
        &self,
        path: &Path,
        ranges: Vec<Range<u64>>,
    ) -> BackendResult<Option<Vec<Vec<u8>>>> {
        let got = self.request(Lane::Blob, "GET ranges", path, |s, p| async move {
            s.get_ranges(&p, &ranges).await.found()
        })?;
        Ok(got.map(|parts| parts.into_iter().map(|b| b.to_vec()).collect()))
    }

    /// The object's metadata, or `None` if there is none.
    pub(super) fn head(&self, path: &Path) -> BackendResult<Option<ObjectMeta>> {
        self.request(Lane::Short, "HEAD", path, |s, p| async move {
            s.head(&p).await.found()
        })
    }

    /// Writes the whole object.
    pub(super) fn put(
        &self,
        lane: Lane,
        path: &Path,
        data: impl Into<PutPayload>,
    ) -> BackendResult<()> {
        let payload = data.into();
        self.request(lane, "PUT", path, |s, p| async move {
            s.put(&p, payload).await.map(drop)
        })
    }

    /// Deletes the object (there being none is fine).
    pub(super) fn delete(&self, path: &Path) -> BackendResult<()> {
        self.request(Lane::Short, "DELETE", path, |s, p| async move {
            s.delete(&p).await.found().map(drop)
        })
    }

    /// Copies `from` to `to` on the server (atomic, like a `PUT`); the
    /// request's own result, for the caller to name.
    pub(super) fn copy(&self, from: &Path, to: &Path) -> BackendResult<object_store::Result<()>> {
        let (s, f, t) = (self.client(Lane::Blob), from.clone(), to.clone());
        self.run(async move { s.copy(&f, &t).await })
    }

    /// Starts a multipart upload to `path`.
    pub(super) fn upload(&self, path: &Path) -> BackendResult<Box<dyn MultipartUpload>> {
        self.request(Lane::Blob, "multipart upload of", path, |s, p| async move {
            s.put_multipart(&p).await
        })
    }

    /// Up to `limit` objects under `folder`, after `offset`, in key order.
    pub(super) fn list(
        &self,
        folder: &Path,
        offset: Option<&Path>,
        limit: usize,
    ) -> BackendResult<Vec<ObjectMeta>> {
        let offset = offset.cloned();
        let mut metas = self.request(Lane::Short, "LIST", folder, |s, f| async move {
            let stream = match &offset {
                Some(o) => s.list_with_offset(Some(&f), o),
                None => s.list(Some(&f)),
            };
            stream.take(limit).try_collect::<Vec<_>>().await
        })?;
        metas.sort_by(|a, b| a.location.cmp(&b.location));
        Ok(metas)
    }

    /// The folders directly under `folder`.
    pub(super) fn list_folders(&self, folder: &Path) -> BackendResult<Vec<Path>> {
        let listed = self.request(Lane::Short, "LIST", folder, |s, f| async move {
            s.list_with_delimiter(Some(&f)).await
        })?;
        Ok(listed.common_prefixes)
    }

    /// The objects at `paths` (`None` where there is none), fetched
    /// `concurrency` at a time, in order.
    pub(super) fn get_many(
        &self,
        paths: Vec<Path>,
        concurrency: usize,
    ) -> BackendResult<Vec<Fetched>> {
        let store = self.client(Lane::Short);
        let fetched = self.run(async move {
            futures::stream::iter(paths)
                .map(|path| {
                    let store = store.clone();
                    async move {
                        let got = match store.get(&path).await.found() {
                            Ok(Some(r)) => r.bytes().await.map(Some),
                            other => other.map(|_| None),
                        };
                        (path, got)
                    }
                })
                .buffered(concurrency)
                .collect::<Vec<_>>()
                .await
        })?;
        fetched
            .into_iter()
            .map(|(path, got)| match got {
                Ok(bytes) => Ok((path, bytes.map(|b| b.to_vec()))),
                Err(e) => Err(failed("GET", &path, &e)),
            })
            .collect()
    }
}

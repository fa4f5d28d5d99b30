//! [`S3Backend`]: blobs and records as objects in an S3 bucket (AWS S3,
//! Garage, MinIO, Ceph RGW), shared by any number of host processes.
//!
//! ```text
//! PREFIX/FORMAT                   "artifacts-store 2 s3": refuses foreign, older or newer layouts
//! PREFIX/blobs/ab/abcdef…         content, named by its hash, sharded by its first byte
//! PREFIX/records/ab/abcdef…       8-byte little-endian version, then the core's record
//! PREFIX/owners/1234…/abcdef…     an owner's index space (folder named by its owner
//!                                 key): entries and its usage record, stored as records are
//! PREFIX/locks/abcdef…/CLAIM      a claim on the record `abcdef…` (empty object)
//! PREFIX/locks/1234…-abcdef…/CLAIM a claim on the entry `abcdef…` of owner `1234…`
//! PREFIX/quarantine/abcdef…       damaged blobs moved aside by `verify --quarantine`
//! PREFIX/staging/RANDOM           a large put's content, uploaded in parts, then copied
//!                                 to its blob once hashed
//! ```
//!
//! # Why claims, not conditional writes
//!
//! A record is read, changed and written back, so two hosts changing it at
//! once must not both succeed. S3 offers `If-Match` / `If-None-Match` on
//! `PutObject` for that, but Garage (2.5) does not: it honours those headers
//! on reads only, and a conditional put simply overwrites. So this backend
//! needs nothing but what every S3 store gives: a `PUT` or `DELETE` that has
//! returned is seen by every later `LIST` (Garage: quorum writes and reads).
//!
//! Every record swap and guarded blob delete holds a short per-record lock
//! built from that alone. To take it, a host writes an empty claim object with
//! a fresh random name under `locks/KEY/`, then lists that folder. If its claim
//! is the only one, it holds the lock. Two hosts can never both hold it: each
//! wrote before it listed, so the later lister sees the other's claim. If
//! there are others, the oldest claim (by server time) stays and its host
//! lists again until the others are gone; the rest withdraw their claims and
//! wait for the folder to empty before claiming again, so a crowd of hosts
//! does not keep colliding.
//!
//! A host that dies holding a lock leaves its claim behind. A claim whose
//! server timestamp is more than [`LEASE`] older than a newer claim is stale
//! and is deleted by whoever sees it. A holder therefore gives up (with an
//! error, having written nothing) once it has held a lock for a quarter of
//! the lease, and every request is bounded in time, so a write cannot
//! land after its lease ran out. That is the one timing assumption here: the
//! bucket's servers' clocks agree to within a few seconds (Garage needs that
//! too) and no request takes longer than its timeout.
//!
//! Blobs are written without a lock: a `PUT` is atomic (readers see the old
//! object, none, or the whole new one), and the content under a key never
//! changes. So blob transfers (which may be large) go through a second
//! client with generous time limits ([`BLOB_TIMEOUT`]); only the lock's
//! requests need the short ones. Content over 16 MiB staged by a large put
//! is uploaded as a multipart upload in 8 MiB parts to `staging/`, then
//! copied to its blob on the server (`CopyObject`, atomic like a `PUT`). Every request is idempotent, so transport errors are retried
//! (a bounded number of times); what still fails surfaces as
//! [`BackendError::Io`] naming the operation and the object.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{
    ClientOptions, MultipartUpload, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig,
};

use super::{
    Backend, BlobInfo, Staging, SwapOutcome, VersionedRecord, foreign_staging, new_version,
};
use crate::{BackendError, Hash};

/// The contents of `PREFIX/FORMAT` for this layout.
pub const S3_FORMAT_MARKER: &str = "artifacts-store 2 s3\n";
/// The contents of `PREFIX/FORMAT` of the layout before owner indexes,
/// which `artifacts migrate` brings to this one.
pub const S3_FORMAT_MARKER_V1: &str = "artifacts-store 1 s3\n";

/// By default, a claim this much older (by the server's clock) than a newer
/// one is stale ([`S3Config::lease`]).
pub const LEASE: Duration = Duration::from_secs(60);

/// How long to keep trying to take a contended lock, beyond one lease
/// (a dead host's claim can only be broken a lease after it was written).
const LOCK_PATIENCE: Duration = Duration::from_secs(60);

/// One request's time limit: an eighth of the lease, from 1 s to 10 s.
fn request_timeout(lease: Duration) -> Duration {
    (lease / 8).clamp(Duration::from_secs(1), Duration::from_secs(10))
}

/// How long transport errors are retried: a quarter of the lease, from 1 s
/// to 20 s. A holder writes only within a quarter of the lease, so its last
/// request ends within 5/8 of it (leases under 16 s, for tests, are tighter
/// than that).
fn retry_timeout(lease: Duration) -> Duration {
    (lease / 4).clamp(Duration::from_secs(1), Duration::from_secs(20))
}

/// The time limit of one blob transfer (a `GET`, `PUT` or part of up to
/// 16 MiB, or a server-side copy), and how long its transport errors are
/// retried. Blob transfers hold no lock, so they need not be short.
pub const BLOB_TIMEOUT: Duration = Duration::from_secs(300);

/// Staged content up to this size is kept in memory and written with one
/// `PUT`; beyond it, it is uploaded in parts of [`PART`] as it comes.
const SINGLE_PUT_MAX: usize = 16 << 20;
/// The part size of a staged upload (S3 wants at least 5 MiB but the last).
const PART: usize = 8 << 20;

/// How many records `list_records` fetches at once.
const RECORD_FETCH_CONCURRENCY: usize = 16;

/// Where and how to reach the bucket.
#[derive(Clone, Default)]
pub struct S3Config {
    /// The endpoint, e.g. `http://127.0.0.1:3900`; `None` means AWS.
    pub endpoint: Option<String>,
    /// The bucket's name.
    pub bucket: String,
    /// A folder inside the bucket for this store (may be empty).
    pub prefix: String,
    /// The region (Garage's default is `garage`).
    pub region: String,
    /// The access key id.
    pub access_key_id: String,
    /// The secret access key (never printed).
    pub secret_access_key: String,
    /// How long a lock claim lives before another host may break it, should
    /// its holder have died ([`LEASE`] if `None`). A holder gives up, having
    /// written nothing, after a quarter of it, and request time limits are
    /// derived from it; use at least 16 s outside tests.
    pub lease: Option<Duration>,
}

impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<hidden>")
            .field("lease", &self.lease)
            .finish()
    }
}

impl S3Config {
    /// Parses `s3://BUCKET[/PREFIX]` and takes the rest from the standard
    /// environment: `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT`), `AWS_REGION`
    /// (default `garage`), `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`.
    pub fn from_url_and_env(url: &str) -> Result<Self, BackendError> {
        let rest = url.strip_prefix("s3://").ok_or_else(|| {
            BackendError::Io(format!("{url:?} is not an s3://BUCKET[/PREFIX] address"))
        })?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(BackendError::Io(format!("{url:?} names no bucket")));
        }
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let need = |name: &str| {
            var(name)
                .ok_or_else(|| BackendError::Io(format!("{name} is not set (needed for {url})")))
        };
        Ok(Self {
            endpoint: var("AWS_ENDPOINT_URL").or_else(|| var("AWS_ENDPOINT")),
            bucket: bucket.to_owned(),
            prefix: prefix.trim_matches('/').to_owned(),
            region: var("AWS_REGION").unwrap_or_else(|| "garage".to_owned()),
            access_key_id: need("AWS_ACCESS_KEY_ID")?,
            secret_access_key: need("AWS_SECRET_ACCESS_KEY")?,
            lease: None,
        })
    }
}

/// A backend in an S3 bucket; see the [module docs](self) for the layout and
/// how several hosts share it safely.
pub struct S3Backend {
    /// For records, locks and small requests: short time limits.
    store: Arc<AmazonS3>,
    /// For blob transfers: [`BLOB_TIMEOUT`].
    blobs: Arc<AmazonS3>,
    prefix: String,
    runtime: Option<tokio::runtime::Runtime>,
    location: String,
    lease: Duration,
    /// Opened by `migrate`: a store of format 1 is accepted.
    migrating: bool,
}

impl fmt::Debug for S3Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Backend")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl Drop for S3Backend {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

fn err(op: &str, path: &Path, e: &object_store::Error) -> BackendError {
    BackendError::Io(format!("s3 {op} {path}: {e}"))
}

fn is_not_found(e: &object_store::Error) -> bool {
    matches!(e, object_store::Error::NotFound { .. })
}

/// When the server last wrote the object, in milliseconds since the Unix epoch.
fn millis(meta: &object_store::ObjectMeta) -> u64 {
    u64::try_from(meta.last_modified.timestamp_millis()).unwrap_or(0)
}

impl S3Backend {
    /// Connects to the bucket and checks (or writes) the format marker.
    pub fn open(config: &S3Config) -> Result<Self, BackendError> {
        Self::open_mode(config, false)
    }

    /// Opens a store of this layout or the one before (format 1), for
    /// [`migrate`](crate::ArtifactStore::migrate) only.
    pub fn open_for_migration(config: &S3Config) -> Result<Self, BackendError> {
        Self::open_mode(config, true)
    }

    fn open_mode(config: &S3Config, migrating: bool) -> Result<Self, BackendError> {
        let lease = config.lease.unwrap_or(LEASE);
        let client = |timeout: Duration, retry: Duration| {
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
        };
        let store = client(request_timeout(lease), retry_timeout(lease))?;
        let blobs = client(BLOB_TIMEOUT, BLOB_TIMEOUT)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("artifacts-s3")
            .enable_all()
            .build()
            .map_err(|e| BackendError::io("starting the S3 client runtime", &e))?;
        let location = format!(
            "s3://{}/{} at {}",
            config.bucket,
            config.prefix,
            config.endpoint.as_deref().unwrap_or("AWS")
        );
        let this = Self {
            store: Arc::new(store),
            blobs: Arc::new(blobs),
            prefix: config.prefix.trim_matches('/').to_owned(),
            runtime: Some(runtime),
            location,
            lease,
            migrating,
        };
        this.check_format()?;
        Ok(this)
    }

    /// Where this backend keeps its objects (no credentials).
    pub fn location(&self) -> &str {
        &self.location
    }

    fn check_format(&self) -> Result<(), BackendError> {
        let marker = self.path("FORMAT");
        match self.get(&marker)? {
            Some(found) if found == S3_FORMAT_MARKER.as_bytes() => Ok(()),
            Some(found) if found == S3_FORMAT_MARKER_V1.as_bytes() && self.migrating => Ok(()),
            Some(found) if found == S3_FORMAT_MARKER_V1.as_bytes() => {
                Err(BackendError::Io(format!(
                    "{} is a store of format 1 (before per-owner indexes); run \
                     `artifacts --s3 URL migrate` once, with nothing else using it, \
                     to bring it to format 2",
                    self.location
                )))
            }
            Some(found) => Err(BackendError::Io(format!(
                "{} is not a store of this version (FORMAT says {:?})",
                self.location,
                String::from_utf8_lossy(&found).trim()
            ))),
            None => self.put(&marker, S3_FORMAT_MARKER.as_bytes().to_vec()),
        }
    }

    /// Runs a request on the backend's own runtime and waits for it; works
    /// from any thread, inside another async runtime or not.
    fn run<T: Send + 'static>(
        &self,
        fut: impl Future<Output = T> + Send + 'static,
    ) -> Result<T, BackendError> {
        let rt = self
            .runtime
            .as_ref()
            .ok_or_else(|| BackendError::Io("the S3 client has shut down".into()))?;
        futures::executor::block_on(rt.spawn(fut))
            .map_err(|e| BackendError::Io(format!("s3 request task failed: {e}")))
    }

    fn path(&self, rest: &str) -> Path {
        if self.prefix.is_empty() {
            Path::from(rest)
        } else {
            Path::from(format!("{}/{rest}", self.prefix))
        }
    }

    fn blob_path(&self, key: &Hash) -> Path {
        self.path(&format!("blobs/{}/{key}", key.shard()))
    }

    fn record_path(&self, key: &Hash) -> Path {
        self.path(&format!("records/{}/{key}", key.shard()))
    }

    fn get(&self, path: &Path) -> Result<Option<Vec<u8>>, BackendError> {
        self.get_with(&self.store, path)
    }

    fn get_with(
        &self,
        store: &Arc<AmazonS3>,
        path: &Path,
    ) -> Result<Option<Vec<u8>>, BackendError> {
        let (store, p) = (store.clone(), path.clone());
        let result = self.run(async move {
            match store.get(&p).await {
                Ok(r) => r.bytes().await.map(Some),
                Err(e) if is_not_found(&e) => Ok(None),
                Err(e) => Err(e),
            }
        })?;
        result
            .map(|o| o.map(|b| b.to_vec()))
            .map_err(|e| err("GET", path, &e))
    }

    fn head(&self, path: &Path) -> Result<Option<object_store::ObjectMeta>, BackendError> {
        let (store, p) = (self.store.clone(), path.clone());
        let result = self.run(async move {
            match store.head(&p).await {
                Ok(m) => Ok(Some(m)),
                Err(e) if is_not_found(&e) => Ok(None),
                Err(e) => Err(e),
            }
        })?;
        result.map_err(|e| err("HEAD", path, &e))
    }

    fn put(&self, path: &Path, data: Vec<u8>) -> Result<(), BackendError> {
        self.put_with(&self.store, path, data)
    }

    fn put_with(
        &self,
        store: &Arc<AmazonS3>,
        path: &Path,
        data: impl Into<PutPayload>,
    ) -> Result<(), BackendError> {
        let (store, p, payload) = (store.clone(), path.clone(), data.into());
        self.run(async move { store.put(&p, payload).await })?
            .map(|_| ())
            .map_err(|e| err("PUT", path, &e))
    }

    fn delete(&self, path: &Path) -> Result<(), BackendError> {
        let (store, p) = (self.store.clone(), path.clone());
        match self.run(async move { store.delete(&p).await })? {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(err("DELETE", path, &e)),
        }
    }

    /// Up to `limit` objects under `folder`, after `offset`, in key order.
    fn list(
        &self,
        folder: &Path,
        offset: Option<&Path>,
        limit: usize,
    ) -> Result<Vec<object_store::ObjectMeta>, BackendError> {
        let (store, f, o) = (self.store.clone(), folder.clone(), offset.cloned());
        let result = self.run(async move {
            let stream = match &o {
                Some(o) => store.list_with_offset(Some(&f), o),
                None => store.list(Some(&f)),
            };
            stream.take(limit).try_collect::<Vec<_>>().await
        })?;
        let mut metas = result.map_err(|e| err("LIST", folder, &e))?;
        metas.sort_by(|a, b| a.location.cmp(&b.location));
        Ok(metas)
    }

    /// The keys under a `blobs/` or `records/` folder, skipping anything
    /// that is not named by a valid hash in its right shard.
    fn list_keyed(
        &self,
        kind: &str,
        after: Option<&Hash>,
        limit: u32,
    ) -> Result<Vec<(Hash, object_store::ObjectMeta)>, BackendError> {
        let folder = self.path(kind);
        let offset = after.map(|h| self.path(&format!("{kind}/{}/{h}", h.shard())));
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let mut out = Vec::new();
        let mut cursor = offset;
        // Foreign objects are skipped, so keep listing until `limit` keys.
        loop {
            let page = self.list(&folder, cursor.as_ref(), limit.saturating_sub(out.len()))?;
            let Some(last) = page.last() else { break };
            cursor = Some(last.location.clone());
            let full = page.len() == limit.saturating_sub(out.len());
            for meta in page {
                let mut parts = meta.location.parts().collect::<Vec<_>>().into_iter().rev();
                let (Some(name), Some(shard)) = (parts.next(), parts.next()) else {
                    continue;
                };
                if let Ok(key) = Hash::from_hex(name.as_ref())
                    && key.shard() == shard.as_ref()
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

    /// The servers' current time, from the timestamp of a probe object.
    fn server_now(&self) -> Result<u64, BackendError> {
        let probe = self.path(&format!("clock/{:016x}", new_version(None)));
        self.put(&probe, Vec::new())?;
        let meta = self.head(&probe)?;
        self.delete(&probe)?;
        meta.map(|m| millis(&m))
            .ok_or_else(|| BackendError::Io(format!("s3 probe {probe} vanished")))
    }

    fn read_versioned(&self, key: &Hash) -> Result<Option<VersionedRecord>, BackendError> {
        self.read_at(&self.record_path(key))
    }

    fn read_at(&self, path: &Path) -> Result<Option<VersionedRecord>, BackendError> {
        self.get(path)?
            .map(|bytes| decode_record(path, &bytes))
            .transpose()
    }

    fn entry_path(&self, owner: &Hash, key: &Hash) -> Path {
        self.path(&format!("owners/{owner}/{key}"))
    }

    /// Compare-and-swap on the versioned object at `path`, under the lock `folder`.
    fn swap_at(
        &self,
        folder: Path,
        what: &str,
        path: &Path,
        expected: Option<u64>,
        new: Option<&[u8]>,
    ) -> Result<SwapOutcome, BackendError> {
        let mut guard = self.lock_at(folder, what)?;
        if self.read_at(path)?.map(|r| r.version) != expected {
            return Ok(SwapOutcome::Conflict);
        }
        match new {
            Some(data) => {
                let version = new_version(expected);
                let mut bytes = Vec::with_capacity(data.len().saturating_add(8));
                bytes.extend_from_slice(&version.to_le_bytes());
                bytes.extend_from_slice(data);
                guard.write(|| self.put(path, bytes))?;
                Ok(SwapOutcome::Written(version))
            }
            None => {
                guard.write(|| self.delete(path))?;
                Ok(SwapOutcome::Deleted)
            }
        }
    }

    /// Takes the lock on `key`'s record (see the module docs).
    ///
    /// Safety rests on one rule: a host holds the lock only when a listing
    /// made after its claim was written shows no other live claim. For
    /// progress under contention, the oldest visible claim (by server time,
    /// then name) is kept while its host re-lists until the others withdraw;
    /// every other claimant withdraws, then waits for the folder to empty
    /// before claiming again.
    fn lock(&self, key: &Hash) -> Result<LockGuard<'_>, BackendError> {
        self.lock_at(self.path(&format!("locks/{key}")), &key.to_hex())
    }

    /// Takes the lock whose claims live in `folder` (see [`lock`](Self::lock)).
    fn lock_at(&self, folder: Path, key: &str) -> Result<LockGuard<'_>, BackendError> {
        let started = Instant::now();
        let patience = LOCK_PATIENCE + self.lease;
        let mut attempt = 0u32;
        loop {
            let claim = format!("{:016x}", new_version(None));
            let path = folder.clone().join(claim.as_str());
            let taken = Instant::now();
            self.put(&path, Vec::new())?;
            let guard = LockGuard {
                backend: self,
                path: path.clone(),
                taken,
                keep: false,
            };
            let mut relists = 0u32;
            loop {
                let claims = self.list(&folder, None, usize::MAX)?;
                let Some(mine) = claims.iter().find(|m| m.location == path) else {
                    break; // broken as stale by someone else: start again
                };
                let mut oldest = true;
                let mut alone = true;
                for other in claims.iter().filter(|m| m.location != path) {
                    let age = (mine.last_modified - other.last_modified).to_std();
                    if age.is_ok_and(|age| age > self.lease) {
                        self.delete(&other.location)?;
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
                    "s3 lock on record {key} still contended after {patience:?}"
                )));
            }
            // Wait for the holder and the oldest waiter to finish; claims
            // of dead hosts never go away, so claim again after a while.
            for _ in 0..8 {
                attempt = attempt.saturating_add(1);
                std::thread::sleep(jitter(attempt, 500));
                if self.list(&folder, None, 1)?.is_empty() {
                    break;
                }
            }
        }
    }
}

/// A random pause of up to `2^n` ms, at most `cap_ms`.
fn jitter(n: u32, cap_ms: u64) -> Duration {
    let bound = (1u64 << n.min(20)).clamp(2, cap_ms.max(2));
    Duration::from_millis(1 + new_version(None) % bound)
}

/// A held record lock; dropping it deletes the claim.
struct LockGuard<'a> {
    backend: &'a S3Backend,
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
    fn write<T>(&mut self, f: impl FnOnce() -> Result<T, BackendError>) -> Result<T, BackendError> {
        self.check()?;
        let result = f();
        self.keep |= result.is_err();
        result
    }

    /// Fails (before any write) once the lock has been held too long.
    fn check(&self) -> Result<(), BackendError> {
        let limit = self.backend.lease / 4;
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
        if !self.keep && self.backend.delete(&self.path).is_err() {
            let _ = self.backend.delete(&self.path);
        }
    }
}

/// A large put's content: gathered in memory up to [`SINGLE_PUT_MAX`], else
/// uploaded in parts to `path` as it comes.
struct S3Staging {
    path: Path,
    /// What is not yet uploaded.
    buffer: Vec<u8>,
    /// Small content, once stored by a single `PUT`.
    whole: Option<PutPayload>,
    /// The multipart upload, from the first part until it is completed.
    upload: Option<Box<dyn MultipartUpload>>,
    /// Whether `path` holds the whole content (the upload completed).
    uploaded: bool,
    /// Whether it was stored as a blob (after which it must not grow).
    stored: bool,
}

impl S3Backend {
    /// Fills the buffer up to a part and uploads it, as often as `data`
    /// allows: every byte is copied once, at most a part is held.
    fn feed_parts(&self, staged: &mut S3Staging, data: &[u8]) -> Result<(), BackendError> {
        let mut rest = data;
        while !rest.is_empty() {
            let room = PART.saturating_sub(staged.buffer.len());
            let (now, later) = rest.split_at(room.min(rest.len()));
            staged.buffer.extend_from_slice(now);
            rest = later;
            if staged.buffer.len() >= PART {
                let part = std::mem::replace(&mut staged.buffer, Vec::with_capacity(PART));
                self.upload_part(staged, part)?;
            }
        }
        Ok(())
    }

    fn upload_part(&self, staged: &mut S3Staging, part: Vec<u8>) -> Result<(), BackendError> {
        let upload = staged.upload.as_mut().ok_or_else(|| {
            BackendError::Io(format!("no upload in progress for {}", staged.path))
        })?;
        let sending = upload.put_part(PutPayload::from(part));
        self.run(sending)?
            .map_err(|e| err("uploading a part of", &staged.path, &e))
    }
}

fn decode_record(path: &Path, bytes: &[u8]) -> Result<VersionedRecord, BackendError> {
    let (version, data) = bytes
        .split_first_chunk::<8>()
        .ok_or_else(|| BackendError::Io(format!("s3 record {path} is truncated")))?;
    Ok(VersionedRecord {
        version: u64::from_le_bytes(*version),
        data: data.to_vec(),
    })
}

impl Backend for S3Backend {
    fn write_blob(&self, key: &Hash, data: &[u8]) -> Result<(), BackendError> {
        self.put_with(&self.blobs, &self.blob_path(key), data.to_vec())
    }

    fn read_blob(&self, key: &Hash) -> Result<Option<Vec<u8>>, BackendError> {
        self.get_with(&self.blobs, &self.blob_path(key))
    }

    fn stage(&self) -> Result<Staging, BackendError> {
        Ok(Staging::new(S3Staging {
            path: self.path(&format!("staging/{:016x}", new_version(None))),
            buffer: Vec::new(),
            whole: None,
            upload: None,
            uploaded: false,
            stored: false,
        }))
    }

    fn append_staged(&self, staging: &mut Staging, data: &[u8]) -> Result<(), BackendError> {
        let staged = staging
            .state_mut::<S3Staging>()
            .ok_or_else(foreign_staging)?;
        if staged.stored || staged.uploaded {
            return Err(BackendError::Io(format!(
                "{} was already uploaded: it cannot grow",
                staged.path
            )));
        }
        if staged.upload.is_none() {
            if staged.buffer.len().saturating_add(data.len()) <= SINGLE_PUT_MAX {
                staged.buffer.extend_from_slice(data);
                return Ok(());
            }
            let (blobs, p) = (self.blobs.clone(), staged.path.clone());
            let upload = self
                .run(async move { blobs.put_multipart(&p).await })?
                .map_err(|e| err("multipart upload of", &staged.path, &e))?;
            staged.upload = Some(upload);
            let gathered = std::mem::take(&mut staged.buffer);
            self.feed_parts(staged, &gathered)?;
        }
        self.feed_parts(staged, data)
    }

    fn finish_staged(&self, staging: &mut Staging) -> Result<(), BackendError> {
        let staged = staging
            .state_mut::<S3Staging>()
            .ok_or_else(foreign_staging)?;
        if staged.upload.is_none() {
            // Small content stays in memory until it is stored with one PUT.
            return Ok(());
        }
        if !staged.buffer.is_empty() {
            let last = std::mem::take(&mut staged.buffer);
            self.upload_part(staged, last)?;
        }
        if let Some(mut upload) = staged.upload.take() {
            let (mut upload, result) = self.run(async move {
                let result = upload.complete().await;
                (upload, result)
            })?;
            if let Err(e) = result {
                // Not completed: abort it, so its parts do not linger.
                let _ = self.run(async move { upload.abort().await });
                return Err(err("completing the upload of", &staged.path, &e));
            }
            staged.uploaded = true;
        }
        Ok(())
    }

    fn write_staged(&self, staging: &mut Staging, key: &Hash) -> Result<(), BackendError> {
        self.finish_staged(staging)?;
        let staged = staging
            .state_mut::<S3Staging>()
            .ok_or_else(foreign_staging)?;
        staged.stored = true;
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
            return self.put_with(&self.blobs, &to, payload);
        }
        let (blobs, from, t) = (self.blobs.clone(), staged.path.clone(), to.clone());
        self.run(async move { blobs.copy(&from, &t).await })?
            .map_err(|e| err("COPY to", &to, &e))
    }

    fn discard_staged(&self, staging: Staging) -> Result<(), BackendError> {
        let mut staged = staging
            .into_state::<S3Staging>()
            .ok_or_else(foreign_staging)?;
        if let Some(mut upload) = staged.upload.take() {
            let result = self.run(async move { upload.abort().await })?;
            result.map_err(|e| err("aborting the upload of", &staged.path, &e))?;
        }
        if staged.uploaded {
            self.delete(&staged.path)?;
        }
        Ok(())
    }

    fn read_blob_range(
        &self,
        key: &Hash,
        offset: u64,
        len: u64,
    ) -> Result<Option<Vec<u8>>, BackendError> {
        let path = self.blob_path(key);
        let Some(meta) = self.head(&path)? else {
            return Ok(None);
        };
        let end = offset.saturating_add(len).min(meta.size);
        if offset >= end {
            return Ok(Some(Vec::new()));
        }
        let (store, p) = (self.blobs.clone(), path.clone());
        match self.run(async move { store.get_range(&p, offset..end).await })? {
            Ok(bytes) => Ok(Some(bytes.to_vec())),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(err("GET range", &path, &e)),
        }
    }

    fn blob_size(&self, key: &Hash) -> Result<Option<u64>, BackendError> {
        Ok(self.head(&self.blob_path(key))?.map(|m| m.size))
    }

    fn delete_blob(&self, key: &Hash, record_version: Option<u64>) -> Result<bool, BackendError> {
        let mut guard = self.lock(key)?;
        if self.read_versioned(key)?.map(|r| r.version) != record_version {
            return Ok(false);
        }
        let path = self.blob_path(key);
        if self.head(&path)?.is_none() {
            return Ok(false);
        }
        guard.write(|| self.delete(&path))?;
        Ok(true)
    }

    fn list_blobs(&self, after: Option<&Hash>, limit: u32) -> Result<Vec<BlobInfo>, BackendError> {
        Ok(self
            .list_keyed("blobs", after, limit)?
            .into_iter()
            .map(|(key, meta)| BlobInfo {
                key,
                size: meta.size,
                modified: millis(&meta),
            })
            .collect())
    }

    fn read_record(&self, key: &Hash) -> Result<Option<VersionedRecord>, BackendError> {
        self.read_versioned(key)
    }

    fn swap_record(
        &self,
        key: &Hash,
        expected: Option<u64>,
        new: Option<&[u8]>,
    ) -> Result<SwapOutcome, BackendError> {
        let folder = self.path(&format!("locks/{key}"));
        self.swap_at(folder, &key.to_hex(), &self.record_path(key), expected, new)
    }

    fn read_entry(
        &self,
        owner: &Hash,
        key: &Hash,
    ) -> Result<Option<VersionedRecord>, BackendError> {
        self.read_at(&self.entry_path(owner, key))
    }

    fn swap_entry(
        &self,
        owner: &Hash,
        key: &Hash,
        expected: Option<u64>,
        new: Option<&[u8]>,
    ) -> Result<SwapOutcome, BackendError> {
        let folder = self.path(&format!("locks/{owner}-{key}"));
        let what = format!("{owner}-{key}");
        self.swap_at(folder, &what, &self.entry_path(owner, key), expected, new)
    }

    fn list_entries(
        &self,
        owner: &Hash,
        after: Option<&Hash>,
        limit: u32,
    ) -> Result<Vec<(Hash, VersionedRecord)>, BackendError> {
        // One folder per owner: a listing of it never sees anyone else's.
        let folder = self.path(&format!("owners/{owner}"));
        let offset = after.map(|a| self.entry_path(owner, a));
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let mut out = Vec::new();
        for meta in self.list(&folder, offset.as_ref(), limit)? {
            let Some(name) = meta.location.filename() else {
                continue;
            };
            let Ok(key) = Hash::from_hex(name) else {
                continue;
            };
            // An entry deleted since the listing is simply gone.
            if let Some(entry) = self.read_at(&meta.location)? {
                out.push((key, entry));
            }
        }
        Ok(out)
    }

    fn list_owners(&self, after: Option<&Hash>, limit: u32) -> Result<Vec<Hash>, BackendError> {
        let folder = self.path("owners");
        let (store, f) = (self.store.clone(), folder.clone());
        let listed = self
            .run(async move { store.list_with_delimiter(Some(&f)).await })?
            .map_err(|e| err("LIST", &folder, &e))?;
        let mut owners: Vec<Hash> = listed
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().and_then(|n| Hash::from_hex(n).ok()))
            .filter(|o| after.is_none_or(|a| o > a))
            .collect();
        owners.sort_unstable();
        owners.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(owners)
    }

    fn finish_migration(&self) -> Result<(), BackendError> {
        self.put(&self.path("FORMAT"), S3_FORMAT_MARKER.as_bytes().to_vec())
    }

    fn list_records(
        &self,
        after: Option<&Hash>,
        limit: u32,
    ) -> Result<Vec<(Hash, VersionedRecord)>, BackendError> {
        let keys = self.list_keyed("records", after, limit)?;
        let paths: Vec<(Hash, Path)> = keys.into_iter().map(|(k, m)| (k, m.location)).collect();
        let store = self.store.clone();
        let fetched = self.run(async move {
            futures::stream::iter(paths)
                .map(|(key, path)| {
                    let store = store.clone();
                    async move {
                        let got = match store.get(&path).await {
                            Ok(r) => r.bytes().await.map(Some),
                            Err(e) if is_not_found(&e) => Ok(None),
                            Err(e) => Err(e),
                        };
                        (key, path, got)
                    }
                })
                .buffered(RECORD_FETCH_CONCURRENCY)
                .collect::<Vec<_>>()
                .await
        })?;
        let mut out = Vec::with_capacity(fetched.len());
        for (key, path, got) in fetched {
            // A record deleted between the listing and the read is simply gone.
            if let Some(bytes) = got.map_err(|e| err("GET", &path, &e))? {
                out.push((key, decode_record(&path, &bytes)?));
            }
        }
        Ok(out)
    }

    fn clean_temporary(&self, older_than_ms: u64) -> Result<u64, BackendError> {
        // Claims left by hosts that died holding a lock, aged by the servers'
        // clock (a probe object's timestamp), never this host's.
        let now = self.server_now()?;
        let lease_ms = u64::try_from(self.lease.as_millis()).unwrap_or(u64::MAX);
        let mut removed = 0;
        // Staged uploads of puts that never finished (a completed upload is
        // an object; an interrupted one is invisible here, and the bucket's
        // own clean-up of incomplete uploads removes its parts).
        for (folder, min_age) in [
            ("locks", older_than_ms.max(lease_ms.saturating_mul(2))),
            ("staging", older_than_ms),
        ] {
            for meta in self.list(&self.path(folder), None, usize::MAX)? {
                if now.saturating_sub(millis(&meta)) > min_age {
                    self.delete(&meta.location)?;
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }

    fn quarantine_blob(&self, key: &Hash) -> Result<bool, BackendError> {
        let from = self.blob_path(key);
        let to = self.path(&format!("quarantine/{key}"));
        let (store, f, t) = (self.blobs.clone(), from.clone(), to.clone());
        match self.run(async move { store.copy(&f, &t).await })? {
            Ok(()) => {}
            Err(e) if is_not_found(&e) => return Ok(false),
            Err(e) => return Err(err("COPY", &from, &e)),
        }
        let version = self.read_record(key)?.map(|r| r.version);
        self.delete_blob(key, version)
    }
}

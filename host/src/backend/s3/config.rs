//! Where the bucket is and how long requests and lock claims may take.

use std::fmt;
use std::time::Duration;

use crate::BackendError;
use crate::backend::BackendResult;

/// By default, a claim this much older (by the server's clock) than a newer
/// one is stale ([`S3Config::lease`]).
pub const LEASE: Duration = Duration::from_secs(60);

/// One request's time limit: an eighth of the lease, from 1 s to 10 s.
pub(super) fn request_timeout(lease: Duration) -> Duration {
    (lease / 8).clamp(Duration::from_secs(1), Duration::from_secs(10))
}

/// How long transport errors are retried: a quarter of the lease, from 1 s
/// to 20 s. A holder writes only within a quarter of the lease, so its last
/// request ends within 5/8 of it (leases under 16 s, for tests, are tighter
/// than that).
pub(super) fn retry_timeout(lease: Duration) -> Duration {
    (lease / 4).clamp(Duration::from_secs(1), Duration::from_secs(20))
}

/// The time limit of one blob transfer (a `GET`, a `PUT`, a part of
/// 8 MiB or a server-side copy), and how long its transport errors are
/// retried. Blob transfers hold no lock, so they need not be short.
pub const BLOB_TIMEOUT: Duration = Duration::from_secs(300);

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
    pub fn from_url_and_env(url: &str) -> BackendResult<Self> {
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

    /// The lease this configuration asks for.
    pub(super) fn effective_lease(&self) -> Duration {
        self.lease.unwrap_or(LEASE)
    }

    /// Where the store is (no credentials).
    pub(super) fn location(&self) -> String {
        format!(
            "s3://{}/{} at {}",
            self.bucket,
            self.prefix,
            self.endpoint.as_deref().unwrap_or("AWS")
        )
    }
}

//! What the store's calls take and return besides hashes: artifact types,
//! metadata, gc reports, and the size limits.

use std::fmt;
use std::str::FromStr;

use crate::Hash;

/// The largest artifact a store accepts unless configured otherwise: 256 MiB.
pub const DEFAULT_MAX_ARTIFACT_BYTES: u64 = 256 << 20;
/// The largest limit [`StoreBuilder::max_artifact_bytes`](crate::StoreBuilder::max_artifact_bytes) accepts: content
/// crosses into the core's 32-bit linear memory in one piece.
pub const MAX_ARTIFACT_BYTES_LIMIT: u64 = 1 << 30;

/// What an artifact holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ArtifactType {
    /// A WebAssembly module or component.
    WasmModule,
    /// An app manifest.
    AppManifest,
    /// A configuration bundle.
    ConfigBundle,
    /// Anything else.
    Generic,
}

impl ArtifactType {
    /// Every type, in WIT order.
    pub const ALL: [Self; 4] = [
        Self::WasmModule,
        Self::AppManifest,
        Self::ConfigBundle,
        Self::Generic,
    ];

    /// The WIT name: `wasm-module`, `app-manifest`, `config-bundle`, `generic`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::WasmModule => "wasm-module",
            Self::AppManifest => "app-manifest",
            Self::ConfigBundle => "config-bundle",
            Self::Generic => "generic",
        }
    }
}

impl fmt::Display for ArtifactType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ArtifactType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| format!("unknown artifact type {s:?} (expected wasm-module, app-manifest, config-bundle or generic)"))
    }
}

/// What the store knows about one artifact.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Metadata {
    /// The content's BLAKE3 hash: its address.
    pub hash: Hash,
    /// The content's length in bytes.
    pub size: u64,
    /// The type given by the first put.
    #[serde(rename = "type")]
    pub artifact_type: ArtifactType,
    /// When the content was first stored, in milliseconds since the Unix epoch.
    pub stored_at: u64,
    /// Puts not yet released.
    pub reference_count: u64,
}

/// What [`ArtifactStore::gc`](crate::ArtifactStore::gc) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct GcReport {
    /// Blobs no record referenced, older than the grace period, deleted.
    pub orphans_removed: u64,
    /// Their total size in bytes.
    pub bytes_freed: u64,
    /// Unreferenced blobs kept because they are younger than the grace period.
    pub orphans_in_grace: u64,
    /// Half-done deletions (of a crashed or interrupted process) finished.
    pub deletions_finished: u64,
    /// Temporary files of interrupted writes, older than the grace period, removed.
    pub temporary_files_removed: u64,
    /// Outboards (the trees kept for verified ranges) whose blob is gone,
    /// older than the grace period, removed.
    pub outboards_removed: u64,
    /// sha256 aliases whose artifact is gone, removed.
    pub aliases_removed: u64,
    /// Owner index spaces holding nothing (the file backend's empty owner
    /// directories), unchanged for the grace period, removed.
    pub owner_spaces_removed: u64,
}

/// The grace period [`ArtifactStore::gc`](crate::ArtifactStore::gc) callers should use unless they
/// know better: longer than any put takes between writing its blob and
/// creating its record.
pub const DEFAULT_GC_GRACE: std::time::Duration = std::time::Duration::from_secs(3600);

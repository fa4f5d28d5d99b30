//! Who is calling: whose references, what they may see, their quota.

/// An owner's limits; `u64::MAX` means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Total bytes of distinct artifacts.
    pub max_bytes: u64,
    /// Number of distinct artifacts.
    pub max_artifacts: u64,
    /// Size of one artifact.
    pub max_artifact_bytes: u64,
}

impl Quota {
    /// No limits.
    pub const UNLIMITED: Self = Self {
        max_bytes: u64::MAX,
        max_artifacts: u64::MAX,
        max_artifact_bytes: u64::MAX,
    };
}

/// The owner id under which the host itself holds references.
pub const HOST_OWNER: &str = "@host";

/// How the store shares content between owners.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dedup {
    /// One blob per content, written by the first put: a put of content
    /// others hold writes nothing, so it is faster, and tells that it is held.
    #[default]
    Shared,
    /// Still one blob, but an owner's first put of content others hold
    /// writes the blob again (and checks it as a new record's put does), and
    /// its last release swaps the record once whether or not others hold
    /// it (the last owner's deletion is invisible at once and finished by
    /// `settle`, the next gc or put), so both do the same work either way;
    /// what a leave frees counts against the quota until it is settled.
    Private,
}

/// Who is calling, and what they may see and do.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    /// Whose references a put takes and a release drops.
    pub owner: &'a str,
    /// Sees every artifact, and `remove` deletes whatever the owners.
    /// Otherwise the caller sees only artifacts it references.
    pub admin: bool,
    /// Limits on what the owner may hold.
    pub quota: Quota,
    /// The store's dedup.
    pub dedup: Dedup,
}

impl Caller<'static> {
    /// The host: its own references, sees everything, no quota.
    pub const HOST: Self = Self {
        owner: HOST_OWNER,
        admin: true,
        quota: Quota::UNLIMITED,
        dedup: Dedup::Shared,
    };
}

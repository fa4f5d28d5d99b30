//! The crash-safe protocol's steps, below the operations: the artifact
//! record's joins, leaves and deletions (`artifact`), the owner's usage
//! (`usage`), the entry transitions that tie the three together
//! (`transition`), the owner's index space and its keys (`index`), and the
//! pieces they share (what a put writes, the names record, paging, the
//! outboard written after a put). Nothing here imports an operation.

pub(super) mod artifact;
pub(super) mod content;
pub(super) mod index;
pub(super) mod names;
pub(super) mod outboard;
pub(super) mod pages;
pub(super) mod transition;
pub(super) mod usage;

/// How many compare-and-swap rounds an operation tries before giving up
/// with [`Error::Contended`](crate::ops::Error::Contended).
pub const MAX_ATTEMPTS: u32 = 10_000;
/// The most entries one `list` call returns, and the page size used to read records.
pub const LIST_LIMIT: u32 = 1000;

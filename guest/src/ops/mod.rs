//! The store's rules, over any [`Backend`]: dedup, per-owner reference
//! counts and index, integrity checks, and the deletion protocol.
//!
//! Every operation is a loop of read / compare-and-swap, so any number of
//! cores over one backend never lose an update. Two kinds of records:
//!
//! - the **artifact record**, shared, under the content's hash: size, the
//!   first put's type and time (the host's view), and how many *owners*
//!   hold it, never who;
//! - the **owner entry**, in the owner's own index space, under the hash:
//!   the owner's reference count and its own type and time. Everything an
//!   app reads (`contains`, `stat`, `count`, `list`, ...) comes from its own
//!   entries, so it costs what the app holds and says nothing of others.
//!
//! An owner's first reference (a *join*) and its last release (a *leave*)
//! change three records: its entry, the artifact record (owner count) and
//! its usage record. The entry goes first (`Adding` or `Removing`, at a
//! version `v` that names the transition), the other two are changed with a
//! *mark* `(owner or hash, v)` that makes the change happen exactly once
//! whoever applies it (the caller, a later call of the same owner, or gc),
//! and a helper applies a marked change only if, after reading the record
//! it changes, the entry is still at `v`. Then the entry is confirmed (or
//! deleted) and the marks are removed. See ARCHITECTURE.md for the argument.
//!
//! - a **put** of new content writes the blob, then creates the record; a
//!   record therefore always has its blob behind it.
//! - a **delete** (the last owner leaving, or the host's remove) swaps the
//!   record to `Deleting`, deletes the blob *only if the record still has
//!   that version*, then deletes the record. Anyone who meets a `Deleting`
//!   record finishes the deletion first.
//!
//! One file per operation or group of operations (`put`, `release`, `read`,
//! `missing`, `range`, `list`, `names`, `usage`, `gc`, `migrate`), over the protocol
//! steps they share (`steps`), which import nothing from them.

mod backend;
mod caller;
mod error;
mod gc;
mod list;
mod migrate;
mod missing;
mod names;
mod put;
mod range;
mod read;
mod release;
mod steps;
mod usage;

pub use backend::{Backend, Keyed, Place, Reply, Space, Swap, Versioned};
pub use caller::{Caller, Dedup, HOST_OWNER, Quota};
pub use error::{Error, QuotaKind};
pub use gc::{GcReport, gc};
pub use list::{count, list, total_bytes};
pub use migrate::migrate;
pub use missing::missing;
pub use names::{tag_delete, tag_get, tag_list, tag_replace, tag_set};
pub use put::{put, put_staged};
pub use range::{RANGE_LIMIT, get_range, prove_range, store_outboard};
pub use read::{Metadata, Opened, check_content, contains, get, open, stat, verify};
pub use release::{release, remove};
pub use steps::index::{names_key, owner_key, usage_key};
pub use steps::{LIST_LIMIT, MAX_ATTEMPTS};
pub use usage::{settle, usage};

//! The records kept beside the blobs, and their binary encodings (format 2).
//!
//! Three kinds, all little endian, each starting with a magic number, the
//! format version `2` and three bytes (state, artifact type, zero):
//!
//! - an **artifact record** (`ARTR`), one per artifact in the shared record
//!   space under its hash: size, stored-at (the first put in the store),
//!   how many owners hold it, its origin (the owner key and entry version of
//!   the put that created it: which incarnation of the hash this is), and the
//!   marks of owners joining or leaving right now;
//! - an **owner entry** (`ARTE`), one per (owner, hash) in that owner's index
//!   space: the owner's own type, stored-at and reference count, the entry's
//!   incarnation and the origin of the artifact it counts in;
//! - a **names record** (`ARTN`, format 3), at most one per owner in its
//!   index space under [`names_key`](crate::ops::names_key): the owner's
//!   names, sorted, each with the hash it points at; an entry that names
//!   hold is written as format 3 with how many of its references they hold;
//! - a **usage record** (`ARTU`), one per owner in its index space under
//!   [`usage_key`](crate::ops::usage_key): bytes and artifacts charged, and
//!   the marks of charges and refunds in flight.
//!
//! A mark is a kind byte (1 join, 2 leave), a 32-byte key (an owner key in
//! an artifact record, a content hash in a usage record), the entry version
//! that names the transition, and a size. Format 1 (an artifact record
//! listing every owner) is decoded only by [`RecordV1::decode`], for
//! migration. Anything else decodes to an error, never a panic.
//!
//! One file per kind of record (`artifact`, `entry`, `names`, `usage`, and
//! `v1` for migration); `codec` holds the byte-level reading and writing
//! they share.

mod artifact;
mod codec;
mod entry;
mod names;
mod usage;
mod v1;

pub use artifact::{Record, State};
pub use entry::{Entry, EntryState};
pub use names::{MAX_NAME_LEN, MAX_NAMES, NAMES_VERSION, Names, check_name};
pub use usage::Usage;
pub use v1::RecordV1;

/// The first bytes of every artifact record.
pub const MAGIC: [u8; 4] = *b"ARTR";
/// The first bytes of every owner entry.
pub const ENTRY_MAGIC: [u8; 4] = *b"ARTE";
/// The first bytes of every usage record.
pub const USAGE_MAGIC: [u8; 4] = *b"ARTU";
/// The first bytes of every names record.
pub const NAMES_MAGIC: [u8; 4] = *b"ARTN";
/// The record format this core writes.
pub const FORMAT_VERSION: u8 = 2;
/// The format of stores written before owner indexes (migrated by `migrate`).
pub const FORMAT_V1: u8 = 1;
/// The most marks a record carries: one per transition in flight on it.
pub const MAX_MARKS: usize = 4096;
/// The most owners a format-1 record listed.
pub const MAX_OWNERS_V1: usize = 1024;
/// The longest owner id, in bytes.
pub const MAX_OWNER_LEN: usize = 64;

/// What an artifact holds (mirrors the WIT `artifact-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    fn code(self) -> u8 {
        match self {
            Self::WasmModule => 0,
            Self::AppManifest => 1,
            Self::ConfigBundle => 2,
            Self::Generic => 3,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => Self::WasmModule,
            1 => Self::AppManifest,
            2 => Self::ConfigBundle,
            3 => Self::Generic,
            _ => return None,
        })
    }
}

/// Which incarnation of a hash an artifact record is: the owner key and
/// entry version of the put that created it. Versions never repeat for a
/// key, so no two incarnations share an origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Origin {
    /// The creating owner's key.
    pub key: [u8; 32],
    /// The version of its entry when it began the put.
    pub version: u64,
}

/// One transition in flight: an owner joining (its first reference) or
/// leaving (its last), named by the version its entry had for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    /// Joining (true) or leaving (false).
    pub join: bool,
    /// An owner key (artifact records) or a content hash (usage records).
    pub key: [u8; 32],
    /// The owner entry's version for this transition.
    pub version: u64,
    /// The artifact's size (what a usage mark charged or refunded).
    pub size: u64,
}

/// A record's marks kept as a set of transitions: finding and removing one.
pub trait Marks {
    /// Whether this exact transition is marked.
    fn has_mark(&self, join: bool, key: &[u8; 32], version: u64) -> bool;
    /// Removes this exact transition's mark, if it is there.
    fn take_mark(&mut self, join: bool, key: &[u8; 32], version: u64) -> Option<Mark>;
}

impl Marks for Vec<Mark> {
    fn has_mark(&self, join: bool, key: &[u8; 32], version: u64) -> bool {
        self.iter()
            .any(|m| m.join == join && m.key == *key && m.version == version)
    }
    fn take_mark(&mut self, join: bool, key: &[u8; 32], version: u64) -> Option<Mark> {
        let at = self
            .iter()
            .position(|m| m.join == join && m.key == *key && m.version == version)?;
        Some(self.remove(at))
    }
}

/// Checks an owner id: 1 to 64 bytes of ASCII letters, digits and `._:@-/`.
/// (Ids are hashed before they name anything in the backend; `/` joins a
/// launched app's id to its parent's, `PARENT/NAME`.)
pub fn validate_owner(owner: &str) -> Result<(), String> {
    if owner.is_empty() || owner.len() > MAX_OWNER_LEN {
        return Err(format!(
            "owner id must be 1 to {MAX_OWNER_LEN} bytes, got {}",
            owner.len()
        ));
    }
    if let Some(c) = owner
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "._:@-/".contains(*c)))
    {
        return Err(format!("owner id may not contain {c:?}"));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests;

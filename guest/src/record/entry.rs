//! The owner entry (`ARTE`): one owner's reference to one artifact, in the
//! owner's index space.

use super::codec::{Reader, Writer};
use super::{ArtifactType, ENTRY_MAGIC, FORMAT_VERSION, NAMES_VERSION, Origin};

/// Where an owner's entry is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryState {
    /// A first put under way: not yet counted as held; the artifact and the
    /// usage may or may not carry its marks.
    Adding,
    /// Held: counted in the artifact record and in the owner's usage.
    Live,
    /// A last release under way: no longer held; whoever meets it finishes it.
    Removing,
}

impl EntryState {
    fn code(self) -> u8 {
        match self {
            Self::Adding => 0,
            Self::Live => 1,
            Self::Removing => 2,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(Self::Adding),
            1 => Some(Self::Live),
            2 => Some(Self::Removing),
            _ => None,
        }
    }
}

/// One owner's reference to one artifact, in the owner's index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Adding, live or removing.
    pub state: EntryState,
    /// The type this owner gave in its first put.
    pub artifact_type: ArtifactType,
    /// The content's length in bytes.
    pub size: u64,
    /// Milliseconds since the Unix epoch of this owner's first put.
    pub stored_at: u64,
    /// This owner's references (0 while adding).
    pub count: u64,
    /// The version the entry had while adding (0 while adding): names the
    /// join that made it live.
    pub incarnation: u64,
    /// The origin of the artifact record it is counted in (zero while adding).
    pub origin: Origin,
    /// How many of `count` the owner's names hold (see `ops::names`): its
    /// own `release` and `remove` leave these.
    pub named: u64,
}

impl Entry {
    /// Encodes the entry: format 2 while no name holds it (byte for byte
    /// what a core before names wrote), else format 3, which adds `named`
    /// (so a core before names refuses it rather than drop the names'
    /// references).
    pub fn encode(&self) -> Vec<u8> {
        let state = self.state.code();
        let version = if self.named > 0 {
            NAMES_VERSION
        } else {
            FORMAT_VERSION
        };
        let mut w = Writer::typed(ENTRY_MAGIC, version, state, self.artifact_type, 88);
        w.u64(self.size)
            .u64(self.stored_at)
            .u64(self.count)
            .u64(self.incarnation)
            .origin(&self.origin);
        if self.named > 0 {
            w.u64(self.named);
        }
        w.finish()
    }

    /// Decodes an entry.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        let named = bytes.get(4) == Some(&NAMES_VERSION);
        let version = if named { NAMES_VERSION } else { FORMAT_VERSION };
        let entry = Reader::whole(bytes, |r| {
            let (state, artifact_type) =
                r.typed_header(ENTRY_MAGIC, version, "entry", EntryState::from_code)?;
            Ok(Self {
                state,
                artifact_type,
                size: r.u64()?,
                stored_at: r.u64()?,
                count: r.u64()?,
                incarnation: r.u64()?,
                origin: r.origin()?,
                named: if named { r.u64()? } else { 0 },
            })
        })?;
        if entry.state == EntryState::Live && entry.count == 0 {
            return Err("live entry holds no references".into());
        }
        if named && !(1..=entry.count).contains(&entry.named) {
            return Err(format!(
                "entry holds {} references for names of its {}",
                entry.named, entry.count
            ));
        }
        Ok(entry)
    }
}

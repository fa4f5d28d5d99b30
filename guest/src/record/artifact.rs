//! The artifact record (`ARTR`): one per artifact, shared by its owners.

use super::codec::{Reader, Writer};
use super::{ArtifactType, FORMAT_VERSION, MAGIC, Mark, Origin};

/// Where an artifact is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Stored and readable; its blob is in place.
    Live,
    /// Being deleted: invisible to readers; whoever sees it finishes the deletion.
    Deleting,
}

impl State {
    pub(super) fn code(self) -> u8 {
        match self {
            Self::Live => 0,
            Self::Deleting => 1,
        }
    }

    pub(super) fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(Self::Live),
            1 => Some(Self::Deleting),
            _ => None,
        }
    }
}

/// One artifact's shared metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Live or being deleted.
    pub state: State,
    /// The type given by the first put in the store (the host's view).
    pub artifact_type: ArtifactType,
    /// The content's length in bytes.
    pub size: u64,
    /// Milliseconds since the Unix epoch of the first put in the store.
    pub stored_at: u64,
    /// How many owners hold references (including joins in flight).
    pub owners: u64,
    /// Which incarnation of the hash this is.
    pub origin: Origin,
    /// Joins and leaves in flight, each applied to `owners` exactly once.
    pub marks: Vec<Mark>,
}

impl Record {
    /// Encodes the record in the current format.
    pub fn encode(&self) -> Vec<u8> {
        let (state, capacity) = (self.state.code(), 80 + self.marks.len() * 49);
        Writer::typed(MAGIC, FORMAT_VERSION, state, self.artifact_type, capacity)
            .u64(self.size)
            .u64(self.stored_at)
            .u64(self.owners)
            .origin(&self.origin)
            .marks(&self.marks)
            .finish()
    }

    /// Decodes a record, rejecting anything not written by [`Record::encode`].
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        let record = Reader::whole(bytes, |r| {
            let (state, artifact_type) =
                r.typed_header(MAGIC, FORMAT_VERSION, "record", State::from_code)?;
            Ok(Self {
                state,
                artifact_type,
                size: r.u64()?,
                stored_at: r.u64()?,
                owners: r.u64()?,
                origin: r.origin()?,
                marks: r.marks()?,
            })
        })?;
        if record.state == State::Live && record.owners == 0 {
            return Err("live record has no owners".into());
        }
        Ok(record)
    }

    /// Whether `data` is an artifact record (of any format).
    pub fn is_artifact(data: &[u8]) -> bool {
        data.starts_with(&MAGIC)
    }
}

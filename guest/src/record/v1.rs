//! Format 1's artifact record (every owner listed with its count), read
//! only to migrate it.

use super::codec::{Reader, Writer};
use super::{ArtifactType, FORMAT_V1, MAGIC, MAX_OWNERS_V1, State, validate_owner};

/// A format-1 artifact record (every owner listed with its count), read
/// only to migrate it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordV1 {
    /// Live or being deleted.
    pub state: State,
    /// The type given by the first put.
    pub artifact_type: ArtifactType,
    /// The content's length in bytes.
    pub size: u64,
    /// Milliseconds since the Unix epoch of the first put.
    pub stored_at: u64,
    /// Who holds references, and how many each.
    pub owners: Vec<(String, u64)>,
}

impl RecordV1 {
    /// Whether `data` is a format-1 record of any kind (artifact or usage).
    pub fn is_v1(data: &[u8]) -> bool {
        data.len() > 4 && data.get(4) == Some(&FORMAT_V1)
    }

    /// Encodes a format-1 record (for tests of migration).
    pub fn encode(&self) -> Vec<u8> {
        let (state, capacity) = (self.state.code(), 28 + self.owners.len() * 24);
        let mut out = Writer::typed(MAGIC, FORMAT_V1, state, self.artifact_type, capacity);
        out.u64(self.size)
            .u64(self.stored_at)
            .u32(self.owners.len() as u32);
        for (owner, count) in &self.owners {
            out.u8(owner.len() as u8)
                .bytes(owner.as_bytes())
                .u64(*count);
        }
        out.finish()
    }

    /// Decodes a format-1 artifact record.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        Reader::whole(bytes, |r| {
            let (state, artifact_type) =
                r.typed_header(MAGIC, FORMAT_V1, "record", State::from_code)?;
            let size = r.u64()?;
            let stored_at = r.u64()?;
            let n = r.u32()? as usize;
            if n > MAX_OWNERS_V1 {
                return Err(format!(
                    "record lists {n} owners, more than {MAX_OWNERS_V1}"
                ));
            }
            let mut owners: Vec<(String, u64)> = Vec::with_capacity(n);
            for _ in 0..n {
                let len = r.u8()? as usize;
                let owner = std::str::from_utf8(r.take(len)?)
                    .map_err(|_| "record has an owner id that is not UTF-8".to_string())?;
                validate_owner(owner).map_err(|why| format!("record has a bad owner: {why}"))?;
                let count = r.u64()?;
                if count == 0 || owners.iter().any(|(o, _)| o == owner) {
                    return Err(format!("record has a zero or repeated entry for {owner:?}"));
                }
                owners.push((owner.to_string(), count));
            }
            Ok(Self {
                state,
                artifact_type,
                size,
                stored_at,
                owners,
            })
        })
    }
}

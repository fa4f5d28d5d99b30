//! The metadata record kept beside each blob, and its binary encoding.
//!
//! Layout (32 bytes, little endian): magic `ARTR`, format version `1`,
//! state, artifact type, one zero byte, then size, stored-at and reference
//! count as `u64`s. Anything else decodes to an error, never a panic.

/// The first bytes of every record.
pub const MAGIC: [u8; 4] = *b"ARTR";
/// The record format this core writes.
pub const FORMAT_VERSION: u8 = 1;
/// The length of an encoded record.
pub const ENCODED_LEN: usize = 32;

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

/// Where an artifact is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Stored and readable; its blob is in place.
    Live,
    /// Being deleted: invisible to readers; whoever sees it finishes the deletion.
    Deleting,
}

/// One artifact's metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    /// Live or being deleted.
    pub state: State,
    /// The type given by the first put.
    pub artifact_type: ArtifactType,
    /// The content's length in bytes.
    pub size: u64,
    /// Milliseconds since the Unix epoch of the first put.
    pub stored_at: u64,
    /// Puts not yet released.
    pub reference_count: u64,
}

impl Record {
    /// Encodes the record in the current format.
    pub fn encode(&self) -> [u8; ENCODED_LEN] {
        let mut out = [0u8; ENCODED_LEN];
        let state = match self.state {
            State::Live => 0,
            State::Deleting => 1,
        };
        let header = [
            MAGIC[0],
            MAGIC[1],
            MAGIC[2],
            MAGIC[3],
            FORMAT_VERSION,
            state,
            self.artifact_type.code(),
            0,
        ];
        let fields = [self.size, self.stored_at, self.reference_count];
        for (slot, byte) in out.iter_mut().zip(
            header
                .into_iter()
                .chain(fields.into_iter().flat_map(u64::to_le_bytes)),
        ) {
            *slot = byte;
        }
        out
    }

    /// Decodes a record, rejecting anything not written by [`Record::encode`].
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        let Ok(bytes) = <&[u8; ENCODED_LEN]>::try_from(bytes) else {
            return Err(format!(
                "record is {} bytes, expected {ENCODED_LEN}",
                bytes.len()
            ));
        };
        let [m0, m1, m2, m3, version, state, ty, pad, rest @ ..] = *bytes;
        if [m0, m1, m2, m3] != MAGIC {
            return Err("record has a wrong magic number".into());
        }
        if version != FORMAT_VERSION {
            return Err(format!(
                "record format version {version} is not supported (this core reads {FORMAT_VERSION})"
            ));
        }
        let state = match state {
            0 => State::Live,
            1 => State::Deleting,
            other => return Err(format!("record has an unknown state {other}")),
        };
        let artifact_type = ArtifactType::from_code(ty)
            .ok_or_else(|| format!("record has an unknown artifact type {ty}"))?;
        if pad != 0 {
            return Err("record has a non-zero reserved byte".into());
        }
        let word = |i: usize| {
            let mut w = [0u8; 8];
            w.iter_mut()
                .zip(rest.iter().skip(i * 8))
                .for_each(|(d, s)| *d = *s);
            u64::from_le_bytes(w)
        };
        Ok(Self {
            state,
            artifact_type,
            size: word(0),
            stored_at: word(1),
            reference_count: word(2),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Record {
        Record {
            state: State::Live,
            artifact_type: ArtifactType::ConfigBundle,
            size: 1025,
            stored_at: 1_700_000_000_000,
            reference_count: u64::MAX,
        }
    }

    #[test]
    fn round_trips_every_type_and_state() {
        for artifact_type in [
            ArtifactType::WasmModule,
            ArtifactType::AppManifest,
            ArtifactType::ConfigBundle,
            ArtifactType::Generic,
        ] {
            for state in [State::Live, State::Deleting] {
                let r = Record {
                    state,
                    artifact_type,
                    ..sample()
                };
                assert_eq!(Record::decode(&r.encode()), Ok(r));
            }
        }
    }

    #[test]
    fn layout_is_pinned() {
        let bytes = sample().encode();
        assert_eq!(&bytes[..8], b"ARTR\x01\x00\x02\x00");
        assert_eq!(&bytes[8..16], &1025u64.to_le_bytes());
        assert_eq!(&bytes[24..], &u64::MAX.to_le_bytes());
    }

    #[test]
    fn rejects_truncated_garbage_and_other_versions() {
        let good = sample().encode();
        assert!(Record::decode(&good[..31]).is_err());
        assert!(Record::decode(&[good.as_slice(), &[0]].concat()).is_err());
        assert!(Record::decode(&[0xff; ENCODED_LEN]).is_err());
        assert!(Record::decode(&[]).is_err());
        for (at, value) in [(0, b'X'), (4, 2), (5, 7), (6, 9), (7, 1)] {
            let mut bad = good;
            bad[at] = value;
            assert!(Record::decode(&bad).is_err(), "byte {at} = {value}");
        }
    }
}

//! The records kept beside the blobs, and their binary encodings.
//!
//! An artifact record (little endian): magic `ARTR`, format version `1`,
//! state, artifact type, one zero byte, size and stored-at as `u64`s, then a
//! `u32` count of owners and, per owner, a one-byte length, the owner id and
//! its reference count as a `u64`.
//!
//! A usage record, one per owner, under a key derived from the owner id:
//! magic `ARTU`, version `1`, three zero bytes, bytes and artifacts as `u64`s.
//!
//! Anything else decodes to an error, never a panic.

/// The first bytes of every artifact record.
pub const MAGIC: [u8; 4] = *b"ARTR";
/// The first bytes of every usage record.
pub const USAGE_MAGIC: [u8; 4] = *b"ARTU";
/// The record format this core writes.
pub const FORMAT_VERSION: u8 = 1;
/// The most owners one artifact may have.
pub const MAX_OWNERS: usize = 1024;
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

/// Where an artifact is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Stored and readable; its blob is in place.
    Live,
    /// Being deleted: invisible to readers; whoever sees it finishes the deletion.
    Deleting,
}

/// One artifact's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Live or being deleted.
    pub state: State,
    /// The type given by the first put.
    pub artifact_type: ArtifactType,
    /// The content's length in bytes.
    pub size: u64,
    /// Milliseconds since the Unix epoch of the first put.
    pub stored_at: u64,
    /// Who holds references, and how many each: never empty for a live
    /// record, no owner twice, no zero count.
    pub owners: Vec<(String, u64)>,
}

/// Checks an owner id: 1 to 64 bytes of ASCII letters, digits and `._:@-`.
pub fn validate_owner(owner: &str) -> Result<(), String> {
    if owner.is_empty() || owner.len() > MAX_OWNER_LEN {
        return Err(format!(
            "owner id must be 1 to {MAX_OWNER_LEN} bytes, got {}",
            owner.len()
        ));
    }
    if let Some(c) = owner
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "._:@-".contains(*c)))
    {
        return Err(format!("owner id may not contain {c:?}"));
    }
    Ok(())
}

/// A little-endian reader over untrusted bytes.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err("record is truncated".into());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?.first().copied().unwrap_or(0))
    }
    fn u32(&mut self) -> Result<u32, String> {
        let mut w = [0u8; 4];
        w.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(w))
    }
    fn u64(&mut self) -> Result<u64, String> {
        let mut w = [0u8; 8];
        w.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(w))
    }
    fn header(&mut self, magic: [u8; 4]) -> Result<[u8; 3], String> {
        if self.take(4)? != magic {
            return Err("record has a wrong magic number".into());
        }
        let version = self.u8()?;
        if version != FORMAT_VERSION {
            return Err(format!(
                "record format version {version} is not supported (this core reads {FORMAT_VERSION})"
            ));
        }
        Ok([self.u8()?, self.u8()?, self.u8()?])
    }
    fn end(&self) -> Result<(), String> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(format!("record has {} trailing bytes", self.0.len()))
        }
    }
}

impl Record {
    /// The sum of every owner's references.
    pub fn reference_count(&self) -> u64 {
        self.owners
            .iter()
            .fold(0u64, |sum, (_, n)| sum.saturating_add(*n))
    }

    /// `owner`'s references, 0 if it holds none.
    pub fn count_of(&self, owner: &str) -> u64 {
        self.owners
            .iter()
            .find(|(o, _)| o == owner)
            .map_or(0, |(_, n)| *n)
    }

    /// Sets `owner`'s references, removing the owner at 0.
    pub fn set_count(&mut self, owner: &str, count: u64) {
        match self.owners.iter().position(|(o, _)| o == owner) {
            Some(at) if count == 0 => {
                self.owners.remove(at);
            }
            Some(at) => {
                if let Some(entry) = self.owners.get_mut(at) {
                    entry.1 = count;
                }
            }
            None if count > 0 => self.owners.push((owner.to_string(), count)),
            None => {}
        }
    }

    /// Encodes the record in the current format.
    pub fn encode(&self) -> Vec<u8> {
        let state = match self.state {
            State::Live => 0,
            State::Deleting => 1,
        };
        let mut out = Vec::with_capacity(28 + self.owners.len() * 24);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&[FORMAT_VERSION, state, self.artifact_type.code(), 0]);
        out.extend_from_slice(&self.size.to_le_bytes());
        out.extend_from_slice(&self.stored_at.to_le_bytes());
        out.extend_from_slice(&(self.owners.len() as u32).to_le_bytes());
        for (owner, count) in &self.owners {
            out.push(owner.len() as u8);
            out.extend_from_slice(owner.as_bytes());
            out.extend_from_slice(&count.to_le_bytes());
        }
        out
    }

    /// Decodes a record, rejecting anything not written by [`Record::encode`].
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        let mut r = Reader(bytes);
        let [state, ty, pad] = r.header(MAGIC)?;
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
        let size = r.u64()?;
        let stored_at = r.u64()?;
        let n = r.u32()? as usize;
        if n > MAX_OWNERS {
            return Err(format!("record lists {n} owners, more than {MAX_OWNERS}"));
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
        r.end()?;
        if state == State::Live && owners.is_empty() {
            return Err("live record has no owners".into());
        }
        Ok(Self {
            state,
            artifact_type,
            size,
            stored_at,
            owners,
        })
    }
}

/// What one owner's artifacts add up to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// Total size of the distinct artifacts the owner references.
    pub bytes: u64,
    /// How many distinct artifacts the owner references.
    pub artifacts: u64,
}

impl Usage {
    /// Whether `data` is a usage record (as opposed to an artifact record).
    pub fn is_usage(data: &[u8]) -> bool {
        data.starts_with(&USAGE_MAGIC)
    }

    /// Encodes the usage record.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(24);
        out.extend_from_slice(&USAGE_MAGIC);
        out.extend_from_slice(&[FORMAT_VERSION, 0, 0, 0]);
        out.extend_from_slice(&self.bytes.to_le_bytes());
        out.extend_from_slice(&self.artifacts.to_le_bytes());
        out
    }

    /// Decodes a usage record.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        let mut r = Reader(bytes);
        if r.header(USAGE_MAGIC)? != [0, 0, 0] {
            return Err("usage record has non-zero reserved bytes".into());
        }
        let usage = Self {
            bytes: r.u64()?,
            artifacts: r.u64()?,
        };
        r.end()?;
        Ok(usage)
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
            owners: vec![("@host".into(), 2), ("app-1".into(), u64::MAX)],
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
        assert_eq!(&bytes[24..28], &2u32.to_le_bytes());
        assert_eq!(&bytes[28..34], b"\x05@host");
        assert_eq!(&bytes[34..42], &2u64.to_le_bytes());
        assert_eq!(bytes.len(), 28 + 14 + 14);
    }

    #[test]
    fn counts_add_up_and_zero_removes_an_owner() {
        let mut r = sample();
        assert_eq!(r.reference_count(), u64::MAX, "saturates");
        r.set_count("app-1", 0);
        assert_eq!(r.owners, vec![("@host".to_string(), 2)]);
        r.set_count("b", 3);
        assert_eq!((r.count_of("b"), r.count_of("nobody")), (3, 0));
        assert_eq!(r.reference_count(), 5);
    }

    #[test]
    fn rejects_truncated_garbage_and_other_versions() {
        let good = sample().encode();
        for cut in 0..good.len() {
            assert!(Record::decode(&good[..cut]).is_err(), "cut at {cut}");
        }
        assert!(Record::decode(&[good.as_slice(), &[0]].concat()).is_err());
        assert!(Record::decode(&[0xff; 64]).is_err());
        for (at, value) in [
            (0, b'X'),
            (4, 2),
            (5, 7),
            (6, 9),
            (7, 1),
            (24, 0),
            (29, b'/'),
        ] {
            let mut bad = good.clone();
            bad[at] = value;
            assert!(Record::decode(&bad).is_err(), "byte {at} = {value}");
        }
        let mut huge = good.clone();
        huge[24..28].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(Record::decode(&huge).is_err());
    }

    #[test]
    fn usage_round_trips_and_is_told_apart() {
        let u = Usage {
            bytes: 4096,
            artifacts: 3,
        };
        assert!(Usage::is_usage(&u.encode()) && !Usage::is_usage(&sample().encode()));
        assert_eq!(Usage::decode(&u.encode()), Ok(u));
        assert!(Usage::decode(&sample().encode()).is_err());
        assert!(Usage::decode(&u.encode()[..20]).is_err());
    }

    #[test]
    fn owner_ids_are_checked() {
        for ok in ["@host", "app-1", "a", "x.y:z_9", &"a".repeat(64)] {
            assert!(validate_owner(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a/b", "a b", "é", &"a".repeat(65), "../x"] {
            assert!(validate_owner(bad).is_err(), "{bad}");
        }
    }
}

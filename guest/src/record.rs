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
//! - a **usage record** (`ARTU`), one per owner in its index space under
//!   [`usage_key`](crate::ops::usage_key): bytes and artifacts charged, and
//!   the marks of charges and refunds in flight.
//!
//! A mark is a kind byte (1 join, 2 leave), a 32-byte key (an owner key in
//! an artifact record, a content hash in a usage record), the entry version
//! that names the transition, and a size. Format 1 (an artifact record
//! listing every owner) is decoded only by [`RecordV1::decode`], for
//! migration. Anything else decodes to an error, never a panic.

/// The first bytes of every artifact record.
pub const MAGIC: [u8; 4] = *b"ARTR";
/// The first bytes of every owner entry.
pub const ENTRY_MAGIC: [u8; 4] = *b"ARTE";
/// The first bytes of every usage record.
pub const USAGE_MAGIC: [u8; 4] = *b"ARTU";
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

/// Where an artifact is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Stored and readable; its blob is in place.
    Live,
    /// Being deleted: invisible to readers; whoever sees it finishes the deletion.
    Deleting,
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
}

/// What one owner's artifacts add up to, as its quota counts them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Usage {
    /// Total size of the distinct artifacts charged.
    pub bytes: u64,
    /// How many distinct artifacts are charged.
    pub artifacts: u64,
    /// Charges (join) and refunds (leave) in flight, keyed by content hash.
    pub marks: Vec<Mark>,
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
        self.header_of(magic, FORMAT_VERSION)
    }
    fn header_of(&mut self, magic: [u8; 4], expected: u8) -> Result<[u8; 3], String> {
        if self.take(4)? != magic {
            return Err("record has a wrong magic number".into());
        }
        let version = self.u8()?;
        if version != expected {
            return Err(format!(
                "record format version {version} is not supported here (expected {expected}; \
                 a store of format 1 needs `artifacts migrate`)"
            ));
        }
        Ok([self.u8()?, self.u8()?, self.u8()?])
    }
    fn key(&mut self) -> Result<[u8; 32], String> {
        let mut k = [0u8; 32];
        k.copy_from_slice(self.take(32)?);
        Ok(k)
    }
    fn origin(&mut self) -> Result<Origin, String> {
        Ok(Origin {
            key: self.key()?,
            version: self.u64()?,
        })
    }
    fn marks(&mut self) -> Result<Vec<Mark>, String> {
        let n = self.u32()? as usize;
        if n > MAX_MARKS {
            return Err(format!("record has {n} marks, more than {MAX_MARKS}"));
        }
        let mut marks = Vec::with_capacity(n);
        for _ in 0..n {
            let join = match self.u8()? {
                1 => true,
                2 => false,
                other => return Err(format!("record has a mark of unknown kind {other}")),
            };
            marks.push(Mark {
                join,
                key: self.key()?,
                version: self.u64()?,
                size: self.u64()?,
            });
        }
        Ok(marks)
    }
    fn end(&self) -> Result<(), String> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(format!("record has {} trailing bytes", self.0.len()))
        }
    }
}

fn put_origin(out: &mut Vec<u8>, origin: &Origin) {
    out.extend_from_slice(&origin.key);
    out.extend_from_slice(&origin.version.to_le_bytes());
}

fn put_marks(out: &mut Vec<u8>, marks: &[Mark]) {
    out.extend_from_slice(&(marks.len() as u32).to_le_bytes());
    for m in marks {
        out.push(if m.join { 1 } else { 2 });
        out.extend_from_slice(&m.key);
        out.extend_from_slice(&m.version.to_le_bytes());
        out.extend_from_slice(&m.size.to_le_bytes());
    }
}

/// Marks kept as a set: finding, adding and removing one.
pub trait Marks {
    /// The marks.
    fn marks(&self) -> &[Mark];
    /// The marks, to change.
    fn marks_mut(&mut self) -> &mut Vec<Mark>;
    /// Whether this exact transition is marked.
    fn has_mark(&self, join: bool, key: &[u8; 32], version: u64) -> bool {
        self.marks()
            .iter()
            .any(|m| m.join == join && m.key == *key && m.version == version)
    }
    /// Removes this exact transition's mark; returns whether it was there.
    fn take_mark(&mut self, join: bool, key: &[u8; 32], version: u64) -> Option<Mark> {
        let marks = self.marks_mut();
        let at = marks
            .iter()
            .position(|m| m.join == join && m.key == *key && m.version == version)?;
        Some(marks.remove(at))
    }
}

impl Marks for Record {
    fn marks(&self) -> &[Mark] {
        &self.marks
    }
    fn marks_mut(&mut self) -> &mut Vec<Mark> {
        &mut self.marks
    }
}

impl Marks for Usage {
    fn marks(&self) -> &[Mark] {
        &self.marks
    }
    fn marks_mut(&mut self) -> &mut Vec<Mark> {
        &mut self.marks
    }
}

impl Record {
    /// Encodes the record in the current format.
    pub fn encode(&self) -> Vec<u8> {
        let state = match self.state {
            State::Live => 0,
            State::Deleting => 1,
        };
        let mut out = Vec::with_capacity(80 + self.marks.len() * 49);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&[FORMAT_VERSION, state, self.artifact_type.code(), 0]);
        out.extend_from_slice(&self.size.to_le_bytes());
        out.extend_from_slice(&self.stored_at.to_le_bytes());
        out.extend_from_slice(&self.owners.to_le_bytes());
        put_origin(&mut out, &self.origin);
        put_marks(&mut out, &self.marks);
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
        let record = Self {
            state,
            artifact_type,
            size: r.u64()?,
            stored_at: r.u64()?,
            owners: r.u64()?,
            origin: r.origin()?,
            marks: r.marks()?,
        };
        r.end()?;
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

impl Entry {
    /// Encodes the entry.
    pub fn encode(&self) -> Vec<u8> {
        let state = match self.state {
            EntryState::Adding => 0,
            EntryState::Live => 1,
            EntryState::Removing => 2,
        };
        let mut out = Vec::with_capacity(80);
        out.extend_from_slice(&ENTRY_MAGIC);
        out.extend_from_slice(&[FORMAT_VERSION, state, self.artifact_type.code(), 0]);
        out.extend_from_slice(&self.size.to_le_bytes());
        out.extend_from_slice(&self.stored_at.to_le_bytes());
        out.extend_from_slice(&self.count.to_le_bytes());
        out.extend_from_slice(&self.incarnation.to_le_bytes());
        put_origin(&mut out, &self.origin);
        out
    }

    /// Decodes an entry.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        let mut r = Reader(bytes);
        let [state, ty, pad] = r.header(ENTRY_MAGIC)?;
        let state = match state {
            0 => EntryState::Adding,
            1 => EntryState::Live,
            2 => EntryState::Removing,
            other => return Err(format!("entry has an unknown state {other}")),
        };
        let artifact_type = ArtifactType::from_code(ty)
            .ok_or_else(|| format!("entry has an unknown artifact type {ty}"))?;
        if pad != 0 {
            return Err("entry has a non-zero reserved byte".into());
        }
        let entry = Self {
            state,
            artifact_type,
            size: r.u64()?,
            stored_at: r.u64()?,
            count: r.u64()?,
            incarnation: r.u64()?,
            origin: r.origin()?,
        };
        r.end()?;
        if entry.state == EntryState::Live && entry.count == 0 {
            return Err("live entry holds no references".into());
        }
        Ok(entry)
    }
}

impl Usage {
    /// Whether `data` is a usage record.
    pub fn is_usage(data: &[u8]) -> bool {
        data.starts_with(&USAGE_MAGIC)
    }

    /// Encodes the usage record.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(28 + self.marks.len() * 49);
        out.extend_from_slice(&USAGE_MAGIC);
        out.extend_from_slice(&[FORMAT_VERSION, 0, 0, 0]);
        out.extend_from_slice(&self.bytes.to_le_bytes());
        out.extend_from_slice(&self.artifacts.to_le_bytes());
        put_marks(&mut out, &self.marks);
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
            marks: r.marks()?,
        };
        r.end()?;
        Ok(usage)
    }
}

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
        let state = match self.state {
            State::Live => 0,
            State::Deleting => 1,
        };
        let mut out = Vec::with_capacity(28 + self.owners.len() * 24);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&[FORMAT_V1, state, self.artifact_type.code(), 0]);
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

    /// Decodes a format-1 artifact record.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        let mut r = Reader(bytes);
        let [state, ty, pad] = r.header_of(MAGIC, FORMAT_V1)?;
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
        r.end()?;
        Ok(Self {
            state,
            artifact_type,
            size,
            stored_at,
            owners,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(join: bool, k: u8) -> Mark {
        Mark {
            join,
            key: [k; 32],
            version: u64::from(k) << 40,
            size: 7,
        }
    }

    fn sample() -> Record {
        Record {
            state: State::Live,
            artifact_type: ArtifactType::ConfigBundle,
            size: 1025,
            stored_at: 1_700_000_000_000,
            owners: 3,
            origin: Origin {
                key: [9; 32],
                version: 77,
            },
            marks: vec![mark(true, 1), mark(false, 2)],
        }
    }

    fn entry() -> Entry {
        Entry {
            state: EntryState::Live,
            artifact_type: ArtifactType::WasmModule,
            size: 10,
            stored_at: 5,
            count: 2,
            incarnation: 99,
            origin: Origin {
                key: [3; 32],
                version: 4,
            },
        }
    }

    #[test]
    fn round_trips_every_kind_type_and_state() {
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
            for state in [EntryState::Adding, EntryState::Live, EntryState::Removing] {
                let e = Entry {
                    state,
                    artifact_type,
                    ..entry()
                };
                assert_eq!(Entry::decode(&e.encode()), Ok(e));
            }
        }
        let u = Usage {
            bytes: 4096,
            artifacts: 3,
            marks: vec![mark(true, 5)],
        };
        assert_eq!(Usage::decode(&u.encode()), Ok(u));
    }

    #[test]
    fn layout_is_pinned() {
        let bytes = sample().encode();
        assert_eq!(&bytes[..8], b"ARTR\x02\x00\x02\x00");
        assert_eq!(&bytes[8..16], &1025u64.to_le_bytes());
        assert_eq!(&bytes[24..32], &3u64.to_le_bytes());
        assert_eq!(&bytes[32..64], &[9; 32]);
        assert_eq!(&bytes[64..72], &77u64.to_le_bytes());
        assert_eq!(&bytes[72..76], &2u32.to_le_bytes());
        assert_eq!(bytes[76], 1);
        assert_eq!(bytes.len(), 76 + 2 * 49);
        let e = entry().encode();
        assert_eq!(&e[..8], b"ARTE\x02\x01\x00\x00");
        assert_eq!(e.len(), 8 + 32 + 40);
    }

    #[test]
    fn marks_are_a_set_of_transitions() {
        let mut r = sample();
        assert!(r.has_mark(true, &[1; 32], 1 << 40));
        assert!(!r.has_mark(false, &[1; 32], 1 << 40), "kind matters");
        assert!(!r.has_mark(true, &[1; 32], 1), "version matters");
        assert_eq!(r.take_mark(true, &[1; 32], 1 << 40), Some(mark(true, 1)));
        assert_eq!(r.take_mark(true, &[1; 32], 1 << 40), None);
        assert_eq!(r.marks, vec![mark(false, 2)]);
    }

    #[test]
    fn rejects_truncated_garbage_and_other_versions() {
        let good = sample().encode();
        for cut in 0..good.len() {
            assert!(Record::decode(&good[..cut]).is_err(), "cut at {cut}");
        }
        assert!(Record::decode(&[good.as_slice(), &[0]].concat()).is_err());
        assert!(Record::decode(&[0xff; 64]).is_err());
        for (at, value) in [(0, b'X'), (4, 1), (4, 3), (5, 7), (6, 9), (7, 1), (76, 0)] {
            let mut bad = good.clone();
            bad[at] = value;
            assert!(Record::decode(&bad).is_err(), "byte {at} = {value}");
        }
        let mut no_owners = sample();
        no_owners.owners = 0;
        assert!(Record::decode(&no_owners.encode()).is_err());
        let mut huge = good.clone();
        huge[72..76].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(Record::decode(&huge).is_err());
        let e = entry().encode();
        for cut in 0..e.len() {
            assert!(Entry::decode(&e[..cut]).is_err(), "cut at {cut}");
        }
        assert!(Entry::decode(&good).is_err() && Record::decode(&e).is_err());
        let mut zero = entry();
        zero.count = 0;
        assert!(
            Entry::decode(&zero.encode()).is_err(),
            "a live entry holds something"
        );
    }

    #[test]
    fn format_1_records_are_read_only_for_migration() {
        let v1 = RecordV1 {
            state: State::Live,
            artifact_type: ArtifactType::Generic,
            size: 3,
            stored_at: 42,
            owners: vec![("@host".into(), 2), ("app-1".into(), 1)],
        };
        let bytes = v1.encode();
        assert_eq!(&bytes[..8], b"ARTR\x01\x00\x03\x00");
        assert!(RecordV1::is_v1(&bytes) && !RecordV1::is_v1(&sample().encode()));
        assert_eq!(RecordV1::decode(&bytes), Ok(v1));
        let err = Record::decode(&bytes).unwrap_err();
        assert!(err.contains("artifacts migrate"), "{err}");
    }

    #[test]
    fn usage_is_told_apart() {
        let u = Usage::default();
        assert!(Usage::is_usage(&u.encode()) && !Usage::is_usage(&sample().encode()));
        assert!(Record::is_artifact(&sample().encode()) && !Record::is_artifact(&u.encode()));
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

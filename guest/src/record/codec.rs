//! The byte level every record shares: a little-endian [`Reader`] over
//! untrusted bytes that refuses anything malformed, and a [`Writer`] that
//! lays out the same fields.

use super::{ArtifactType, MAX_MARKS, Mark, Origin};

/// A little-endian reader over untrusted bytes.
pub(super) struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    /// Reads a whole record with `read`: any bytes it leaves are an error.
    pub(super) fn whole<T>(
        bytes: &'a [u8],
        read: impl FnOnce(&mut Self) -> Result<T, String>,
    ) -> Result<T, String> {
        let mut r = Self(bytes);
        let out = read(&mut r)?;
        r.end()?;
        Ok(out)
    }
    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err("record is truncated".into());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    pub(super) fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?.first().copied().unwrap_or(0))
    }
    pub(super) fn u32(&mut self) -> Result<u32, String> {
        let mut w = [0u8; 4];
        w.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(w))
    }
    pub(super) fn u64(&mut self) -> Result<u64, String> {
        let mut w = [0u8; 8];
        w.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(w))
    }
    /// The magic number and format version, then the three header bytes.
    pub(super) fn header(&mut self, magic: [u8; 4], expected: u8) -> Result<[u8; 3], String> {
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
    /// A header whose three bytes are a state (`state` decodes it), an
    /// artifact type and a reserved zero; `what` names the kind in errors.
    pub(super) fn typed_header<S>(
        &mut self,
        magic: [u8; 4],
        version: u8,
        what: &str,
        state: impl FnOnce(u8) -> Option<S>,
    ) -> Result<(S, ArtifactType), String> {
        let [code, ty, pad] = self.header(magic, version)?;
        let state = state(code).ok_or_else(|| format!("{what} has an unknown state {code}"))?;
        let artifact_type = ArtifactType::from_code(ty)
            .ok_or_else(|| format!("{what} has an unknown artifact type {ty}"))?;
        if pad != 0 {
            return Err(format!("{what} has a non-zero reserved byte"));
        }
        Ok((state, artifact_type))
    }
    pub(super) fn key(&mut self) -> Result<[u8; 32], String> {
        let mut k = [0u8; 32];
        k.copy_from_slice(self.take(32)?);
        Ok(k)
    }
    pub(super) fn origin(&mut self) -> Result<Origin, String> {
        Ok(Origin {
            key: self.key()?,
            version: self.u64()?,
        })
    }
    pub(super) fn marks(&mut self) -> Result<Vec<Mark>, String> {
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

/// Writes what [`Reader`] reads, field by field, after the header.
pub(super) struct Writer(Vec<u8>);

impl Writer {
    /// Starts a record: the magic number, then the format version and the
    /// three header bytes.
    pub(super) fn new(magic: [u8; 4], header: [u8; 4], capacity: usize) -> Self {
        let mut out = Vec::with_capacity(capacity);
        out.extend_from_slice(&magic);
        out.extend_from_slice(&header);
        Self(out)
    }
    /// Starts a record whose header is a state, an artifact type and a
    /// reserved zero (what [`Reader::typed_header`] reads).
    pub(super) fn typed(
        magic: [u8; 4],
        version: u8,
        state: u8,
        artifact_type: ArtifactType,
        capacity: usize,
    ) -> Self {
        Self::new(magic, [version, state, artifact_type.code(), 0], capacity)
    }
    pub(super) fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.0.extend_from_slice(b);
        self
    }
    pub(super) fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }
    pub(super) fn u32(&mut self, v: u32) -> &mut Self {
        self.bytes(&v.to_le_bytes())
    }
    pub(super) fn u64(&mut self, v: u64) -> &mut Self {
        self.bytes(&v.to_le_bytes())
    }
    pub(super) fn origin(&mut self, origin: &Origin) -> &mut Self {
        self.bytes(&origin.key).u64(origin.version)
    }
    pub(super) fn marks(&mut self, marks: &[Mark]) -> &mut Self {
        self.u32(marks.len() as u32);
        for m in marks {
            self.u8(if m.join { 1 } else { 2 })
                .bytes(&m.key)
                .u64(m.version)
                .u64(m.size);
        }
        self
    }
    pub(super) fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.0)
    }
}

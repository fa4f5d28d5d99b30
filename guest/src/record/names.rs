//! The names record (`ARTN`): one owner's names, each pointing at an
//! artifact it holds, in its index space under
//! [`names_key`](crate::ops::names_key).
//!
//! Magic, version `3` and three zero bytes; the number of names (`u32`);
//! then each name as its length (one byte), its UTF-8 bytes and the 32-byte
//! hash it points at, in strictly ascending byte order of the names.

use super::NAMES_MAGIC;
use super::codec::{Reader, Writer};

/// The format version of the names record and of an entry names hold
/// (names came with format 3).
pub const NAMES_VERSION: u8 = 3;
/// The most names one owner keeps (the WIT's `name-limit`).
pub const MAX_NAMES: usize = 1000;
/// The longest name, in bytes.
pub const MAX_NAME_LEN: usize = 255;

/// Why `name` cannot be a name, if it cannot: it must be 1 to
/// [`MAX_NAME_LEN`] bytes of UTF-8 without control characters.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("a name cannot be empty".into());
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!(
            "a name is at most {MAX_NAME_LEN} bytes; this one has {}",
            name.len()
        ));
    }
    if let Some(c) = name.chars().find(|c| c.is_control()) {
        return Err(format!(
            "a name cannot hold control characters ({:?} is U+{:04X})",
            name,
            u32::from(c)
        ));
    }
    Ok(())
}

/// One owner's names, sorted by name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Names {
    names: Vec<(String, [u8; 32])>,
}

impl Names {
    /// How many names there are.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    fn find(&self, name: &str) -> Result<usize, usize> {
        self.names
            .binary_search_by(|(n, _)| n.as_bytes().cmp(name.as_bytes()))
    }

    /// What `name` points at.
    pub fn get(&self, name: &str) -> Option<[u8; 32]> {
        let i = self.find(name).ok()?;
        self.names.get(i).map(|(_, h)| *h)
    }

    /// Points `name` at `hash`; returns what it pointed at before.
    pub fn set(&mut self, name: &str, hash: [u8; 32]) -> Option<[u8; 32]> {
        match self.find(name) {
            Ok(i) => self
                .names
                .get_mut(i)
                .map(|(_, h)| std::mem::replace(h, hash)),
            Err(i) => {
                self.names.insert(i, (name.to_string(), hash));
                None
            }
        }
    }

    /// Removes `name`; returns what it pointed at.
    pub fn remove(&mut self, name: &str) -> Option<[u8; 32]> {
        let i = self.find(name).ok()?;
        Some(self.names.remove(i).1)
    }

    /// Removes every name that points at `hash`; returns how many.
    pub fn remove_pointing_at(&mut self, hash: &[u8; 32]) -> usize {
        let before = self.names.len();
        self.names.retain(|(_, h)| h != hash);
        before - self.names.len()
    }

    /// The names that start with `prefix` and sort after `after`, in order.
    pub fn listed<'a>(
        &'a self,
        prefix: &'a str,
        after: Option<&'a str>,
    ) -> impl Iterator<Item = (&'a str, &'a [u8; 32])> + 'a {
        let start = match after {
            Some(a) if a.as_bytes() >= prefix.as_bytes() => match self.find(a) {
                Ok(i) => i + 1,
                Err(i) => i,
            },
            _ => self.find(prefix).unwrap_or_else(|i| i),
        };
        self.names
            .get(start..)
            .unwrap_or_default()
            .iter()
            .take_while(move |(n, _)| n.starts_with(prefix))
            .map(|(n, h)| (n.as_str(), h))
    }

    /// Encodes the record.
    pub fn encode(&self) -> Vec<u8> {
        let size: usize = self.names.iter().map(|(n, _)| 33 + n.len()).sum();
        let mut w = Writer::new(NAMES_MAGIC, [NAMES_VERSION, 0, 0, 0], 12 + size);
        w.u32(self.names.len() as u32);
        for (name, hash) in &self.names {
            w.u8(name.len() as u8).bytes(name.as_bytes()).bytes(hash);
        }
        w.finish()
    }

    /// Decodes a names record: anything malformed (a bad name, names out
    /// of order or repeated, too many) is an error, never a panic.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        Reader::whole(bytes, |r| {
            if r.header(NAMES_MAGIC, NAMES_VERSION)? != [0, 0, 0] {
                return Err("names record has non-zero reserved bytes".into());
            }
            let n = r.u32()? as usize;
            if n > MAX_NAMES {
                return Err(format!("names record has {n} names, more than {MAX_NAMES}"));
            }
            let mut names: Vec<(String, [u8; 32])> = Vec::with_capacity(n);
            for _ in 0..n {
                let len = usize::from(r.u8()?);
                let name = std::str::from_utf8(r.take(len)?)
                    .map_err(|_| "names record has a name that is not UTF-8".to_string())?;
                check_name(name).map_err(|e| format!("names record: {e}"))?;
                if names
                    .last()
                    .is_some_and(|(last, _)| last.as_bytes() >= name.as_bytes())
                {
                    return Err("names record is not in strictly ascending order".into());
                }
                names.push((name.to_string(), r.key()?));
            }
            Ok(Self { names })
        })
    }
}

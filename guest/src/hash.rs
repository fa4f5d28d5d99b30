//! Content addresses: BLAKE3 hashes, held as their 32 bytes ([`struct@Hash`]) and
//! written as 64 lowercase hex digits only at the edges (callers' text,
//! error messages).

use std::fmt;

/// The length of a hash written in hex.
pub const HASH_HEX_LEN: usize = 64;

/// Hashes `content` with BLAKE3 and returns the hash in lowercase hex.
pub fn hash_hex(content: &[u8]) -> String {
    blake3::hash(content).to_hex().to_string()
}

/// Checks that `text` is exactly 64 lowercase hexadecimal digits.
///
/// This is the only gate between a caller's string and a backend key, so it
/// admits nothing else: no uppercase, no separators, no path characters.
pub fn validate(text: &str) -> Result<(), String> {
    if text.len() != HASH_HEX_LEN {
        return Err(format!(
            "expected {HASH_HEX_LEN} lowercase hex digits, got {} bytes",
            text.len()
        ));
    }
    match text
        .bytes()
        .position(|b| !matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        Some(at) => Err(format!(
            "expected lowercase hex digits, found {:?} at byte {at}",
            text.get(at..)
                .and_then(|rest| rest.chars().next())
                .unwrap_or('?')
        )),
        None => Ok(()),
    }
}

/// A BLAKE3 hash (or a key derived like one: owner keys, record keys), as
/// its 32 bytes. What the core's backend takes and lists.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hash([u8; 32]);

impl Hash {
    /// The hash of `content`.
    pub fn of(content: &[u8]) -> Self {
        Self(*blake3::hash(content).as_bytes())
    }

    /// A hash from its 32 bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Parses 64 lowercase hex digits (see [`validate`]).
    pub fn parse(text: &str) -> Result<Self, String> {
        validate(text)?;
        let mut out = [0u8; 32];
        let digit = |c: u8| match c {
            b'0'..=b'9' => c - b'0',
            _ => c - b'a' + 10,
        };
        for (slot, pair) in out.iter_mut().zip(text.as_bytes().chunks_exact(2)) {
            if let [hi, lo] = pair {
                *slot = digit(*hi) << 4 | digit(*lo);
            }
        }
        Ok(Self(out))
    }

    /// The 32 bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The 32 bytes as four little-endian words: how a key crosses the
    /// WIT `backend` interface (its `digest`).
    pub fn words(&self) -> (u64, u64, u64, u64) {
        let word = |i: usize| {
            let mut w = [0u8; 8];
            if let Some(b) = self.0.get(i * 8..i * 8 + 8) {
                w.copy_from_slice(b);
            }
            u64::from_le_bytes(w)
        };
        (word(0), word(1), word(2), word(3))
    }

    /// The hash from its four words (see [`words`](Self::words)).
    pub fn from_words((a, b, c, d): (u64, u64, u64, u64)) -> Self {
        let mut out = [0u8; 32];
        for (chunk, w) in out.chunks_exact_mut(8).zip([a, b, c, d]) {
            chunk.copy_from_slice(&w.to_le_bytes());
        }
        Self(out)
    }
}

impl From<blake3::Hash> for Hash {
    fn from(h: blake3::Hash) -> Self {
        Self(*h.as_bytes())
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_a_real_hash() {
        assert_eq!(validate(&hash_hex(b"hello")), Ok(()));
    }

    #[test]
    fn parse_and_display_round_trip() {
        let text = hash_hex(b"hello");
        let hash = Hash::parse(&text).unwrap();
        assert_eq!(hash, Hash::of(b"hello"));
        assert_eq!(hash.to_string(), text);
        assert!(Hash::parse(&text.to_uppercase()).is_err());
        assert_eq!(Hash::from_words(hash.words()), hash);
        assert_eq!(hash.words().0.to_le_bytes(), hash.as_bytes()[..8]);
    }

    #[test]
    fn empty_content_hashes_to_blake3_of_nothing() {
        assert_eq!(
            hash_hex(b""),
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
    }

    #[test]
    fn rejects_uppercase_short_long_nonhex_and_paths() {
        let good = hash_hex(b"x");
        for bad in [
            good.to_uppercase(),
            good[..63].to_string(),
            format!("{good}0"),
            String::new(),
            "../../etc/passwd".to_string(),
            format!("{}g", &good[..63]),
            format!("{}/", &good[..63]),
            format!("{}é", &good[..62]),
        ] {
            assert!(validate(&bad).is_err(), "accepted {bad:?}");
        }
    }
}

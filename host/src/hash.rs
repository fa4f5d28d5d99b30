//! [`struct@Hash`]: a validated BLAKE3 content address.

use std::fmt;
use std::str::FromStr;

/// A BLAKE3 hash, held as its 64 lowercase hexadecimal digits.
///
/// A `Hash` can only be made from text that passed [`Hash::from_hex`], so it
/// is always safe to use as a file name: backends build disk paths from
/// nothing else.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hash(String);

/// Why text is not a [`struct@Hash`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a hash (expected 64 lowercase hex digits): {0:.80?}")]
pub struct InvalidHash(pub String);

impl Hash {
    /// The length of a hash in hex digits.
    pub const HEX_LEN: usize = 64;

    /// Parses exactly 64 lowercase hex digits; anything else is refused.
    pub fn from_hex(text: &str) -> Result<Self, InvalidHash> {
        if text.len() == Self::HEX_LEN
            && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            Ok(Self(text.to_owned()))
        } else {
            Err(InvalidHash(text.to_owned()))
        }
    }

    /// The hash as 64 lowercase hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first two hex digits: the shard directory of the file backend.
    pub fn shard(&self) -> &str {
        self.0.get(..2).unwrap_or_default()
    }
}

impl FromStr for Hash {
    type Err = InvalidHash;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_hex(s)
    }
}

impl AsRef<str> for Hash {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.0)
    }
}

impl serde::Serialize for Hash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262";

    #[test]
    fn accepts_64_lowercase_hex_digits() {
        let h = Hash::from_hex(GOOD).expect("valid");
        assert_eq!(h.as_str(), GOOD);
        assert_eq!(h.shard(), "af");
    }

    #[test]
    fn refuses_anything_else() {
        let upper = GOOD.to_uppercase();
        let long = format!("{GOOD}0");
        let slash = format!("{}/", &GOOD[..63]);
        for bad in ["", &GOOD[..63], &long, &upper, "../../etc/passwd", &slash] {
            assert!(Hash::from_hex(bad).is_err(), "{bad:?}");
        }
    }
}

//! [`struct@Hash`]: a BLAKE3 content address, the currency of every call.

use std::fmt;
use std::str::FromStr;

/// A BLAKE3 hash: 32 bytes, written as 64 lowercase hexadecimal digits.
///
/// Every call that names an artifact takes one, so text is parsed once, at
/// the edge (the CLI, an app's call), with [`str::parse`] (which accepts a
/// `blake3:` prefix) or [`Hash::from_hex`] (exactly 64 lowercase digits).
/// Its hex form ([`Hash::to_hex`], `Display`) is always safe to use as a
/// file name: backends build disk paths from nothing else. Order is that of
/// the bytes, which is also the order of the hex.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hash([u8; 32]);

/// A hash's 64 lowercase hex digits, held without allocating.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Hex([u8; 64]);

impl Hex {
    /// The digits as text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl std::ops::Deref for Hex {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Hex {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<std::path::Path> for Hex {
    fn as_ref(&self) -> &std::path::Path {
        self.as_str().as_ref()
    }
}

impl fmt::Display for Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Every byte's two hex digits, in order: `000102…ff`.
#[allow(clippy::indexing_slicing)] // i < 256: every index is in bounds
const PAIRS: [u8; 512] = {
    let mut table = [0; 512];
    let mut i = 0;
    while i < 256 {
        table[2 * i] = DIGITS[i >> 4];
        table[2 * i + 1] = DIGITS[i & 15];
        i += 1;
    }
    table
};

/// Why text is not a [`struct@Hash`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a hash (expected 64 lowercase hex digits): {0:.80?}")]
pub struct InvalidHash(pub String);

impl Hash {
    /// The length of a hash in hex digits.
    pub const HEX_LEN: usize = 64;
    /// The prefix of the digest form, `blake3:<hex>`, that parsing accepts.
    pub const PREFIX: &str = "blake3:";

    /// The hash with these 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The BLAKE3 hash of `content`, computed natively (the store's own
    /// hashes come from the core; this is for keys such as the compile
    /// cache's).
    pub fn of(content: &[u8]) -> Self {
        Self::from_bytes(*blake3::hash(content).as_bytes())
    }

    /// Parses exactly 64 lowercase hex digits; anything else is refused.
    pub fn from_hex(text: &str) -> Result<Self, InvalidHash> {
        let invalid = || InvalidHash(text.to_owned());
        if text.len() != Self::HEX_LEN {
            return Err(invalid());
        }
        let mut bytes = [0; 32];
        for (byte, pair) in bytes.iter_mut().zip(text.as_bytes().chunks_exact(2)) {
            let [hi, lo] = pair else {
                return Err(invalid());
            };
            *byte = (value(*hi).ok_or_else(invalid)? << 4) | value(*lo).ok_or_else(invalid)?;
        }
        Ok(Self::from_bytes(bytes))
    }

    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The hash as 64 lowercase hex digits.
    pub fn to_hex(&self) -> Hex {
        let mut hex = [0; 64];
        for (pair, &byte) in hex.chunks_exact_mut(2).zip(&self.0) {
            pair.copy_from_slice(byte_hex(byte));
        }
        Hex(hex)
    }

    /// The first two hex digits: the shard directory of the backends.
    pub fn shard(&self) -> &'static str {
        std::str::from_utf8(byte_hex(self.0[0])).unwrap_or_default()
    }

    /// The digest form: `blake3:` and the hex.
    pub fn digest(&self) -> String {
        format!("{}{self}", Self::PREFIX)
    }
}

/// The two hex digits of `byte`.
fn byte_hex(byte: u8) -> &'static [u8] {
    let at = 2 * usize::from(byte);
    PAIRS.get(at..at + 2).unwrap_or_default()
}

fn value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        _ => None,
    }
}

impl FromStr for Hash {
    type Err = InvalidHash;
    /// 64 lowercase hex digits, optionally after `blake3:`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_hex(s.strip_prefix(Self::PREFIX).unwrap_or(s)).map_err(|_| InvalidHash(s.into()))
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.to_hex().as_str())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({self})")
    }
}

impl serde::Serialize for Hash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.to_hex().as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262";

    #[test]
    fn accepts_64_lowercase_hex_digits() {
        let h = Hash::from_hex(GOOD).expect("valid");
        assert_eq!(h.to_hex().as_str(), GOOD);
        assert_eq!(h.shard(), "af");
        assert_eq!(h.as_bytes()[0], 0xaf);
        assert_eq!(Hash::from_bytes(*h.as_bytes()), h);
        assert_eq!(
            &*Hash::of(b"x").to_hex(),
            blake3::hash(b"x").to_hex().as_str()
        );
    }

    #[test]
    fn parses_the_digest_form_and_prints_bare_hex() {
        let h: Hash = format!("blake3:{GOOD}").parse().expect("valid");
        assert_eq!(h.to_string(), GOOD);
        assert_eq!(h.digest(), format!("blake3:{GOOD}"));
        assert_eq!(GOOD.parse::<Hash>(), Ok(h));
        assert!(format!("sha256:{GOOD}").parse::<Hash>().is_err());
        assert!(Hash::from_hex(&format!("blake3:{GOOD}")).is_err());
    }

    #[test]
    fn orders_as_the_hex_does() {
        let mut hashes: Vec<Hash> = (0..50u8).map(|i| Hash::of(&[i])).collect();
        hashes.sort();
        let mut hex: Vec<String> = hashes.iter().map(Hash::to_string).collect();
        hex.sort();
        assert_eq!(hashes.iter().map(Hash::to_string).collect::<Vec<_>>(), hex);
    }

    #[test]
    fn refuses_anything_else() {
        let upper = GOOD.to_uppercase();
        let long = format!("{GOOD}0");
        let slash = format!("{}/", &GOOD[..63]);
        let wide = format!("é{}", &GOOD[..62]);
        for bad in [
            "",
            &GOOD[..63],
            &long,
            &upper,
            "../../etc/passwd",
            &slash,
            &wide,
        ] {
            assert!(Hash::from_hex(bad).is_err(), "{bad:?}");
            assert!(bad.parse::<Hash>().is_err(), "{bad:?}");
        }
    }
}

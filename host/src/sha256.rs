//! sha256 digests, the addresses OCI registries give content.
//!
//! The store addresses content by BLAKE3 ([`struct@Hash`]); a sha256 digest is
//! only an *alias*: content that came from or went to a registry also
//! answers to its `sha256:<hex>` (see
//! [`ArtifactStore::resolve_sha256`](crate::ArtifactStore::resolve_sha256)).

use std::fmt;
use std::str::FromStr;

use sha2::Digest as _;

pub use crate::store::Sha256Upload;
use crate::{Hash, InvalidHash};

/// A sha256 digest: 32 bytes, written `sha256:` and 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sha256Digest([u8; 32]);

impl Sha256Digest {
    /// The prefix of its text form.
    pub const PREFIX: &str = "sha256:";

    /// The digest with these 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The sha256 digest of `content`.
    pub fn of(content: &[u8]) -> Self {
        let mut hasher = Sha256Hasher::default();
        hasher.update(content);
        hasher.finish()
    }

    /// The 64 lowercase hex digits, without the prefix.
    pub fn to_hex(&self) -> String {
        // The same bytes as a Hash: its hex form is the one hex writer.
        Hash::from_bytes(self.0).to_hex().to_string()
    }

    /// The same 32 bytes as a [`struct@Hash`]: what backends name files
    /// and objects by (the one place a key becomes a path is shared).
    pub(crate) fn as_key(&self) -> Hash {
        Hash::from_bytes(self.0)
    }
}

impl FromStr for Sha256Digest {
    type Err = InvalidHash;
    /// `sha256:` and exactly 64 lowercase hex digits.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidHash(s.to_owned());
        let hex = s.strip_prefix(Self::PREFIX).ok_or_else(invalid)?;
        let bytes = Hash::from_hex(hex).map_err(|_| invalid())?;
        Ok(Self(*bytes.as_bytes()))
    }
}

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", Self::PREFIX, self.to_hex())
    }
}

impl fmt::Debug for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl serde::Serialize for Sha256Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// sha256 over content given in pieces.
#[derive(Default, Clone)]
pub struct Sha256Hasher(sha2::Sha256);

impl fmt::Debug for Sha256Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sha256Hasher").finish_non_exhaustive()
    }
}

impl Sha256Hasher {
    /// Adds the next piece.
    pub fn update(&mut self, piece: &[u8]) {
        self.0.update(piece);
    }

    /// The digest of every piece added, in order.
    pub fn finish(self) -> Sha256Digest {
        Sha256Digest(self.0.finalize().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digest_and_text_form() {
        // sha256("abc"), FIPS 180-2's example.
        let d = Sha256Digest::of(b"abc");
        let text = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(d.to_string(), text);
        assert_eq!(text.parse::<Sha256Digest>(), Ok(d));
        for bad in [
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            "sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD",
            "sha256:ba78",
            "sha512:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        ] {
            assert!(bad.parse::<Sha256Digest>().is_err(), "{bad}");
        }
    }
}

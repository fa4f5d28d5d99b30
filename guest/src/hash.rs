//! Content addresses: BLAKE3 hashes written as 64 lowercase hex digits.

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_a_real_hash() {
        assert_eq!(validate(&hash_hex(b"hello")), Ok(()));
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

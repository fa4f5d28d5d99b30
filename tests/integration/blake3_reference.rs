//! The core's hashes equal the official BLAKE3 implementation's: the
//! `blake3` crate always, and the `b3sum` CLI where it is installed.

use std::io::Write;
use std::process::{Command, Stdio};

use artifacts::{ArtifactStore, ArtifactType};

use crate::fixture::{SIZES, pattern};

fn b3sum(content: &[u8]) -> Option<String> {
    let mut child = Command::new("b3sum")
        .arg("--no-names")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .ok()?;
    child.stdin.take()?.write_all(content).ok()?;
    let out = child.wait_with_output().ok()?;
    Some(String::from_utf8(out.stdout).ok()?.trim().to_string())
}

#[test]
fn hashes_match_the_reference_implementation() {
    let store = ArtifactStore::open_memory().unwrap();
    let have_b3sum = b3sum(b"").is_some();
    if !have_b3sum {
        eprintln!("b3sum not installed: comparing with the blake3 crate only");
    }
    for size in SIZES.into_iter().chain([1 << 20 | 1]) {
        let content = pattern(size);
        let hash = store.put(&content, ArtifactType::Generic).unwrap();
        assert_eq!(
            hash.to_hex().as_str(),
            blake3::hash(&content).to_hex().as_str(),
            "size {size}"
        );
        if have_b3sum {
            assert_eq!(
                Some(hash.to_string()),
                b3sum(&content),
                "b3sum, size {size}"
            );
        }
    }
    // Pinned values from BLAKE3's published test vectors.
    assert_eq!(
        store
            .put(b"", ArtifactType::Generic)
            .unwrap()
            .to_hex()
            .as_str(),
        "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
    );
    assert_eq!(
        store
            .put(&pattern(1), ArtifactType::Generic)
            .unwrap()
            .to_string(),
        "2d3adedff11b61f14c886e35afa036736dcd87a74d27b5c1510225d0f592e213"
    );
}

//! `sha256:HEX` on the command line: the artifact a sha256 alias names
//! (content pushed to or pulled from an OCI registry), wherever a hash is
//! taken (`get`, `stat`, `push`).

use artifacts::sha256::Sha256Digest;
use artifacts::{ArtifactStore, Hash};

use crate::{Failure, hash_arg};

/// The artifact `text` names: `sha256:HEX` through its alias, anything
/// else as a hash (64 hex digits or `blake3:HEX`).
pub(crate) fn hash_or_alias(store: &ArtifactStore, text: &str) -> Result<Hash, Failure> {
    if text.starts_with(Sha256Digest::PREFIX) {
        alias_arg(store, text)
    } else {
        hash_arg(text)
    }
}

/// The artifact the alias `sha256:HEX` names (exit 3 if none is stored).
pub(crate) fn alias_arg(store: &ArtifactStore, text: &str) -> Result<Hash, Failure> {
    let digest: Sha256Digest = text
        .parse()
        .map_err(|_| artifacts::Error::InvalidHash(text.to_owned()))?;
    store
        .resolve_sha256(&digest)?
        .ok_or(Failure::NoAlias(digest))
}

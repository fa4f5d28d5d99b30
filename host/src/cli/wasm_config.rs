//! What `push` publishes besides the wasm binary: the config and manifest
//! of a wasm OCI artifact, in the layout wkg (wasm-pkg-tools, through
//! oci-wasm) and the CNCF TAG Runtime's "Wasm OCI Artifact" layout use:
//!
//! - config (`application/vnd.wasm.config.v0+json`): `created`,
//!   `architecture` `wasm`, `os` `wasip2` for a component (`wasip1` for a
//!   core module), `layerDigests` (the one layer's digest) and, for a
//!   component, `component` with its top-level `imports` and `exports`
//!   (the names of its world's imports and exports, interfaces fully
//!   qualified, as `wasi:cli/run@0.2.0`);
//! - manifest: an OCI image manifest with that config and one
//!   `application/wasm` layer, annotated with `org.opencontainers.image.created`.

use std::time::SystemTime;

use artifacts::sha256::Sha256Digest;
use serde_json::json;
use wasmparser::{Parser, Payload};

use super::registry::{MANIFEST_MEDIA_TYPE, WASM_CONFIG_MEDIA_TYPE, WASM_LAYER_MEDIA_TYPE};
use crate::Failure;

/// What kind of wasm binary, from its 8-byte preamble.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WasmKind {
    /// A core module (version 1).
    Module,
    /// A component (the component-model layer).
    Component,
}

impl WasmKind {
    /// The kind of `content`, or `None` if it is not a wasm binary.
    pub(crate) fn of(content: &[u8]) -> Option<Self> {
        match content.get(..8)? {
            [0, b'a', b's', b'm', 1, 0, 0, 0] => Some(Self::Module),
            [0, b'a', b's', b'm', _, _, 1, 0] => Some(Self::Component),
            _ => None,
        }
    }
}

/// The config blob for `content` (a wasm binary of `kind` whose layer has
/// `digest`): its JSON bytes.
pub(crate) fn config(
    content: &[u8],
    kind: WasmKind,
    digest: &Sha256Digest,
    created: SystemTime,
) -> Result<Vec<u8>, Failure> {
    let created = humantime::format_rfc3339_seconds(created).to_string();
    let mut config = json!({
        "created": created,
        "architecture": "wasm",
        "os": match kind {
            WasmKind::Component => "wasip2",
            WasmKind::Module => "wasip1",
        },
        "layerDigests": [digest.to_string()],
    });
    if kind == WasmKind::Component {
        let (imports, exports) = world_of(content)?;
        if let Some(map) = config.as_object_mut() {
            map.insert(
                "component".into(),
                json!({ "imports": imports, "exports": exports }),
            );
        }
    }
    serde_json::to_vec(&config).map_err(|e| Failure::Output(format!("encoding the config: {e}")))
}

/// The manifest: the config and the one wasm layer, with their digests
/// and sizes.
pub(crate) fn manifest(
    config: &[u8],
    layer_digest: &Sha256Digest,
    layer_size: u64,
    created: SystemTime,
) -> Vec<u8> {
    let created = humantime::format_rfc3339_seconds(created).to_string();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": {
            "mediaType": WASM_CONFIG_MEDIA_TYPE,
            "digest": Sha256Digest::of(config).to_string(),
            "size": config.len(),
        },
        "layers": [{
            "mediaType": WASM_LAYER_MEDIA_TYPE,
            "digest": layer_digest.to_string(),
            "size": layer_size,
        }],
        "annotations": { "org.opencontainers.image.created": created },
    });
    // serde_json's maps are ordered by key, so equal input, equal bytes.
    serde_json::to_vec(&manifest).unwrap_or_default()
}

/// A component's top-level import and export names, in order.
fn world_of(content: &[u8]) -> Result<(Vec<String>, Vec<String>), Failure> {
    let invalid =
        |e: wasmparser::BinaryReaderError| Failure::Usage(format!("not a valid component: {e}"));
    let (mut imports, mut exports) = (Vec::new(), Vec::new());
    let mut depth = 0u32;
    for payload in Parser::new(0).parse_all(content) {
        match payload.map_err(invalid)? {
            // Nested modules and components have imports and exports of
            // their own: only the outermost ones are the world's.
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(section) if depth == 0 => {
                for import in section {
                    imports.push(import.map_err(invalid)?.name.name.to_string());
                }
            }
            Payload::ComponentExportSection(section) if depth == 0 => {
                for export in section {
                    exports.push(export.map_err(invalid)?.name.name.to_string());
                }
            }
            _ => {}
        }
    }
    Ok((imports, exports))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        assert_eq!(WasmKind::of(b"\0asm\x01\0\0\0"), Some(WasmKind::Module));
        assert_eq!(
            WasmKind::of(b"\0asm\x0d\0\x01\0rest"),
            Some(WasmKind::Component)
        );
        assert_eq!(WasmKind::of(b"\0asm"), None);
        assert_eq!(WasmKind::of(b"hello, world"), None);
    }
}

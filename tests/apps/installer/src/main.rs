//! The installer: carries a plugin, stores it as a wasm module, loads it
//! back, checks it and prints its hash (and nothing else) on stdout.

wit_bindgen::generate!({ path: "../../../wit", world: "app" });

use artifacts::store::store;
use artifacts::store::types::ArtifactType;

const PLUGIN: &[u8] = include_bytes!("../../plugin.wasm");

fn main() {
    let hash = store::put(PLUGIN, ArtifactType::WasmModule).expect("put plugin");
    assert!(store::contains(&hash).expect("contains"));
    let back = store::get(&hash).expect("get plugin");
    assert!(back == PLUGIN, "plugin came back different");
    let meta = store::stat(&hash).expect("stat plugin");
    assert_eq!(meta.size, PLUGIN.len() as u64);
    assert_eq!(meta.artifact_type, ArtifactType::WasmModule);
    assert!(meta.reference_count >= 1);
    let listed = store::list(None, 10).expect("list");
    assert!(listed.iter().any(|m| m.hash == hash), "own artifact listed");
    println!("{hash}");
}

//! A small plugin: the installer app carries it, stores it, and the host
//! launches it by hash. It proves it ran by printing a line and keeping a
//! config bundle of its own in the store.

wit_bindgen::generate!({ path: "../../../wit", world: "app" });

use artifacts::store::store;
use artifacts::store::types::ArtifactType;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let config = format!("plugin config, args {:?}", args.get(1..).unwrap_or_default());
    let hash = store::put(config.as_bytes(), ArtifactType::ConfigBundle).expect("put config");
    let back = store::get(&hash).expect("get config");
    assert_eq!(back, config.as_bytes());
    println!("plugin ran; config {hash}");
}

//! How the CLI prints hashes: bare hex, or `blake3:<hex>` with `--digest`.
//! (Every hash argument takes either form: `Hash`'s `FromStr`.)

use std::sync::OnceLock;

use artifacts::Hash;

static DIGEST: OnceLock<bool> = OnceLock::new();

/// Chooses the form for this process (`--digest`); called once, first.
pub(crate) fn set(digest: bool) {
    let _ = DIGEST.set(digest);
}

/// `hash` as this process prints it.
pub(crate) fn shown(hash: &Hash) -> String {
    if DIGEST.get().copied().unwrap_or(false) {
        hash.digest()
    } else {
        hash.to_string()
    }
}

/// `value` as pretty JSON, every `"hash"` field in the chosen form.
pub(crate) fn json(value: &impl serde::Serialize) -> String {
    let mut value = serde_json::to_value(value).unwrap_or_default();
    if DIGEST.get().copied().unwrap_or(false) {
        rewrite(&mut value);
    }
    serde_json::to_string_pretty(&value).unwrap_or_default()
}

/// Rewrites every `"hash": "<hex>"` in `value` to the digest form.
fn rewrite(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Array(items) => items.iter_mut().for_each(rewrite),
        serde_json::Value::Object(fields) => {
            for (name, field) in fields.iter_mut() {
                let hash = match &*field {
                    serde_json::Value::String(text) if name == "hash" => Hash::from_hex(text).ok(),
                    _ => None,
                };
                match hash {
                    Some(hash) => *field = serde_json::Value::String(hash.digest()),
                    None => rewrite(field),
                }
            }
        }
        _ => {}
    }
}

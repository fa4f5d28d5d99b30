//! The librarian: keeps versions of a plugin under names, so that it finds
//! them again on its next run (it has no filesystem), and moves
//! `plugin@latest` from one version to the next with a compare-and-swap.
//!
//! - `install VERSION`: stores `plugin VERSION`, names it `plugin@VERSION`,
//!   moves `plugin@latest` to it from where it was (asserting the swap from
//!   a stale place fails and changes nothing), releases its own put (the
//!   names keep it) and prints the hash;
//! - `latest`: prints the content `plugin@latest` points at, or `none`;
//! - `list`: prints every `plugin@` name and its hash, one a line;
//! - `retire VERSION`: deletes `plugin@VERSION`, printing what it pointed at.

wit_bindgen::generate!({ path: "../../../wit", world: "app" });

use artifacts::store::names;
use artifacts::store::store;
use artifacts::store::types::{ArtifactType, NameError};

fn arg(n: usize) -> String {
    std::env::args().nth(n).unwrap_or_default()
}

fn main() {
    let version = arg(2);
    match arg(1).as_str() {
        "install" => {
            let content = format!("plugin {version}");
            let hash = store::put(content.as_bytes(), ArtifactType::WasmModule).expect("put");
            let pinned = format!("plugin@{version}");
            names::tag_set(&pinned, &hash).expect("tag-set");
            let before = names::tag_get("plugin@latest").expect("tag-get");
            if let Some(old) = &before {
                // From a place it is not: refused, and nothing changes.
                let stale = names::tag_replace("plugin@latest", None, &hash);
                assert!(
                    matches!(&stale, Err(NameError::NameConflict(Some(now))) if now == old),
                    "stale replace: {stale:?}"
                );
            }
            names::tag_replace("plugin@latest", before.as_deref(), &hash).expect("tag-replace");
            // Its own put reference goes; the names keep the plugin (and
            // releasing again drops nothing: only names hold it).
            assert_eq!(store::release(&hash).expect("release"), 0);
            assert_eq!(store::release(&hash).expect("release again"), 0);
            assert_eq!(store::get(&hash).expect("get"), content.as_bytes());
            println!("{hash}");
        }
        "latest" => match names::tag_get("plugin@latest").expect("tag-get") {
            Some(hash) => {
                let content = store::get(&hash).expect("get latest");
                println!("{}", String::from_utf8_lossy(&content));
            }
            None => println!("none"),
        },
        "list" => {
            for tag in names::tag_list("plugin@", None, names::name_limit()).expect("tag-list") {
                println!("{} {}", tag.name, tag.hash);
            }
        }
        "retire" => {
            let gone = names::tag_delete(&format!("plugin@{version}")).expect("tag-delete");
            println!("{}", gone.unwrap_or_else(|| "none".into()));
        }
        other => {
            eprintln!("librarian: unknown command {other:?}");
            std::process::exit(2);
        }
    }
}

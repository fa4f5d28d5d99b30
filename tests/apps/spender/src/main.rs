//! An app that makes the host work for it: each mode calls the store in a
//! loop until the host stops it (out of fuel), printing every 100 calls how
//! many it made so far (to standard error), or makes one large call.

wit_bindgen::generate!({ path: "../../../wit", world: "app" });

use artifacts::store::names;
use artifacts::store::store;
use artifacts::store::types::ArtifactType;

fn arg(n: usize) -> String {
    std::env::args().nth(n).unwrap_or_default()
}

fn report(calls: u64) {
    if calls % 100 == 0 {
        eprintln!("spender: {calls} calls");
    }
}

fn main() {
    match arg(1).as_str() {
        // count() again and again.
        "count" => {
            for calls in 1u64.. {
                let _ = std::hint::black_box(store::count());
                report(calls);
            }
        }
        // verify(HASH) again and again.
        "verify" => {
            let hash = arg(2);
            for calls in 1u64.. {
                let _ = std::hint::black_box(store::verify(&hash));
                eprintln!("spender: {calls} verifies");
            }
        }
        // One put of SIZE bytes; prints what the store answered.
        "put" => {
            let size: usize = arg(2).parse().unwrap_or(0);
            let content = vec![0x5au8; size];
            match store::put(&content, ArtifactType::Generic) {
                Ok(hash) => println!("stored {hash}"),
                Err(e) => println!("refused {e:?}"),
            }
        }
        // One get of HASH; prints how many bytes it returned.
        "get" => match store::get(&arg(2)) {
            Ok(content) => println!("got {}", content.len()),
            Err(e) => println!("refused {e:?}"),
        },
        // tag-set(NAME, HASH) again and again.
        "tag-set" => {
            let (name, hash) = (arg(2), arg(3));
            for calls in 1u64.. {
                let _ = std::hint::black_box(names::tag_set(&name, &hash));
                report(calls);
            }
        }
        // tag-get(NAME) again and again.
        "tag-get" => {
            let name = arg(2);
            for calls in 1u64.. {
                let _ = std::hint::black_box(names::tag_get(&name));
                report(calls);
            }
        }
        // tag-list(PREFIX, none, LIMIT) again and again.
        "tag-list" => {
            let (prefix, limit) = (arg(2), arg(3).parse().unwrap_or(1));
            for calls in 1u64.. {
                let _ = std::hint::black_box(names::tag_list(&prefix, None, limit));
                report(calls);
            }
        }
        other => {
            eprintln!("spender: unknown mode {other:?}");
            std::process::exit(2)
        }
    }
}

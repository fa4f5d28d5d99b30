// A plugin that the launcher app installs and launches; each command tries
// something a child may or may not do:
//
// - `hello`: prints its version, identity and standard input, stores
//   something of its own and shows it sees only that (`count` 1, no names);
// - `peek HASH`: whether it can read HASH (its parent's secret);
// - `hog`: allocates until its memory runs out (a trap);
// - `spin`: computes forever (out of fuel);
// - `sleep`: sleeps an hour (its wall clock);
// - `shout N`: writes N bytes (its output limit);
// - `flood N`: writes N bytes 64 KiB at a time (more than its memory);
// - `fill N`: stores N bytes and prints how the store answered;
// - `nest HASH`: launches HASH (itself, granted) with `nest HASH`, as deep
//   as it may, and prints how deep it got;
// - `nest-hog HASH MIB`: holds MIB MiB, then launches HASH with
//   `nest-hog HASH MIB/2` and all it has left; the one too deep to launch
//   allocates until its memory runs out.

wit_bindgen::generate!({ path: "../../../wit", world: "app" });

use std::io::{Read, Write};

use artifacts::store::launch;
use artifacts::store::names;
use artifacts::store::store;
use artifacts::store::types::{ArtifactType, Error};

fn arg(n: usize) -> String {
    std::env::args().nth(n).unwrap_or_default()
}

fn main() {
    let me = arg(0);
    match arg(1).as_str() {
        "hello" => {
            let mut input = String::new();
            std::io::stdin().read_to_string(&mut input).expect("stdin");
            let mine = format!("state of v{VERSION}");
            let hash = store::put(mine.as_bytes(), ArtifactType::ConfigBundle).expect("put");
            names::tag_set("state", &hash).expect("tag-set");
            let seen = store::count().expect("count");
            let named = names::tag_list("", None, 1000).expect("tag-list").len();
            println!("v{VERSION} as {me}: stdin {input:?}, sees {seen} artifact(s), {named} name(s)");
        }
        "peek" => match store::get(&arg(2)) {
            Ok(_) => println!("peek: found"),
            Err(Error::NotFound(_)) => println!("peek: not-found"),
            Err(e) => println!("peek: {e:?}"),
        },
        "hog" => {
            let mut held: Vec<Vec<u8>> = Vec::new();
            loop {
                held.push(vec![1; 1 << 20]);
                std::hint::black_box(&held);
            }
        }
        "spin" => {
            let mut x = 0u64;
            loop {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        }
        "sleep" => std::thread::sleep(std::time::Duration::from_secs(3600)),
        "shout" => {
            let n: usize = arg(2).parse().expect("N");
            std::io::stdout().write_all(&vec![b'x'; n]).expect("write");
        }
        "flood" => {
            let n: usize = arg(2).parse().expect("N");
            let chunk = [b'x'; 64 << 10];
            let mut out = std::io::stdout();
            let mut written = 0;
            while written < n {
                let len = chunk.len().min(n - written);
                out.write_all(&chunk[..len]).expect("write");
                written += len;
            }
            out.flush().expect("flush");
        }
        "fill" => {
            let n: usize = arg(2).parse().expect("N");
            let content: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
            match store::put(&content, ArtifactType::Generic) {
                Ok(_) => println!("fill: stored"),
                Err(Error::QuotaExceeded(q)) => println!("fill: quota-exceeded {}", q.limit),
                Err(e) => println!("fill: {e:?}"),
            }
        }
        "nest" => {
            let hash = arg(2);
            let child = launch::Child {
                component: hash.clone(),
                name: "n".into(),
                args: vec!["nest".into(), hash.clone()],
                stdin: Vec::new(),
                limits: launch::limits_max(),
                grants: vec![hash],
                allow_launch: true,
            };
            match launch::run(&child) {
                Ok(outcome) => {
                    print!("{}", String::from_utf8_lossy(&outcome.stdout));
                    println!("{me} ran a child");
                }
                Err(e) => println!("{me}: {e:?}"),
            }
        }
        "nest-hog" => {
            let (hash, mib): (String, usize) = (arg(2), arg(3).parse().expect("MIB"));
            let held = vec![1u8; mib << 20];
            std::hint::black_box(&held);
            let child = launch::Child {
                component: hash.clone(),
                name: "n".into(),
                args: vec!["nest-hog".into(), hash.clone(), (mib / 2).to_string()],
                stdin: Vec::new(),
                limits: launch::limits_max(),
                grants: vec![hash],
                allow_launch: true,
            };
            match launch::run(&child) {
                Ok(outcome) => print!("{}", String::from_utf8_lossy(&outcome.stdout)),
                Err(launch::LaunchError::TooDeep(_)) => {
                    let mut more: Vec<Vec<u8>> = Vec::new();
                    loop {
                        more.push(vec![1; 1 << 20]);
                        std::hint::black_box(&more);
                    }
                }
                Err(e) => println!("{me}: {e:?}"),
            }
            println!("{me} held {mib} MiB");
        }
        other => {
            eprintln!("unknown command {other:?}");
            std::process::exit(2);
        }
    }
}

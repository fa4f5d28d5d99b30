//! The launcher: a plugin host inside the sandbox. It installs two
//! versions of a plugin (it carries them), names them, launches
//! `plugin@latest`, moves the name, launches again, and then tries every
//! way a plugin could take more than it was given or see what it was not.
//! Each step prints one line the host's test checks.
//!
//! - `demo`: all of it;
//! - `try`: one launch, printing how it ended (for a host that does not
//!   let it launch);
//! - `spin-all`, `sleep-all`: a child that spins or sleeps with all the
//!   launcher has left;
//! - `nest-hog MIB`: children launching children, each holding half of
//!   what its parent held (MIB first), the deepest allocating until it
//!   cannot: together they never hold more than the launcher's budget;
//! - `flood BYTES`: a child writing BYTES of output with all the launcher
//!   has left, printing how much came back (not keeping a copy);
//! - `children N`: N children with distinct names, each storing and
//!   naming something of its own;
//! - `churn N SIZE TAG`: N puts of SIZE fresh bytes, each released at once;
//!   `churn-children HASH M N SIZE TAG`: M children (HASH, this launcher)
//!   churning with all it has left, then the launcher churning itself;
//! - `each HASH...`: launches each of the given components (granted by the
//!   host) in turn, printing how each launch ended.

wit_bindgen::generate!({ path: "../../../wit", world: "app" });

use artifacts::store::launch::{self, Child, LaunchError, Limits};
use artifacts::store::names;
use artifacts::store::store;
use artifacts::store::types::ArtifactType;

const V1: &[u8] = include_bytes!("../../launchee-v1.wasm");
const V2: &[u8] = include_bytes!("../../launchee-v2.wasm");

fn child(component: &str, args: &[&str], limits: Limits) -> Child {
    Child {
        component: component.to_string(),
        name: "plugin".into(),
        args: args.iter().map(|a| a.to_string()).collect(),
        stdin: Vec::new(),
        limits,
        grants: Vec::new(),
        allow_launch: false,
    }
}

/// The launch's result, one line: `exit N: STDOUT` or the error.
fn report(what: &str, child: &Child) {
    match launch::run(child) {
        Ok(o) => println!(
            "{what}: exit {}: {}",
            o.exit_code,
            String::from_utf8_lossy(&o.stdout).trim_end()
        ),
        Err(e) => println!("{what}: {e:?}"),
    }
}

fn install(content: &[u8], version: &str) -> String {
    let hash = store::put(content, ArtifactType::WasmModule).expect("put plugin");
    names::tag_set(&format!("plugin@{version}"), &hash).expect("tag-set");
    hash
}

/// N puts of SIZE fresh bytes (seeded by TAG), each released at once;
/// prints how many were stored and refused.
fn churn(n: &str, size: &str, tag: &str) {
    let (n, size): (u32, usize) = (n.parse().expect("N"), size.parse().expect("SIZE"));
    let (mut stored, mut refused) = (0, 0);
    for i in 0..n {
        let seed = format!("{tag}/{i}/");
        let content: Vec<u8> = seed.bytes().cycle().take(size).collect();
        match store::put(&content, ArtifactType::Generic) {
            Ok(hash) => {
                store::release(&hash).expect("release");
                stored += 1;
            }
            Err(_) => refused += 1,
        }
    }
    println!("churn {tag}: stored {stored} refused {refused}");
}

fn main() {
    let max = launch::limits_max();
    let small = Limits {
        fuel: 2_000_000_000,
        memory_bytes: 8 << 20,
        wall_time_ms: 10_000,
        max_output: 1 << 20,
        max_bytes: 1 << 20,
        max_artifacts: 10,
    };
    match std::env::args().nth(1).as_deref() {
        Some("try") => {
            let v1 = install(V1, "1");
            report("try", &child(&v1, &["hello"], small));
        }
        Some("spin-all") => {
            let v1 = install(V1, "1");
            report("spin all", &child(&v1, &["spin"], max));
            // The child burned all the fuel the launcher had: it never gets here.
            println!("still running");
        }
        Some("sleep-all") => {
            let v1 = install(V1, "1");
            report("sleep all", &child(&v1, &["sleep"], max));
            // The launcher's own deadline has passed: it is stopped here.
            let mut x = 0u64;
            loop {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        }
        Some("flood") => {
            let v2 = install(V2, "2");
            let bytes = std::env::args().nth(2).expect("BYTES");
            match launch::run(&child(&v2, &["flood", &bytes], max)) {
                Ok(o) => println!("flood: exit {}: {} bytes back", o.exit_code, o.stdout.len()),
                Err(e) => println!("flood: {e:?}"),
            }
        }
        Some("children") => {
            let v1 = install(V1, "1");
            let n: u32 = std::env::args().nth(2).expect("N").parse().expect("N");
            let mut ok = 0;
            for i in 0..n {
                let mut c = child(&v1, &["hello"], small);
                c.name = format!("child-{i}");
                if matches!(launch::run(&c), Ok(o) if o.exit_code == 0) {
                    ok += 1;
                }
            }
            println!("children: {ok} of {n} ran");
        }
        Some("nest-hog") => {
            let v2 = install(V2, "2");
            let mib = std::env::args().nth(2).expect("MIB");
            let mut nest = child(&v2, &["nest-hog", &v2, &mib], max);
            nest.grants = vec![v2.clone()];
            nest.allow_launch = true;
            report("nest hog", &nest);
        }
        // Review attacks (branch launch-review).
        Some("free-name") => {
            // N launches with a name of KIB KiB of U+0001: refused before
            // anything is charged, the refusal echoing the name escaped.
            let n: usize = std::env::args().nth(2).expect("N").parse().expect("N");
            let kib: usize = std::env::args().nth(3).expect("KIB").parse().expect("KIB");
            let v1 = install(V1, "1");
            let mut c = child(&v1, &["hello"], small);
            c.name = "\u{1}".repeat(kib << 10);
            let mut echoed = 0;
            for _ in 0..n {
                match launch::run(&c) {
                    Err(LaunchError::InvalidName(why)) => echoed = why.len(),
                    other => {
                        println!("free-name: unexpected {:?}", other.map(|o| o.exit_code));
                        return;
                    }
                }
            }
            println!("free-name: {n} calls, refusal {echoed} bytes for a {} byte name", c.name.len());
        }
        Some("free-grants") => {
            // N launches with K grants: without the host's leave to launch
            // (not-allowed), every grant lifted and parsed first, uncharged.
            let n: usize = std::env::args().nth(2).expect("N").parse().expect("N");
            let k: usize = std::env::args().nth(3).expect("K").parse().expect("K");
            let mut c = child(&"0".repeat(64), &["hello"], small);
            c.grants = vec!["0".repeat(64); k];
            let mut last = String::new();
            for _ in 0..n {
                last = format!("{:?}", launch::run(&c).map(|o| o.exit_code));
            }
            println!("free-grants: {n} calls: {last}");
        }
        Some("variants") => {
            // N launches of N distinct components: V1 with a custom
            // section holding a counter. Each is compiled and kept.
            let n: u64 = std::env::args().nth(2).expect("N").parse().expect("N");
            let (mut ok, mut last) = (0, String::new());
            for i in 0..n {
                let mut bytes = V1.to_vec();
                // custom section: id 0, size 10, name "x" (len 1), 8 bytes
                bytes.extend_from_slice(&[0, 10, 1, b'x']);
                bytes.extend_from_slice(&i.to_le_bytes());
                let hash = store::put(&bytes, ArtifactType::WasmModule).expect("put variant");
                match launch::run(&child(&hash, &["hello"], small)) {
                    Ok(o) if o.exit_code == 0 => ok += 1,
                    Ok(o) => last = format!("exit {}", o.exit_code),
                    Err(e) => last = format!("{e:?}"),
                }
                store::remove(&hash).expect("remove variant");
            }
            println!("variants: {ok} of {n} ran {last}");
        }
        Some("stdin") => {
            // A child given MIB MiB of standard input, which it never
            // reads, sleeping until its 1.5 s are up.
            let mib: usize = std::env::args().nth(2).expect("MIB").parse().expect("MIB");
            let v1 = install(V1, "1");
            let mut c = child(&v1, &["sleep"], Limits { wall_time_ms: 1500, ..small });
            c.stdin = vec![7u8; mib << 20];
            report("stdin", &c);
        }
        Some("probe") => {
            // How long launching one particular component takes: whether
            // anyone on this host compiled it before shows.
            let mut bytes = V1.to_vec();
            bytes.extend_from_slice(&[0, 10, 1, b'p']);
            bytes.extend_from_slice(&0x5ec2e7u64.to_le_bytes());
            let hash = store::put(&bytes, ArtifactType::WasmModule).expect("put probe");
            let started = std::time::Instant::now();
            let ok = matches!(launch::run(&child(&hash, &["hello"], small)), Ok(o) if o.exit_code == 0);
            println!("probe: {} ms {ok}", started.elapsed().as_millis());
        }
        Some("self-fill") => {
            // Launches HASH (this launcher, granted by the host) as a child
            // that stores K tiny artifacts and then sleeps past its deadline.
            let hash = std::env::args().nth(2).expect("HASH");
            let k = std::env::args().nth(3).expect("K");
            let mut c = child(&hash, &["fill-many", &k], launch::limits_max());
            c.grants = vec![hash.clone()];
            let started = std::time::Instant::now();
            report("self-fill", &c);
            println!("self-fill took {} ms", started.elapsed().as_millis());
        }
        Some("each") => {
            // Launches each HASH given (granted by the host) in turn,
            // printing how each ended.
            for hash in std::env::args().skip(2) {
                report("each", &child(&hash, &["hello"], small));
            }
        }
        Some("fill-many") => {
            let k: u64 = std::env::args().nth(2).expect("K").parse().expect("K");
            let mut stored = 0;
            for i in 0..k {
                if store::put(&i.to_le_bytes(), ArtifactType::Generic).is_err() {
                    break;
                }
                stored += 1;
            }
            eprintln!("fill-many: stored {stored}");
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
        Some("churn") => {
            let arg = |n: usize| std::env::args().nth(n).expect("churn N SIZE TAG");
            churn(&arg(2), &arg(3), &arg(4));
        }
        Some("churn-children") => {
            // M children (this launcher, HASH, granted), each churning
            // with all the launcher has left, then the launcher itself.
            let arg = |n: usize| std::env::args().nth(n).expect("HASH M N SIZE TAG");
            let (hash, m) = (arg(2), arg(3).parse::<u32>().expect("M"));
            let (n, size, tag) = (arg(4), arg(5), arg(6));
            for j in 0..m {
                let name = format!("c{j}");
                let child_tag = format!("{tag}{name}");
                let mut c = child(&hash, &["churn", &n, &size, &child_tag], launch::limits_max());
                c.name = name;
                c.grants = vec![hash.clone()];
                report("child", &c);
            }
            churn(&n, &size, &format!("{tag}root"));
        }
        Some("demo") => {
            let v1 = install(V1, "1");
            let v2 = install(V2, "2");
            names::tag_set("plugin@latest", &v1).expect("tag-set latest");
            let secret = store::put(b"the launcher's secret", ArtifactType::Generic)
                .expect("put secret");

            let latest = names::tag_get("plugin@latest").expect("get").expect("latest");
            let mut hello = child(&latest, &["hello"], small);
            hello.stdin = b"hi".to_vec();
            report("latest", &hello);
            names::tag_replace("plugin@latest", Some(&v1), &v2).expect("move latest");
            hello.component = names::tag_get("plugin@latest").expect("get").expect("latest");
            report("latest", &hello);
            // What it stored went with its run: it starts with nothing again.
            report("again", &hello);

            report("peek", &child(&v2, &["peek", &secret], small));
            let mut granted = child(&v2, &["peek", &secret], small);
            granted.grants = vec![secret.clone()];
            report("peek granted", &granted);

            report("hog", &child(&v2, &["hog"], small));
            report("hog all", &child(&v2, &["hog"], max));
            report("spin", &child(&v2, &["spin"], Limits { fuel: 50_000_000, ..small }));
            report("sleep", &child(&v2, &["sleep"], Limits { wall_time_ms: 300, ..small }));
            report("shout", &child(&v2, &["shout", "100000"], Limits { max_output: 1000, ..small }));
            report("fill", &child(&v2, &["fill", "2000000"], small));
            report("fill all", &child(&v2, &["fill", "5000000"], max));

            let mut nest = child(&v2, &["nest", &v2], max);
            nest.grants = vec![v2.clone()];
            nest.allow_launch = true;
            report("nest", &nest);

            let mut bad = child(&v2, &["hello"], small);
            bad.name = "a/b".into();
            let named = matches!(launch::run(&bad), Err(LaunchError::InvalidName(_)));
            println!("bad name refused: {named}");
            report("not held", &child(&"0".repeat(64), &["hello"], small));
            report("not a component", &child(&secret, &["hello"], small));
            println!("the launcher sees {} artifact(s)", store::count().expect("count"));
        }
        _ => {
            eprintln!("usage: launcher demo|try|spin-all|sleep-all|nest-hog MIB");
            std::process::exit(2);
        }
    }
}

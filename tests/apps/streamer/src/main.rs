//! The streamer: stores and reads back artifacts larger than its own memory
//! through the `streams` interface, a MiB at a time.
//!
//! - `put SIZE`: uploads SIZE bytes of a pattern and prints the hash;
//! - `get HASH`: downloads HASH, checks every byte against the pattern and
//!   prints how many it read;
//! - `abandon SIZE`: writes SIZE bytes and drops the upload unfinished,
//!   then prints how many artifacts it holds;
//! - `too-many`: opens uploads until refused and prints the refusal;
//! - `range HASH OFFSET LENGTH`: reads those bytes with `get-range` (proven
//!   without reading the whole artifact), checks them against the pattern
//!   and prints how many; then asks for one byte past the end and prints
//!   the refusal;
//! - `parallel N SIZE`: writes SIZE bytes to each of N open uploads, a MiB
//!   to each in turn, and prints how much it had written in all when it was
//!   refused (or that it was not).
//! - `both ORDER SIZE`: stages SIZE bytes through an upload of the
//!   `streams` interface and SIZE through a `wasi:blobstore` value, both
//!   left unfinished (ORDER `upload-first` or `value-first`), and prints
//!   how many bytes each took before one was refused.
//! - `stage-then-launch SELF SIZE`: stages SIZE bytes through an upload
//!   left open, then launches SELF (its own hash) to write SIZE bytes to an
//!   upload of its own (`parallel 1 SIZE`), and prints both answers.
//! - `value-after-put SIZE`: makes a `wasi:blobstore` value, then stores
//!   SIZE bytes through an upload, then writes SIZE bytes to the value:
//!   prints how many the value took before it was refused.

wit_bindgen::generate!({ path: "../../../wit", world: "app" });

/// The upstream `wasi:blobstore` imports, for `both`.
mod blob {
    wit_bindgen::generate!({
        path: "../../../wit-blobstore",
        world: "wasi:blobstore/imports",
        generate_all,
    });
}

use artifacts::store::store;
use artifacts::store::streams;
use artifacts::store::types::{ArtifactType, StreamError};

const STEP: usize = 1 << 20;

/// The pattern's byte at `i`: not periodic in any power of two.
fn byte(i: u64) -> u8 {
    (i.wrapping_mul(7).wrapping_add(i / 4093) % 251) as u8
}

fn arg(n: usize) -> String {
    std::env::args().nth(n).unwrap_or_default()
}

fn upload(size: u64) -> streams::Upload {
    let up = streams::start_upload(ArtifactType::Generic).expect("start-upload");
    let mut piece = vec![0u8; STEP];
    let mut done = 0u64;
    while done < size {
        let n = STEP.min((size - done) as usize);
        for (k, b) in piece[..n].iter_mut().enumerate() {
            *b = byte(done + k as u64);
        }
        up.write(&piece[..n]).expect("write");
        done += n as u64;
    }
    up
}

/// Writes up to `size` bytes to a new upload, a MiB at a time, and leaves
/// it open: returns it and how many bytes it took.
fn stage_upload(size: u64) -> (streams::Upload, String) {
    let up = streams::start_upload(ArtifactType::Generic).expect("start-upload");
    let piece = vec![5u8; STEP];
    let mut done = 0u64;
    while done < size {
        let n = STEP.min((size - done) as usize);
        if let Err(e) = up.write(&piece[..n]) {
            return (up, format!("upload refused after {done}: {e:?}"));
        }
        done += n as u64;
    }
    (up, format!("upload took {done}"))
}

/// Writes up to `size` bytes to a new blobstore value's body, a MiB at a
/// time, and leaves it unfinished: returns it and how many bytes it took.
fn stage_value(size: u64) -> (blob::wasi::blobstore::types::OutgoingValue, String) {
    let value = blob::wasi::blobstore::types::OutgoingValue::new_outgoing_value();
    let said = write_value(&value, size);
    (value, said)
}

/// Writes up to `size` bytes to `value`'s body, a MiB at a time: says how
/// many it took.
fn write_value(value: &blob::wasi::blobstore::types::OutgoingValue, size: u64) -> String {
    use blob::wasi::io::streams::StreamError;
    let stream = value.outgoing_value_write_body().expect("write-body");
    let piece = vec![6u8; STEP];
    let mut done = 0u64;
    while done < size {
        let permit = match stream.check_write() {
            Ok(0) => {
                stream.subscribe().block();
                continue;
            }
            Ok(permit) => permit,
            Err(e) => {
                let why = match e {
                    StreamError::LastOperationFailed(e) => e.to_debug_string(),
                    StreamError::Closed => "closed".to_string(),
                };
                drop(stream);
                return format!("value refused after {done}: {why}");
            }
        };
        let n = (STEP as u64).min(size - done).min(permit) as usize;
        if let Err(e) = stream.write(&piece[..n]) {
            let why = match e {
                StreamError::LastOperationFailed(e) => e.to_debug_string(),
                StreamError::Closed => "closed".to_string(),
            };
            drop(stream);
            return format!("value refused after {done}: {why}");
        }
        done += n as u64;
    }
    drop(stream);
    format!("value took {done}")
}

fn main() {
    match arg(1).as_str() {
        "put" => {
            let up = upload(arg(2).parse().expect("SIZE"));
            println!("{}", up.finish().expect("finish"));
        }
        "get" => {
            let down = streams::open_download(&arg(2)).expect("open-download");
            let mut at = 0u64;
            while let Some(bytes) = down.read(STEP as u32).expect("read") {
                for (k, b) in bytes.iter().enumerate() {
                    assert_eq!(*b, byte(at + k as u64), "byte {}", at + k as u64);
                }
                at += bytes.len() as u64;
            }
            assert_eq!(at, down.size());
            println!("read {at}");
        }
        "abandon" => {
            drop(upload(arg(2).parse().expect("SIZE")));
            println!("holds {}", store::count().expect("count"));
        }
        // A write over the piece limit, and calls on a spent upload, are
        // errors the app handles (no trap).
        "misuse" => {
            let up = streams::start_upload(ArtifactType::Generic).expect("start-upload");
            let big = vec![0u8; streams::piece_limit() as usize + 1];
            assert!(matches!(up.write(&big), Err(StreamError::PieceTooLarge(_))));
            up.write(b"ok").expect("a small write still works");
            let again = streams::start_upload(ArtifactType::Generic).expect("start-upload");
            again.write(b"x").expect("write");
            again.finish().expect("finish");
            assert!(matches!(again.finish(), Err(StreamError::Spent)));
            assert!(matches!(again.write(b"y"), Err(StreamError::Spent)));
            println!("handled");
        }
        "too-many" => {
            let mut open = Vec::new();
            loop {
                match streams::start_upload(ArtifactType::Generic) {
                    Ok(up) => open.push(up),
                    Err(StreamError::TooManyStreams(limit)) => {
                        println!("refused after {} streams, limit {limit}", open.len());
                        return;
                    }
                    Err(e) => panic!("{e:?}"),
                }
            }
        }
        "range" => {
            let (hash, offset, length): (String, u64, u64) = (
                arg(2),
                arg(3).parse().expect("OFFSET"),
                arg(4).parse().expect("LENGTH"),
            );
            let bytes = store::get_range(&hash, offset, length).expect("get-range");
            for (k, b) in bytes.iter().enumerate() {
                assert_eq!(*b, byte(offset + k as u64), "byte {}", offset + k as u64);
            }
            let size = store::stat(&hash).expect("stat").size;
            let past = store::get_range(&hash, size, 1);
            println!("range {} ok; past the end: {past:?}", bytes.len());
        }
        "parallel" => {
            let (n, size): (usize, u64) = (arg(2).parse().expect("N"), arg(3).parse().expect("SIZE"));
            let open: Vec<_> = (0..n)
                .map(|_| streams::start_upload(ArtifactType::Generic).expect("start-upload"))
                .collect();
            let piece = vec![7u8; STEP];
            let mut total = 0u64;
            for _ in (0..size).step_by(STEP) {
                for up in &open {
                    match up.write(&piece) {
                        Ok(()) => total += STEP as u64,
                        Err(StreamError::Store(e)) => {
                            println!("refused after {total} bytes in all: {e:?}");
                            return;
                        }
                        Err(e) => panic!("{e:?}"),
                    }
                }
            }
            println!("wrote {total} bytes in all");
        }
        "stage-then-launch" => {
            use artifacts::store::launch::{self, Child, Limits};
            let size: u64 = arg(3).parse().expect("SIZE");
            let (_open, staged) = stage_upload(size);
            let child = Child {
                component: arg(2),
                name: "child".into(),
                args: vec!["parallel".into(), "1".into(), size.to_string()],
                stdin: Vec::new(),
                limits: Limits {
                    fuel: u64::MAX,
                    memory_bytes: 32 << 20,
                    wall_time_ms: 60_000,
                    max_output: 1 << 20,
                    max_bytes: u64::MAX,
                    max_artifacts: 10,
                },
                grants: Vec::new(),
                allow_launch: false,
            };
            let out = launch::run(&child).expect("launch");
            let said = String::from_utf8_lossy(&out.stdout);
            println!("{staged}; child: {}", said.trim());
        }
        "value-after-put" => {
            use blob::wasi::blobstore::types::OutgoingValue;
            let size: u64 = arg(2).parse().expect("SIZE");
            let value = OutgoingValue::new_outgoing_value();
            let (up, _) = stage_upload(size);
            up.finish().expect("finish");
            let said = write_value(&value, size);
            println!("stored {size}; {said}");
        }
        "both" => {
            let size: u64 = arg(3).parse().expect("SIZE");
            let said = match arg(2).as_str() {
                "upload-first" => {
                    let (_up, a) = stage_upload(size);
                    let (_value, b) = stage_value(size);
                    [a, b]
                }
                "value-first" => {
                    let (_value, a) = stage_value(size);
                    let (_up, b) = stage_upload(size);
                    [a, b]
                }
                other => panic!("ORDER: {other:?}"),
            };
            println!("{}; {}", said[0], said[1]);
        }
        other => {
            eprintln!("streamer: unknown command {other:?}");
            std::process::exit(2);
        }
    }
}

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

wit_bindgen::generate!({ path: "../../../wit", world: "app" });

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
        other => {
            eprintln!("streamer: unknown command {other:?}");
            std::process::exit(2);
        }
    }
}

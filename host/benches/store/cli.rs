//! The CLI as whole processes against `b3sum` (if installed): what a
//! script calling `artifacts` pays per command, start-up included.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use super::measure::content;

/// Pairs of runs, A then B, for each row.
const PAIRS: usize = 15;

fn wall(cmd: &mut Command) -> f64 {
    let started = Instant::now();
    let status = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "{cmd:?}");
    started.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Exactly `size` bytes (the salt in the first byte only): the row's size,
/// not a few bytes more, which would cross [`artifacts::limits::STREAM_ABOVE_BYTES`]
/// and time the streamed path under the 16 MiB label.
fn exact(size: usize, salt: u64) -> Vec<u8> {
    let mut bytes = content(size, salt);
    bytes.truncate(size);
    bytes
}

/// `artifacts get` and `put` of 1 KiB and 16 MiB against `b3sum
/// --num-threads 1` (get) and `b3sum` + `cp` (put), interleaved pair by
/// pair; the ratio is the median of the pairs' ratios. Then a get one byte
/// over 16 MiB: streamed, and held in a temporary file until verified.
pub fn rows() {
    let b3sum_here = Command::new("b3sum")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    println!("\nThe CLI, whole processes (release build), against b3sum:\n");
    if !b3sum_here {
        println!("(b3sum is not installed: `cargo install b3sum` to get these rows)");
        return;
    }
    let cli = env!("CARGO_BIN_EXE_artifacts");
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let artifacts = |args: &[&str]| {
        let mut c = Command::new(cli);
        c.arg("--dir")
            .arg(&store)
            .args(args)
            .env("HOME", dir.path());
        c
    };
    println!("| command | artifacts | baseline | ratio |");
    println!("|---|---|---|---|");
    let get_row = |label: &str, size: usize| {
        let file = dir.path().join(format!("get-{size}"));
        std::fs::write(&file, exact(size, 0)).unwrap();
        let out = artifacts(&["put", file.to_str().unwrap()])
            .output()
            .unwrap();
        let hash = String::from_utf8_lossy(&out.stdout).trim().to_string();
        row(
            &format!("get {label} to stdout / b3sum --num-threads 1"),
            || artifacts(&["get", &hash]),
            || {
                let mut c = Command::new("b3sum");
                c.args(["--num-threads", "1"]).arg(&file);
                c
            },
        );
    };
    for (label, size) in [("1 KiB", 1usize << 10), ("16 MiB", 16 << 20)] {
        get_row(label, size);
        // Each put stores new content (a salt in its first byte), as `cp`
        // writes a new file: the store writes it durably (fsync), cp does not.
        let files: Vec<_> = (0..=PAIRS)
            .map(|i| {
                let f = dir.path().join(format!("put-{size}-{i}"));
                std::fs::write(&f, exact(size, i as u64 + 1)).unwrap();
                f
            })
            .collect();
        let copies = dir.path().join("copies");
        std::fs::create_dir_all(&copies).unwrap();
        let mut next_a = files.iter();
        let mut next_b = files.iter();
        row(
            &format!("put {label} / b3sum + cp"),
            || artifacts(&["put", next_a.next().unwrap().to_str().unwrap()]),
            || {
                let f = next_b.next().unwrap();
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg("b3sum --num-threads 1 \"$1\" && cp \"$1\" \"$2\"")
                    .arg("sh")
                    .arg(f)
                    .arg(copies.join(Path::new(f).file_name().unwrap()));
                c
            },
        );
    }
    get_row("16 MiB + 1 B (streamed)", (16 << 20) + 1);
}

fn row(label: &str, mut a: impl FnMut() -> Command, mut b: impl FnMut() -> Command) {
    // One warm-up each (page cache, the sealed compile cache).
    wall(&mut a());
    wall(&mut b());
    let (mut ta, mut tb, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..PAIRS - 1 {
        let x = wall(&mut a());
        let y = wall(&mut b());
        ta.push(x);
        tb.push(y);
        ratios.push(x / y);
    }
    println!(
        "| {label} | {:.1} ms | {:.1} ms | {:.2}x |",
        median(ta) * 1e3,
        median(tb) * 1e3,
        median(ratios)
    );
}

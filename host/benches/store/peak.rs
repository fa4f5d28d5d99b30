//! Peak memory for 1 GiB artifacts, in this process and in fresh ones.

use std::time::Instant;

use artifacts::{ArtifactStore, ArtifactType};

use super::measure::{content, peak_rss};

/// `--stream-child get DIR HASH FILE` streams one artifact to FILE;
/// `--stream-child put DIR FILE` streams FILE into the store. Either prints
/// the seconds it took and its peak resident memory above where it started.
pub fn stream_child(args: &[String]) {
    let (mode, dir) = match args {
        [mode, dir, ..] => (mode.as_str(), dir),
        _ => panic!("--stream-child get|put DIR …"),
    };
    let store = ArtifactStore::builder()
        .max_artifact_bytes(1 << 30)
        .open_dir(dir)
        .unwrap();
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let before = peak_rss();
    let start = Instant::now();
    match (mode, args.get(2..)) {
        ("get", Some([hash, file])) => {
            let mut out = std::io::BufWriter::new(std::fs::File::create(file).unwrap());
            store.get_to(&hash.parse().unwrap(), &mut out).unwrap();
        }
        ("put", Some([file])) => {
            let mut input = std::fs::File::open(file).unwrap();
            store.put_from(&mut input, ArtifactType::Generic).unwrap();
        }
        _ => panic!("--stream-child get DIR HASH FILE | put DIR FILE"),
    }
    println!(
        "{} {}",
        start.elapsed().as_secs_f64(),
        peak_rss().saturating_sub(before)
    );
}

/// Runs `--stream-child ARGS` in a fresh process (so that nothing this one
/// has allocated hides or inflates its peak); returns its seconds and peak.
fn in_child(args: &[&std::ffi::OsStr]) -> (f64, u64) {
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .arg("--stream-child")
        .args(args)
        .output()
        .unwrap();
    assert!(
        child.status.success(),
        "{}",
        String::from_utf8_lossy(&child.stderr)
    );
    let report = String::from_utf8_lossy(&child.stdout).to_string();
    let mut fields = report.split_whitespace();
    let secs = fields.next().and_then(|f| f.parse().ok()).unwrap();
    let peak = fields.next().and_then(|f| f.parse().ok()).unwrap();
    (secs, peak)
}

/// Peak memory above the baseline for a 1 GiB artifact through the file backend.
pub fn peak_memory() {
    const GIB: usize = 1 << 30;
    let dir = tempfile::tempdir().unwrap();
    let store = ArtifactStore::builder()
        .max_artifact_bytes(GIB as u64)
        .open_dir(dir.path())
        .unwrap();
    let data = content(GIB - 8, 1);
    let baseline = peak_rss();
    let start = Instant::now();
    let hash = store.put(&data, ArtifactType::Generic).unwrap();
    let put_time = start.elapsed();
    let after_put = peak_rss();
    drop(data);
    // Reset the peak (Linux: "5" clears VmHWM) so the get is measured on its own.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let baseline_get = peak_rss();
    let start = Instant::now();
    let back = store.get(&hash).unwrap();
    let get_time = start.elapsed();
    let after_get = peak_rss();
    assert_eq!(back.len(), GIB);
    drop(back);
    // Streaming, each in a fresh process: get_to a file, then put_from that
    // file into a second store (and the native baseline's put of it).
    let target = dir.path().join("streamed");
    let (stream_time, stream_peak) = in_child(&[
        "get".as_ref(),
        dir.path().as_os_str(),
        hash.to_hex().as_str().as_ref(),
        target.as_os_str(),
    ]);
    assert_eq!(std::fs::metadata(&target).unwrap().len(), GIB as u64);
    let second = tempfile::tempdir().unwrap();
    let (put_stream_time, put_stream_peak) = in_child(&[
        "put".as_ref(),
        second.path().as_os_str(),
        target.as_os_str(),
    ]);
    let again = ArtifactStore::open_dir(second.path()).unwrap();
    assert_eq!(again.stat(&hash).unwrap().size, GIB as u64);
    drop(again);
    let data = std::fs::read(&target).unwrap();
    let native_dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(native_dir.path().join("tmp")).unwrap();
    let start = Instant::now();
    super::throughput::native_file_put(native_dir.path(), &data);
    let native_put_time = start.elapsed();
    drop(data);
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    println!("\nA 1 GiB artifact, file backend (peak resident memory above the 1 GiB input):\n");
    println!("| operation | time | peak memory above baseline |");
    println!("|---|---|---|");
    println!(
        "| put | {:.1} s | {:.0} MiB |",
        put_time.as_secs_f64(),
        mib(after_put.saturating_sub(baseline))
    );
    println!(
        "| get | {:.1} s | {:.0} MiB (including the 1 GiB result) |",
        get_time.as_secs_f64(),
        mib(after_get.saturating_sub(baseline_get))
    );
    println!(
        "| get_to a file (streamed, verified in pieces; a fresh process) | {stream_time:.1} s | {:.0} MiB |",
        mib(stream_peak)
    );
    println!(
        "| put_from a file (streamed, staged in pieces; a fresh process) | {put_stream_time:.1} s | {:.0} MiB |",
        mib(put_stream_peak)
    );
    println!(
        "| native put of the same 1 GiB held in memory (hash, write, sync) | {:.1} s | n/a |",
        native_put_time.as_secs_f64()
    );
}

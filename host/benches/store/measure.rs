//! Timing, content, rows and peak memory: what every scenario measures with.

use std::time::{Duration, Instant};

/// The sizes the throughput rows measure.
pub const SIZES: [(&str, usize); 4] = [
    ("1 KiB", 1 << 10),
    ("64 KiB", 64 << 10),
    ("1 MiB", 1 << 20),
    ("16 MiB", 16 << 20),
];

/// Runs `f` until `budget` is spent (at least `min` times); returns seconds per call.
pub fn time(budget: Duration, min: u32, mut f: impl FnMut(u64)) -> f64 {
    f(0); // warm up
    let start = Instant::now();
    let mut n = 0u64;
    while n < u64::from(min) || start.elapsed() < budget {
        n += 1;
        f(n);
    }
    start.elapsed().as_secs_f64() / n as f64
}

pub fn content(len: usize, salt: u64) -> Vec<u8> {
    let mut v: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    if let Some(first) = v.first_mut() {
        *first = salt as u8;
    }
    v.extend_from_slice(&salt.to_le_bytes());
    v
}

pub fn mbps(bytes: usize, secs: f64) -> f64 {
    bytes as f64 / secs / 1e6
}

pub fn row(what: &str, bytes: usize, native: f64, ours: f64) {
    println!(
        "| {what:<28} | {:>10.1} | {:>10.1} | {:>5.2} |",
        mbps(bytes, native),
        mbps(bytes, ours),
        native / ours
    );
}

/// The process's peak resident memory so far (VmHWM), in bytes.
pub fn peak_rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// Which SIMD the native BLAKE3 baseline hashes with on this CPU (the
/// blake3 crate picks the widest it detects), so that tables from
/// different machines can be read side by side.
pub fn native_simd() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512vl") {
            return "AVX-512 (16 chunks at once)";
        }
        if std::is_x86_feature_detected!("avx2") {
            return "AVX2 (8 chunks at once)";
        }
        if std::is_x86_feature_detected!("sse4.1") {
            return "SSE4.1 (4 chunks at once)";
        }
        if std::is_x86_feature_detected!("sse2") {
            return "SSE2 (4 chunks at once)";
        }
    }
    "portable (no SIMD)"
}

//! A hostile app: each mode tries something it should not. Modes that the
//! store must refuse print what happened and exit 0 only if every attempt
//! was refused as it should be; the others must be stopped by the host.

wit_bindgen::generate!({ path: "../../../wit", world: "app" });

/// WASI's poll and monotonic clock, called directly.
mod waits {
    wit_bindgen::generate!({ path: "wasi", world: "waits", generate_all });
}

use artifacts::store::store;
use artifacts::store::types::{ArtifactType, Error, QuotaKind};

fn fail(msg: String) -> ! {
    eprintln!("hostile: NOT REFUSED: {msg}");
    std::process::exit(1)
}

fn invalid_hashes() {
    let good = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262";
    let bad = [
        good.to_uppercase(),
        good[..63].to_string(),
        format!("{good}00"),
        "../../etc/passwd".to_string(),
        format!("../../{}", &good[..58]),
        "zz".repeat(32),
        String::new(),
        "a".repeat(1 << 20),
    ];
    let mut refused = 0;
    for h in &bad {
        let short = &h[..h.len().min(20)];
        let results = [
            store::get(h).err(),
            store::stat(h).err(),
            store::contains(h).err(),
            store::release(h).err(),
            store::remove(h).err(),
            store::verify(h).err(),
            store::list(Some(h), 1).err(),
        ];
        for r in results {
            match r {
                Some(Error::InvalidHash(_)) => refused += 1,
                other => fail(format!("{short:?} gave {other:?}")),
            }
        }
    }
    println!("refused {refused}");
}

fn other(hash: &str) {
    match store::get(hash) {
        Err(Error::NotFound(_)) => {}
        other => fail(format!("get gave {:?}", other.map(|b| b.len()))),
    }
    match store::stat(hash) {
        Err(Error::NotFound(_)) => {}
        other => fail(format!("stat gave {other:?}")),
    }
    match store::verify(hash) {
        Err(Error::NotFound(_)) => {}
        other => fail(format!("verify gave {other:?}")),
    }
    if !matches!(store::contains(hash), Ok(false)) {
        fail("contains did not say false".into());
    }
    match store::release(hash) {
        Err(Error::NotFound(_)) => {}
        other => fail(format!("release gave {other:?}")),
    }
    match store::remove(hash) {
        Err(Error::NotFound(_)) => {}
        other => fail(format!("remove gave {other:?}")),
    }
    let listed = store::list(None, 1000).unwrap_or_default();
    if listed.iter().any(|m| m.hash == hash) {
        fail("list showed it".into());
    }
    // Storing the same bytes is not possible without the bytes; guessing is all it can do.
    println!("other app's artifact invisible");
}

fn quota() {
    for i in 0u32.. {
        let content: Vec<u8> = (0..4096u32).map(|j| (i.wrapping_mul(31).wrapping_add(j)) as u8).collect();
        match store::put(&content, ArtifactType::Generic) {
            Ok(_) => {}
            Err(Error::QuotaExceeded(q)) => {
                let kind = match q.kind {
                    QuotaKind::Bytes => "bytes",
                    QuotaKind::Artifacts => "artifacts",
                    QuotaKind::ArtifactBytes => "artifact-bytes",
                };
                println!("stored {i} then quota-exceeded {kind} limit {}", q.limit);
                return;
            }
            Err(e) => fail(format!("put {i} gave {e:?}")),
        }
    }
}

fn huge_list() {
    let big = vec![7u8; 8 << 20];
    match store::put(&big, ArtifactType::Generic) {
        Err(Error::QuotaExceeded(_) | Error::TooLarge(_)) => {}
        other => fail(format!("8 MiB put gave {other:?}")),
    }
    match store::list(None, u32::MAX) {
        Ok(l) if l.len() <= 1000 => {}
        other => fail(format!("list of u32::MAX gave {:?}", other.map(|l| l.len()))),
    }
    println!("huge inputs refused");
}

fn sandbox() {
    if let Ok(entries) = std::fs::read_dir("/") {
        fail(format!("listed / ({} entries)", entries.count()));
    }
    if std::fs::read("/etc/passwd").is_ok() {
        fail("read /etc/passwd".into());
    }
    if std::fs::write("escape.txt", b"x").is_ok() {
        fail("wrote a file".into());
    }
    if std::env::vars().count() != 0 {
        fail("saw environment variables".into());
    }
    if std::net::TcpStream::connect("127.0.0.1:9").is_ok() {
        fail("opened a TCP connection".into());
    }
    if std::net::UdpSocket::bind("127.0.0.1:0").is_ok_and(|s| s.send_to(b"x", "127.0.0.1:9").is_ok()) {
        fail("sent a UDP datagram".into());
    }
    println!("no filesystem, environment or network");
}

fn memory() {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        hoard.push(vec![1u8; 1 << 20]);
        std::hint::black_box(&hoard);
    }
}

fn spin() {
    let mut n = 0u64;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

/// Sleeps (std: a monotonic-clock pollable, blocked on), then says so.
fn sleep(secs: &str) {
    let secs: u64 = secs.parse().unwrap_or(3600);
    std::thread::sleep(std::time::Duration::from_secs(secs));
    println!("slept {secs} s");
}

/// Waits in `wasi:io/poll.poll` for pollables that are never ready.
fn poll() {
    use waits::wasi::clocks::monotonic_clock;
    use waits::wasi::io::poll;
    let never = monotonic_clock::subscribe_instant(u64::MAX);
    let nor_this = monotonic_clock::subscribe_duration(u64::MAX);
    let ready = poll::poll(&[&never, &nor_this]);
    println!("poll returned {ready:?}");
}

/// Makes `count` WASI resources (monotonic-clock pollables, never ready)
/// and keeps them all, printing how many every 100,000: each costs the
/// host an entry in the app's resource table, and the guest 4 bytes.
fn handles(count: &str) {
    use waits::wasi::clocks::monotonic_clock;
    let count: usize = count.parse().unwrap_or(1_000_000);
    let mut kept = Vec::with_capacity(count);
    for i in 0..count {
        kept.push(monotonic_clock::subscribe_duration(u64::MAX));
        if (i + 1) % 100_000 == 0 {
            println!("{} handles", i + 1);
        }
    }
    println!("kept {} handles", kept.len());
}

/// Asks WASI for `len` random bytes `times` times, keeping none (the host
/// makes each answer in its own memory before copying it into the app's).
fn random(len: &str, times: &str) {
    use waits::wasi::random::random;
    let len: u64 = len.parse().unwrap_or(64 << 20);
    let times: u32 = times.parse().unwrap_or(1);
    let mut got = 0u64;
    for _ in 0..times {
        got += random::get_random_bytes(len).len() as u64;
    }
    println!("got {got} random bytes");
}

/// Writes `bytes` of output, 64 KiB at a time, to stdout and stderr in turn.
fn flood(bytes: &str) {
    use std::io::Write;
    let total: u64 = bytes.parse().unwrap_or(2 << 30);
    let chunk = [b'x'; 64 << 10];
    let mut written = 0u64;
    let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
    while written < total {
        let n = chunk.len().min((total - written) as usize);
        let result = if (written / chunk.len() as u64) % 2 == 0 {
            out.write_all(&chunk[..n])
        } else {
            err.write_all(&chunk[..n])
        };
        if result.is_err() {
            std::process::exit(3);
        }
        written += n as u64;
    }
    let _ = out.flush();
}

/// Writes what a terminal would act on: title, clipboard, cursor moves, a
/// carriage return, C1 controls as characters and as raw bytes, a bidi
/// override, a character split across two writes; and a line that looks
/// like the host's own, left unfinished.
fn escapes() {
    use std::io::Write;
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    let check = "✓".as_bytes();
    let _ = out.write_all(b"title\x1b]0;pwned\x07 clip\x1b]52;c;ZXZpbA==\x07 clear\x1b[2J\x1b[H\n");
    let _ = out.flush();
    let _ = out.write_all(b"hidden\rshown \x9b31m \xc2\x9b31m bell\x07 del\x7f\n");
    let _ = out.flush();
    let _ = out.write_all("rtl \u{202e}txt.exe tab\there é ".as_bytes());
    let _ = out.write_all(&check[..1]);
    let _ = out.flush();
    let _ = out.write_all(&check[1..]);
    let _ = out.write_all(b"\n");
    let _ = out.flush();
    let _ = err.write_all(b"\x1b[31mred\x1b[0m\nartifacts: app finished cleanly");
    let _ = err.flush();
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("invalid-hashes") => invalid_hashes(),
        Some("other") => other(args.get(2).map(String::as_str).unwrap_or_default()),
        Some("quota") => quota(),
        Some("huge-list") => huge_list(),
        Some("sandbox") => sandbox(),
        Some("memory") => memory(),
        Some("loop") => spin(),
        Some("sleep") => sleep(args.get(2).map(String::as_str).unwrap_or("3600")),
        Some("poll") => poll(),
        Some("flood") => flood(args.get(2).map(String::as_str).unwrap_or_default()),
        Some("escapes") => escapes(),
        Some("handles") => handles(args.get(2).map(String::as_str).unwrap_or_default()),
        Some("random") => random(
            args.get(2).map(String::as_str).unwrap_or_default(),
            args.get(3).map(String::as_str).unwrap_or_default(),
        ),
        other => {
            eprintln!("hostile: unknown mode {other:?}");
            std::process::exit(2)
        }
    }
}

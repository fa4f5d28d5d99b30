//! What the host holds for an app between its calls (an upload's piece, a
//! download's piece, a `wasi:blobstore` value being written) counts against
//! the app's one memory limit, with its linear memories: measured with the
//! run's peak (`AppOutcome::peak_memory`), then attacked with a limit just
//! under it, on every backend.

use std::sync::atomic::{AtomicU32, Ordering};

use artifacts::apps::{AppConfig, AppHost};
use artifacts::{Error, Hash, Quota};

use crate::fixture::each_backend;

const STREAMER: &[u8] = include_bytes!("../apps/streamer.wasm");
const BLOBBER: &[u8] = include_bytes!("../apps/blobber.wasm");
const LAUNCHER: &[u8] = include_bytes!("../apps/launcher.wasm");
const MIB: u64 = 1 << 20;

/// How one app runs: its component, arguments, quota and grants.
#[derive(Clone)]
struct Run<'a> {
    app: &'a [u8],
    args: Vec<String>,
    quota: Quota,
    grants: Vec<Hash>,
    allow_launch: bool,
}

impl<'a> Run<'a> {
    fn new(app: &'a [u8], args: &[&str]) -> Self {
        let args = args.iter().map(|a| a.to_string()).collect();
        Self {
            app,
            args,
            quota: Quota::UNLIMITED,
            grants: Vec::new(),
            allow_launch: false,
        }
    }

    /// Runs it (as an owner of its own each time) within `memory` bytes;
    /// its peak, or the error.
    fn peak(&self, host: &AppHost, memory: u64) -> Result<u64, Error> {
        static RUNS: AtomicU32 = AtomicU32::new(0);
        let id = format!("holder-{}", RUNS.fetch_add(1, Ordering::Relaxed));
        let app = host.load_file(self.app).unwrap();
        let mut c = AppConfig::new(&id);
        c.args = self.args.clone();
        c.quota = self.quota;
        c.grants = self.grants.clone();
        c.allow_launch = self.allow_launch;
        c.limits.memory_bytes = memory as usize;
        let out = host.run(&app, &c).map_err(|e| match e {
            Error::OutOfMemory { app, limit } if app == id => Error::OutOfMemory {
                app: "holder".into(),
                limit,
            },
            e => e,
        })?;
        let args = &self.args;
        assert_eq!(
            out.exit_code,
            0,
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.peak_memory <= memory,
            "{} over {memory}",
            out.peak_memory
        );
        Ok(out.peak_memory)
    }
}

/// The peak of `run` counts at least `held` bytes more than the peak of
/// `baseline` (the same app, whose own memory is the same), and a limit
/// one byte under it stops the app with `OutOfMemory` where the peak itself
/// lets it finish.
fn held_counts(host: &AppHost, baseline: &Run<'_>, run: &Run<'_>, held: u64) {
    let roomy = 256 * MIB;
    let base = baseline.peak(host, roomy).unwrap();
    let top = run.peak(host, roomy).unwrap();
    let args = &run.args;
    eprintln!("{args:?}: peak {top} bytes; {:?}: {base}", baseline.args);
    assert!(
        top >= base + held,
        "{args:?} counted {top} bytes, not {held} more than {:?}'s {base}",
        baseline.args
    );
    assert_eq!(run.peak(host, top), Ok(top), "within its peak");
    assert_eq!(
        run.peak(host, top - 1),
        Err(Error::OutOfMemory {
            app: "holder".into(),
            limit: (top - 1) as usize
        }),
        "one byte under its peak"
    );
}

each_backend! {
    fn open_uploads_count_their_pieces_against_the_apps_memory(fx) {
        let host = AppHost::new(fx.open()).unwrap();
        // Four uploads, 4 MiB written to each a MiB at a time: each holds a
        // full piece on the host (nothing more comes to flush it), 16 MiB
        // in all, where one upload holds 4 MiB and the app's own memory is
        // the same.
        let four = (4 * MIB).to_string();
        let one = Run::new(STREAMER, &["parallel", "1", &four]);
        held_counts(&host, &one, &Run::new(STREAMER, &["parallel", "4", &four]), 12 * MIB);
    }

    fn a_staged_upload_counts_what_its_backend_gathers_against_the_apps_memory(fx) {
        let host = AppHost::new(fx.open()).unwrap();
        // 9 MiB written a MiB at a time: two 4 MiB pieces are hashed (their
        // 16 KiB groups' chaining values kept for the outboard, 8 KiB a
        // piece) and handed on to the backend's staging, the ninth MiB
        // waits in the piece buffer. The S3 backend gathers one 8 MiB part
        // of staged content in memory; the file backend stages in a file,
        // the memory backend's staging is the content it stores. Against
        // one upload of 4 MiB, never staged (the same piece buffer).
        let gathers = fx.backend().staged_in_memory(8 * MIB);
        if let crate::fixture::Fixture::S3(_) = fx {
            assert_eq!(gathers, 8 * MIB, "one part");
        } else {
            assert_eq!(gathers, 0);
        }
        let one = Run::new(STREAMER, &["parallel", "1", &(4 * MIB).to_string()]);
        let staged = Run::new(STREAMER, &["parallel", "1", &(9 * MIB).to_string()]);
        held_counts(&host, &one, &staged, gathers + 2 * 8 * 1024);
    }

    fn an_open_download_counts_its_piece_against_the_apps_memory(fx) {
        let store = fx.open();
        let host = AppHost::new(store.clone()).unwrap();
        // Stored by the app itself (`get` checks the streamer's pattern),
        // read a MiB at a time: 16 MiB holds a 4 MiB piece on the host,
        // 1 KiB holds 1 KiB.
        let put = |size: u64| -> Hash {
            let app = host.load_file(STREAMER).unwrap();
            let mut c = AppConfig::new("putter");
            c.args = vec!["put".into(), size.to_string()];
            c.quota = Quota::UNLIMITED;
            let out = host.run(&app, &c).unwrap();
            String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
        };
        let (big, small) = (put(16 * MIB), put(1024));
        let (big_hex, small_hex) = (big.to_string(), small.to_string());
        let mut baseline = Run::new(STREAMER, &["get", &small_hex]);
        baseline.grants = vec![small];
        let mut run = Run::new(STREAMER, &["get", &big_hex]);
        run.grants = vec![big];
        held_counts(&host, &baseline, &run, 4 * MIB);
    }

    fn a_blobstore_value_being_written_counts_its_piece_against_the_apps_memory(fx) {
        let host = AppHost::new(fx.open()).unwrap();
        // One value written a MiB at a time until its artifact-size limit
        // refuses the next MiB: 4 MiB (a full piece held on the host)
        // against 1 MiB.
        let value = |mib: u64| {
            let mut run = Run::new(BLOBBER, &["hostile-write", "64"]);
            run.quota.max_artifact_bytes = mib * MIB;
            run
        };
        held_counts(&host, &value(1), &value(4), 3 * MIB);
    }
}

/// A launched child's output is held by the host until its parent has it:
/// counted in the child's memory while the child runs, then in the
/// parent's while the launch hands it over (the parent's memory grows to
/// take it meanwhile, so both count). A child writing 8 MiB makes its
/// parent's peak twice that over a child writing nothing, less at most
/// 512 KiB its allocator had free (measured: 16.0 MiB); before, only the
/// parent's own copy counted (8.0 MiB more). No backend plays a part.
#[test]
fn a_childs_output_counts_against_its_parents_memory_until_handed_over() {
    let host = AppHost::new(artifacts::ArtifactStore::open_memory().unwrap()).unwrap();
    let flood = |bytes: u64| {
        let mut run = Run::new(LAUNCHER, &["flood", &bytes.to_string()]);
        run.allow_launch = true;
        run
    };
    let base = flood(0).peak(&host, 64 * MIB).unwrap();
    let top = flood(8 * MIB).peak(&host, 64 * MIB).unwrap();
    eprintln!("a child's 8 MiB handed over: parent's peak {top} bytes; nothing: {base}");
    assert!(
        top >= base + 2 * 8 * MIB - 512 * 1024,
        "{top} bytes counted, not twice 8 MiB over {base}"
    );
}

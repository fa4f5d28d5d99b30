//! The command line: what clap parses.

use std::path::PathBuf;
use std::time::Duration;

use artifacts::apps::limits::AppLimits;
use artifacts::{ArtifactType, Quota};
use clap::{Args, Parser, Subcommand};

/// A content-addressed store for wasm modules, app manifests and config
/// bundles, addressed by BLAKE3 hash and verified on every read.
#[derive(Parser)]
#[command(name = "artifacts", version, about)]
pub(crate) struct Cli {
    /// The store directory (created if missing).
    #[arg(
        long,
        global = true,
        env = "ARTIFACTS_DIR",
        default_value = ".artifacts"
    )]
    pub(crate) dir: PathBuf,
    /// Use an S3 bucket instead of a directory: `s3://BUCKET[/PREFIX]`, with
    /// the endpoint, region and keys from AWS_ENDPOINT_URL, AWS_REGION
    /// (default garage), AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
    #[arg(long, global = true, env = "ARTIFACTS_S3", value_name = "URL")]
    pub(crate) s3: Option<String>,
    /// Private dedup: an app's first put, and last release, of content
    /// others hold cost what they cost for content no one holds (see
    /// README). Every process sharing a store should agree.
    #[arg(long, global = true, env = "ARTIFACTS_PRIVATE_DEDUP")]
    pub(crate) private_dedup: bool,
    /// Print hashes in digest form, `blake3:<hex>` (hash arguments take
    /// either form).
    #[arg(long, global = true)]
    pub(crate) digest: bool,
    /// Log the store's operations to standard error: -v info (a line per
    /// operation: hash, owner, bytes, outcome, time), -vv debug, -vvv
    /// trace. RUST_LOG (e.g. `artifacts=debug`), if set, decides instead.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Store a file (`-` for standard input) and print its hash.
    Put {
        /// The file to store.
        file: PathBuf,
        /// wasm-module, app-manifest, config-bundle or generic
        /// [default: wasm-module for wasm binaries, else generic].
        #[arg(long = "type", short = 't')]
        artifact_type: Option<ArtifactType>,
    },
    /// Write an artifact's verified content to standard output or a file.
    Get {
        /// The artifact's hash.
        hash: String,
        /// Write to this file instead of standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Only bytes A to B (B excluded; `A..` to the end, `..B` from the
        /// start), proven to belong to the artifact without reading all of it.
        #[arg(long, value_name = "A..B", value_parser = parse_range)]
        range: Option<ByteRange>,
    },
    /// Show an artifact's metadata.
    Stat {
        /// The artifact's hash.
        hash: String,
        /// Print JSON: hash, size, type, stored_at, reference_count.
        #[arg(long)]
        json: bool,
    },
    /// List every artifact.
    Ls {
        /// Print a JSON array of metadata objects.
        #[arg(long)]
        json: bool,
    },
    /// Drop one reference; print how many are left (at 0 the artifact is deleted).
    Release {
        /// The artifact's hash.
        hash: String,
    },
    /// Delete an artifact whatever its reference count.
    Rm {
        /// The artifact's hash.
        hash: String,
    },
    /// Re-hash every artifact and report each one that is corrupt or missing.
    Verify {
        /// Move damaged content to DIR/quarantine (its record stays, so it
        /// reads as missing until a put of the right content restores it).
        #[arg(long)]
        quarantine: bool,
    },
    /// Delete unreferenced blobs and leftovers of interrupted writes.
    Gc {
        /// Only delete what was written more than this many seconds ago, so
        /// that puts running right now are not disturbed (a put that stalls
        /// for longer fails cleanly).
        #[arg(long, default_value_t = artifacts::limits::DEFAULT_GC_GRACE.as_secs())]
        grace: u64,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check the store: backend reachable and writable (a probe written,
    /// read back and deleted), artifacts, bytes, owners, the last gc,
    /// anything quarantined. Exits 1 when unhealthy.
    Health {
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The host's names for artifacts: set, get, rm, ls.
    #[command(subcommand)]
    Tag(crate::cli::tag::TagCommand),
    /// Publish a stored component (or module) to an OCI registry as a wasm
    /// artifact (wkg's layout); prints the manifest's digest.
    #[cfg(feature = "oci")]
    Push(crate::cli::oci::PushArgs),
    /// Fetch a wasm artifact from an OCI registry, verify its sha256 digest
    /// while it streams in, store it and print its hash.
    #[cfg(feature = "oci")]
    Pull(crate::cli::oci::PullArgs),
    /// Bring a store of format 1 to format 3 (per-owner indexes), in place.
    /// Safe to interrupt and run again; run it with nothing else using the store.
    Migrate,
    /// Run an app component, sandboxed, with its own view of the store.
    ///
    /// APP is the hash of a wasm artifact in the store (read and verified
    /// before it is compiled) if it is 64 hex digits, and otherwise a
    /// component file, which must be named by a path with a `/` or ending
    /// in `.wasm` (`./NAME` for any other name; `-` is standard input). The
    /// app gets no filesystem, network or environment; its output goes to
    /// ours (escaped on a terminal), and its exit code becomes ours (125 if
    /// the host had to stop it).
    Run(RunArgs),
}

/// `run`'s arguments.
#[derive(Args)]
pub(crate) struct RunArgs {
    /// The hash of a stored component, or a path to a component file.
    pub(crate) app: String,
    /// The app's identity: whose references it takes and sees
    /// [default: "app-" and the first 32 hex digits of the component's hash].
    #[arg(long)]
    pub(crate) app_id: Option<String>,
    /// CPU budget in wasmtime fuel (about one unit per instruction).
    #[arg(long, default_value_t = AppLimits::default().fuel)]
    pub(crate) fuel: u64,
    /// Memory limit in bytes.
    #[arg(long, default_value_t = AppLimits::default().memory_bytes)]
    pub(crate) memory: usize,
    /// Wall-clock limit in seconds (decimals allowed), whether the app
    /// computes, sleeps or waits.
    #[arg(long, value_name = "SECS", value_parser = parse_seconds,
          default_value_t = AppLimits::default().wall_time.as_secs_f64())]
    pub(crate) timeout: f64,
    /// The most the app may write, standard output and error together,
    /// in bytes; it is stopped if it tries to write more.
    #[arg(long, value_name = "BYTES", default_value_t = AppLimits::default().max_output)]
    pub(crate) max_output: u64,
    /// Quota: total bytes of the app's artifacts.
    #[arg(long, default_value_t = Quota::default().max_bytes)]
    pub(crate) quota_bytes: u64,
    /// Quota: number of the app's artifacts.
    #[arg(long, default_value_t = Quota::default().max_artifacts)]
    pub(crate) quota_artifacts: u64,
    /// Quota: size of one artifact.
    #[arg(long, default_value_t = Quota::default().max_artifact_bytes)]
    pub(crate) quota_artifact_bytes: u64,
    /// Let the app read this artifact without holding a reference (repeatable).
    #[arg(long = "grant")]
    pub(crate) grants: Vec<String>,
    /// Let the app run stored components it holds or was granted (the WIT
    /// `launch` interface); each child draws every limit from what the app
    /// has left.
    #[arg(long)]
    pub(crate) allow_launch: bool,
    /// Do not keep compiled code in DIR/cache (sealed with the key in
    /// ~/.config/artifacts/cache-key) for the next run.
    #[arg(long)]
    pub(crate) no_compile_cache: bool,
    /// Arguments for the app.
    #[arg(last = true)]
    pub(crate) args: Vec<String>,
}

fn parse_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(secs) if secs > 0.0 && Duration::try_from_secs_f64(secs).is_ok() => Ok(secs),
        _ => Err(format!("{s:?} is not a number of seconds greater than 0")),
    }
}

/// `get --range`: bytes `start..end`, `end` exclusive; `None` is the end of
/// the artifact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ByteRange {
    pub(crate) start: u64,
    pub(crate) end: Option<u64>,
}

/// `A..B`, `A..` or `..B`, in bytes (decimal); `A` not after `B`.
pub(crate) fn parse_range(text: &str) -> Result<ByteRange, String> {
    let (a, b) = text.split_once("..").ok_or_else(|| {
        format!("{text:?} is not a range: write A..B (bytes A to B, B excluded), A.. or ..B")
    })?;
    let number = |s: &str| {
        s.parse::<u64>()
            .map_err(|_| format!("{s:?} in {text:?} is not a byte offset (a decimal number)"))
    };
    let start = if a.is_empty() { 0 } else { number(a)? };
    let end = if b.is_empty() { None } else { Some(number(b)?) };
    if let Some(end) = end
        && start > end
    {
        return Err(format!("{text:?} starts after it ends"));
    }
    Ok(ByteRange { start, end })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_at_the_edge() {
        let r = |start, end| ByteRange { start, end };
        assert_eq!(parse_range("0..4096").unwrap(), r(0, Some(4096)));
        assert_eq!(parse_range("10..").unwrap(), r(10, None));
        assert_eq!(parse_range("..10").unwrap(), r(0, Some(10)));
        assert_eq!(parse_range("..").unwrap(), r(0, None));
        assert_eq!(parse_range("7..7").unwrap(), r(7, Some(7)));
        for bad in [
            "", "5", "a..b", "-1..3", "5..4", "1...3", "1..2..3", " 1..2",
        ] {
            assert!(parse_range(bad).is_err(), "{bad:?}");
        }
    }
}

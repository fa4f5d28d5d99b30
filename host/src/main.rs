//! `artifacts`: the command-line tool for a content-addressed artifact store.

use std::io::{self, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

#[cfg(feature = "s3")]
use artifacts::S3Config;
use artifacts::apps::{AppConfig, AppHost, AppLimits, Stdio};
use artifacts::{ArtifactStore, ArtifactType, CompileCache, Error, Hash, Metadata, Quota};
use clap::{Parser, Subcommand};

mod cli {
    pub mod output;
}
use cli::output::{self, Spill};

/// A content-addressed store for wasm modules, app manifests and config
/// bundles, addressed by BLAKE3 hash and verified on every read.
#[derive(Parser)]
#[command(name = "artifacts", version, about)]
struct Cli {
    /// The store directory (created if missing).
    #[arg(
        long,
        global = true,
        env = "ARTIFACTS_DIR",
        default_value = ".artifacts"
    )]
    dir: PathBuf,
    /// Use an S3 bucket instead of a directory: `s3://BUCKET[/PREFIX]`, with
    /// the endpoint, region and keys from AWS_ENDPOINT_URL, AWS_REGION
    /// (default garage), AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
    #[arg(long, global = true, env = "ARTIFACTS_S3", value_name = "URL")]
    s3: Option<String>,
    /// Private dedup: an app's first put, and last release, of content
    /// others hold cost what they cost for content no one holds (see
    /// README). Every process sharing a store should agree.
    #[arg(long, global = true, env = "ARTIFACTS_PRIVATE_DEDUP")]
    private_dedup: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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
        #[arg(long, default_value_t = artifacts::DEFAULT_GC_GRACE.as_secs())]
        grace: u64,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Bring a store of format 1 to format 2 (per-owner indexes), in place.
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
    Run {
        /// The hash of a stored component, or a path to a component file.
        app: String,
        /// The app's identity: whose references it takes and sees
        /// [default: "app-" and the first 32 hex digits of the component's hash].
        #[arg(long)]
        app_id: Option<String>,
        /// CPU budget in wasmtime fuel (about one unit per instruction).
        #[arg(long, default_value_t = AppLimits::default().fuel)]
        fuel: u64,
        /// Memory limit in bytes.
        #[arg(long, default_value_t = AppLimits::default().memory_bytes)]
        memory: usize,
        /// Wall-clock limit in seconds (decimals allowed), whether the app
        /// computes, sleeps or waits.
        #[arg(long, value_name = "SECS", value_parser = parse_seconds,
              default_value_t = AppLimits::default().wall_time.as_secs_f64())]
        timeout: f64,
        /// The most the app may write, standard output and error together,
        /// in bytes; it is stopped if it tries to write more.
        #[arg(long, value_name = "BYTES", default_value_t = AppLimits::default().max_output)]
        max_output: u64,
        /// Quota: total bytes of the app's artifacts.
        #[arg(long, default_value_t = Quota::default().max_bytes)]
        quota_bytes: u64,
        /// Quota: number of the app's artifacts.
        #[arg(long, default_value_t = Quota::default().max_artifacts)]
        quota_artifacts: u64,
        /// Quota: size of one artifact.
        #[arg(long, default_value_t = Quota::default().max_artifact_bytes)]
        quota_artifact_bytes: u64,
        /// Let the app read this artifact without holding a reference (repeatable).
        #[arg(long = "grant")]
        grants: Vec<String>,
        /// Do not keep compiled code in DIR/cache (sealed with the key in
        /// ~/.config/artifacts/cache-key) for the next run.
        #[arg(long)]
        no_compile_cache: bool,
        /// Arguments for the app.
        #[arg(last = true)]
        args: Vec<String>,
    },
}

/// Exit codes: 1 for errors in general, and these for the ones scripts may want to tell apart.
const EXIT_NOT_FOUND: u8 = 3;
const EXIT_DAMAGED: u8 = 4;
/// Bad usage (as clap exits for a bad option).
const EXIT_USAGE: u8 = 2;
/// `run`: the host stopped the app (CPU, memory, time or output limit, trap) or could not load it.
const EXIT_APP_STOPPED: u8 = 125;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            say(&e.to_string());
            ExitCode::from(match e {
                Failure::Store(Error::NotFound(_)) => EXIT_NOT_FOUND,
                Failure::Store(
                    Error::Integrity { .. } | Error::MissingContent(_) | Error::CorruptRecord(_),
                ) => EXIT_DAMAGED,
                Failure::Store(
                    Error::OutOfFuel { .. }
                    | Error::OutOfMemory { .. }
                    | Error::Timeout { .. }
                    | Error::OutputLimit { .. }
                    | Error::AppTrap { .. }
                    | Error::InvalidApp(_),
                ) => EXIT_APP_STOPPED,
                Failure::Usage(_) => EXIT_USAGE,
                _ => 1,
            })
        }
    }
}

/// Prints one of the host's own messages to standard error: escaped (an
/// error can quote what an app or a file contains), and on a terminal in
/// bold, which app output (escaped there) cannot imitate.
fn say(message: &str) {
    let text = artifacts::apps::terminal_safe(format!("artifacts: {message}").as_bytes());
    let mut err = io::stderr().lock();
    let plain = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
        || std::env::var_os("TERM").is_some_and(|t| t == "dumb");
    let _ = if err.is_terminal() && !plain {
        writeln!(err, "\x1b[1m{text}\x1b[0m")
    } else {
        writeln!(err, "{text}")
    };
}

#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("{0}")]
    Store(#[from] Error),
    #[error("{0}: {1}")]
    Io(String, io::Error),
    /// An output path that cannot be written (a directory, a socket, …).
    #[error("{0}")]
    Output(String),
    #[error("{0}")]
    Usage(String),
}

/// A `--timeout`: seconds, decimals allowed, more than 0.
fn parse_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(secs) if secs > 0.0 && Duration::try_from_secs_f64(secs).is_ok() => Ok(secs),
        _ => Err(format!("{s:?} is not a number of seconds greater than 0")),
    }
}

/// What `run`'s APP names.
enum AppSource<'a> {
    /// A component in the store.
    Stored(Hash),
    /// A component file (`-`: standard input).
    File(&'a Path),
}

/// The rule for `run APP`: 64 hex digits (or `blake3:` and them) are always a stored app, never a
/// file (so a file named like a hash cannot stand in for the stored app);
/// a file must be named by a path with a `/` or ending in `.wasm`, or be
/// `-`; anything else is refused.
fn app_source(app: &str) -> Result<AppSource<'_>, Failure> {
    let hex = app.strip_prefix(Hash::PREFIX).unwrap_or(app);
    if (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())) || hex.len() < app.len() {
        return hash_arg(app).map(AppSource::Stored);
    }
    if app == "-" || app.contains('/') || app.ends_with(".wasm") {
        return Ok(AppSource::File(Path::new(app)));
    }
    Err(Failure::Usage(format!(
        "{app:?} is not a hash (64 hex digits), and a component file must be named by a \
         path with a `/` or ending in .wasm: ./{app}"
    )))
}

/// A hash given on the command line: parsed once, here.
fn hash_arg(text: &str) -> Result<Hash, Failure> {
    text.parse::<Hash>()
        .map_err(|e| Error::InvalidHash(e.to_string()).into())
}

fn io_context(what: impl std::fmt::Display) -> impl FnOnce(io::Error) -> Failure {
    move |e| Failure::Io(what.to_string(), e)
}

/// `--s3` in a build without the `s3` feature.
#[cfg(not(feature = "s3"))]
fn no_s3() -> Failure {
    Error::Open("this build has no S3 support (cargo feature `s3`)".into()).into()
}

fn run(cli: Cli) -> Result<ExitCode, Failure> {
    let cache = compile_cache(&cli.dir);
    let mut builder = ArtifactStore::builder().private_dedup(cli.private_dedup);
    if let Some(cache) = &cache {
        builder = builder.core_cache(cache.clone());
    }
    if let Command::Migrate = cli.command {
        let migrated = match &cli.s3 {
            #[cfg(not(feature = "s3"))]
            Some(_) => return Err(no_s3()),
            #[cfg(feature = "s3")]
            Some(url) => builder.migrate_s3(
                &S3Config::from_url_and_env(url).map_err(|e| Error::Open(e.to_string()))?,
            )?,
            None => builder.migrate_dir(&cli.dir)?,
        };
        writeln!(
            io::stdout(),
            "migrated {migrated} artifacts; the store is format 2"
        )
        .map_err(io_context("writing to standard output"))?;
        return Ok(ExitCode::SUCCESS);
    }
    let store = match &cli.s3 {
        #[cfg(not(feature = "s3"))]
        Some(_) => return Err(no_s3()),
        #[cfg(feature = "s3")]
        Some(url) => {
            let config = S3Config::from_url_and_env(url).map_err(|e| Error::Open(e.to_string()))?;
            builder.open_s3(&config)?
        }
        None => builder.open_dir(&cli.dir)?,
    };
    let mut out = io::stdout().lock();
    match cli.command {
        Command::Put {
            file,
            artifact_type,
        } => {
            let hash = put_file(&store, &file, artifact_type)?;
            writeln!(out, "{hash}").map_err(io_context("writing to standard output"))?;
        }
        Command::Get { hash, output } => match output {
            Some(path) => get_to_file(&store, &hash_arg(&hash)?, &path)?,
            None => {
                // Verified before a byte goes out; large content waits in
                // a temporary file, not in memory.
                let mut held = Spill::default();
                store.get_to(&hash_arg(&hash)?, &mut held)?;
                held.copy_to(&mut out)
                    .and_then(|()| out.flush())
                    .map_err(io_context("writing to standard output"))?;
            }
        },
        Command::Stat { hash, json } => {
            let meta = store.stat(&hash_arg(&hash)?)?;
            let text = if json {
                serde_json::to_string_pretty(&meta).unwrap_or_default()
            } else {
                describe(&meta)
            };
            writeln!(out, "{text}").map_err(io_context("writing to standard output"))?;
        }
        Command::Ls { json } => {
            let all = store.list().collect::<Result<Vec<_>, _>>()?;
            let text = if json {
                serde_json::to_string_pretty(&all).unwrap_or_default()
            } else {
                all.iter()
                    .map(|m| {
                        format!(
                            "{}  {:>12}  {:<13}  {}",
                            m.hash, m.size, m.artifact_type, m.reference_count
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            if !text.is_empty() {
                writeln!(out, "{text}").map_err(io_context("writing to standard output"))?;
            }
        }
        Command::Release { hash } => {
            let left = store.release(&hash_arg(&hash)?)?;
            writeln!(out, "{left}").map_err(io_context("writing to standard output"))?;
        }
        Command::Rm { hash } => store.remove(&hash_arg(&hash)?)?,
        Command::Verify { quarantine } => return verify(&store, &mut out, quarantine),
        Command::Gc { grace, json } => {
            let r = store.gc(Duration::from_secs(grace))?;
            let text = if json {
                serde_json::to_string_pretty(&r).unwrap_or_default()
            } else {
                format!(
                    "removed {} unreferenced blobs ({} bytes) and {} temporary files; finished {} interrupted deletions; kept {} unreferenced blobs younger than {grace} s",
                    r.orphans_removed,
                    r.bytes_freed,
                    r.temporary_files_removed,
                    r.deletions_finished,
                    r.orphans_in_grace
                )
            };
            writeln!(out, "{text}").map_err(io_context("writing to standard output"))?;
        }
        // Handled before the store is opened.
        Command::Migrate => {}
        Command::Run {
            app,
            app_id,
            fuel,
            memory,
            timeout,
            max_output,
            quota_bytes,
            quota_artifacts,
            quota_artifact_bytes,
            grants,
            no_compile_cache,
            args,
        } => {
            drop(out);
            let mut host = AppHost::new(store)?;
            if !no_compile_cache && let Some(cache) = cache {
                host = host.with_compile_cache(cache);
            }
            let loaded = match app_source(&app)? {
                AppSource::Stored(hash) => host.load(&hash)?,
                AppSource::File(path) => {
                    let limit = AppLimits::default().max_component_bytes;
                    host.load_file(&read_input(path, limit)?)?
                }
            };
            let mut config = AppConfig::new(app_id.unwrap_or_else(|| loaded.default_id()));
            config.limits = AppLimits {
                fuel,
                memory_bytes: memory,
                wall_time: Duration::from_secs_f64(timeout),
                max_output,
                ..AppLimits::default()
            };
            config.quota = Quota {
                max_bytes: quota_bytes,
                max_artifacts: quota_artifacts,
                max_artifact_bytes: quota_artifact_bytes,
            };
            config.grants = grants
                .iter()
                .map(|g| hash_arg(g))
                .collect::<Result<_, _>>()?;
            config.args = args;
            config.stdio = Stdio::Inherit;
            let outcome = host.run(&loaded, &config)?;
            return Ok(ExitCode::from(u8::try_from(outcome.exit_code).unwrap_or(1)));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The disk cache of compiled apps: `DIR/cache`, sealed with a key kept
/// outside the store. None (compile every time) if there is no home for the key.
fn compile_cache(dir: &Path) -> Option<CompileCache> {
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    match CompileCache::load_or_create_key(&config.join("artifacts/cache-key")) {
        Ok(key) => Some(CompileCache::new(dir.join("cache"), key)),
        Err(e) => {
            say(&format!("not caching compiled code: {e}"));
            None
        }
    }
}

/// Opens `file` (`-`: standard input) for reading.
fn open_input(file: &Path) -> Result<Box<dyn Read>, Failure> {
    Ok(if file.as_os_str() == "-" {
        Box::new(io::stdin().lock())
    } else {
        let name = file.display();
        Box::new(std::fs::File::open(file).map_err(io_context(format!("opening {name}")))?)
    })
}

/// Streams `file` into the store (a few MiB held at a time, however large).
/// Without a type, content starting with wasm's magic is a wasm module.
fn put_file(
    store: &ArtifactStore,
    file: &Path,
    artifact_type: Option<ArtifactType>,
) -> Result<Hash, Failure> {
    let name = file.display();
    let mut reader = open_input(file)?;
    let mut head = Vec::with_capacity(4);
    (&mut reader)
        .take(4)
        .read_to_end(&mut head)
        .map_err(io_context(format!("reading {name}")))?;
    let artifact_type = artifact_type.unwrap_or(if head == b"\0asm" {
        ArtifactType::WasmModule
    } else {
        ArtifactType::Generic
    });
    store
        .put_from(&mut head.as_slice().chain(reader), artifact_type)
        .map_err(|e| match e {
            Error::Input(why) => Failure::Io(format!("reading {name}"), io::Error::other(why)),
            other => other.into(),
        })
}

fn read_input(file: &Path, limit: u64) -> Result<Vec<u8>, Failure> {
    let name = file.display().to_string();
    let mut content = Vec::new();
    let reader = open_input(file)?;
    // Read one byte past the limit, so an oversized input is refused without reading it all.
    reader
        .take(limit.saturating_add(1))
        .read_to_end(&mut content)
        .map_err(io_context(format!("reading {name}")))?;
    if content.len() as u64 > limit {
        return Err(Error::TooLarge {
            size: content.len() as u64,
            limit,
        }
        .into());
    }
    Ok(content)
}

/// Streams the artifact to `path` by what `path` is (see `cli::output`):
/// nothing but verified content ever appears there, and a failed get leaves
/// it as it was.
fn get_to_file(store: &ArtifactStore, hash: &Hash, path: &Path) -> Result<(), Failure> {
    output::write_to(path, |out| store.get_to(hash, out).map(drop))
        .map_err(|r| match r.source {
            Some(e) => Failure::Io(r.what, e),
            None => Failure::Output(r.what),
        })?
        .map_err(Failure::from)
}

fn describe(m: &Metadata) -> String {
    let when = humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(m.stored_at));
    format!(
        "hash:            {}\nsize:            {}\ntype:            {}\nstored_at:       {when}\nreference_count: {}",
        m.hash, m.size, m.artifact_type, m.reference_count
    )
}

fn verify(
    store: &ArtifactStore,
    out: &mut impl Write,
    quarantine: bool,
) -> Result<ExitCode, Failure> {
    let all = store.list().collect::<Result<Vec<_>, _>>()?;
    let bar = if io::stderr().is_terminal() {
        indicatif::ProgressBar::new(all.len() as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut damaged = 0u64;
    for m in &all {
        bar.inc(1);
        let problem = match store.verify(&m.hash) {
            Ok(_) => continue,
            Err(Error::Integrity { actual, .. }) if quarantine => {
                store.quarantine(&m.hash)?;
                format!("corrupt: content hashes to {actual}; moved to quarantine")
            }
            Err(Error::Integrity { actual, .. }) => format!("corrupt: content hashes to {actual}"),
            Err(Error::MissingContent(_)) => "missing: the content is gone".to_string(),
            Err(Error::NotFound(_)) => continue, // deleted while we were verifying
            Err(e) => format!("error: {e}"),
        };
        damaged += 1;
        bar.suspend(|| writeln!(out, "{}  {problem}", m.hash))
            .map_err(io_context("writing to standard output"))?;
    }
    bar.finish_and_clear();
    let _ = writeln!(
        io::stderr(),
        "verified {} artifacts: {} ok, {damaged} damaged",
        all.len(),
        all.len() as u64 - damaged
    );
    Ok(if damaged == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_DAMAGED)
    })
}

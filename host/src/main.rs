//! `artifacts`: the command-line tool for a content-addressed artifact store.

use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

#[cfg(feature = "s3")]
use artifacts::S3Config;
use artifacts::{ArtifactStore, CompileCache, Error, Hash, Metadata};
use clap::Parser;

mod cli {
    pub mod alias;
    pub mod app;
    pub mod args;
    pub mod digest;
    pub mod files;
    pub mod health;
    pub mod logging;
    #[cfg(feature = "oci")]
    pub mod oci;
    pub mod output;
    pub mod progress;
    #[cfg(feature = "oci")]
    pub mod registry;
    pub mod tag;
    #[cfg(feature = "oci")]
    pub mod wasm_config;
}
use cli::args::{Cli, Command};
use cli::files::{get_into, get_range, get_to_file, put_file};
use cli::output::Spill;

/// Exit codes: 1 for errors in general, and these for the ones scripts may want to tell apart.
const EXIT_NOT_FOUND: u8 = 3;
const EXIT_DAMAGED: u8 = 4;
/// The store has no space left for a write (a full disk or bucket quota).
const EXIT_FULL: u8 = 5;
/// Bad usage (as clap exits for a bad option).
const EXIT_USAGE: u8 = 2;
/// `run`: the host stopped the app (CPU, memory, time or output limit, trap) or could not load it.
const EXIT_APP_STOPPED: u8 = 125;

fn main() -> ExitCode {
    let cli = Cli::parse();
    cli::logging::init(cli.verbose);
    cli::digest::set(cli.digest);
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            say(&e.to_string());
            ExitCode::from(match e {
                Failure::Store(Error::NotFound(_)) | Failure::NoName(_) | Failure::NoAlias(_) => {
                    EXIT_NOT_FOUND
                }
                Failure::Store(
                    Error::Integrity { .. }
                    | Error::MissingContent(_)
                    | Error::CorruptRecord(_)
                    | Error::Sha256Mismatch { .. },
                ) => EXIT_DAMAGED,
                Failure::Store(
                    Error::OutOfFuel { .. }
                    | Error::OutOfMemory { .. }
                    | Error::Timeout { .. }
                    | Error::OutputLimit { .. }
                    | Error::AppTrap { .. }
                    | Error::InvalidApp(_),
                ) => EXIT_APP_STOPPED,
                Failure::Store(
                    Error::Full(_) | Error::Open(artifacts::backend::BackendError::Full(_)),
                ) => EXIT_FULL,
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
    Io(String, #[source] io::Error),
    /// An output path that cannot be written (a directory, a socket, …).
    #[error("{0}")]
    Output(String),
    #[error("{0}")]
    Usage(String),
    /// `tag get` or `tag rm` of a name that does not exist.
    #[error("no name {0:?}")]
    NoName(String),
    /// A `sha256:` digest that names no stored artifact.
    #[error("no artifact answers to {0} (only content pushed or pulled here does)")]
    NoAlias(artifacts::sha256::Sha256Digest),
    /// A registry refused, failed or sent what is refused (`push`, `pull`).
    #[cfg(feature = "oci")]
    #[error("{0}")]
    Registry(String),
}

/// A `--timeout`: seconds, decimals allowed, more than 0.
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
    Error::Open(artifacts::backend::BackendError::Unsupported {
        what: "S3 in this build (cargo feature `s3`)",
    })
    .into()
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
            Some(url) => {
                builder.migrate_s3(&S3Config::from_url_and_env(url).map_err(Error::Open)?)?
            }
            None => builder.migrate_dir(&cli.dir)?,
        };
        writeln!(
            io::stdout(),
            "migrated {migrated} artifacts; the store is format 3"
        )
        .map_err(io_context("writing to standard output"))?;
        return Ok(ExitCode::SUCCESS);
    }
    let opened = open(&cli, builder);
    if let Command::Health { json } = cli.command {
        return cli::health::run_health(opened, json, &mut io::stdout().lock());
    }
    let store = opened?;
    let mut out = io::stdout().lock();
    match cli.command {
        Command::Put {
            file,
            artifact_type,
        } => {
            let hash = put_file(&store, &file, artifact_type)?;
            writeln!(out, "{}", cli::digest::shown(&hash))
                .map_err(io_context("writing to standard output"))?;
        }
        Command::Get {
            hash,
            output,
            range: Some(range),
        } => {
            let hash = cli::alias::hash_or_alias(&store, &hash)?;
            let end = match range.end {
                Some(end) => end,
                None => store.stat(&hash)?.size,
            };
            get_range(&store, &hash, range.start..end, output.as_deref(), &mut out)?;
        }
        Command::Get { hash, output, .. } => match output {
            Some(path) => get_to_file(&store, &cli::alias::hash_or_alias(&store, &hash)?, &path)?,
            None => {
                // Verified before a byte goes out; large content waits in
                // a temporary file, not in memory.
                let mut held = Spill::default();
                get_into(
                    &store,
                    &cli::alias::hash_or_alias(&store, &hash)?,
                    &mut held,
                )?;
                held.copy_to(&mut out)
                    .and_then(|()| out.flush())
                    .map_err(io_context("writing to standard output"))?;
            }
        },
        Command::Stat { hash, json } => {
            let meta = store.stat(&cli::alias::hash_or_alias(&store, &hash)?)?;
            let text = if json {
                cli::digest::json(&meta)
            } else {
                describe(&meta)
            };
            writeln!(out, "{text}").map_err(io_context("writing to standard output"))?;
        }
        Command::Ls { json } => {
            let all = store.list().collect::<Result<Vec<_>, _>>()?;
            let text = if json {
                cli::digest::json(&all)
            } else {
                all.iter()
                    .map(|m| {
                        format!(
                            "{}  {:>12}  {:<13}  {}",
                            cli::digest::shown(&m.hash),
                            m.size,
                            m.artifact_type,
                            m.reference_count
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
                    "removed {} unreferenced blobs ({} bytes), {} temporary files, {} outboards of deleted blobs, {} sha256 aliases of deleted artifacts and {} empty owner spaces; finished {} interrupted deletions; kept {} unreferenced blobs younger than {grace} s",
                    r.orphans_removed,
                    r.bytes_freed,
                    r.temporary_files_removed,
                    r.outboards_removed,
                    r.aliases_removed,
                    r.owner_spaces_removed,
                    r.deletions_finished,
                    r.orphans_in_grace
                )
            };
            writeln!(out, "{text}").map_err(io_context("writing to standard output"))?;
        }
        Command::Tag(command) => cli::tag::run_tag(&store, command, &mut out)?,
        #[cfg(feature = "oci")]
        Command::Push(args) => cli::oci::push(&store, args, &mut out)?,
        #[cfg(feature = "oci")]
        Command::Pull(args) => cli::oci::pull(&store, args, &mut out)?,
        // Handled before the store is opened.
        Command::Migrate | Command::Health { .. } => {}
        Command::Run(run) => {
            drop(out);
            return cli::app::run_app(store, cache, run);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Opens the store `--dir` or `--s3` names.
fn open(cli: &Cli, builder: artifacts::StoreBuilder) -> Result<ArtifactStore, Failure> {
    Ok(match &cli.s3 {
        #[cfg(not(feature = "s3"))]
        Some(_) => return Err(no_s3()),
        #[cfg(feature = "s3")]
        Some(url) => {
            let config = S3Config::from_url_and_env(url).map_err(Error::Open)?;
            builder.open_s3(&config)?
        }
        None => builder.open_dir(&cli.dir)?,
    })
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

fn describe(m: &Metadata) -> String {
    let when = humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(m.stored_at));
    format!(
        "hash:            {}\nsize:            {}\ntype:            {}\nstored_at:       {when}\nreference_count: {}",
        cli::digest::shown(&m.hash),
        m.size,
        m.artifact_type,
        m.reference_count
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
        bar.suspend(|| writeln!(out, "{}  {problem}", cli::digest::shown(&m.hash)))
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

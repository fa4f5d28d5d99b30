//! `artifacts`: the command-line tool for a content-addressed artifact store.

use std::io::{self, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

use artifacts::apps::{AppConfig, AppHost, AppLimits, CompileCache, Stdio};
use artifacts::{ArtifactStore, ArtifactType, Error, Hash, Metadata, Quota, S3Config};
use clap::{Parser, Subcommand};

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
    /// APP is a component file, or the hash of a wasm artifact in the store
    /// (read and verified before it is compiled). The app gets no
    /// filesystem, network or environment; its output goes to ours, and
    /// its exit code becomes ours (125 if the host had to stop it).
    Run {
        /// A component file, or the hash of a stored one.
        app: String,
        /// The app's identity: whose references it takes and sees
        /// [default: the file's name, or "app-" and the hash's first 12 digits].
        #[arg(long)]
        app_id: Option<String>,
        /// CPU budget in wasmtime fuel (about one unit per instruction).
        #[arg(long, default_value_t = AppLimits::default().fuel)]
        fuel: u64,
        /// Memory limit in bytes.
        #[arg(long, default_value_t = AppLimits::default().memory_bytes)]
        memory: usize,
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
/// `run`: the host stopped the app (CPU or memory limit, trap) or could not load it.
const EXIT_APP_STOPPED: u8 = 125;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(io::stderr(), "artifacts: {e}");
            ExitCode::from(match e {
                Failure::Store(Error::NotFound(_)) => EXIT_NOT_FOUND,
                Failure::Store(
                    Error::Integrity { .. } | Error::MissingContent(_) | Error::CorruptRecord(_),
                ) => EXIT_DAMAGED,
                Failure::Store(
                    Error::OutOfFuel { .. }
                    | Error::OutOfMemory { .. }
                    | Error::AppTrap { .. }
                    | Error::InvalidApp(_),
                ) => EXIT_APP_STOPPED,
                _ => 1,
            })
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("{0}")]
    Store(#[from] Error),
    #[error("{0}: {1}")]
    Io(String, io::Error),
}

fn io_context(what: impl std::fmt::Display) -> impl FnOnce(io::Error) -> Failure {
    move |e| Failure::Io(what.to_string(), e)
}

fn run(cli: Cli) -> Result<ExitCode, Failure> {
    let cache = compile_cache(&cli.dir);
    let mut builder = ArtifactStore::builder().private_dedup(cli.private_dedup);
    if let Some(cache) = &cache {
        builder = builder.core_cache(cache.clone());
    }
    if let Command::Migrate = cli.command {
        let migrated = match &cli.s3 {
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
            Some(path) => get_to_file(&store, &hash, &path)?,
            None => {
                // Verified before a byte goes out; large content waits in
                // a temporary file, not in memory.
                let mut held = Spill::Memory(Vec::new());
                store.get_to(&hash, &mut held)?;
                held.copy_to(&mut out)
                    .and_then(|()| out.flush())
                    .map_err(io_context("writing to standard output"))?;
            }
        },
        Command::Stat { hash, json } => {
            let meta = store.stat(&hash)?;
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
            let left = store.release(&hash)?;
            writeln!(out, "{left}").map_err(io_context("writing to standard output"))?;
        }
        Command::Rm { hash } => store.remove(&hash)?,
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
            let path = Path::new(&app);
            let (loaded, default_id) = match Hash::from_hex(&app) {
                Ok(hash) if !path.exists() => {
                    let id = format!("app-{}", hash.as_str().get(..12).unwrap_or_default());
                    (host.load(hash.as_str())?, id)
                }
                _ => {
                    let limit = AppLimits::default().max_component_bytes;
                    let bytes = read_input(path, limit)?;
                    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned());
                    (
                        host.load_file(&bytes)?,
                        stem.unwrap_or_else(|| "app".into()),
                    )
                }
            };
            let mut config = AppConfig::new(app_id.unwrap_or(default_id));
            config.limits = AppLimits {
                fuel,
                memory_bytes: memory,
                ..AppLimits::default()
            };
            config.quota = Quota {
                max_bytes: quota_bytes,
                max_artifacts: quota_artifacts,
                max_artifact_bytes: quota_artifact_bytes,
            };
            config.grants = grants
                .iter()
                .map(|g| Hash::from_hex(g).map_err(|e| Error::InvalidHash(e.to_string())))
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
            let _ = writeln!(io::stderr(), "artifacts: not caching compiled apps: {e}");
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

/// A writer that keeps what it is given in memory up to 16 MiB, then in an
/// anonymous temporary file (removed when dropped).
enum Spill {
    Memory(Vec<u8>),
    File(io::BufWriter<std::fs::File>),
}

impl Spill {
    const IN_MEMORY: usize = 16 << 20;

    /// Everything written so far, to `out`.
    fn copy_to(self, out: &mut impl Write) -> io::Result<()> {
        match self {
            Spill::Memory(bytes) => out.write_all(&bytes),
            Spill::File(writer) => {
                use std::io::Seek;
                let mut file = writer.into_inner().map_err(|e| e.into_error())?;
                file.seek(io::SeekFrom::Start(0))?;
                io::copy(&mut file, out).map(drop)
            }
        }
    }
}

impl Write for Spill {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Spill::Memory(bytes) = self
            && bytes.len().saturating_add(buf.len()) > Self::IN_MEMORY
        {
            let mut file = io::BufWriter::with_capacity(1 << 20, tempfile::tempfile()?);
            file.write_all(bytes)?;
            *self = Spill::File(file);
        }
        match self {
            Spill::Memory(bytes) => bytes.write(buf),
            Spill::File(file) => file.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Spill::Memory(_) => Ok(()),
            Spill::File(file) => file.flush(),
        }
    }
}

/// Writes through a temporary file beside `path`, so a failed write leaves no partial file.
/// Streams the artifact into a temporary file beside `path`, and renames it
/// into place only once the whole content has been verified.
fn get_to_file(store: &ArtifactStore, hash: &str, path: &Path) -> Result<(), Failure> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let what = path.display().to_string();
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .map_err(io_context(format!("creating a file beside {what}")))?;
    {
        let mut writer = io::BufWriter::with_capacity(1 << 20, tmp.as_file_mut());
        store.get_to(hash, &mut writer)?;
        writer
            .flush()
            .map_err(io_context(format!("writing {what}")))?;
    }
    tmp.persist(path)
        .map_err(|e| Failure::Io(format!("writing {what}"), e.error))?;
    Ok(())
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

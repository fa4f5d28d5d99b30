//! `artifacts run`: which app, its limits and grants, and running it.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use artifacts::apps::limits::AppLimits;
use artifacts::apps::{AppConfig, AppHost, Stdio};
use artifacts::{ArtifactStore, CompileCache, Hash, Quota};

use super::args::RunArgs;
use super::files::read_input;
use crate::{Failure, hash_arg};

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

/// Runs the app `run` names over `store`; its exit code becomes ours.
pub(crate) fn run_app(
    store: ArtifactStore,
    cache: Option<CompileCache>,
    run: RunArgs,
) -> Result<ExitCode, Failure> {
    let RunArgs {
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
        allow_launch,
        no_compile_cache,
        args,
    } = run;
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
    config.allow_launch = allow_launch;
    config.stdio = Stdio::Inherit;
    let outcome = host.run(&loaded, &config)?;
    Ok(ExitCode::from(u8::try_from(outcome.exit_code).unwrap_or(1)))
}

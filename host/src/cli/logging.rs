//! `-v` and `RUST_LOG`: the log on standard error (the library's spans).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

/// Installs a subscriber writing to standard error, if asked: `RUST_LOG`
/// (an `EnvFilter`, e.g. `artifacts=debug`) if it is set, else `-v` (this
/// tool's and the library's spans at info), `-vv` (debug) or `-vvv`
/// (trace), with only warnings from other crates. Without either, nothing
/// is installed and the library's spans cost nothing. A span's line is
/// written when it closes, with its fields and its time.
pub(crate) fn init(verbosity: u8) {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.trim().is_empty() => EnvFilter::new(directives),
        _ => {
            let level = match verbosity {
                0 => return,
                1 => "info",
                2 => "debug",
                _ => "trace",
            };
            EnvFilter::new(format!("warn,artifacts={level}"))
        }
    };
    let plain = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
        || std::env::var_os("TERM").is_some_and(|t| t == "dumb");
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && !plain)
        .with_span_events(FmtSpan::CLOSE)
        .try_init();
}

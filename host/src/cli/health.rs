//! `artifacts health [--json]`: the store's health report; exit 1 when
//! unhealthy (the backend unreachable, or refusing the probe's write).

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

use artifacts::health::{BackendHealth, HealthReport};
use artifacts::{ArtifactStore, Error};

use super::digest;
use crate::{Failure, io_context};

/// Prints the report of `store`, or, when it could not even be opened,
/// one that says so; the exit code says whether it is healthy.
pub(crate) fn run_health(
    store: Result<ArtifactStore, Failure>,
    json: bool,
    out: &mut impl Write,
) -> Result<ExitCode, Failure> {
    let report = match store {
        Ok(store) => store.health()?,
        Err(Failure::Store(e @ (Error::Open(_) | Error::Backend(_)))) => unreachable(&e),
        Err(other) => return Err(other),
    };
    let text = if json {
        digest::json(&report)
    } else {
        describe(&report)
    };
    writeln!(out, "{text}").map_err(io_context("writing to standard output"))?;
    Ok(if report.healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The report for a store that could not be opened.
fn unreachable(e: &Error) -> HealthReport {
    HealthReport {
        healthy: false,
        backend: BackendHealth {
            reachable: false,
            writable: false,
            probe_us: 0,
        },
        artifacts: None,
        total_bytes: None,
        owners: None,
        last_gc: None,
        quarantined: Vec::new(),
        problems: vec![format!("opening the store: {e}")],
    }
}

fn when(ms: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

fn known(n: Option<u64>) -> String {
    n.map_or_else(|| "unknown".to_owned(), |n| n.to_string())
}

fn describe(r: &HealthReport) -> String {
    let b = &r.backend;
    let mut lines = vec![
        format!("healthy:      {}", if r.healthy { "yes" } else { "no" }),
        format!(
            "backend:      {}, {} (probe {:.1} ms)",
            if b.reachable {
                "reachable"
            } else {
                "unreachable"
            },
            if b.writable {
                "writable"
            } else {
                "not writable"
            },
            b.probe_us as f64 / 1000.0
        ),
        format!(
            "artifacts:    {} ({} bytes)",
            known(r.artifacts),
            known(r.total_bytes)
        ),
        format!("owners:       {}", known(r.owners)),
    ];
    lines.push(match &r.last_gc {
        None => "last gc:      none recorded".to_owned(),
        Some(gc) => {
            let g = &gc.report;
            format!(
                "last gc:      {}, took {} ms, grace {} s: removed {} unreferenced blobs ({} bytes), {} temporary files, {} outboards, {} sha256 aliases, {} empty owner spaces; finished {} deletions; kept {} in grace",
                when(gc.finished_at),
                gc.took_ms,
                gc.grace_ms / 1000,
                g.orphans_removed,
                g.bytes_freed,
                g.temporary_files_removed,
                g.outboards_removed,
                g.aliases_removed,
                g.owner_spaces_removed,
                g.deletions_finished,
                g.orphans_in_grace
            )
        }
    });
    if r.quarantined.is_empty() {
        lines.push("quarantined:  none".to_owned());
    } else {
        lines.push(format!("quarantined:  {}", r.quarantined.len()));
        for q in &r.quarantined {
            lines.push(format!(
                "  {}  {:>12}  {}",
                digest::shown(&q.hash),
                q.size,
                when(q.quarantined_at)
            ));
        }
    }
    for p in &r.problems {
        lines.push(format!("problem:      {p}"));
    }
    lines.join("\n")
}

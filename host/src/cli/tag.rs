//! `artifacts tag`: the host's names for artifacts (its own, as `@host`).

use std::io::Write;

use artifacts::ArtifactStore;
use clap::Subcommand;

use super::digest::shown;
use crate::{Failure, hash_arg, io_context};

/// What `artifacts tag` does.
#[derive(Subcommand)]
pub(crate) enum TagCommand {
    /// Point NAME at an artifact (moving it if it exists); prints what it
    /// pointed at before, if anything.
    Set {
        /// The name: 1 to 255 bytes, no control characters.
        name: String,
        /// The artifact's hash.
        hash: String,
        /// Move the name only if it now points at this hash (`none`: only
        /// if it does not exist yet); else fail and change nothing.
        #[arg(long, value_name = "HASH|none")]
        expect: Option<String>,
    },
    /// Print the hash NAME points at (exit 3 if there is no such name).
    Get {
        /// The name.
        name: String,
    },
    /// Remove NAME; prints what it pointed at. The artifact loses the
    /// name's reference (and is deleted if no one holds it any more).
    Rm {
        /// The name.
        name: String,
    },
    /// List names (that start with PREFIX), in byte order: name, then hash.
    Ls {
        /// Only names that start with this.
        #[arg(default_value = "")]
        prefix: String,
        /// Print a JSON array of {name, hash} objects.
        #[arg(long)]
        json: bool,
    },
}

/// Runs one `artifacts tag` command.
pub(crate) fn run_tag(
    store: &ArtifactStore,
    command: TagCommand,
    out: &mut impl Write,
) -> Result<(), Failure> {
    let names = store.names();
    let text = match command {
        TagCommand::Set { name, hash, expect } => {
            let hash = hash_arg(&hash)?;
            match expect.as_deref() {
                None => names.set(&name, &hash)?.map(|h| shown(&h)),
                Some("none") => names.replace(&name, None, &hash).map(|()| None)?,
                Some(expected) => {
                    let expected = hash_arg(expected)?;
                    names
                        .replace(&name, Some(&expected), &hash)
                        .map(|()| None)?
                }
            }
        }
        TagCommand::Get { name } => match names.get(&name)? {
            Some(hash) => Some(shown(&hash)),
            None => return Err(Failure::NoName(name)),
        },
        TagCommand::Rm { name } => match names.delete(&name)? {
            Some(hash) => Some(shown(&hash)),
            None => return Err(Failure::NoName(name)),
        },
        TagCommand::Ls { prefix, json } => {
            let tags = names.list(&prefix)?;
            if json {
                Some(super::digest::json(&tags))
            } else {
                let lines: Vec<String> = tags
                    .iter()
                    .map(|t| format!("{}  {}", t.name, shown(&t.hash)))
                    .collect();
                (!lines.is_empty()).then(|| lines.join("\n"))
            }
        }
    };
    if let Some(text) = text {
        writeln!(out, "{text}").map_err(io_context("writing to standard output"))?;
    }
    Ok(())
}

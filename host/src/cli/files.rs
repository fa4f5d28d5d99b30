//! Files the CLI reads (`put FILE`, `run FILE`) and writes (`get -o`).

use std::io::{self, Read, Write};
use std::ops::Range;
use std::path::Path;

use artifacts::{ArtifactStore, ArtifactType, Error, Hash};

use super::{output, progress};
use crate::{Failure, io_context};

/// Opens `file` (`-`: standard input) for reading.
pub(crate) fn open_input(file: &Path) -> Result<Box<dyn Read>, Failure> {
    Ok(if file.as_os_str() == "-" {
        Box::new(io::stdin().lock())
    } else {
        let name = file.display();
        Box::new(std::fs::File::open(file).map_err(io_context(format!("opening {name}")))?)
    })
}

/// Streams `file` into the store (a few MiB held at a time, however large).
/// Without a type, content starting with wasm's magic is a wasm module.
pub(crate) fn put_file(
    store: &ArtifactStore,
    file: &Path,
    artifact_type: Option<ArtifactType>,
) -> Result<Hash, Failure> {
    let name = file.display();
    let size = (file.as_os_str() != "-")
        .then(|| {
            std::fs::metadata(file)
                .ok()
                .filter(|m| m.is_file())
                .map(|m| m.len())
        })
        .flatten();
    let bar = progress::bar(size, "put");
    let mut reader = bar.wrap_read(open_input(file)?);
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
    let stored = store
        .put_from(&mut head.as_slice().chain(reader), artifact_type)
        .map_err(|e| match e {
            Error::Input(why) => Failure::Io(format!("reading {name}"), io::Error::other(why)),
            other => other.into(),
        });
    bar.finish_and_clear();
    stored
}

pub(crate) fn read_input(file: &Path, limit: u64) -> Result<Vec<u8>, Failure> {
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
pub(crate) fn get_to_file(store: &ArtifactStore, hash: &Hash, path: &Path) -> Result<(), Failure> {
    output::write_to(path, |out| get_into(store, hash, out))
        .map_err(|r| match r.source {
            Some(e) => Failure::Io(r.what, e),
            None => Failure::Output(r.what),
        })?
        .map_err(Failure::from)
}

/// Writes the verified content of `hash` to `out`: content that a get holds
/// whole anyway (up to what [`Spill`](output::Spill) keeps in memory) is
/// handed over as it is, not copied; larger content streams
/// ([`ArtifactStore::get_to`]).
pub(crate) fn get_into(
    store: &ArtifactStore,
    hash: &Hash,
    out: &mut dyn output::Out,
) -> Result<(), Error> {
    let size = store.stat(hash)?.size;
    if size <= output::Spill::IN_MEMORY as u64 {
        let content = store.get(hash)?;
        return out.hold(content).map_err(|e| Error::Output(e.to_string()));
    }
    out.expect(size).map_err(|e| Error::Output(e.to_string()))?;
    let bar = progress::bar(Some(size), "get");
    let got = store.get_to(hash, &mut bar.wrap_write(out)).map(drop);
    bar.finish_and_clear();
    got
}

/// `get --range`: the bytes `range`, each part proven before it is written;
/// to `path` as `get -o` writes (renamed into place only once every part is
/// in), or to `out` once the whole range is proven (a long range waits in a
/// temporary file, as `get` does).
pub(crate) fn get_range(
    store: &ArtifactStore,
    hash: &Hash,
    range: Range<u64>,
    path: Option<&Path>,
    mut out: &mut dyn Write,
) -> Result<(), Failure> {
    let Some(path) = path else {
        let mut held = output::Spill::default();
        store.get_range_to(hash, range, &mut held)?;
        return held
            .copy_to(&mut out)
            .and_then(|()| out.flush())
            .map_err(io_context("writing to standard output"));
    };
    output::write_to(path, |out| store.get_range_to(hash, range, out).map(drop))
        .map_err(|r| match r.source {
            Some(e) => Failure::Io(r.what, e),
            None => Failure::Output(r.what),
        })?
        .map_err(Failure::from)
}

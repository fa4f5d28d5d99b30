//! Where the CLI writes a file a user named (`get -o PATH`), without
//! destroying what PATH is.
//!
//! - a new path or an existing regular file: the content goes to a
//!   temporary file in the same directory, is verified, and only then is
//!   renamed into place; a new file gets the mode the umask gives, a
//!   replaced one keeps its mode;
//! - a symlink: the same, applied to the file it points at (as cp and curl
//!   do); a dangling link creates its target;
//! - anything else that exists (a device, a FIFO, `/dev/stdout`): opened and
//!   written only once the whole content has verified (large content waits
//!   in an anonymous temporary file); never renamed over or unlinked;
//! - a directory (or a socket, which cannot be opened): a clear error.
//!
//! A failed or interrupted write leaves PATH as it was, except a device or
//! FIFO cut off while the verified content is being copied into it.

use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Seek, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// How many symlinks one path may go through (Linux's own limit).
const MAX_LINKS: usize = 40;

/// What a path names, once its symlinks are followed.
#[derive(Debug)]
pub enum Target {
    /// Nothing exists there yet: create it.
    New(PathBuf),
    /// A regular file, to replace by a rename, keeping its permissions
    /// (and, where we may, its owner).
    Regular(PathBuf, fs::Metadata),
    /// Something that is written through, never replaced: a device, a FIFO,
    /// or a file reached through a `/proc` link such as `/dev/stdout`.
    WriteThrough(PathBuf),
}

/// Why a path cannot be written.
#[derive(Debug)]
pub struct Refused {
    /// What was wrong, for the user.
    pub what: String,
    /// The I/O error behind it, if any.
    pub source: Option<io::Error>,
}

fn refused(what: String, source: Option<io::Error>) -> Refused {
    Refused { what, source }
}

/// Classifies `path` by what it is after following symlinks.
pub fn classify(path: &Path) -> Result<Target, Refused> {
    let shown = path.display();
    let (resolved, through_proc) = follow_links(path)?;
    // The kernel's view of the end of the chain. This also follows the
    // "magic" links under /proc (like /dev/stdout -> /proc/self/fd/1), which
    // read_link renders as text such as `pipe:[123]`, not as a path.
    match fs::metadata(path) {
        Ok(meta) => {
            let kind = meta.file_type();
            if kind.is_dir() {
                return Err(refused(
                    format!("{shown} is a directory; name a file to write"),
                    None,
                ));
            }
            if kind.is_socket() {
                return Err(refused(
                    format!("{shown} is a socket, which cannot be written as a file"),
                    None,
                ));
            }
            if !kind.is_file() {
                return Ok(Target::WriteThrough(path.to_path_buf()));
            }
            // A regular file: rename onto it only if the path we followed
            // leads to this very file (not so for /proc links).
            let same = !through_proc
                && fs::symlink_metadata(&resolved)
                    .is_ok_and(|r| r.is_file() && r.dev() == meta.dev() && r.ino() == meta.ino());
            if same {
                Ok(Target::Regular(resolved, meta))
            } else {
                Ok(Target::WriteThrough(path.to_path_buf()))
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // Nothing there, or a dangling link: create the end of the chain.
            match fs::symlink_metadata(&resolved) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Target::New(resolved)),
                Ok(_) => Err(refused(
                    format!("{shown} cannot be followed to a file"),
                    None,
                )),
                Err(e) => Err(refused(format!("cannot look at {shown}"), Some(e))),
            }
        }
        Err(e) => Err(refused(format!("cannot look at {shown}"), Some(e))),
    }
}

/// Follows the symlinks at the end of `path` (those of its directories are
/// the kernel's business) to the path they lead to, which may not exist,
/// and says whether the way went through `/proc` (`/dev/stdout` and the
/// like name an open file: written through, never replaced).
fn follow_links(path: &Path) -> Result<(PathBuf, bool), Refused> {
    let mut at = path.to_path_buf();
    let mut through_proc = false;
    for _ in 0..MAX_LINKS {
        through_proc |= at.starts_with("/proc");
        match fs::symlink_metadata(&at) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let link = fs::read_link(&at).map_err(|e| {
                    refused(format!("cannot read the link {}", at.display()), Some(e))
                })?;
                at = match at.parent() {
                    Some(dir) if link.is_relative() => dir.join(link),
                    _ => link,
                };
            }
            Ok(_) => return Ok((at, through_proc)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((at, through_proc)),
            Err(e) => return Err(refused(format!("cannot look at {}", at.display()), Some(e))),
        }
    }
    Err(refused(
        format!(
            "{} goes through more than {MAX_LINKS} symlinks",
            path.display()
        ),
        None,
    ))
}

/// The directory a file at `path` lives in.
fn directory_of(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Writes what `produce` writes to `path`, by `path`'s kind (see the module
/// doc). `produce` must fail if the content does not verify; then nothing
/// is written to `path`. Errors from `produce` come back as they were;
/// the writer's own I/O errors as `Err(Err(..))`.
pub fn write_to<E>(
    path: &Path,
    produce: impl FnOnce(&mut dyn Out) -> Result<(), E>,
) -> Result<Result<(), E>, Refused> {
    match classify(path)? {
        Target::New(file) => replace(&file, None, produce),
        Target::Regular(file, old) => replace(&file, Some(old), produce),
        Target::WriteThrough(file) => write_through(&file, produce),
    }
}

/// Temporary file beside `file`, verified content, rename.
fn replace<E>(
    file: &Path,
    old: Option<fs::Metadata>,
    produce: impl FnOnce(&mut dyn Out) -> Result<(), E>,
) -> Result<Result<(), E>, Refused> {
    let shown = file.display();
    let dir = directory_of(file);
    // Created with 0666 so that the umask decides, as for any new file.
    let mut tmp = tempfile::Builder::new()
        .prefix(".artifacts-get.")
        .permissions(Permissions::from_mode(0o666))
        .tempfile_in(dir)
        .map_err(|e| refused(format!("cannot create a file beside {shown}"), Some(e)))?;
    {
        let mut writer = io::BufWriter::with_capacity(1 << 20, tmp.as_file_mut());
        if let Err(e) = produce(&mut writer) {
            return Ok(Err(e));
        }
        writer
            .flush()
            .map_err(|e| refused(format!("cannot write {shown}"), Some(e)))?;
    }
    if let Some(old) = old {
        // The owner first (only root may give a file away; as anyone else
        // this fails and the file is ours, as with any replacement), then
        // the mode, which a change of owner may clear bits of.
        let _ = std::os::unix::fs::fchown(tmp.as_file(), Some(old.uid()), Some(old.gid()));
        tmp.as_file()
            .set_permissions(old.permissions())
            .map_err(|e| refused(format!("cannot set the mode of {shown}"), Some(e)))?;
    }
    tmp.as_file()
        .sync_all()
        .map_err(|e| refused(format!("cannot write {shown}"), Some(e)))?;
    tmp.persist(file)
        .map_err(|e| refused(format!("cannot write {shown}"), Some(e.error)))?;
    Ok(Ok(()))
}

/// Verified content held aside, then written into the existing `file`.
fn write_through<E>(
    file: &Path,
    produce: impl FnOnce(&mut dyn Out) -> Result<(), E>,
) -> Result<Result<(), E>, Refused> {
    let shown = file.display();
    let mut held = Spill::default();
    if let Err(e) = produce(&mut held) {
        return Ok(Err(e));
    }
    // Opened only now: a FIFO's reader sees nothing at all of a failed get.
    // Appending, never truncating: a regular file reached through /proc
    // (`-o /dev/stdout >> log`) was opened by someone else, who decided
    // where writes go; a device or FIFO ignores it.
    let mut out = OpenOptions::new()
        .append(true)
        .open(file)
        .map_err(|e| refused(format!("cannot open {shown} for writing"), Some(e)))?;
    held.copy_to(&mut out)
        .and_then(|()| out.flush())
        .map_err(|e| refused(format!("cannot write {shown}"), Some(e)))?;
    Ok(Ok(()))
}

/// Where a get writes: a writer that can also take verified content whole.
pub trait Out: Write {
    /// Takes `content`, verified whole: by default written, but a [`Spill`]
    /// that holds nothing yet keeps the buffer itself (no copy).
    fn hold(&mut self, content: Vec<u8>) -> io::Result<()> {
        self.write_all(&content)
    }

    /// Told that `size` bytes will be written: by default nothing, but a
    /// [`Spill`] that holds nothing yet and could not keep them all in
    /// memory goes to its file at once (no buffer grown and copied out).
    fn expect(&mut self, _size: u64) -> io::Result<()> {
        Ok(())
    }
}

impl<W: Write> Out for io::BufWriter<W> {}

impl Out for Spill {
    fn hold(&mut self, content: Vec<u8>) -> io::Result<()> {
        match self {
            Spill::Memory(held) if held.is_empty() && content.len() <= Self::IN_MEMORY => {
                *held = content;
                Ok(())
            }
            _ => self.write_all(&content),
        }
    }

    fn expect(&mut self, size: u64) -> io::Result<()> {
        if let Spill::Memory(held) = self
            && held.is_empty()
            && size > Self::IN_MEMORY as u64
        {
            *self = Self::file()?;
        }
        Ok(())
    }
}

/// A writer that keeps what it is given in memory up to 16 MiB, then in an
/// anonymous temporary file (removed when dropped).
pub enum Spill {
    /// Up to [`Spill::IN_MEMORY`] bytes.
    Memory(Vec<u8>),
    /// Everything, once it outgrew memory.
    File(io::BufWriter<File>),
}

impl Default for Spill {
    fn default() -> Self {
        Spill::Memory(Vec::new())
    }
}

impl Spill {
    /// The most kept in memory.
    pub const IN_MEMORY: usize = artifacts::limits::STREAM_ABOVE_BYTES as usize;

    /// An empty spill in an anonymous temporary file.
    fn file() -> io::Result<Self> {
        Ok(Spill::File(io::BufWriter::with_capacity(
            1 << 20,
            tempfile::tempfile()?,
        )))
    }

    /// Everything written so far, to `out`.
    pub fn copy_to(self, out: &mut impl Write) -> io::Result<()> {
        match self {
            Spill::Memory(bytes) => out.write_all(&bytes),
            Spill::File(writer) => {
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
            let mut spilled = Self::file()?;
            spilled.write_all(bytes)?;
            *self = spilled;
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

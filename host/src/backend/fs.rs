//! The narrow filesystem interface the file backend does all its I/O through.
//!
//! Keeping it this small lets tests put a fault-injecting or crash-simulating
//! filesystem under the real backend code.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

/// The filesystem operations [`FileBackend`](super::file::FileBackend) uses.
pub trait Fs: Send + Sync + 'static {
    /// Reads a whole file.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Reads up to `len` bytes of a file from `offset` (fewer at its end).
    /// By default reads the whole file and keeps the range.
    fn read_range(&self, path: &Path, offset: u64, len: u64) -> io::Result<Vec<u8>> {
        Ok(super::range_of(&self.read(path)?, offset, len).to_vec())
    }
    /// Reads several ranges `(offset, len)` of one file, each as
    /// [`read_range`](Fs::read_range) does, from the same open file (so
    /// from one version of it). By default one `read_range` each.
    fn read_ranges(&self, path: &Path, ranges: &[(u64, u64)]) -> io::Result<Vec<Vec<u8>>> {
        ranges
            .iter()
            .map(|&(offset, len)| self.read_range(path, offset, len))
            .collect()
    }
    /// Creates `path` (it must not exist), writes `data` and syncs it to disk.
    fn write_new_synced(&self, path: &Path, data: &[u8]) -> io::Result<()>;
    /// Creates an empty file at `path`, which must not exist; not synced.
    fn create_new(&self, path: &Path) -> io::Result<()>;
    /// Appends `data` to the existing file `path` (`NotFound` if it is
    /// gone); not synced.
    fn append(&self, path: &Path, data: &[u8]) -> io::Result<()>;
    /// Syncs a file's data to disk.
    fn sync_file(&self, path: &Path) -> io::Result<()>;
    /// Makes `to` (which must not exist) another name for the file `from`.
    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Renames `from` to `to` atomically, replacing `to`.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Creates a directory; `Ok(false)` if it already existed.
    fn create_dir(&self, path: &Path) -> io::Result<bool>;
    /// Removes a directory if it is empty (an error, changing nothing, if
    /// it holds anything); not synced.
    fn remove_dir(&self, path: &Path) -> io::Result<()>;
    /// Syncs a directory's entries to disk.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
    /// The names of the entries of a directory.
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>>;
    /// A file's size and when it was last modified.
    fn stat(&self, path: &Path) -> io::Result<(u64, std::time::SystemTime)>;
    /// Takes an exclusive lock on `path` (created if missing), shared with
    /// other processes; released when the guard drops.
    fn lock(&self, path: &Path) -> io::Result<Box<dyn Send>>;
}

/// An empty buffer with room for `len` bytes. From 4 MiB up, asks Linux to
/// back it with transparent huge pages where it may (`MADV_HUGEPAGE`; the
/// default `madvise` mode gives them only to who asks), so a fresh process
/// reading a large blob takes a few page faults instead of one per 4 KiB.
pub(crate) fn large_buffer(len: usize) -> Vec<u8> {
    let buffer: Vec<u8> = Vec::with_capacity(len);
    #[cfg(target_os = "linux")]
    if len >= 4 << 20 {
        const HUGE: usize = 2 << 20;
        let start = buffer.as_ptr() as usize;
        let aligned = start.next_multiple_of(HUGE);
        let end = (start + len) / HUGE * HUGE;
        if end > aligned {
            // SAFETY: advice about pages inside this Vec's own allocation,
            // which it neither reads nor frees; the kernel ignores what it
            // cannot do.
            #[allow(unsafe_code)]
            unsafe {
                libc::madvise(
                    aligned as *mut libc::c_void,
                    end - aligned,
                    libc::MADV_HUGEPAGE,
                );
            }
        }
    }
    buffer
}

/// [`Fs`] over `std::fs`.
#[derive(Debug, Clone, Copy, Default)]
pub struct StdFs;

impl Fs for StdFs {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        use std::io::Read;
        let mut file = File::open(path)?;
        let len = file.metadata()?.len();
        let mut out = large_buffer(usize::try_from(len).unwrap_or(0));
        file.read_to_end(&mut out)?;
        Ok(out)
    }

    fn read_range(&self, path: &Path, offset: u64, len: u64) -> io::Result<Vec<u8>> {
        use std::io::{Read, Seek, SeekFrom};
        let mut file = File::open(path)?;
        file.seek(SeekFrom::Start(offset))?;
        let mut out = Vec::with_capacity(usize::try_from(len.min(64 << 20)).unwrap_or(0));
        file.take(len).read_to_end(&mut out)?;
        Ok(out)
    }

    fn read_ranges(&self, path: &Path, ranges: &[(u64, u64)]) -> io::Result<Vec<Vec<u8>>> {
        use std::os::unix::fs::FileExt;
        let file = File::open(path)?;
        let size = file.metadata()?.len();
        ranges
            .iter()
            .map(|&(offset, len)| {
                let start = offset.min(size);
                let n = len.min(size - start);
                let mut out = vec![0; usize::try_from(n).unwrap_or(0)];
                file.read_exact_at(&mut out, start)?;
                Ok(out)
            })
            .collect()
    }

    fn write_new_synced(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        let mut file = OpenOptions::new().write(true).create_new(true).open(path)?;
        file.write_all(data)?;
        file.sync_all()
    }

    fn create_new(&self, path: &Path) -> io::Result<()> {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map(drop)
    }

    fn append(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        OpenOptions::new().append(true).open(path)?.write_all(data)
    }

    fn sync_file(&self, path: &Path) -> io::Result<()> {
        OpenOptions::new().write(true).open(path)?.sync_all()
    }

    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::hard_link(from, to)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn create_dir(&self, path: &Path) -> io::Result<bool> {
        match fs::create_dir(path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && path.is_dir() => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        fs::remove_dir(path)
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        File::open(path)?.sync_all()
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        fs::read_dir(path)?
            .map(|entry| Ok(entry?.file_name().to_string_lossy().into_owned()))
            .collect()
    }

    fn stat(&self, path: &Path) -> io::Result<(u64, std::time::SystemTime)> {
        let meta = fs::metadata(path)?;
        Ok((meta.len(), meta.modified()?))
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn Send>> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)?;
        file.lock()?;
        Ok(Box::new(file))
    }
}

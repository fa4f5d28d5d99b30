//! Verified ranges: bytes of an artifact proven to belong to it without
//! reading all of it. The core does the proving (`store.get-range`): it
//! reads the 16 KiB groups the range touches and the outboard's nodes on
//! their path to the root, and returns nothing unless they merge into the
//! hash. The host only cuts its long ranges into calls of at most
//! [`RANGE_LIMIT`] bytes.

use std::ops::Range;

use super::ArtifactStore;
use super::reader::{Purpose, Reader};
use crate::{Error, Hash};

/// The most bytes one call into the core returns (its `range-limit`), and
/// the most an app's `get-range` may ask for at once: 4 MiB.
pub const RANGE_LIMIT: u64 = 4 << 20;

/// `range` as an offset and a length, or why it is not a range.
fn offset_and_length(range: &Range<u64>) -> Result<(u64, u64), Error> {
    if range.start > range.end {
        return Err(Error::InvalidRange {
            start: range.start,
            end: range.end,
        });
    }
    Ok((range.start, range.end - range.start))
}

impl ArtifactStore {
    /// The bytes `range` of the artifact `hash` (`start..end`, end
    /// exclusive), proven to belong to it before any is returned, without
    /// reading all of it: an artifact of 256 KiB or more keeps BLAKE3's
    /// tree beside its content (its *outboard*, written at put), and a
    /// range costs the 16 KiB groups it touches plus about 64 bytes per
    /// level of the tree (reading 4 KiB of 1 GiB reads about 33 KiB).
    /// Damage outside the range does not fail the read; a damaged byte in
    /// it always does ([`Error::Integrity`]). A missing or damaged outboard
    /// is rebuilt by reading the whole artifact (that read is then as slow
    /// as [`verify`](Self::verify)); smaller artifacts are verified whole.
    ///
    /// A range past the end is [`Error::OutOfRange`], one whose start is
    /// after its end [`Error::InvalidRange`]; an empty range within the
    /// artifact returns nothing. The host's ranges longer than
    /// [`RANGE_LIMIT`] are read and proven that much at a time; an app's
    /// are refused ([`Error::RangeTooLong`]). Anything an app cannot see
    /// is `NotFound`, whatever the range.
    pub fn get_range(&self, hash: &Hash, range: Range<u64>) -> Result<Vec<u8>, Error> {
        let (offset, length) = offset_and_length(&range)?;
        self.get_length(hash, offset, length)
    }

    /// [`get_range`](Self::get_range) as `length` bytes from `offset` (so
    /// a range reaching past `u64::MAX` is refused for what was asked).
    #[crate::traced(get_range, owner = self.id(), hash = hash)]
    pub(crate) fn get_length(
        &self,
        hash: &Hash,
        offset: u64,
        length: u64,
    ) -> Result<Vec<u8>, Error> {
        let reader = Reader::open(self, hash, Purpose::Range)?;
        // An app asks for one call's worth at a time.
        if !self.is_host() && length > RANGE_LIMIT {
            return Err(Error::RangeTooLong { limit: RANGE_LIMIT });
        }
        let mut out = Vec::new();
        reader.range(offset, length, |part| {
            if out.is_empty() {
                out.reserve_exact(usize::try_from(length).unwrap_or(0));
            }
            out.extend_from_slice(part);
            Ok(())
        })?;
        Ok(out)
    }

    /// [`get_range`](Self::get_range), written to `out` as it is proven,
    /// at most [`RANGE_LIMIT`] bytes at a time (so a few MiB are held
    /// whatever the range's length); returns how many bytes were written.
    /// Each part is proven before it is written, but a later part may still
    /// fail: on an error, discard what `out` received (the CLI's
    /// `get --range -o FILE` writes a temporary file and renames it only
    /// once every part is in).
    #[crate::traced(get_range_to, owner = self.id(), hash = hash)]
    pub fn get_range_to(
        &self,
        hash: &Hash,
        range: Range<u64>,
        out: &mut dyn std::io::Write,
    ) -> Result<u64, Error> {
        let (offset, length) = offset_and_length(&range)?;
        Reader::open(self, hash, Purpose::Range)?.range(offset, length, |part| {
            out.write_all(part)
                .map_err(|e| Error::Output(e.to_string()))
        })?;
        Ok(length)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{ArtifactType, MemoryBackend};

    #[test]
    fn the_limit_is_the_cores() {
        let store = ArtifactStore::builder().open(MemoryBackend::new()).unwrap();
        assert_eq!(store.core.with(|i| i.range_limit()).unwrap(), RANGE_LIMIT);
    }

    #[test]
    fn long_ranges_are_proven_a_window_at_a_time() {
        let store = ArtifactStore::builder().open(MemoryBackend::new()).unwrap();
        let data: Vec<u8> = (0..(9 << 20) + 77).map(|i| (i % 241) as u8).collect();
        let hash = store.put(&data, ArtifactType::Generic).unwrap();
        let len = data.len() as u64;
        assert_eq!(
            store.get_range(&hash, 5..len - 3).unwrap(),
            &data[5..data.len() - 3]
        );
        let mut out = Vec::new();
        assert_eq!(
            store.get_range_to(&hash, 100..len, &mut out).unwrap(),
            len - 100
        );
        assert_eq!(out, &data[100..]);
        assert!(matches!(
            store.get_range(&hash, 0..len + 1),
            Err(Error::OutOfRange { .. })
        ));
        assert!(matches!(
            store.get_range_to(&hash, 0..u64::MAX, &mut Vec::new()),
            Err(Error::OutOfRange { .. })
        ));
        #[allow(clippy::reversed_empty_ranges)]
        let reversed = 9..3;
        assert!(matches!(
            store.get_range(&hash, reversed),
            Err(Error::InvalidRange { start: 9, end: 3 })
        ));
    }
}

//! The usage record (`ARTU`): what one owner's artifacts add up to, in its
//! index space under [`usage_key`](crate::ops::usage_key).

use super::codec::{Reader, Writer};
use super::{FORMAT_VERSION, Mark, USAGE_MAGIC};

/// What one owner's artifacts add up to, as its quota counts them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Usage {
    /// Total size of the distinct artifacts charged.
    pub bytes: u64,
    /// How many distinct artifacts are charged.
    pub artifacts: u64,
    /// Charges (join) and refunds (leave) in flight, keyed by content hash.
    pub marks: Vec<Mark>,
}

impl Usage {
    /// Whether `data` is a usage record.
    pub fn is_usage(data: &[u8]) -> bool {
        data.starts_with(&USAGE_MAGIC)
    }

    /// Encodes the usage record.
    pub fn encode(&self) -> Vec<u8> {
        let header = [FORMAT_VERSION, 0, 0, 0];
        Writer::new(USAGE_MAGIC, header, 28 + self.marks.len() * 49)
            .u64(self.bytes)
            .u64(self.artifacts)
            .marks(&self.marks)
            .finish()
    }

    /// Decodes a usage record.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        Reader::whole(bytes, |r| {
            if r.header(USAGE_MAGIC, FORMAT_VERSION)? != [0, 0, 0] {
                return Err("usage record has non-zero reserved bytes".into());
            }
            Ok(Self {
                bytes: r.u64()?,
                artifacts: r.u64()?,
                marks: r.marks()?,
            })
        })
    }
}

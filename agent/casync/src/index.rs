//! `.caibx` blob indexes (casync `src/caformat.h`, little-endian): a header with the feature
//! flags and chunk size parameters, a table of (end offset, chunk id) items, and a tail.
//!
//! ```text
//! header  u64 size = 48, u64 type = CA_FORMAT_INDEX, u64 flags, u64 min, u64 avg, u64 max
//! table   u64 size = u64::MAX, u64 type = CA_FORMAT_TABLE
//! items   n × { u64 end offset, [u8; 32] chunk id }
//! tail    u64 0, u64 0, u64 index offset = 48, u64 table size = 16 + 40·(n + 1), u64 marker
//! ```

use crate::chunker::ChunkSizes;
use crate::digest::{ChunkId, Digest};
use crate::CasyncError;

pub const CA_FORMAT_INDEX: u64 = 0x9682_4d9c_7b12_9ff9;
pub const CA_FORMAT_TABLE: u64 = 0xe75b_9e11_2f17_417d;
pub const CA_FORMAT_TABLE_TAIL_MARKER: u64 = 0x4b4f_050e_5549_ecd1;
/// Feature flags: chunk ids are SHA-512/256 (else SHA-256).
pub const CA_FORMAT_SHA512_256: u64 = 1 << 61;
/// The flags `casync make` writes for a blob index with its defaults (SHA-512/256,
/// exclude-nodump, exclude-file).
pub const BLOB_DEFAULT_FLAGS: u64 = 0xb000_0000_0000_0000;

const HEADER: usize = 48;
const TABLE_HEADER: usize = 16;
const ITEM: usize = 40;
const TAIL: usize = 40;
/// Largest index we parse: 2^24 chunks (1 TiB of 64 KiB chunks).
pub const MAX_CHUNKS: usize = 1 << 24;

/// One chunk of the indexed blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk {
    pub id: ChunkId,
    /// Offset of its first byte in the blob.
    pub start: u64,
    pub len: u64,
}

/// A parsed or built blob index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Index {
    pub flags: u64,
    pub sizes: ChunkSizes,
    /// (end offset, id), strictly increasing ends.
    items: Vec<(u64, ChunkId)>,
}

impl Index {
    pub fn new(flags: u64, sizes: ChunkSizes) -> Self {
        Index {
            flags,
            sizes,
            items: Vec::new(),
        }
    }

    /// Appends a chunk of `len` (> 0) bytes.
    pub fn push(&mut self, id: ChunkId, len: u64) {
        let end = self.blob_size() + len;
        self.items.push((end, id));
    }

    pub fn digest(&self) -> Digest {
        Digest::from_flags(self.flags)
    }

    /// Size of the indexed blob.
    pub fn blob_size(&self) -> u64 {
        self.items.last().map_or(0, |(end, _)| *end)
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn chunks(&self) -> impl Iterator<Item = Chunk> + '_ {
        let mut start = 0;
        self.items.iter().map(move |&(end, id)| {
            let chunk = Chunk {
                id,
                start,
                len: end - start,
            };
            start = end;
            chunk
        })
    }

    /// Parses strictly: every size and marker checked, ends strictly increasing, no chunk
    /// larger than the index's own maximum, no trailing bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, CasyncError> {
        let bad = |m: String| CasyncError::BadIndex(m);
        if bytes.len() < HEADER + TABLE_HEADER + TAIL {
            return Err(bad(format!("{} bytes is too short", bytes.len())));
        }
        let u = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
        if u(0) != HEADER as u64 || u(8) != CA_FORMAT_INDEX {
            return Err(bad("not a casync index (bad header)".into()));
        }
        let flags = u(16);
        let sizes =
            ChunkSizes::new(u(24), u(32), u(40)).map_err(|e| bad(format!("header: {e}")))?;
        if u(48) != u64::MAX || u(56) != CA_FORMAT_TABLE {
            return Err(bad("no chunk table after the header".into()));
        }
        let body = bytes.len() - HEADER - TABLE_HEADER - TAIL;
        if !body.is_multiple_of(ITEM) {
            return Err(bad(format!("table of {body} bytes is not whole items")));
        }
        let n = body / ITEM;
        if n > MAX_CHUNKS {
            return Err(bad(format!("{n} chunks is more than {MAX_CHUNKS}")));
        }
        let tail = bytes.len() - TAIL;
        let table_size = (TABLE_HEADER + ITEM * n + TAIL) as u64;
        if u(tail) != 0
            || u(tail + 8) != 0
            || u(tail + 16) != HEADER as u64
            || u(tail + 24) != table_size
            || u(tail + 32) != CA_FORMAT_TABLE_TAIL_MARKER
        {
            return Err(bad("bad table tail".into()));
        }
        let mut items = Vec::with_capacity(n);
        let mut prev = 0u64;
        for i in 0..n {
            let at = HEADER + TABLE_HEADER + i * ITEM;
            let end = u(at);
            if end <= prev {
                return Err(bad(format!("chunk {i} ends at {end}, not after {prev}")));
            }
            if end - prev > sizes.max {
                return Err(bad(format!(
                    "chunk {i} is {} bytes, more than the maximum {}",
                    end - prev,
                    sizes.max
                )));
            }
            let mut id = [0u8; 32];
            id.copy_from_slice(&bytes[at + 8..at + 40]);
            items.push((end, ChunkId(id)));
            prev = end;
        }
        Ok(Index {
            flags,
            sizes,
            items,
        })
    }

    /// The `.caibx` bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let n = self.items.len();
        let mut out = Vec::with_capacity(HEADER + TABLE_HEADER + ITEM * n + TAIL);
        for v in [
            HEADER as u64,
            CA_FORMAT_INDEX,
            self.flags,
            self.sizes.min,
            self.sizes.avg,
            self.sizes.max,
            u64::MAX,
            CA_FORMAT_TABLE,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for (end, id) in &self.items {
            out.extend_from_slice(&end.to_le_bytes());
            out.extend_from_slice(&id.0);
        }
        for v in [
            0,
            0,
            HEADER as u64,
            (TABLE_HEADER + ITEM * n + TAIL) as u64,
            CA_FORMAT_TABLE_TAIL_MARKER,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Index {
        let mut index = Index::new(BLOB_DEFAULT_FLAGS, ChunkSizes::default());
        index.push(ChunkId([1; 32]), 20_000);
        index.push(ChunkId([2; 32]), 70_000);
        index.push(ChunkId([1; 32]), 20_000);
        index
    }

    #[test]
    fn round_trips_and_reports_chunks() {
        let index = sample();
        let bytes = index.to_bytes();
        assert_eq!(bytes.len(), 48 + 16 + 3 * 40 + 40);
        assert_eq!(Index::parse(&bytes).unwrap(), index);
        let chunks: Vec<_> = index.chunks().map(|c| (c.start, c.len)).collect();
        assert_eq!(chunks, [(0, 20_000), (20_000, 70_000), (90_000, 20_000)]);
        assert_eq!(index.blob_size(), 110_000);
        assert_eq!(index.digest(), Digest::Sha512_256);
    }

    #[test]
    fn refuses_truncation_bad_markers_and_bad_offsets() {
        let good = sample().to_bytes();
        for cut in 0..good.len() {
            assert!(Index::parse(&good[..cut]).is_err(), "prefix of {cut}");
        }
        for at in [0, 8, 48, 56, good.len() - 8, good.len() - 16] {
            let mut bad = good.clone();
            bad[at] ^= 1;
            assert!(Index::parse(&bad).is_err(), "byte {at}");
        }
        // Second chunk ending before the first.
        let mut bad = good.clone();
        bad[64 + 40..64 + 48].copy_from_slice(&10u64.to_le_bytes());
        assert!(Index::parse(&bad).is_err());
        // A chunk larger than max.
        let mut big = Index::new(BLOB_DEFAULT_FLAGS, ChunkSizes::default());
        big.push(ChunkId([3; 32]), 300_000);
        assert!(Index::parse(&big.to_bytes()).is_err());
        let mut trailing = good.clone();
        trailing.extend_from_slice(&[0; 40]);
        assert!(Index::parse(&trailing).is_err());
    }
}

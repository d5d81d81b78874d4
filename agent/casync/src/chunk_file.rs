//! `.cacnk` files: one zstd frame holding the uncompressed chunk. A chunk read from anywhere
//! (a store, the network) is trusted only after its digest equals its id.

use crate::digest::{ChunkId, Digest};
use crate::CasyncError;

/// Compression level for chunks we write (zstd's default; casync uses the library default).
pub const LEVEL: i32 = 3;

pub fn compress(data: &[u8]) -> Vec<u8> {
    // Compressing a byte slice into memory cannot fail for valid levels.
    zstd::bulk::compress(data, LEVEL).unwrap_or_default()
}

/// Decompresses a `.cacnk` and checks it is chunk `id` of `len` bytes.
pub fn decompress_verified(
    file: &[u8],
    id: &ChunkId,
    len: u64,
    digest: Digest,
) -> Result<Vec<u8>, CasyncError> {
    let capacity = usize::try_from(len).map_err(|_| CasyncError::ChunkSize {
        id: id.to_hex(),
        expected: len,
        actual: 0,
    })?;
    let data = zstd::bulk::decompress(file, capacity).map_err(|e| CasyncError::BadChunkFile {
        id: id.to_hex(),
        reason: e.to_string(),
    })?;
    verify(&data, id, len, digest)?;
    Ok(data)
}

/// Checks uncompressed chunk bytes against the index entry.
pub fn verify(data: &[u8], id: &ChunkId, len: u64, digest: Digest) -> Result<(), CasyncError> {
    if data.len() as u64 != len {
        return Err(CasyncError::ChunkSize {
            id: id.to_hex(),
            expected: len,
            actual: data.len() as u64,
        });
    }
    let actual = digest.id_of(data);
    if actual != *id {
        return Err(CasyncError::ChunkMismatch {
            expected: id.to_hex(),
            actual: actual.to_hex(),
        });
    }
    Ok(())
}

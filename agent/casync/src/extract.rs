//! Writing a target blob from a [`Plan`]: seed chunks are read and **verified** (a seed may
//! have changed since it was indexed; a mismatch falls back to fetching), missing chunks come
//! from the caller's `fetch` (a `.cacnk` file: decompressed and verified against its id before
//! a byte is written), repeated chunks are copied from where they were first written.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom, Write};

use crate::chunk_file::{decompress_verified, verify};
use crate::digest::ChunkId;
use crate::index::Index;
use crate::seed::Plan;
use crate::CasyncError;

/// What an extraction did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ExtractStats {
    /// Bytes copied from seeds (after verification).
    pub seeded_bytes: u64,
    /// Bytes copied from earlier positions of the output (repeated chunks).
    pub repeated_bytes: u64,
    /// Chunks the caller's `fetch` supplied, and their compressed bytes.
    pub fetched_chunks: u64,
    pub fetched_bytes: u64,
    /// Seed chunks that did not match their id (read from `fetch` instead).
    pub stale_seed_chunks: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ExtractError<E: std::error::Error + 'static> {
    #[error("fetching chunk {id}: {source}")]
    Fetch {
        id: ChunkId,
        #[source]
        source: E,
    },
    #[error(transparent)]
    Chunk(#[from] CasyncError),
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
}

/// Writes the blob of `target` to `out` (from offset 0). `seeds[i]` is seed number `i` of the
/// plan's [`crate::SeedMap`]. `progress` gets the bytes of the target written so far.
pub fn extract<S, W, E>(
    target: &Index,
    plan: &Plan,
    seeds: &mut [S],
    mut fetch: impl FnMut(&ChunkId) -> Result<Vec<u8>, E>,
    out: &mut W,
    mut progress: impl FnMut(u64),
) -> Result<ExtractStats, ExtractError<E>>
where
    S: Read + Seek,
    W: Read + Write + Seek,
    E: std::error::Error + 'static,
{
    let io = |what| move |source| ExtractError::Io { what, source };
    let digest = target.digest();
    let mut stats = ExtractStats::default();
    let mut written: HashMap<ChunkId, u64> = HashMap::new();
    let mut buf = Vec::with_capacity(target.sizes.max as usize);
    out.seek(SeekFrom::Start(0)).map_err(io("seek output"))?;
    let mut done = 0u64;
    for (chunk, source) in target.chunks().zip(&plan.sources) {
        let len = usize::try_from(chunk.len)
            .map_err(|_| CasyncError::BadIndex("chunk too large".into()))?;
        let mut have = false;
        if let Some(s) = source {
            buf.resize(len, 0);
            let seed = seeds.get_mut(s.seed).ok_or_else(|| {
                CasyncError::BadIndex(format!("plan names seed {} that was not given", s.seed))
            })?;
            seed.seek(SeekFrom::Start(s.offset))
                .map_err(io("seek seed"))?;
            seed.read_exact(&mut buf).map_err(io("read seed"))?;
            if verify(&buf, &chunk.id, chunk.len, digest).is_ok() {
                stats.seeded_bytes += chunk.len;
                have = true;
            } else {
                stats.stale_seed_chunks += 1;
            }
        }
        if !have {
            if let Some(&at) = written.get(&chunk.id) {
                buf.resize(len, 0);
                let here = out.stream_position().map_err(io("output position"))?;
                out.seek(SeekFrom::Start(at)).map_err(io("seek output"))?;
                out.read_exact(&mut buf).map_err(io("re-read output"))?;
                out.seek(SeekFrom::Start(here)).map_err(io("seek output"))?;
                verify(&buf, &chunk.id, chunk.len, digest)?;
                stats.repeated_bytes += chunk.len;
            } else {
                let file = fetch(&chunk.id).map_err(|source| ExtractError::Fetch {
                    id: chunk.id,
                    source,
                })?;
                stats.fetched_chunks += 1;
                stats.fetched_bytes += file.len() as u64;
                buf = decompress_verified(&file, &chunk.id, chunk.len, digest)?;
            }
        }
        written.entry(chunk.id).or_insert(chunk.start);
        out.write_all(&buf).map_err(io("write output"))?;
        done += chunk.len;
        progress(done);
    }
    out.flush().map_err(io("flush output"))?;
    Ok(stats)
}

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

/// What the reader stage hands the writer stage, in target order.
enum Item {
    /// Verified bytes (from a seed).
    Data(Vec<u8>),
    /// Not in a seed, or the seed's bytes did not verify: the writer fetches it.
    Fetch { stale: bool },
    /// The same chunk was written before at this offset of the output.
    Repeat(u64),
}

/// Writes the blob of `target` to `out` (from offset 0). `seeds[i]` is seed number `i` of the
/// plan's [`crate::SeedMap`]. `progress` gets the bytes of the target written so far.
///
/// Two stages on two threads: one reads and verifies seed chunks ahead, the other writes (and
/// fetches what no seed has), so hashing overlaps with I/O.
pub fn extract<S, W, E>(
    target: &Index,
    plan: &Plan,
    seeds: &mut [S],
    mut fetch: impl FnMut(&ChunkId) -> Result<Vec<u8>, E>,
    out: &mut W,
    mut progress: impl FnMut(u64),
) -> Result<ExtractStats, ExtractError<E>>
where
    S: Read + Seek + Send,
    W: Read + Write + Seek,
    E: std::error::Error + 'static,
{
    let io = |what| move |source| ExtractError::Io { what, source };
    let digest = target.digest();
    if plan.sources.len() != target.len() {
        return Err(CasyncError::BadIndex("the plan is for another index".into()).into());
    }
    for s in plan.sources.iter().flatten() {
        if s.seed >= seeds.len() {
            return Err(CasyncError::BadIndex(format!(
                "plan names seed {} that was not given",
                s.seed
            ))
            .into());
        }
    }
    out.seek(SeekFrom::Start(0)).map_err(io("seek output"))?;
    let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Item, std::io::Error>>(8);
    std::thread::scope(|scope| {
        scope.spawn(move || {
            let mut first: HashMap<ChunkId, u64> = HashMap::new();
            for (chunk, source) in target.chunks().zip(&plan.sources) {
                let item = (|| -> Result<Item, std::io::Error> {
                    if let Some(s) = source {
                        let mut buf = vec![0u8; chunk.len as usize];
                        let seed = &mut seeds[s.seed];
                        seed.seek(SeekFrom::Start(s.offset))?;
                        seed.read_exact(&mut buf)?;
                        if verify(&buf, &chunk.id, chunk.len, digest).is_ok() {
                            first.entry(chunk.id).or_insert(chunk.start);
                            return Ok(Item::Data(buf));
                        }
                        first.entry(chunk.id).or_insert(chunk.start);
                        return Ok(Item::Fetch { stale: true });
                    }
                    if let Some(&at) = first.get(&chunk.id) {
                        return Ok(Item::Repeat(at));
                    }
                    first.insert(chunk.id, chunk.start);
                    Ok(Item::Fetch { stale: false })
                })();
                let failed = item.is_err();
                if tx.send(item).is_err() || failed {
                    return; // the writer stopped, or a seed read failed
                }
            }
        });
        write_stage(target, rx, &mut fetch, out, &mut progress)
    })
}

fn write_stage<W, E>(
    target: &Index,
    rx: std::sync::mpsc::Receiver<Result<Item, std::io::Error>>,
    fetch: &mut impl FnMut(&ChunkId) -> Result<Vec<u8>, E>,
    out: &mut W,
    progress: &mut impl FnMut(u64),
) -> Result<ExtractStats, ExtractError<E>>
where
    W: Read + Write + Seek,
    E: std::error::Error + 'static,
{
    let io = |what| move |source| ExtractError::Io { what, source };
    let digest = target.digest();
    let mut stats = ExtractStats::default();
    let mut done = 0u64;
    for chunk in target.chunks() {
        let item = rx
            .recv()
            .map_err(|_| CasyncError::BadIndex("the reader stage ended early".into()))?
            .map_err(io("read seed"))?;
        let data = match item {
            Item::Data(d) => {
                stats.seeded_bytes += chunk.len;
                d
            }
            Item::Repeat(at) => {
                let mut buf = vec![0u8; chunk.len as usize];
                let here = out.stream_position().map_err(io("output position"))?;
                out.seek(SeekFrom::Start(at)).map_err(io("seek output"))?;
                out.read_exact(&mut buf).map_err(io("re-read output"))?;
                out.seek(SeekFrom::Start(here)).map_err(io("seek output"))?;
                verify(&buf, &chunk.id, chunk.len, digest)?;
                stats.repeated_bytes += chunk.len;
                buf
            }
            Item::Fetch { stale } => {
                if stale {
                    stats.stale_seed_chunks += 1;
                }
                let file = fetch(&chunk.id).map_err(|source| ExtractError::Fetch {
                    id: chunk.id,
                    source,
                })?;
                stats.fetched_chunks += 1;
                stats.fetched_bytes += file.len() as u64;
                decompress_verified(&file, &chunk.id, chunk.len, digest)?
            }
        };
        out.write_all(&data).map_err(io("write output"))?;
        done += chunk.len;
        progress(done);
    }
    out.flush().map_err(io("flush output"))?;
    Ok(stats)
}

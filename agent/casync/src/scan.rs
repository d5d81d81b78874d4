//! Seeded extraction in one pass over the seed: the seed is chunked with the target's
//! parameters, each seed chunk is hashed once, and a chunk whose id the target wants is written
//! at once, from the very bytes just hashed, to every offset where the target has it. What no
//! seed chunk supplied is then fetched (a `.cacnk`: decompressed and verified against its id
//! before a byte is written).
//!
//! [`crate::extract`] instead needs the seed indexed first and then reads each seed chunk again
//! and hashes it again (the seed may have changed in between): two passes of the chunk digest
//! over the seed. Here there is one, and nothing can change between the hash and the write.
//! The price: writes land in seed order, not target order, so the output is written
//! positionally ([`WriteAt`]) and a caller that wants a digest of the whole output reads it
//! back afterwards.
//!
//! Two threads: the caller's hashes and writes, a helper reads and chunks the seed ahead of it
//! (chunking runs at about the speed of SHA-512/256, so each stage has a core), and hashes a
//! chunk itself whenever the caller's side is behind. The id that decides where a chunk is
//! written is always computed from the bytes that are written, on whichever thread.

use std::collections::HashMap;
use std::io::{self, Read};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};

use crate::chunk_file::decompress_verified;
use crate::chunker::Chunker;
use crate::digest::{ChunkId, Digest};
use crate::extract::{ExtractError, ExtractStats};
use crate::index::Index;
use crate::CasyncError;

/// An output written at explicit offsets.
pub trait WriteAt {
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
}

impl WriteAt for std::fs::File {
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        std::os::unix::fs::FileExt::write_all_at(self, buf, offset)
    }
}

/// In memory (tests, small blobs): grows as needed.
impl WriteAt for std::sync::Mutex<Vec<u8>> {
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let mut v = self.lock().unwrap_or_else(|p| p.into_inner());
        let start = usize::try_from(offset).map_err(io::Error::other)?;
        let end = start + buf.len();
        if v.len() < end {
            v.resize(end, 0);
        }
        v[start..end].copy_from_slice(buf);
        Ok(())
    }
}

/// Seed chunks in flight between the chunker and the hasher.
const DEPTH: usize = 16;
/// Bytes per read of the seed.
const READ: usize = 1 << 20;

/// Writes the blob of `target` to `out`, taking every chunk `seed` has from it (one pass) and
/// the rest from `fetch` (each distinct chunk once). Every byte written was verified against
/// its chunk id first. `progress` gets the bytes of the target written so far (in no
/// particular order of offsets). On error, `out` holds an unspecified mix of verified chunks.
pub fn extract_scan<R, W, E>(
    target: &Index,
    seed: Option<R>,
    mut fetch: impl FnMut(&ChunkId) -> Result<Vec<u8>, E>,
    out: &W,
    mut progress: impl FnMut(u64),
) -> Result<ExtractStats, ExtractError<E>>
where
    R: Read + Send,
    W: WriteAt + ?Sized,
    E: std::error::Error + 'static,
{
    let io = |what| move |source| ExtractError::Io { what, source };
    let digest = target.digest();
    // Where each distinct chunk goes: (start, len) of each occurrence, in target order.
    let mut wanted: HashMap<ChunkId, Vec<(u64, u64)>> = HashMap::new();
    let mut order = Vec::new();
    for c in target.chunks() {
        wanted
            .entry(c.id)
            .or_insert_with(|| {
                order.push(c.id);
                Vec::new()
            })
            .push((c.start, c.len));
    }
    let mut stats = ExtractStats::default();
    let mut done = 0u64;
    if let Some(seed) = seed {
        let (tx, rx) = sync_channel::<io::Result<SeedChunk>>(DEPTH);
        let (free_tx, free_rx) = sync_channel::<Vec<u8>>(DEPTH + 2);
        let sizes = target.sizes;
        std::thread::scope(|s| -> Result<(), ExtractError<E>> {
            s.spawn(move || chunk_seed(seed, sizes, digest, tx, free_rx));
            let result = (|| {
                for chunk in &rx {
                    let (data, id) = chunk.map_err(io("read seed"))?;
                    let id = id.unwrap_or_else(|| digest.id_of(&data));
                    if let Some(at) = wanted.get_mut(&id) {
                        // Occurrences of another length (an index that contradicts itself)
                        // stay wanted: fetching them fails their size check.
                        for &(start, _) in at.iter().filter(|(_, len)| *len == data.len() as u64) {
                            out.write_all_at(&data, start).map_err(io("write output"))?;
                            stats.seeded_bytes += data.len() as u64;
                            done += data.len() as u64;
                            progress(done);
                        }
                        at.retain(|(_, len)| *len != data.len() as u64);
                        if at.is_empty() {
                            wanted.remove(&id);
                        }
                    }
                    // Back to the chunker for reuse; dropped if its pool is full.
                    let _ = free_tx.try_send(data);
                }
                Ok(())
            })();
            // Dropping the receiver stops the chunker at its next send.
            drop(rx);
            result
        })?;
    }
    for id in order {
        let Some(at) = wanted.get(&id) else { continue };
        let Some(&(_, len)) = at.first() else {
            continue;
        };
        let file = fetch(&id).map_err(|source| ExtractError::Fetch { id, source })?;
        stats.fetched_chunks += 1;
        stats.fetched_bytes += file.len() as u64;
        let data = decompress_verified(&file, &id, len, digest)?;
        for (i, &(start, l)) in at.iter().enumerate() {
            if l != len {
                return Err(CasyncError::ChunkSize {
                    id: id.to_hex(),
                    expected: l,
                    actual: len,
                }
                .into());
            }
            out.write_all_at(&data, start).map_err(io("write output"))?;
            if i > 0 {
                stats.repeated_bytes += len;
            }
            done += len;
            progress(done);
        }
    }
    Ok(stats)
}

/// A seed chunk, hashed already when the chunker had time for it.
type SeedChunk = (Vec<u8>, Option<ChunkId>);

/// The helper: reads `seed`, cuts it into chunks and sends them in order; stops at the end,
/// at an error (sent on), or when the receiver is gone. When the hashing side is behind (the
/// queue is full), it hashes the chunk itself before waiting: both cores keep working whichever
/// stage is the slower one on this machine.
fn chunk_seed<R: Read>(
    mut seed: R,
    sizes: crate::chunker::ChunkSizes,
    digest: Digest,
    tx: SyncSender<io::Result<SeedChunk>>,
    free: Receiver<Vec<u8>>,
) {
    let send = |chunk: Vec<u8>| match tx.try_send(Ok((chunk, None))) {
        Ok(()) => true,
        Err(TrySendError::Full(Ok((chunk, _)))) => {
            let id = digest.id_of(&chunk);
            tx.send(Ok((chunk, Some(id)))).is_ok()
        }
        Err(_) => false,
    };
    let cap = sizes.max as usize;
    let fresh = |free: &Receiver<Vec<u8>>| {
        let mut v = free.try_recv().unwrap_or_else(|_| Vec::with_capacity(cap));
        v.clear();
        v
    };
    let mut chunker = Chunker::new(sizes);
    let mut current = fresh(&free);
    let mut buf = vec![0u8; READ];
    loop {
        let n = match seed.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let _ = tx.send(Err(e));
                return;
            }
        };
        let mut data = &buf[..n];
        while let Some(cut) = chunker.scan(data) {
            current.extend_from_slice(&data[..cut]);
            let next = fresh(&free);
            if !send(std::mem::replace(&mut current, next)) {
                return;
            }
            data = &data[cut..];
        }
        current.extend_from_slice(data);
    }
    if !current.is_empty() {
        send(current);
    }
}

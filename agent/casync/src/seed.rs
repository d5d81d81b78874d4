//! Seeds: data the device already has (the active slot, an earlier partial download), chunked
//! with the target index's parameters, so that every chunk of the target found in a seed is
//! copied locally instead of fetched. casync does the same with `--seed`.

use std::collections::HashMap;
use std::io::Read;

use crate::chunker::{ChunkSizes, Chunker};
use crate::digest::{ChunkId, Digest};
use crate::index::Index;

/// Where a chunk can be read: seed number, offset, length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeedChunk {
    pub seed: usize,
    pub offset: u64,
    pub len: u64,
}

/// The chunks of all seeds, by id (the first occurrence wins).
#[derive(Debug, Default, Clone)]
pub struct SeedMap {
    chunks: HashMap<ChunkId, SeedChunk>,
    seeds: usize,
}

impl SeedMap {
    pub fn new() -> Self {
        Self::default()
    }

    /// Chunks `input` (seed number [`SeedMap::seeds`] before the call) with `sizes`, hashing
    /// with `digest`. `progress` gets the bytes read so far.
    pub fn add_seed<R: Read>(
        &mut self,
        mut input: R,
        sizes: ChunkSizes,
        digest: Digest,
        mut progress: impl FnMut(u64),
    ) -> std::io::Result<usize> {
        let seed = self.seeds;
        self.seeds += 1;
        // Chunking is sequential; hashing is not: chunks go to a second thread (2 cores turn
        // the seed scan from hash-bound into chunker-bound).
        let (tx, rx) = std::sync::mpsc::sync_channel::<(u64, Vec<u8>)>(8);
        let chunks = &mut self.chunks;
        std::thread::scope(|scope| {
            let hasher = scope.spawn(move || {
                for (offset, data) in rx {
                    chunks.entry(digest.id_of(&data)).or_insert(SeedChunk {
                        seed,
                        offset,
                        len: data.len() as u64,
                    });
                }
            });
            let mut chunker = Chunker::new(sizes);
            let mut current = Vec::with_capacity(sizes.max as usize);
            let mut buf = vec![0u8; 1 << 20];
            let (mut offset, mut read) = (0u64, 0u64);
            let send = |current: &mut Vec<u8>, offset: &mut u64| {
                let len = current.len() as u64;
                let chunk = std::mem::replace(current, Vec::with_capacity(sizes.max as usize));
                // The hasher only stops when this side drops the sender.
                let _ = tx.send((*offset, chunk));
                *offset += len;
            };
            let result = loop {
                let n = match input.read(&mut buf) {
                    Ok(0) => break Ok(()),
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => break Err(e),
                };
                read += n as u64;
                progress(read);
                let mut data = &buf[..n];
                while let Some(cut) = chunker.scan(data) {
                    current.extend_from_slice(&data[..cut]);
                    send(&mut current, &mut offset);
                    data = &data[cut..];
                }
                current.extend_from_slice(data);
            };
            if result.is_ok() && !current.is_empty() {
                send(&mut current, &mut offset);
            }
            drop(tx);
            let _ = hasher.join();
            result
        })?;
        Ok(seed)
    }

    /// Adds the chunks of a seed whose index is known (e.g. the index of the bundle the
    /// active slot was installed from), without reading it.
    pub fn add_indexed_seed(&mut self, index: &Index) -> usize {
        let seed = self.seeds;
        self.seeds += 1;
        for c in index.chunks() {
            self.chunks.entry(c.id).or_insert(SeedChunk {
                seed,
                offset: c.start,
                len: c.len,
            });
        }
        seed
    }

    pub fn seeds(&self) -> usize {
        self.seeds
    }

    pub fn get(&self, id: &ChunkId) -> Option<SeedChunk> {
        self.chunks.get(id).copied()
    }

    pub fn len(&self) -> usize {
        self.chunks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }
}

/// Where each chunk of a target comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// For each chunk of the target index, in order: from a seed, or `None` (fetch).
    pub sources: Vec<Option<SeedChunk>>,
    /// Distinct chunks to fetch (each once, however often the target repeats it).
    pub fetch: Vec<ChunkId>,
    /// Bytes of the target that come from seeds.
    pub seeded_bytes: u64,
    /// Uncompressed bytes of the distinct chunks to fetch: the least a chunked update can
    /// download (before compression).
    pub fetch_bytes: u64,
}

/// Plans the extraction of `target` with `seeds`.
pub fn plan(target: &Index, seeds: &SeedMap) -> Plan {
    let mut seen = std::collections::HashSet::new();
    let mut plan = Plan {
        sources: Vec::with_capacity(target.len()),
        fetch: Vec::new(),
        seeded_bytes: 0,
        fetch_bytes: 0,
    };
    for c in target.chunks() {
        let from_seed = seeds.get(&c.id).filter(|s| s.len == c.len);
        match from_seed {
            Some(_) => plan.seeded_bytes += c.len,
            None => {
                if seen.insert(c.id) {
                    plan.fetch.push(c.id);
                    plan.fetch_bytes += c.len;
                }
            }
        }
        plan.sources.push(from_seed);
    }
    plan
}

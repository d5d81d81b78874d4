//! Building an index from a byte stream, as `casync make` does for a blob: chunk, hash each
//! chunk, hand it to the caller (to store it), record it.

use std::io::Read;

use crate::chunker::{ChunkSizes, Chunker};
use crate::digest::ChunkId;
use crate::index::Index;

/// Chunks everything `input` yields; `sink` gets each chunk's id and bytes, in order.
pub fn make_index<R: Read, E: From<std::io::Error>>(
    mut input: R,
    flags: u64,
    sizes: ChunkSizes,
    mut sink: impl FnMut(&ChunkId, &[u8]) -> Result<(), E>,
) -> Result<Index, E> {
    let mut index = Index::new(flags, sizes);
    let digest = index.digest();
    let mut chunker = Chunker::new(sizes);
    let mut current: Vec<u8> = Vec::with_capacity(sizes.max as usize);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        let mut data = &buf[..n];
        while let Some(cut) = chunker.scan(data) {
            current.extend_from_slice(&data[..cut]);
            let id = digest.id_of(&current);
            sink(&id, &current)?;
            index.push(id, current.len() as u64);
            current.clear();
            data = &data[cut..];
        }
        current.extend_from_slice(data);
    }
    if !current.is_empty() {
        let id = digest.id_of(&current);
        sink(&id, &current)?;
        index.push(id, current.len() as u64);
    }
    Ok(index)
}

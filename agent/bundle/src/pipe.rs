//! Hashing on a helper thread while the caller reads (and writes) the next chunk.
//!
//! SHA-256 runs at about the speed of the page cache copies around it, so a payload or image
//! is streamed in large chunks: the caller fills a chunk, hands it to [`HashPipe::send`], and
//! the helper thread hashes it while the caller fills the next one. A fixed pool of buffers
//! bounds the memory ([`DEPTH`] × [`CHUNK`]) and makes the caller wait when the hasher lags.
//! Data is hashed in the order it was sent; the digest is returned only after every chunk.

use std::io;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use crate::digest::Hasher;

/// Bytes per chunk: large reads from the source and large writes to the slot.
pub const CHUNK: usize = 1 << 20;
/// Chunks in flight (being filled, queued, being hashed).
const DEPTH: usize = 4;

/// One filled buffer: `buf[..len]` is data.
struct Chunk {
    buf: Vec<u8>,
    len: usize,
}

/// The caller's end of the pipeline: a source of empty buffers and a sink for filled ones.
pub struct HashPipe {
    free: Receiver<Vec<u8>>,
    filled: Option<SyncSender<Chunk>>,
}

impl HashPipe {
    /// An empty buffer of [`CHUNK`] bytes (contents unspecified), waiting for the hasher if
    /// all are in flight.
    pub fn buffer(&mut self) -> io::Result<Vec<u8>> {
        self.free.recv().map_err(|_| hasher_gone())
    }

    /// Queues `buf[..len]` for hashing.
    pub fn send(&mut self, buf: Vec<u8>, len: usize) -> io::Result<()> {
        let filled = self.filled.as_ref().ok_or_else(hasher_gone)?;
        filled.send(Chunk { buf, len }).map_err(|_| hasher_gone())
    }
}

fn hasher_gone() -> io::Error {
    io::Error::other("hashing thread stopped")
}

/// Runs `body` with a [`HashPipe`] whose chunks are hashed by `hasher` on a helper thread.
/// Returns `body`'s result and the digest of everything it sent (in order).
pub fn hashed<T, E>(
    hasher: Hasher,
    body: impl FnOnce(&mut HashPipe) -> Result<T, E>,
) -> Result<(T, Vec<u8>), E> {
    let (free_tx, free_rx) = sync_channel::<Vec<u8>>(DEPTH);
    let (filled_tx, filled_rx) = sync_channel::<Chunk>(DEPTH);
    for _ in 0..DEPTH {
        // Cannot fail: the channel holds DEPTH and its receiver is alive.
        let _ = free_tx.send(vec![0u8; CHUNK]);
    }
    std::thread::scope(|s| {
        let worker = s.spawn(move || {
            let mut hasher = hasher;
            for chunk in filled_rx {
                hasher.update(&chunk.buf[..chunk.len.min(chunk.buf.len())]);
                // The caller may have stopped taking buffers: not an error here.
                let _ = free_tx.send(chunk.buf);
            }
            hasher.finish()
        });
        let mut pipe = HashPipe {
            free: free_rx,
            filled: Some(filled_tx),
        };
        let result = body(&mut pipe);
        // Closing the queue ends the worker's loop; dropping `free` unblocks its last sends.
        drop(pipe);
        let digest = worker.join();
        let value = result?;
        // The worker has no panicking path; should it ever, propagate it as a panic would.
        let digest = digest.unwrap_or_else(|p| std::panic::resume_unwind(p));
        Ok((value, digest))
    })
}

/// Fills `buf` from `read` until it is full or the source ends; returns the bytes read.
pub fn fill(
    read: &mut dyn FnMut(&mut [u8]) -> io::Result<usize>,
    buf: &mut [u8],
) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::DigestAlg;

    #[test]
    fn digest_equals_one_shot_digest_in_order() {
        let data: Vec<u8> = (0..(3 * CHUNK + 12345)).map(|i| (i % 251) as u8).collect();
        let ((), digest) = hashed(DigestAlg::Sha256.hasher(), |pipe| -> io::Result<()> {
            for part in data.chunks(CHUNK / 3 + 7) {
                let mut buf = pipe.buffer()?;
                buf[..part.len()].copy_from_slice(part);
                pipe.send(buf, part.len())?;
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(digest, DigestAlg::Sha256.digest(&data));
    }

    #[test]
    fn body_error_is_returned_and_worker_stops() {
        let r: Result<((), Vec<u8>), &str> = hashed(DigestAlg::Sha512.hasher(), |pipe| {
            let buf = pipe.buffer().map_err(|_| "buffer")?;
            pipe.send(buf, 10).map_err(|_| "send")?;
            Err("stop")
        });
        assert_eq!(r.unwrap_err(), "stop");
    }

    #[test]
    fn fill_reads_until_full_or_end() {
        let src = vec![1u8; 100];
        let mut cursor = io::Cursor::new(src);
        let mut read = |b: &mut [u8]| {
            let n = b.len().min(7);
            io::Read::read(&mut cursor, &mut b[..n])
        };
        let mut buf = [0u8; 64];
        assert_eq!(fill(&mut read, &mut buf).unwrap(), 64);
        assert_eq!(fill(&mut read, &mut buf).unwrap(), 36);
        assert_eq!(fill(&mut read, &mut buf).unwrap(), 0);
    }
}

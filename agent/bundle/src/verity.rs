//! dm-verity (format 1) hash tree checks, as RAUC lays it out after the squashfs:
//! sha256, 4096-byte data and hash blocks, the 32-byte salt *prepended* to
//! every hashed block, no superblock, levels stored top level first, 128
//! digests per hash block (zero padded), root = sha256(salt ‖ top block).
//!
//! [`HashTree::verify`] authenticates the whole tree against the signed root
//! once (cheap: about 1/128 of the data); afterwards every data block read
//! through [`VerityReader`] is checked against its leaf digest, so a tampered
//! block is detected without the kernel's dm-verity.

use std::io::{self, BufRead, Read, Seek, SeekFrom};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

/// Data and hash block size used by RAUC.
pub const BLOCK_SIZE: usize = 4096;
const DIGEST_LEN: usize = 32;
const DIGESTS_PER_BLOCK: u64 = (BLOCK_SIZE / DIGEST_LEN) as u64;

/// Cap on the tree kept in memory (covers ~8 GiB of payload).
pub const MAX_TREE_LEN: u64 = 64 * 1024 * 1024;

/// The signed verity parameters from the manifest in the CMS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerityParams {
    pub root_hash: [u8; 32],
    pub salt: [u8; 32],
    /// `verity-size`: bytes of hash tree appended to the data.
    pub tree_size: u64,
}

/// Why verity data is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerityError {
    #[error("verity data area of {0} bytes is not a non-empty multiple of 4096")]
    BadDataSize(u64),
    #[error("verity-size {found} does not match the {expected} bytes a tree over the data needs")]
    TreeSizeMismatch { expected: u64, found: u64 },
    #[error("verity hash tree of {0} bytes exceeds the in-memory limit")]
    TreeTooLarge(u64),
    #[error("verity root hash mismatch")]
    RootHashMismatch,
    #[error("verity hash block {index} at level {level} does not match its parent")]
    HashBlockMismatch { level: usize, index: u64 },
    #[error("verity check failed for data block {0}: payload tampered")]
    DataBlockMismatch(u64),
    #[error("data block {0} is outside the verity-protected area")]
    BlockOutOfRange(u64),
}

/// Number of hash blocks per level, bottom (leaf) level first.
pub fn level_sizes(data_blocks: u64) -> Vec<u64> {
    let mut levels = Vec::new();
    let mut n = data_blocks;
    loop {
        n = n.div_ceil(DIGESTS_PER_BLOCK);
        levels.push(n);
        if n <= 1 {
            return levels;
        }
    }
}

/// Bytes of hash tree RAUC appends for `data_len` bytes of data.
pub fn tree_size(data_len: u64) -> u64 {
    level_sizes(data_len / BLOCK_SIZE as u64)
        .iter()
        .sum::<u64>()
        * BLOCK_SIZE as u64
}

/// sha256(salt ‖ block): the digest of one data or hash block.
pub fn hash_block(salt: &[u8; 32], block: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(salt);
    h.update(block);
    h.finalize().into()
}

/// A hash tree whose every block has been checked against the root hash.
#[derive(Debug)]
pub struct HashTree {
    salt: [u8; 32],
    data_blocks: u64,
    tree: Vec<u8>,
    /// Block offset of each level inside `tree`, bottom level first.
    level_offsets: Vec<u64>,
}

impl HashTree {
    /// Checks that `tree` is exactly the tree for `data_len` bytes and that it
    /// hashes up to `params.root_hash`.
    pub fn verify(
        params: &VerityParams,
        data_len: u64,
        tree: Vec<u8>,
    ) -> Result<Self, VerityError> {
        check_sizes(params, data_len)?;
        if tree.len() as u64 != params.tree_size {
            return Err(VerityError::TreeSizeMismatch {
                expected: params.tree_size,
                found: tree.len() as u64,
            });
        }
        let data_blocks = data_len / BLOCK_SIZE as u64;
        let sizes = level_sizes(data_blocks);
        // Levels are stored top first: the bottom level is last in the file.
        let mut level_offsets = vec![0u64; sizes.len()];
        let mut offset = 0;
        for (i, size) in sizes.iter().enumerate().rev() {
            level_offsets[i] = offset;
            offset += size;
        }
        let t = HashTree {
            salt: params.salt,
            data_blocks,
            tree,
            level_offsets,
        };
        let top = sizes.len() - 1;
        if hash_block(&t.salt, t.block(top, 0)) != params.root_hash {
            return Err(VerityError::RootHashMismatch);
        }
        for (level, size) in sizes.iter().enumerate().take(top) {
            for index in 0..*size {
                let digest = hash_block(&t.salt, t.block(level, index));
                if digest != t.digest(level + 1, index) {
                    return Err(VerityError::HashBlockMismatch { level, index });
                }
            }
        }
        Ok(t)
    }

    /// Number of 4096-byte data blocks the tree protects.
    pub fn data_blocks(&self) -> u64 {
        self.data_blocks
    }

    /// Checks one full data block against its (authenticated) leaf digest.
    pub fn check_data_block(&self, index: u64, block: &[u8]) -> Result<(), VerityError> {
        if index >= self.data_blocks {
            return Err(VerityError::BlockOutOfRange(index));
        }
        if hash_block(&self.salt, block) != self.digest(0, index) {
            return Err(VerityError::DataBlockMismatch(index));
        }
        Ok(())
    }

    fn block(&self, level: usize, index: u64) -> &[u8] {
        let start = ((self.level_offsets[level] + index) as usize) * BLOCK_SIZE;
        &self.tree[start..start + BLOCK_SIZE]
    }

    /// The digest of item `index` of the level below `level`.
    fn digest(&self, level: usize, index: u64) -> [u8; 32] {
        let block = self.block(level, index / DIGESTS_PER_BLOCK);
        let at = (index % DIGESTS_PER_BLOCK) as usize * DIGEST_LEN;
        let mut out = [0u8; 32];
        out.copy_from_slice(&block[at..at + DIGEST_LEN]);
        out
    }
}

fn check_sizes(params: &VerityParams, data_len: u64) -> Result<(), VerityError> {
    if data_len == 0 || !data_len.is_multiple_of(BLOCK_SIZE as u64) {
        return Err(VerityError::BadDataSize(data_len));
    }
    let expected = tree_size(data_len);
    if params.tree_size != expected {
        return Err(VerityError::TreeSizeMismatch {
            expected,
            found: params.tree_size,
        });
    }
    if expected > MAX_TREE_LEN {
        return Err(VerityError::TreeTooLarge(expected));
    }
    Ok(())
}

/// Reads and authenticates the tree stored at `[data_len, data_len + tree_size)`.
pub fn read_tree<R: Read + Seek>(
    source: &mut R,
    params: &VerityParams,
    data_len: u64,
) -> Result<HashTree, crate::BundleError> {
    check_sizes(params, data_len)?;
    source.seek(SeekFrom::Start(data_len))?;
    // Bounded by MAX_TREE_LEN in check_sizes.
    let mut tree = vec![0u8; params.tree_size as usize];
    source.read_exact(&mut tree)?;
    Ok(HashTree::verify(params, data_len, tree)?)
}

/// Records the first verity failure of a [`VerityReader`], because the
/// reader's consumer (backhand/deku) may flatten `io::Error`s to their kind.
#[derive(Clone, Debug, Default)]
pub struct FailureLog(Arc<Mutex<Option<VerityError>>>);

impl FailureLog {
    /// The recorded failure, if any (taken: later calls return `None`).
    pub fn take(&self) -> Option<VerityError> {
        // A poisoned lock still holds a valid Option; recover it.
        match self.0.lock() {
            Ok(mut g) => g.take(),
            Err(p) => p.into_inner().take(),
        }
    }

    fn record(&self, e: &VerityError) {
        let mut g = match self.0.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if g.is_none() {
            *g = Some(e.clone());
        }
    }
}

/// A `Read + Seek + BufRead` view of the data area that verifies each
/// 4096-byte block before handing out any byte of it.
pub struct VerityReader<R> {
    inner: R,
    tree: Arc<HashTree>,
    failures: FailureLog,
    pos: u64,
    /// Index and content of the last verified block.
    cached: Option<u64>,
    buf: Box<[u8; BLOCK_SIZE]>,
}

impl<R: Read + Seek> VerityReader<R> {
    /// `inner` must expose the data area at offset 0 (the bundle file itself).
    pub fn new(inner: R, tree: Arc<HashTree>) -> Self {
        VerityReader {
            inner,
            tree,
            failures: FailureLog::default(),
            pos: 0,
            cached: None,
            buf: Box::new([0u8; BLOCK_SIZE]),
        }
    }

    /// A handle on the first verification failure, usable after the reader moved.
    pub fn failure_log(&self) -> FailureLog {
        self.failures.clone()
    }

    fn data_len(&self) -> u64 {
        self.tree.data_blocks * BLOCK_SIZE as u64
    }

    fn load(&mut self, index: u64) -> io::Result<()> {
        if self.cached == Some(index) {
            return Ok(());
        }
        self.cached = None;
        self.inner
            .seek(SeekFrom::Start(index * BLOCK_SIZE as u64))?;
        self.inner.read_exact(&mut self.buf[..])?;
        if let Err(e) = self.tree.check_data_block(index, &self.buf[..]) {
            self.failures.record(&e);
            return Err(io::Error::new(io::ErrorKind::InvalidData, e));
        }
        self.cached = Some(index);
        Ok(())
    }
}

impl<R: Read + Seek> BufRead for VerityReader<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.pos >= self.data_len() {
            return Ok(&[]);
        }
        let index = self.pos / BLOCK_SIZE as u64;
        self.load(index)?;
        let at = (self.pos % BLOCK_SIZE as u64) as usize;
        Ok(&self.buf[at..])
    }

    fn consume(&mut self, amt: usize) {
        self.pos = self.pos.saturating_add(amt as u64);
    }
}

impl<R: Read + Seek> Read for VerityReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(out.len());
        out[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: Read + Seek> Seek for VerityReader<R> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.data_len().checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = target
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek out of range"))?;
        Ok(self.pos)
    }
}

#[cfg(test)]
pub(crate) mod tests;

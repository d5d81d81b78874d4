//! Chunk ids: the digest of the uncompressed chunk (SHA-512/256 by default, or SHA-256).

use std::fmt;

use sha2::{Digest as _, Sha256, Sha512_256};

use crate::index::CA_FORMAT_SHA512_256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Digest {
    Sha512_256,
    Sha256,
}

impl Digest {
    pub fn from_flags(flags: u64) -> Self {
        if flags & CA_FORMAT_SHA512_256 != 0 {
            Digest::Sha512_256
        } else {
            Digest::Sha256
        }
    }

    pub fn id_of(self, data: &[u8]) -> ChunkId {
        ChunkId(match self {
            Digest::Sha512_256 => Sha512_256::digest(data).into(),
            Digest::Sha256 => Sha256::digest(data).into(),
        })
    }
}

/// A chunk id (32 bytes), shown as lowercase hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChunkId(pub [u8; 32]);

impl ChunkId {
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Where the chunk lives in a store: `<first 4 hex>/<64 hex>.cacnk`.
    pub fn store_path(&self) -> String {
        let hex = self.to_hex();
        format!("{}/{hex}.cacnk", &hex[..4])
    }
}

impl fmt::Display for ChunkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for ChunkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChunkId({})", self.to_hex())
    }
}

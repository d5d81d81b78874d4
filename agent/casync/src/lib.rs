//! casync's formats in Rust, pure (no I/O beyond the `Read` a caller hands in, no tokio, no
//! global state): the content-defined chunker ([`Chunker`], same boundaries as `casync make`),
//! `.caibx` blob indexes ([`Index`]), chunk ids ([`ChunkId`]: SHA-512/256 or SHA-256 of the
//! uncompressed chunk) and `.cacnk` chunk files (zstd). Chunk stores lay chunks out as
//! `<store>/<first 4 hex>/<id>.cacnk`. Compatibility with the real `casync` is tested both ways.

mod chunk_file;
mod chunker;
mod digest;
mod error;
mod extract;
mod index;
mod make;
mod scan;
mod seed;

pub use chunk_file::{compress, decompress_verified, verify};
pub use chunker::{ChunkSizes, Chunker, WINDOW};
pub use digest::{ChunkId, Digest};
pub use error::CasyncError;
pub use extract::{extract, ExtractError, ExtractStats};
pub use index::{Chunk, Index, BLOB_DEFAULT_FLAGS, CA_FORMAT_SHA512_256, MAX_CHUNKS};
pub use make::make_index;
pub use scan::{extract_scan, WriteAt};
pub use seed::{plan, Plan, SeedChunk, SeedMap};

//! Why casync data was refused.

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CasyncError {
    #[error("index is malformed: {0}")]
    BadIndex(String),
    #[error("chunk size parameters {min}/{avg}/{max} are not valid ({reason})")]
    BadParams {
        min: u64,
        avg: u64,
        max: u64,
        reason: &'static str,
    },
    #[error("chunk {id} does not decompress: {reason}")]
    BadChunkFile { id: String, reason: String },
    #[error("chunk {expected} has the wrong content (its digest is {actual})")]
    ChunkMismatch { expected: String, actual: String },
    #[error("chunk {id} is {actual} bytes, the index says {expected}")]
    ChunkSize {
        id: String,
        expected: u64,
        actual: u64,
    },
}

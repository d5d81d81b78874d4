//! The durable outbox. API contract (bodies are filled in by the outbox work).
//!
//! Every write goes through one writer thread that owns the only write connection and commits
//! whatever requests are waiting in one transaction (group commit: one fsync per batch).

use std::path::PathBuf;

use outpost_proto::{Priority, RecordId, StreamName};

#[derive(Debug, Clone)]
pub struct OutboxConfig {
    /// SQLite file; its directory must exist.
    pub path: PathBuf,
    /// Upper bound on the sum of stored record sizes (payload + per-record overhead).
    pub max_bytes: u64,
}

/// A record to store. `payload` must already be validated JSON (the API does that).
#[derive(Debug, Clone)]
pub struct NewRecord {
    pub id: Option<RecordId>,
    pub stream: StreamName,
    pub priority: Priority,
    pub payload: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub id: RecordId,
    /// The id was already pending with the same payload: nothing new was stored.
    pub duplicate: bool,
}

#[derive(Debug, Clone)]
pub struct StoredRecord {
    pub seq: i64,
    pub id: RecordId,
    pub stream: StreamName,
    pub priority: Priority,
    pub created_at_ms: i64,
    pub payload: Vec<u8>,
    pub sha256: String,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum EnqueueError {
    #[error("outbox full: stream {stream} ({priority}) needs {needed} bytes and nothing of lower or equal evictable priority is left to evict")]
    Full { stream: String, priority: Priority, needed: u64 },
    #[error("record of {size} bytes can never fit in an outbox of {max_bytes} bytes")]
    TooLarge { size: u64, max_bytes: u64 },
    #[error("id {id} is already pending with a different payload")]
    Conflict { id: String },
    #[error("outbox is shutting down")]
    Closed,
    #[error("storage error: {0}")]
    Storage(String),
}

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("cannot open outbox {path}: {source}")]
    Open { path: PathBuf, source: rusqlite::Error },
    #[error("storage error: {0}")]
    Storage(#[from] rusqlite::Error),
    #[error("outbox is shutting down")]
    Closed,
}

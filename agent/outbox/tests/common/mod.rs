//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use outpost_outbox::{NewRecord, Outbox, OutboxConfig, StreamStats};
use outpost_proto::{Priority, RecordId, StreamName};

pub fn cfg(path: &Path, max_bytes: u64) -> OutboxConfig {
    OutboxConfig {
        path: path.to_path_buf(),
        max_bytes,
    }
}

pub fn db(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("outbox.db")
}

/// A settable clock, so timestamps in assertions are exact.
#[derive(Clone)]
pub struct TestClock(pub Arc<AtomicI64>);

impl TestClock {
    pub fn new(ms: i64) -> Self {
        Self(Arc::new(AtomicI64::new(ms)))
    }
    pub fn set(&self, ms: i64) {
        self.0.store(ms, Ordering::SeqCst);
    }
    pub fn open(&self, path: &Path, max_bytes: u64) -> Outbox {
        let c = Arc::clone(&self.0);
        Outbox::open_with_clock(
            cfg(path, max_bytes),
            Arc::new(move || c.load(Ordering::SeqCst)),
        )
        .unwrap()
    }
}

pub fn id(s: &str) -> RecordId {
    RecordId::parse(s).unwrap()
}

pub fn rec(stream: &str, priority: Priority, id_: &str, payload: &[u8]) -> NewRecord {
    NewRecord {
        id: Some(id(id_)),
        stream: StreamName::parse(stream).unwrap(),
        priority,
        payload: payload.to_vec(),
    }
}

pub fn stream<'a>(stats: &'a [StreamStats], name: &str) -> &'a StreamStats {
    stats
        .iter()
        .find(|s| s.stream == name)
        .unwrap_or_else(|| panic!("no stats for stream {name}"))
}

pub fn pending_ids(outbox: &Outbox) -> Vec<String> {
    outbox
        .next_batch(100_000, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|r| r.id.to_string())
        .collect()
}

/// What an upload of the record `id_` with `payload` names in acks and rejections.
pub fn sent(id_: &str, payload: &[u8]) -> outpost_outbox::Sent {
    outpost_outbox::Sent {
        id: id(id_),
        sha256: outpost_proto::sha256_hex(payload),
    }
}

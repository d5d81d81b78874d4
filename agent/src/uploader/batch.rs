//! Turns stored records into the compressed `IngestBatch` body.

use bytes::Bytes;
use outpost_outbox::{Sent, StoredRecord};
use outpost_proto::{IngestBatch, IngestRecord};
use serde_json::value::RawValue;

const ZSTD_LEVEL: i32 = 3;

pub struct PreparedBatch {
    /// The records in the body (id and checksum), in order.
    pub ids: Vec<Sent>,
    /// zstd(JSON); empty when `ids` is empty.
    pub body: Bytes,
    pub json_bytes: usize,
    /// Records whose stored payload is not valid JSON (only possible if the file was damaged):
    /// the hub would refuse the whole batch, so they are rejected locally instead.
    pub invalid: Vec<(Sent, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error("cannot encode batch: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("cannot compress batch: {0}")]
    Compress(#[from] std::io::Error),
}

pub fn prepare(records: Vec<StoredRecord>) -> Result<PreparedBatch, BatchError> {
    let mut ids = Vec::with_capacity(records.len());
    let mut invalid = Vec::new();
    let mut out = Vec::with_capacity(records.len());
    for r in records {
        let sent = r.sent();
        // The payload was validated as UTF-8 JSON when published; check again rather than trust
        // the disk, because one bad record would otherwise block the queue forever.
        let payload = match String::from_utf8(r.payload)
            .map_err(|e| e.to_string())
            .and_then(|s| RawValue::from_string(s).map_err(|e| e.to_string()))
        {
            Ok(p) => p,
            Err(e) => {
                invalid.push((sent, format!("stored payload is not valid JSON: {e}")));
                continue;
            }
        };
        ids.push(sent);
        out.push(IngestRecord {
            id: r.id,
            stream: r.stream,
            created_at: r.created_at_ms,
            sha256: r.sha256,
            payload,
        });
    }
    if out.is_empty() {
        return Ok(PreparedBatch {
            ids,
            body: Bytes::new(),
            json_bytes: 0,
            invalid,
        });
    }
    let json = serde_json::to_vec(&IngestBatch { records: out })?;
    let body = zstd::bulk::compress(&json, ZSTD_LEVEL)?;
    Ok(PreparedBatch {
        ids,
        body: Bytes::from(body),
        json_bytes: json.len(),
        invalid,
    })
}

//! `POST /v1/ingest`: the agent's batch upload and the hub's answer.
//!
//! Request: `Content-Type: application/json`, `Content-Encoding: zstd`, body = zstd(JSON of
//! [`IngestBatch`]). The device is identified by its TLS client certificate, never by the body.
//! Response `200`: JSON [`IngestResponse`]. Every id of the batch appears exactly once, either in
//! `acked` (stored now or earlier: acks are idempotent) or in `rejected` with a reason.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::{RecordId, StreamName};

pub const INGEST_PATH: &str = "/v1/ingest";
/// Upper bound on a decompressed ingest body the hub accepts (a zip bomb stops here).
pub const MAX_DECOMPRESSED_BATCH_BYTES: usize = 64 * 1024 * 1024;
/// Upper bound on the compressed body.
pub const MAX_COMPRESSED_BATCH_BYTES: usize = 16 * 1024 * 1024;
/// Upper bound on records per batch the hub accepts.
pub const MAX_BATCH_RECORDS: usize = 10_000;

#[derive(Debug, Serialize, Deserialize)]
pub struct IngestBatch {
    pub records: Vec<IngestRecord>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct IngestRecord {
    pub id: RecordId,
    pub stream: StreamName,
    /// Unix milliseconds at which the agent durably stored the record.
    pub created_at: i64,
    /// Lowercase hex SHA-256 of the exact bytes of `payload`.
    pub sha256: String,
    /// The JSON value as published, byte for byte (the checksum covers these bytes).
    pub payload: Box<RawValue>,
}

#[derive(Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct IngestResponse {
    pub acked: Vec<String>,
    pub rejected: Vec<Rejection>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq, Clone)]
pub struct Rejection {
    pub id: String,
    pub reason: String,
}

/// One-line error body used by the hub and the agent's local API for every 4xx/5xx.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ErrorBody {
    pub error: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_bytes_are_preserved() {
        let text = r#"{"records":[{"id":"a","stream":"s","created_at":1,"sha256":"x","payload":{"b": 1.50, "a":[ 1 ]}}]}"#;
        let batch: IngestBatch = serde_json::from_str(text).unwrap();
        assert_eq!(batch.records[0].payload.get(), r#"{"b": 1.50, "a":[ 1 ]}"#);
        let again = serde_json::to_string(&batch).unwrap();
        assert!(again.contains(r#""payload":{"b": 1.50, "a":[ 1 ]}"#));
    }

    #[test]
    fn invalid_stream_is_rejected_by_serde() {
        let text = r#"{"records":[{"id":"a","stream":"BAD","created_at":1,"sha256":"x","payload":1}]}"#;
        assert!(serde_json::from_str::<IngestBatch>(text).is_err());
    }
}

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

/// The bytes of a published JSON value as they are stored, checksummed and sent: the body
/// without the insignificant whitespace around the value. A payload travels as a raw JSON value
/// inside the batch, and a JSON parser keeps no surrounding whitespace, so bytes that kept it
/// would never match their checksum at the hub.
pub fn payload_bytes(body: &[u8]) -> &[u8] {
    let ws = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r');
    let start = body.iter().position(|b| !ws(b)).unwrap_or(body.len());
    let end = body.iter().rposition(|b| !ws(b)).map_or(start, |i| i + 1);
    &body[start..end]
}

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
    fn payload_bytes_drop_only_surrounding_whitespace() {
        assert_eq!(payload_bytes(b" \r\n{\"a\": 1 }\n\t"), b"{\"a\": 1 }");
        assert_eq!(payload_bytes(b"1"), b"1");
        assert_eq!(payload_bytes(b"  "), b"");
        assert_eq!(payload_bytes(b""), b"");
        // What the hub sees after a JSON round trip of the batch is exactly these bytes.
        let stored = payload_bytes(b"{\"x\":[1, 2]}\n");
        let batch = format!(
            r#"{{"records":[{{"id":"a","stream":"s","created_at":1,"sha256":"","payload":{}}}]}}"#,
            std::str::from_utf8(stored).unwrap()
        );
        let parsed: IngestBatch = serde_json::from_str(&batch).unwrap();
        assert_eq!(parsed.records[0].payload.get().as_bytes(), stored);
    }

    #[test]
    fn invalid_stream_is_rejected_by_serde() {
        let text =
            r#"{"records":[{"id":"a","stream":"BAD","created_at":1,"sha256":"x","payload":1}]}"#;
        assert!(serde_json::from_str::<IngestBatch>(text).is_err());
    }
}

//! `POST /v1/outbox/{stream}[?priority=P]`: validate, hand to the outbox, answer 202 only after
//! the durable commit.
//!
//! Hot path: no lock, no JSON re-serialization, one copy of the body into the record.

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::CONTENT_LENGTH;
use hyper::{Request, StatusCode};
use outpost_outbox::NewRecord;
use outpost_proto::{Priority, RecordId, StreamName};

use super::errors::{ApiError, Reason};
use super::response::{json_bytes, Resp};
use super::state::AppState;

pub const PREFIX: &str = "/v1/outbox/";
const IDEMPOTENCY_KEY: &str = "idempotency-key";

pub async fn publish(state: &AppState, req: Request<Incoming>) -> Result<Resp, ApiError> {
    let limit = state.config.api.max_body_bytes;
    // Refuse a declared oversize body before reading any of it.
    if let Some(len) = req.headers().get(CONTENT_LENGTH) {
        if len
            .to_str()
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .is_some_and(|n| n > limit as u64)
        {
            return Err(ApiError::too_large(limit));
        }
    }
    // Header-level problems are reported after reading the (bounded) body, so a keep-alive
    // client's connection stays in sync and usable.
    let target = parse_target(state, &req);
    let body = read_body(req.into_body(), limit).await?;
    let (stream, priority, id) = target?;
    validate_json(&body)?;
    let record = NewRecord {
        id,
        stream,
        priority,
        payload: outpost_proto::ingest::payload_bytes(&body).to_vec(),
    };
    let accepted = state.outbox.submit(record).await?;
    let text = format!(
        "{{\"id\":\"{}\",\"duplicate\":{}}}\n",
        accepted.id, accepted.duplicate
    );
    // Record ids are restricted to [A-Za-z0-9._:@+=-], so they need no JSON escaping.
    Ok(json_bytes(StatusCode::ACCEPTED, text))
}

fn parse_target(
    state: &AppState,
    req: &Request<Incoming>,
) -> Result<(StreamName, Priority, Option<RecordId>), ApiError> {
    let name = req.uri().path().strip_prefix(PREFIX).unwrap_or_default();
    let stream = StreamName::parse(name)
        .map_err(|e| ApiError::bad_request(Reason::InvalidStream, e.to_string()))?;
    let mut priority = None;
    for pair in req
        .uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        match pair.split_once('=') {
            Some(("priority", value)) => {
                let p = value
                    .parse::<Priority>()
                    .map_err(|e| ApiError::bad_request(Reason::InvalidPriority, e.to_string()))?;
                priority = Some(p);
            }
            _ => {
                let shown: String = pair.chars().take(40).collect();
                return Err(ApiError::bad_request(
                    Reason::InvalidQuery,
                    format!("unknown query parameter {shown:?} (only priority=critical|normal|best_effort is allowed)"),
                ));
            }
        }
    }
    let priority = priority.unwrap_or_else(|| state.config.outbox.priority_for(&stream));
    let id = match req.headers().get(IDEMPOTENCY_KEY) {
        None => None,
        Some(v) => {
            let text = v.to_str().map_err(|_| {
                ApiError::bad_request(
                    Reason::InvalidIdempotencyKey,
                    "Idempotency-Key must be printable ASCII",
                )
            })?;
            Some(RecordId::parse(text).map_err(|e| {
                ApiError::bad_request(
                    Reason::InvalidIdempotencyKey,
                    format!("Idempotency-Key: {e}"),
                )
            })?)
        }
    };
    Ok((stream, priority, id))
}

/// Reads a request body of at most `limit` bytes (413 beyond it). Shared by every handler
/// that takes a body.
pub async fn read_body(body: Incoming, limit: usize) -> Result<Bytes, ApiError> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ApiError::too_large(limit)),
        Err(e) => Err(ApiError::bad_request(
            Reason::BodyRead,
            format!("cannot read request body: {e}"),
        )),
    }
}

/// The body must be exactly one JSON value. It is validated, never re-encoded: the stored bytes
/// (and the checksum the hub verifies) are the publisher's own, less surrounding whitespace
/// (see `outpost_proto::ingest::payload_bytes`).
pub fn validate_json(body: &[u8]) -> Result<(), ApiError> {
    let invalid = |m: String| {
        ApiError::bad_request(Reason::InvalidJson, format!("body is not valid JSON: {m}"))
    };
    // serde_json checks UTF-8 only inside strings it decodes; ignored strings are checked here.
    std::str::from_utf8(body).map_err(|e| invalid(e.to_string()))?;
    serde_json::from_slice::<serde::de::IgnoredAny>(body).map_err(|e| invalid(e.to_string()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_validation() {
        for ok in ["1", "\"x\"", "{\"a\":[1,2,{}]}", " null \n", "[]"] {
            assert!(validate_json(ok.as_bytes()).is_ok(), "{ok}");
        }
        for bad in ["", "{", "{\"a\":1} {}", "nope", "{\"a\":1,}", "\"\u{1}\""] {
            assert!(validate_json(bad.as_bytes()).is_err(), "{bad:?}");
        }
        assert!(validate_json(b"\"\xff\"").is_err());
    }
}

//! Response helpers. Built field by field (not with `Response::builder`) so that no response
//! construction can fail at run time.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use outpost_proto::ingest::ErrorBody;

pub type Resp = Response<Full<Bytes>>;

const JSON: HeaderValue = HeaderValue::from_static("application/json");

pub fn with_type(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Resp {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

pub fn json_bytes(status: StatusCode, body: impl Into<Bytes>) -> Resp {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_TYPE, JSON);
    r
}

/// Serializes `value` as one JSON line.
pub fn json<T: serde::Serialize>(status: StatusCode, value: &T) -> Resp {
    match serde_json::to_vec(value) {
        Ok(mut body) => {
            body.push(b'\n');
            json_bytes(status, body)
        }
        Err(e) => json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("cannot encode response: {e}"),
        ),
    }
}

pub fn json_error(status: StatusCode, message: &str) -> Resp {
    let body = ErrorBody {
        error: crate::oneline(message),
    };
    // A struct with one String field always serializes; the fallback only keeps this total.
    let mut text =
        serde_json::to_vec(&body).unwrap_or_else(|_| br#"{"error":"internal error"}"#.to_vec());
    text.push(b'\n');
    json_bytes(status, text)
}

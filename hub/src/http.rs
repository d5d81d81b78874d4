//! Small HTTP helpers shared by the handlers: JSON responses, one-line error bodies and a
//! bounded body reader.

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Body;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use outpost_proto::ingest::ErrorBody;
use serde::Serialize;

/// Response bodies: small ones in memory, files streamed.
pub type RespBody = BoxBody<Bytes, std::io::Error>;
pub type Resp = Response<RespBody>;

/// A body of bytes already in memory.
pub fn full(bytes: impl Into<Bytes>) -> RespBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

/// A refusal with its status; rendered as `{"error": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError {
    pub status: StatusCode,
    pub message: String,
}

impl HttpError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub fn into_response(self) -> Resp {
        error(self.status, &self.message)
    }
}

pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Resp {
    match serde_json::to_vec(value) {
        Ok(mut body) => {
            body.push(b'\n');
            let mut resp = Response::new(full(body));
            *resp.status_mut() = status;
            resp.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            resp
        }
        // Our response types serialize infallibly; answer something sane regardless.
        Err(_) => {
            let mut resp = Response::new(full(Bytes::from_static(
                b"{\"error\":\"internal error\"}\n",
            )));
            *resp.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            resp
        }
    }
}

/// An empty response with `status` (e.g. 204).
pub fn full_response(status: StatusCode) -> Resp {
    let mut resp = Response::new(full(Bytes::new()));
    *resp.status_mut() = status;
    resp
}

pub fn error(status: StatusCode, message: &str) -> Resp {
    json(
        status,
        &ErrorBody {
            error: crate::ingest::one_line(message),
        },
    )
}

/// Reads the whole body, refusing (413) as soon as it exceeds `limit` bytes, before buffering
/// more than that. A declared `Content-Length` over the limit is refused without reading.
pub async fn read_body<B>(
    body: B,
    content_length: Option<u64>,
    limit: usize,
) -> Result<Bytes, HttpError>
where
    B: Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let too_large = || {
        HttpError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body exceeds {limit} bytes"),
        )
    };
    if content_length.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(e) => Err(HttpError::new(
            StatusCode::BAD_REQUEST,
            format!("cannot read request body: {e}"),
        )),
    }
}

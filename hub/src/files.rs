//! Serving release files (bundles, chunks) with single `Range: bytes=` requests, streamed from
//! disk: a device that lost its link asks for the rest, never for all of it again.

use std::path::Path;

use bytes::Bytes;
use http_body_util::channel::Channel;
use http_body_util::BodyExt;
use hyper::header::{
    HeaderValue, ACCEPT_RANGES, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, RANGE,
};
use hyper::{HeaderMap, Response, StatusCode};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::http::{self, Resp};

/// Bytes read from disk per body frame.
const FRAME: usize = 256 * 1024;

/// What a `Range` header asks for, for a file of `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    /// No (usable) range: the whole file. Multiple ranges and bad syntax are ignored, as
    /// RFC 9110 §14.2 allows.
    Whole,
    /// Bytes `start..=end`.
    Part { start: u64, end: u64 },
    /// Nothing of the file satisfies it (`416`).
    Unsatisfiable,
}

pub fn parse_range(value: Option<&HeaderValue>, len: u64) -> RangeRequest {
    let Some(spec) = value
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("bytes="))
    else {
        return RangeRequest::Whole;
    };
    if spec.contains(',') {
        return RangeRequest::Whole;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeRequest::Whole;
    };
    let num = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit())).then(|| s.parse().ok())?
    };
    match (a.trim(), b.trim()) {
        ("", suffix) => match num(suffix) {
            Some(0) => RangeRequest::Unsatisfiable,
            Some(_) if len == 0 => RangeRequest::Unsatisfiable,
            Some(n) => RangeRequest::Part {
                start: len.saturating_sub(n),
                end: len - 1,
            },
            None => RangeRequest::Whole,
        },
        (start, "") => match num(start) {
            Some(s) if s < len => RangeRequest::Part {
                start: s,
                end: len - 1,
            },
            Some(_) => RangeRequest::Unsatisfiable,
            None => RangeRequest::Whole,
        },
        (start, end) => match (num(start), num(end)) {
            (Some(s), Some(e)) if s <= e && s < len => RangeRequest::Part {
                start: s,
                end: e.min(len - 1),
            },
            (Some(s), Some(e)) if s <= e => RangeRequest::Unsatisfiable,
            _ => RangeRequest::Whole,
        },
    }
}

/// `GET`/`HEAD` of `path` (already validated by the caller) honouring `Range`.
pub async fn serve(
    path: &Path,
    headers: &HeaderMap,
    head: bool,
    content_type: &'static str,
) -> Resp {
    let mut file = match tokio::fs::File::open(path).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return http::error(StatusCode::NOT_FOUND, "no such file in this release")
        }
        Err(e) => {
            tracing::error!(path = %path.display(), error = %e, "cannot open a release file");
            return http::error(StatusCode::INTERNAL_SERVER_ERROR, "cannot read the file");
        }
    };
    let len = match file.metadata().await {
        Ok(m) => m.len(),
        Err(e) => {
            tracing::error!(path = %path.display(), error = %e, "cannot stat a release file");
            return http::error(StatusCode::INTERNAL_SERVER_ERROR, "cannot read the file");
        }
    };
    let (status, start, count) = match parse_range(headers.get(RANGE), len) {
        RangeRequest::Whole => (StatusCode::OK, 0, len),
        RangeRequest::Part { start, end } => (StatusCode::PARTIAL_CONTENT, start, end - start + 1),
        RangeRequest::Unsatisfiable => {
            let mut resp = http::error(StatusCode::RANGE_NOT_SATISFIABLE, "range outside the file");
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                resp.headers_mut().insert(CONTENT_RANGE, v);
            }
            return resp;
        }
    };
    let body = if head || count == 0 {
        http::full(Bytes::new())
    } else {
        if let Err(e) = file.seek(std::io::SeekFrom::Start(start)).await {
            tracing::error!(path = %path.display(), error = %e, "cannot seek a release file");
            return http::error(StatusCode::INTERNAL_SERVER_ERROR, "cannot read the file");
        }
        let (mut tx, body) = Channel::<Bytes, std::io::Error>::new(2);
        tokio::spawn(async move {
            let mut left = count;
            while left > 0 {
                let mut buf = vec![0u8; FRAME.min(left as usize)];
                match file.read_exact(&mut buf).await {
                    Ok(_) => {
                        left -= buf.len() as u64;
                        if tx.send_data(Bytes::from(buf)).await.is_err() {
                            return; // the client went away
                        }
                    }
                    Err(e) => {
                        // The file shrank or the disk failed: abort the body (the client
                        // sees a truncated response, never wrong bytes).
                        tracing::error!(error = %e, "reading a release file failed mid-body");
                        tx.abort(e);
                        return;
                    }
                }
            }
        });
        body.boxed()
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(CONTENT_LENGTH, HeaderValue::from(count));
    if status == StatusCode::PARTIAL_CONTENT {
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{}/{len}", start + count - 1))
        {
            h.insert(CONTENT_RANGE, v);
        }
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(v: &str, len: u64) -> RangeRequest {
        parse_range(Some(&HeaderValue::from_str(v).unwrap()), len)
    }

    #[test]
    fn ranges() {
        use RangeRequest::*;
        assert_eq!(parse_range(None, 10), Whole);
        assert_eq!(r("bytes=0-4", 10), Part { start: 0, end: 4 });
        assert_eq!(r("bytes=5-", 10), Part { start: 5, end: 9 });
        assert_eq!(r("bytes=5-100", 10), Part { start: 5, end: 9 });
        assert_eq!(r("bytes=-3", 10), Part { start: 7, end: 9 });
        assert_eq!(r("bytes=-30", 10), Part { start: 0, end: 9 });
        assert_eq!(r("bytes=10-", 10), Unsatisfiable);
        assert_eq!(r("bytes=10-20", 10), Unsatisfiable);
        assert_eq!(r("bytes=-0", 10), Unsatisfiable);
        assert_eq!(r("bytes=4-2", 10), Whole);
        assert_eq!(r("bytes=0-1,3-4", 10), Whole);
        assert_eq!(r("items=0-1", 10), Whole);
        assert_eq!(r("bytes=a-b", 10), Whole);
        assert_eq!(r("bytes=+1-2", 10), Whole);
        assert_eq!(r("bytes=0-", 0), Unsatisfiable);
    }
}

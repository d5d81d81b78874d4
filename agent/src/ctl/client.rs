//! A one-request HTTP/1.1 client over the agent's unix socket.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE, HOST};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;

#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    #[error("cannot connect to the agent at {path}: {source} (is outpost-agent running? see --socket/--config)")]
    Connect {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("talking to the agent at {path} failed: {message}")]
    Http { path: PathBuf, message: String },
    #[error("invalid request: {0}")]
    Request(String),
}

#[derive(Debug)]
pub struct CtlResponse {
    pub status: u16,
    pub body: Bytes,
}

pub async fn request(
    socket: &Path,
    method: Method,
    path_and_query: &str,
    headers: &[(&'static str, &str)],
    body: Bytes,
) -> Result<CtlResponse, CtlError> {
    let http = |e: &dyn std::fmt::Display| CtlError::Http {
        path: socket.to_owned(),
        message: e.to_string(),
    };
    let stream = UnixStream::connect(socket)
        .await
        .map_err(|source| CtlError::Connect {
            path: socket.to_owned(),
            source,
        })?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| http(&e))?;
    let driver = tokio::spawn(conn);
    let mut req = Request::new(Full::new(body));
    *req.method_mut() = method;
    *req.uri_mut() = path_and_query
        .parse()
        .map_err(|e| CtlError::Request(format!("{path_and_query}: {e}")))?;
    req.headers_mut()
        .insert(HOST, HeaderValue::from_static("localhost"));
    req.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    for (name, value) in headers {
        let value = HeaderValue::from_str(value)
            .map_err(|_| CtlError::Request(format!("{name} must be printable ASCII")))?;
        req.headers_mut()
            .insert(HeaderName::from_static(name), value);
    }
    let resp = sender.send_request(req).await.map_err(|e| http(&e))?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| http(&e))?
        .to_bytes();
    driver.abort();
    Ok(CtlResponse { status, body })
}

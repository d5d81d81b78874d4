//! One keep-alive HTTPS/1.1 connection to the hub, re-established after any error.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{CONTENT_ENCODING, CONTENT_TYPE, HOST, USER_AGENT};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use outpost_proto::ingest::{ErrorBody, IngestResponse, INGEST_PATH};
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::config::HubConfig;
use crate::oneline;

/// The hub's answer lists at most one entry per record id; this bounds a hostile or broken one.
const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("cannot connect to hub {addr}: {message}")]
    Connect { addr: String, message: String },
    #[error("TLS with hub {addr} failed: {message}")]
    Tls { addr: String, message: String },
    #[error("no answer from hub {addr} within {ms} ms")]
    Timeout { addr: String, ms: u64 },
    #[error("HTTP exchange with hub {addr} failed: {message}")]
    Http { addr: String, message: String },
    #[error("hub answered HTTP {status}: {message}")]
    Status { status: u16, message: String },
    #[error("hub sent an unusable response: {0}")]
    BadResponse(String),
}

#[derive(Debug, thiserror::Error)]
#[error("hub.url: {0}")]
pub struct ClientSetupError(String);

pub struct HubClient {
    tls: TlsConnector,
    host: String,
    port: u16,
    server_name: ServerName<'static>,
    authority: String,
    /// `hub.url`'s path without a trailing slash (`""` or `/prefix`).
    base: String,
    ingest_path: String,
    timeout: Duration,
    sender: Option<SendRequest<Full<Bytes>>>,
    /// `[identity]`: the `Date` of successful answers raises the time floor.
    floor: Option<Arc<crate::identity::floor::TimeFloor>>,
}

impl HubClient {
    pub fn new(
        hub: &HubConfig,
        tls: Arc<rustls::ClientConfig>,
        timeout: Duration,
    ) -> Result<Self, ClientSetupError> {
        let url = &hub.url;
        let authority = url
            .authority()
            .ok_or_else(|| ClientSetupError("has no host".into()))?
            .as_str()
            .to_owned();
        // Uri::host keeps the brackets of an IPv6 literal; sockets and SNI want them off.
        let host = url
            .host()
            .unwrap_or_default()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let server_name = ServerName::try_from(host.clone()).map_err(|e| {
            ClientSetupError(format!("host {host:?} is not a valid TLS server name: {e}"))
        })?;
        let base = url.path().trim_end_matches('/');
        Ok(Self {
            tls: TlsConnector::from(tls),
            port: url.port_u16().unwrap_or(443),
            host,
            server_name,
            authority,
            ingest_path: format!("{base}{INGEST_PATH}"),
            base: base.to_owned(),
            timeout,
            sender: None,
            floor: None,
        })
    }

    /// Successful answers' `Date` headers raise `floor` (the hub was verified by TLS).
    pub fn with_time_floor(mut self, floor: Arc<crate::identity::floor::TimeFloor>) -> Self {
        self.floor = Some(floor);
        self
    }

    fn saw_date(&self, status: StatusCode, headers: &hyper::HeaderMap) {
        if let (Some(floor), true) = (&self.floor, status.is_success()) {
            if let Some(ms) = crate::identity::floor::date_header_ms(headers) {
                floor.raise(ms, "hub Date", false);
            }
        }
    }

    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// Whether a connection is open and usable for the next request.
    pub fn is_connected(&self) -> bool {
        self.sender.as_ref().is_some_and(|s| !s.is_closed())
    }

    pub fn disconnect(&mut self) {
        self.sender = None;
    }

    /// POSTs one zstd-compressed `IngestBatch`. Any error drops the connection so the next
    /// attempt starts from a fresh TCP+TLS handshake.
    pub async fn post_batch(&mut self, body: Bytes) -> Result<IngestResponse, UploadError> {
        let (timeout, addr) = (self.timeout, self.addr());
        let result = within_timeout(timeout, addr, self.exchange(body)).await;
        if result.is_err() {
            self.disconnect();
        }
        result
    }

    async fn exchange(&mut self, body: Bytes) -> Result<IngestResponse, UploadError> {
        let addr = self.addr();
        let mut sender = self.kept_alive().await?;
        let request = self.json_post(self.ingest_path.as_str(), true, body, &addr)?;
        let (status, bytes) = self
            .send(&mut sender, request, MAX_RESPONSE_BYTES, &addr)
            .await?;
        if status != StatusCode::OK {
            let message = match serde_json::from_slice::<ErrorBody>(&bytes) {
                Ok(b) => oneline(&b.error),
                Err(_) => oneline(&String::from_utf8_lossy(&bytes[..bytes.len().min(200)])),
            };
            // A keep-alive connection is still fine after an HTTP-level refusal.
            self.sender = Some(sender);
            return Err(UploadError::Status {
                status: status.as_u16(),
                message,
            });
        }
        let parsed = serde_json::from_slice::<IngestResponse>(&bytes)
            .map_err(|e| UploadError::BadResponse(format!("not an ingest response: {e}")))?;
        self.sender = Some(sender);
        Ok(parsed)
    }

    /// One JSON POST to `{hub.url}{path}` on a fresh connection (closed afterwards), used by
    /// enrollment. Returns the status and the body (at most 1 MiB); any status is `Ok`.
    pub async fn post_json_once(
        &mut self,
        path: &str,
        body: Bytes,
    ) -> Result<(StatusCode, Bytes), UploadError> {
        let target = format!("{}{path}", self.base);
        let request = self.json_post(&target, false, body, &self.addr())?;
        self.once(request, 1024 * 1024).await
    }

    /// A GET of `path_and_query` (under `hub.url`'s path) on a fresh connection; the answer's
    /// status and body (at most `limit` bytes), all within the request timeout.
    pub async fn get_once(
        &mut self,
        path_and_query: &str,
        limit: usize,
    ) -> Result<(StatusCode, Bytes), UploadError> {
        let target = format!("{}{path_and_query}", self.base);
        let request = self.get_request(&target, None, &self.addr())?;
        self.once(request, limit).await
    }

    /// `request` on a fresh connection (closed afterwards), within the request timeout.
    async fn once(
        &mut self,
        request: Request<Full<Bytes>>,
        limit: usize,
    ) -> Result<(StatusCode, Bytes), UploadError> {
        let (timeout, addr) = (self.timeout, self.addr());
        within_timeout(timeout, addr.clone(), async {
            let mut sender = self.connect().await?;
            self.send(&mut sender, request, limit, &addr).await
        })
        .await
    }

    /// A GET on the kept-alive connection (opened if needed), e.g. one chunk of many; status
    /// and body (at most `limit` bytes) within the request timeout. Any error drops the
    /// connection.
    pub async fn get_keepalive(
        &mut self,
        path: &str,
        limit: usize,
    ) -> Result<(StatusCode, Bytes), UploadError> {
        let (timeout, addr) = (self.timeout, self.addr());
        let target = format!("{}{path}", self.base);
        let result = within_timeout(timeout, addr.clone(), async {
            let mut sender = self.kept_alive().await?;
            let request = self.get_request(&target, None, &addr)?;
            let answer = self.send(&mut sender, request, limit, &addr).await?;
            self.sender = Some(sender);
            Ok(answer)
        })
        .await;
        if result.is_err() {
            self.disconnect();
        }
        result
    }

    /// A GET whose body the caller streams (downloads): the headers arrive within the request
    /// timeout, the body has no overall deadline (the caller times each frame). `range_from`
    /// asks for the bytes from that offset on (`Range: bytes=N-`).
    pub async fn get_streaming(
        &mut self,
        path: &str,
        range_from: Option<u64>,
    ) -> Result<hyper::Response<hyper::body::Incoming>, UploadError> {
        let (timeout, addr) = (self.timeout, self.addr());
        let target = format!("{}{path}", self.base);
        within_timeout(timeout, addr.clone(), async {
            let mut sender = self.connect().await?;
            let request = self.get_request(&target, range_from, &addr)?;
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| classify(&addr, &e))?;
            self.saw_date(response.status(), response.headers());
            Ok(response)
        })
        .await
    }

    fn get_request(
        &self,
        target: &str,
        range_from: Option<u64>,
        addr: &str,
    ) -> Result<Request<Full<Bytes>>, UploadError> {
        let mut builder = Request::get(target)
            .header(HOST, self.authority.as_str())
            .header(
                USER_AGENT,
                concat!("outpost-agent/", env!("CARGO_PKG_VERSION")),
            );
        if let Some(from) = range_from {
            builder = builder.header(hyper::header::RANGE, format!("bytes={from}-"));
        }
        builder
            .body(Full::new(Bytes::new()))
            .map_err(|e| UploadError::Http {
                addr: addr.to_owned(),
                message: e.to_string(),
            })
    }

    /// A JSON POST to `target` (zstd-compressed when `zstd`), with our Host and User-Agent.
    fn json_post(
        &self,
        target: &str,
        zstd: bool,
        body: Bytes,
        addr: &str,
    ) -> Result<Request<Full<Bytes>>, UploadError> {
        let mut builder = Request::post(target)
            .header(HOST, self.authority.as_str())
            .header(
                USER_AGENT,
                concat!("outpost-agent/", env!("CARGO_PKG_VERSION")),
            )
            .header(CONTENT_TYPE, "application/json");
        if zstd {
            builder = builder.header(CONTENT_ENCODING, "zstd");
        }
        builder
            .body(Full::new(body))
            .map_err(|e| UploadError::Http {
                addr: addr.to_owned(),
                message: e.to_string(),
            })
    }

    /// Sends `request` and reads the answer's status and body (at most `limit` bytes); notes
    /// the hub's `Date` for the time floor.
    async fn send(
        &self,
        sender: &mut SendRequest<Full<Bytes>>,
        request: Request<Full<Bytes>>,
        limit: usize,
        addr: &str,
    ) -> Result<(StatusCode, Bytes), UploadError> {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| classify(addr, &e))?;
        let status = response.status();
        self.saw_date(status, response.headers());
        let bytes = Limited::new(response.into_body(), limit)
            .collect()
            .await
            .map_err(|e| match e.downcast::<hyper::Error>() {
                Ok(e) => classify(addr, &e),
                Err(e) => UploadError::BadResponse(oneline(&e.to_string())),
            })?
            .to_bytes();
        Ok((status, bytes))
    }

    /// The kept-alive connection if it is still usable, else a new one (taken out of `self`;
    /// the caller puts it back after a successful exchange).
    async fn kept_alive(&mut self) -> Result<SendRequest<Full<Bytes>>, UploadError> {
        if let Some(mut s) = self.sender.take() {
            if !s.is_closed() && s.ready().await.is_ok() {
                return Ok(s);
            }
        }
        self.connect().await
    }

    async fn connect(&mut self) -> Result<SendRequest<Full<Bytes>>, UploadError> {
        let addr = self.addr();
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| UploadError::Connect {
                addr: addr.clone(),
                message: oneline(&e.to_string()),
            })?;
        // Batches are written in one go; waiting for Nagle only adds latency.
        let _ = tcp.set_nodelay(true);
        let tls = self
            .tls
            .connect(self.server_name.clone(), tcp)
            .await
            .map_err(|e| match tls_error_in(&e) {
                Some(t) => UploadError::Tls {
                    addr: addr.clone(),
                    message: describe_tls(t),
                },
                None => UploadError::Tls {
                    addr: addr.clone(),
                    message: oneline(&e.to_string()),
                },
            })?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| classify(&addr, &e))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "hub connection closed");
            }
        });
        tracing::debug!(hub = %addr, "connected to hub");
        Ok(sender)
    }
}

/// `exchange` within the request timeout; a timeout names the hub.
async fn within_timeout<T>(
    timeout: std::time::Duration,
    addr: String,
    exchange: impl std::future::Future<Output = Result<T, UploadError>>,
) -> Result<T, UploadError> {
    match tokio::time::timeout(timeout, exchange).await {
        Ok(r) => r,
        Err(_) => Err(UploadError::Timeout {
            addr,
            ms: timeout.as_millis() as u64,
        }),
    }
}

/// Finds a rustls error anywhere in an error's source chain (TLS 1.3 reports a refused client
/// certificate only on the first read after the handshake, so it surfaces inside hyper errors).
fn tls_error_in<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(t) = err.downcast_ref::<rustls::Error>() {
            return Some(t);
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if let Some(t) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                return Some(t);
            }
        }
        cur = err.source();
    }
    None
}

fn describe_tls(e: &rustls::Error) -> String {
    use rustls::{AlertDescription as A, CertificateError as C, Error as E};
    let hint = match e {
        E::InvalidCertificate(C::UnknownIssuer | C::BadSignature) => {
            " (the hub's certificate is not signed by the CA in hub.ca)"
        }
        E::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. }) => {
            " (the hub's certificate does not name the host in hub.url)"
        }
        E::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => {
            " (the hub's certificate has expired)"
        }
        E::AlertReceived(
            A::BadCertificate
            | A::UnknownCA
            | A::CertificateUnknown
            | A::CertificateRevoked
            | A::CertificateExpired
            | A::AccessDenied
            | A::CertificateRequired,
        ) => " (the hub refused this device's client certificate)",
        _ => "",
    };
    oneline(&format!("{e}{hint}"))
}

fn classify(addr: &str, e: &hyper::Error) -> UploadError {
    if let Some(t) = tls_error_in(e) {
        return UploadError::Tls {
            addr: addr.to_owned(),
            message: describe_tls(t),
        };
    }
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    UploadError::Http {
        addr: addr.to_owned(),
        message: oneline(&message),
    }
}

//! The real [`K3sApi`]: HTTPS to K3s's API server (hyper 1 over tokio-rustls, ring provider),
//! authenticated with K3s's own admin client certificate. One connection per request: the
//! agent asks every few seconds at most, and a fresh connection always uses the newest
//! credentials.
//!
//! Credentials are read on first use and re-read whenever one of the three files changes
//! (length or modification time): K3s rewrites them when certificates are rotated.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;

use crate::api::{
    addon_path, AddonStatus, K3sApi, NodeStatus, WorkloadKind, WorkloadRef, WorkloadStatus,
};
use crate::error::K3sError;
use crate::types;
use crate::BoxFuture;

/// K3s's API server on the node itself.
pub const DEFAULT_URL: &str = "https://127.0.0.1:6443";
/// K3s's server TLS dir.
pub const DEFAULT_TLS_DIR: &str = "/var/lib/rancher/k3s/server/tls";
/// Answers larger than this are refused (a single node's lists are far smaller).
const MAX_BODY: usize = 8 << 20;

/// Where K3s is and how to authenticate to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// `https://host:port`; the host must be in the serving certificate (K3s's has
    /// `127.0.0.1`, `localhost` and `kubernetes`).
    pub url: String,
    /// Client certificate (PEM, may carry its chain): K3s's `client-admin.crt`.
    pub client_cert: PathBuf,
    /// Its key: `client-admin.key`.
    pub client_key: PathBuf,
    /// The CA of the serving certificate: `server-ca.crt`.
    pub server_ca: PathBuf,
    /// Bound on each request, connect to last byte.
    pub timeout: Duration,
}

impl ClientConfig {
    /// The default URL and timeout with the credentials of a K3s TLS dir.
    pub fn from_tls_dir(dir: &Path) -> Self {
        Self {
            url: DEFAULT_URL.to_owned(),
            client_cert: dir.join("client-admin.crt"),
            client_key: dir.join("client-admin.key"),
            server_ca: dir.join("server-ca.crt"),
            timeout: Duration::from_secs(10),
        }
    }
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self::from_tls_dir(Path::new(DEFAULT_TLS_DIR))
    }
}

/// The K3s API over HTTPS. Cheap to share (`Arc<dyn K3sApi>`).
pub struct K3sClient {
    config: ClientConfig,
    host: String,
    port: u16,
    server_name: ServerName<'static>,
    tls: Mutex<Option<Loaded>>,
}

/// The TLS config built from the credential files as they were (`stamp`).
struct Loaded {
    stamp: Vec<(u64, Option<SystemTime>)>,
    config: Arc<rustls::ClientConfig>,
}

impl K3sClient {
    /// Checks the URL; reads nothing yet (K3s may not have written its credentials).
    pub fn new(config: ClientConfig) -> Result<Self, K3sError> {
        let bad = |reason: &str| K3sError::BadUrl {
            url: config.url.clone(),
            reason: reason.to_owned(),
        };
        let uri: Uri = config.url.parse().map_err(|_| bad("not a URL"))?;
        if uri.scheme_str() != Some("https") {
            return Err(bad("scheme must be https"));
        }
        let host = uri.host().ok_or_else(|| bad("no host"))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri.port_u16().unwrap_or(443);
        let server_name = ServerName::try_from(host.clone())
            .map_err(|_| bad("host is not a valid server name"))?;
        Ok(Self {
            config,
            host,
            port,
            server_name,
            tls: Mutex::new(None),
        })
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The TLS config, rebuilt if a credential file changed since it was built.
    fn tls_config(&self) -> Result<Arc<rustls::ClientConfig>, K3sError> {
        let files = [
            &self.config.client_cert,
            &self.config.client_key,
            &self.config.server_ca,
        ];
        let stamp = files
            .iter()
            .map(|p| stamp(p))
            .collect::<Result<Vec<_>, _>>()?;
        let mut cached = self.tls.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(l) = cached.as_ref().filter(|l| l.stamp == stamp) {
            return Ok(l.config.clone());
        }
        let config = Arc::new(build_tls(&self.config)?);
        if cached.is_some() {
            tracing::info!("K3s credentials changed on disk; reloaded");
        }
        *cached = Some(Loaded {
            stamp,
            config: config.clone(),
        });
        Ok(config)
    }

    /// One request, bounded by the timeout: (status, body).
    async fn call(&self, method: Method, path: &str) -> Result<(StatusCode, Bytes), K3sError> {
        let name: &'static str = if method == Method::DELETE {
            "DELETE"
        } else {
            "GET"
        };
        match tokio::time::timeout(self.config.timeout, self.call_unbounded(method, name, path))
            .await
        {
            Ok(r) => r,
            Err(_) => Err(K3sError::Timeout {
                method: name,
                path: path.to_owned(),
                after: self.config.timeout,
            }),
        }
    }

    async fn call_unbounded(
        &self,
        method: Method,
        name: &'static str,
        path: &str,
    ) -> Result<(StatusCode, Bytes), K3sError> {
        let tls = self.tls_config()?;
        let addr = self.addr();
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|source| match source.kind() {
                std::io::ErrorKind::ConnectionRefused => {
                    K3sError::NotRunning { addr: addr.clone() }
                }
                _ => K3sError::Connect {
                    addr: addr.clone(),
                    source,
                },
            })?;
        let stream = tokio_rustls::TlsConnector::from(tls)
            .connect(self.server_name.clone(), tcp)
            .await
            .map_err(|source| K3sError::Tls {
                addr: addr.clone(),
                source,
            })?;
        let http = |reason: String| K3sError::Http {
            method: name,
            path: path.to_owned(),
            reason,
        };
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| http(chain(&e)))?;
        let conn = tokio::spawn(conn);
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, addr.as_str())
            .header(hyper::header::ACCEPT, "application/json")
            .header(hyper::header::USER_AGENT, "outpost-agent")
            .body(Empty::<Bytes>::new())
            .map_err(|e| http(e.to_string()))?;
        let result = async {
            // A TLS 1.3 server refuses a client certificate after the handshake: the alert
            // arrives here, as the source of hyper's error.
            let resp = sender
                .send_request(req)
                .await
                .map_err(|e| http(chain(&e)))?;
            let status = resp.status();
            let body = Limited::new(resp.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|e| http(format!("reading the answer: {}", chain(e.as_ref()))))?
                .to_bytes();
            Ok((status, body))
        }
        .await;
        conn.abort();
        result
    }

    /// GET `path` and decode it; `None` on 404.
    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
    ) -> Result<Option<T>, K3sError> {
        let (status, body) = self.call(Method::GET, path).await?;
        match status {
            StatusCode::OK => decode(path, &body).map(Some),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(status_error("GET", path, status, &body)),
        }
    }

    pub async fn readyz(&self) -> Result<bool, K3sError> {
        let (status, body) = self.call(Method::GET, "/readyz").await?;
        match status {
            StatusCode::OK => Ok(true),
            // The API server lists its failing checks and answers 500 (503 while shutting down).
            StatusCode::INTERNAL_SERVER_ERROR | StatusCode::SERVICE_UNAVAILABLE => {
                tracing::debug!(body = %String::from_utf8_lossy(&body), "K3s /readyz not ready");
                Ok(false)
            }
            _ => Err(status_error("GET", "/readyz", status, &body)),
        }
    }

    pub async fn nodes(&self) -> Result<Vec<NodeStatus>, K3sError> {
        let path = "/api/v1/nodes";
        let list: types::NodeList = self.get_json(path).await?.ok_or_else(|| K3sError::Decode {
            path: path.to_owned(),
            reason: "404: no node API".into(),
        })?;
        Ok(list.items.into_iter().map(node_status).collect())
    }

    pub async fn workload(&self, w: &WorkloadRef) -> Result<Option<WorkloadStatus>, K3sError> {
        check_name(&w.namespace)?;
        check_name(&w.name)?;
        let path = w.path();
        Ok(match w.kind {
            WorkloadKind::Deployment => self.get_json(&path).await?.map(WorkloadStatus::Deployment),
            WorkloadKind::DaemonSet => self.get_json(&path).await?.map(WorkloadStatus::DaemonSet),
            WorkloadKind::StatefulSet => {
                self.get_json(&path).await?.map(WorkloadStatus::StatefulSet)
            }
        })
    }

    pub async fn addon(&self, name: &str) -> Result<Option<AddonStatus>, K3sError> {
        check_name(name)?;
        let a: Option<types::Addon> = self.get_json(&addon_path(name)).await?;
        Ok(a.map(|a| AddonStatus {
            name: if a.metadata.name.is_empty() {
                name.to_owned()
            } else {
                a.metadata.name
            },
            checksum: a.spec.checksum,
            source: a.spec.source,
        }))
    }

    pub async fn delete_addon(&self, name: &str) -> Result<bool, K3sError> {
        check_name(name)?;
        let path = addon_path(name);
        let (status, body) = self.call(Method::DELETE, &path).await?;
        match status {
            StatusCode::OK | StatusCode::ACCEPTED => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(status_error("DELETE", &path, status, &body)),
        }
    }
}

impl K3sApi for K3sClient {
    fn readyz(&self) -> BoxFuture<'_, Result<bool, K3sError>> {
        Box::pin(K3sClient::readyz(self))
    }
    fn nodes(&self) -> BoxFuture<'_, Result<Vec<NodeStatus>, K3sError>> {
        Box::pin(K3sClient::nodes(self))
    }
    fn workload<'a>(
        &'a self,
        workload: &'a WorkloadRef,
    ) -> BoxFuture<'a, Result<Option<WorkloadStatus>, K3sError>> {
        Box::pin(K3sClient::workload(self, workload))
    }
    fn addon<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<AddonStatus>, K3sError>> {
        Box::pin(K3sClient::addon(self, name))
    }
    fn delete_addon<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<bool, K3sError>> {
        Box::pin(K3sClient::delete_addon(self, name))
    }
}

/// An error and its sources, `a: b: c`.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        cur = inner.source();
    }
    s
}

fn node_status(n: types::Node) -> NodeStatus {
    let ready = n.status.conditions.into_iter().find(|c| c.type_ == "Ready");
    NodeStatus {
        name: n.metadata.name,
        ready: ready.as_ref().is_some_and(|c| c.status == "True"),
        reason: ready.as_ref().and_then(|c| c.reason.clone()),
        message: match ready {
            Some(c) => c.message,
            None => Some("no Ready condition reported".into()),
        },
    }
}

/// RFC 1123 names (what Kubernetes allows for namespaces and these objects): nothing that
/// could change the request path.
fn check_name(name: &str) -> Result<(), K3sError> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && !name.starts_with(['-', '.']);
    if ok {
        Ok(())
    } else {
        Err(K3sError::BadName(name.to_owned()))
    }
}

fn decode<T: serde::de::DeserializeOwned>(path: &str, body: &[u8]) -> Result<T, K3sError> {
    serde_json::from_slice(body).map_err(|e| K3sError::Decode {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

/// The error for an unexpected status: the `message` of a Kubernetes `Status` body, else the
/// start of the body as text.
fn status_error(method: &'static str, path: &str, status: StatusCode, body: &[u8]) -> K3sError {
    let message = match serde_json::from_slice::<types::Status>(body) {
        Ok(s) if !s.message.is_empty() => s.message,
        _ => {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            if text.is_empty() {
                status.canonical_reason().unwrap_or("").to_owned()
            } else {
                text.chars().take(200).collect()
            }
        }
    };
    K3sError::Status {
        method,
        path: path.to_owned(),
        code: status.as_u16(),
        message,
    }
}

fn stamp(path: &Path) -> Result<(u64, Option<SystemTime>), K3sError> {
    let m = std::fs::metadata(path).map_err(|source| K3sError::ReadCredentials {
        path: path.to_owned(),
        source,
    })?;
    Ok((m.len(), m.modified().ok()))
}

fn build_tls(c: &ClientConfig) -> Result<rustls::ClientConfig, K3sError> {
    let chain = read_certs(&c.client_cert)?;
    let key = read_key(&c.client_key)?;
    let mut roots = rustls::RootCertStore::empty();
    for ca in read_certs(&c.server_ca)? {
        roots.add(ca).map_err(|e| K3sError::BadCredentials {
            path: c.server_ca.clone(),
            reason: format!("not a usable CA certificate: {e}"),
        })?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| {
            b.with_root_certificates(roots)
                .with_client_auth_cert(chain, key)
        })
        .map_err(|e| K3sError::BadCredentials {
            path: c.client_key.clone(),
            reason: format!("client certificate and key: {e}"),
        })
}

fn read_file(path: &Path) -> Result<Vec<u8>, K3sError> {
    std::fs::read(path).map_err(|source| K3sError::ReadCredentials {
        path: path.to_owned(),
        source,
    })
}

pub(crate) fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, K3sError> {
    let pem = read_file(path)?;
    let certs = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| K3sError::BadCredentials {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(K3sError::BadCredentials {
            path: path.to_owned(),
            reason: "no PEM certificate".into(),
        });
    }
    Ok(certs)
}

pub(crate) fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, K3sError> {
    let pem = read_file(path)?;
    rustls_pemfile::private_key(&mut pem.as_slice())
        .map_err(|e| K3sError::BadCredentials {
            path: path.to_owned(),
            reason: e.to_string(),
        })?
        .ok_or_else(|| K3sError::BadCredentials {
            path: path.to_owned(),
            reason: "no PEM private key".into(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_could_escape_the_path_are_refused() {
        assert!(check_name("web-1.v2").is_ok());
        for bad in ["", "../x", "a/b", "A", "a?b", "-a", ".."] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn urls_are_checked() {
        let mut c = ClientConfig::default();
        assert!(K3sClient::new(c.clone()).is_ok());
        c.url = "http://127.0.0.1:6443".into();
        assert!(matches!(
            K3sClient::new(c.clone()),
            Err(K3sError::BadUrl { .. })
        ));
        c.url = "https://[::1]:6443".into();
        assert_eq!(K3sClient::new(c).unwrap().addr(), "[::1]:6443");
    }

    #[test]
    fn status_messages_come_from_the_status_body() {
        let body = br#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"deployments.apps is forbidden: User \"x\" cannot get resource","reason":"Forbidden","code":403}"#;
        let e = status_error("GET", "/x", StatusCode::FORBIDDEN, body);
        assert_eq!(
            e.to_string(),
            "GET /x: K3s answered 403: deployments.apps is forbidden: User \"x\" cannot get resource"
        );
        let e = status_error("GET", "/x", StatusCode::UNAUTHORIZED, b"");
        assert!(e.to_string().ends_with("401: Unauthorized"));
    }

    #[test]
    fn a_missing_ready_condition_is_not_ready() {
        let n: types::Node = serde_json::from_str(r#"{"metadata":{"name":"n"}}"#).unwrap();
        let s = node_status(n);
        assert!(!s.ready);
    }
}

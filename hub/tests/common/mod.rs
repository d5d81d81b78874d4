//! Shared helpers for the hub's integration tests: an init'ed setup, an in-process server and
//! a small rustls + hyper client.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use outpost_hub::config::Config;
use outpost_hub::init::{self, InitOptions};
use outpost_hub::server::Server;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::ClientConfig;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_rustls::TlsConnector;

pub fn init_dir(dir: &Path, devices: u32) -> init::InitSummary {
    init::run(&InitOptions {
        dir: dir.to_owned(),
        devices,
        listen: None,
        extra_sans: vec![],
        force: false,
    })
    .unwrap()
}

pub struct RunningHub {
    pub addr: SocketAddr,
    pub config: Config,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningHub {
    pub async fn start(config_path: &Path) -> Self {
        let config = Config::load(config_path).unwrap();
        let server = Server::bind(&config, Some("127.0.0.1:0".parse().unwrap()))
            .await
            .unwrap();
        let addr = server.local_addr().unwrap();
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(server.run(async move {
            let _ = rx.await;
        }));
        Self {
            addr,
            config,
            stop: Some(tx),
            task,
        }
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        tokio::time::timeout(std::time::Duration::from_secs(10), &mut self.task)
            .await
            .unwrap()
            .unwrap();
    }
}

/// Client identity: `(cert chain PEM, key PEM)`.
pub type Identity = (String, String);

pub fn device_identity(dir: &Path, device: &str) -> Identity {
    let folder = dir.join("devices").join(device);
    (
        std::fs::read_to_string(folder.join("device.pem")).unwrap(),
        std::fs::read_to_string(folder.join("device.key")).unwrap(),
    )
}

fn pem_certs(pem: &str) -> Vec<CertificateDer<'static>> {
    rustls_pemfile::certs(&mut pem.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap()
}

fn pem_key(pem: &str) -> PrivateKeyDer<'static> {
    rustls_pemfile::private_key(&mut pem.as_bytes())
        .unwrap()
        .unwrap()
}

pub struct Client {
    sender: http1::SendRequest<Full<Bytes>>,
}

impl Client {
    /// Connects over TLS, trusting `ca_pem` and presenting `identity` if given. Errors are
    /// returned as strings: refused handshakes are an expected outcome in these tests.
    pub async fn connect(
        addr: SocketAddr,
        ca_pem: &str,
        identity: Option<&Identity>,
    ) -> Result<Self, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for c in pem_certs(ca_pem) {
            roots.add(c).unwrap();
        }
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        let config = match identity {
            Some((cert, key)) => builder
                .with_client_auth_cert(pem_certs(cert), pem_key(key))
                .unwrap(),
            None => builder.with_no_client_auth(),
        };
        let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let tls = TlsConnector::from(Arc::new(config))
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .map_err(|e| e.to_string())?;
        let (sender, conn) = http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        Ok(Self { sender })
    }

    /// One request; the raw answer (status, headers, body).
    pub async fn send_raw(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<(StatusCode, hyper::HeaderMap, Bytes), String> {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "localhost");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Full::new(Bytes::new())).unwrap();
        self.sender.ready().await.map_err(|e| e.to_string())?;
        let resp = self
            .sender
            .send_request(req)
            .await
            .map_err(|e| e.to_string())?;
        let (parts, body) = resp.into_parts();
        let bytes = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok((parts.status, parts.headers, bytes))
    }

    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<(StatusCode, serde_json::Value), String> {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "localhost");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Full::new(Bytes::from(body))).unwrap();
        self.sender.ready().await.map_err(|e| e.to_string())?;
        let resp = self
            .sender
            .send_request(req)
            .await
            .map_err(|e| e.to_string())?;
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        Ok((status, json))
    }
}

pub fn record_json(id: &str, stream: &str, payload: &str) -> String {
    let sha = outpost_proto::sha256_hex(payload.as_bytes());
    format!(
        r#"{{"id":"{id}","stream":"{stream}","created_at":1795323287123,"sha256":"{sha}","payload":{payload}}}"#
    )
}

pub fn zstd_batch(records: &[String]) -> Vec<u8> {
    zstd::encode_all(
        format!(r#"{{"records":[{}]}}"#, records.join(",")).as_bytes(),
        3,
    )
    .unwrap()
}

pub fn ca_pem(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("ca.pem")).unwrap()
}

pub fn db_path(dir: &Path) -> PathBuf {
    dir.join("data").join("hub.sqlite")
}

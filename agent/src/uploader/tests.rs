//! The uploader against a tiny in-test mTLS server (not the real hub: that is the e2e suite's).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use outpost_outbox::{NewRecord, Outbox, OutboxConfig};
use outpost_proto::{IngestBatch, IngestResponse, Priority, Rejection, StreamName};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;

use super::status::UploaderStatus;
use super::Uploader;
use crate::config::{HubConfig, UploaderConfig};

struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
}

impl Pki {
    fn new(name: &str) -> Self {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, name);
        Self {
            ca: CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap(),
        }
    }

    /// (certificate PEM, PKCS#8 key PEM)
    fn leaf(&self, sans: &[&str]) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
        let cert = CertificateParams::new(sans)
            .unwrap()
            .signed_by(&key, &self.ca)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

#[derive(Default)]
struct Seen {
    records: Mutex<Vec<(String, String, String)>>,
    requests: AtomicUsize,
}

/// Serves `/v1/ingest` with mTLS (client certs must chain to `client_ca`). The first
/// `fail_first` requests get 503; records whose payload contains "reject-me" are rejected;
/// batches of more than two records, or with a "huge" record, get 413.
async fn hub(server: &Pki, client_ca: &Pki, fail_first: usize) -> (SocketAddr, Arc<Seen>) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let (cert, key) = server.leaf(&["127.0.0.1"]);
    let mut roots = rustls::RootCertStore::empty();
    roots.add(client_ca.ca.der().clone()).unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()],
            PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let seen2 = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let seen = seen2.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                    let seen = seen.clone();
                    async move {
                        let n = seen.requests.fetch_add(1, Ordering::SeqCst);
                        assert_eq!(req.uri().path(), "/v1/ingest");
                        assert_eq!(req.headers()["content-encoding"], "zstd");
                        assert_eq!(req.headers()["content-type"], "application/json");
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        if n < fail_first {
                            let r = Response::builder()
                                .status(503)
                                .body(Full::new(Bytes::from_static(b"{\"error\":\"hub busy\"}")));
                            return Ok::<_, std::convert::Infallible>(r.unwrap());
                        }
                        let json = zstd::decode_all(&body[..]).unwrap();
                        let batch: IngestBatch = serde_json::from_slice(&json).unwrap();
                        // Like a hub with a small body limit: more than two records, or any
                        // "huge" one, is too large.
                        if batch.records.len() > 2
                            || batch
                                .records
                                .iter()
                                .any(|r| r.payload.get().contains("huge"))
                        {
                            let r = Response::builder().status(413).body(Full::new(
                                Bytes::from_static(b"{\"error\":\"body too large\"}"),
                            ));
                            return Ok::<_, std::convert::Infallible>(r.unwrap());
                        }
                        let mut resp = IngestResponse::default();
                        for r in batch.records {
                            let payload = r.payload.get().to_owned();
                            seen.records.lock().unwrap().push((
                                r.id.to_string(),
                                payload.clone(),
                                r.sha256.clone(),
                            ));
                            if payload.contains("reject-me") {
                                resp.rejected.push(Rejection {
                                    id: r.id.to_string(),
                                    reason: "test says no".into(),
                                });
                            } else {
                                resp.acked.push(r.id.to_string());
                            }
                        }
                        Ok(Response::new(Full::new(Bytes::from(
                            serde_json::to_vec(&resp).unwrap(),
                        ))))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    (addr, seen)
}

/// An uploader task over a device's outbox, with the fast test backoff.
struct RunningUploader {
    status: Arc<UploaderStatus>,
    trigger: crate::shutdown::ShutdownTrigger,
    task: tokio::task::JoinHandle<()>,
}

impl RunningUploader {
    async fn stop(self) {
        self.trigger.trigger();
        self.task.await.unwrap();
    }
}

impl Device {
    fn start_uploader(&self) -> RunningUploader {
        let status = Arc::new(UploaderStatus::new(true));
        let (trigger, shutdown) = crate::shutdown::channel();
        let task = tokio::spawn(
            Uploader::new(
                self.outbox.clone(),
                self.hub.clone(),
                fast(),
                status.clone(),
            )
            .run(shutdown),
        );
        RunningUploader {
            status,
            trigger,
            task,
        }
    }
}

struct Device {
    dir: tempfile::TempDir,
    outbox: Outbox,
    hub: HubConfig,
}

fn device(addr: SocketAddr, trusted_ca: &Pki, client_pki: &Pki) -> Device {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(OutboxConfig {
        path: dir.path().join("o.sqlite"),
        max_bytes: 1 << 24,
    })
    .unwrap();
    let (cert, key) = client_pki.leaf(&["device-001"]);
    std::fs::write(dir.path().join("ca.pem"), trusted_ca.ca.pem()).unwrap();
    std::fs::write(dir.path().join("device.pem"), cert).unwrap();
    std::fs::write(dir.path().join("device.key"), key).unwrap();
    let hub = HubConfig {
        url: format!("https://{addr}").parse().unwrap(),
        ca: dir.path().join("ca.pem"),
        cert: dir.path().join("device.pem"),
        key: Some(dir.path().join("device.key")),
    };
    Device { dir, outbox, hub }
}

fn publish(outbox: &Outbox, payload: &str) -> String {
    let rec = NewRecord {
        id: None,
        stream: StreamName::parse("temp").unwrap(),
        priority: Priority::Normal,
        payload: payload.as_bytes().to_vec(),
    };
    outbox.enqueue(rec).unwrap().id.into_string()
}

fn fast() -> UploaderConfig {
    UploaderConfig {
        backoff_base_ms: 10,
        backoff_cap_ms: 50,
        request_timeout_ms: 5000,
        ..Default::default()
    }
}

async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..500 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn uploads_retries_acks_and_rejects() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (server_pki, client_pki) = (Pki::new("hub ca"), Pki::new("fleet ca"));
    let (addr, seen) = hub(&server_pki, &client_pki, 1).await;
    let d = device(addr, &server_pki, &client_pki);
    let a = publish(&d.outbox, "{\"t\": 21.50 }");
    let b = publish(&d.outbox, "[\"reject-me\"]");
    let running = d.start_uploader();
    let status = running.status.clone();
    let outbox = d.outbox.clone();
    until("all records answered", || {
        outbox.stats().unwrap().totals.pending == 0
    })
    .await;
    // A record published while the uploader idles is picked up by the notification.
    let c = publish(&d.outbox, "3");
    until("late record delivered", || {
        outbox.stats().unwrap().totals.pending == 0
    })
    .await;
    running.stop().await;

    let stats = d.outbox.stats().unwrap();
    assert_eq!(
        (stats.streams[0].delivered, stats.streams[0].rejected),
        (2, 1)
    );
    let records = seen.records.lock().unwrap().clone();
    let ids: Vec<&str> = records.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(ids, [a.as_str(), b.as_str(), c.as_str()]);
    assert_eq!(
        records[0].1, "{\"t\": 21.50 }",
        "payload bytes travel verbatim"
    );
    assert_eq!(
        records[0].2,
        outpost_proto::sha256_hex(records[0].1.as_bytes())
    );
    let snap = status.snapshot();
    assert_eq!(snap.errors_total, 1);
    assert!(
        snap.last_error.as_deref().unwrap().contains("503")
            && snap.last_error.as_deref().unwrap().contains("hub busy")
    );
    assert_eq!(snap.consecutive_failures, 0);
    assert!(snap.last_success_ms.is_some() && snap.batches_total >= 2);
    assert_eq!(snap.records_rejected_total, 1);
    drop(d.dir);
}

#[tokio::test]
async fn unknown_hub_ca_is_reported_clearly_and_nothing_is_deleted() {
    let (server_pki, client_pki, other) = (
        Pki::new("hub ca"),
        Pki::new("fleet ca"),
        Pki::new("wrong ca"),
    );
    let (addr, seen) = hub(&server_pki, &client_pki, 0).await;
    let d = device(addr, &other, &client_pki);
    publish(&d.outbox, "1");
    let running = d.start_uploader();
    let status = running.status.clone();
    until("two failures", || {
        status.snapshot().consecutive_failures >= 2
    })
    .await;
    running.stop().await;
    let err = status.snapshot().last_error.unwrap();
    assert!(
        err.contains("TLS") && err.contains("not signed by the CA in hub.ca"),
        "{err}"
    );
    assert!(!err.contains('\n'));
    assert_eq!(d.outbox.stats().unwrap().totals.pending, 1);
    assert_eq!(seen.requests.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn refused_client_certificate_is_reported_clearly() {
    let (server_pki, client_pki, rogue) = (
        Pki::new("hub ca"),
        Pki::new("fleet ca"),
        Pki::new("rogue ca"),
    );
    let (addr, _) = hub(&server_pki, &client_pki, 0).await;
    let d = device(addr, &server_pki, &rogue);
    publish(&d.outbox, "1");
    let running = d.start_uploader();
    let status = running.status.clone();
    until("a failure", || status.snapshot().consecutive_failures >= 1).await;
    running.stop().await;
    let err = status.snapshot().last_error.unwrap();
    assert!(
        err.contains("TLS") && err.contains("refused this device's client certificate"),
        "{err}"
    );
    assert_eq!(d.outbox.stats().unwrap().totals.pending, 1);
}

#[tokio::test]
async fn batches_the_hub_finds_too_large_shrink_and_a_lone_oversize_record_is_set_aside() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (server_pki, client_pki) = (Pki::new("hub ca"), Pki::new("fleet ca"));
    let (addr, seen) = hub(&server_pki, &client_pki, 0).await;
    let d = device(addr, &server_pki, &client_pki);
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(publish(&d.outbox, &format!("{{\"n\":{i}}}")));
    }
    let huge = publish(&d.outbox, "\"huge\"");
    let last = publish(&d.outbox, "7");
    let running = d.start_uploader();
    let outbox = d.outbox.clone();
    until("every record delivered or set aside", || {
        outbox.stats().unwrap().totals.pending == 0
    })
    .await;
    running.stop().await;

    let stats = d.outbox.stats().unwrap();
    assert_eq!(
        (stats.streams[0].delivered, stats.streams[0].rejected),
        (6, 1)
    );
    let dead = d.outbox.dead_letters(10).unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].id, huge);
    assert!(dead[0].reason.contains("413"), "{}", dead[0].reason);
    // Everything else reached the hub, in order, and nothing behind the huge record was stuck.
    let delivered: Vec<String> = seen
        .records
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.0.clone())
        .collect();
    ids.push(last);
    assert_eq!(delivered, ids);
    drop(d.dir);
}

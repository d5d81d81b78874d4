//! Resumable downloads against a tiny in-test TLS server that misbehaves on purpose (the real
//! hub never does: that is the e2e suite's): a lying `Content-Range`, too many bytes, a `200`
//! to a range request, a body whose digest is wrong.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use outpost_proto::updates::UpdateOffer;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;

use super::download::{self, DownloadError};
use crate::config::HubConfig;
use crate::uploader::client::HubClient;

#[derive(Clone, Copy)]
enum Behaviour {
    Honest,
    LyingRange,
    TooLong,
    IgnoresRange,
}

const FILE: &[u8] = &[7u8; 100_000];

/// A TLS server (no client auth) for `FILE`; returns its address and the CA (PEM).
async fn server(behaviour: Behaviour) -> (std::net::SocketAddr, String) {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from_pem_slice(cert.pem().as_bytes()).unwrap()],
            PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes()).unwrap(),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc = service_fn(move |req: Request<hyper::body::Incoming>| async move {
                    let from: usize = req
                        .headers()
                        .get("range")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.strip_prefix("bytes="))
                        .and_then(|v| v.trim_end_matches('-').parse().ok())
                        .unwrap_or(0);
                    let len = FILE.len();
                    let r = match behaviour {
                        Behaviour::IgnoresRange | Behaviour::Honest if from == 0 => {
                            Response::builder()
                                .status(200)
                                .body(Full::new(Bytes::from_static(FILE)))
                        }
                        Behaviour::IgnoresRange => Response::builder()
                            .status(200)
                            .body(Full::new(Bytes::from_static(FILE))),
                        Behaviour::Honest => Response::builder()
                            .status(206)
                            .header("content-range", format!("bytes {from}-{}/{len}", len - 1))
                            .body(Full::new(Bytes::from_static(&FILE[from..]))),
                        Behaviour::LyingRange => Response::builder()
                            .status(206)
                            .header("content-range", format!("bytes 0-{}/{len}", len - 1))
                            .body(Full::new(Bytes::from_static(FILE))),
                        Behaviour::TooLong => {
                            let mut body = FILE[from..].to_vec();
                            body.extend_from_slice(b"extra");
                            Response::builder()
                                .status(206)
                                .header("content-range", format!("bytes {from}-{}/{len}", len - 1))
                                .body(Full::new(Bytes::from(body)))
                        }
                    };
                    Ok::<_, std::convert::Infallible>(r.unwrap())
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    (addr, ca.pem())
}

fn offer(sha256: &str) -> UpdateOffer {
    UpdateOffer {
        release: "0123456789abcdef".into(),
        channel: "stable".into(),
        compatible: "c".into(),
        version: "2".into(),
        bundle_path: "/v1/releases/0123456789abcdef/bundle.raucb".into(),
        bundle_size: FILE.len() as u64,
        bundle_sha256: sha256.into(),
        store_path: None,
    }
}

fn client(addr: std::net::SocketAddr, ca_pem: &str, dir: &std::path::Path) -> HubClient {
    std::fs::write(dir.join("ca.pem"), ca_pem).unwrap();
    let hub = HubConfig {
        url: format!("https://{addr}").parse().unwrap(),
        ca: dir.join("ca.pem"),
        cert: dir.join("unused.pem"),
        key: None,
    };
    let roots = crate::uploader::tls::hub_roots(&hub).unwrap();
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    HubClient::new(&hub, Arc::new(tls), Duration::from_secs(5)).unwrap()
}

fn good_sha() -> String {
    hex::encode(Sha256::digest(FILE))
}

/// One download attempt against the server at `addr`.
async fn attempt(
    addr: std::net::SocketAddr,
    ca: &str,
    d: &std::path::Path,
    o: &UpdateOffer,
) -> Result<download::Fetched, (DownloadError, u64)> {
    download::attempt(
        &mut client(addr, ca, d),
        d,
        o,
        Duration::from_secs(5),
        None,
        |_| {},
    )
    .await
}

/// A part of 40 000 bytes already on disk.
fn with_part(dir: &std::path::Path, o: &UpdateOffer) {
    std::fs::write(download::part_path(dir, o), &FILE[..40_000]).unwrap();
}

#[tokio::test]
async fn a_part_resumes_and_a_lying_or_overlong_answer_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let o = offer(&good_sha());

    // Honest: resumes after the 40 000 bytes it has, fetches only the rest.
    let (addr, ca) = server(Behaviour::Honest).await;
    with_part(d, &o);
    let got = attempt(addr, &ca, d, &o).await.unwrap();
    assert_eq!((got.received, got.have), (60_000, 100_000));
    assert_eq!(
        download::finish(d, &o).await.unwrap(),
        download::final_path(d, &o)
    );
    // Finished (a power cut before the install): found, not fetched again; a file of another
    // length is not taken for it.
    assert_eq!(download::finished(d, &o), Some(download::final_path(d, &o)));
    let mut longer = o.clone();
    longer.bundle_size += 1;
    assert_eq!(download::finished(d, &longer), None);
    std::fs::remove_file(download::final_path(d, &o)).unwrap();
    assert_eq!(download::finished(d, &o), None);

    // Lying Content-Range: refused, the part keeps what it had.
    let (addr, ca) = server(Behaviour::LyingRange).await;
    with_part(d, &o);
    let err = attempt(addr, &ca, d, &o).await.unwrap_err();
    assert!(
        matches!(err.0, DownloadError::Bad(ref m) if m.contains("Content-Range")),
        "{:?}",
        err.0
    );
    assert_eq!(
        std::fs::read(download::part_path(d, &o)).unwrap(),
        &FILE[..40_000]
    );

    // More bytes than the release has: refused.
    let (addr, ca) = server(Behaviour::TooLong).await;
    let err = attempt(addr, &ca, d, &o).await.unwrap_err();
    assert!(
        matches!(err.0, DownloadError::Bad(ref m) if m.contains("more bytes")),
        "{:?}",
        err.0
    );

    // A 200 to a range request: the part starts over and completes.
    let (addr, ca) = server(Behaviour::IgnoresRange).await;
    with_part(d, &o);
    let got = attempt(addr, &ca, d, &o).await.unwrap();
    assert_eq!((got.received, got.have), (100_000, 100_000));

    // A complete part with another digest: refused and deleted.
    let mut wrong = offer(&"00".repeat(32));
    wrong.release = "fedcba9876543210".into();
    std::fs::copy(download::part_path(d, &o), download::part_path(d, &wrong)).unwrap();
    assert_eq!(
        std::fs::metadata(download::part_path(d, &wrong))
            .unwrap()
            .len(),
        100_000
    );
    let err = download::finish(d, &wrong).await.unwrap_err();
    assert!(matches!(err, DownloadError::Bad(_)), "{err:?}");
    assert!(!download::part_path(d, &wrong).exists());
}

//! Full rustls mTLS handshakes with the client key in the (sw)TPM.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use outpost_identity::{
    client_config, make_csr, FileKey, IdentityError, KeyBackend, TpmConfig, TpmKey,
};
use rustls::pki_types::CertificateDer;
use rustls::server::WebPkiClientVerifier;
use rustls::{ProtocolVersion, ServerConfig, SupportedProtocolVersion};

use crate::support::ca::TestCa;
use outpost_testkit::Swtpm;

/// A rustls server (`versions` only) that requires a client certificate from `client_ca`.
fn server_config(
    ca: &TestCa,
    client_ca: &TestCa,
    versions: &[&'static SupportedProtocolVersion],
) -> Arc<ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(client_ca.roots()), provider.clone())
            .build()
            .unwrap();
    let (chain, key) = ca.server_cert();
    Arc::new(
        ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .unwrap(),
    )
}

struct Outcome {
    version: Option<ProtocolVersion>,
    peer_certs: Vec<CertificateDer<'static>>,
}

/// One connection over loopback TCP; returns what the server saw, or the server's error.
fn handshake(server: Arc<ServerConfig>, client: rustls::ClientConfig) -> Result<Outcome, String> {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let srv = std::thread::spawn(move || -> Result<Outcome, String> {
        let (sock, _) = listener.accept().map_err(|e| e.to_string())?;
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let conn = rustls::ServerConnection::new(server).unwrap();
        let mut tls = rustls::StreamOwned::new(conn, sock);
        let mut buf = [0u8; 4];
        tls.read_exact(&mut buf).map_err(|e| e.to_string())?;
        assert_eq!(&buf, b"ping");
        tls.write_all(b"pong").map_err(|e| e.to_string())?;
        tls.conn.send_close_notify();
        let _ = tls.flush();
        Ok(Outcome {
            version: tls.conn.protocol_version(),
            peer_certs: tls
                .conn
                .peer_certificates()
                .map(|c| c.iter().map(|c| c.clone().into_owned()).collect())
                .unwrap_or_default(),
        })
    });
    let sock = TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let conn =
        rustls::ClientConnection::new(Arc::new(client), "localhost".try_into().unwrap()).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, sock);
    let client_result = tls.write_all(b"ping").and_then(|()| {
        let mut buf = [0u8; 4];
        tls.read_exact(&mut buf).map(|()| buf)
    });
    drop(tls);
    let server_result = srv.join().unwrap();
    match (client_result, server_result) {
        (Ok(buf), Ok(outcome)) if &buf == b"pong" => Ok(outcome),
        (c, s) => Err(format!("client: {:?}; server: {:?}", c.err(), s.err())),
    }
}

/// A TPM key enrolled with `ca`: CSR signed in the TPM, certificate issued by the CA.
fn enrolled_tpm_key(
    dir: &std::path::Path,
    tpm: &Swtpm,
    ca: &TestCa,
) -> (Arc<dyn KeyBackend>, String) {
    let key = TpmKey::open_or_create(&TpmConfig {
        tcti: tpm.tcti(),
        ..TpmConfig::in_state_dir(&dir.join("state"))
    })
    .unwrap();
    let cert_pem = ca.issue_client_cert(&make_csr(&key, "device-0001").unwrap());
    (Arc::new(key), cert_pem)
}

#[test]
fn tpm_client_key_authenticates_over_tls13_and_tls12() {
    let dir = tempfile::tempdir().unwrap();
    let tpm = Swtpm::start(&dir.path().join("tpm"));
    let ca = TestCa::new("Outpost Test Fleet CA");
    let (key, cert_pem) = enrolled_tpm_key(dir.path(), &tpm, &ca);
    let device_cert = outpost_identity::tls::parse_cert_chain_pem(cert_pem.as_bytes()).unwrap();

    for (version, wire) in [
        (&rustls::version::TLS13, ProtocolVersion::TLSv1_3),
        (&rustls::version::TLS12, ProtocolVersion::TLSv1_2),
    ] {
        // The client offers both versions; the server pins one.
        let client = client_config(Arc::clone(&key), cert_pem.as_bytes(), ca.roots()).unwrap();
        let outcome = handshake(server_config(&ca, &ca, &[version]), client)
            .unwrap_or_else(|e| panic!("{wire:?}: {e}"));
        assert_eq!(outcome.version, Some(wire));
        assert_eq!(
            outcome.peer_certs, device_cert,
            "{wire:?}: server saw another client cert"
        );
    }
}

#[test]
fn server_that_does_not_trust_the_device_ca_rejects_the_client() {
    // Proves the server above really checks the client certificate.
    let dir = tempfile::tempdir().unwrap();
    let key: Arc<dyn KeyBackend> =
        Arc::new(FileKey::open_or_create(&dir.path().join("id.pem")).unwrap());
    let device_ca = TestCa::new("device CA");
    let other_ca = TestCa::new("other CA");
    let cert_pem = device_ca.issue_client_cert(&make_csr(key.as_ref(), "d").unwrap());
    let client = client_config(Arc::clone(&key), cert_pem.as_bytes(), device_ca.roots()).unwrap();
    let server = server_config(&device_ca, &other_ca, &[&rustls::version::TLS13]);
    assert!(handshake(server, client).is_err());
}

#[test]
fn client_config_refuses_a_certificate_for_another_key_or_no_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("CA");
    let key_a = FileKey::open_or_create(&dir.path().join("a.pem")).unwrap();
    let key_b: Arc<dyn KeyBackend> =
        Arc::new(FileKey::open_or_create(&dir.path().join("b.pem")).unwrap());
    let cert_for_a = ca.issue_client_cert(&make_csr(&key_a, "a").unwrap());

    let err = client_config(Arc::clone(&key_b), cert_for_a.as_bytes(), ca.roots()).unwrap_err();
    assert!(matches!(err, IdentityError::BadCertificate(_)), "{err:?}");
    let err = client_config(key_b, b"no pem here", ca.roots()).unwrap_err();
    assert!(matches!(err, IdentityError::BadCertificate(_)), "{err:?}");
}

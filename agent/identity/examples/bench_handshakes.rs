//! mTLS handshake throughput with the client key in the TPM, against the file key as the
//! baseline measured in the same run (`scripts/bench identity`; not part of CI).
//!
//! A throwaway CA (rcgen) issues a server certificate and one client certificate per backend
//! (CSR signed by the backend, as at enrollment). A rustls server on 127.0.0.1 requires client
//! authentication (TLS 1.3 only, no tickets, no session cache). For `--seconds` per backend the
//! client does full handshakes one after another: new TCP connection, full TLS 1.3 handshake
//! (checked: never resumed), one byte each way, close. The client's CertificateVerify is signed
//! by the backend through `outpost_identity::client_config`, exactly as the agent does.
//!
//! The TPM is a swtpm started here on free ports (data P, control P + 1) with its own
//! temporary state (outpost-testkit's `Swtpm`), sent `TPM2_Shutdown` at the end.
//!
//!   cargo run --release -p outpost-identity --example bench_handshakes -- [--seconds N]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use outpost_identity::{client_config, make_csr, open_backend, BackendConfig, KeyBackend};
use outpost_identity::{KeyProtection, TpmConfig};
use outpost_testkit::Swtpm;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
};
use rustls::client::Resumption;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{NoServerSessionStorage, WebPkiClientVerifier};
use rustls::{HandshakeKind, ProtocolVersion, ServerConfig};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// Handshakes done (unmeasured) before each measurement.
const WARMUP: usize = 20;
/// Bare `sign_sha256` calls timed per backend, to attribute the handshake difference.
const SIGNS: usize = 200;

fn main() -> Res<()> {
    let seconds = parse_seconds()?;
    let dir = tempfile::tempdir()?;

    // CA, server certificate, and a server that requires a client certificate from that CA.
    let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "bench CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, ca_key);
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca_cert.der().clone())?;
    let roots = Arc::new(roots);
    let server = server_config(&issuer, &roots)?;
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    std::thread::spawn(move || serve(listener, server));

    // Backends, opened as the agent opens them.
    let file = open_backend(&BackendConfig::File {
        path: dir.path().join("file-key.pem"),
    })?;
    let swtpm = Swtpm::start(&dir.path().join("swtpm"));
    let tpm = open_backend(&BackendConfig::Tpm(TpmConfig {
        tcti: swtpm.tcti(),
        ..TpmConfig::in_state_dir(&dir.path().join("agent-state"))
    }))?;
    assert_eq!(tpm.protection(), KeyProtection::Tpm);

    println!(
        "identity: full mTLS handshakes/s, TLS 1.3 (ECDHE x25519, ECDSA P-256 both sides), \
         new TCP connection each, no resumption, sequential, {seconds} s per backend, \
         rustls server on 127.0.0.1 requiring client auth"
    );
    println!("  baseline: the file key, measured in the same run; TPM: swtpm on 127.0.0.1");
    let mut results = Vec::new();
    for (name, backend) in [("file key (baseline)", &file), ("TPM key (swtpm)", &tpm)] {
        let cert_pem = issue_client_cert(&issuer, backend.as_ref())?;
        let mut client = client_config(Arc::clone(backend), cert_pem.as_bytes(), roots.clone())?;
        client.resumption = Resumption::disabled();
        let client = Arc::new(client);
        for _ in 0..WARMUP {
            handshake(addr, &client)?;
        }
        let sign = time_signs(backend.as_ref())?;
        let stats = measure(addr, &client, Duration::from_secs_f64(seconds))?;
        println!(
            "  {name:<20} {:>7.0} handshakes/s   mean {:>6.2} ms   p99 {:>6.2} ms   \
             (n = {}; one bare sign_sha256: {:.2} ms)",
            stats.per_second,
            ms(stats.mean),
            ms(stats.p99),
            stats.count,
            ms(sign)
        );
        results.push((stats, sign));
    }
    let (file_stats, file_sign) = &results[0];
    let (tpm_stats, tpm_sign) = &results[1];
    println!(
        "  TPM / file: {:.2}x the handshakes/s; +{:.2} ms per handshake (sign alone: +{:.2} ms)",
        tpm_stats.per_second / file_stats.per_second,
        ms(tpm_stats.mean) - ms(file_stats.mean),
        ms(*tpm_sign) - ms(*file_sign)
    );

    // Nothing may hold the TPM connection when dropping swtpm sends TPM2_Shutdown.
    drop(results);
    drop(tpm);
    drop(swtpm);
    Ok(())
}

fn parse_seconds() -> Res<f64> {
    let mut args = std::env::args().skip(1);
    let mut seconds: f64 = 5.0;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => {
                seconds = args.next().ok_or("--seconds needs a value")?.parse()?;
                if !seconds.is_finite() || seconds <= 0.0 {
                    return Err("--seconds must be positive".into());
                }
            }
            _ => return Err(format!("usage: bench_handshakes [--seconds N] (got {arg})").into()),
        }
    }
    Ok(seconds)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// TLS 1.3 only, client certificate required, no session cache, no tickets: every handshake
/// is a full one with a CertificateVerify from the client.
fn server_config(
    issuer: &Issuer<'static, KeyPair>,
    roots: &Arc<rustls::RootCertStore>,
) -> Res<Arc<ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier =
        WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone()).build()?;
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::new(vec!["localhost".to_string()])?;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.signed_by(&key, issuer)?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![cert.der().clone()], key)?;
    config.session_storage = Arc::new(NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(Arc::new(config))
}

/// Accept connections one at a time: full handshake, read one byte, echo it, close.
fn serve(listener: TcpListener, config: Arc<ServerConfig>) {
    for sock in listener.incoming() {
        let Ok(sock) = sock else { continue };
        let _ = sock.set_nodelay(true);
        let Ok(conn) = rustls::ServerConnection::new(Arc::clone(&config)) else {
            continue;
        };
        let mut tls = rustls::StreamOwned::new(conn, sock);
        let mut buf = [0u8; 1];
        if tls.read_exact(&mut buf).is_ok() && tls.write_all(&buf).is_ok() {
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
    }
}

/// One connection: TCP connect, full handshake (client key signs CertificateVerify), one
/// byte each way (the server has verified the client when it answers). Returns its duration.
fn handshake(addr: std::net::SocketAddr, client: &Arc<rustls::ClientConfig>) -> Res<Duration> {
    let start = Instant::now();
    let sock = TcpStream::connect(addr)?;
    sock.set_nodelay(true)?;
    sock.set_read_timeout(Some(Duration::from_secs(10)))?;
    let conn = rustls::ClientConnection::new(Arc::clone(client), "localhost".try_into()?)?;
    let mut tls = rustls::StreamOwned::new(conn, sock);
    tls.write_all(b"x")?;
    let mut buf = [0u8; 1];
    tls.read_exact(&mut buf)?;
    let elapsed = start.elapsed();
    if tls.conn.handshake_kind() != Some(HandshakeKind::Full)
        || tls.conn.protocol_version() != Some(ProtocolVersion::TLSv1_3)
    {
        return Err(format!(
            "not a full TLS 1.3 handshake: {:?} {:?}",
            tls.conn.handshake_kind(),
            tls.conn.protocol_version()
        )
        .into());
    }
    Ok(elapsed)
}

struct Stats {
    count: usize,
    per_second: f64,
    mean: Duration,
    p99: Duration,
}

fn measure(
    addr: std::net::SocketAddr,
    client: &Arc<rustls::ClientConfig>,
    duration: Duration,
) -> Res<Stats> {
    let mut latencies = Vec::new();
    let start = Instant::now();
    while start.elapsed() < duration {
        latencies.push(handshake(addr, client)?);
    }
    let wall = start.elapsed();
    latencies.sort_unstable();
    let count = latencies.len();
    let total: Duration = latencies.iter().sum();
    Ok(Stats {
        count,
        per_second: count as f64 / wall.as_secs_f64(),
        mean: total / count as u32,
        p99: latencies[(count * 99).div_ceil(100) - 1],
    })
}

fn time_signs(backend: &dyn KeyBackend) -> Res<Duration> {
    let start = Instant::now();
    for i in 0..SIGNS {
        backend.sign_sha256(format!("message {i}").as_bytes())?;
    }
    Ok(start.elapsed() / SIGNS as u32)
}

/// The device certificate as the hub would issue it: CSR signed by the backend, checked and
/// signed by the CA.
fn issue_client_cert(issuer: &Issuer<'static, KeyPair>, backend: &dyn KeyBackend) -> Res<String> {
    let mut req = CertificateSigningRequestParams::from_pem(&make_csr(backend, "bench-device")?)?;
    req.params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    req.params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    Ok(req.signed_by(issuer)?.pem())
}

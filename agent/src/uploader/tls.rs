//! The device's mTLS client configuration: rustls on ring, TLS 1.2 and 1.3, the device
//! certificate as client identity and ONLY the configured hub CA as trust anchor (the system
//! store is deliberately not used: a public CA must not be able to impersonate the hub).
//!
//! The client identity is either `[hub] cert` + `key` (files, [`client_config`]) or, with
//! `[identity]`, the enrolled certificate with the key backend signing (built by
//! `crate::identity::Identity::client_config` from [`hub_roots`]). Enrollment itself connects
//! without a client certificate ([`anonymous_config`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::config::{Config, HubConfig};
use crate::identity::floor::TimeFloor;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {what} {path}: {source}")]
    Read {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what} {path} contains no PEM certificate")]
    NoCertificate { what: &'static str, path: PathBuf },
    #[error("{what} {path} is not valid PEM: {message}")]
    BadPem {
        what: &'static str,
        path: PathBuf,
        message: String,
    },
    /// Deliberately carries no key material, only where it came from.
    #[error("client key {path} contains no PEM private key (expected PKCS#8, SEC1 or PKCS#1)")]
    NoKey { path: PathBuf },
    #[error("hub CA {path}: {message}")]
    BadCa { path: PathBuf, message: String },
    #[error("hub.key is not set: the client key comes from [identity], not from a file")]
    KeyFromIdentity,
    #[error("client certificate {cert} and key {key} cannot be used together: {message}")]
    BadIdentity {
        cert: PathBuf,
        key: PathBuf,
        message: String,
    },
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_owned(),
        source,
    })
}

fn certs(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(what, path)?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::BadPem {
            what,
            path: path.to_owned(),
            message: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            what,
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read("client key", path)?;
    // The parser's error text never includes key bytes, only what was malformed.
    rustls_pemfile::private_key(&mut pem.as_slice())
        .map_err(|e| TlsError::BadPem {
            what: "client key",
            path: path.to_owned(),
            message: e.to_string(),
        })?
        .ok_or_else(|| TlsError::NoKey {
            path: path.to_owned(),
        })
}

/// The hub's trust anchors: only `hub.ca`.
pub fn hub_roots(hub: &HubConfig) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for ca in certs("hub CA", &hub.ca)? {
        roots.add(ca).map_err(|e| TlsError::BadCa {
            path: hub.ca.clone(),
            message: e.to_string(),
        })?;
    }
    Ok(roots)
}

/// rustls' WebPKI verification of the hub (chain to `hub.ca`, name, signatures by the crypto
/// provider), judged at `max(system clock, time floor)` instead of the system clock alone: a
/// device whose clock reset to 1970 still accepts the hub's certificate, and one whose clock
/// is right changes nothing.
#[derive(Debug)]
pub struct FloorVerifier {
    inner: Arc<WebPkiServerVerifier>,
    floor: Arc<TimeFloor>,
}

impl FloorVerifier {
    pub fn new(roots: RootCertStore, floor: Arc<TimeFloor>) -> Result<Self, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self { inner, floor })
    }
}

impl ServerCertVerifier for FloorVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            self.floor.unix_time(now),
        )
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Replaces `config`'s hub verification with [`FloorVerifier`] (same roots).
pub fn use_time_floor(
    config: &mut ClientConfig,
    hub: &HubConfig,
    floor: Arc<TimeFloor>,
) -> Result<(), TlsError> {
    let verifier =
        FloorVerifier::new(hub_roots(hub)?, floor).map_err(|message| TlsError::BadCa {
            path: hub.ca.clone(),
            message,
        })?;
    config
        .dangerous()
        .set_certificate_verifier(Arc::new(verifier));
    Ok(())
}

/// The same server verification without a client certificate: for enrollment, which is how
/// a device gets its certificate in the first place.
pub fn anonymous_config(
    hub: &HubConfig,
    floor: Arc<TimeFloor>,
) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::BadCa {
            path: hub.ca.clone(),
            message: e.to_string(),
        })?
        .with_root_certificates(hub_roots(hub)?)
        .with_no_client_auth();
    use_time_floor(&mut config, hub, floor)?;
    Ok(Arc::new(config))
}

/// `outpost-agent --check`: with `[hub] cert/key`, loads them as the uploader will; with
/// `[identity]`, loads the hub CA and, if a certificate was already issued, parses it (the
/// key is not opened: `--check` must not create a TPM key).
pub fn check(config: &Config) -> Result<(), TlsError> {
    let Some(hub) = &config.hub else {
        return Ok(());
    };
    if hub.key.is_some() {
        return client_config(hub).map(drop);
    }
    hub_roots(hub)?;
    if hub.cert.exists() {
        certs("client certificate", &hub.cert)?;
    }
    Ok(())
}

/// The client configuration from `[hub] cert` and `key` files.
pub fn client_config(hub: &HubConfig) -> Result<Arc<ClientConfig>, TlsError> {
    let Some(key_path) = &hub.key else {
        return Err(TlsError::KeyFromIdentity);
    };
    let roots = hub_roots(hub)?;
    let chain = certs("client certificate", &hub.cert)?;
    let key = private_key(key_path)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::BadIdentity {
            cert: hub.cert.clone(),
            key: key_path.clone(),
            message: e.to_string(),
        })?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(|e| TlsError::BadIdentity {
            cert: hub.cert.clone(),
            key: key_path.clone(),
            message: e.to_string(),
        })?;
    Ok(Arc::new(config))
}

#[cfg(test)]
mod floor_tests {
    use super::*;
    use rustls::client::danger::ServerCertVerifier;

    /// A CA and a server certificate for `hub.test` valid 2027-01-01 to 2028-01-01.
    fn hub_pki() -> (RootCertStore, CertificateDer<'static>) {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.not_before = rcgen::date_time_ymd(2020, 1, 1);
        ca.not_after = rcgen::date_time_ymd(2040, 1, 1);
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(vec!["hub.test".into()]).unwrap();
        p.not_before = rcgen::date_time_ymd(2027, 1, 1);
        p.not_after = rcgen::date_time_ymd(2028, 1, 1);
        let leaf = p.signed_by(&key, &issuer).unwrap();
        let mut roots = RootCertStore::empty();
        roots.add(ca_cert.der().clone()).unwrap();
        (roots, leaf.der().clone())
    }

    fn at(secs: u64) -> UnixTime {
        UnixTime::since_unix_epoch(std::time::Duration::from_secs(secs))
    }

    #[test]
    fn clock_behind_the_floor_verifies_at_the_floor() {
        let (roots, leaf) = hub_pki();
        let dir = tempfile::tempdir().unwrap();
        let name = ServerName::try_from("hub.test").unwrap();
        let mid_2027: i64 = 1_814_400_000; // 2027-07-01
        let floor = Arc::new(TimeFloor::load(dir.path().join("f"), mid_2027 * 1000));
        let v = FloorVerifier::new(roots.clone(), floor.clone()).unwrap();
        // The system clock says 1970: the floor (mid 2027) is used, the certificate is valid.
        v.verify_server_cert(&leaf, &[], &name, &[], at(5)).unwrap();
        assert!(floor.warned());
        // A correct clock past the expiry still fails: the floor only ever moves time forward.
        let e = v
            .verify_server_cert(&leaf, &[], &name, &[], at(1_900_000_000))
            .unwrap_err();
        assert!(e.to_string().contains("expired"), "{e}");
        // Without a useful floor, a 1970 clock makes it "not valid yet".
        let low = Arc::new(TimeFloor::load(dir.path().join("g"), 0));
        let v = FloorVerifier::new(roots, low).unwrap();
        let e = v
            .verify_server_cert(&leaf, &[], &name, &[], at(5))
            .unwrap_err();
        assert!(e.to_string().contains("not valid yet"), "{e}");
        // The name and chain are still checked.
        let other = ServerName::try_from("evil.test").unwrap();
        assert!(v
            .verify_server_cert(&leaf, &[], &other, &[], at(mid_2027 as u64))
            .is_err());
    }
}

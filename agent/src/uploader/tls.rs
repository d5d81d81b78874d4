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

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

use crate::config::{Config, HubConfig};

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

/// The same server verification without a client certificate: for enrollment, which is how
/// a device gets its certificate in the first place.
pub fn anonymous_config(hub: &HubConfig) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::BadCa {
            path: hub.ca.clone(),
            message: e.to_string(),
        })?
        .with_root_certificates(hub_roots(hub)?)
        .with_no_client_auth();
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

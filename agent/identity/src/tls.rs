//! rustls client authentication with a [`KeyBackend`]: the handshake signature is made by
//! the backend (the TPM), rustls never sees a private key.

use std::sync::Arc;

use rustls::client::ResolvesClientCert;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, SubjectPublicKeyInfoDer};
use rustls::sign::{CertifiedKey, Signer, SigningKey};
use rustls::{ClientConfig, RootCertStore, SignatureAlgorithm, SignatureScheme};

use crate::{IdentityError, KeyBackend};

/// The only scheme a P-256 key can serve: TLS 1.3 binds curve and hash, and we sign SHA-256.
const SCHEME: SignatureScheme = SignatureScheme::ECDSA_NISTP256_SHA256;

/// A rustls `SigningKey` whose signatures come from a [`KeyBackend`].
#[derive(Debug, Clone)]
pub struct BackendSigningKey {
    backend: Arc<dyn KeyBackend>,
}

impl BackendSigningKey {
    /// Wrap a backend.
    pub fn new(backend: Arc<dyn KeyBackend>) -> Self {
        BackendSigningKey { backend }
    }
}

impl SigningKey for BackendSigningKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        if offered.contains(&SCHEME) {
            let signer = BackendSigner {
                backend: Arc::clone(&self.backend),
            };
            Some(Box::new(signer))
        } else {
            // rustls then sends an empty Certificate and the hub rejects us: say why.
            tracing::warn!(
                ?offered,
                "peer does not accept ecdsa_secp256r1_sha256 signatures"
            );
            None
        }
    }

    fn public_key(&self) -> Option<SubjectPublicKeyInfoDer<'_>> {
        // Lets CertifiedKey::keys_match compare the certificate with the backend key.
        Some(SubjectPublicKeyInfoDer::from(
            self.backend.public_key_spki_der(),
        ))
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        SignatureAlgorithm::ECDSA
    }
}

#[derive(Debug)]
struct BackendSigner {
    backend: Arc<dyn KeyBackend>,
}

impl Signer for BackendSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        // rustls hands over the unhashed message; the backend hashes with SHA-256.
        self.backend
            .sign_sha256(message)
            .map_err(|e| rustls::Error::General(format!("client key: {e}")))
    }

    fn scheme(&self) -> SignatureScheme {
        SCHEME
    }
}

/// Always presents the device certificate whose key is the backend key.
#[derive(Debug)]
pub struct BackendCertResolver {
    certified: Arc<CertifiedKey>,
}

impl BackendCertResolver {
    /// Pair `chain` (leaf first) with the backend key; fails if the leaf certifies another key.
    pub fn new(
        backend: Arc<dyn KeyBackend>,
        chain: Vec<CertificateDer<'static>>,
    ) -> Result<Self, IdentityError> {
        if chain.is_empty() {
            return Err(IdentityError::BadCertificate("no certificate".into()));
        }
        let certified = CertifiedKey::new(chain, Arc::new(BackendSigningKey::new(backend)));
        certified.keys_match().map_err(|e| {
            IdentityError::BadCertificate(format!("leaf does not match the device key: {e}"))
        })?;
        Ok(BackendCertResolver {
            certified: Arc::new(certified),
        })
    }
}

impl ResolvesClientCert for BackendCertResolver {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        // The scheme check happens in choose_scheme, which logs when it fails.
        Some(Arc::clone(&self.certified))
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// Parse a PEM certificate chain (leaf first); non-certificate PEM sections are skipped.
pub fn parse_cert_chain_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, IdentityError> {
    let chain = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| IdentityError::BadCertificate(format!("bad PEM: {e}")))?;
    if chain.is_empty() {
        return Err(IdentityError::BadCertificate(
            "no CERTIFICATE block in PEM".into(),
        ));
    }
    Ok(chain)
}

/// The client configuration for every hub connection: ring provider, TLS 1.3 and 1.2,
/// server verified against `roots`, client authenticated with `cert_chain_pem` + the backend.
pub fn client_config(
    backend: Arc<dyn KeyBackend>,
    cert_chain_pem: &[u8],
    roots: impl Into<Arc<RootCertStore>>,
) -> Result<ClientConfig, IdentityError> {
    let chain = parse_cert_chain_pem(cert_chain_pem)?;
    let resolver = BackendCertResolver::new(backend, chain)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(IdentityError::Tls)?
        .with_root_certificates(roots)
        .with_client_cert_resolver(Arc::new(resolver));
    Ok(config)
}

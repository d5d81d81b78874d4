//! Certificate signing requests signed by a [`KeyBackend`] (for enrollment and renewal).

use std::sync::Mutex;

use rcgen::{CertificateParams, DnType, PublicKeyData, SignatureAlgorithm, PKCS_ECDSA_P256_SHA256};

use crate::{ecdsa, IdentityError, KeyBackend};

/// An rcgen key whose signatures come from a [`KeyBackend`].
pub struct RcgenKey<'a> {
    backend: &'a dyn KeyBackend,
    /// rcgen wants the raw public key (uncompressed SEC1 point), not the SPKI.
    sec1: Vec<u8>,
    /// rcgen's signing error has no payload; keep ours to return it from `make_csr`.
    last_error: Mutex<Option<IdentityError>>,
}

impl<'a> RcgenKey<'a> {
    /// Wrap a backend; fails if its public key is not P-256.
    pub fn new(backend: &'a dyn KeyBackend) -> Result<Self, IdentityError> {
        Ok(RcgenKey {
            backend,
            sec1: ecdsa::sec1_from_spki(backend.public_key_spki_der())?,
            last_error: Mutex::new(None),
        })
    }

    /// The backend error behind the last `rcgen::Error::RemoteKeyError`, if any.
    pub fn take_error(&self) -> Option<IdentityError> {
        self.last_error.lock().ok().and_then(|mut e| e.take())
    }
}

impl PublicKeyData for RcgenKey<'_> {
    fn der_bytes(&self) -> &[u8] {
        &self.sec1
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &PKCS_ECDSA_P256_SHA256
    }
}

impl rcgen::SigningKey for RcgenKey<'_> {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        self.backend.sign_sha256(msg).map_err(|e| {
            if let Ok(mut slot) = self.last_error.lock() {
                *slot = Some(e);
            }
            rcgen::Error::RemoteKeyError
        })
    }
}

/// A PEM CSR with subject `CN=common_name`, signed by the backend key.
pub fn make_csr(backend: &dyn KeyBackend, common_name: &str) -> Result<String, IdentityError> {
    if common_name.is_empty() {
        return Err(IdentityError::Csr("empty common name".into()));
    }
    let key = RcgenKey::new(backend)?;
    let mut params = CertificateParams::new(Vec::<String>::new())
        .map_err(|e| IdentityError::Csr(e.to_string()))?;
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    let csr = params.serialize_request(&key).map_err(|e| {
        key.take_error()
            .unwrap_or(IdentityError::Csr(e.to_string()))
    })?;
    csr.pem().map_err(|e| IdentityError::Csr(e.to_string()))
}

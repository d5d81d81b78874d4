//! The trusted signing CAs (RAUC's `[keyring] path=`): a PEM bundle of certificates.

use rustls_pki_types::CertificateDer;

/// Why a keyring cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error("keyring PEM is malformed: {0}")]
    Pem(#[from] std::io::Error),
    #[error("keyring contains no certificate")]
    Empty,
    #[error("keyring certificate #{index} is not a usable trust anchor: {reason}")]
    BadCertificate { index: usize, reason: String },
}

/// Trust anchors used to verify bundle signers.
#[derive(Clone, Debug)]
pub struct Keyring {
    certs: Vec<CertificateDer<'static>>,
}

impl Keyring {
    /// Loads every `CERTIFICATE` block of a PEM bundle; other PEM blocks are ignored.
    pub fn from_pem(pem: &[u8]) -> Result<Self, KeyringError> {
        let mut reader = pem;
        let certs = rustls_pemfile::certs(&mut reader).collect::<Result<Vec<_>, _>>()?;
        Self::from_der(certs)
    }

    /// Uses already-decoded DER certificates as trust anchors.
    pub fn from_der(certs: Vec<CertificateDer<'static>>) -> Result<Self, KeyringError> {
        if certs.is_empty() {
            return Err(KeyringError::Empty);
        }
        for (index, cert) in certs.iter().enumerate() {
            webpki::anchor_from_trusted_cert(cert).map_err(|e| KeyringError::BadCertificate {
                index,
                reason: format!("{e:?}"),
            })?;
        }
        Ok(Keyring { certs })
    }

    /// The anchor certificates in DER.
    pub fn certificates(&self) -> &[CertificateDer<'static>] {
        &self.certs
    }
}

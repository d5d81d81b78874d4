//! Why evidence was not accepted. The hub maps each variant to an enrollment error code.

/// An attestation check failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AttestError {
    /// Bytes that do not parse as the TPM structure they claim to be.
    #[error("{what} is malformed: {reason}")]
    Malformed { what: &'static str, reason: String },
    /// A well-formed key or structure of a shape we do not accept (algorithm, attributes).
    #[error("{what} is not acceptable: {reason}")]
    Unacceptable { what: &'static str, reason: String },
    /// The EK is neither certified by a trusted manufacturer CA nor on the allowlist.
    #[error("endorsement key not trusted: {0}")]
    EkUntrusted(String),
    /// Well-formed evidence that does not prove what it must (wrong secret, signature,
    /// nonce, or a certified key other than the CSR's).
    #[error("attestation failed: {0}")]
    ProofFailed(String),
    /// A cryptographic primitive failed on our side (e.g. RSA encryption of the seed).
    #[error("{0}")]
    Crypto(String),
}

impl AttestError {
    pub(crate) fn unacceptable(what: &'static str, reason: impl Into<String>) -> Self {
        AttestError::Unacceptable {
            what,
            reason: reason.into(),
        }
    }
}

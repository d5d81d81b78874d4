//! The crate's one error type. Messages name files and TPM operations, never key material.

use std::fmt;
use std::path::PathBuf;

/// Everything that can go wrong while opening a key, signing, or building TLS/CSR objects.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The TCTI string is malformed or the TPM behind it cannot be opened.
    #[error("cannot open the TPM through TCTI {tcti:?}: {detail}")]
    TpmUnavailable { tcti: String, detail: String },

    /// A TPM command failed.
    #[error("TPM {op} failed ({kind}): {detail}")]
    Tpm {
        op: &'static str,
        kind: TpmErrorKind,
        detail: String,
    },

    /// The stored TPM key blob is malformed or not the kind of key this crate creates.
    #[error("TPM key blob {path}: {reason}")]
    BadKeyBlob { path: PathBuf, reason: String },

    /// A software key file could not be parsed (the reason never quotes the file).
    #[error("key file {path}: {reason}")]
    BadKeyFile { path: PathBuf, reason: String },

    /// A private key file that group or other may access: it may already have leaked.
    #[error(
        "key file {path} has mode {mode:03o}: group/other must have no access; \
         refusing to use it (check who could read it, then `chmod 600` it or replace the key)"
    )]
    InsecurePermissions { path: PathBuf, mode: u32 },

    /// Reading or writing a key file failed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A public key that is not an uncompressed P-256 point / SPKI.
    #[error("invalid P-256 public key: {0}")]
    BadPublicKey(String),

    /// The backend produced a signature that is not a valid P-256 (r, s) pair.
    #[error("invalid ECDSA signature from the key backend: {0}")]
    BadSignature(String),

    /// The certificate chain is empty, not PEM, or its leaf is not for the backend key.
    #[error("client certificate chain: {0}")]
    BadCertificate(String),

    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Tls(#[source] rustls::Error),

    /// The CSR could not be built (bad subject or an rcgen failure).
    #[error("CSR: {0}")]
    Csr(String),
}

/// Coarse class of a TPM failure, so callers can react without parsing TPM response codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TpmErrorKind {
    /// Dictionary-attack lockout. Our keys are noDA, so this points at a foreign key or policy.
    Lockout,
    /// The TPM ran out of object or session slots (no resource manager in front of it?).
    OutOfMemory,
    /// The key blob does not belong to this TPM's storage hierarchy: another TPM, or the
    /// TPM was cleared. The identity is gone; the device must re-enroll with a new key.
    WrongTpm,
    /// The TPM or the TSS returned something we did not expect.
    Other,
}

impl fmt::Display for TpmErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TpmErrorKind::Lockout => "dictionary-attack lockout",
            TpmErrorKind::OutOfMemory => "out of TPM object memory",
            TpmErrorKind::WrongTpm => {
                "key blob does not belong to this TPM (other TPM, or TPM cleared)"
            }
            TpmErrorKind::Other => "other",
        })
    }
}

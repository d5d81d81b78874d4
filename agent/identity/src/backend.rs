//! The one trait every key backend implements, and how it reports its protection level.

use std::fmt;

use crate::{Attestor, IdentityError};

/// A P-256 signing key whose private half may live outside this process (e.g. in a TPM).
///
/// `Debug` is required because rustls' `SigningKey` needs it; implementations must print
/// where the key lives, never key material.
pub trait KeyBackend: Send + Sync + fmt::Debug {
    /// The public key as DER X.509 SubjectPublicKeyInfo (id-ecPublicKey, prime256v1).
    fn public_key_spki_der(&self) -> &[u8];

    /// ECDSA P-256 over SHA-256(`msg`); `msg` is unhashed. Returns a DER `ECDSA-Sig-Value`,
    /// the encoding both TLS (RFC 8446 §4.2.3) and X.509 expect.
    fn sign_sha256(&self, msg: &[u8]) -> Result<Vec<u8>, IdentityError>;

    /// Where the private key lives; reported at enrollment as `key_protection`.
    fn protection(&self) -> KeyProtection;

    /// The proof of where the key lives, for backends that have one (the TPM).
    fn attestor(&self) -> Option<&dyn Attestor> {
        None
    }
}

/// Where the private key lives: the value reported at enrollment, so the wire type is used
/// as is (`tpm`, `software`).
pub use outpost_proto::enroll::KeyProtection;

//! Proving to the hub that the device key lives in a genuine TPM: the device half of the
//! enrollment protocol whose hub half is `outpost-attest` (see its `evidence` module).
//!
//! Round one ([`Attestor::evidence`]): the EK certificate (NV) and public key, the SRK's
//! public area, a fresh attestation key (AK) made under the EK, and the device key's public
//! area. Round two ([`Attestor::answer`]): `TPM2_ActivateCredential` recovers the hub's secret
//! (only this TPM can), and the AK `TPM2_Certify`s the device key over the hub's nonce.

use std::fmt;

use crate::IdentityError;

/// Round-one evidence; every field is a marshalled TPM structure (TPMT_PUBLIC) or DER.
#[derive(Clone)]
pub struct TpmEvidence {
    /// The RSA-2048 EK certificate from NV 0x01c00002, DER; `None` if the TPM has none.
    pub ek_certificate: Option<Vec<u8>>,
    pub ek_public: Vec<u8>,
    pub srk_public: Vec<u8>,
    pub ak_public: Vec<u8>,
    pub key_public: Vec<u8>,
    /// The AK's private area, wrapped by the EK: only this TPM can load it again.
    pub(crate) ak_private: Vec<u8>,
}

impl fmt::Debug for TpmEvidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TpmEvidence")
            .field(
                "ek_certificate",
                &self.ek_certificate.as_ref().map(Vec::len),
            )
            .finish_non_exhaustive()
    }
}

/// Round-two answer.
#[derive(Clone)]
pub struct TpmAnswer {
    /// What ActivateCredential recovered: the hub's secret.
    pub secret: Vec<u8>,
    /// TPMS_ATTEST of the certify, marshalled.
    pub certify_info: Vec<u8>,
    /// TPMT_SIGNATURE by the AK over `certify_info`, marshalled.
    pub certify_signature: Vec<u8>,
}

impl fmt::Debug for TpmAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TpmAnswer").finish_non_exhaustive()
    }
}

/// A key backend that can prove where its key lives. Calls block on the TPM (an RSA EK
/// is re-created each round: up to seconds on a discrete TPM).
pub trait Attestor: Send + Sync {
    fn evidence(&self) -> Result<TpmEvidence, IdentityError>;

    /// Answers the hub's challenge: `id_object` and `encrypted_secret` are the MakeCredential
    /// halves (without TPM2B sizes), `nonce` the certify qualifying data (≤ 64 bytes).
    fn answer(
        &self,
        evidence: &TpmEvidence,
        id_object: &[u8],
        encrypted_secret: &[u8],
        nonce: &[u8],
    ) -> Result<TpmAnswer, IdentityError>;
}

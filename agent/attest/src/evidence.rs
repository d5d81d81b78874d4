//! The two rounds of TPM enrollment, as the hub runs them.
//!
//! Round one ([`challenge`]): the device sends its EK (certificate and TPMT_PUBLIC), its SRK,
//! an attestation key (AK) and its device key (TPMT_PUBLICs) with the CSR. The hub checks the
//! shapes, trusts the EK by [`EkPolicy`], binds the device key to the CSR's key, and wraps a
//! fresh secret for the EK and the AK's Name (MakeCredential). It also picks a nonce.
//!
//! Round two ([`verify_answer`]): the device returns the secret its TPM recovered
//! (ActivateCredential: only the TPM holding that EK, with that AK loaded, can do it) and a
//! TPM2_Certify of the device key by the AK over the nonce. Together: the AK lives in the
//! genuine TPM, and the AK says the device key is loaded in the same TPM, under a fixedTPM
//! storage key of the owner hierarchy, and is itself fixedTPM (generated there, never
//! exportable). So the CSR's key cannot be a copy on another machine.

use std::time::SystemTime;

use rand_core::{CryptoRng, RngCore};
use subtle::ConstantTimeEq;

use crate::certify::{verify_signature, CertifyInfo};
use crate::credential::{make_credential, Credential};
use crate::ek::{EkPolicy, TrustedEk};
use crate::public::{qualified_name_under_owner_primary, TpmPublic};
use crate::AttestError;

/// Round-one evidence, as the device sent it (marshalled TPM structures).
#[derive(Debug, Clone, Copy)]
pub struct Evidence<'a> {
    pub ek_certificate: Option<&'a [u8]>,
    pub ek_public: &'a [u8],
    pub srk_public: &'a [u8],
    pub ak_public: &'a [u8],
    pub key_public: &'a [u8],
}

/// What the hub keeps between the rounds (secret: never logged, never sent back).
#[derive(Clone)]
pub struct Pending {
    pub trusted: TrustedEk,
    ak: TpmPublic,
    key_name: Vec<u8>,
    key_qualified_name: Vec<u8>,
    secret: [u8; 32],
    pub nonce: [u8; 32],
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("trusted", &self.trusted)
            .finish_non_exhaustive()
    }
}

/// Round one: the credential to send, and what to keep.
pub fn challenge(
    policy: &EkPolicy,
    evidence: &Evidence<'_>,
    csr_spki_der: &[u8],
    now: SystemTime,
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<(Credential, Pending), AttestError> {
    let ek = TpmPublic::parse(evidence.ek_public, "endorsement key (TPMT_PUBLIC)")?;
    let srk = TpmPublic::parse(evidence.srk_public, "storage root key (TPMT_PUBLIC)")?;
    let ak = TpmPublic::parse(evidence.ak_public, "attestation key (TPMT_PUBLIC)")?;
    let key = TpmPublic::parse(evidence.key_public, "device key (TPMT_PUBLIC)")?;
    ak.check_attestation_key()?;
    key.check_device_key()?;
    srk.check_storage_root_key()?;
    let point = key.p256_point().unwrap_or_default();
    if p256_spki_der(&point) != csr_spki_der {
        return Err(AttestError::ProofFailed(
            "the CSR's key is not the TPM device key offered for certification".into(),
        ));
    }
    let trusted = policy.check(&ek, evidence.ek_certificate, now)?;

    let mut secret = [0u8; 32];
    let mut nonce = [0u8; 32];
    rng.fill_bytes(&mut secret);
    rng.fill_bytes(&mut nonce);
    let credential = make_credential(&ek, &ak.name(), &secret, rng)?;
    Ok((
        credential,
        Pending {
            trusted,
            key_name: key.name(),
            key_qualified_name: qualified_name_under_owner_primary(&srk, &key),
            ak,
            secret,
            nonce,
        },
    ))
}

/// Round two: the recovered secret and the certify evidence must all match.
pub fn verify_answer(
    pending: &Pending,
    secret: &[u8],
    certify_info: &[u8],
    certify_signature: &[u8],
) -> Result<(), AttestError> {
    if !bool::from(secret.ct_eq(&pending.secret)) {
        return Err(AttestError::ProofFailed(
            "the activated credential is wrong: the AK is not in the TPM that holds the EK".into(),
        ));
    }
    verify_signature(&pending.ak, certify_info, certify_signature)?;
    let info = CertifyInfo::parse(certify_info)?;
    if info.extra_data != pending.nonce {
        return Err(AttestError::ProofFailed(
            "the certify attestation is not over this challenge's nonce".into(),
        ));
    }
    if info.name != pending.key_name {
        return Err(AttestError::ProofFailed(
            "the certify attestation names another key than the device key".into(),
        ));
    }
    if info.qualified_name != pending.key_qualified_name {
        return Err(AttestError::ProofFailed(
            "the certified device key is not a child of the storage root key it was offered \
             with (loaded from outside the TPM?)"
                .into(),
        ));
    }
    Ok(())
}

/// DER SubjectPublicKeyInfo of an uncompressed P-256 point (id-ecPublicKey, prime256v1).
pub fn p256_spki_der(point: &[u8]) -> Vec<u8> {
    const PREFIX: [u8; 26] = [
        0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08,
        0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
    ];
    let mut out = PREFIX.to_vec();
    out.extend_from_slice(point);
    out
}

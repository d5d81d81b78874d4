//! TPM2_Certify evidence: the TPMS_ATTEST the TPM made (Part 2 §10.12.12) and the AK's
//! TPMT_SIGNATURE over it (§11.3.4).

use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED};

use crate::public::{TpmPublic, TPM_ALG_ECDSA, TPM_ALG_SHA256};
use crate::reader::Reader;
use crate::AttestError;

/// TPM_GENERATED_VALUE: a restricted key signs only data that does not start with it unless
/// the TPM produced the data itself.
pub const TPM_GENERATED_VALUE: u32 = 0xff54_4347;
/// TPM_ST_ATTEST_CERTIFY.
pub const TPM_ST_ATTEST_CERTIFY: u16 = 0x8017;

/// The parts of a certify attestation that enrollment checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertifyInfo {
    /// Qualified Name of the signing key (the AK).
    pub qualified_signer: Vec<u8>,
    /// Caller-supplied qualifying data: the hub's nonce.
    pub extra_data: Vec<u8>,
    /// Name of the certified object.
    pub name: Vec<u8>,
    /// Qualified Name of the certified object.
    pub qualified_name: Vec<u8>,
}

impl CertifyInfo {
    /// Parses a marshalled TPMS_ATTEST of type TPM_ST_ATTEST_CERTIFY.
    pub fn parse(bytes: &[u8]) -> Result<Self, AttestError> {
        let mut r = Reader::new(bytes, "certify attestation (TPMS_ATTEST)");
        if r.u32()? != TPM_GENERATED_VALUE {
            return Err(r.malformed("magic is not TPM_GENERATED_VALUE".into()));
        }
        let kind = r.u16()?;
        if kind != TPM_ST_ATTEST_CERTIFY {
            return Err(r.malformed(format!("type {kind:#06x} is not TPM_ST_ATTEST_CERTIFY")));
        }
        let qualified_signer = r.tpm2b()?.to_vec();
        let extra_data = r.tpm2b()?.to_vec();
        // TPMS_CLOCK_INFO (clock, resetCount, restartCount, safe) and firmwareVersion: not
        // used; the nonce carries freshness.
        r.u64()?;
        r.u32()?;
        r.u32()?;
        r.u8()?;
        r.u64()?;
        let name = r.tpm2b()?.to_vec();
        let qualified_name = r.tpm2b()?.to_vec();
        r.finish()?;
        Ok(CertifyInfo {
            qualified_signer,
            extra_data,
            name,
            qualified_name,
        })
    }
}

/// Verifies `signature` (a marshalled TPMT_SIGNATURE, ECDSA-SHA256) over `message` with the
/// P-256 key of `signer`.
pub fn verify_signature(
    signer: &TpmPublic,
    message: &[u8],
    signature: &[u8],
) -> Result<(), AttestError> {
    let mut r = Reader::new(signature, "certify signature (TPMT_SIGNATURE)");
    let alg = r.u16()?;
    let hash = r.u16()?;
    if alg != TPM_ALG_ECDSA || hash != TPM_ALG_SHA256 {
        return Err(r.malformed(format!("scheme {alg:#06x}/{hash:#06x} is not ECDSA-SHA256")));
    }
    let (sig_r, sig_s) = (r.tpm2b()?, r.tpm2b()?);
    r.finish()?;
    if sig_r.len() > 32 || sig_s.len() > 32 {
        return Err(AttestError::Malformed {
            what: "certify signature (TPMT_SIGNATURE)",
            reason: "r or s longer than 32 bytes".into(),
        });
    }
    let mut fixed = [0u8; 64];
    fixed[32 - sig_r.len()..32].copy_from_slice(sig_r);
    fixed[64 - sig_s.len()..].copy_from_slice(sig_s);
    let point = signer
        .p256_point()
        .ok_or_else(|| AttestError::unacceptable("attestation key", "not a P-256 key"))?;
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
        .verify(message, &fixed)
        .map_err(|_| {
            AttestError::ProofFailed(
                "the attestation key's signature over the certify attestation does not verify"
                    .into(),
            )
        })
}

//! Which endorsement keys the hub trusts: EK certificates that chain to a configured TPM
//! manufacturer CA, or EK public keys on an allowlist (by device id). The device id is derived
//! from the EK public key, so it is the same for every enrollment of the same TPM.

use std::collections::HashSet;
use std::time::{SystemTime, UNIX_EPOCH};

use rsa::pkcs8::EncodePublicKey;
use rustls_pki_types::{CertificateDer, SignatureVerificationAlgorithm, TrustAnchor, UnixTime};
use sha2::{Digest, Sha256};
use webpki::{EndEntityCert, KeyPurposeIdIter};

use crate::credential::rsa_public_key;
use crate::public::TpmPublic;
use crate::AttestError;

/// The hub's EK trust configuration.
#[derive(Debug, Default, Clone)]
pub struct EkPolicy {
    /// DER certificates of TPM manufacturer CAs (roots or intermediates; each is an anchor).
    ca_certs: Vec<Vec<u8>>,
    /// Device ids (hex SHA-256 of the EK's SubjectPublicKeyInfo) trusted without a certificate.
    allowlist: HashSet<String>,
}

/// How an EK came to be trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EkTrust {
    /// Its certificate chains to a configured manufacturer CA.
    Certificate,
    /// Its device id is on the allowlist.
    Allowlist,
}

impl EkTrust {
    pub fn as_str(&self) -> &'static str {
        match self {
            EkTrust::Certificate => "ek-certificate",
            EkTrust::Allowlist => "ek-allowlist",
        }
    }
}

/// A trusted EK: the device id it names and why it is trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedEk {
    pub device_id: String,
    pub trust: EkTrust,
}

impl EkPolicy {
    /// `ca_certs`: DER certificates; each must parse as a trust anchor. `allowlist`: hex
    /// SHA-256 device ids (case-insensitive).
    pub fn new(ca_certs: Vec<Vec<u8>>, allowlist: &[String]) -> Result<Self, AttestError> {
        for (i, der) in ca_certs.iter().enumerate() {
            webpki::anchor_from_trusted_cert(&CertificateDer::from(der.as_slice())).map_err(
                |e| AttestError::unacceptable("EK CA certificate", format!("#{}: {e}", i + 1)),
            )?;
        }
        let mut ids = HashSet::new();
        for id in allowlist {
            let id = id.trim().to_ascii_lowercase();
            if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(AttestError::unacceptable(
                    "EK allowlist entry",
                    format!("{id:?} is not a hex SHA-256"),
                ));
            }
            ids.insert(id);
        }
        Ok(EkPolicy {
            ca_certs,
            allowlist: ids,
        })
    }

    /// Trusts nothing: TPM enrollment is impossible until a CA or an allowlist is configured.
    pub fn is_empty(&self) -> bool {
        self.ca_certs.is_empty() && self.allowlist.is_empty()
    }

    /// Decides whether `ek` is a genuine TPM's EK. `ek_cert` (DER, from the TPM's NV) must
    /// certify exactly `ek`'s public key when given.
    pub fn check(
        &self,
        ek: &TpmPublic,
        ek_cert: Option<&[u8]>,
        now: SystemTime,
    ) -> Result<TrustedEk, AttestError> {
        ek.check_endorsement_key()?;
        let device_id = ek_device_id(ek)?;
        let chain = match ek_cert {
            Some(der) => match self.verify_chain(der, now) {
                Ok(spki) => {
                    if spki != ek_spki_der(ek)? {
                        return Err(AttestError::ProofFailed(
                            "the EK certificate certifies another key than the TPM's EK".into(),
                        ));
                    }
                    return Ok(TrustedEk {
                        device_id,
                        trust: EkTrust::Certificate,
                    });
                }
                Err(e) => e,
            },
            None => "the TPM has no EK certificate".to_owned(),
        };
        if self.allowlist.contains(&device_id) {
            return Ok(TrustedEk {
                device_id,
                trust: EkTrust::Allowlist,
            });
        }
        Err(AttestError::EkUntrusted(format!(
            "{chain}, and EK {device_id} is not on the allowlist"
        )))
    }

    /// Verifies the EK certificate's chain; returns its SubjectPublicKeyInfo DER.
    fn verify_chain(&self, der: &[u8], now: SystemTime) -> Result<Vec<u8>, String> {
        let cert = CertificateDer::from(der);
        let ee = EndEntityCert::try_from(&cert)
            .map_err(|e| format!("the EK certificate does not parse ({e})"))?;
        let intermediates: Vec<CertificateDer<'_>> = self
            .ca_certs
            .iter()
            .map(|c| CertificateDer::from(c.as_slice()))
            .collect();
        let anchors: Vec<TrustAnchor<'_>> = intermediates
            .iter()
            .filter_map(|c| webpki::anchor_from_trusted_cert(c).ok())
            .collect();
        let unix = UnixTime::since_unix_epoch(now.duration_since(UNIX_EPOCH).unwrap_or_default());
        ee.verify_for_usage(
            EK_SIGNATURE_ALGS,
            &anchors,
            &intermediates,
            unix,
            AnyEku,
            None,
            None,
        )
        .map_err(|e| match e {
            // A CA of the same name that did not sign it is the same verdict.
            webpki::Error::UnknownIssuer | webpki::Error::InvalidSignatureForPublicKey => {
                "the EK certificate was not issued by a trusted TPM manufacturer CA".to_owned()
            }
            other => format!("the EK certificate does not verify ({other})"),
        })?;
        Ok(ee.subject_public_key_info().as_ref().to_vec())
    }
}

/// The device id of a TPM: lowercase hex SHA-256 of its EK's DER SubjectPublicKeyInfo (the
/// same as `openssl x509 -in ek.pem -pubkey -noout | openssl pkey -pubin -outform DER |
/// sha256sum`).
pub fn ek_device_id(ek: &TpmPublic) -> Result<String, AttestError> {
    let spki = ek_spki_der(ek)?;
    Ok(Sha256::digest(&spki)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

fn ek_spki_der(ek: &TpmPublic) -> Result<Vec<u8>, AttestError> {
    let der = rsa_public_key(ek)?
        .to_public_key_der()
        .map_err(|e| AttestError::Crypto(format!("encoding the EK public key: {e}")))?;
    Ok(der.as_bytes().to_vec())
}

/// The EK certificate's EKU (tcg-kp-EKCertificate, when present) is not required: the chain
/// to a manufacturer CA and the key match with the TPM's own EK carry the trust, and webpki
/// applies the same check to every certificate in the path, where CAs carry other EKUs.
struct AnyEku;

impl webpki::ExtendedKeyUsageValidator for AnyEku {
    fn validate(&self, iter: KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        for id in iter {
            id?;
        }
        Ok(())
    }
}

/// Manufacturer CAs sign with RSA or ECDSA.
static EK_SIGNATURE_ALGS: &[&dyn SignatureVerificationAlgorithm] = &[
    webpki::ring::ECDSA_P256_SHA256,
    webpki::ring::ECDSA_P256_SHA384,
    webpki::ring::ECDSA_P384_SHA256,
    webpki::ring::ECDSA_P384_SHA384,
    webpki::ring::RSA_PKCS1_2048_8192_SHA256,
    webpki::ring::RSA_PKCS1_2048_8192_SHA384,
    webpki::ring::RSA_PKCS1_2048_8192_SHA512,
    webpki::ring::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
    webpki::ring::RSA_PSS_2048_8192_SHA384_LEGACY_KEY,
    webpki::ring::RSA_PSS_2048_8192_SHA512_LEGACY_KEY,
];

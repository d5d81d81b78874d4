//! Enrollment protocol v1: a device trades a bootstrap token and a CSR for a client certificate.
//!
//! **This module is a protocol boundary** between `outpost-agent` and `outpost-hub`: changing a
//! type here changes what devices in the field send. Add fields only as optional ones
//! (`#[serde(default)]`), never rename or remove one; a v1 hub ignores fields it does not know,
//! so a later agent can add attestation evidence without breaking an older hub.
//!
//! Flow (`POST /v1/enroll`, JSON, over TLS **without** a client certificate):
//! 1. The agent sends [`EnrollRequest`]: the token it was given, a PKCS#10 CSR signed by its
//!    device key, and where that key lives ([`KeyProtection`]).
//! 2. The hub checks the token (known, not expired, uses left), verifies the CSR signature,
//!    derives the device id ([`device_id_from_spki`]) and issues a clientAuth certificate from
//!    its fleet CA whose subject CN is that id.
//! 3. The hub answers `200` with [`EnrollResponse`], or a 4xx/5xx with [`EnrollError`].
//!
//! Renewal (`POST /v1/renew`, JSON, over mTLS **with** the device's current, unexpired
//! certificate): the agent sends [`RenewRequest`], a new CSR signed by the **same** key; the
//! hub requires that key to equal the presented certificate's, keeps the device id (the
//! presented certificate's CN) and answers `200` with an [`EnrollResponse`] (a new certificate
//! with the hub's configured lifetime) or an [`EnrollError`]. An expired certificate cannot
//! renew: the device needs a new token.
//!
//! TPM keys (`key_protection: tpm`) must prove where they live first, in two rounds:
//! 1. `POST /v1/enroll/challenge` with [`ChallengeRequest`]: the token, the CSR and
//!    [`TpmEvidence`] (EK certificate and public key, SRK, a fresh attestation key (AK), the
//!    device key's public area). The hub checks the token (without using it up), the EK
//!    against its TPM-manufacturer CAs or EK allowlist, binds the device key to the CSR, and
//!    answers [`Challenge`]: a MakeCredential for the EK and the AK's Name, and a nonce.
//! 2. `POST /v1/enroll` with the same token and CSR and [`TpmActivation`]: the secret the TPM
//!    recovered (ActivateCredential) and a TPM2_Certify of the device key by the AK over the
//!    nonce. Only then is the token used and the certificate issued; the device id is then the
//!    hex SHA-256 of the EK's SubjectPublicKeyInfo (stable across re-enrollment and reflashing).
//!
//! A challenge lives for [`CHALLENGE_TTL_SECS`] and is good for one answer.
//! Binary TPM structures travel as lowercase hex.

use serde::{Deserialize, Serialize};

/// The hub's enrollment endpoint.
pub const ENROLL_PATH: &str = "/v1/enroll";

/// The hub's renewal endpoint (mTLS only).
pub const RENEW_PATH: &str = "/v1/renew";

/// The hub's first round of TPM enrollment.
pub const ENROLL_CHALLENGE_PATH: &str = "/v1/enroll/challenge";

/// How long a [`Challenge`] can be answered.
pub const CHALLENGE_TTL_SECS: u64 = 300;

/// Largest enrollment request body a hub accepts (a CSR is well under 2 KiB).
pub const MAX_ENROLL_REQUEST_BYTES: usize = 64 * 1024;

/// Where the device's private key lives, as the device reports it. In v1 this is the device's
/// claim, not a proof: EK/AK attestation will make `tpm` verifiable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyProtection {
    /// Generated in a TPM 2.0, not exportable.
    Tpm,
    /// A key in a file: whoever reads the file can copy the identity.
    Software,
}

impl KeyProtection {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyProtection::Tpm => "tpm",
            KeyProtection::Software => "software",
        }
    }

    /// Parses the wire name (`tpm`, `software`).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "tpm" => Some(KeyProtection::Tpm),
            "software" => Some(KeyProtection::Software),
            _ => None,
        }
    }
}

impl std::fmt::Display for KeyProtection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `POST /v1/enroll` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollRequest {
    /// The bootstrap token from `outpost-hub token create`. A secret: never logged.
    pub token: String,
    /// PKCS#10 certificate signing request, PEM (`-----BEGIN CERTIFICATE REQUEST-----`),
    /// signed by the device key. Its subject is ignored: the hub names the device.
    pub csr: String,
    /// Where the CSR's key lives.
    pub key_protection: KeyProtection,
    /// Round two of TPM enrollment; required when `key_protection` is `tpm`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestation: Option<TpmActivation>,
}

/// The TPM's evidence for round one (hex of marshalled TPM structures).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TpmEvidence {
    /// DER of the RSA-2048 EK certificate from NV index 0x01c00002; absent if the TPM has
    /// none (then only an EK allowlist can admit it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ek_certificate: Option<String>,
    /// TPMT_PUBLIC of the EK (TCG default template L-1, RSA-2048).
    pub ek_public: String,
    /// TPMT_PUBLIC of the storage root key the device key was created under.
    pub srk_public: String,
    /// TPMT_PUBLIC of the attestation key (restricted ECDSA P-256 signing key under the EK).
    pub ak_public: String,
    /// TPMT_PUBLIC of the device key (the CSR's key).
    pub key_public: String,
}

/// `POST /v1/enroll/challenge` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChallengeRequest {
    /// The bootstrap token (checked, not used up). A secret: never logged.
    pub token: String,
    /// The CSR that round two will send again.
    pub csr: String,
    pub tpm: TpmEvidence,
}

/// `200` answer to a [`ChallengeRequest`] (hex fields).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    pub challenge_id: String,
    /// TPM2B_ID_OBJECT contents (without the size) for ActivateCredential.
    pub credential_blob: String,
    /// TPM2B_ENCRYPTED_SECRET contents (without the size) for ActivateCredential.
    pub encrypted_secret: String,
    /// Qualifying data for TPM2_Certify.
    pub nonce: String,
}

/// Round two of TPM enrollment, inside [`EnrollRequest::attestation`] (hex fields).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TpmActivation {
    pub challenge_id: String,
    /// What ActivateCredential returned. A secret: never logged.
    pub secret: String,
    /// TPMS_ATTEST of TPM2_Certify(device key, AK, nonce).
    pub certify_info: String,
    /// TPMT_SIGNATURE of the AK over `certify_info`.
    pub certify_signature: String,
}

/// `POST /v1/renew` body. The device is the presented client certificate's CN; nothing here
/// names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenewRequest {
    /// PKCS#10 CSR (PEM) signed by the key of the presented client certificate.
    pub csr: String,
}

/// `200` answer to an enrollment or a renewal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollResponse {
    /// The device id the certificate names (its subject CN).
    pub device_id: String,
    /// PEM certificates, leaf first, then the issuing fleet CA.
    pub certificate_chain: String,
}

/// Why an enrollment was refused; the agent uses it to tell "fix the token" from "retry".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnrollErrorCode {
    /// Unknown token (never issued, or mistyped). `401`.
    TokenUnknown,
    /// The token's expiry has passed. `401`.
    TokenExpired,
    /// The token had no uses left. `401`.
    TokenUsedUp,
    /// The CSR does not parse, its signature does not verify, or its key is not P-256. `400`.
    BadCsr,
    /// The body is not an [`EnrollRequest`]. `400`.
    BadRequest,
    /// This device id was revoked by an operator. `403`.
    DeviceRevoked,
    /// The hub refuses software keys (`enroll.refuse_software_keys`). `403`.
    SoftwareKeyRefused,
    /// The hub cannot enroll devices (no `[enroll]` section). `503`.
    NotConfigured,
    /// Something on the hub failed; retry later. `500`.
    Internal,
    /// Renewal without a verified client certificate. `401`.
    CertificateRequired,
    /// Renewal with a certificate outside its validity (by the hub's clock). `401`.
    CertificateExpired,
    /// Renewal whose CSR key is not the presented certificate's key. `403`.
    KeyMismatch,
    /// A `tpm` key without attestation (round one first). `400`.
    AttestationRequired,
    /// TPM evidence that does not parse or has a shape the hub does not accept. `400`.
    BadEvidence,
    /// The EK is not from a trusted TPM manufacturer CA nor on the allowlist. `403`.
    EkUntrusted,
    /// The evidence does not prove the CSR key lives in that TPM. `403`.
    AttestationFailed,
    /// Unknown, expired or already answered challenge: start again with round one. `401`.
    ChallengeExpired,
}

/// Error body of `/v1/enroll`: the usual one-line `error` plus a machine-readable `code`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollError {
    pub error: String,
    pub code: EnrollErrorCode,
}

/// The device id of a software-key device: lowercase hex SHA-256 of the DER
/// SubjectPublicKeyInfo of the device key. (A TPM device's id is the same function of its
/// EK's public key, so it survives a new device key.)
pub fn device_id_from_spki(spki_der: &[u8]) -> String {
    crate::sha256_hex(spki_der)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_format_is_stable() {
        let req = EnrollRequest {
            token: "t".into(),
            csr: "pem".into(),
            key_protection: KeyProtection::Software,
            attestation: None,
        };
        assert_eq!(
            serde_json::to_string(&req).unwrap(),
            r#"{"token":"t","csr":"pem","key_protection":"software"}"#
        );
        // Unknown (future) fields are ignored by a v1 reader.
        let parsed: EnrollRequest = serde_json::from_str(
            r#"{"token":"t","csr":"pem","key_protection":"tpm","ek_cert":"x"}"#,
        )
        .unwrap();
        assert_eq!(parsed.key_protection, KeyProtection::Tpm);
        assert!(serde_json::from_str::<EnrollRequest>(
            r#"{"token":"t","csr":"pem","key_protection":"hsm"}"#
        )
        .is_err());
        let err = EnrollError {
            error: "token expired".into(),
            code: EnrollErrorCode::TokenExpired,
        };
        assert_eq!(
            serde_json::to_string(&err).unwrap(),
            r#"{"error":"token expired","code":"token_expired"}"#
        );
    }

    #[test]
    fn renew_wire_format() {
        let req = RenewRequest { csr: "pem".into() };
        assert_eq!(serde_json::to_string(&req).unwrap(), r#"{"csr":"pem"}"#);
        let err = EnrollError {
            error: "x".into(),
            code: EnrollErrorCode::KeyMismatch,
        };
        assert_eq!(
            serde_json::to_string(&err).unwrap(),
            r#"{"error":"x","code":"key_mismatch"}"#
        );
    }

    #[test]
    fn device_id_is_hex_sha256_of_the_spki() {
        let id = device_id_from_spki(b"abc");
        assert_eq!(
            id,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            KeyProtection::parse(KeyProtection::Tpm.as_str()),
            Some(KeyProtection::Tpm)
        );
    }
}

#[cfg(test)]
mod attestation_wire_tests {
    use super::*;

    #[test]
    fn tpm_rounds_wire_format() {
        let ev = TpmEvidence {
            ek_certificate: None,
            ek_public: "01".into(),
            srk_public: "02".into(),
            ak_public: "03".into(),
            key_public: "04".into(),
        };
        assert_eq!(
            serde_json::to_string(&ev).unwrap(),
            r#"{"ek_public":"01","srk_public":"02","ak_public":"03","key_public":"04"}"#
        );
        let req = EnrollRequest {
            token: "t".into(),
            csr: "c".into(),
            key_protection: KeyProtection::Tpm,
            attestation: Some(TpmActivation {
                challenge_id: "id".into(),
                secret: "aa".into(),
                certify_info: "bb".into(),
                certify_signature: "cc".into(),
            }),
        };
        let json = serde_json::to_string(&req).unwrap();
        assert_eq!(
            json,
            r#"{"token":"t","csr":"c","key_protection":"tpm","attestation":{"challenge_id":"id","secret":"aa","certify_info":"bb","certify_signature":"cc"}}"#
        );
        assert_eq!(serde_json::from_str::<EnrollRequest>(&json).unwrap(), req);
        assert_eq!(
            serde_json::to_string(&EnrollErrorCode::ChallengeExpired).unwrap(),
            r#""challenge_expired""#
        );
    }
}

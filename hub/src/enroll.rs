//! `POST /v1/enroll` (protocol v1, `outpost_proto::enroll`): a device trades a bootstrap token
//! and a CSR signed by its key for a clientAuth certificate from the fleet CA.
//!
//! A TPM device first proves where its key lives (`POST /v1/enroll/challenge`, then the
//! answer inside `POST /v1/enroll`; the checks are `outpost_attest::evidence`): its device id
//! is the hex SHA-256 of its EK's SubjectPublicKeyInfo, so it is the same after a reflash.
//! A software-key device (token + CSR only) gets the hex SHA-256 of its CSR's key.
//!
//! Checks, in order: the request parses; the token is known, unexpired and has uses left; the
//! CSR parses, is for a P-256 key and its signature verifies (proof of possession); the hub's
//! policy accepts the key protection; a `tpm` key answered its challenge; the device is not
//! revoked. Only then is a certificate signed, and the token use is spent in the same
//! transaction that records the device.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, UNIX_EPOCH};

use hyper::StatusCode;
use outpost_attest::evidence::{Evidence, Pending};
use outpost_attest::{AttestError, EkPolicy};
use outpost_proto::enroll::{
    device_id_from_spki, Challenge, ChallengeRequest, EnrollError, EnrollErrorCode, EnrollRequest,
    EnrollResponse, KeyProtection, RenewRequest, TpmActivation, CHALLENGE_TTL_SECS,
};
use rcgen::{
    CertificateParams, CertificateSigningRequestParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PublicKeyData as _, SerialNumber,
};
use x509_parser::prelude::FromDer;

use crate::config::EnrollConfig;
use crate::devices::{token_hash, EnrollRefusal, NewEnrollment, TokenRefusal};
use crate::store::Store;

/// OID 1.2.840.10045.2.1 (id-ecPublicKey).
const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
/// OID 1.2.840.10045.3.1.7 (prime256v1 / P-256).
const OID_P256: &str = "1.2.840.10045.3.1.7";
/// Issued certificates start this long before "now", for device clocks slightly behind
/// (at most a tenth of the lifetime, so short-lived certificates renew at 2/3 of it).
const BACKDATE: Duration = Duration::from_secs(3600);

#[derive(Debug, thiserror::Error)]
pub enum EnrollSetupError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("enroll.ca_key {path}: not a usable PEM private key: {message}")]
    BadKey { path: PathBuf, message: String },
    #[error("enroll.ca_cert {path}: not a usable PEM CA certificate: {message}")]
    BadCa { path: PathBuf, message: String },
    #[error("enroll.ek_ca {path}: {message}")]
    BadEkCa { path: PathBuf, message: String },
    #[error("enroll.ek_allowlist: {0}")]
    BadEkAllowlist(String),
}

/// Most challenges waiting for an answer at once (each is a few hundred bytes; only token
/// holders can create them).
const MAX_PENDING_CHALLENGES: usize = 10_000;

/// A round-one challenge waiting for its answer.
struct PendingChallenge {
    pending: Pending,
    token_hash: String,
    csr_spki: Vec<u8>,
    expires_ms: i64,
}

/// The fleet CA as an issuer of device certificates, and the enrollment policy.
pub struct Enroller {
    issuer: Issuer<'static, KeyPair>,
    ca_pem: String,
    lifetime: Duration,
    refuse_software_keys: bool,
    ek_policy: EkPolicy,
    challenges: Mutex<HashMap<String, PendingChallenge>>,
}

impl std::fmt::Debug for Enroller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the CA key.
        f.debug_struct("Enroller")
            .field("lifetime", &self.lifetime)
            .field("refuse_software_keys", &self.refuse_software_keys)
            .finish_non_exhaustive()
    }
}

/// A refusal: HTTP status plus the JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollFailure {
    pub status: StatusCode,
    pub body: EnrollError,
}

impl EnrollFailure {
    fn new(status: StatusCode, code: EnrollErrorCode, error: impl Into<String>) -> Self {
        Self {
            status,
            body: EnrollError {
                error: crate::ingest::one_line(&error.into()),
                code,
            },
        }
    }
}

/// A CSR whose signature verified, for a P-256 key.
pub struct CheckedCsr {
    pub device_id: String,
    /// The key's SubjectPublicKeyInfo (DER).
    pub spki: Vec<u8>,
    public_key: rcgen::PublicKey,
}

/// What was issued: the PEM chain (leaf, CA) and the leaf's expiry.
pub struct IssuedCert {
    pub chain_pem: String,
    pub not_after_ms: i64,
}

impl Enroller {
    pub fn load(cfg: &EnrollConfig) -> Result<Self, EnrollSetupError> {
        let read = |path: &Path| {
            std::fs::read_to_string(path).map_err(|source| EnrollSetupError::Read {
                path: path.to_owned(),
                source,
            })
        };
        let (ca_pem, key_pem) = (read(&cfg.ca_cert)?, read(&cfg.ca_key)?);
        let key = KeyPair::from_pem(&key_pem).map_err(|e| EnrollSetupError::BadKey {
            path: cfg.ca_key.clone(),
            message: e.to_string(),
        })?;
        let enroller = Self::new(&ca_pem, key, cfg.cert_lifetime, cfg.refuse_software_keys)
            .map_err(|message| EnrollSetupError::BadCa {
                path: cfg.ca_cert.clone(),
                message,
            })?;
        let mut ek_ca = Vec::new();
        for path in &cfg.ek_ca {
            let bad = |message: String| EnrollSetupError::BadEkCa {
                path: path.clone(),
                message,
            };
            let pem = std::fs::read(path).map_err(|source| EnrollSetupError::Read {
                path: path.clone(),
                source,
            })?;
            let certs = rustls_pemfile::certs(&mut pem.as_slice())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad(format!("not PEM: {e}")))?;
            if certs.is_empty() {
                return Err(bad("no CERTIFICATE in it".into()));
            }
            ek_ca.extend(certs.into_iter().map(|c| c.as_ref().to_vec()));
        }
        let policy = EkPolicy::new(ek_ca, &cfg.ek_allowlist).map_err(|e| match e {
            AttestError::Unacceptable { what, reason } if what.contains("allowlist") => {
                EnrollSetupError::BadEkAllowlist(reason)
            }
            other => EnrollSetupError::BadEkCa {
                path: cfg.ek_ca.first().cloned().unwrap_or_default(),
                message: other.to_string(),
            },
        })?;
        Ok(enroller.with_ek_policy(policy))
    }

    /// Which TPM endorsement keys this hub trusts (default: none, so TPM devices cannot
    /// enroll until `ek_ca` or `ek_allowlist` is set).
    pub fn with_ek_policy(mut self, policy: EkPolicy) -> Self {
        self.ek_policy = policy;
        self
    }

    /// From the CA certificate (PEM; the first certificate is the issuer) and its key.
    pub fn new(
        ca_pem: &str,
        key: KeyPair,
        lifetime: Duration,
        refuse_software_keys: bool,
    ) -> Result<Self, String> {
        let (_, pem) =
            x509_parser::pem::parse_x509_pem(ca_pem.as_bytes()).map_err(|e| e.to_string())?;
        let cert = pem.parse_x509().map_err(|e| e.to_string())?;
        let spki = cert.public_key().raw;
        if spki != key.subject_public_key_info().as_slice() {
            return Err("the CA key does not belong to this certificate".into());
        }
        let ca_only = String::from_utf8_lossy(&pem_encode("CERTIFICATE", &pem.contents)).into();
        let issuer = Issuer::from_ca_cert_der(&pem.contents.clone().into(), key)
            .map_err(|e| e.to_string())?;
        Ok(Self {
            issuer,
            ca_pem: ca_only,
            lifetime,
            refuse_software_keys,
            ek_policy: EkPolicy::default(),
            challenges: Mutex::new(HashMap::new()),
        })
    }

    /// Signs a clientAuth certificate for the CSR's key, subject CN = device id, valid from an
    /// hour ago (a tenth of the lifetime if that is shorter) for the configured lifetime, with
    /// a random serial number.
    ///
    /// `after_ms`: the device's revocation was lifted then (`device allow`); the certificate's
    /// notBefore must be later, so that it is told apart from the refused earlier ones.
    pub fn issue(
        &self,
        csr: &CheckedCsr,
        now_ms: i64,
        after_ms: Option<i64>,
    ) -> Result<IssuedCert, String> {
        let now_s = now_ms.div_euclid(1000);
        let lifetime = i64::try_from(self.lifetime.as_secs()).unwrap_or(i64::MAX);
        let mut not_before = now_s - BACKDATE.as_secs().min(self.lifetime.as_secs() / 10) as i64;
        if let Some(after) = after_ms {
            not_before = not_before.max(after.div_euclid(1000) + 1);
        }
        let not_after = now_s.saturating_add(lifetime);
        let ts = |s: i64| time::OffsetDateTime::from_unix_timestamp(s).map_err(|e| e.to_string());
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, csr.device_id.as_str());
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.use_authority_key_identifier_extension = true;
        params.not_before = ts(not_before)?;
        params.not_after = ts(not_after)?;
        params.serial_number = Some(random_serial()?);
        let request = CertificateSigningRequestParams {
            params,
            public_key: csr.public_key.clone(),
        };
        let cert = request.signed_by(&self.issuer).map_err(|e| e.to_string())?;
        Ok(IssuedCert {
            chain_pem: format!("{}{}", cert.pem(), self.ca_pem),
            not_after_ms: not_after * 1000,
        })
    }

    /// The whole exchange, with the store locked by the caller. Never panics on input.
    pub fn handle(
        &self,
        store: &mut Store,
        body: &[u8],
        now_ms: i64,
    ) -> Result<EnrollResponse, EnrollFailure> {
        use EnrollErrorCode as C;
        let req: EnrollRequest = parse_body(body, "an enrollment request")?;
        let (hash, csr) = token_and_csr(store, &req.token, &req.csr, now_ms)?;
        if self.refuse_software_keys && req.key_protection == KeyProtection::Software {
            return Err(EnrollFailure::new(
                StatusCode::FORBIDDEN,
                C::SoftwareKeyRefused,
                "this hub refuses devices whose key is not in a TPM (enroll.refuse_software_keys)",
            ));
        }
        let mut csr = csr;
        match (req.key_protection, &req.attestation) {
            (KeyProtection::Tpm, Some(answer)) => {
                csr.device_id = self.check_answer(answer, &hash, &csr.spki, now_ms)?;
            }
            (KeyProtection::Tpm, None) => {
                return Err(EnrollFailure::new(
                    StatusCode::BAD_REQUEST,
                    C::AttestationRequired,
                    format!(
                        "a tpm key must prove it is in a TPM: POST {} first",
                        outpost_proto::enroll::ENROLL_CHALLENGE_PATH
                    ),
                ));
            }
            (KeyProtection::Software, Some(_)) => {
                return Err(EnrollFailure::new(
                    StatusCode::BAD_REQUEST,
                    C::BadRequest,
                    "attestation for a software key",
                ));
            }
            (KeyProtection::Software, None) => {}
        }
        let revoked = store
            .is_revoked(&csr.device_id)
            .map_err(|e| refusal(e.into(), &csr.device_id))?;
        if revoked {
            return Err(refusal(
                EnrollRefusal::Revoked(csr.device_id.clone()),
                &csr.device_id,
            ));
        }
        let after = store
            .certs_after(&csr.device_id)
            .map_err(|e| refusal(e.into(), &csr.device_id))?;
        let issued = self.issue(&csr, now_ms, after).map_err(|e| {
            tracing::error!(device = %csr.device_id, error = %e, "issuing a certificate failed");
            EnrollFailure::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                C::Internal,
                "cannot issue a certificate",
            )
        })?;
        store
            .enroll(
                &hash,
                now_ms,
                NewEnrollment {
                    id: &csr.device_id,
                    key_protection: req.key_protection.as_str(),
                    cert_not_after_ms: issued.not_after_ms,
                },
            )
            .map_err(|e| refusal(e, &csr.device_id))?;
        tracing::info!(device = %csr.device_id, key_protection = %req.key_protection, "device enrolled");
        Ok(EnrollResponse {
            device_id: csr.device_id,
            certificate_chain: issued.chain_pem,
        })
    }
}

impl Enroller {
    /// `POST /v1/enroll/challenge`: round one of TPM enrollment. Checks the token (without
    /// spending it), the CSR and the TPM evidence, and answers a credential and a nonce.
    pub fn challenge(
        &self,
        store: &mut Store,
        body: &[u8],
        now_ms: i64,
    ) -> Result<Challenge, EnrollFailure> {
        use EnrollErrorCode as C;
        let req: ChallengeRequest = parse_body(body, "a challenge request")?;
        let (hash, csr) = token_and_csr(store, &req.token, &req.csr, now_ms)?;
        if self.ek_policy.is_empty() {
            return Err(EnrollFailure::new(
                StatusCode::FORBIDDEN,
                C::EkUntrusted,
                "this hub trusts no TPM manufacturer CA or EK (set enroll.ek_ca or enroll.ek_allowlist)",
            ));
        }
        let ev = &req.tpm;
        let ek_certificate = ev
            .ek_certificate
            .as_deref()
            .map(|h| unhex("ek_certificate", h))
            .transpose()?;
        let (ek_public, srk_public) = (
            unhex("ek_public", &ev.ek_public)?,
            unhex("srk_public", &ev.srk_public)?,
        );
        let (ak_public, key_public) = (
            unhex("ak_public", &ev.ak_public)?,
            unhex("key_public", &ev.key_public)?,
        );
        let evidence = Evidence {
            ek_certificate: ek_certificate.as_deref(),
            ek_public: &ek_public,
            srk_public: &srk_public,
            ak_public: &ak_public,
            key_public: &key_public,
        };
        let now = UNIX_EPOCH + Duration::from_millis(u64::try_from(now_ms).unwrap_or(0));
        let (credential, pending) = outpost_attest::evidence::challenge(
            &self.ek_policy,
            &evidence,
            &csr.spki,
            now,
            &mut rand_core::OsRng,
        )
        .map_err(attest_failure)?;
        let id = &pending.trusted.device_id;
        if store.is_revoked(id).map_err(|e| refusal(e.into(), id))? {
            return Err(refusal(EnrollRefusal::Revoked(id.clone()), id));
        }
        let challenge_id = hex::encode(random_bytes::<16>().map_err(|e| {
            tracing::error!(error = %e, "no randomness for a challenge id");
            EnrollFailure::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                C::Internal,
                "no randomness",
            )
        })?);
        let nonce = hex::encode(pending.nonce);
        tracing::info!(device = %id, ek_trust = pending.trusted.trust.as_str(), "TPM enrollment challenge issued");
        let mut challenges = self.challenges.lock().unwrap_or_else(|p| p.into_inner());
        challenges.retain(|_, c| c.expires_ms > now_ms);
        if challenges.len() >= MAX_PENDING_CHALLENGES {
            return Err(EnrollFailure::new(
                StatusCode::SERVICE_UNAVAILABLE,
                C::Internal,
                "too many enrollments in progress; retry later",
            ));
        }
        challenges.insert(
            challenge_id.clone(),
            PendingChallenge {
                pending,
                token_hash: hash,
                csr_spki: csr.spki,
                expires_ms: now_ms.saturating_add(CHALLENGE_TTL_SECS as i64 * 1000),
            },
        );
        Ok(Challenge {
            challenge_id,
            credential_blob: hex::encode(credential.id_object),
            encrypted_secret: hex::encode(credential.encrypted_secret),
            nonce,
        })
    }

    /// Round two: the answer to a pending challenge (taken: one answer per challenge) from the
    /// same token and CSR key. Returns the device id (from the EK).
    fn check_answer(
        &self,
        answer: &TpmActivation,
        token_hash: &str,
        csr_spki: &[u8],
        now_ms: i64,
    ) -> Result<String, EnrollFailure> {
        use EnrollErrorCode as C;
        let taken = self
            .challenges
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&answer.challenge_id);
        let Some(c) = taken.filter(|c| c.expires_ms > now_ms) else {
            return Err(EnrollFailure::new(
                StatusCode::UNAUTHORIZED,
                C::ChallengeExpired,
                "unknown, expired or already answered challenge: start again",
            ));
        };
        if c.token_hash != token_hash || c.csr_spki != csr_spki {
            return Err(EnrollFailure::new(
                StatusCode::FORBIDDEN,
                C::AttestationFailed,
                "the answer does not come with the token and CSR of its challenge",
            ));
        }
        let secret = unhex("secret", &answer.secret)?;
        let info = unhex("certify_info", &answer.certify_info)?;
        let signature = unhex("certify_signature", &answer.certify_signature)?;
        outpost_attest::evidence::verify_answer(&c.pending, &secret, &info, &signature)
            .map_err(attest_failure)?;
        Ok(c.pending.trusted.device_id.clone())
    }
}

fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T, EnrollFailure> {
    serde_json::from_slice(body).map_err(|e| {
        EnrollFailure::new(
            StatusCode::BAD_REQUEST,
            EnrollErrorCode::BadRequest,
            format!("body is not {what}: {e}"),
        )
    })
}

/// The first checks of both rounds: the token is usable (not spent here), the CSR verifies.
fn token_and_csr(
    store: &mut Store,
    token: &str,
    csr: &str,
    now_ms: i64,
) -> Result<(String, CheckedCsr), EnrollFailure> {
    let hash = token_hash(token);
    store
        .check_token(&hash, now_ms)
        .map_err(|e| refusal(e, "?"))?;
    let csr = check_csr(csr)
        .map_err(|e| EnrollFailure::new(StatusCode::BAD_REQUEST, EnrollErrorCode::BadCsr, e))?;
    Ok((hash, csr))
}

fn unhex(field: &str, value: &str) -> Result<Vec<u8>, EnrollFailure> {
    hex::decode(value).map_err(|e| {
        EnrollFailure::new(
            StatusCode::BAD_REQUEST,
            EnrollErrorCode::BadEvidence,
            format!("{field} is not hex: {e}"),
        )
    })
}

fn attest_failure(e: AttestError) -> EnrollFailure {
    use EnrollErrorCode as C;
    let (status, code) = match &e {
        AttestError::Malformed { .. } | AttestError::Unacceptable { .. } => {
            (StatusCode::BAD_REQUEST, C::BadEvidence)
        }
        AttestError::EkUntrusted(_) => (StatusCode::FORBIDDEN, C::EkUntrusted),
        AttestError::ProofFailed(_) => (StatusCode::FORBIDDEN, C::AttestationFailed),
        AttestError::Crypto(_) => (StatusCode::INTERNAL_SERVER_ERROR, C::Internal),
    };
    EnrollFailure::new(status, code, e.to_string())
}

fn random_bytes<const N: usize>() -> Result<[u8; N], rand_core::Error> {
    let mut out = [0u8; N];
    rand_core::RngCore::try_fill_bytes(&mut rand_core::OsRng, &mut out)?;
    Ok(out)
}

/// What the hub knows about the client certificate a renewal was made with (already verified
/// against the fleet CA by rustls).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresentedCert {
    pub device_id: String,
    pub spki: Vec<u8>,
    pub not_before_ms: i64,
    pub not_after_ms: i64,
}

impl PresentedCert {
    /// From the verified leaf (DER). `Err` only for a certificate rustls would not have
    /// accepted (no usable CN).
    pub fn parse(der: &[u8]) -> Result<Self, crate::identity::IdentityError> {
        use x509_parser::prelude::X509Certificate;
        let device_id = crate::identity::device_id_from_cert(der)?;
        let (_, cert) = X509Certificate::from_der(der)
            .map_err(|_| crate::identity::IdentityError::BadCertificate)?;
        let validity = cert.validity();
        Ok(Self {
            device_id,
            spki: cert.public_key().raw.to_vec(),
            not_before_ms: validity.not_before.timestamp().saturating_mul(1000),
            not_after_ms: validity.not_after.timestamp().saturating_mul(1000),
        })
    }
}

impl Enroller {
    /// `POST /v1/renew`: a new certificate for the **same** key and device id as the presented
    /// (verified, unexpired, not revoked) client certificate, with the configured lifetime.
    /// No token: the valid certificate is the authorisation. Never panics on input.
    pub fn renew(
        &self,
        store: &mut Store,
        presented: &PresentedCert,
        body: &[u8],
        now_ms: i64,
    ) -> Result<EnrollResponse, EnrollFailure> {
        use EnrollErrorCode as C;
        let id = presented.device_id.as_str();
        // rustls already refused expired certificates; this keeps the rule next to the others.
        if now_ms < presented.not_before_ms || now_ms >= presented.not_after_ms {
            return Err(EnrollFailure::new(
                StatusCode::UNAUTHORIZED,
                C::CertificateExpired,
                format!("the certificate of {id} is not valid now: enroll again with a new token"),
            ));
        }
        let req: RenewRequest = serde_json::from_slice(body).map_err(|e| {
            EnrollFailure::new(
                StatusCode::BAD_REQUEST,
                C::BadRequest,
                format!("body is not a renewal request: {e}"),
            )
        })?;
        let mut csr = check_csr(&req.csr)
            .map_err(|e| EnrollFailure::new(StatusCode::BAD_REQUEST, C::BadCsr, e))?;
        if csr.spki != presented.spki {
            return Err(EnrollFailure::new(
                StatusCode::FORBIDDEN,
                C::KeyMismatch,
                "the CSR's key is not the key of the presented certificate (a new key needs a new enrollment)",
            ));
        }
        // The id stays what the presented certificate says (also for ids not derived from the
        // key, such as `init`'s device-001).
        csr.device_id = presented.device_id.clone();
        let after = store.certs_after(id).map_err(|e| refusal(e.into(), id))?;
        let issued = self.issue(&csr, now_ms, after).map_err(|e| {
            tracing::error!(device = %id, error = %e, "issuing a renewed certificate failed");
            EnrollFailure::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                C::Internal,
                "cannot issue a certificate",
            )
        })?;
        store
            .renew(id, issued.not_after_ms)
            .map_err(|e| refusal(e, id))?;
        tracing::info!(device = %id, not_after = %outpost_proto::time::rfc3339_millis(issued.not_after_ms), "device certificate renewed");
        Ok(EnrollResponse {
            device_id: presented.device_id.clone(),
            certificate_chain: issued.chain_pem,
        })
    }
}

fn refusal(e: EnrollRefusal, device: &str) -> EnrollFailure {
    use EnrollErrorCode as C;
    let unauthorized = StatusCode::UNAUTHORIZED;
    match e {
        EnrollRefusal::Token(t) => {
            let code = match t {
                TokenRefusal::Unknown => C::TokenUnknown,
                TokenRefusal::Expired => C::TokenExpired,
                TokenRefusal::UsedUp => C::TokenUsedUp,
            };
            EnrollFailure::new(unauthorized, code, t.to_string())
        }
        EnrollRefusal::Revoked(id) => EnrollFailure::new(
            StatusCode::FORBIDDEN,
            C::DeviceRevoked,
            format!("device {id} is revoked and cannot enroll again"),
        ),
        EnrollRefusal::Store(e) => {
            tracing::error!(%device, error = %e, "enrollment storage error");
            EnrollFailure::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                C::Internal,
                "storage error",
            )
        }
    }
}

/// Parses a PEM CSR, requires a P-256 key and a valid self-signature (rcgen verifies it).
pub fn check_csr(pem_text: &str) -> Result<CheckedCsr, String> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem_text.as_bytes())
        .map_err(|_| "csr is not PEM".to_owned())?;
    if pem.label != "CERTIFICATE REQUEST" {
        return Err(format!(
            "csr PEM is a {:?}, not a CERTIFICATE REQUEST",
            pem.label
        ));
    }
    let (_, parsed) =
        x509_parser::certification_request::X509CertificationRequest::from_der(&pem.contents)
            .map_err(|e| format!("csr does not parse: {e}"))?;
    let spki = &parsed.certification_request_info.subject_pki;
    let alg = spki.algorithm.algorithm.to_id_string();
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok())
        .map(|o| o.to_id_string());
    if alg != OID_EC_PUBLIC_KEY || curve.as_deref() != Some(OID_P256) {
        return Err("csr key is not an ECDSA P-256 key".into());
    }
    let device_id = device_id_from_spki(spki.raw);
    let params = CertificateSigningRequestParams::from_der(&pem.contents.as_slice().into())
        .map_err(|e| format!("csr rejected: {e}"))?;
    Ok(CheckedCsr {
        device_id,
        spki: spki.raw.to_vec(),
        public_key: params.public_key,
    })
}

fn random_serial() -> Result<SerialNumber, String> {
    use rand::TryRngCore;
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| e.to_string())?;
    // Positive and without a leading zero byte: DER INTEGER rules, at most 20 octets.
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    Ok(SerialNumber::from_slice(&bytes))
}

fn pem_encode(label: &str, der: &[u8]) -> Vec<u8> {
    const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = Vec::with_capacity(der.len() * 4 / 3 + 4);
    for chunk in der.chunks(3) {
        let n = chunk.len();
        let v = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= n {
                b64.push(B64[((v >> (18 - 6 * i)) & 63) as usize]);
            } else {
                b64.push(b'=');
            }
        }
    }
    let mut out = format!("-----BEGIN {label}-----\n").into_bytes();
    for line in b64.chunks(64) {
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out.extend_from_slice(format!("-----END {label}-----\n").as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki;

    const DAYS_30: Duration = Duration::from_secs(30 * 86_400);

    fn enroller(refuse_software: bool) -> (Enroller, pki::Ca) {
        let ca = pki::new_ca().unwrap();
        let key = KeyPair::from_pem(&ca.key_pem).unwrap();
        (
            Enroller::new(&ca.cert_pem, key, DAYS_30, refuse_software).unwrap(),
            ca,
        )
    }

    fn csr(key: &KeyPair) -> String {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, "ignored");
        p.serialize_request(key).unwrap().pem().unwrap()
    }

    fn request(token: &str, csr: &str, kp: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({"token": token, "csr": csr, "key_protection": kp}))
            .unwrap()
    }

    #[test]
    fn pem_encoding_matches_rcgen() {
        let ca = pki::new_ca().unwrap();
        assert_eq!(
            String::from_utf8(pem_encode("CERTIFICATE", &ca.cert_der)).unwrap(),
            ca.cert_pem.replace("\r\n", "\n")
        );
    }

    #[test]
    fn enrollment_issues_a_client_cert_named_by_the_key_hash() {
        let (enroller, _ca) = enroller(false);
        let mut store = Store::open_in_memory().unwrap();
        store.add_token(&token_hash("tok"), 0, i64::MAX, 1).unwrap();
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let now = 1_800_000_000_000;
        let resp = enroller
            .handle(&mut store, &request("tok", &csr(&key), "software"), now)
            .unwrap();
        assert_eq!(
            resp.device_id,
            device_id_from_spki(&key.subject_public_key_info())
        );
        let (_, pem) = x509_parser::pem::parse_x509_pem(resp.certificate_chain.as_bytes()).unwrap();
        let cert = pem.parse_x509().unwrap();
        assert_eq!(
            cert.public_key().raw,
            key.subject_public_key_info().as_slice()
        );
        let cn = cert.subject().iter_common_name().next().unwrap();
        assert_eq!(cn.as_str().unwrap(), resp.device_id);
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.client_auth && !eku.server_auth);
        assert_eq!(
            cert.validity().not_after.timestamp(),
            now / 1000 + 30 * 86_400
        );
        assert!(resp.certificate_chain.matches("BEGIN CERTIFICATE").count() == 2);
        let rows = store.devices().unwrap();
        assert_eq!(rows[0].key_protection.as_deref(), Some("software"));
        // The single use is spent.
        let again = enroller
            .handle(&mut store, &request("tok", &csr(&key), "software"), now)
            .unwrap_err();
        assert_eq!(
            (again.status, again.body.code),
            (StatusCode::UNAUTHORIZED, EnrollErrorCode::TokenUsedUp)
        );
    }

    #[test]
    fn bad_input_is_a_4xx_never_a_panic() {
        let (enroller, _ca) = enroller(true);
        let mut store = Store::open_in_memory().unwrap();
        store.add_token(&token_hash("tok"), 0, i64::MAX, 9).unwrap();
        store.add_token(&token_hash("old"), 0, 10, 9).unwrap();
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let good = csr(&key);
        // A CSR whose signature does not verify: flip a byte inside the signature.
        let (_, pem) = x509_parser::pem::parse_x509_pem(good.as_bytes()).unwrap();
        let mut der = pem.contents.clone();
        let last = der.len() - 2;
        der[last] ^= 0x01;
        let forged = String::from_utf8(pem_encode("CERTIFICATE REQUEST", &der)).unwrap();
        let rsa_like = good.replace("CERTIFICATE REQUEST", "CERTIFICATE");
        let ed = KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        let cases: Vec<(Vec<u8>, StatusCode, EnrollErrorCode)> = vec![
            (
                b"{".to_vec(),
                StatusCode::BAD_REQUEST,
                EnrollErrorCode::BadRequest,
            ),
            (
                request("nope", &good, "tpm"),
                StatusCode::UNAUTHORIZED,
                EnrollErrorCode::TokenUnknown,
            ),
            (
                request("old", &good, "tpm"),
                StatusCode::UNAUTHORIZED,
                EnrollErrorCode::TokenExpired,
            ),
            (
                request("tok", "garbage", "tpm"),
                StatusCode::BAD_REQUEST,
                EnrollErrorCode::BadCsr,
            ),
            (
                request("tok", &forged, "tpm"),
                StatusCode::BAD_REQUEST,
                EnrollErrorCode::BadCsr,
            ),
            (
                request("tok", &rsa_like, "tpm"),
                StatusCode::BAD_REQUEST,
                EnrollErrorCode::BadCsr,
            ),
            (
                request("tok", &csr(&ed), "tpm"),
                StatusCode::BAD_REQUEST,
                EnrollErrorCode::BadCsr,
            ),
            (
                request("tok", &good, "software"),
                StatusCode::FORBIDDEN,
                EnrollErrorCode::SoftwareKeyRefused,
            ),
            (
                request("tok", &good, "tpm"),
                StatusCode::BAD_REQUEST,
                EnrollErrorCode::AttestationRequired,
            ),
        ];
        for (body, status, code) in cases {
            let e = enroller.handle(&mut store, &body, 100).unwrap_err();
            assert_eq!((e.status, e.body.code), (status, code), "{}", e.body.error);
        }
        // None of that spent a use or recorded a device.
        assert!(store.devices().unwrap().is_empty());
        let id = device_id_from_spki(&key.subject_public_key_info());
        store.revoke(&id, 1).unwrap();
        let (accepting, _ca) = self::enroller(false);
        let e = accepting
            .handle(&mut store, &request("tok", &good, "software"), 100)
            .unwrap_err();
        assert_eq!(e.body.code, EnrollErrorCode::DeviceRevoked);
        assert_eq!(e.status, StatusCode::FORBIDDEN);
    }

    fn leaf_der(chain_pem: &str) -> Vec<u8> {
        let (_, pem) = x509_parser::pem::parse_x509_pem(chain_pem.as_bytes()).unwrap();
        pem.contents
    }

    fn renew_body(csr: &str) -> Vec<u8> {
        serde_json::to_vec(&RenewRequest { csr: csr.into() }).unwrap()
    }

    #[test]
    fn renewal_keeps_the_key_and_id_and_needs_a_valid_unrevoked_certificate() {
        let (enroller, _ca) = enroller(false);
        let mut store = Store::open_in_memory().unwrap();
        store.add_token(&token_hash("tok"), 0, i64::MAX, 1).unwrap();
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let t0 = 1_800_000_000_000;
        let first = enroller
            .handle(&mut store, &request("tok", &csr(&key), "software"), t0)
            .unwrap();
        let presented = PresentedCert::parse(&leaf_der(&first.certificate_chain)).unwrap();
        assert_eq!(presented.device_id, first.device_id);

        // Same key, later: a new certificate, same id, new expiry; no token needed.
        let t1 = t0 + 20 * 86_400_000;
        let renewed = enroller
            .renew(&mut store, &presented, &renew_body(&csr(&key)), t1)
            .unwrap();
        assert_eq!(renewed.device_id, first.device_id);
        let again = PresentedCert::parse(&leaf_der(&renewed.certificate_chain)).unwrap();
        assert_eq!(again.spki, presented.spki);
        assert_eq!(again.device_id, first.device_id);
        assert_eq!(again.not_after_ms, t1 + 30 * 86_400_000);
        let rows = store.devices().unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].cert_not_after_ms, Some(again.not_after_ms));
        assert_eq!(rows[0].key_protection.as_deref(), Some("software"));

        // Another key: refused, even with a valid certificate.
        let other = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let e = enroller
            .renew(&mut store, &again, &renew_body(&csr(&other)), t1)
            .unwrap_err();
        assert_eq!(
            (e.status, e.body.code),
            (StatusCode::FORBIDDEN, EnrollErrorCode::KeyMismatch)
        );
        // Garbage: 4xx.
        for (body, code) in [
            (b"{".to_vec(), EnrollErrorCode::BadRequest),
            (renew_body("junk"), EnrollErrorCode::BadCsr),
        ] {
            let e = enroller.renew(&mut store, &again, &body, t1).unwrap_err();
            assert_eq!((e.status, e.body.code), (StatusCode::BAD_REQUEST, code));
        }
        // Expired (by the hub's clock): refused, needs a new token.
        let e = enroller
            .renew(
                &mut store,
                &presented,
                &renew_body(&csr(&key)),
                presented.not_after_ms,
            )
            .unwrap_err();
        assert_eq!(
            (e.status, e.body.code),
            (
                StatusCode::UNAUTHORIZED,
                EnrollErrorCode::CertificateExpired
            )
        );
        // Revoked: refused, expiry unchanged.
        store.revoke(&first.device_id, t1).unwrap();
        let e = enroller
            .renew(&mut store, &again, &renew_body(&csr(&key)), t1 + 1)
            .unwrap_err();
        assert_eq!(
            (e.status, e.body.code),
            (StatusCode::FORBIDDEN, EnrollErrorCode::DeviceRevoked)
        );
        assert_eq!(
            store.devices().unwrap()[0].cert_not_after_ms,
            Some(again.not_after_ms)
        );
    }

    #[test]
    fn short_lifetimes_backdate_a_tenth() {
        let ca = pki::new_ca().unwrap();
        let key = KeyPair::from_pem(&ca.key_pem).unwrap();
        let enroller = Enroller::new(&ca.cert_pem, key, Duration::from_secs(90), false).unwrap();
        let dev = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let checked = check_csr(&csr(&dev)).unwrap();
        let now = 1_800_000_000_000;
        let issued = enroller.issue(&checked, now, None).unwrap();
        let p = PresentedCert::parse(&leaf_der(&issued.chain_pem)).unwrap();
        assert_eq!(p.not_before_ms, now - 9_000);
        assert_eq!(p.not_after_ms, now + 90_000);
    }

    #[test]
    fn an_allowed_device_enrolls_again_and_only_its_new_certificates_count() {
        let (enroller, _ca) = enroller(false);
        let mut store = Store::open_in_memory().unwrap();
        store.add_token(&token_hash("tok"), 0, i64::MAX, 9).unwrap();
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let body = request("tok", &csr(&key), "software");
        let t0 = 1_800_000_000_000;
        let first = enroller.handle(&mut store, &body, t0).unwrap();
        let old = PresentedCert::parse(&leaf_der(&first.certificate_chain)).unwrap();
        assert_eq!(
            store
                .certificate_refusal(&old.device_id, old.not_before_ms)
                .unwrap(),
            None
        );

        // Revoked a minute later, allowed again a minute after that (well within the hour
        // certificates are backdated by).
        store.revoke(&first.device_id, t0 + 60_000).unwrap();
        assert_eq!(
            enroller
                .handle(&mut store, &body, t0 + 90_000)
                .unwrap_err()
                .body
                .code,
            EnrollErrorCode::DeviceRevoked
        );
        assert!(store.allow(&first.device_id, t0 + 120_000).unwrap());
        assert!(
            !store.allow(&first.device_id, t0 + 130_000).unwrap(),
            "not revoked now"
        );
        let again = enroller.handle(&mut store, &body, t0 + 180_000).unwrap();
        assert_eq!(again.device_id, first.device_id);
        let new = PresentedCert::parse(&leaf_der(&again.certificate_chain)).unwrap();
        assert!(
            new.not_before_ms > t0 + 60_000,
            "notBefore after the revocation"
        );
        assert!(new.not_before_ms <= t0 + 180_000, "never in the future");
        assert_eq!(
            store
                .certificate_refusal(&new.device_id, new.not_before_ms)
                .unwrap(),
            None
        );
        assert!(store
            .certificate_refusal(&old.device_id, old.not_before_ms)
            .unwrap()
            .is_some_and(|why| why.contains("predates")));
        // Renewing keeps notBefore after the allow too.
        let renewed = enroller
            .renew(&mut store, &new, &renew_body(&csr(&key)), t0 + 240_000)
            .unwrap();
        let renewed = PresentedCert::parse(&leaf_der(&renewed.certificate_chain)).unwrap();
        assert!(renewed.not_before_ms > t0 + 60_000);
    }

    #[test]
    fn ca_key_must_match_the_certificate() {
        let ca = pki::new_ca().unwrap();
        let other = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        assert!(Enroller::new(&ca.cert_pem, other, DAYS_30, false).is_err());
    }
}

//! CMS SignedData verification for bundle signatures, without OpenSSL.
//!
//! What RAUC's `cms_verify` (OpenSSL `CMS_verify(…, CMS_BINARY)`) checks, and
//! so what we check, in this order:
//! 1. exactly one signer whose certificate is in the CMS `certificates`;
//! 2. the signer chain leads to a keyring certificate, valid at the caller's
//!    time (no clock here), using only CMS-embedded intermediates
//!    (path building by `rustls-webpki`);
//! 3. the purpose of every chain certificate (see [`crate::purpose`]);
//! 4. signed attributes: `contentType` = eContentType, `messageDigest` =
//!    digest of the content (the streamed payload for plain bundles, the
//!    encapsulated manifest for verity bundles);
//! 5. the signature over the DER `SET OF` signed attributes;
//! 6. optional allowed signer common names (`allowed-signer-cns`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cms::cert::CertificateChoices;
use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerIdentifier, SignerInfo};
use const_oid::db::rfc5280;
use der::asn1::{ObjectIdentifier, OctetString};
use der::{Decode, Encode};
use rustls_pki_types::{CertificateDer, SignatureVerificationAlgorithm, UnixTime};
use serde::Serialize;
use webpki::{EndEntityCert, KeyPurposeIdIter};
use x509_cert::ext::pkix::SubjectKeyIdentifier;
use x509_cert::Certificate;

use crate::digest::DigestAlg;
use crate::keyring::Keyring;
use crate::names;
use crate::purpose::{self, Purpose, PurposeFailure};

const ID_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
const ID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
const ID_ENVELOPED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.3");
const ATTR_CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
const ATTR_MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
const ATTR_SIGNING_TIME: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.5");
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// Caller policy for a verification (RAUC's `[keyring]` options).
#[derive(Clone, Debug)]
pub struct VerifyOptions {
    /// Time at which the certificates must be valid (pure: the caller reads the clock).
    pub time: SystemTime,
    /// `check-purpose`.
    pub purpose: Purpose,
    /// `allowed-signer-cns`: if set, the signer's subject CN must be one of these.
    pub allowed_signer_cns: Option<Vec<String>>,
    /// `use-bundle-signing-time`: check validity at the signed `signingTime` instead.
    pub use_signing_time: bool,
}

impl VerifyOptions {
    /// RAUC defaults, checking validity at `time`.
    pub fn at(time: SystemTime) -> Self {
        VerifyOptions {
            time,
            purpose: Purpose::default(),
            allowed_signer_cns: None,
            use_signing_time: false,
        }
    }
}

/// The verified signer, for `outpostctl info` and the install log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Signer {
    /// Subject in OpenSSL one-line form, as `rauc info` prints it.
    pub subject: String,
    pub issuer: String,
    pub common_name: Option<String>,
    /// Subjects from the signer up to the keyring anchor.
    pub chain: Vec<String>,
    /// The signed `signingTime` attribute, seconds since the epoch.
    pub signing_time: Option<u64>,
}

/// Why a signature is refused.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    #[error("malformed CMS signature: {0}")]
    Malformed(String),
    #[error("encrypted (EnvelopedData) bundles are not supported")]
    Encrypted,
    #[error("CMS content type {0} is not SignedData")]
    NotSignedData(ObjectIdentifier),
    #[error("CMS has {0} signers, expected exactly one")]
    SignerCount(usize),
    #[error("CMS encapsulated content type {0} is not id-data")]
    UnexpectedContentType(ObjectIdentifier),
    #[error("expected a detached signature (plain bundle) but the CMS carries content")]
    ExpectedDetached,
    #[error("expected the manifest inside the CMS (verity bundle) but the signature is detached")]
    ExpectedEncapsulated,
    #[error("unsupported digest algorithm {0}")]
    UnsupportedDigest(ObjectIdentifier),
    #[error("unsupported signature algorithm {0}")]
    UnsupportedSignatureAlgorithm(ObjectIdentifier),
    #[error("CMS signer has no signed attributes")]
    MissingSignedAttributes,
    #[error("signed attribute '{0}' is missing, repeated or malformed")]
    BadAttribute(&'static str),
    #[error("signed contentType attribute does not match the encapsulated content type")]
    ContentTypeMismatch,
    #[error("payload digest mismatch: the bundle content does not match its signature")]
    PayloadDigestMismatch,
    #[error("signer certificate not found in the CMS")]
    SignerCertificateMissing,
    #[error("signer not in keyring: no chain from '{subject}' to a trusted certificate")]
    SignerNotInKeyring { subject: String },
    #[error("certificate '{subject}' has expired")]
    CertificateExpired { subject: String },
    #[error("certificate '{subject}' is not yet valid")]
    CertificateNotYetValid { subject: String },
    #[error("unsuitable certificate purpose: '{subject}' is not valid for '{purpose}' ({detail})")]
    UnsuitablePurpose {
        subject: String,
        purpose: Purpose,
        detail: &'static str,
    },
    #[error("signer '{subject}' is not in the allowed signer list")]
    SignerNotAllowed { subject: String },
    #[error("signature does not verify with the signer's key")]
    BadSignature,
    #[error("certificate chain of '{subject}' rejected: {reason}")]
    Chain { subject: String, reason: String },
}

/// A parsed (not yet verified) CMS SignedData with one signer.
#[derive(Debug)]
pub struct SignedCms {
    signed: SignedData,
    digest_alg: DigestAlg,
    content: Option<Vec<u8>>,
}

impl SignedCms {
    /// Parses a DER `ContentInfo`; trailing bytes are an error.
    pub fn parse(der: &[u8]) -> Result<Self, SignatureError> {
        let info = ContentInfo::from_der(der).map_err(malformed)?;
        if info.content_type == ID_ENVELOPED_DATA {
            return Err(SignatureError::Encrypted);
        }
        if info.content_type != ID_SIGNED_DATA {
            return Err(SignatureError::NotSignedData(info.content_type));
        }
        let signed: SignedData = info.content.decode_as().map_err(malformed)?;
        let count = signed.signer_infos.0.len();
        if count != 1 {
            return Err(SignatureError::SignerCount(count));
        }
        let econtent_type = signed.encap_content_info.econtent_type;
        if econtent_type != ID_DATA {
            return Err(SignatureError::UnexpectedContentType(econtent_type));
        }
        let content = match &signed.encap_content_info.econtent {
            None => None,
            Some(any) => Some(
                any.decode_as::<OctetString>()
                    .map_err(malformed)?
                    .into_bytes(),
            ),
        };
        let oid = signer_of(&signed).digest_alg.oid;
        let digest_alg = DigestAlg::from_oid(&oid).ok_or(SignatureError::UnsupportedDigest(oid))?;
        Ok(SignedCms {
            signed,
            digest_alg,
            content,
        })
    }

    /// The algorithm the payload must be hashed with for [`Self::verify_detached`].
    pub fn digest_alg(&self) -> DigestAlg {
        self.digest_alg
    }

    /// The encapsulated content (the manifest of a verity bundle), unverified.
    pub fn content(&self) -> Option<&[u8]> {
        self.content.as_deref()
    }

    /// Plain bundles: verifies a detached signature given the digest of the
    /// payload (computed by streaming it through [`Self::digest_alg`]).
    pub fn verify_detached(
        &self,
        payload_digest: &[u8],
        keyring: &Keyring,
        opts: &VerifyOptions,
    ) -> Result<Signer, SignatureError> {
        if self.content.is_some() {
            return Err(SignatureError::ExpectedDetached);
        }
        self.verify(payload_digest, keyring, opts)
    }

    /// Verity bundles: verifies the signature and returns the signed content.
    pub fn verify_encapsulated(
        &self,
        keyring: &Keyring,
        opts: &VerifyOptions,
    ) -> Result<(Signer, &[u8]), SignatureError> {
        let content = self
            .content
            .as_deref()
            .ok_or(SignatureError::ExpectedEncapsulated)?;
        let digest = self.digest_alg.digest(content);
        Ok((self.verify(&digest, keyring, opts)?, content))
    }

    fn verify(
        &self,
        content_digest: &[u8],
        keyring: &Keyring,
        opts: &VerifyOptions,
    ) -> Result<Signer, SignatureError> {
        let si = signer_of(&self.signed);
        let attrs = SignedAttrs::parse(si)?;
        let (leaf_der, leaf) = self.signer_certificate(si)?;
        let subject = names::oneline(&leaf.tbs_certificate.subject);
        let time = match (opts.use_signing_time, attrs.signing_time) {
            (true, Some(t)) => UNIX_EPOCH + Duration::from_secs(t),
            _ => opts.time,
        };
        let chain = self.verify_chain(&leaf_der, &leaf, keyring, time, opts.purpose)?;
        if attrs.content_type != self.signed.encap_content_info.econtent_type {
            return Err(SignatureError::ContentTypeMismatch);
        }
        if attrs.message_digest != content_digest {
            return Err(SignatureError::PayloadDigestMismatch);
        }
        verify_signature(si, &leaf_der, self.digest_alg)?;
        let common_name = names::common_name(&leaf.tbs_certificate.subject);
        if let Some(allowed) = &opts.allowed_signer_cns {
            if !common_name.as_ref().is_some_and(|cn| allowed.contains(cn)) {
                return Err(SignatureError::SignerNotAllowed { subject });
            }
        }
        Ok(Signer {
            issuer: names::oneline(&leaf.tbs_certificate.issuer),
            subject,
            common_name,
            chain,
            signing_time: attrs.signing_time,
        })
    }

    fn certificates(&self) -> impl Iterator<Item = &Certificate> {
        self.signed
            .certificates
            .iter()
            .flat_map(|set| set.0.iter())
            .filter_map(|c| match c {
                CertificateChoices::Certificate(cert) => Some(cert),
                CertificateChoices::Other(_) => None,
            })
    }

    fn signer_certificate(
        &self,
        si: &SignerInfo,
    ) -> Result<(CertificateDer<'static>, Certificate), SignatureError> {
        let cert = self
            .certificates()
            .find(|c| matches_sid(c, &si.sid))
            .ok_or(SignatureError::SignerCertificateMissing)?;
        let der = cert.to_der().map_err(malformed)?;
        Ok((CertificateDer::from(der), cert.clone()))
    }

    /// Builds the path with webpki, then applies RAUC's purpose rules to it.
    fn verify_chain(
        &self,
        leaf_der: &CertificateDer<'_>,
        leaf: &Certificate,
        keyring: &Keyring,
        time: SystemTime,
        purpose: Purpose,
    ) -> Result<Vec<String>, SignatureError> {
        let subject = names::oneline(&leaf.tbs_certificate.subject);
        let intermediates: Vec<CertificateDer<'static>> = self
            .certificates()
            .filter(|c| *c != leaf)
            .filter_map(|c| c.to_der().ok().map(CertificateDer::from))
            .collect();
        let anchors: Vec<_> = keyring
            .certificates()
            .iter()
            .filter_map(|c| webpki::anchor_from_trusted_cert(c).ok())
            .collect();
        let ee = EndEntityCert::try_from(leaf_der).map_err(|e| chain_error(&subject, e))?;
        let unix = UnixTime::since_unix_epoch(time.duration_since(UNIX_EPOCH).unwrap_or_default());
        let path = ee
            .verify_for_usage(
                SUPPORTED_ALGS,
                &anchors,
                &intermediates,
                unix,
                AnyEku,
                None,
                None,
            )
            .map_err(|e| chain_error(&subject, e))?;

        // Collect the chain as x509-cert certificates: leaf, intermediates, anchor.
        let mut chain = vec![leaf.clone()];
        for cert in path.intermediate_certificates() {
            chain.push(Certificate::from_der(cert.der().as_ref()).map_err(malformed)?);
        }
        let anchor = path.anchor();
        let anchor_cert = keyring
            .certificates()
            .iter()
            .find(|c| {
                webpki::anchor_from_trusted_cert(c).is_ok_and(|a| {
                    a.subject == anchor.subject
                        && a.subject_public_key_info == anchor.subject_public_key_info
                })
            })
            .ok_or_else(|| SignatureError::SignerNotInKeyring {
                subject: subject.clone(),
            })?;
        let anchor_cert = Certificate::from_der(anchor_cert.as_ref()).map_err(malformed)?;
        // webpki does not check the anchor's own validity; OpenSSL does.
        check_validity(&anchor_cert, time)?;
        chain.push(anchor_cert);

        for (i, cert) in chain.iter().enumerate() {
            purpose::check(cert, purpose, i == 0).map_err(|f| {
                SignatureError::UnsuitablePurpose {
                    subject: names::oneline(&cert.tbs_certificate.subject),
                    purpose,
                    detail: match f {
                        PurposeFailure::Eku => "extended key usage",
                        PurposeFailure::KeyUsage => "key usage",
                        PurposeFailure::Malformed => "malformed usage extension",
                    },
                }
            })?;
        }
        Ok(chain
            .iter()
            .map(|c| names::oneline(&c.tbs_certificate.subject))
            .collect())
    }
}

/// The one signer; `parse` guaranteed there is exactly one.
fn signer_of(signed: &SignedData) -> &SignerInfo {
    // SignerCount is checked in `parse` before any call; index 0 exists.
    &signed.signer_infos.0.as_slice()[0]
}

fn matches_sid(cert: &Certificate, sid: &SignerIdentifier) -> bool {
    match sid {
        SignerIdentifier::IssuerAndSerialNumber(ias) => {
            cert.tbs_certificate.issuer == ias.issuer
                && cert.tbs_certificate.serial_number == ias.serial_number
        }
        SignerIdentifier::SubjectKeyIdentifier(ski) => cert
            .tbs_certificate
            .extensions
            .iter()
            .flatten()
            .filter(|e| e.extn_id == rfc5280::ID_CE_SUBJECT_KEY_IDENTIFIER)
            .any(|e| {
                SubjectKeyIdentifier::from_der(e.extn_value.as_bytes()).is_ok_and(|k| k == *ski)
            }),
    }
}

fn check_validity(cert: &Certificate, time: SystemTime) -> Result<(), SignatureError> {
    let v = &cert.tbs_certificate.validity;
    let now = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let subject = names::oneline(&cert.tbs_certificate.subject);
    if now < v.not_before.to_unix_duration() {
        return Err(SignatureError::CertificateNotYetValid { subject });
    }
    if now > v.not_after.to_unix_duration() {
        return Err(SignatureError::CertificateExpired { subject });
    }
    Ok(())
}

fn chain_error(subject: &str, e: webpki::Error) -> SignatureError {
    let subject = subject.to_string();
    match e {
        webpki::Error::UnknownIssuer => SignatureError::SignerNotInKeyring { subject },
        webpki::Error::CertExpired { .. } => SignatureError::CertificateExpired { subject },
        webpki::Error::CertNotValidYet { .. } => SignatureError::CertificateNotYetValid { subject },
        other => SignatureError::Chain {
            subject,
            reason: format!("{other:?}"),
        },
    }
}

fn malformed(e: impl std::fmt::Display) -> SignatureError {
    SignatureError::Malformed(e.to_string())
}

/// Purpose checks happen on the whole path afterwards (RAUC rules differ from
/// webpki's leaf-only EKU model), so the leaf EKU is only parsed here.
struct AnyEku;

impl webpki::ExtendedKeyUsageValidator for AnyEku {
    fn validate(&self, iter: KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        for id in iter {
            id?;
        }
        Ok(())
    }
}

static SUPPORTED_ALGS: &[&dyn SignatureVerificationAlgorithm] = &[
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
    webpki::ring::ED25519,
];

/// The signed attributes RAUC/OpenSSL always emit.
struct SignedAttrs {
    content_type: ObjectIdentifier,
    message_digest: Vec<u8>,
    signing_time: Option<u64>,
}

impl SignedAttrs {
    fn parse(si: &SignerInfo) -> Result<Self, SignatureError> {
        let attrs = si
            .signed_attrs
            .as_ref()
            .ok_or(SignatureError::MissingSignedAttributes)?;
        let single = |oid: ObjectIdentifier,
                      name: &'static str|
         -> Result<Option<&der::Any>, SignatureError> {
            let mut found = attrs.iter().filter(|a| a.oid == oid);
            let (first, second) = (found.next(), found.next());
            match (first, second) {
                (None, _) => Ok(None),
                (Some(a), None) if a.values.len() == 1 => Ok(a.values.get(0)),
                _ => Err(SignatureError::BadAttribute(name)),
            }
        };
        let bad = |name| move |_| SignatureError::BadAttribute(name);
        let content_type = single(ATTR_CONTENT_TYPE, "contentType")?
            .ok_or(SignatureError::BadAttribute("contentType"))?
            .decode_as::<ObjectIdentifier>()
            .map_err(bad("contentType"))?;
        let message_digest = single(ATTR_MESSAGE_DIGEST, "messageDigest")?
            .ok_or(SignatureError::BadAttribute("messageDigest"))?
            .decode_as::<OctetString>()
            .map_err(bad("messageDigest"))?
            .into_bytes();
        let signing_time = single(ATTR_SIGNING_TIME, "signingTime")?
            .map(|v| {
                let der = v.to_der().map_err(bad("signingTime"))?;
                x509_cert::time::Time::from_der(&der).map_err(bad("signingTime"))
            })
            .transpose()?
            .map(|t| t.to_unix_duration().as_secs());
        Ok(SignedAttrs {
            content_type,
            message_digest,
            signing_time,
        })
    }
}

/// Verifies the signer's signature over the DER `SET OF` signed attributes.
fn verify_signature(
    si: &SignerInfo,
    leaf_der: &CertificateDer<'_>,
    digest: DigestAlg,
) -> Result<(), SignatureError> {
    let attrs = si
        .signed_attrs
        .as_ref()
        .ok_or(SignatureError::MissingSignedAttributes)?;
    // RFC 5652 §5.4: the signature covers the attributes re-tagged as SET OF,
    // which is exactly the DER encoding of the SetOfVec.
    let message = attrs.to_der().map_err(malformed)?;
    let ee = EndEntityCert::try_from(leaf_der).map_err(malformed)?;
    let sig_oid = si.signature_algorithm.oid;
    let candidates = candidate_algs(&sig_oid, digest)
        .ok_or(SignatureError::UnsupportedSignatureAlgorithm(sig_oid))?;
    for alg in candidates {
        match ee.verify_signature(alg, &message, si.signature.as_bytes()) {
            Ok(()) => return Ok(()),
            // Wrong key type for this candidate: try the next one.
            Err(webpki::Error::UnsupportedSignatureAlgorithmForPublicKeyContext(_)) => continue,
            Err(_) => return Err(SignatureError::BadSignature),
        }
    }
    Err(SignatureError::UnsupportedSignatureAlgorithm(sig_oid))
}

/// The webpki algorithms that can match `signatureAlgorithm` with `digest`.
/// OpenSSL writes `ecdsa-with-SHA*` for EC keys and `rsaEncryption` for RSA.
fn candidate_algs(
    sig: &ObjectIdentifier,
    digest: DigestAlg,
) -> Option<Vec<&'static dyn SignatureVerificationAlgorithm>> {
    use const_oid::db::rfc5912 as o;
    use webpki::ring as r;
    let ecdsa = [
        o::ECDSA_WITH_SHA_256,
        o::ECDSA_WITH_SHA_384,
        o::ECDSA_WITH_SHA_512,
        o::ID_EC_PUBLIC_KEY,
    ];
    let rsa = [
        RSA_ENCRYPTION,
        o::SHA_256_WITH_RSA_ENCRYPTION,
        o::SHA_384_WITH_RSA_ENCRYPTION,
        o::SHA_512_WITH_RSA_ENCRYPTION,
    ];
    if ecdsa.contains(sig) {
        return match digest {
            DigestAlg::Sha256 => Some(vec![r::ECDSA_P256_SHA256, r::ECDSA_P384_SHA256]),
            DigestAlg::Sha384 => Some(vec![r::ECDSA_P256_SHA384, r::ECDSA_P384_SHA384]),
            DigestAlg::Sha512 => None,
        };
    }
    if rsa.contains(sig) {
        return Some(match digest {
            DigestAlg::Sha256 => vec![r::RSA_PKCS1_2048_8192_SHA256],
            DigestAlg::Sha384 => vec![r::RSA_PKCS1_2048_8192_SHA384],
            DigestAlg::Sha512 => vec![r::RSA_PKCS1_2048_8192_SHA512],
        });
    }
    if *sig == ED25519 {
        return Some(vec![r::ED25519]);
    }
    None
}

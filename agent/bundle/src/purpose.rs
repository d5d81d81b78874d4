//! RAUC's certificate purpose check (`[keyring] check-purpose`), measured
//! against the real rauc 1.8 / OpenSSL 3 (see the `purpose` integration test):
//!
//! | leaf EKU                  | default (smimesign) | codesign | any |
//! |---------------------------|---------------------|----------|-----|
//! | none                      | ok                  | refused  | ok  |
//! | codeSigning               | **refused**         | ok       | ok  |
//! | emailProtection           | ok                  | refused  | ok  |
//! | anyExtendedKeyUsage       | refused             | refused  | ok  |
//!
//! OpenSSL applies the purpose to every certificate of the chain: a CA that
//! carries an EKU must list the purpose's key purpose too. The leaf's
//! KeyUsage, when present, must allow signing.

use const_oid::db::rfc5280;
use der::asn1::ObjectIdentifier;
use der::Decode;
use serde::Serialize;
use x509_cert::ext::pkix::{ExtendedKeyUsage, KeyUsage, KeyUsages};
use x509_cert::Certificate;

/// Which purpose the signer chain must be fit for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Purpose {
    /// RAUC's default (no `check-purpose`): OpenSSL `smimesign`.
    #[default]
    SmimeSign,
    /// `check-purpose=codesign`: the leaf must carry EKU codeSigning.
    CodeSign,
    /// `check-purpose=any`: no purpose check at all.
    Any,
}

impl Purpose {
    /// The RAUC config spelling (`codesign-rauc` is the ≥1.12 alias).
    pub fn from_rauc_name(name: &str) -> Option<Self> {
        match name {
            "smimesign" => Some(Purpose::SmimeSign),
            "codesign" | "codesign-rauc" => Some(Purpose::CodeSign),
            "any" => Some(Purpose::Any),
            _ => None,
        }
    }

    fn eku(self) -> Option<ObjectIdentifier> {
        match self {
            Purpose::SmimeSign => Some(rfc5280::ID_KP_EMAIL_PROTECTION),
            Purpose::CodeSign => Some(rfc5280::ID_KP_CODE_SIGNING),
            Purpose::Any => None,
        }
    }
}

impl std::fmt::Display for Purpose {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Purpose::SmimeSign => "smimesign",
            Purpose::CodeSign => "codesign",
            Purpose::Any => "any",
        })
    }
}

/// Why a certificate does not fit the purpose (or its extensions are unreadable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PurposeFailure {
    Eku,
    KeyUsage,
    Malformed,
}

/// Checks one certificate of the chain; `is_leaf` selects the leaf rules.
pub fn check(cert: &Certificate, purpose: Purpose, is_leaf: bool) -> Result<(), PurposeFailure> {
    let Some(wanted) = purpose.eku() else {
        return Ok(());
    };
    let eku: Option<ExtendedKeyUsage> = extension(cert, rfc5280::ID_CE_EXT_KEY_USAGE)?;
    match (&eku, purpose, is_leaf) {
        (Some(list), _, _) if !list.0.contains(&wanted) => return Err(PurposeFailure::Eku),
        (None, Purpose::CodeSign, true) => return Err(PurposeFailure::Eku),
        _ => {}
    }
    if is_leaf {
        let ku: Option<KeyUsage> = extension(cert, rfc5280::ID_CE_KEY_USAGE)?;
        if let Some(ku) = ku {
            let ok = ku.0.contains(KeyUsages::DigitalSignature)
                || (purpose == Purpose::SmimeSign && ku.0.contains(KeyUsages::NonRepudiation));
            if !ok {
                return Err(PurposeFailure::KeyUsage);
            }
        }
    }
    Ok(())
}

fn extension<'a, T: Decode<'a>>(
    cert: &'a Certificate,
    oid: ObjectIdentifier,
) -> Result<Option<T>, PurposeFailure> {
    let Some(exts) = &cert.tbs_certificate.extensions else {
        return Ok(None);
    };
    match exts.iter().find(|e| e.extn_id == oid) {
        None => Ok(None),
        Some(e) => T::from_der(e.extn_value.as_bytes())
            .map(Some)
            .map_err(|_| PurposeFailure::Malformed),
    }
}

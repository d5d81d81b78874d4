//! Certificate making for `outpost-hub init`: a fleet CA, the hub's server certificate and one
//! client certificate per device. All keys are ECDSA P-256 (rcgen on the ring backend), which
//! every TLS stack the agents and operators use understands.

use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType, PKCS_ECDSA_P256_SHA256,
};

/// How long the fleet CA is valid.
pub const CA_VALID_YEARS: i32 = 10;
/// How long server and device certificates are valid.
pub const LEAF_VALID_YEARS: i32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("bad subject alternative name {0:?}: not an IP address or a DNS name (letters, digits, '-' and '.')")]
    BadSan(String),
    #[error("certificate generation failed: {0}")]
    Rcgen(#[from] rcgen::Error),
}

/// The fleet CA: signs the server certificate and every device certificate.
pub struct Ca {
    pub cert_pem: String,
    pub key_pem: String,
    pub cert_der: Vec<u8>,
    issuer: Issuer<'static, KeyPair>,
}

/// A certificate with its private key.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
    pub cert_der: Vec<u8>,
}

pub fn new_ca() -> Result<Ca, PkiError> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::OrganizationName, "Outpost");
    params
        .distinguished_name
        .push(DnType::CommonName, "Outpost fleet CA");
    // Path length 0: the fleet CA signs leaves only, never intermediate CAs.
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    set_validity(&mut params, CA_VALID_YEARS);
    let cert = params.self_signed(&key)?;
    Ok(Ca {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        cert_der: cert.der().to_vec(),
        issuer: Issuer::new(params, key),
    })
}

/// The hub's TLS server certificate. Names that parse as IP addresses become IP SANs, the rest
/// DNS SANs, so agents can reach the hub by either.
pub fn server_cert(ca: &Ca, sans: &[String]) -> Result<Issued, PkiError> {
    let mut params = CertificateParams::default();
    params.subject_alt_names = sans
        .iter()
        .map(|name| match name.parse::<IpAddr>() {
            Ok(ip) => Ok(SanType::IpAddress(ip)),
            Err(_) if is_dns_name(name) => name
                .clone()
                .try_into()
                .map(SanType::DnsName)
                .map_err(PkiError::Rcgen),
            Err(_) => Err(PkiError::BadSan(name.chars().take(80).collect())),
        })
        .collect::<Result<_, _>>()?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, "outpost-hub");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    issue_leaf(ca, params)
}

/// A hostname TLS clients can match: dot-separated labels of letters, digits and inner
/// hyphens, optionally starting with a `*.` wildcard.
fn is_dns_name(name: &str) -> bool {
    let name = name.strip_prefix("*.").unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// A device's TLS client certificate: the hub takes the device id from its CN.
pub fn device_cert(ca: &Ca, device_id: &str) -> Result<Issued, PkiError> {
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, device_id);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    issue_leaf(ca, params)
}

fn issue_leaf(ca: &Ca, mut params: CertificateParams) -> Result<Issued, PkiError> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    set_validity(&mut params, LEAF_VALID_YEARS);
    let cert = params.signed_by(&key, &ca.issuer)?;
    Ok(Issued {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        cert_der: cert.der().to_vec(),
    })
}

/// Valid from the start of today (UTC) for `years` years. Starting at midnight rather than
/// "now" tolerates devices whose clocks are a few hours behind.
fn set_validity(params: &mut CertificateParams, years: i32) {
    let days = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() / 86_400)
        .unwrap_or(0);
    let (y, m, d) = civil_from_days(i64::try_from(days).unwrap_or(0));
    // Day 28 at most so that adding years never lands on a 29 February that does not exist.
    params.not_before = rcgen::date_time_ymd(y, m, d);
    params.not_after = rcgen::date_time_ymd(y + years, m, d.min(28));
}

/// Gregorian (year, month, day) of a day count since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i32, u8, u8) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    // Ranges: m in 1..=12 and d in 1..=31 by construction; y fits i32 for any real clock.
    (y as i32, m as u8, d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_779), (2026, 11, 22));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn bad_san_is_an_error() {
        let ca = new_ca().unwrap();
        for bad in ["bad name!", "", "a..b", "-a.example", "ä.example"] {
            assert!(
                matches!(server_cert(&ca, &[bad.into()]), Err(PkiError::BadSan(_))),
                "{bad:?}"
            );
        }
        assert!(server_cert(
            &ca,
            &[
                "hub.example.com".into(),
                "*.edge.example".into(),
                "::1".into()
            ]
        )
        .is_ok());
    }
}

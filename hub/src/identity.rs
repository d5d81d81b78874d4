//! Who is talking to the hub: the device id is the Common Name of the TLS client leaf
//! certificate (for native uploads) or the name a legacy device key maps to.

use x509_parser::prelude::{FromDer, X509Certificate};

/// Longest accepted device id, in bytes.
pub const MAX_DEVICE_ID_LEN: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("client certificate is not valid DER X.509")]
    BadCertificate,
    #[error("client certificate has no subject Common Name")]
    NoCommonName,
    #[error("bad device id {0:?}: 1 to 64 characters from A-Z a-z 0-9 . _ -, starting with a letter or digit")]
    BadDeviceId(String),
}

/// Device ids end up in file names, logs and SQL filters, so they are kept to a boring
/// alphabet; `init` names devices `device-001` and so on.
pub fn validate_device_id(id: &str) -> Result<(), IdentityError> {
    let bytes = id.as_bytes();
    let starts_ok = bytes.first().is_some_and(u8::is_ascii_alphanumeric);
    let all_ok = bytes
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if starts_ok && all_ok && bytes.len() <= MAX_DEVICE_ID_LEN {
        Ok(())
    } else {
        Err(IdentityError::BadDeviceId(id.chars().take(80).collect()))
    }
}

/// The device id carried by a client leaf certificate (DER): its first subject CN.
/// The chain was already verified against the fleet CA by rustls before this runs.
pub fn device_id_from_cert(der: &[u8]) -> Result<String, IdentityError> {
    let (_, cert) = X509Certificate::from_der(der).map_err(|_| IdentityError::BadCertificate)?;
    let cn = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .ok_or(IdentityError::NoCommonName)?;
    validate_device_id(cn)?;
    Ok(cn.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_ids() {
        for ok in ["device-001", "a", "edge.7_b-c"] {
            assert!(validate_device_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", "a b", "a/b", "ä", &"a".repeat(65)] {
            assert!(validate_device_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn cn_is_extracted_from_issued_cert() {
        let ca = crate::pki::new_ca().unwrap();
        let dev = crate::pki::device_cert(&ca, "device-042").unwrap();
        assert_eq!(device_id_from_cert(&dev.cert_der).unwrap(), "device-042");
        assert_eq!(
            device_id_from_cert(b"garbage"),
            Err(IdentityError::BadCertificate)
        );
    }
}

//! Entry points for the (out-of-workspace) fuzz crate. Not a stable API.

/// Manifest parsing and all its checks.
pub fn manifest(data: &[u8]) {
    if let Ok(m) = crate::Manifest::parse(data) {
        let _ = m.check_internal();
        let _ = m.verity_params();
    }
}

/// Trailer split followed by CMS parsing (no verification: no keyring).
pub fn trailer_and_cms(data: &[u8]) {
    if let Ok((_payload, cms)) = crate::trailer::split(data) {
        if let Ok(signed) = crate::signature::SignedCms::parse(cms) {
            let _ = signed.content();
            let _ = signed.digest_alg();
        }
    }
}

/// CMS parsing of raw DER.
pub fn cms(data: &[u8]) {
    let _ = crate::signature::SignedCms::parse(data);
}

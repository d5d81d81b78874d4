//! P-256 encodings shared by the backends and adapters: (r, s) -> DER, SEC1 point <-> SPKI.

use p256::pkcs8::{DecodePublicKey, EncodePublicKey};

use crate::IdentityError;

/// Size of a P-256 scalar and of each point coordinate.
pub(crate) const SCALAR_LEN: usize = 32;

/// DER `ECDSA-Sig-Value` from big-endian r and s as a TPM returns them: the TPM strips
/// leading zero bytes, so each may be shorter than 32 bytes (and must be left-padded).
pub(crate) fn der_from_r_s(r: &[u8], s: &[u8]) -> Result<Vec<u8>, IdentityError> {
    let mut rs = [0u8; 2 * SCALAR_LEN];
    left_pad_into(r, &mut rs[..SCALAR_LEN])?;
    left_pad_into(s, &mut rs[SCALAR_LEN..])?;
    // from_slice also rejects r or s equal to zero or not below the group order.
    let sig = p256::ecdsa::Signature::from_slice(&rs)
        .map_err(|e| IdentityError::BadSignature(e.to_string()))?;
    Ok(sig.to_der().as_bytes().to_vec())
}

/// Copy a big-endian integer into `out`, right-aligned; leading zero bytes beyond the width
/// are allowed (some encoders keep them), real overflow is not.
fn left_pad_into(value: &[u8], out: &mut [u8]) -> Result<(), IdentityError> {
    let first_nonzero = value.iter().position(|b| *b != 0).unwrap_or(value.len());
    let digits = &value[first_nonzero..];
    if digits.len() > out.len() {
        return Err(IdentityError::BadSignature(format!(
            "component is {} bytes, P-256 allows {}",
            digits.len(),
            out.len()
        )));
    }
    let start = out.len() - digits.len();
    out[start..].copy_from_slice(digits);
    Ok(())
}

/// Uncompressed SEC1 point (0x04 || X || Y) from coordinates that may be shorter than 32 bytes.
pub(crate) fn sec1_from_xy(x: &[u8], y: &[u8]) -> Result<Vec<u8>, IdentityError> {
    let mut point = vec![0u8; 1 + 2 * SCALAR_LEN];
    point[0] = 0x04;
    left_pad_into(x, &mut point[1..1 + SCALAR_LEN])
        .map_err(|_| IdentityError::BadPublicKey("X coordinate too long".into()))?;
    left_pad_into(y, &mut point[1 + SCALAR_LEN..])
        .map_err(|_| IdentityError::BadPublicKey("Y coordinate too long".into()))?;
    Ok(point)
}

/// SPKI DER for an uncompressed SEC1 point; fails unless the point is on the curve.
pub(crate) fn spki_from_sec1(point: &[u8]) -> Result<Vec<u8>, IdentityError> {
    let key = p256::PublicKey::from_sec1_bytes(point)
        .map_err(|_| IdentityError::BadPublicKey("not a point on P-256".into()))?;
    let der = key
        .to_public_key_der()
        .map_err(|e| IdentityError::BadPublicKey(e.to_string()))?;
    Ok(der.as_bytes().to_vec())
}

/// Uncompressed SEC1 point for an SPKI DER (what rcgen calls the raw public key).
pub(crate) fn sec1_from_spki(spki: &[u8]) -> Result<Vec<u8>, IdentityError> {
    let key = p256::PublicKey::from_public_key_der(spki)
        .map_err(|e| IdentityError::BadPublicKey(e.to_string()))?;
    Ok(key.to_sec1_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::hazmat::PrehashVerifier;
    use p256::ecdsa::{signature::hazmat::PrehashSigner, SigningKey};
    use sha2::{Digest, Sha256};

    #[test]
    fn short_r_and_s_are_left_padded_into_valid_der() {
        let key = SigningKey::from_slice(&[7u8; 32]).unwrap();
        let digest = Sha256::digest(b"msg");
        let mut found_short = false;
        // Sign many digests until one has a leading zero byte in r or s: then strip it,
        // as a TPM does, and check the DER still verifies.
        for i in 0u32..2000 {
            let digest = Sha256::digest([digest.as_slice(), &i.to_be_bytes()].concat());
            let sig: p256::ecdsa::Signature = key.sign_prehash(&digest).unwrap();
            let bytes = sig.to_bytes();
            let (r, s) = bytes.split_at(32);
            if r[0] != 0 && s[0] != 0 {
                continue;
            }
            found_short = true;
            let strip = |v: &[u8]| v[v.iter().position(|b| *b != 0).unwrap()..].to_vec();
            let der = der_from_r_s(&strip(r), &strip(s)).unwrap();
            let parsed = p256::ecdsa::Signature::from_der(&der).unwrap();
            key.verifying_key()
                .verify_prehash(&digest, &parsed)
                .unwrap();
            assert_eq!(parsed, sig);
        }
        assert!(found_short, "expected a signature with a short component");
    }

    #[test]
    fn oversized_or_zero_components_are_rejected() {
        assert!(der_from_r_s(&[1u8; 33], &[1u8; 32]).is_err());
        assert!(der_from_r_s(&[], &[1u8; 32]).is_err());
        // A leading zero beyond 32 bytes is fine.
        let mut r = vec![0u8];
        r.extend([1u8; 32]);
        assert!(der_from_r_s(&r, &[1u8; 32]).is_ok());
    }

    #[test]
    fn spki_and_sec1_round_trip_and_reject_off_curve_points() {
        let key = SigningKey::from_slice(&[9u8; 32]).unwrap();
        let point = key.verifying_key().to_encoded_point(false);
        let spki = spki_from_sec1(point.as_bytes()).unwrap();
        assert_eq!(sec1_from_spki(&spki).unwrap(), point.as_bytes());
        let mut bad = point.as_bytes().to_vec();
        bad[64] ^= 1;
        assert!(spki_from_sec1(&bad).is_err());
        assert!(sec1_from_spki(b"not der").is_err());
    }
}

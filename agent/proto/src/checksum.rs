//! SHA-256 checksums of record payloads, as lowercase hex.

use sha2::{Digest, Sha256};

/// Lowercase hex SHA-256 (64 characters).
pub type Sha256Hex = String;

pub fn sha256_hex(bytes: &[u8]) -> Sha256Hex {
    hex::encode(Sha256::digest(bytes))
}

/// Whether `expected` (hex, any case) is the SHA-256 of `bytes`. Checksums are not secrets,
/// so an ordinary comparison is fine here.
pub fn matches(bytes: &[u8], expected: &str) -> bool {
    expected.len() == 64 && sha256_hex(bytes).eq_ignore_ascii_case(expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vector() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(matches(
            b"abc",
            "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"
        ));
        assert!(!matches(
            b"abd",
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        ));
        assert!(!matches(b"abc", "ba78"));
    }
}

//! Independent verifiers: ring (the webpki path) and the openssl command line.

use std::path::Path;
use std::process::Command;

use p256::pkcs8::{DecodePublicKey, EncodePublicKey, LineEnding};

/// ring's ECDSA_P256_SHA256_ASN1: DER signature over the unhashed message.
pub fn ring_verifies(spki_der: &[u8], msg: &[u8], sig_der: &[u8]) -> bool {
    let point = p256::PublicKey::from_public_key_der(spki_der)
        .unwrap()
        .to_sec1_bytes();
    ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_ASN1, &point)
        .verify(msg, sig_der)
        .is_ok()
}

/// `openssl dgst -sha256 -verify pub.pem -signature sig.der msg`.
pub fn openssl_verifies(dir: &Path, spki_der: &[u8], msg: &[u8], sig_der: &[u8]) -> bool {
    let pem = p256::PublicKey::from_public_key_der(spki_der)
        .unwrap()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    std::fs::write(dir.join("pub.pem"), pem).unwrap();
    std::fs::write(dir.join("sig.der"), sig_der).unwrap();
    std::fs::write(dir.join("msg.bin"), msg).unwrap();
    let out = Command::new("openssl")
        .current_dir(dir)
        .args([
            "dgst",
            "-sha256",
            "-verify",
            "pub.pem",
            "-signature",
            "sig.der",
            "msg.bin",
        ])
        .output()
        .expect("run openssl");
    out.status.success() && String::from_utf8_lossy(&out.stdout).contains("Verified OK")
}

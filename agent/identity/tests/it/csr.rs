//! CSRs signed by the backend key, checked by openssl and by the CA side (rcgen).

use std::process::Command;

use outpost_identity::{make_csr, FileKey, IdentityError, KeyBackend, TpmConfig, TpmKey};
use p256::pkcs8::{DecodePublicKey, EncodePublicKey, LineEnding};

use outpost_testkit::Swtpm;

fn openssl_req(dir: &std::path::Path, csr_pem: &str, args: &[&str]) -> (bool, String) {
    let path = dir.join("req.pem");
    std::fs::write(&path, csr_pem).unwrap();
    let out = Command::new("openssl")
        .args(["req", "-noout", "-in"])
        .arg(&path)
        .args(args)
        .output()
        .expect("run openssl");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn spki_pem(spki: &[u8]) -> String {
    p256::PublicKey::from_public_key_der(spki)
        .unwrap()
        .to_public_key_pem(LineEnding::LF)
        .unwrap()
}

#[test]
fn tpm_csr_verifies_with_openssl_and_carries_the_tpm_key() {
    let dir = tempfile::tempdir().unwrap();
    let tpm = Swtpm::start(&dir.path().join("tpm"));
    let key = TpmKey::open_or_create(&TpmConfig {
        tcti: tpm.tcti(),
        ..TpmConfig::in_state_dir(&dir.path().join("state"))
    })
    .unwrap();
    let csr = make_csr(&key, "device-0001").unwrap();

    let (ok, text) = openssl_req(dir.path(), &csr, &["-verify"]);
    assert!(ok && text.contains("verify OK"), "{text}");
    let (ok, text) = openssl_req(dir.path(), &csr, &["-pubkey"]);
    assert!(ok);
    assert_eq!(text.trim(), spki_pem(key.public_key_spki_der()).trim());
    let (_, text) = openssl_req(dir.path(), &csr, &["-subject"]);
    assert!(
        text.contains("CN = device-0001") || text.contains("CN=device-0001"),
        "{text}"
    );

    // Tampering must break the signature check.
    let mut der = rustls::pki_types::pem::PemObject::from_pem_slice(csr.as_bytes())
        .map(|d: rustls::pki_types::CertificateSigningRequestDer<'_>| d.as_ref().to_vec())
        .unwrap();
    let cn = der.windows(11).position(|w| w == b"device-0001").unwrap();
    der[cn] = b'D';
    let tampered = pem_of("CERTIFICATE REQUEST", &der);
    // openssl 3.0 `req -verify` exits 0 either way; only the message tells.
    let (_, text) = openssl_req(dir.path(), &tampered, &["-verify"]);
    assert!(
        !text.contains("verify OK"),
        "openssl accepted a tampered CSR: {text}"
    );
    assert!(text.contains("verify failure"), "{text}");
}

#[test]
fn file_key_csr_is_accepted_by_the_ca_side() {
    let dir = tempfile::tempdir().unwrap();
    let key = FileKey::open_or_create(&dir.path().join("identity.pem")).unwrap();
    let csr = make_csr(&key, "device-0002").unwrap();
    let req = rcgen::CertificateSigningRequestParams::from_pem(&csr).expect("signature verifies");
    let point = p256::PublicKey::from_public_key_der(key.public_key_spki_der())
        .unwrap()
        .to_sec1_bytes();
    assert_eq!(rcgen::PublicKeyData::der_bytes(&req.public_key), &point[..]);
}

#[test]
fn empty_common_name_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let key = FileKey::open_or_create(&dir.path().join("identity.pem")).unwrap();
    assert!(matches!(make_csr(&key, ""), Err(IdentityError::Csr(_))));
}

fn pem_of(label: &str, der: &[u8]) -> String {
    // Minimal base64 so the test needs no extra crate.
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::new();
    for chunk in der.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                b64.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                b64.push('=');
            }
        }
    }
    let body: Vec<String> = b64
        .as_bytes()
        .chunks(64)
        .map(|l| String::from_utf8_lossy(l).into())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        body.join("\n")
    )
}

//! The TPM backend against a real swtpm.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use p256::pkcs8::DecodePublicKey;

use outpost_identity::{IdentityError, KeyBackend, KeyProtection, TpmConfig, TpmErrorKind, TpmKey};

use crate::support::verify::{openssl_verifies, ring_verifies};
use outpost_testkit::Swtpm;

fn config(tpm: &Swtpm, state_dir: &Path) -> TpmConfig {
    TpmConfig {
        tcti: tpm.tcti(),
        ..TpmConfig::in_state_dir(state_dir)
    }
}

#[test]
fn key_is_created_once_and_reused_by_a_new_context() {
    let dir = tempfile::tempdir().unwrap();
    let tpm = Swtpm::start(&dir.path().join("tpm"));
    let cfg = config(&tpm, &dir.path().join("state"));

    let first = TpmKey::open_or_create(&cfg).unwrap();
    assert_eq!(first.protection(), KeyProtection::Tpm);
    let blob = std::fs::read(&cfg.key_blob).unwrap();
    let mode = std::fs::metadata(&cfg.key_blob)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let spki = first.public_key_spki_der().to_vec();
    drop(first);

    let second = TpmKey::open_or_create(&cfg).unwrap();
    assert_eq!(second.public_key_spki_der(), spki, "a new key was made");
    assert_eq!(
        std::fs::read(&cfg.key_blob).unwrap(),
        blob,
        "blob rewritten"
    );
    let sig = second.sign_sha256(b"reused").unwrap();
    assert!(ring_verifies(&spki, b"reused", &sig));
}

#[test]
fn key_survives_a_tpm_power_cut_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let tpm = Swtpm::start(&dir.path().join("tpm"));
    let cfg = config(&tpm, &dir.path().join("state"));
    let key = TpmKey::open_or_create(&cfg).unwrap();
    let spki = key.public_key_spki_der().to_vec();
    // Sign before the cut: with a DA-protected key an unorderly shutdown after use would
    // count as an authorization failure; noDA keys must keep working however often it happens.
    key.sign_sha256(b"before").unwrap();
    drop(key);

    let mut tpm = tpm;
    for round in 0..4 {
        tpm = tpm.restart();
        let key = TpmKey::open_or_create(&config(&tpm, &dir.path().join("state"))).unwrap();
        assert_eq!(
            key.public_key_spki_der(),
            spki,
            "round {round}: key changed"
        );
        let sig = key.sign_sha256(b"after").unwrap();
        assert!(ring_verifies(&spki, b"after", &sig), "round {round}");
    }
}

#[test]
fn signatures_verify_with_ring_and_openssl() {
    let dir = tempfile::tempdir().unwrap();
    let tpm = Swtpm::start(&dir.path().join("tpm"));
    let key = TpmKey::open_or_create(&config(&tpm, &dir.path().join("state"))).unwrap();
    let spki = key.public_key_spki_der();
    for i in 0..16u8 {
        let msg = vec![i; 100 + usize::from(i)];
        let sig = key.sign_sha256(&msg).unwrap();
        assert!(
            ring_verifies(spki, &msg, &sig),
            "ring rejected signature {i}"
        );
        assert!(!ring_verifies(spki, b"other message", &sig));
    }
    let sig = key.sign_sha256(b"checked by openssl").unwrap();
    assert!(openssl_verifies(
        dir.path(),
        spki,
        b"checked by openssl",
        &sig
    ));
    assert!(!openssl_verifies(dir.path(), spki, b"tampered", &sig));
}

#[test]
fn signing_from_many_threads_is_serialized_safely() {
    let dir = tempfile::tempdir().unwrap();
    let tpm = Swtpm::start(&dir.path().join("tpm"));
    let key: Arc<dyn KeyBackend> =
        Arc::new(TpmKey::open_or_create(&config(&tpm, &dir.path().join("state"))).unwrap());
    let threads: Vec<_> = (0..4u8)
        .map(|t| {
            let key = Arc::clone(&key);
            std::thread::spawn(move || {
                for i in 0..4u8 {
                    let msg = [t, i];
                    let sig = key.sign_sha256(&msg).unwrap();
                    assert!(ring_verifies(key.public_key_spki_der(), &msg, &sig));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

/// tpm2-tools reads our blob's public half as a TPM2B_PUBLIC and shows the attributes
/// the TPM actually gave the key.
#[test]
fn stored_public_area_has_the_required_attributes_per_tpm2_print() {
    let dir = tempfile::tempdir().unwrap();
    let tpm = Swtpm::start(&dir.path().join("tpm"));
    let cfg = config(&tpm, &dir.path().join("state"));
    let spki = TpmKey::open_or_create(&cfg)
        .unwrap()
        .public_key_spki_der()
        .to_vec();

    let blob = std::fs::read(&cfg.key_blob).unwrap();
    let magic = b"OUTPOST-TPMKEY1\n".len();
    let len = usize::from(u16::from_be_bytes([blob[magic], blob[magic + 1]]));
    let public = &blob[magic..magic + 2 + len];
    let pub_path = dir.path().join("key.pub");
    std::fs::write(&pub_path, public).unwrap();
    let out = Command::new("tpm2_print")
        .args(["-t", "TPM2B_PUBLIC"])
        .arg(&pub_path)
        .output()
        .expect("run tpm2_print (tpm2-tools)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "tpm2_print failed: {text}");
    let attrs = text
        .lines()
        .find(|l| l.trim_start().starts_with("value:") && l.contains("fixedtpm"))
        .unwrap_or_else(|| panic!("no attributes in {text}"));
    for want in [
        "fixedtpm",
        "fixedparent",
        "sensitivedataorigin",
        "userwithauth",
        "noda",
        "sign",
    ] {
        assert!(
            attrs.split('|').any(|a| a.trim().ends_with(want)),
            "{want} missing: {attrs}"
        );
    }
    for unwanted in ["decrypt", "restricted"] {
        assert!(!attrs.contains(unwanted), "{unwanted} set: {attrs}");
    }
    assert!(text.contains("NIST p256"), "{text}");
    assert!(text.contains("scheme:\n  value: ecdsa"), "{text}");
    assert!(text.contains("scheme-halg:\n  value: sha256"), "{text}");
    // The point tpm2-tools sees is the one the backend reports.
    let point = p256::PublicKey::from_public_key_der(&spki)
        .unwrap()
        .to_sec1_bytes();
    assert!(
        text.contains(&format!("x: {}", hex(&point[1..33]))),
        "{text}"
    );
    assert!(
        text.contains(&format!("y: {}", hex(&point[33..]))),
        "{text}"
    );
}

#[test]
fn a_blob_from_another_tpm_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let tpm_a = Swtpm::start(&dir.path().join("tpm-a"));
    let tpm_b = Swtpm::start(&dir.path().join("tpm-b"));
    let state = dir.path().join("state");
    drop(TpmKey::open_or_create(&config(&tpm_a, &state)).unwrap());
    let blob = std::fs::read(state.join(TpmConfig::KEY_BLOB_FILE)).unwrap();

    match TpmKey::open_or_create(&config(&tpm_b, &state)) {
        Err(IdentityError::Tpm { kind, .. }) => assert_eq!(kind, TpmErrorKind::WrongTpm),
        other => panic!("expected WrongTpm, got {other:?}"),
    }
    // Never silently replaced with a new identity.
    assert_eq!(
        std::fs::read(state.join(TpmConfig::KEY_BLOB_FILE)).unwrap(),
        blob
    );
}

#[test]
fn loose_or_corrupt_blobs_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let tpm = Swtpm::start(&dir.path().join("tpm"));
    let cfg = config(&tpm, &dir.path().join("state"));
    drop(TpmKey::open_or_create(&cfg).unwrap());

    std::fs::set_permissions(&cfg.key_blob, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = TpmKey::open_or_create(&cfg).unwrap_err();
    assert!(
        matches!(err, IdentityError::InsecurePermissions { mode: 0o644, .. }),
        "{err:?}"
    );

    std::fs::set_permissions(&cfg.key_blob, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut blob = std::fs::read(&cfg.key_blob).unwrap();
    blob.truncate(blob.len() - 1);
    std::fs::write(&cfg.key_blob, &blob).unwrap();
    let err = TpmKey::open_or_create(&cfg).unwrap_err();
    assert!(matches!(err, IdentityError::BadKeyBlob { .. }), "{err:?}");
}

#[test]
fn an_unreachable_tpm_or_bad_tcti_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let tpm = Swtpm::start(&dir.path().join("tpm"));
    let port = tpm.port();
    drop(tpm); // nothing listens there any more
    for tcti in [
        format!("swtpm:host=127.0.0.1,port={port}"),
        "nonsense:xyz".to_string(),
    ] {
        let cfg = TpmConfig {
            tcti: tcti.clone(),
            key_blob: dir.path().join("state/identity.tpmkey"),
        };
        let err = TpmKey::open_or_create(&cfg).unwrap_err();
        assert!(
            matches!(err, IdentityError::TpmUnavailable { .. }),
            "{tcti}: {err:?}"
        );
        assert!(!cfg.key_blob.exists(), "a blob was written without a TPM");
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Interoperability: tpm2-tools derives the same SRK from the same template, loads our blob
/// under it and reads back the same public key. This pins the SRK template to the standard
/// ECC SRK shape and the blob halves to the tpm2-tools file formats.
#[test]
fn tpm2_tools_loads_our_blob_under_its_own_srk() {
    let dir = tempfile::tempdir().unwrap();
    let tpm = Swtpm::start(&dir.path().join("tpm"));
    let cfg = config(&tpm, &dir.path().join("state"));
    let spki = TpmKey::open_or_create(&cfg)
        .unwrap()
        .public_key_spki_der()
        .to_vec();

    let theirs = tpm.read_public_of_key_blob(&cfg.key_blob, &dir.path().join("tools"));
    assert_eq!(theirs, spki);
}

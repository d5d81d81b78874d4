//! The software backend.

use std::os::unix::fs::PermissionsExt;

use outpost_identity::{
    open_backend, BackendConfig, FileKey, IdentityError, KeyBackend, KeyProtection,
};

use crate::support::verify::{openssl_verifies, ring_verifies};

#[test]
fn created_0600_from_the_start_and_reused_across_loads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state/identity.pem");
    let first = FileKey::open_or_create(&path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let pem = std::fs::read_to_string(&path).unwrap();
    assert!(
        pem.starts_with("-----BEGIN PRIVATE KEY-----"),
        "not PKCS#8 PEM"
    );

    let second = FileKey::open_or_create(&path).unwrap();
    let third = FileKey::open(&path).unwrap();
    assert_eq!(first.public_key_spki_der(), second.public_key_spki_der());
    assert_eq!(first.public_key_spki_der(), third.public_key_spki_der());
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        pem,
        "file rewritten"
    );
}

#[test]
fn group_or_world_readable_key_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("identity.pem");
    drop(FileKey::open_or_create(&path).unwrap());
    let before = std::fs::read(&path).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();

    let err = FileKey::open_or_create(&path).unwrap_err();
    assert!(
        matches!(err, IdentityError::InsecurePermissions { mode: 0o644, .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("identity.pem") && msg.contains("644"), "{msg}");
    // Neither replaced nor chmod-ed behind the operator's back.
    assert_eq!(std::fs::read(&path).unwrap(), before);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644);
}

#[test]
fn corrupt_or_missing_key_files_are_errors_that_do_not_quote_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("identity.pem");
    assert!(matches!(
        FileKey::open(&path),
        Err(IdentityError::Io { .. })
    ));

    let secret_looking =
        "-----BEGIN PRIVATE KEY-----\nU0VDUkVUU0VDUkVU\n-----END PRIVATE KEY-----\n";
    std::fs::write(&path, secret_looking).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let err = FileKey::open_or_create(&path).unwrap_err();
    assert!(matches!(err, IdentityError::BadKeyFile { .. }), "{err:?}");
    assert!(!format!("{err} {err:?}").contains("U0VDUkVU"));
}

#[test]
fn explicit_file_backend_signs_verifiably_and_reports_software() {
    let dir = tempfile::tempdir().unwrap();
    let backend = open_backend(&BackendConfig::File {
        path: dir.path().join("identity.pem"),
    })
    .unwrap();
    assert_eq!(backend.protection(), KeyProtection::Software);
    assert_eq!(backend.protection().as_str(), "software");
    let sig = backend.sign_sha256(b"file key").unwrap();
    assert!(ring_verifies(
        backend.public_key_spki_der(),
        b"file key",
        &sig
    ));
    assert!(openssl_verifies(
        dir.path(),
        backend.public_key_spki_der(),
        b"file key",
        &sig
    ));
    assert!(!format!("{backend:?}").contains("PRIVATE"));
}

//! The device half of TPM enrollment (EK, AK, ActivateCredential, Certify) against a real
//! swtpm manufactured with EK certificates, checked by the hub's half (outpost-attest).

use std::path::Path;
use std::process::Command;
use std::time::SystemTime;

use outpost_attest::evidence::{challenge, verify_answer, Evidence};
use outpost_attest::{AttestError, EkPolicy, EkTrust};
use outpost_identity::{KeyBackend, TpmConfig, TpmEvidence, TpmKey};
use outpost_testkit::ek_ca::EkCa;
use outpost_testkit::Swtpm;

fn der(pem: &Path) -> Vec<u8> {
    outpost_testkit::cmd::run(
        Command::new("openssl")
            .args(["x509", "-outform", "DER", "-in"])
            .arg(pem),
    )
    .stdout
}

fn policy(ca: &EkCa) -> EkPolicy {
    EkPolicy::new(vec![der(&ca.root_cert()), der(&ca.issuer_cert())], &[]).unwrap()
}

fn evidence(e: &TpmEvidence) -> Evidence<'_> {
    Evidence {
        ek_certificate: e.ek_certificate.as_deref(),
        ek_public: &e.ek_public,
        srk_public: &e.srk_public,
        ak_public: &e.ak_public,
        key_public: &e.key_public,
    }
}

fn open(tpm: &Swtpm, state: &Path) -> TpmKey {
    TpmKey::open_or_create(&TpmConfig {
        tcti: tpm.tcti(),
        key_blob: state.join("identity.tpmkey"),
    })
    .unwrap()
}

#[test]
fn the_device_proves_its_key_is_in_the_tpm_that_holds_a_certified_ek() {
    let dir = tempfile::tempdir().unwrap();
    let ca = EkCa::new(&dir.path().join("ca"));
    ca.manufacture(&dir.path().join("tpm"));
    let tpm = Swtpm::start(&dir.path().join("tpm"));
    let key = open(&tpm, dir.path());
    let attestor = key.attestor().expect("a TPM key can attest");

    let ev = attestor.evidence().unwrap();
    assert!(
        ev.ek_certificate.is_some(),
        "swtpm_setup stored an EK certificate"
    );
    let (credential, pending) = challenge(
        &policy(&ca),
        &evidence(&ev),
        key.public_key_spki_der(),
        SystemTime::now(),
        &mut rand_core::OsRng,
    )
    .unwrap();
    assert_eq!(pending.trusted.trust, EkTrust::Certificate);
    let answer = attestor
        .answer(
            &ev,
            &credential.id_object,
            &credential.encrypted_secret,
            &pending.nonce,
        )
        .unwrap();
    verify_answer(
        &pending,
        &answer.secret,
        &answer.certify_info,
        &answer.certify_signature,
    )
    .unwrap();

    // A certify over another nonce (a replayed answer) is refused.
    let replay = attestor
        .answer(
            &ev,
            &credential.id_object,
            &credential.encrypted_secret,
            b"an old nonce",
        )
        .unwrap();
    assert!(matches!(
        verify_answer(&pending, &replay.secret, &replay.certify_info, &replay.certify_signature),
        Err(AttestError::ProofFailed(m)) if m.contains("nonce")
    ));

    // The device id is the EK's, so it is the same after a power cut and for a new AK; the
    // key still signs afterwards (no dictionary-attack lockout from the AK or EK use).
    let tpm = tpm.restart();
    let key = open(&tpm, dir.path());
    let again = key.attestor().unwrap().evidence().unwrap();
    assert_ne!(again.ak_public, ev.ak_public, "a fresh AK each enrollment");
    let (_, pending_again) = challenge(
        &policy(&ca),
        &evidence(&again),
        key.public_key_spki_der(),
        SystemTime::now(),
        &mut rand_core::OsRng,
    )
    .unwrap();
    assert_eq!(pending_again.trusted.device_id, pending.trusted.device_id);
    key.sign_sha256(b"still usable").unwrap();
}

#[test]
fn a_key_from_another_tpm_cannot_ride_on_this_tpms_evidence() {
    let dir = tempfile::tempdir().unwrap();
    let ca = EkCa::new(&dir.path().join("ca"));
    ca.manufacture(&dir.path().join("tpm-a"));
    let tpm_a = Swtpm::start(&dir.path().join("tpm-a"));
    let tpm_b = Swtpm::start(&dir.path().join("tpm-b"));
    let key_a = open(&tpm_a, &dir.path().join("tpm-a"));
    let key_b = open(&tpm_b, &dir.path().join("tpm-b"));
    let ev_a = key_a.attestor().unwrap().evidence().unwrap();
    let ev_b = key_b.attestor().unwrap().evidence().unwrap();

    // TPM A's EK and AK with TPM B's device key (whose CSR the attacker can make): TPM A
    // cannot certify a key it does not hold, and TPM B's certify is not by A's AK.
    let mut mixed = ev_a.clone();
    mixed.key_public = ev_b.key_public.clone();
    mixed.srk_public = ev_b.srk_public.clone();
    let (credential, pending) = challenge(
        &policy(&ca),
        &evidence(&mixed),
        key_b.public_key_spki_der(),
        SystemTime::now(),
        &mut rand_core::OsRng,
    )
    .unwrap();
    let from_a = key_a
        .attestor()
        .unwrap()
        .answer(
            &ev_a,
            &credential.id_object,
            &credential.encrypted_secret,
            &pending.nonce,
        )
        .unwrap();
    assert!(matches!(
        verify_answer(&pending, &from_a.secret, &from_a.certify_info, &from_a.certify_signature),
        Err(AttestError::ProofFailed(m)) if m.contains("another key")
    ));
    // TPM B cannot activate a credential made for TPM A's EK.
    assert!(key_b
        .attestor()
        .unwrap()
        .answer(
            &ev_b,
            &credential.id_object,
            &credential.encrypted_secret,
            &pending.nonce,
        )
        .is_err());
}

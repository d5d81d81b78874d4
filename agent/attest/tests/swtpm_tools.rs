//! The hub's side of TPM enrollment against a real TPM driven by tpm2-tools: an swtpm made
//! with EK certificates by a local manufacturer CA (`swtpm_setup --create-ek-cert`), the EK and
//! AK from `tpm2_createek`/`tpm2_createak`, our software MakeCredential answered by
//! `tpm2_activatecredential`; EK trust by certificate chain and allowlist. (TPM2_Certify over
//! a nonce, which tpm2-tools 5.4 cannot make, is tested with the device code in
//! outpost-identity.)

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use outpost_attest::evidence::{challenge, p256_spki_der, verify_answer, Evidence, Pending};
use outpost_attest::{ek_device_id, AttestError, Credential, EkPolicy, EkTrust, TpmPublic};
use outpost_testkit::cmd::run;
use outpost_testkit::ek_ca::EkCa;
use outpost_testkit::swtpm::Swtpm;

/// One manufactured TPM with an EK, an AK, an SRK and a device key made by tpm2-tools.
struct Fixture {
    _tmp: tempfile::TempDir,
    work: PathBuf,
    ca: EkCa,
    tpm: Swtpm,
}

impl Fixture {
    fn new() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let ca = EkCa::new(&tmp.path().join("ca"));
        ca.manufacture(&tmp.path().join("tpm"));
        let tpm = Swtpm::start(&tmp.path().join("tpm"));
        let work = tmp.path().join("work");
        std::fs::create_dir_all(&work).unwrap();
        let f = Fixture {
            work,
            ca,
            tpm,
            _tmp: tmp,
        };
        f.tool(&["tpm2_createek", "-c", "ek.ctx", "-G", "rsa", "-u", "ek.pub"]);
        f.tool(&["tpm2_flushcontext", "-t"]);
        f.tool(&[
            "tpm2_createak",
            "-C",
            "ek.ctx",
            "-c",
            "ak.ctx",
            "-G",
            "ecc",
            "-g",
            "sha256",
            "-s",
            "ecdsa",
            "-u",
            "ak.pub",
            "-n",
            "ak.name",
        ]);
        f.tool(&["tpm2_flushcontext", "-t"]);
        f.tool(&["tpm2_nvread", "0x01c00002", "-o", "ek.der"]);
        // The same SRK template outpost-identity uses, and a device key shaped like ours.
        f.key_under_new_primary("ecc256:aes128cfb", "srk", "key");
        f
    }

    fn tool(&self, args: &[&str]) {
        self.tpm.tool(&self.work, args);
    }

    /// A primary (`alg`) in the owner hierarchy with a device key under it; writes
    /// `<primary>.pub` and `<key>.pub` (TPM2B_PUBLIC) and `<key>.ctx`.
    fn key_under_new_primary(&self, alg: &str, primary: &str, key: &str) {
        let ctx = format!("{primary}.ctx");
        self.tool(&[
            "tpm2_createprimary",
            "-C",
            "o",
            "-g",
            "sha256",
            "-G",
            alg,
            "-a",
            "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda|restricted|decrypt",
            "-c",
            &ctx,
        ]);
        self.tool(&["tpm2_flushcontext", "-t"]);
        self.tool(&[
            "tpm2_readpublic",
            "-c",
            &ctx,
            "-o",
            &format!("{primary}.pub"),
        ]);
        self.tool(&["tpm2_flushcontext", "-t"]);
        self.tool(&[
            "tpm2_create",
            "-C",
            &ctx,
            "-G",
            "ecc256:ecdsa-sha256",
            "-a",
            "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda|sign",
            "-u",
            &format!("{key}.pub"),
            "-r",
            &format!("{key}.priv"),
        ]);
        self.tool(&["tpm2_flushcontext", "-t"]);
        self.tool(&[
            "tpm2_load",
            "-C",
            &ctx,
            "-u",
            &format!("{key}.pub"),
            "-r",
            &format!("{key}.priv"),
            "-c",
            &format!("{key}.ctx"),
        ]);
        self.tool(&["tpm2_flushcontext", "-t"]);
    }

    /// TPMT_PUBLIC from a tpm2-tools TPM2B_PUBLIC file.
    fn public(&self, file: &str) -> Vec<u8> {
        let b = std::fs::read(self.work.join(file)).unwrap();
        let len = usize::from(u16::from_be_bytes([b[0], b[1]]));
        assert_eq!(b.len(), 2 + len, "{file} is one TPM2B_PUBLIC");
        b[2..].to_vec()
    }

    fn read(&self, file: &str) -> Vec<u8> {
        std::fs::read(self.work.join(file)).unwrap()
    }

    fn policy(&self) -> EkPolicy {
        EkPolicy::new(
            vec![der(&self.ca.root_cert()), der(&self.ca.issuer_cert())],
            &[],
        )
        .unwrap()
    }

    fn key_spki(&self, key: &str) -> Vec<u8> {
        let public = TpmPublic::parse(&self.public(&format!("{key}.pub")), "key").unwrap();
        p256_spki_der(&public.p256_point().unwrap())
    }

    fn evidence<'a>(&self, parts: &'a Parts) -> Evidence<'a> {
        Evidence {
            ek_certificate: Some(&parts.ek_cert),
            ek_public: &parts.ek,
            srk_public: &parts.srk,
            ak_public: &parts.ak,
            key_public: &parts.key,
        }
    }

    fn parts(&self) -> Parts {
        Parts {
            ek_cert: self.read("ek.der"),
            ek: self.public("ek.pub"),
            srk: self.public("srk.pub"),
            ak: self.public("ak.pub"),
            key: self.public("key.pub"),
        }
    }

    /// `tpm2_activatecredential` on our credential; returns the recovered secret.
    fn activate(&self, credential: &Credential) -> Vec<u8> {
        self.try_activate(credential)
            .expect("tpm2_activatecredential recovers the secret")
    }

    /// [`Fixture::activate`], `None` if the TPM refuses the credential.
    fn try_activate(&self, credential: &Credential) -> Option<Vec<u8>> {
        // tpm2-tools' credential file: magic, version, TPM2B_ID_OBJECT, TPM2B_ENCRYPTED_SECRET.
        let mut file = 0xBADC_C0DEu32.to_be_bytes().to_vec();
        file.extend_from_slice(&1u32.to_be_bytes());
        for part in [&credential.id_object, &credential.encrypted_secret] {
            file.extend_from_slice(&u16::try_from(part.len()).unwrap().to_be_bytes());
            file.extend_from_slice(part);
        }
        std::fs::write(self.work.join("cred.in"), file).unwrap();
        // The EK's policy: PolicySecret(endorsement hierarchy).
        self.tool(&[
            "tpm2_startauthsession",
            "--policy-session",
            "-S",
            "session.ctx",
        ]);
        self.tool(&["tpm2_policysecret", "-S", "session.ctx", "-c", "e"]);
        let _ = std::fs::remove_file(self.work.join("secret.out"));
        let activated = Command::new("tpm2_activatecredential")
            .args([
                "-c",
                "ak.ctx",
                "-C",
                "ek.ctx",
                "-i",
                "cred.in",
                "-o",
                "secret.out",
            ])
            .args(["-P", "session:session.ctx"])
            .current_dir(&self.work)
            .env("TPM2TOOLS_TCTI", self.tpm.tcti())
            .env("TSS2_LOG", "all+none")
            .output()
            .unwrap();
        self.tool(&["tpm2_flushcontext", "-t"]);
        self.tool(&["tpm2_flushcontext", "-s"]);
        activated.status.success().then(|| self.read("secret.out"))
    }

    fn begin(&self, parts: &Parts) -> (Credential, Pending) {
        challenge(
            &self.policy(),
            &self.evidence(parts),
            &self.key_spki("key"),
            SystemTime::now(),
            &mut rand_core::OsRng,
        )
        .unwrap()
    }
}

struct Parts {
    ek_cert: Vec<u8>,
    ek: Vec<u8>,
    srk: Vec<u8>,
    ak: Vec<u8>,
    key: Vec<u8>,
}

fn der(pem: &Path) -> Vec<u8> {
    run(Command::new("openssl")
        .args(["x509", "-outform", "DER", "-in"])
        .arg(pem))
    .stdout
}

#[test]
fn a_real_tpm_recovers_the_secret_of_our_credential_only_for_the_named_ak() {
    let f = Fixture::new();
    let parts = f.parts();
    let (credential, pending) = f.begin(&parts);
    assert_eq!(pending.trusted.trust, EkTrust::Certificate);

    // The device id is the SHA-256 of the EK's SubjectPublicKeyInfo, as openssl computes it.
    let pubkey = run(Command::new("sh").current_dir(&f.work).args([
        "-c",
        "openssl x509 -inform DER -in ek.der -pubkey -noout | openssl pkey -pubin -outform DER \
         | sha256sum | cut -d' ' -f1",
    ]))
    .stdout;
    assert_eq!(
        pending.trusted.device_id,
        String::from_utf8(pubkey).unwrap().trim()
    );
    let ek = TpmPublic::parse(&parts.ek, "ek").unwrap();
    assert_eq!(ek_device_id(&ek).unwrap(), pending.trusted.device_id);

    // The TPM recovers the secret: the first check of the answer passes (the certify parts,
    // which tpm2_certify cannot make with a nonce, are checked with outpost-identity's device
    // code in its tests).
    let secret = f.activate(&credential);
    assert_eq!(secret.len(), 32);
    let past_secret = verify_answer(&pending, &secret, b"", b"").unwrap_err();
    assert!(
        !past_secret.to_string().contains("activated credential"),
        "{past_secret}"
    );
    let mut wrong = secret.clone();
    wrong[0] ^= 1;
    assert!(matches!(
        verify_answer(&pending, &wrong, b"", b""),
        Err(AttestError::ProofFailed(m)) if m.contains("activated credential")
    ));
    // A credential for another object name is not recovered by this AK.
    let ek = TpmPublic::parse(&parts.ek, "ek").unwrap();
    let mut name = TpmPublic::parse(&parts.ak, "ak").unwrap().name();
    name[5] ^= 1;
    let other =
        outpost_attest::make_credential(&ek, &name, &[7; 32], &mut rand_core::OsRng).unwrap();
    assert!(f.try_activate(&other).is_none());
}

#[test]
fn evidence_that_does_not_bind_the_csr_key_to_the_tpm_is_refused() {
    let f = Fixture::new();
    let parts = f.parts();

    // A software key's CSR sent with a real TPM's EK, AK and device key.
    let soft = run(Command::new("sh").args([
        "-c",
        "openssl ecparam -name prime256v1 -genkey -noout | openssl ec -pubout -outform DER",
    ]))
    .stdout;
    let refused = challenge(
        &f.policy(),
        &f.evidence(&parts),
        &soft,
        SystemTime::now(),
        &mut rand_core::OsRng,
    );
    assert!(matches!(refused, Err(AttestError::ProofFailed(m)) if m.contains("CSR")));
}

#[test]
fn an_ek_from_an_untrusted_manufacturer_is_refused_unless_allowlisted() {
    let f = Fixture::new();
    let parts = f.parts();
    let other = tempfile::tempdir().unwrap();
    let other_ca = EkCa::new(other.path());
    other_ca.manufacture(&other.path().join("tpm")); // makes the other CA's certificates
    let untrusted = EkPolicy::new(
        vec![der(&other_ca.root_cert()), der(&other_ca.issuer_cert())],
        &[],
    )
    .unwrap();
    let err = challenge(
        &untrusted,
        &f.evidence(&parts),
        &f.key_spki("key"),
        SystemTime::now(),
        &mut rand_core::OsRng,
    )
    .unwrap_err();
    assert!(
        matches!(&err, AttestError::EkUntrusted(m) if m.contains("not issued by a trusted")),
        "{err}"
    );

    // The same EK on the allowlist, with no certificate at all.
    let id = ek_device_id(&TpmPublic::parse(&parts.ek, "ek").unwrap()).unwrap();
    let allow = EkPolicy::new(vec![], &[id.to_uppercase()]).unwrap();
    let mut evidence = f.evidence(&parts);
    evidence.ek_certificate = None;
    let (credential, pending) = challenge(
        &allow,
        &evidence,
        &f.key_spki("key"),
        SystemTime::now(),
        &mut rand_core::OsRng,
    )
    .unwrap();
    assert_eq!(pending.trusted.trust, EkTrust::Allowlist);
    assert_eq!(pending.trusted.device_id, id);
    let secret = f.activate(&credential);
    assert!(verify_answer(&pending, &secret, b"", b"")
        .is_err_and(|e| !e.to_string().contains("activated")));

    // An EK certificate for another TPM's EK is refused even from a trusted CA.
    let g = Fixture::new();
    let mut mixed = f.parts();
    mixed.ek_cert = g.read("ek.der");
    let policy =
        EkPolicy::new(vec![der(&g.ca.root_cert()), der(&g.ca.issuer_cert())], &[]).unwrap();
    let err = challenge(
        &policy,
        &f.evidence(&mixed),
        &f.key_spki("key"),
        SystemTime::now(),
        &mut rand_core::OsRng,
    )
    .unwrap_err();
    assert!(matches!(err, AttestError::ProofFailed(m) if m.contains("another key")));
    assert!(EkPolicy::new(vec![b"not a cert".to_vec()], &[]).is_err());
    assert!(EkPolicy::new(vec![], &["abc".into()]).is_err());
}

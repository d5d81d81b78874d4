//! Integration tests against bundles made by the real `rauc` 1.8.

mod fixture;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

use fixture::{fixture, rauc_info, run, COMPATIBLE, EKU_SIGNERS};
use outpost_bundle::signature::SignatureError;
use outpost_bundle::squashfs::SquashfsError;
use outpost_bundle::trailer::TrailerError;
use outpost_bundle::verity::VerityError;
use outpost_bundle::{
    Bundle, BundleError, BundleFormat, Keyring, Purpose, VerifiedBundle, VerifyOptions,
};
use sha2::{Digest, Sha256};

const SIGNER: &str = "Outpost Release Signer";

fn keyring(ca: &str) -> Keyring {
    Keyring::from_pem(&std::fs::read(fixture().ca_pem(ca)).unwrap()).unwrap()
}

fn now() -> VerifyOptions {
    VerifyOptions::at(SystemTime::now())
}

fn open(bundle: &Path) -> Result<VerifiedBundle, BundleError> {
    Bundle::open(bundle, &keyring("main"), &now())
}

/// Every field `rauc info` reports must equal ours.
fn assert_matches_rauc(bundle: &Path, ours: &VerifiedBundle) {
    let f = fixture();
    let conf = f.rauc_conf("main", None);
    let (ok, json, err) = rauc_info(&conf, &["--output-format=json"], bundle);
    assert!(ok, "rauc info failed: {err}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let info = ours.info();
    assert_eq!(v["compatible"], info.compatible);
    assert_eq!(v["version"].as_str(), info.version.as_deref());
    assert_eq!(v["description"].as_str(), info.description.as_deref());
    assert_eq!(v["build"].as_str(), info.build.as_deref());
    let rauc_images = v["images"].as_array().unwrap();
    assert_eq!(rauc_images.len(), info.images.len());
    for (r, o) in rauc_images.iter().zip(&info.images) {
        let r = &r[&o.class];
        assert_eq!(r["filename"].as_str(), o.filename.as_deref(), "{}", o.class);
        assert_eq!(r["checksum"].as_str(), o.sha256.as_deref(), "{}", o.class);
        assert_eq!(r["size"].as_u64(), o.size, "{}", o.class);
        assert_eq!(r["variant"].as_str(), o.variant.as_deref());
    }
    // Format and signer are only in the text output of rauc 1.8.
    let (ok, text, _) = rauc_info(&conf, &[], bundle);
    assert!(ok);
    let field = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix).map(|v| v.trim().to_string()))
            .unwrap_or_else(|| panic!("no '{prefix}' in rauc info output:\n{text}"))
    };
    assert_eq!(field("Bundle Format:"), info.format.to_string());
    assert_eq!(field("0 Subject:"), info.signer.subject);
    assert_eq!(field("Issuer:"), info.signer.issuer);
}

fn assert_images_extract(bundle: &VerifiedBundle) {
    let f = fixture();
    for (class, src) in [("rootfs", &f.rootfs), ("appfs", &f.appfs)] {
        let mut out = Vec::new();
        let n = bundle.extract_image(class, &mut out).unwrap();
        assert_eq!(n, out.len() as u64);
        assert_eq!(out, std::fs::read(src).unwrap(), "{class} content");
    }
}

#[test]
fn plain_bundle_agrees_with_rauc_info() {
    let f = fixture();
    let path = f.bundle("plain", "plain", SIGNER);
    let b = open(&path).unwrap();
    assert_eq!(b.info().format, BundleFormat::Plain);
    assert_eq!(b.info().compatible, COMPATIBLE);
    assert_eq!(b.info().signer.common_name.as_deref(), Some(SIGNER));
    assert_eq!(b.info().verification.payload_check, "payload-digest");
    assert_matches_rauc(&path, &b);
    assert_images_extract(&b);
    // The JSON shape `outpostctl info --json` will print.
    let json = serde_json::to_value(b.info()).unwrap();
    assert_eq!(json["format"], "plain");
    assert_eq!(json["images"][0]["class"], "rootfs");
}

#[test]
fn verity_bundle_agrees_with_rauc_info() {
    let f = fixture();
    let path = f.bundle("verity", "verity", SIGNER);
    let b = open(&path).unwrap();
    assert_eq!(b.info().format, BundleFormat::Verity);
    assert_eq!(b.info().verification.payload_check, "verity");
    // The manifest hash is sha256 of the CMS content, as RAUC computes it.
    assert_eq!(b.info().manifest_hash, hex::encode(b.manifest().hash));
    assert_matches_rauc(&path, &b);
    assert_images_extract(&b);
}

#[test]
fn rsa_signer_is_verified() {
    let path = fixture().bundle("rsa", "verity", "Outpost RSA Signer");
    let b = open(&path).unwrap();
    assert_matches_rauc(&path, &b);
}

#[test]
fn signer_from_another_ca_is_refused() {
    let f = fixture();
    let path = f.bundle("rogue", "plain", "Rogue Signer");
    let err = open(&path).unwrap_err();
    assert!(
        matches!(
            err,
            BundleError::Signature(SignatureError::SignerNotInKeyring { .. })
        ),
        "{err}"
    );
    assert!(err.to_string().contains("signer not in keyring"), "{err}");
    let (ok, _, _) = rauc_info(&f.rauc_conf("main", None), &[], &path);
    assert!(!ok, "rauc accepted a bundle from another CA");
}

#[test]
fn keyring_without_the_signers_ca_is_refused() {
    let f = fixture();
    let path = f.bundle("verity-outside", "verity", SIGNER);
    let err = Bundle::open(&path, &keyring("other"), &now()).unwrap_err();
    assert!(
        matches!(
            err,
            BundleError::Signature(SignatureError::SignerNotInKeyring { .. })
        ),
        "{err}"
    );
    let (ok, _, _) = rauc_info(&f.rauc_conf("other", None), &[], &path);
    assert!(!ok);
}

#[test]
fn tampered_plain_payload_is_refused() {
    let f = fixture();
    let path = f.bundle("plain-tamper", "plain", SIGNER);
    let bad = f.tampered(&path, "plain-tampered.raucb", |b| b[5000] ^= 0x01);
    let err = open(&bad).unwrap_err();
    assert!(
        matches!(
            err,
            BundleError::Signature(SignatureError::PayloadDigestMismatch)
        ),
        "{err}"
    );
    let (ok, _, _) = rauc_info(&f.rauc_conf("main", None), &[], &bad);
    assert!(!ok, "rauc accepted a tampered plain bundle");
}

#[test]
fn tampered_verity_data_block_is_detected_on_read() {
    let f = fixture();
    let path = f.bundle("verity-tamper", "verity", SIGNER);
    let bytes = std::fs::read(&path).unwrap();
    // The appfs image is incompressible, so squashfs stores it verbatim.
    let needle = &std::fs::read(&f.appfs).unwrap()[150_000..150_064];
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("appfs bytes in payload");
    let block = at as u64 / 4096;
    let bad = f.tampered(&path, "verity-tampered.raucb", |b| b[at] ^= 0x01);
    // rauc 1.8 `info` only checks the signed manifest; dm-verity would catch
    // this at mount time. We catch it when the block is read.
    assert!(rauc_info(&f.rauc_conf("main", None), &[], &bad).0);
    let b = open(&bad).unwrap();
    let mut rootfs = Vec::new();
    b.extract_image("rootfs", &mut rootfs).unwrap();
    let err = b.extract_image("appfs", &mut std::io::sink()).unwrap_err();
    assert!(
        matches!(err, BundleError::Squashfs(SquashfsError::Verity(VerityError::DataBlockMismatch(n))) if n == block),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains(&format!("verity check failed for data block {block}")),
        "{err}"
    );

    // A tampered superblock (block 0) is caught while opening.
    let bad = f.tampered(&path, "verity-tampered-sb.raucb", |b| b[40] ^= 0x01);
    let err = open(&bad).unwrap_err();
    assert!(
        matches!(
            err,
            BundleError::Squashfs(SquashfsError::Verity(VerityError::DataBlockMismatch(0)))
        ),
        "{err}"
    );
}

#[test]
fn tampered_verity_hash_tree_is_refused_at_open() {
    let f = fixture();
    let path = f.bundle("verity-tree", "verity", SIGNER);
    let b = open(&path).unwrap();
    let tree_start = b.info().payload_size - b.manifest().verity_size.unwrap();
    drop(b);
    let bad = f.tampered(&path, "verity-tree-tampered.raucb", |bytes| {
        bytes[tree_start as usize + 7] ^= 0x01
    });
    let err = open(&bad).unwrap_err();
    assert!(
        matches!(
            err,
            BundleError::Verity(
                VerityError::RootHashMismatch | VerityError::HashBlockMismatch { .. }
            )
        ),
        "{err}"
    );
}

#[test]
fn truncated_bundles_are_refused() {
    let f = fixture();
    let path = f.bundle("trunc", "plain", SIGNER);
    let len = std::fs::metadata(&path).unwrap().len() as usize;
    let cut = f.tampered(&path, "trunc-1.raucb", |b| b.truncate(len - 1));
    let err = open(&cut).unwrap_err();
    assert!(
        matches!(err, BundleError::Trailer(_) | BundleError::Signature(_)),
        "{err}"
    );
    let tiny = f.tampered(&path, "trunc-tiny.raucb", |b| b.truncate(5));
    assert!(matches!(
        open(&tiny).unwrap_err(),
        BundleError::Trailer(TrailerError::TooShort { len: 5 })
    ));
    // Payload cut short but trailer kept: the CMS no longer matches the payload.
    let mid = f.tampered(&path, "trunc-mid.raucb", |b| {
        let tail = b.split_off(len - 2000);
        b.truncate(len - 6000);
        b.extend_from_slice(&tail);
    });
    assert!(open(&mid).is_err());
    for bad in [&cut, &tiny, &mid] {
        assert!(!rauc_info(&f.rauc_conf("main", None), &[], bad).0);
    }
}

#[test]
fn lying_cms_size_field_is_refused() {
    let f = fixture();
    let path = f.bundle("lying", "verity", SIGNER);
    let bytes = std::fs::read(&path).unwrap();
    let n = bytes.len();
    let size = u64::from_be_bytes(bytes[n - 8..].try_into().unwrap());
    for (name, lie) in [("plus", size + 1), ("minus", size - 1), ("huge", 1 << 40)] {
        let bad = f.tampered(&path, &format!("lying-{name}.raucb"), |b| {
            b[n - 8..].copy_from_slice(&lie.to_be_bytes())
        });
        let err = open(&bad).unwrap_err();
        let expected = match name {
            "huge" => matches!(
                err,
                BundleError::Trailer(TrailerError::SignatureTooLarge { .. })
            ),
            _ => matches!(err, BundleError::Signature(SignatureError::Malformed(_))),
        };
        assert!(expected, "{name}: {err}");
        assert!(
            !rauc_info(&f.rauc_conf("main", None), &[], &bad).0,
            "{name}"
        );
    }
}

/// A plain bundle whose manifest lies about an image, signed the way RAUC
/// signs (`openssl cms -sign -binary -nosmimecap`, detached, DER).
#[test]
fn image_hash_mismatch_is_detected_when_streaming() {
    let f = fixture();
    let dir = f.root.join("content-badhash");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(&f.appfs, dir.join("appfs.img")).unwrap();
    let size = std::fs::metadata(&f.appfs).unwrap().len();
    let wrong = hex::encode(Sha256::digest(b"not the image"));
    let manifest = format!(
        "[update]\ncompatible={COMPATIBLE}\n\n[image.appfs]\nsha256={wrong}\nsize={size}\nfilename=appfs.img\n"
    );
    std::fs::write(dir.join("manifest.raucm"), manifest).unwrap();
    let sq = f.root.join("badhash.sqfs");
    let _ = std::fs::remove_file(&sq);
    run(Command::new("mksquashfs").arg(&dir).arg(&sq).args([
        "-noappend",
        "-no-progress",
        "-all-root",
        "-no-xattrs",
        "-quiet",
    ]));
    let sig = f.root.join("badhash.cms");
    run(Command::new("openssl")
        .args([
            "cms",
            "-sign",
            "-binary",
            "-nosmimecap",
            "-outform",
            "DER",
            "-md",
            "sha256",
        ])
        .arg("-in")
        .arg(&sq)
        .arg("-signer")
        .arg(f.pki.cert(SIGNER))
        .arg("-inkey")
        .arg(f.pki.key(SIGNER))
        .arg("-out")
        .arg(&sig));
    let mut bundle = std::fs::read(&sq).unwrap();
    let cms = std::fs::read(&sig).unwrap();
    bundle.extend_from_slice(&cms);
    bundle.extend_from_slice(&(cms.len() as u64).to_be_bytes());
    let path = f.root.join("badhash.raucb");
    std::fs::write(&path, bundle).unwrap();

    // Signature and manifest are fine (rauc info agrees) ...
    let b = open(&path).unwrap();
    assert!(rauc_info(&f.rauc_conf("main", None), &[], &path).0);
    // ... but the image does not match its manifest entry.
    let err = b.extract_image("appfs", &mut std::io::sink()).unwrap_err();
    assert!(
        matches!(err, BundleError::ImageHashMismatch { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("sha256 mismatch"), "{err}");
    assert!(matches!(
        b.extract_image("rootfs", &mut std::io::sink()),
        Err(BundleError::ImageNotFound(_))
    ));
}

/// RAUC's purpose semantics, measured against rauc itself for each EKU.
#[test]
fn purpose_checks_agree_with_rauc() {
    let f = fixture();
    for (signer, eku) in EKU_SIGNERS {
        let path = f.bundle(&format!("eku-{signer}"), "verity", signer);
        for (rauc_name, purpose) in [
            (None, Purpose::SmimeSign),
            (Some("codesign"), Purpose::CodeSign),
            (Some("any"), Purpose::Any),
        ] {
            let (rauc_ok, _, rauc_err) = rauc_info(&f.rauc_conf("main", rauc_name), &[], &path);
            let mut opts = now();
            opts.purpose = purpose;
            let ours = Bundle::open(&path, &keyring("main"), &opts);
            assert_eq!(
                ours.is_ok(),
                rauc_ok,
                "eku={eku:?} purpose={purpose}: ours={:?} rauc={rauc_err}",
                ours.as_ref().err()
            );
            if let Err(e) = ours {
                assert!(
                    matches!(
                        e,
                        BundleError::Signature(SignatureError::UnsuitablePurpose { .. })
                    ),
                    "{e}"
                );
                assert!(
                    rauc_err.contains("unsuitable certificate purpose"),
                    "{rauc_err}"
                );
            }
        }
    }
}

#[test]
fn allowed_signers_and_validity_time_are_enforced() {
    let path = fixture().bundle("policy", "plain", SIGNER);
    let mut opts = now();
    opts.allowed_signer_cns = Some(vec!["Somebody Else".into()]);
    let err = Bundle::open(&path, &keyring("main"), &opts).unwrap_err();
    assert!(
        matches!(
            err,
            BundleError::Signature(SignatureError::SignerNotAllowed { .. })
        ),
        "{err}"
    );
    opts.allowed_signer_cns = Some(vec![SIGNER.into()]);
    assert!(Bundle::open(&path, &keyring("main"), &opts).is_ok());

    let future = VerifyOptions::at(SystemTime::now() + Duration::from_secs(20 * 365 * 86400));
    let err = Bundle::open(&path, &keyring("main"), &future).unwrap_err();
    assert!(
        matches!(
            err,
            BundleError::Signature(SignatureError::CertificateExpired { .. })
        ),
        "{err}"
    );
    let past = VerifyOptions::at(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000));
    let err = Bundle::open(&path, &keyring("main"), &past).unwrap_err();
    assert!(
        matches!(
            err,
            BundleError::Signature(SignatureError::CertificateNotYetValid { .. })
        ),
        "{err}"
    );
    // use-bundle-signing-time: the signing time is inside the validity window.
    let mut at_signing = past.clone();
    at_signing.use_signing_time = true;
    let b = Bundle::open(&path, &keyring("main"), &at_signing).unwrap();
    assert!(b.info().signer.signing_time.is_some());
}

#[test]
fn fuzz_entry_points_accept_real_bundles_and_garbage() {
    let path = fixture().bundle("fuzz", "verity", SIGNER);
    let bytes = std::fs::read(&path).unwrap();
    outpost_bundle::fuzzing::trailer_and_cms(&bytes);
    outpost_bundle::fuzzing::trailer_and_cms(&bytes[..bytes.len() / 2]);
    outpost_bundle::fuzzing::manifest(b"[update]\ncompatible=x\n");
    outpost_bundle::fuzzing::cms(&[0x30, 0x80, 0x00]);
}

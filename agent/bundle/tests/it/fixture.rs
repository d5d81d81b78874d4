//! This crate's fixture, made with `outpost-testkit` (real openssl, rauc, mksquashfs,
//! mkfs.ext4): two CAs, EC/RSA/EKU signers, an ext4 and a raw image, and bundles of both.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub use outpost_testkit::run;
use outpost_testkit::{ensure_tools, noise, rauc_bundle, KeyType, Manifest, Pki};

pub const COMPATIBLE: &str = "Outpost Test Board";

/// Everything the integration tests share, made once per test binary.
pub struct Fixture {
    _tmp: tempfile::TempDir,
    pub root: PathBuf,
    pub pki: Pki,
    pub rootfs: PathBuf,
    pub appfs: PathBuf,
}

/// EKU variants of the signer used by the purpose table test.
pub const EKU_SIGNERS: &[(&str, &str)] = &[
    ("signer-noeku", ""),
    ("signer-codesign", "codeSigning"),
    ("signer-email", "emailProtection"),
    ("signer-anyeku", "anyExtendedKeyUsage"),
];

pub fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        ensure_tools();
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let pki = Pki::new(&root.join("pki"));
        for ca in ["main", "other"] {
            pki.ca(&ca_name(ca), &format!("{ca} Root CA"), KeyType::Rsa2048);
        }
        let signer = |ca: &str, name: &str, key, eku| {
            pki.signer(&ca_name(ca), name, name, key, eku);
        };
        signer("main", "Outpost Release Signer", KeyType::Ec, "");
        signer("main", "Outpost RSA Signer", KeyType::Rsa2048, "");
        signer("other", "Rogue Signer", KeyType::Ec, "");
        for (name, eku) in EKU_SIGNERS {
            signer("main", name, KeyType::Ec, eku);
        }
        // Images: a 2 MiB ext4 built from a directory (no mount) and raw random bytes.
        let src = root.join("src");
        std::fs::create_dir_all(src.join("tree/etc")).unwrap();
        std::fs::write(src.join("tree/etc/os-release"), "outpost 1.0\n").unwrap();
        let rootfs = src.join("rootfs.ext4");
        run(Command::new("mkfs.ext4")
            .args(["-q", "-F", "-b", "4096", "-L", "rootfs", "-d"])
            .arg(src.join("tree"))
            .arg(&rootfs)
            .arg("2M"));
        let appfs = src.join("appfs.img");
        // Incompressible: squashfs stores it verbatim, so tests can find (and tamper with)
        // image bytes inside the payload.
        std::fs::write(&appfs, noise(1, 300_000)).unwrap();
        Fixture {
            _tmp: tmp,
            root,
            pki,
            rootfs,
            appfs,
        }
    })
}

impl Fixture {
    /// Runs `rauc bundle` for `format` signed by `signer`; returns the bundle path.
    /// The manifest is written fresh each time: `rauc bundle` rewrites it in place.
    pub fn bundle(&self, name: &str, format: &str, signer: &str) -> PathBuf {
        let content = self.root.join(format!("content-{name}"));
        std::fs::create_dir_all(&content).unwrap();
        std::fs::copy(&self.rootfs, content.join("rootfs.ext4")).unwrap();
        std::fs::copy(&self.appfs, content.join("appfs.img")).unwrap();
        let version = format!("2026.11.{}", name.len());
        let description = format!("test bundle {name}");
        let build = format!("20261122T{:04}", name.len());
        let manifest = Manifest {
            compatible: COMPATIBLE,
            version: &version,
            description: &description,
            build: &build,
            format,
            images: &[("rootfs", "rootfs.ext4"), ("appfs", "appfs.img")],
        };
        let out = self.root.join(format!("{name}.raucb"));
        rauc_bundle(&content, &manifest, &self.pki, signer, &out);
        out
    }

    /// The certificate of CA `ca` (`main` or `other`).
    pub fn ca_pem(&self, ca: &str) -> PathBuf {
        self.pki.cert(&ca_name(ca))
    }

    /// A copy of `bundle` with `edit` applied to its bytes.
    pub fn tampered(&self, bundle: &Path, name: &str, edit: impl FnOnce(&mut Vec<u8>)) -> PathBuf {
        let mut bytes = std::fs::read(bundle).unwrap();
        edit(&mut bytes);
        let out = self.root.join(name);
        std::fs::write(&out, bytes).unwrap();
        out
    }

    /// A rauc system.conf trusting `ca` with an optional `check-purpose`.
    pub fn rauc_conf(&self, ca: &str, purpose: Option<&str>) -> PathBuf {
        let path = self
            .root
            .join(format!("system-{ca}-{}.conf", purpose.unwrap_or("default")));
        let mut text = format!(
            "[system]\ncompatible={COMPATIBLE}\nbootloader=noop\n\n[keyring]\npath={}\n",
            self.ca_pem(ca).display()
        );
        if let Some(p) = purpose {
            text.push_str(&format!("check-purpose={p}\n"));
        }
        // Tests run in parallel and share these files: replace atomically, never truncate one
        // that a running `rauc info` is reading.
        let tmp = path.with_extension(format!("tmp{:?}", std::thread::current().id()));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        path
    }
}

/// `rauc --conf=… info [args] bundle`, returning (success, stdout, stderr).
pub fn rauc_info(conf: &Path, args: &[&str], bundle: &Path) -> (bool, String, String) {
    let out = Command::new("rauc")
        .arg(format!("--conf={}", conf.display()))
        .arg("info")
        .args(args)
        .arg(bundle)
        .output()
        .expect("run rauc info");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// CA files are `NAME.ca.pem` / `NAME.ca.key`.
fn ca_name(ca: &str) -> String {
    format!("{ca}.ca")
}

//! Test fixtures made at test time with the real tools (openssl, rauc,
//! mksquashfs, mkfs.ext4): a small PKI like rauc-demo/make.sh, and bundles.
//! Nothing binary is committed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

pub const COMPATIBLE: &str = "Outpost Test Board";

/// Runs a command, panicking with its output if it fails.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Installs the real tools if missing (the machine is Debian, tests run as root).
/// Fails loudly rather than skipping: these comparisons are the point.
fn ensure_tools() {
    let tools = ["rauc", "mksquashfs", "openssl", "mkfs.ext4"];
    if tools.iter().all(|t| have(t)) {
        return;
    }
    let _ = Command::new("apt-get")
        .args([
            "install",
            "-y",
            "rauc",
            "squashfs-tools",
            "openssl",
            "e2fsprogs",
        ])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output();
    for t in tools {
        assert!(
            have(t),
            "required tool '{t}' is missing and could not be installed"
        );
    }
}

const OPENSSL_CNF: &str = "\
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = placeholder
[ v3_ca ]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ v3_signer ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
";

/// A CA and its signers, as PEM files in `dir`.
pub struct Pki {
    pub dir: PathBuf,
}

impl Pki {
    pub fn ca_pem(&self, ca: &str) -> PathBuf {
        self.dir.join(format!("{ca}.ca.pem"))
    }

    pub fn cert(&self, signer: &str) -> PathBuf {
        self.dir.join(format!("{signer}.pem"))
    }

    pub fn key(&self, signer: &str) -> PathBuf {
        self.dir.join(format!("{signer}.key"))
    }

    fn make_ca(&self, ca: &str) {
        run(Command::new("openssl")
            .current_dir(&self.dir)
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650",
            ])
            .args(["-config", "openssl.cnf", "-extensions", "v3_ca"])
            .args([
                "-keyout",
                &format!("{ca}.ca.key"),
                "-out",
                &format!("{ca}.ca.pem"),
            ])
            .args(["-subj", &format!("/O=Outpost Test/CN={ca} Root CA")]));
    }

    /// `key` is an openssl `-newkey` spec; `eku` an extendedKeyUsage value or "".
    fn make_signer(&self, ca: &str, name: &str, key: &[&str], eku: &str) {
        run(Command::new("openssl")
            .current_dir(&self.dir)
            .args(["req", "-nodes", "-config", "openssl.cnf"])
            .args(key)
            .args([
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
            ])
            .args(["-subj", &format!("/O=Outpost Test/CN={name}")]));
        let ext = format!("{name}.ext");
        let mut text =
            "[x]\nbasicConstraints = critical, CA:false\nkeyUsage = critical, digitalSignature\n\
                        subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n"
                .to_string();
        if !eku.is_empty() {
            text.push_str(&format!("extendedKeyUsage = {eku}\n"));
        }
        std::fs::write(self.dir.join(&ext), text).unwrap();
        run(Command::new("openssl")
            .current_dir(&self.dir)
            .args([
                "x509",
                "-req",
                "-days",
                "3650",
                "-in",
                &format!("{name}.csr"),
            ])
            .args([
                "-CA",
                &format!("{ca}.ca.pem"),
                "-CAkey",
                &format!("{ca}.ca.key"),
                "-CAcreateserial",
            ])
            .args([
                "-extfile",
                &ext,
                "-extensions",
                "x",
                "-out",
                &format!("{name}.pem"),
            ]));
    }
}

const EC: &[&str] = &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
const RSA: &[&str] = &["-newkey", "rsa:2048"];

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
        let pki = Pki {
            dir: root.join("pki"),
        };
        std::fs::create_dir_all(&pki.dir).unwrap();
        std::fs::write(pki.dir.join("openssl.cnf"), OPENSSL_CNF).unwrap();
        pki.make_ca("main");
        pki.make_ca("other");
        pki.make_signer("main", "Outpost Release Signer", EC, "");
        pki.make_signer("main", "Outpost RSA Signer", RSA, "");
        pki.make_signer("other", "Rogue Signer", EC, "");
        for (name, eku) in EKU_SIGNERS {
            pki.make_signer("main", name, EC, eku);
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
        // xorshift noise: incompressible, so squashfs stores it verbatim and
        // tests can find (and tamper with) image bytes inside the payload.
        let mut x = 0x9e3779b97f4a7c15u64;
        let raw: Vec<u8> = (0..300_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        std::fs::write(&appfs, raw).unwrap();
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
        let manifest = format!(
            "[update]\ncompatible={COMPATIBLE}\nversion=2026.11.{name_len}\ndescription=test bundle {name}\n\
             build=20261122T{name_len:04}\n\n[bundle]\nformat={format}\n\n\
             [image.rootfs]\nfilename=rootfs.ext4\n\n[image.appfs]\nfilename=appfs.img\n",
            name_len = name.len()
        );
        std::fs::write(content.join("manifest.raucm"), manifest).unwrap();
        let out = self.root.join(format!("{name}.raucb"));
        let _ = std::fs::remove_file(&out);
        run(Command::new("rauc")
            .arg("bundle")
            .arg(format!("--cert={}", self.pki.cert(signer).display()))
            .arg(format!("--key={}", self.pki.key(signer).display()))
            .arg(&content)
            .arg(&out));
        out
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
            self.pki.ca_pem(ca).display()
        );
        if let Some(p) = purpose {
            text.push_str(&format!("check-purpose={p}\n"));
        }
        std::fs::write(&path, text).unwrap();
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

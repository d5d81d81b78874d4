//! Test fixtures made with the real tools (openssl, `rauc bundle`, `grub-editenv`), after
//! `agent/update/tests/it/fixture.rs`: a PKI, one small signed plain bundle, and a simulated
//! device with file-backed A/B slots and a grubenv. Built once per test binary.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub const COMPATIBLE: &str = "Outpost Agent Test";
pub const IMAGE_LEN: usize = 1024 * 1024;
pub const SLOT_LEN: usize = 2 * 1024 * 1024;

pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const OPENSSL_CNF: &str = "[ req ]\ndistinguished_name = dn\nprompt = no\n[ dn ]\nCN = x\n\
[ v3_ca ]\nbasicConstraints = critical, CA:true\nkeyUsage = critical, keyCertSign, cRLSign\n\
subjectKeyIdentifier = hash\n\
[ v3_signer ]\nbasicConstraints = critical, CA:false\nkeyUsage = critical, digitalSignature\n\
subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n";

pub struct Fixture {
    _tmp: tempfile::TempDir,
    /// The CA that signed the bundle's signer.
    pub ca: PathBuf,
    /// A CA that signed nothing: the wrong keyring.
    pub other_ca: PathBuf,
    pub bundle: PathBuf,
    pub image: Vec<u8>,
}

/// Deterministic incompressible bytes (xorshift).
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn make_ca(pki: &Path, name: &str, cn: &str) {
    run(Command::new("openssl")
        .current_dir(pki)
        .args(["req", "-x509", "-days", "3650", "-config", "openssl.cnf"])
        .args([
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ])
        .args(["-extensions", "v3_ca"])
        .arg("-keyout")
        .arg(format!("{name}.key"))
        .arg("-out")
        .arg(format!("{name}.pem"))
        .args(["-subj", &format!("/O=Outpost Test/CN={cn}")]));
}

pub fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let pki = tmp.path().join("pki");
        std::fs::create_dir_all(&pki).unwrap();
        std::fs::write(pki.join("openssl.cnf"), OPENSSL_CNF).unwrap();
        make_ca(&pki, "ca", "Agent Test CA");
        make_ca(&pki, "other-ca", "Someone Else CA");
        run(Command::new("openssl")
            .current_dir(&pki)
            .args(["req", "-config", "openssl.cnf"])
            .args([
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
            ])
            .args(["-keyout", "signer.key", "-out", "signer.csr"])
            .args(["-subj", "/O=Outpost Test/CN=Agent Test Signer"]));
        run(Command::new("openssl")
            .current_dir(&pki)
            .args(["x509", "-req", "-days", "3650", "-in", "signer.csr"])
            .args(["-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial"])
            .args(["-extfile", "openssl.cnf", "-extensions", "v3_signer"])
            .args(["-out", "signer.pem"]));
        let content = tmp.path().join("content");
        std::fs::create_dir_all(&content).unwrap();
        let image = noise(7, IMAGE_LEN);
        std::fs::write(content.join("rootfs.img"), &image).unwrap();
        std::fs::write(
            content.join("manifest.raucm"),
            format!(
                "[update]\ncompatible={COMPATIBLE}\nversion=2026.11.0\n\
                 description=agent test bundle\nbuild=b42\n\n[bundle]\nformat=plain\n\n\
                 [image.rootfs]\nfilename=rootfs.img\n"
            ),
        )
        .unwrap();
        let bundle = tmp.path().join("update.raucb");
        run(Command::new("rauc")
            .arg("bundle")
            .arg(format!("--cert={}", pki.join("signer.pem").display()))
            .arg(format!("--key={}", pki.join("signer.key").display()))
            .arg(&content)
            .arg(&bundle));
        Fixture {
            ca: pki.join("ca.pem"),
            other_ca: pki.join("other-ca.pem"),
            bundle,
            image,
            _tmp: tmp,
        }
    })
}

/// A device folder: `slots/rootfs-{0,1}` (distinct old content) and a fresh grubenv with
/// both slots good, A first. Returns the `[update]` TOML for it, booted from A.
pub fn device(dir: &Path, keyring: &Path) -> String {
    std::fs::create_dir_all(dir.join("slots")).unwrap();
    for (i, name) in ["rootfs-0", "rootfs-1"].iter().enumerate() {
        std::fs::write(
            dir.join("slots").join(name),
            noise(100 + i as u64, SLOT_LEN),
        )
        .unwrap();
    }
    let env = dir.join("grubenv");
    run(Command::new("grub-editenv").arg(&env).arg("create"));
    run(Command::new("grub-editenv").arg(&env).args([
        "set",
        "ORDER=A B",
        "A_OK=1",
        "A_TRY=0",
        "B_OK=1",
        "B_TRY=0",
    ]));
    let d = dir.display();
    format!(
        "[update]\ncompatible = \"{COMPATIBLE}\"\nbootloader = \"grub\"\ngrubenv = \"{d}/grubenv\"\n\
         keyring = \"{}\"\ndata_directory = \"{d}/data\"\nbooted_slot = \"A\"\n\
         [[update.slots]]\nclass = \"rootfs\"\nindex = 0\ndevice = \"{d}/slots/rootfs-0\"\nbootname = \"A\"\n\
         [[update.slots]]\nclass = \"rootfs\"\nindex = 1\ndevice = \"{d}/slots/rootfs-1\"\nbootname = \"B\"\n",
        keyring.display()
    )
}

/// `grub-editenv FILE list`: the real tool's view of the bootloader state.
pub fn grub_list(dir: &Path) -> String {
    run(Command::new("grub-editenv")
        .arg(dir.join("grubenv"))
        .arg("list"))
}

/// Every file an install may touch, for "nothing was written" checks.
pub fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    [
        "slots/rootfs-0",
        "slots/rootfs-1",
        "grubenv",
        "data/central.raucs",
    ]
    .iter()
    .map(|f| {
        (
            f.to_string(),
            std::fs::read(dir.join(f)).unwrap_or_default(),
        )
    })
    .collect()
}

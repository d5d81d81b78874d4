//! The daemon tests' fixture, made with `outpost-testkit` (real openssl, `rauc bundle`,
//! `grub-editenv`): a PKI, one small signed plain bundle, and a simulated device with
//! file-backed A/B slots and a grubenv, described as agent `[update]` TOML. Built once per
//! test binary.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub use outpost_testkit::noise;
use outpost_testkit::{grubenv, rauc_bundle, write_slot, KeyType, Manifest, Pki};

pub const COMPATIBLE: &str = "Outpost Agent Test";
pub const IMAGE_LEN: usize = 1024 * 1024;
pub const SLOT_LEN: usize = 2 * 1024 * 1024;

pub struct Fixture {
    _tmp: tempfile::TempDir,
    /// The CA that signed the bundle's signer.
    pub ca: PathBuf,
    /// A CA that signed nothing: the wrong keyring.
    pub other_ca: PathBuf,
    pub bundle: PathBuf,
    pub image: Vec<u8>,
}

pub fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let pki = Pki::new(&tmp.path().join("pki"));
        let ca = pki.ca("ca", "Agent Test CA", KeyType::Ec);
        let other_ca = pki.ca("other-ca", "Someone Else CA", KeyType::Ec);
        pki.signer("ca", "signer", "Agent Test Signer", KeyType::Ec, "");
        let content = tmp.path().join("content");
        std::fs::create_dir_all(&content).unwrap();
        let image = noise(7, IMAGE_LEN);
        std::fs::write(content.join("rootfs.img"), &image).unwrap();
        let manifest = Manifest {
            compatible: COMPATIBLE,
            version: "2026.11.0",
            description: "agent test bundle",
            build: "b42",
            format: "plain",
            images: &[("rootfs", "rootfs.img")],
        };
        let bundle = tmp.path().join("update.raucb");
        rauc_bundle(&content, &manifest, &pki, "signer", &bundle);
        Fixture {
            ca,
            other_ca,
            bundle,
            image,
            _tmp: tmp,
        }
    })
}

/// A device folder: `slots/rootfs-{0,1}` (distinct old content) and a fresh grubenv with
/// both slots good, A first. Returns the `[update]` TOML for it, booted from A.
pub fn device(dir: &Path, keyring: &Path) -> String {
    for (i, name) in ["rootfs-0", "rootfs-1"].iter().enumerate() {
        write_slot(&dir.join("slots").join(name), 100 + i as u64, SLOT_LEN);
    }
    grubenv(&dir.join("grubenv"));
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
    outpost_testkit::grub_list(&dir.join("grubenv"))
}

/// Every file an install may touch, for "nothing was written" checks.
pub fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let files = [
        "slots/rootfs-0",
        "slots/rootfs-1",
        "grubenv",
        "data/central.raucs",
    ];
    outpost_testkit::snapshot(dir, &files)
}

//! RAUC casync bundles made by the real `rauc convert` install through our install path: the
//! image comes from the `.castr` chunk store beside the bundle, seeded from the booted slot of
//! the same class (only chunks the seed lacks are read from the store), verified chunk by chunk
//! and then against the manifest's sha256.

use std::path::Path;
use std::process::Command;

use outpost_testkit::{noise, rauc_bundle, Manifest};
use outpost_update::install::{Error, InstallOptions};
use outpost_update::{Booted, SlotId};

use crate::fixture::{fixture, Device, COMPATIBLE, ROOTFS_LEN, ROOTFS_SLOT};

fn plain_bundle(dir: &Path, name: &str, image: &[u8]) -> std::path::PathBuf {
    let content = dir.join(format!("content-{name}"));
    std::fs::create_dir_all(&content).unwrap();
    std::fs::write(content.join("rootfs.img"), image).unwrap();
    let out = dir.join(format!("{name}.raucb"));
    let manifest = Manifest {
        compatible: COMPATIBLE,
        version: name,
        description: "casync test",
        build: "1",
        format: "plain",
        images: &[("rootfs", "rootfs.img")],
    };
    rauc_bundle(&content, &manifest, &fixture().pki, "signer", &out);
    out
}

/// `rauc convert` of `plain` into a casync bundle; returns (bundle, store).
fn convert(dir: &Path, plain: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let out = dir.join("casync.raucb");
    let f = fixture();
    let result = Command::new("rauc")
        .arg(format!("--keyring={}", f.ca.display()))
        .arg("convert")
        .arg(format!("--cert={}", f.pki.cert("signer").display()))
        .arg(format!("--key={}", f.pki.key("signer").display()))
        .arg(plain)
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        result.status.success(),
        "rauc convert: {}",
        String::from_utf8_lossy(&result.stderr)
    );
    (out, dir.join("casync.castr"))
}

#[test]
fn a_rauc_casync_bundle_installs_from_its_store_seeded_by_the_booted_slot() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let v1 = noise(41, ROOTFS_LEN);
    let mut v2 = v1.clone();
    // 64 KiB in the middle change: most chunks are in the booted slot already.
    v2[400_000..465_536].copy_from_slice(&noise(42, 65_536));
    let plain = plain_bundle(d, "2", &v2);
    let (bundle, store) = convert(d, &plain);
    assert!(
        store.is_dir(),
        "rauc convert writes the store beside the bundle"
    );

    let dev = Device::new(&d.join("dev"), ROOTFS_SLOT, false);
    let slot_a = d.join("dev/slots/rootfs-0");
    let mut a = std::fs::read(&slot_a).unwrap();
    a[..ROOTFS_LEN].copy_from_slice(&v1);
    std::fs::write(&slot_a, &a).unwrap();
    let booted = Booted::Slot(SlotId::parse("rootfs.0").unwrap());

    // Without a store the casync image is refused before anything is written.
    let before = dev.slot_bytes("rootfs-1");
    let err = dev
        .install(&bundle, &booted, &InstallOptions::default(), &mut |_| {})
        .unwrap_err();
    assert!(err.to_string().contains("chunk store"), "{err}");
    assert_eq!(dev.slot_bytes("rootfs-1"), before);

    let opts = InstallOptions {
        casync_store: Some(store.clone()),
        ..Default::default()
    };
    dev.install(&bundle, &booted, &opts, &mut |_| {}).unwrap();
    assert_eq!(&dev.slot_bytes("rootfs-1")[..ROOTFS_LEN], v2.as_slice());
    assert!(dev.grub_list().contains("ORDER=B A"), "{}", dev.grub_list());

    // A store whose chunks are corrupt: the install fails, slot B is not activated again.
    let dev2 = Device::new(&d.join("dev2"), ROOTFS_SLOT, false);
    std::fs::write(d.join("dev2/slots/rootfs-0"), &a).unwrap();
    let bad_store = d.join("bad.castr");
    copy_dir(&store, &bad_store);
    for f in walk(&bad_store) {
        std::fs::write(&f, b"not zstd").unwrap();
    }
    let bad = InstallOptions {
        casync_store: Some(bad_store),
        ..Default::default()
    };
    let err = dev2
        .install(&bundle, &booted, &bad, &mut |_| {})
        .unwrap_err();
    assert!(matches!(err, Error::Failed(_)), "{err}");
    assert!(err.to_string().contains("casync"), "{err}");
    assert!(
        dev2.grub_list().contains("ORDER=A B"),
        "{}",
        dev2.grub_list()
    );
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}

//! Power cut during install: the executor runs in a child process (this test binary, re-run
//! with an env var) and is SIGKILLed at 50 random points. After each kill the bootloader's
//! primary must be the old good slot or a fully written new one (hashed against the manifest
//! of a bundle that was installed), and central.raucs must never claim a checksum the slot
//! does not have. Installs alternate between two bundles with different images, so a
//! half-written slot cannot pass for a complete one.
//!
//! SIGKILL loses no page cache, so this checks the ordering of the steps (mark bad → write →
//! fsync → status → primary) and the atomicity of each file replacement, not the disk's
//! flush behaviour; the fsyncs themselves are in the code paths exercised here.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use outpost_boot::grub::GrubBackend;
use outpost_boot::{Bootloader, SlotName, SlotState};
use outpost_bundle::{Bundle, Keyring, VerifyOptions};
use outpost_update::install::{install, Environment, InstallOptions};
use outpost_update::{Booted, CentralStatus, SlotId, SystemConfig};
use sha2::{Digest, Sha256};

use crate::fixture::{fixture, BundleSpec, Device, ROOTFS_SLOT};

const CHILD_ENV: &str = "OUTPOST_UPDATE_CUT_CHILD";
const KILLS: usize = 50;
const READY: &str = "outpost-update-child-ready";

/// Child side: install `bundle` into the device. A no-op in a normal test run.
#[test]
fn power_cut_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let mut parts = spec.split('\n');
    let (dir, bundle, ca) = (
        PathBuf::from(parts.next().unwrap()),
        PathBuf::from(parts.next().unwrap()),
        PathBuf::from(parts.next().unwrap()),
    );
    let conf = SystemConfig::parse(&std::fs::read(dir.join("system.conf")).unwrap(), &dir).unwrap();
    let grub = GrubBackend::new(conf.grubenv.clone(), conf.slots.bootnames());
    let keyring = Keyring::from_pem(&std::fs::read(ca).unwrap()).unwrap();
    let vb = Bundle::open(&bundle, &keyring, &VerifyOptions::at(SystemTime::now())).unwrap();
    let env = Environment {
        bootloader: &grub,
        status_file: conf.status_file(),
        now: &SystemTime::now,
    };
    let booted = Booted::Slot(SlotId::parse("rootfs.0").unwrap());
    // Tell the parent the executor starts now, so its kill points fall inside the install.
    println!("{READY}");
    install(
        &vb,
        &conf.compatible,
        &conf.slots,
        &booted,
        &InstallOptions::default(),
        &env,
        &mut |_| {},
    )
    .unwrap();
}

fn spawn_child(dev: &Device, bundle: &Path) -> std::process::Child {
    let spec = format!(
        "{}\n{}\n{}",
        dev.dir.display(),
        bundle.display(),
        fixture().ca.display()
    );
    Command::new(std::env::current_exe().unwrap())
        .args([
            "power_cut::power_cut_child",
            "--exact",
            "--test-threads=1",
            "--nocapture",
        ])
        .env(CHILD_ENV, spec)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Blocks until the child has opened the bundle and is about to install.
fn wait_ready(child: &mut std::process::Child) {
    use std::io::BufRead;
    let out = child.stdout.take().unwrap();
    let mut lines = std::io::BufReader::new(out).lines();
    assert!(
        lines.any(|l| l.is_ok_and(|l| l.contains(READY))),
        "child exited before installing"
    );
    // Keep draining so the child never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
}

fn sha_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// sha256 of the rootfs and appfs images of a bundle, from its signed manifest.
fn image_hashes(bundle: &Path) -> (String, String) {
    let vb = fixture().open(bundle);
    let img = |c: &str| {
        let i = vb.manifest().image(c).unwrap();
        (hex::encode(i.sha256.unwrap()), i.size.unwrap() as usize)
    };
    (img("rootfs").0, img("appfs").0)
}

struct Checker<'a> {
    dev: &'a Device,
    grub: GrubBackend,
    bundles: Vec<(String, String)>,
    booted_slots: (Vec<u8>, Vec<u8>),
}

impl Checker<'_> {
    /// Returns the primary slot's bootname after checking every invariant.
    fn check(&self, round: usize) -> String {
        let a = SlotName::new("A").unwrap();
        // The booted group is never written, and stays good.
        assert!(
            self.dev.slot_bytes("rootfs-0") == self.booted_slots.0,
            "round {round}: rootfs.0 written"
        );
        assert!(
            self.dev.slot_bytes("appfs-0") == self.booted_slots.1,
            "round {round}: appfs.0 written"
        );
        assert_eq!(
            self.grub.state(&a).unwrap(),
            SlotState::Good,
            "round {round}"
        );
        let primary = self
            .grub
            .primary()
            .unwrap()
            .expect("some slot must be bootable");
        let rootfs1 = self.dev.slot_bytes("rootfs-1");
        let appfs1 = self.dev.slot_bytes("appfs-1");
        let content = (
            sha_hex(&rootfs1[..crate::fixture::ROOTFS_LEN]),
            sha_hex(&appfs1[..crate::fixture::APPFS_LEN]),
        );
        if primary.as_str() == "B" {
            assert!(
                self.bundles.contains(&content),
                "round {round}: B is primary but its slots hold no complete bundle"
            );
        } else {
            assert_eq!(primary, a, "round {round}");
        }
        // central.raucs is always parseable, and never vouches for content the slot lacks.
        let st = CentralStatus::load(&self.dev.status_path()).expect("status file parses");
        for (slot, hash) in [("rootfs.1", &content.0), ("appfs.1", &content.1)] {
            let s = st.slot(&SlotId::parse(slot).unwrap());
            if s.status.as_deref() == Some("ok") {
                assert_eq!(
                    &s.checksum.as_ref().unwrap().0,
                    hash,
                    "round {round}: {slot} status lies"
                );
            }
        }
        primary.to_string()
    }
}

#[test]
fn power_cut_at_random_points_leaves_a_bootable_known_state() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let f = fixture();
    let tmp = tempfile::tempdir().unwrap();
    let dev = Device::new(tmp.path(), ROOTFS_SLOT, true);
    let bundles = [
        f.bundle(&BundleSpec::default()),
        f.bundle(&BundleSpec {
            name: "plain-v2",
            version: "2026.12.0",
            seed: 2,
            ..Default::default()
        }),
    ];
    let checker = Checker {
        dev: &dev,
        grub: dev.grub(),
        bundles: bundles.iter().map(|b| image_hashes(b)).collect(),
        booted_slots: (dev.slot_bytes("rootfs-0"), dev.slot_bytes("appfs-0")),
    };
    // Calibrate: one uninterrupted install, timed from the child's ready line.
    let mut child = spawn_child(&dev, &bundles[0]);
    wait_ready(&mut child);
    let start = Instant::now();
    let status = child.wait().unwrap();
    let full = start.elapsed();
    assert!(status.success(), "uninterrupted child install failed");
    assert_eq!(checker.check(0), "B");

    let mut seed = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("power cut seed {seed}, full install {full:?}");
    // Cut points spread over the measured install time; a loaded machine stretches later rounds,
    // so the thresholds below only demand that the test clearly exercised the cuts.
    let max_us = (full.as_micros() as u64).max(1000);
    let (mut killed, mut on_b, mut mid) = (0, 0, 0);
    for round in 1..=KILLS {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let delay = Duration::from_micros(seed % max_us);
        let mut child = spawn_child(&dev, &bundles[round % 2]);
        wait_ready(&mut child);
        std::thread::sleep(delay);
        let _ = child.kill(); // SIGKILL; fails only if it already exited
        let status = child.wait().unwrap();
        if !status.success() {
            killed += 1;
        }
        if checker.check(round) == "B" {
            on_b += 1;
        }
        // Cut between "mark B bad" and "make B primary": the dangerous window.
        if checker.grub.state(&SlotName::new("B").unwrap()).unwrap() == SlotState::Bad {
            mid += 1;
        }
    }
    eprintln!("{killed} of {KILLS} killed; {mid} inside the write window; B primary after {on_b}");
    assert!(
        killed >= KILLS / 4,
        "too few rounds were cut mid-install ({killed})"
    );
    assert!(
        mid >= KILLS / 5,
        "too few cuts inside the write window ({mid})"
    );
}

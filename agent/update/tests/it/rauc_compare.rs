//! Our engine against the real rauc 1.8 on identical simulated devices: same slot bytes, same
//! grubenv (bytes and `grub-editenv list`), equivalent central.raucs.

use std::time::SystemTime;

use outpost_update::booted::booted_from_cmdline;
use outpost_update::install::InstallOptions;
use outpost_update::mark::{mark, MarkState};
use outpost_update::{Booted, CentralStatus, SlotId};

use crate::fixture::{fixture, BundleSpec, Device, RaucService, SLOT_FILES};

fn booted_a(dev: &Device) -> Booted {
    let conf = dev.conf();
    booted_from_cmdline("quiet rauc.slot=A", &conf.slots, &|p| p.to_path_buf()).unwrap()
}

fn ours_install(dev: &Device, bundle: &std::path::Path) -> Vec<(u8, String)> {
    let mut progress = Vec::new();
    dev.install(
        bundle,
        &booted_a(dev),
        &InstallOptions::default(),
        &mut |p| progress.push((p.percent, p.step)),
    )
    .unwrap();
    progress
}

/// Keys whose values legitimately differ between two installs: times, and `bundle.hash`,
/// which RAUC ≥ 1.9 writes and 1.8 does not.
fn comparable(st: &CentralStatus) -> Vec<(String, Vec<String>)> {
    let mut slots: Vec<_> = st
        .slot_ids()
        .into_iter()
        .map(|id| {
            let s = st.slot(&id);
            let fields = vec![
                format!("compatible={:?}", s.bundle_compatible),
                format!("version={:?}", s.bundle_version),
                format!("description={:?}", s.bundle_description),
                format!("build={:?}", s.bundle_build),
                format!("status={:?}", s.status),
                format!("checksum={:?}", s.checksum),
                format!(
                    "installed={}/{}",
                    s.installed_timestamp.is_some(),
                    s.installed_count
                ),
                format!(
                    "activated={}/{}",
                    s.activated_timestamp.is_some(),
                    s.activated_count
                ),
            ];
            (id.to_string(), fields)
        })
        .collect();
    slots.sort();
    slots
}

fn assert_same(ours: &Device, rauc: &Device, when: &str) {
    for s in SLOT_FILES {
        assert!(
            ours.slot_bytes(s) == rauc.slot_bytes(s),
            "{when}: slot {s} differs"
        );
    }
    assert_eq!(
        ours.grub_list(),
        rauc.grub_list(),
        "{when}: grubenv variables"
    );
    assert_eq!(
        std::fs::read(ours.dir.join("grubenv")).unwrap(),
        std::fs::read(rauc.dir.join("grubenv")).unwrap(),
        "{when}: grubenv bytes"
    );
    let load = |d: &Device| CentralStatus::load(&d.status_path()).unwrap();
    assert_eq!(
        comparable(&load(ours)),
        comparable(&load(rauc)),
        "{when}: central.raucs"
    );
}

#[test]
fn install_and_mark_match_real_rauc_with_grub() {
    let f = fixture();
    let tmp = tempfile::tempdir().unwrap();
    let ours = Device::new(&tmp.path().join("ours"), crate::fixture::ROOTFS_SLOT, true);
    let real = Device::new(&tmp.path().join("rauc"), crate::fixture::ROOTFS_SLOT, true);
    let v1 = f.bundle(&BundleSpec::default());
    let v2 = f.bundle(&BundleSpec {
        name: "plain-v2",
        version: "2026.12.0",
        seed: 2,
        ..Default::default()
    });
    let svc = RaucService::start(&real);

    // First install: B marked bad, written, made primary; rootfs.0/appfs.0 untouched.
    let (ok, out) = svc.rauc(&["install", v1.to_str().unwrap()]);
    assert!(ok, "rauc install: {out}");
    let progress = ours_install(&ours, &v1);
    assert_same(&ours, &real, "after first install");
    assert!(ours.grub_list().contains("ORDER=B A"));
    let st = CentralStatus::load(&ours.status_path()).unwrap();
    let r1 = st.slot(&SlotId::parse("rootfs.1").unwrap());
    assert_eq!(r1.status.as_deref(), Some("ok"));
    assert_eq!(
        r1.bundle_hash,
        Some(f.open(&v1).info().manifest_hash.clone())
    );
    // Progress: monotonic, named steps, ends at 100.
    assert!(
        progress.windows(2).all(|w| w[0].0 <= w[1].0),
        "{progress:?}"
    );
    assert_eq!(
        progress.last().unwrap(),
        &(100, "Installing done".to_string())
    );
    assert!(progress
        .iter()
        .any(|(_, s)| s == "Copying image to rootfs.1"));
    assert!(
        progress.iter().any(|(p, _)| *p > 10 && *p < 90),
        "byte progress"
    );

    // Second install of another version (still booted from A): counts go to 2.
    let (ok, out) = svc.rauc(&["install", v2.to_str().unwrap()]);
    assert!(ok, "rauc install v2: {out}");
    ours_install(&ours, &v2);
    assert_same(&ours, &real, "after second install");

    // rauc status mark-* vs ours, one operation at a time.
    let conf = ours.conf();
    let grub = ours.grub();
    let status = ours.status_path();
    for (state, ident) in [
        ("bad", "other"),
        ("good", "other"),
        ("active", "booted"),
        ("good", "booted"),
        ("active", "other"),
        ("bad", "rootfs.0"),
        ("active", "rootfs.0"),
    ] {
        let (ok, out) = svc.rauc(&["status", &format!("mark-{state}"), ident]);
        assert!(ok, "rauc status mark-{state} {ident}: {out}");
        let outcome = mark(
            state.parse::<MarkState>().unwrap(),
            ident,
            &conf.slots,
            &booted_a(&ours),
            &grub,
            Some(&status),
            SystemTime::now(),
        )
        .unwrap();
        assert!(
            out.contains(&outcome.message),
            "rauc said {out:?}, we said {}",
            outcome.message
        );
        assert_same(&ours, &real, &format!("after mark-{state} {ident}"));
    }
}

/// A verity bundle with the same images installs the same bytes (the real rauc cannot install
/// verity here: no device-mapper in the sandbox).
#[test]
fn verity_bundle_installs_the_same_bytes_as_plain() {
    let f = fixture();
    let tmp = tempfile::tempdir().unwrap();
    let a = Device::new(&tmp.path().join("a"), crate::fixture::ROOTFS_SLOT, true);
    let b = Device::new(&tmp.path().join("b"), crate::fixture::ROOTFS_SLOT, true);
    ours_install(&a, &f.bundle(&BundleSpec::default()));
    ours_install(
        &b,
        &f.bundle(&BundleSpec {
            name: "verity",
            format: "verity",
            ..Default::default()
        }),
    );
    for s in SLOT_FILES {
        assert!(a.slot_bytes(s) == b.slot_bytes(s), "slot {s} differs");
    }
    assert_eq!(a.grub_list(), b.grub_list());
}

//! Refused installs write nothing: every slot file, the grubenv and central.raucs keep their
//! bytes. Where the real rauc refuses the same bundle, it is run too.

use outpost_update::install::{Error, InstallOptions, Refusal};
use outpost_update::{Booted, SlotId};

use crate::fixture::{fixture, BundleSpec, Device, RaucService, ROOTFS_SLOT};

fn try_install(dev: &Device, bundle: &std::path::Path, opts: &InstallOptions) -> Refusal {
    let booted = Booted::Slot(SlotId::parse("rootfs.0").unwrap());
    let before = dev.snapshot();
    let mut calls = 0;
    let err = dev
        .install(bundle, &booted, opts, &mut |_| calls += 1)
        .expect_err("install must be refused");
    let after = dev.snapshot();
    for ((name, a), (_, b)) in before.iter().zip(&after) {
        assert!(a == b, "{name} changed by a refused install");
    }
    assert_eq!(calls, 0, "no progress is reported for a refused install");
    match err {
        Error::Refused(r) => r,
        Error::Failed(e) => panic!("expected a refusal, got a failure: {e}"),
    }
}

#[test]
fn wrong_compatible_is_refused_like_rauc() {
    let f = fixture();
    let tmp = tempfile::tempdir().unwrap();
    let dev = Device::new(tmp.path(), ROOTFS_SLOT, true);
    let bundle = f.bundle(&BundleSpec {
        name: "other-board",
        compatible: "Some Other Board",
        ..Default::default()
    });
    let r = try_install(&dev, &bundle, &InstallOptions::default());
    assert!(matches!(&r, Refusal::Incompatible { bundle, .. } if bundle == "Some Other Board"));

    let before = dev.snapshot();
    let svc = RaucService::start(&dev);
    let (ok, out) = svc.rauc(&["install", bundle.to_str().unwrap()]);
    assert!(!ok && out.contains("Compatible mismatch"), "rauc: {out}");
    drop(svc);
    assert_eq!(before, dev.snapshot(), "rauc wrote nothing either");
}

#[test]
fn downgrade_below_the_floor_is_refused() {
    let f = fixture();
    let tmp = tempfile::tempdir().unwrap();
    let dev = Device::new(tmp.path(), ROOTFS_SLOT, true);
    let bundle = f.bundle(&BundleSpec::default()); // version 2026.11.0
    let opts = InstallOptions {
        min_version: Some("2026.12.0".into()),
        ..Default::default()
    };
    let r = try_install(&dev, &bundle, &opts);
    assert!(matches!(r, Refusal::Downgrade { .. }), "{r}");
}

#[test]
fn image_bigger_than_its_slot_is_refused() {
    let f = fixture();
    let tmp = tempfile::tempdir().unwrap();
    // rootfs slots of 512 KiB; the rootfs image is 1 MiB.
    let dev = Device::new(tmp.path(), 512 * 1024, true);
    let r = try_install(&dev, &f.bundle(&BundleSpec::default()), &Default::default());
    assert!(
        matches!(&r, Refusal::ImageTooLarge { size: 1_048_576, capacity: 524_288, slot, .. }
            if slot.to_string() == "rootfs.1"),
        "{r}"
    );
}

#[test]
fn unknown_slot_class_is_refused_like_rauc() {
    let f = fixture();
    let tmp = tempfile::tempdir().unwrap();
    // No appfs slots configured, the bundle has an appfs image.
    let dev = Device::new(tmp.path(), ROOTFS_SLOT, false);
    let bundle = f.bundle(&BundleSpec::default());
    let r = try_install(&dev, &bundle, &Default::default());
    assert!(
        matches!(&r, Refusal::UnknownClass { class, .. } if class == "appfs"),
        "{r}"
    );

    let before = dev.snapshot();
    let svc = RaucService::start(&dev);
    let (ok, out) = svc.rauc(&["install", bundle.to_str().unwrap()]);
    assert!(
        !ok && out.contains("No target slot for class appfs"),
        "rauc: {out}"
    );
    drop(svc);
    assert_eq!(before, dev.snapshot(), "rauc wrote nothing either");
}

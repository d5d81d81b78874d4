//! An install with `bootloader = systemd-boot` (the agent's native config puts a
//! `SystemdBootConfig` into `SystemConfig`), through `backend::open_bootloader` as the daemon
//! opens it: the target's entry is marked bad before the write and armed after it, and the
//! real bootctl then boots the new slot; a failed trial falls back to the old one.

use std::time::SystemTime;

use outpost_boot::systemd_boot::SystemdBootConfig;
use outpost_boot::{SlotName, SlotState};
use outpost_testkit::esp::{bootctl_default, Esp};
use outpost_update::backend::open_bootloader;
use outpost_update::install::{install, Environment, InstallOptions};
use outpost_update::system_conf::BootloaderKind;
use outpost_update::{Booted, SlotId};

use crate::fixture::{fixture, BundleSpec, Device, ROOTFS_SLOT};

#[test]
fn install_arms_the_new_entry_and_bootctl_boots_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dev = Device::new(tmp.path(), ROOTFS_SLOT, true);
    let esp = Esp::new();
    esp.add_uki("outpost_1-A.efi", "1.0");
    esp.add_uki("outpost_0-B.efi", "1.0");
    let mut conf = dev.conf();
    conf.bootloader = BootloaderKind::SystemdBoot;
    conf.systemd_boot = Some(SystemdBootConfig::new(&esp.root));
    let bl = open_bootloader(&conf, std::path::Path::new("/nonexistent")).unwrap();
    assert_eq!(
        bootctl_default(&esp.root).as_deref(),
        Some("outpost_1-A.efi")
    );

    let bundle = fixture().bundle(&BundleSpec::default());
    let vb = fixture().open(&bundle);
    let status = dev.status_path();
    let env = Environment {
        bootloader: &*bl,
        status_file: Some(&status),
        now: &SystemTime::now,
    };
    let booted = Booted::Slot(SlotId::parse("rootfs.0").unwrap());
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

    let b = SlotName::new("B").unwrap();
    assert_eq!(
        esp.files("EFI/Linux"),
        ["outpost_1-A.efi", "outpost_2-B+3.efi"]
    );
    assert_eq!(
        bootctl_default(&esp.root).as_deref(),
        Some("outpost_2-B+3.efi")
    );
    assert_eq!(bl.primary().unwrap(), Some(b.clone()));
    assert_eq!(bl.attempts_left(&b).unwrap(), Some(3));
    // The trial fails (the gate's mark-bad): systemd-boot falls back to A.
    bl.set_state(&b, SlotState::Bad).unwrap();
    assert_eq!(
        bootctl_default(&esp.root).as_deref(),
        Some("outpost_1-A.efi")
    );
    assert_eq!(bl.primary().unwrap(), Some(SlotName::new("A").unwrap()));
}

#[test]
fn systemd_boot_without_an_esp_is_refused_when_opened() {
    let tmp = tempfile::tempdir().unwrap();
    let dev = Device::new(tmp.path(), ROOTFS_SLOT, false);
    let mut conf = dev.conf();
    conf.bootloader = BootloaderKind::SystemdBoot;
    let err = open_bootloader(&conf, std::path::Path::new("/nonexistent"))
        .err()
        .unwrap();
    assert!(err.to_string().contains("needs the ESP"), "{err}");
}

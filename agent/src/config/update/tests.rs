use std::path::Path;

use outpost_bundle::Purpose;
use outpost_update::system_conf::BootloaderKind;
use outpost_update::SlotId;

use crate::config::{Config, ConfigError, UpdateSource};

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("/etc/outpost/agent.toml"))
}

const NATIVE: &str = r#"
[update]
compatible = "Board"
bootloader = "grub"
keyring = "ca.pem"
check_purpose = "codesign"
min_version = "2026.1"
booted_slot = "B"
[[update.slots]]
class = "rootfs"
index = 0
device = "/dev/mmcblk0p2"
type = "ext4"
bootname = "A"
[[update.slots]]
class = "rootfs"
index = 1
device = "slots/b.img"
type = "ext4"
bootname = "B"
[[update.slots]]
class = "appfs"
index = 1
device = "/dev/mmcblk0p6"
parent = "rootfs.1"
"#;

#[test]
fn native_keys_map_to_the_rauc_model() {
    let u = parse(NATIVE).unwrap().update.unwrap();
    assert_eq!(u.source, UpdateSource::Native);
    assert_eq!(u.system.compatible, "Board");
    assert_eq!(u.system.bootloader, BootloaderKind::Grub);
    assert_eq!(u.system.grubenv, Path::new("/boot/grub/grubenv"));
    assert_eq!(
        u.system.keyring_path.as_deref(),
        Some(Path::new("/etc/outpost/ca.pem"))
    );
    assert_eq!(u.purpose, Purpose::CodeSign);
    assert_eq!(u.system.min_bundle_version.as_deref(), Some("2026.1"));
    assert!(u.system.activate_installed);
    assert_eq!(
        u.system.status_file(),
        Some(Path::new("/var/lib/outpost/update/central.raucs")),
        "data_directory defaults to state_dir/update"
    );
    assert_eq!(u.booted_slot, Some(SlotId::parse("rootfs.1").unwrap()));
    let b = u
        .system
        .slots
        .get(&SlotId::parse("rootfs.1").unwrap())
        .unwrap();
    assert_eq!(b.device, Path::new("/etc/outpost/slots/b.img"));
    assert_eq!(b.slot_type.as_str(), "ext4");
    let app = u
        .system
        .slots
        .get(&SlotId::parse("appfs.1").unwrap())
        .unwrap();
    assert_eq!(app.parent, Some(SlotId::parse("rootfs.1").unwrap()));
    assert!(parse("").unwrap().update.is_none());
}

#[test]
fn system_conf_is_read_as_rauc_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("system.conf"),
        "[system]\ncompatible=Board\nbootloader=grub\ngrubenv=grubenv\ndata-directory=data\n\
         [keyring]\npath=ca.pem\n[slot.rootfs.0]\ndevice=/dev/sda2\nbootname=A\n\
         [slot.rootfs.1]\ndevice=/dev/sda3\nbootname=B\n",
    )
    .unwrap();
    let cfg = dir.path().join("agent.toml");
    let c = Config::parse(
        "[update]\nsystem_conf = \"system.conf\"\nbooted_slot = \"rootfs.0\"\n",
        &cfg,
    )
    .unwrap();
    let u = c.update.unwrap();
    assert_eq!(
        u.source,
        UpdateSource::SystemConf(dir.path().join("system.conf"))
    );
    assert_eq!(u.system.grubenv, dir.path().join("grubenv"));
    assert_eq!(
        u.system.status_file(),
        Some(dir.path().join("data/central.raucs").as_path())
    );
    assert_eq!(u.purpose, Purpose::SmimeSign);
    assert_eq!(u.booted_slot, Some(SlotId::parse("rootfs.0").unwrap()));
    // Mixing the two sources is refused; a broken system.conf is a config error.
    let err = Config::parse(
        "[update]\nsystem_conf = \"system.conf\"\ncompatible = \"x\"\n",
        &cfg,
    )
    .unwrap_err();
    assert!(err.to_string().contains("cannot be combined"), "{err}");
    let err = Config::parse("[update]\nsystem_conf = \"missing.conf\"\n", &cfg).unwrap_err();
    assert!(err.to_string().contains("missing.conf"), "{err}");
}

#[test]
fn invalid_update_sections_are_errors() {
    let slots =
        "[[update.slots]]\nclass = \"rootfs\"\nindex = 0\ndevice = \"/a\"\nbootname = \"A\"\n";
    let head = "[update]\ncompatible = \"B\"\nkeyring = \"ca.pem\"\n";
    for (text, want) in [
        (
            format!("{head}bootloader = \"grub\"\nfoo = 1\n{slots}"),
            "unknown field",
        ),
        (
            format!("{head}bootloader = \"grub\"\n{slots}size = 3\n"),
            "unknown field",
        ),
        (format!("{head}bootloader = \"efi\"\n{slots}"), "efi"),
        (
            format!("{head}bootloader = \"custom\"\n{slots}"),
            "custom_backend",
        ),
        (
            format!("{head}bootloader = \"rpi-tryboot\"\n{slots}"),
            "boot_partition",
        ),
        (
            format!("{head}bootloader = \"grub\"\n{slots}boot_partition = 2\n"),
            "boot_partition",
        ),
        (
            format!("{head}bootloader = \"grub\"\n"),
            "no [[update.slots]]",
        ),
        (
            format!("{head}bootloader = \"grub\"\nbooted_slot = \"Z\"\n{slots}"),
            "booted_slot",
        ),
        (
            format!("{head}bootloader = \"grub\"\ncheck_purpose = \"email\"\n{slots}"),
            "purpose",
        ),
        (
            format!("{head}bootloader = \"grub\"\n{slots}{slots}"),
            "twice",
        ),
        (
            format!("[update]\ncompatible = \"B\"\nbootloader = \"grub\"\n{slots}"),
            "keyring",
        ),
        (
            format!(
                "{head}bootloader = \"grub\"\n{}",
                slots.replace("\"A\"", "\"A B\"")
            ),
            "slot name",
        ),
    ] {
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.contains(want), "{text}\n=> {err}");
    }
    let rpi = format!("{head}bootloader = \"rpi-tryboot\"\n{slots}boot_partition = 2\n");
    let u = parse(&rpi).unwrap().update.unwrap();
    assert_eq!(u.boot_partitions.len(), 1);
    assert_eq!(u.autoboot, Path::new("/boot/firmware/autoboot.txt"));
}

#[test]
fn systemd_boot_takes_the_esp_and_its_entry_naming() {
    let with = |extra: &str| NATIVE.replace("bootloader = \"grub\"", extra);
    let u = parse(&with("bootloader = \"systemd-boot\""))
        .unwrap()
        .update
        .unwrap();
    assert_eq!(u.system.bootloader, BootloaderKind::SystemdBoot);
    let sd = u.system.systemd_boot.unwrap();
    assert_eq!(sd.esp, Path::new("/boot"));
    assert_eq!(sd.kind, outpost_boot::systemd_boot::EntryKind::Uki);
    assert_eq!((sd.prefix.as_str(), sd.tries), ("outpost", 3));
    assert_eq!(
        sd.efivars.as_deref(),
        Some(Path::new("/sys/firmware/efi/efivars"))
    );

    let u = parse(&with(
        "bootloader = \"systemd-boot\"\nesp = \"esp\"\nentries = \"loader/entries\"\n\
         entry_prefix = \"dev\"\nboot_attempts = 5",
    ))
    .unwrap()
    .update
    .unwrap();
    let sd = u.system.systemd_boot.unwrap();
    assert_eq!(
        sd.esp,
        Path::new("/etc/outpost/esp"),
        "relative to the config"
    );
    assert_eq!(sd.kind, outpost_boot::systemd_boot::EntryKind::Type1);
    assert_eq!((sd.prefix.as_str(), sd.tries), ("dev", 5));

    for (extra, want) in [
        (
            "bootloader = \"systemd-boot\"\nentries = \"boot\"",
            "update.entries",
        ),
        (
            "bootloader = \"systemd-boot\"\nentry_prefix = \"a+b\"",
            "entry_prefix",
        ),
        (
            "bootloader = \"systemd-boot\"\nboot_attempts = 0",
            "at least 1",
        ),
        ("bootloader = \"grub\"\nesp = \"/boot\"", "only used with"),
    ] {
        let err = parse(&with(extra)).unwrap_err().to_string();
        assert!(err.contains(want), "{extra}\n=> {err}");
    }
    let err = parse("[update]\nsystem_conf = \"/etc/rauc/system.conf\"\nesp = \"/boot\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("update.esp cannot be combined"), "{err}");
}

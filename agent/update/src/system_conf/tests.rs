use super::*;

/// The device config of rauc-demo/make.sh (grub variant), with a relative keyring path.
const DEMO: &str = "\
[system]
compatible=Demo Edge Board
bootloader=grub
grubenv=/dev-sim/grubenv
data-directory=/dev-sim/data
mountprefix=/dev-sim/mnt
bundle-formats=plain verity

[keyring]
path=../pki/ca.cert.pem
check-purpose=codesign

[slot.rootfs.0]
device=/dev-sim/slots/rootfs-0
type=ext4
bootname=A

[slot.rootfs.1]
device=slots/rootfs-1
type=ext4
bootname=B

[slot.appfs.0]
device=/dev-sim/slots/appfs-0
type=raw
parent=rootfs.0

[slot.appfs.1]
device=/dev-sim/slots/appfs-1
parent=rootfs.1
";

fn parse(text: &str) -> Result<SystemConfig, SystemConfError> {
    SystemConfig::parse(text.as_bytes(), Path::new("/etc/rauc"))
}

#[test]
fn reads_the_demo_device_config() {
    let c = parse(DEMO).unwrap();
    assert_eq!(c.compatible, "Demo Edge Board");
    assert_eq!(c.bootloader, BootloaderKind::Grub);
    assert_eq!(c.grubenv, Path::new("/dev-sim/grubenv"));
    assert_eq!(
        c.status_file(),
        Some(Path::new("/dev-sim/data/central.raucs"))
    );
    assert_eq!(
        c.keyring_path,
        Some(PathBuf::from("/etc/rauc/../pki/ca.cert.pem"))
    );
    assert_eq!(c.check_purpose.as_deref(), Some("codesign"));
    assert!(c.activate_installed);
    assert_eq!(
        c.ignored,
        ["[system] mountprefix", "[system] bundle-formats"]
    );
    let ids: Vec<String> = c.slots.iter().map(|s| s.id.to_string()).collect();
    assert_eq!(ids, ["rootfs.0", "rootfs.1", "appfs.0", "appfs.1"]);
    let r1 = c.slots.get(&SlotId::parse("rootfs.1").unwrap()).unwrap();
    assert_eq!(r1.device, Path::new("/etc/rauc/slots/rootfs-1"));
    assert_eq!(r1.slot_type, SlotType::Ext4);
    assert_eq!(r1.bootname.as_ref().unwrap().as_str(), "B");
    let a1 = c.slots.get(&SlotId::parse("appfs.1").unwrap()).unwrap();
    assert_eq!(a1.slot_type, SlotType::Raw, "type defaults to raw");
    assert_eq!(a1.parent, Some(SlotId::parse("rootfs.1").unwrap()));
}

#[test]
fn status_location_follows_rauc() {
    let base = "[system]\ncompatible=x\nbootloader=noop\n";
    assert_eq!(parse(base).unwrap().status, StatusLocation::PerSlot);
    let c = parse(&format!("{base}statusfile=st/central.raucs\n")).unwrap();
    assert_eq!(
        c.status_file(),
        Some(Path::new("/etc/rauc/st/central.raucs"))
    );
    let c = parse(&format!("{base}data-directory=/d\nstatusfile=/s\n")).unwrap();
    assert_eq!(c.status_file(), Some(Path::new("/s")), "statusfile wins");
    assert!(parse(&format!("{base}data-directory=/d\nstatusfile=per-slot\n")).is_err());
}

#[test]
fn refuses_what_rauc_refuses() {
    let cases = [
        ("[system]\nbootloader=grub\n", "missing compatible"),
        ("[system]\ncompatible=x\n", "missing bootloader"),
        (
            "[system]\ncompatible=x\nbootloader=lilo\n",
            "bad bootloader",
        ),
        (
            "[system]\ncompatible=x\nbootloader=grub\nfoo=1\n",
            "unknown key",
        ),
        (
            "[system]\ncompatible=x\nbootloader=grub\n[weird]\n",
            "unknown group",
        ),
        (
            "[system]\ncompatible=x\nbootloader=grub\n[slot.a.0]\ntype=raw\n",
            "no device",
        ),
        (
            "[system]\ncompatible=x\nbootloader=grub\n[slot.a.0]\ndevice=/x\ntype=zfs\n",
            "type",
        ),
        (
            "[system]\ncompatible=x\nbootloader=grub\n[slot.a]\ndevice=/x\n",
            "slot name",
        ),
        (
            "[system]\ncompatible=x\nbootloader=grub\n[slot.a.0]\ndevice=/x\nbootname=A B\n",
            "bootname",
        ),
        (
            "[system]\ncompatible=x\nbootloader=grub\nactivate-installed=maybe\n",
            "bool",
        ),
    ];
    for (text, why) in cases {
        assert!(parse(text).is_err(), "{why}");
    }
}

#[test]
fn accepts_known_rauc_groups_it_does_not_use() {
    let c = parse(
        "[system]\ncompatible=x\nbootloader=custom\nmin-bundle-version=2.0\nactivate-installed=false\n\
         [handlers]\nbootloader-custom-backend=bin/backend\n[casync]\nstorepath=/s\n[log.x]\nfilename=y\n",
    )
    .unwrap();
    assert_eq!(
        c.custom_backend,
        Some(PathBuf::from("/etc/rauc/bin/backend"))
    );
    assert_eq!(c.min_bundle_version.as_deref(), Some("2.0"));
    assert!(!c.activate_installed);
    assert_eq!(c.ignored, ["[casync]"]);
    let opts = crate::install::InstallOptions::from_config(&c);
    assert_eq!(opts.min_version.as_deref(), Some("2.0"));
    assert!(!opts.activate);
}

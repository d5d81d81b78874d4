//! Which slot is running, from the kernel command line (RAUC 1.8 `get_cmdline_bootname`).
//!
//! Order: `outpost.slot=` (ours), `rauc.external`, `rauc.slot=`, then the root device
//! (`root=`, else `systemd.verity_root_data=`) with `PARTLABEL=`/`PARTUUID=`/`UUID=` mapped to
//! `/dev/disk/by-*` and symlinks resolved. A name matches a slot's bootname or `<class>.<index>`;
//! a device matches a slot's (resolved) device. [`booted_from_cmdline`] is pure: the caller
//! passes how to resolve a device path; [`detect`] is the I/O wrapper.

use std::path::{Path, PathBuf};

use crate::slots::{Booted, SlotTable};

/// What the command line says about the running system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootHint {
    /// `outpost.slot=` or `rauc.slot=`: a bootname or slot name.
    Name(String),
    External,
    /// `root=` / `systemd.verity_root_data=`, already mapped to a path.
    RootDevice(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BootedError {
    #[error("kernel command line names no slot (no outpost.slot=, rauc.slot= or root=)")]
    NoHint,
    #[error("did not find booted slot (matching '{0}')")]
    NoMatch(String),
}

/// Parses the command line. Tokens are whitespace-separated; the first match of each kind wins.
pub fn parse_cmdline(cmdline: &str) -> Option<BootHint> {
    let value = |key: &str| {
        cmdline
            .split_whitespace()
            .find_map(|t| t.strip_prefix(key))
            .filter(|v| !v.is_empty())
    };
    if let Some(v) = value("outpost.slot=") {
        return Some(BootHint::Name(v.to_string()));
    }
    if cmdline.split_whitespace().any(|t| t == "rauc.external") {
        return Some(BootHint::External);
    }
    if let Some(v) = value("rauc.slot=") {
        return Some(BootHint::Name(v.to_string()));
    }
    let root = value("root=").or_else(|| value("systemd.verity_root_data="))?;
    let mapped = [
        ("PARTLABEL=", "/dev/disk/by-partlabel/"),
        ("PARTUUID=", "/dev/disk/by-partuuid/"),
        ("UUID=", "/dev/disk/by-uuid/"),
    ]
    .iter()
    .find_map(|(p, dir)| root.strip_prefix(p).map(|r| Path::new(dir).join(r)));
    Some(BootHint::RootDevice(
        mapped.unwrap_or_else(|| PathBuf::from(root)),
    ))
}

/// The booted slot. `resolve` canonicalises a device path (symlinks); it is applied to the
/// root device and to each slot's device, as RAUC compares `realpath`s.
pub fn booted_from_cmdline(
    cmdline: &str,
    slots: &SlotTable,
    resolve: &dyn Fn(&Path) -> PathBuf,
) -> Result<Booted, BootedError> {
    match parse_cmdline(cmdline).ok_or(BootedError::NoHint)? {
        BootHint::External => Ok(Booted::External),
        BootHint::Name(n) => slots
            .find_booted(&n)
            .map(|s| Booted::Slot(s.id.clone()))
            .ok_or(BootedError::NoMatch(n)),
        BootHint::RootDevice(dev) => {
            let dev = resolve(&dev);
            slots
                .iter()
                .find(|s| resolve(&s.device) == dev)
                .map(|s| Booted::Slot(s.id.clone()))
                .ok_or_else(|| BootedError::NoMatch(dev.display().to_string()))
        }
    }
}

/// Reads `/proc/cmdline` and resolves devices on this system.
pub fn detect(slots: &SlotTable) -> Result<Booted, BootedError> {
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    booted_from_cmdline(&cmdline, slots, &|p| {
        std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slots::{Slot, SlotId, SlotType};
    use outpost_boot::SlotName;

    fn table() -> SlotTable {
        let s = |n: &str, b: &str, d: &str| Slot {
            id: SlotId::parse(n).unwrap(),
            device: PathBuf::from(d),
            slot_type: SlotType::Ext4,
            bootname: Some(SlotName::new(b).unwrap()),
            parent: None,
            readonly: false,
        };
        SlotTable::new(vec![
            s("rootfs.0", "A", "/dev/mmcblk0p2"),
            s("rootfs.1", "B", "/dev/disk/by-partlabel/root-b"),
        ])
        .unwrap()
    }

    fn booted(cmdline: &str) -> Result<Booted, BootedError> {
        // Fake udev: the partlabel link points at mmcblk0p3.
        let resolve = |p: &Path| match p.to_str() {
            Some("/dev/disk/by-partlabel/root-b") => PathBuf::from("/dev/mmcblk0p3"),
            _ => p.to_path_buf(),
        };
        booted_from_cmdline(cmdline, &table(), &resolve)
    }

    fn slot(n: &str) -> Booted {
        Booted::Slot(SlotId::parse(n).unwrap())
    }

    #[test]
    fn names_on_the_command_line() {
        assert_eq!(booted("quiet rauc.slot=B ro"), Ok(slot("rootfs.1")));
        assert_eq!(booted("rauc.slot=rootfs.0"), Ok(slot("rootfs.0")));
        assert_eq!(
            booted("rauc.slot=A outpost.slot=B"),
            Ok(slot("rootfs.1")),
            "ours wins"
        );
        assert_eq!(booted("rauc.external rauc.slot=A"), Ok(Booted::External));
        assert_eq!(booted("rauc.slot=C"), Err(BootedError::NoMatch("C".into())));
        assert_eq!(
            booted("xrauc.slot=A"),
            Err(BootedError::NoHint),
            "whole tokens only"
        );
    }

    #[test]
    fn falls_back_to_the_root_device() {
        assert_eq!(booted("root=/dev/mmcblk0p2 rw"), Ok(slot("rootfs.0")));
        assert_eq!(booted("root=/dev/mmcblk0p3"), Ok(slot("rootfs.1")));
        assert_eq!(booted("root=PARTLABEL=root-b"), Ok(slot("rootfs.1")));
        assert_eq!(
            booted("systemd.verity_root_data=/dev/mmcblk0p2"),
            Ok(slot("rootfs.0"))
        );
        assert_eq!(booted("console=ttyS0"), Err(BootedError::NoHint));
        assert!(matches!(
            booted("root=/dev/sda9"),
            Err(BootedError::NoMatch(_))
        ));
    }
}

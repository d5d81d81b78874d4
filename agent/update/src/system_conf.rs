//! RAUC's `system.conf`, read into our slot model so a RAUC system can switch to Outpost
//! without rewriting it (`src/config_file.c` of RAUC 1.8, plus keys of later releases).
//!
//! Pure: [`SystemConfig::parse`] takes the bytes and the directory of the file, because RAUC
//! resolves relative paths (`device`, `grubenv`, `data-directory`, `[keyring] path`, …) against
//! that directory. Keys RAUC knows but this engine does not act on are accepted and listed in
//! [`SystemConfig::ignored`] so the caller can warn; unknown keys and groups are errors, as in
//! RAUC (`check_remaining_keys` / `check_remaining_groups`).

use std::path::{Path, PathBuf};

use outpost_boot::systemd_boot::SystemdBootConfig;
use outpost_boot::SlotName;

use crate::keyfile::{self, Group, KeyFile, KeyFileError};
use crate::slots::{Slot, SlotConfigError, SlotId, SlotTable, SlotType};

/// `[system] bootloader=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootloaderKind {
    Barebox,
    Grub,
    Uboot,
    Efi,
    Custom,
    Noop,
    /// Raspberry Pi firmware `autoboot.txt` (`tryboot_a_b`). Not a RAUC bootloader, so never
    /// parsed from `system.conf`: the agent's native `[update]` configuration sets it, together
    /// with each slot's boot partition, and opens the backend itself.
    RpiTryboot,
    /// systemd-boot with boot counting in the entry file names. Not a RAUC bootloader either
    /// (RAUC 1.8's `efi` drives `BootOrder`/`BootNext` through efibootmgr, which is something
    /// else): set by the native `[update]` configuration with the ESP in
    /// [`SystemConfig::systemd_boot`].
    SystemdBoot,
}

impl BootloaderKind {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "barebox" => Self::Barebox,
            "grub" => Self::Grub,
            "uboot" => Self::Uboot,
            "efi" => Self::Efi,
            "custom" => Self::Custom,
            "noop" => Self::Noop,
            _ => return None,
        })
    }
}

/// Where slot status is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusLocation {
    /// `<data-directory>/central.raucs` or `statusfile=<path>`.
    Central(PathBuf),
    /// `slot.raucs` inside each mounted slot (RAUC's default without data-directory).
    /// This engine does not mount slots, so it keeps no status in that case.
    PerSlot,
}

/// The parts of `system.conf` the agent uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemConfig {
    pub compatible: String,
    pub bootloader: BootloaderKind,
    /// `grubenv=`, default `/boot/grub/grubenv` as in RAUC.
    pub grubenv: PathBuf,
    pub data_directory: Option<PathBuf>,
    pub status: StatusLocation,
    pub keyring_path: Option<PathBuf>,
    pub keyring_directory: Option<PathBuf>,
    pub check_purpose: Option<String>,
    /// `activate-installed=` (default true): set the new slot primary after install.
    pub activate_installed: bool,
    pub boot_attempts: Option<u32>,
    pub boot_attempts_primary: Option<u32>,
    /// `min-bundle-version=` (RAUC ≥ 1.12): downgrade protection.
    pub min_bundle_version: Option<String>,
    pub variant_name: Option<String>,
    /// `[handlers] bootloader-custom-backend=`.
    pub custom_backend: Option<PathBuf>,
    /// systemd-boot only: the ESP and how the slots' entries are named (native config only).
    pub systemd_boot: Option<SystemdBootConfig>,
    pub slots: SlotTable,
    /// `group/key` of settings RAUC knows that this engine does not act on.
    pub ignored: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SystemConfError {
    #[error("system.conf syntax: {0}")]
    Syntax(#[from] KeyFileError),
    #[error("system.conf: missing [{group}] {key}")]
    Missing { group: String, key: String },
    #[error("system.conf: invalid key '{key}' in group [{group}]")]
    UnknownKey { group: String, key: String },
    #[error("system.conf: invalid group [{0}]")]
    UnknownGroup(String),
    #[error("system.conf: [{group}] {key}={value}: {reason}")]
    BadValue {
        group: String,
        key: String,
        value: String,
        reason: String,
    },
    #[error("system.conf: {0}")]
    Slots(#[from] SlotConfigError),
}

const SYSTEM_USED: &[&str] = &[
    "compatible",
    "bootloader",
    "grubenv",
    "data-directory",
    "statusfile",
    "activate-installed",
    "boot-attempts",
    "boot-attempts-primary",
    "min-bundle-version",
    "variant-name",
];
const SYSTEM_IGNORED: &[&str] = &[
    "barebox-statename",
    "barebox-dtbpath",
    "efi-use-bootnext",
    "mountprefix",
    "variant-dtb",
    "variant-file",
    "bundle-formats",
    "max-bundle-download-size",
    "max-bundle-signature-size",
    "perform-pre-check",
    "prevent-late-fallback",
];
const KEYRING_KEYS: &[&str] = &[
    "path",
    "directory",
    "check-purpose",
    "use-bundle-signing-time",
    "check-crl",
    "allow-partial-chain",
    "allowed-signer-cns",
];
const SLOT_USED: &[&str] = &["device", "type", "bootname", "parent", "readonly"];
const SLOT_IGNORED: &[&str] = &[
    "description",
    "allow-mounted",
    "install-same",
    "force-install-same",
    "ignore-checksum",
    "resize",
    "extra-mkfs-opts",
    "extra-mount-opts",
    "region-start",
    "region-size",
    "efi-loader",
    "efi-cmdline",
];
/// Whole groups RAUC knows that do not concern slots or bootloaders here.
const OTHER_GROUPS: &[&str] = &[
    "casync",
    "streaming",
    "encryption",
    "autoinstall",
    "polling",
];
const OTHER_GROUP_PREFIXES: &[&str] = &["artifacts.", "log."];

impl SystemConfig {
    /// Parses `system.conf`; `base` is the directory of the file (for relative paths).
    pub fn parse(data: &[u8], base: &Path) -> Result<Self, SystemConfError> {
        let kf = KeyFile::parse(data)?;
        let mut ignored = Vec::new();
        let sys = kf
            .group("system")
            .ok_or_else(|| missing("system", "compatible"))?;
        check_keys(
            sys,
            &[SYSTEM_USED, SYSTEM_IGNORED],
            SYSTEM_IGNORED,
            &mut ignored,
        )?;
        let compatible = req(sys, "compatible")?;
        let bl = req(sys, "bootloader")?;
        let bootloader = BootloaderKind::parse(&bl)
            .ok_or_else(|| bad(sys, "bootloader", &bl, "unsupported bootloader"))?;
        let path = |g: &Group, k: &str| -> Result<Option<PathBuf>, SystemConfError> {
            Ok(string(g, k)?.map(|p| resolve(base, &p)))
        };
        let data_directory = path(sys, "data-directory")?;
        let status = status_location(sys, base, data_directory.as_deref())?;
        let (keyring_path, keyring_directory, check_purpose) = match kf.group("keyring") {
            Some(k) => {
                check_keys(k, &[KEYRING_KEYS], &KEYRING_KEYS[3..], &mut ignored)?;
                (
                    path(k, "path")?,
                    path(k, "directory")?,
                    string(k, "check-purpose")?,
                )
            }
            None => (None, None, None),
        };
        let custom_backend = match kf.group("handlers") {
            Some(h) => path(h, "bootloader-custom-backend")?,
            None => None,
        };
        for g in &kf.groups {
            let known = matches!(g.name.as_str(), "system" | "keyring" | "handlers")
                || g.name.starts_with("slot.")
                || OTHER_GROUPS.contains(&g.name.as_str())
                || OTHER_GROUP_PREFIXES.iter().any(|p| g.name.starts_with(p));
            if !known {
                return Err(SystemConfError::UnknownGroup(g.name.clone()));
            }
            if OTHER_GROUPS.contains(&g.name.as_str()) {
                ignored.push(format!("[{}]", g.name));
            }
        }
        let slots = parse_slots(&kf, base, &mut ignored)?;
        Ok(SystemConfig {
            compatible,
            bootloader,
            grubenv: path(sys, "grubenv")?.unwrap_or_else(|| "/boot/grub/grubenv".into()),
            data_directory,
            status,
            keyring_path,
            keyring_directory,
            check_purpose,
            activate_installed: boolean(sys, "activate-installed")?.unwrap_or(true),
            boot_attempts: uint(sys, "boot-attempts")?,
            boot_attempts_primary: uint(sys, "boot-attempts-primary")?,
            min_bundle_version: string(sys, "min-bundle-version")?,
            variant_name: string(sys, "variant-name")?,
            custom_backend,
            systemd_boot: None,
            slots,
            ignored,
        })
    }

    /// The central status file, if status is kept centrally.
    pub fn status_file(&self) -> Option<&Path> {
        match &self.status {
            StatusLocation::Central(p) => Some(p),
            StatusLocation::PerSlot => None,
        }
    }
}

/// RAUC 1.8: `statusfile=` wins (`per-slot` or a path); else `data-directory` implies
/// `<data-directory>/central.raucs`; else per-slot.
fn status_location(
    sys: &Group,
    base: &Path,
    data_dir: Option<&Path>,
) -> Result<StatusLocation, SystemConfError> {
    match string(sys, "statusfile")? {
        Some(s) if s == "per-slot" => {
            if data_dir.is_some() {
                return Err(bad(
                    sys,
                    "statusfile",
                    &s,
                    "data-directory= with statusfile=per-slot is not supported",
                ));
            }
            Ok(StatusLocation::PerSlot)
        }
        Some(s) => Ok(StatusLocation::Central(resolve(base, &s))),
        None => Ok(match data_dir {
            Some(d) => StatusLocation::Central(d.join("central.raucs")),
            None => StatusLocation::PerSlot,
        }),
    }
}

fn parse_slots(
    kf: &KeyFile,
    base: &Path,
    ignored: &mut Vec<String>,
) -> Result<SlotTable, SystemConfError> {
    let mut slots = Vec::new();
    for g in kf.groups.iter().filter(|g| g.name.starts_with("slot.")) {
        let id = SlotId::parse(&g.name["slot.".len()..])?;
        check_keys(g, &[SLOT_USED, SLOT_IGNORED], SLOT_IGNORED, ignored)?;
        let device = resolve(base, &req(g, "device")?);
        let slot_type = SlotType::parse(&string(g, "type")?.unwrap_or_else(|| "raw".into()))?;
        let bootname = match string(g, "bootname")? {
            Some(b) => Some(SlotName::new(&b).map_err(|e| bad(g, "bootname", &b, &e.to_string()))?),
            None => None,
        };
        let parent = string(g, "parent")?
            .map(|p| SlotId::parse(&p))
            .transpose()?;
        slots.push(Slot {
            id,
            device,
            slot_type,
            bootname,
            parent,
            readonly: boolean(g, "readonly")?.unwrap_or(false),
        });
    }
    Ok(SlotTable::new(slots)?)
}

/// RAUC's `resolve_path`: relative paths are relative to the config file's directory.
fn resolve(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

fn check_keys(
    g: &Group,
    allowed: &[&[&str]],
    ignored_keys: &[&str],
    ignored: &mut Vec<String>,
) -> Result<(), SystemConfError> {
    for (k, _) in &g.entries {
        if !allowed.iter().any(|set| set.contains(&k.as_str())) {
            return Err(SystemConfError::UnknownKey {
                group: g.name.clone(),
                key: k.clone(),
            });
        }
        if ignored_keys.contains(&k.as_str()) {
            ignored.push(format!("[{}] {k}", g.name));
        }
    }
    Ok(())
}

fn missing(group: &str, key: &str) -> SystemConfError {
    SystemConfError::Missing {
        group: group.into(),
        key: key.into(),
    }
}

fn bad(g: &Group, key: &str, value: &str, reason: &str) -> SystemConfError {
    SystemConfError::BadValue {
        group: g.name.clone(),
        key: key.into(),
        value: value.into(),
        reason: reason.into(),
    }
}

fn string(g: &Group, key: &str) -> Result<Option<String>, SystemConfError> {
    Ok(g.string(key)?)
}

fn req(g: &Group, key: &str) -> Result<String, SystemConfError> {
    string(g, key)?.ok_or_else(|| missing(&g.name, key))
}

fn boolean(g: &Group, key: &str) -> Result<Option<bool>, SystemConfError> {
    g.raw(key)
        .map(|r| keyfile::parse_bool(r).ok_or_else(|| bad(g, key, r, "not a boolean")))
        .transpose()
}

fn uint(g: &Group, key: &str) -> Result<Option<u32>, SystemConfError> {
    g.raw(key)
        .map(|r| {
            keyfile::parse_u64(r)
                .and_then(|v| u32::try_from(v).ok())
                .ok_or_else(|| bad(g, key, r, "not an unsigned integer"))
        })
        .transpose()
}

#[cfg(test)]
mod tests;

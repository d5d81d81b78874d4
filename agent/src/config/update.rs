//! `[update]`: A/B slots, bootloader and bundle keyring, either from an existing RAUC
//! `system.conf` (`system_conf = PATH`, parsed by `outpost-update` exactly as RAUC reads it) or
//! from native keys mapped onto the same [`SystemConfig`] model, so everything downstream
//! (planner, executor, `mark`, `slots`) sees one shape whichever way it was configured.

use std::path::{Path, PathBuf};

use outpost_boot::systemd_boot::{EntryKind, SystemdBootConfig};
use outpost_boot::SlotName;
use outpost_bundle::Purpose;
use outpost_update::system_conf::{BootloaderKind, StatusLocation};
use outpost_update::{Slot, SlotId, SlotTable, SlotType, SystemConfig};
use serde::Deserialize;

/// Where U-Boot's `fw_env.config` normally lives (as for `fw_printenv`).
pub const DEFAULT_FW_ENV_CONFIG: &str = "/etc/fw_env.config";
/// Where Raspberry Pi OS and NixOS mount the firmware partition.
pub const DEFAULT_AUTOBOOT: &str = "/boot/firmware/autoboot.txt";
const DEFAULT_GRUBENV: &str = "/boot/grub/grubenv";
/// Where `modules/ab-layout.nix` (and most distributions) mount the ESP.
pub const DEFAULT_ESP: &str = "/boot";
/// efivarfs: systemd-boot's `LoaderEntryDefault`/`LoaderEntryOneShot` override the menu order.
pub const DEFAULT_EFIVARS: &str = "/sys/firmware/efi/efivars";

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUpdate {
    system_conf: Option<PathBuf>,
    compatible: Option<String>,
    bootloader: Option<String>,
    grubenv: Option<PathBuf>,
    fw_env_config: Option<PathBuf>,
    custom_backend: Option<PathBuf>,
    autoboot: Option<PathBuf>,
    esp: Option<PathBuf>,
    entries: Option<String>,
    entry_prefix: Option<String>,
    efivars: Option<PathBuf>,
    boot_attempts: Option<u32>,
    boot_attempts_primary: Option<u32>,
    data_directory: Option<PathBuf>,
    keyring: Option<PathBuf>,
    check_purpose: Option<String>,
    min_version: Option<String>,
    activate_installed: Option<bool>,
    variant: Option<String>,
    booted_slot: Option<String>,
    boot_id: Option<String>,
    #[serde(default)]
    slots: Vec<RawSlot>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSlot {
    class: String,
    index: u32,
    device: PathBuf,
    #[serde(rename = "type")]
    slot_type: Option<String>,
    bootname: Option<String>,
    parent: Option<String>,
    readonly: Option<bool>,
    boot_partition: Option<u8>,
}

/// Where the update settings came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateSource {
    SystemConf(PathBuf),
    Native,
}

/// The validated `[update]` section.
#[derive(Debug, Clone)]
pub struct UpdateConfig {
    pub source: UpdateSource,
    /// Slots, bootloader, keyring paths, status location, install defaults.
    pub system: SystemConfig,
    /// `check-purpose` / `check_purpose`, validated.
    pub purpose: Purpose,
    /// Forced booted slot (`booted_slot`); `None`: detect from `/proc/cmdline`.
    pub booted_slot: Option<SlotId>,
    /// Forced boot id (`boot_id`), for simulated reboots with `booted_slot`; `None`: the
    /// kernel's `/proc/sys/kernel/random/boot_id`.
    pub boot_id: Option<String>,
    /// U-Boot only: where the environment is (`fw_env.config` syntax).
    pub fw_env_config: PathBuf,
    /// rpi-tryboot only: `autoboot.txt` and each bootname's boot partition.
    pub autoboot: PathBuf,
    pub boot_partitions: Vec<(SlotName, u8)>,
}

/// Keys that make sense beside `system_conf` (system.conf has no place for them).
const WITH_SYSTEM_CONF: &[&str] = &["booted_slot", "boot_id", "fw_env_config"];

pub(super) fn resolve(
    raw: RawUpdate,
    resolve_path: &dyn Fn(&Path) -> PathBuf,
    state_dir: &Path,
) -> Result<UpdateConfig, String> {
    let fw_env_config = raw
        .fw_env_config
        .as_deref()
        .map(resolve_path)
        .unwrap_or_else(|| DEFAULT_FW_ENV_CONFIG.into());
    let booted = raw.booted_slot.clone();
    let boot_id = raw.boot_id.clone();
    if let Some(id) = &boot_id {
        if id.is_empty()
            || id.len() > 64
            || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(format!(
                "update.boot_id {id:?} must be 1 to 64 letters, digits or '-' (like /proc/sys/kernel/random/boot_id)"
            ));
        }
    }
    let (source, system, boot_partitions, autoboot) = match raw.system_conf.as_deref() {
        Some(p) => {
            reject_native_keys(&raw)?;
            let path = resolve_path(p);
            let system = read_system_conf(&path)?;
            let autoboot = PathBuf::from(DEFAULT_AUTOBOOT);
            (UpdateSource::SystemConf(path), system, Vec::new(), autoboot)
        }
        None => {
            let (system, parts, autoboot) = native(raw, resolve_path, state_dir)?;
            (UpdateSource::Native, system, parts, autoboot)
        }
    };
    let purpose = match system.check_purpose.as_deref() {
        None => Purpose::default(),
        Some(name) => Purpose::from_rauc_name(name).ok_or_else(|| {
            format!("update: check purpose {name:?} is not smimesign, codesign or any")
        })?,
    };
    let booted_slot = match booted {
        None => None,
        Some(ident) => Some(
            system
                .slots
                .find_booted(&ident)
                .map(|s| s.id.clone())
                .ok_or_else(|| {
                    format!("update.booted_slot {ident:?} names no slot (use a bootname or <class>.<index>)")
                })?,
        ),
    };
    Ok(UpdateConfig {
        source,
        system,
        purpose,
        booted_slot,
        boot_id,
        fw_env_config,
        autoboot,
        boot_partitions,
    })
}

fn reject_native_keys(raw: &RawUpdate) -> Result<(), String> {
    let set = [
        ("compatible", raw.compatible.is_some()),
        ("bootloader", raw.bootloader.is_some()),
        ("grubenv", raw.grubenv.is_some()),
        ("custom_backend", raw.custom_backend.is_some()),
        ("autoboot", raw.autoboot.is_some()),
        ("esp", raw.esp.is_some()),
        ("entries", raw.entries.is_some()),
        ("entry_prefix", raw.entry_prefix.is_some()),
        ("efivars", raw.efivars.is_some()),
        ("boot_attempts", raw.boot_attempts.is_some()),
        ("boot_attempts_primary", raw.boot_attempts_primary.is_some()),
        ("data_directory", raw.data_directory.is_some()),
        ("keyring", raw.keyring.is_some()),
        ("check_purpose", raw.check_purpose.is_some()),
        ("min_version", raw.min_version.is_some()),
        ("activate_installed", raw.activate_installed.is_some()),
        ("variant", raw.variant.is_some()),
        ("slots", !raw.slots.is_empty()),
    ];
    match set.iter().find(|(_, present)| *present) {
        // Two sources of truth for one setting would silently disagree: refuse the mix.
        Some((key, _)) => Err(format!(
            "update.{key} cannot be combined with update.system_conf (set it in system.conf; \
             only {} may accompany system_conf)",
            WITH_SYSTEM_CONF.join(" and ")
        )),
        None => Ok(()),
    }
}

fn read_system_conf(path: &Path) -> Result<SystemConfig, String> {
    let bytes = std::fs::read(path)
        .map_err(|e| format!("update.system_conf: cannot read {}: {e}", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("/"));
    SystemConfig::parse(&bytes, base).map_err(|e| format!("{}: {e}", path.display()))
}

type Native = (SystemConfig, Vec<(SlotName, u8)>, PathBuf);

fn native(
    raw: RawUpdate,
    resolve_path: &dyn Fn(&Path) -> PathBuf,
    state_dir: &Path,
) -> Result<Native, String> {
    let compatible = raw
        .compatible
        .clone()
        .ok_or("update.compatible is required (or set update.system_conf)")?;
    let bl = raw.bootloader.as_deref().ok_or(
        "update.bootloader is required: grub, uboot, custom, rpi-tryboot or systemd-boot (or set update.system_conf)",
    )?;
    let bootloader = match bl {
        "grub" => BootloaderKind::Grub,
        "uboot" => BootloaderKind::Uboot,
        "custom" => BootloaderKind::Custom,
        "rpi-tryboot" => BootloaderKind::RpiTryboot,
        "systemd-boot" => BootloaderKind::SystemdBoot,
        other => {
            return Err(format!(
            "update.bootloader {other:?} is not grub, uboot, custom, rpi-tryboot or systemd-boot"
        ))
        }
    };
    let systemd_boot = systemd_boot(&raw, bootloader, resolve_path)?;
    let keyring = raw
        .keyring
        .as_deref()
        .map(resolve_path)
        .ok_or("update.keyring is required: the PEM file of the CA(s) that sign bundles")?;
    if bootloader == BootloaderKind::Custom && raw.custom_backend.is_none() {
        return Err("update.bootloader = \"custom\" needs update.custom_backend".into());
    }
    if raw.slots.is_empty() {
        return Err("update: no [[update.slots]] configured".into());
    }
    let mut slots = Vec::new();
    let mut parts = Vec::new();
    for s in raw.slots {
        let (slot, part) = native_slot(s, resolve_path)?;
        match (part, &slot.bootname, bootloader) {
            (Some(p), Some(b), BootloaderKind::RpiTryboot) => parts.push((b.clone(), p)),
            (None, Some(_), BootloaderKind::RpiTryboot) => {
                return Err(format!(
                    "update.slots {}: rpi-tryboot needs boot_partition on every slot with a bootname",
                    slot.id
                ))
            }
            (Some(_), _, _) => {
                return Err(format!(
                    "update.slots {}: boot_partition is only used with bootloader = \"rpi-tryboot\" on a slot with a bootname",
                    slot.id
                ))
            }
            _ => {}
        }
        slots.push(slot);
    }
    let slots = SlotTable::new(slots).map_err(|e| format!("update.slots: {e}"))?;
    let data_directory = raw
        .data_directory
        .as_deref()
        .map(resolve_path)
        .unwrap_or_else(|| state_dir.join("update"));
    let system = SystemConfig {
        compatible,
        bootloader,
        grubenv: resolve_path(raw.grubenv.as_deref().unwrap_or(Path::new(DEFAULT_GRUBENV))),
        status: StatusLocation::Central(data_directory.join("central.raucs")),
        data_directory: Some(data_directory),
        keyring_path: Some(keyring),
        keyring_directory: None,
        check_purpose: raw.check_purpose,
        activate_installed: raw.activate_installed.unwrap_or(true),
        boot_attempts: raw.boot_attempts,
        boot_attempts_primary: raw.boot_attempts_primary,
        min_bundle_version: raw.min_version,
        variant_name: raw.variant,
        custom_backend: raw.custom_backend.as_deref().map(resolve_path),
        systemd_boot,
        slots,
        ignored: Vec::new(),
    };
    let autoboot = raw
        .autoboot
        .as_deref()
        .map(resolve_path)
        .unwrap_or_else(|| DEFAULT_AUTOBOOT.into());
    Ok((system, parts, autoboot))
}

/// `esp`, `entries`, `entry_prefix`, `efivars` and `boot_attempts` (the tries of a fresh
/// entry) for systemd-boot; refused with any other bootloader, where they would be ignored.
fn systemd_boot(
    raw: &RawUpdate,
    bootloader: BootloaderKind,
    resolve_path: &dyn Fn(&Path) -> PathBuf,
) -> Result<Option<SystemdBootConfig>, String> {
    if bootloader != BootloaderKind::SystemdBoot {
        let set = [
            ("esp", raw.esp.is_some()),
            ("entries", raw.entries.is_some()),
            ("entry_prefix", raw.entry_prefix.is_some()),
            ("efivars", raw.efivars.is_some()),
        ];
        return match set.iter().find(|(_, present)| *present) {
            Some((key, _)) => Err(format!(
                "update.{key} is only used with bootloader = \"systemd-boot\""
            )),
            None => Ok(None),
        };
    }
    let mut cfg = SystemdBootConfig::new(resolve_path(
        raw.esp.as_deref().unwrap_or(Path::new(DEFAULT_ESP)),
    ));
    if let Some(dir) = &raw.entries {
        cfg.kind = EntryKind::from_dir(dir).ok_or_else(|| {
            format!("update.entries {dir:?} is not \"EFI/Linux\" (UKIs) or \"loader/entries\" (Type #1)")
        })?;
    }
    if let Some(prefix) = &raw.entry_prefix {
        // '+' would read as a boot counter, '/' as a directory; keep to SlotName's alphabet.
        let ok = !prefix.is_empty()
            && prefix.len() <= 64
            && prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if !ok {
            return Err(format!(
                "update.entry_prefix {prefix:?} must be 1 to 64 of [A-Za-z0-9_.-]"
            ));
        }
        cfg.prefix = prefix.clone();
    }
    match raw.boot_attempts {
        Some(0) => return Err("update.boot_attempts must be at least 1".into()),
        Some(n) => cfg.tries = n,
        None => {}
    }
    if raw.boot_attempts_primary.is_some() {
        return Err(
            "update.boot_attempts_primary is a U-Boot setting; systemd-boot uses boot_attempts"
                .into(),
        );
    }
    cfg.efivars = Some(resolve_path(
        raw.efivars.as_deref().unwrap_or(Path::new(DEFAULT_EFIVARS)),
    ));
    Ok(Some(cfg))
}

fn native_slot(
    s: RawSlot,
    resolve_path: &dyn Fn(&Path) -> PathBuf,
) -> Result<(Slot, Option<u8>), String> {
    let name = format!("{}.{}", s.class, s.index);
    let err = |e: &dyn std::fmt::Display| format!("update.slots {name}: {e}");
    let id = SlotId::parse(&name).map_err(|e| err(&e))?;
    let slot_type =
        SlotType::parse(s.slot_type.as_deref().unwrap_or("raw")).map_err(|e| err(&e))?;
    let bootname = s
        .bootname
        .as_deref()
        .map(SlotName::new)
        .transpose()
        .map_err(|e| err(&e))?;
    let parent = s
        .parent
        .as_deref()
        .map(SlotId::parse)
        .transpose()
        .map_err(|e| err(&e))?;
    let slot = Slot {
        id,
        device: resolve_path(&s.device),
        slot_type,
        bootname,
        parent,
        readonly: s.readonly.unwrap_or(false),
    };
    Ok((slot, s.boot_partition))
}

#[cfg(test)]
mod tests;

//! What the gate needs to know about this boot, read once at start (blocking file I/O): the
//! booted slot's bootname, its central.raucs keys, the boot id and the backend family.

use std::sync::Arc;

use outpost_boot::{BootError, Bootloader, SlotName, SlotState};
use outpost_health::driver::{read_boot_id, BootContext};
use outpost_health::state_file::{ActivationKey, SlotRef};
use outpost_health::BackendFamily;
use outpost_update::system_conf::BootloaderKind;
use outpost_update::{Booted, CentralStatus, SlotId};

use crate::config::UpdateConfig;
use crate::update::{context as update_context, InstallTracker, UpdateError};

#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("bootloader {0:?} has no health gate (supported: grub, uboot, custom, rpi-tryboot, systemd-boot)")]
    Unsupported(&'static str),
    #[error("this boot runs no slot (rauc.external): nothing to assess")]
    External,
    #[error("booted slot {0} has no bootname, so the bootloader cannot be asked about it")]
    NoBootname(String),
    #[error(transparent)]
    Update(#[from] UpdateError),
    #[error("reading central status file: {0}")]
    Status(#[from] outpost_update::status_file::StatusFileError),
    #[error("reading boot id: {0}")]
    BootId(std::io::Error),
}

pub type SharedBootloader = Arc<dyn Bootloader + Send + Sync>;

pub fn family(kind: BootloaderKind) -> Result<BackendFamily, ContextError> {
    Ok(match kind {
        BootloaderKind::Grub => BackendFamily::Grub,
        BootloaderKind::Uboot => BackendFamily::Uboot,
        BootloaderKind::Custom => BackendFamily::Custom,
        BootloaderKind::RpiTryboot => BackendFamily::RpiTryboot,
        BootloaderKind::SystemdBoot => BackendFamily::SystemdBoot,
        BootloaderKind::Efi => return Err(ContextError::Unsupported("efi")),
        BootloaderKind::Barebox => return Err(ContextError::Unsupported("barebox")),
        BootloaderKind::Noop => return Err(ContextError::Unsupported("noop")),
    })
}

/// Reads everything the driver starts from; the bootloader it returns serialises its writes
/// with installs and marks through `tracker`.
pub fn prepare(
    cfg: &UpdateConfig,
    tracker: Arc<InstallTracker>,
) -> Result<(BootContext, SharedBootloader), ContextError> {
    let family = family(cfg.system.bootloader)?;
    let booted = match update_context::booted(cfg)? {
        Booted::Slot(id) => id,
        Booted::External => return Err(ContextError::External),
    };
    let current = slot_ref(cfg, &booted)?;
    let boot_id = boot_id(cfg)?;
    let inner: SharedBootloader = Arc::from(update_context::open_bootloader(cfg)?);
    let booted =
        SlotName::new(&current.slot).map_err(|_| ContextError::NoBootname(booted.to_string()))?;
    let ctx = BootContext {
        family,
        booted,
        activation: current.activation,
        version: current.version,
        boot_id,
    };
    Ok((ctx, Arc::new(Serialised { inner, tracker })))
}

/// The root slot of `id` as the gate names it: its bootname, with the central.raucs keys of
/// its current content.
pub fn slot_ref(cfg: &UpdateConfig, id: &SlotId) -> Result<SlotRef, ContextError> {
    let slot = cfg
        .system
        .slots
        .get(id)
        .ok_or_else(|| ContextError::NoBootname(id.to_string()))?;
    let root = cfg.system.slots.root(slot);
    let bootname = root
        .bootname
        .clone()
        .ok_or_else(|| ContextError::NoBootname(root.id.to_string()))?;
    let central = match cfg.system.status_file() {
        Some(p) => CentralStatus::load(p)?,
        None => CentralStatus::default(),
    };
    let status = central.slot(&root.id);
    Ok(SlotRef {
        slot: bootname.to_string(),
        activation: ActivationKey {
            installed_timestamp: status.installed_timestamp,
            installed_count: status.installed_count,
            activated_timestamp: status.activated_timestamp,
            activated_count: status.activated_count,
            bundle_hash: status.bundle_hash,
        },
        version: status.bundle_version,
    })
}

/// This boot's id: `[update] boot_id` (simulated reboots) or the kernel's.
pub fn boot_id(cfg: &UpdateConfig) -> Result<String, ContextError> {
    match &cfg.boot_id {
        Some(id) => Ok(id.clone()),
        None => read_boot_id().map_err(ContextError::BootId),
    }
}

/// Takes the install tracker's lock around every bootloader write, so the gate's commit never
/// interleaves with an install's or a mark's read-modify-write of the same environment.
struct Serialised {
    inner: SharedBootloader,
    tracker: Arc<InstallTracker>,
}

impl Bootloader for Serialised {
    fn primary(&self) -> Result<Option<SlotName>, BootError> {
        self.inner.primary()
    }
    fn set_primary(&self, slot: &SlotName) -> Result<(), BootError> {
        let _g = self.tracker.exclusive();
        self.inner.set_primary(slot)
    }
    fn state(&self, slot: &SlotName) -> Result<SlotState, BootError> {
        self.inner.state(slot)
    }
    fn set_state(&self, slot: &SlotName, state: SlotState) -> Result<(), BootError> {
        let _g = self.tracker.exclusive();
        self.inner.set_state(slot, state)
    }
    fn attempts_left(&self, slot: &SlotName) -> Result<Option<u32>, BootError> {
        self.inner.attempts_left(slot)
    }
}

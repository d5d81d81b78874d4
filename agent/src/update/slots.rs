//! `GET /v1/slots` (RAUC's `rauc status`) and `POST /v1/slots/mark` (`rauc status mark-*`).

use std::str::FromStr;
use std::time::SystemTime;

use outpost_boot::SlotState;
use outpost_update::mark::{mark as mark_slot, MarkState};
use outpost_update::report::status_report;
use outpost_update::system_conf::BootloaderKind;
use outpost_update::{Booted, CentralStatus, SlotStatus};

use super::{context, InstallTracker, UpdateError};
use crate::config::UpdateConfig;
use crate::views::{MarkView, SlotStatusView, SlotView, SlotsView};

pub fn bootloader_name(kind: BootloaderKind) -> &'static str {
    match kind {
        BootloaderKind::Barebox => "barebox",
        BootloaderKind::Grub => "grub",
        BootloaderKind::Uboot => "uboot",
        BootloaderKind::Efi => "efi",
        BootloaderKind::Custom => "custom",
        BootloaderKind::Noop => "noop",
        BootloaderKind::RpiTryboot => "rpi-tryboot",
        BootloaderKind::SystemdBoot => "systemd-boot",
    }
}

/// Reads the bootloader and the status file. An undetectable booted slot is reported, not an
/// error: the listing is most needed exactly when something is off.
pub fn view(cfg: &UpdateConfig) -> Result<SlotsView, UpdateError> {
    let bootloader = context::open_bootloader(cfg)?;
    let (booted, booted_error) = match context::booted(cfg) {
        Ok(b) => (Some(b), None),
        Err(e) => (None, Some(crate::oneline(&e.to_string()))),
    };
    let central = match cfg.system.status_file() {
        Some(p) => CentralStatus::load(p)?,
        None => CentralStatus::default(),
    };
    let report = status_report(
        &cfg.system.slots,
        booted.as_ref().unwrap_or(&Booted::External),
        &*bootloader,
        &central,
    );
    Ok(SlotsView {
        compatible: cfg.system.compatible.clone(),
        bootloader: bootloader_name(cfg.system.bootloader).to_owned(),
        booted: booted.map(|b| match b {
            Booted::Slot(id) => id.to_string(),
            Booted::External => "external".to_owned(),
        }),
        booted_error,
        primary: report.primary.map(|p| p.to_string()),
        slots: report
            .slots
            .into_iter()
            .map(|s| SlotView {
                name: s.id.to_string(),
                class: s.id.class().to_owned(),
                device: s.device.display().to_string(),
                slot_type: s.slot_type.to_owned(),
                bootname: s.bootname,
                parent: s.parent.map(|p| p.to_string()),
                state: s.activity.as_str().to_owned(),
                boot_status: s.boot_status.map(|b| match b {
                    SlotState::Good => "good".to_owned(),
                    SlotState::Bad => "bad".to_owned(),
                }),
                status: status_view(s.status),
            })
            .collect(),
    })
}

fn status_view(s: SlotStatus) -> SlotStatusView {
    let (sha256, size) = match s.checksum {
        Some((h, n)) => (Some(h), Some(n)),
        None => (None, None),
    };
    SlotStatusView {
        bundle_compatible: s.bundle_compatible,
        bundle_version: s.bundle_version,
        bundle_description: s.bundle_description,
        bundle_build: s.bundle_build,
        bundle_hash: s.bundle_hash,
        status: s.status,
        sha256,
        size,
        installed_timestamp: s.installed_timestamp,
        installed_count: s.installed_count,
        activated_timestamp: s.activated_timestamp,
        activated_count: s.activated_count,
    }
}

/// `mark good|bad|active booted|other|<slot>`.
pub fn mark(
    cfg: &UpdateConfig,
    tracker: &InstallTracker,
    state: &str,
    slot: &str,
) -> Result<MarkView, UpdateError> {
    let state = MarkState::from_str(state)?;
    let _exclusive = tracker.exclusive();
    let bootloader = context::open_bootloader(cfg)?;
    let booted = context::booted(cfg)?;
    let status = context::status_file(cfg)?;
    let outcome = mark_slot(
        state,
        slot,
        &cfg.system.slots,
        &booted,
        &*bootloader,
        status.as_deref(),
        SystemTime::now(),
    )?;
    tracing::info!(slot = %outcome.slot, message = %outcome.message, "mark");
    super::armed::after_mark(cfg, tracker, state, &outcome.slot, &booted);
    Ok(MarkView {
        slot: outcome.slot.to_string(),
        message: outcome.message,
    })
}

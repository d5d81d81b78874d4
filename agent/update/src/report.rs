//! `slots`: what `rauc status` shows — per slot its class, device, type, bootname, whether it
//! is booted/active/inactive, its boot status from the bootloader, and its status-file keys —
//! plus the bootloader's primary slot.

use std::path::PathBuf;

use outpost_boot::{Bootloader, SlotState};

use crate::slots::{Booted, SlotActivity, SlotId, SlotTable};
use crate::status_file::{CentralStatus, SlotStatus};

/// One slot as `rauc status` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotReport {
    pub id: SlotId,
    pub device: PathBuf,
    pub slot_type: &'static str,
    pub bootname: Option<String>,
    pub parent: Option<SlotId>,
    pub activity: SlotActivity,
    /// `None` for slots without bootname or when the bootloader could not be read.
    pub boot_status: Option<SlotState>,
    pub status: SlotStatus,
}

/// The whole `rauc status` picture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusReport {
    pub booted: Booted,
    /// The slot the bootloader will boot next (RAUC's "Activated").
    pub primary: Option<SlotId>,
    pub slots: Vec<SlotReport>,
}

/// Reads the bootloader and the status file (already loaded) into a report. Bootloader read
/// errors show as unknown boot status rather than failing the listing, as `rauc status` does.
pub fn status_report(
    slots: &SlotTable,
    booted: &Booted,
    bootloader: &dyn Bootloader,
    central: &CentralStatus,
) -> StatusReport {
    let primary = bootloader.primary().ok().flatten().and_then(|name| {
        slots
            .iter()
            .find(|s| s.bootname.as_ref() == Some(&name))
            .map(|s| s.id.clone())
    });
    let slots = slots
        .iter()
        .map(|s| SlotReport {
            id: s.id.clone(),
            device: s.device.clone(),
            slot_type: s.slot_type.as_str(),
            bootname: s.bootname.as_ref().map(|b| b.to_string()),
            parent: s.parent.clone(),
            activity: slots.activity(s, booted),
            boot_status: s.bootname.as_ref().and_then(|b| bootloader.state(b).ok()),
            status: central.slot(&s.id),
        })
        .collect();
    StatusReport {
        booted: booted.clone(),
        primary,
        slots,
    }
}

//! The one interface every backend implements: RAUC's four bootloader calls plus what a health
//! gate needs to recognise a trial boot.

use crate::error::BootError;
use crate::slot::{SlotName, SlotState};

/// A bootloader that chooses between A/B slots, with RAUC 1.8 semantics.
///
/// How RAUC drives it (and how the agent should):
/// - install: `set_state(target, Bad)`, write the slot, then `set_primary(target)`;
/// - mark-good (health gate passed on the booted slot): `set_state(booted, Good)`;
/// - mark-bad: `set_state(slot, Bad)`; mark-active: `set_primary(slot)`.
///
/// Calls take `&self`: a backend is a handle to files or a program and keeps no state between
/// calls, so every call reads the bootloader's current truth.
pub trait Bootloader {
    /// The slot the bootloader will boot next: the first slot in its order that it considers
    /// bootable. `None` if no configured slot is bootable.
    fn primary(&self) -> Result<Option<SlotName>, BootError>;

    /// Makes `slot` the one to boot next, with a fresh attempt counter.
    fn set_primary(&self, slot: &SlotName) -> Result<(), BootError>;

    /// Whether the bootloader considers `slot` bootable.
    fn state(&self, slot: &SlotName) -> Result<SlotState, BootError>;

    fn set_state(&self, slot: &SlotName, state: SlotState) -> Result<(), BootError>;

    /// Boot attempts the bootloader still grants `slot` before falling back, or `None` when
    /// the backend does not count attempts (custom scripts).
    ///
    /// For a health gate on the booted slot: GRUB shows `Some(0)` during a trial boot (it set
    /// `<slot>_TRY=1` when it started it) and `Some(1)` once committed; U-Boot shows the
    /// decremented `BOOT_<slot>_LEFT`, which its boot script lowers on *every* boot, so a
    /// U-Boot system must run the gate (and `set_state(Good)`) on every boot.
    fn attempts_left(&self, slot: &SlotName) -> Result<Option<u32>, BootError>;

    /// The slot that is running now, if the bootloader can tell (RAUC's custom `get-current`).
    /// `None` means: use the kernel command line (`rauc.slot=`).
    fn booted(&self) -> Result<Option<SlotName>, BootError> {
        Ok(None)
    }
}

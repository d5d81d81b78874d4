//! systemd-boot as a [`Bootloader`], for the gate: one boot entry per slot in one directory
//! (`loader/entries/*.conf` or `EFI/Linux/*.efi`), its boot counter in the file name, through
//! `outpost_boot::systemd_boot`'s name codec and renames.
//!
//! - `state`: a blessed entry (no counter) or one with tries left is Good; `+0` is Bad.
//! - `attempts_left`: `Some(left)` while counting (a trial), `None` once blessed.
//! - `set_state(Good)` = `systemd-bless-boot good` (drop the counter); `Bad` = `+0-<done>`.
//! - `set_primary(slot)`: re-arms the entry with [`DEFAULT_TRIES`] (`stem+3`).
//! - `primary`: an entry with tries left (the newest install) before a blessed one. systemd-boot
//!   itself sorts by version and `default` in loader.conf; how it combines those with counting
//!   has not been verified against a real systemd-boot (no `bootctl` here), so this is the
//!   gate's view, not a promise about the firmware's choice.
//!
//! Lives here rather than in `outpost-boot` because only the gate uses it so far; moving it
//! there is a copy (it only uses that crate's public API).

use std::path::PathBuf;

use outpost_boot::systemd_boot::{find_entry, rename_entry, Assessment, EntryName};
use outpost_boot::{BootError, Bootloader, SlotName, SlotState};

/// Tries a fresh trial gets (systemd's default `+3`).
pub const DEFAULT_TRIES: u32 = 3;

#[derive(Debug, Clone)]
pub struct SdBootBackend {
    dir: PathBuf,
    ext: String,
    /// Each slot's entry stem (`outpost-A`).
    slots: Vec<(SlotName, String)>,
}

impl SdBootBackend {
    pub fn new(dir: impl Into<PathBuf>, ext: &str, slots: Vec<(SlotName, String)>) -> Self {
        Self {
            dir: dir.into(),
            ext: ext.to_owned(),
            slots,
        }
    }

    fn entry(&self, slot: &SlotName) -> Result<(PathBuf, EntryName), BootError> {
        let unknown = || BootError::UnknownSlot {
            slot: slot.to_string(),
        };
        let stem = self
            .slots
            .iter()
            .find(|(s, _)| s == slot)
            .map(|(_, stem)| stem)
            .ok_or_else(unknown)?;
        find_entry(&self.dir, stem, &self.ext)?.ok_or_else(unknown)
    }
}

impl Bootloader for SdBootBackend {
    fn primary(&self) -> Result<Option<SlotName>, BootError> {
        let mut blessed = None;
        for (slot, _) in &self.slots {
            match self.entry(slot)?.1.assessment() {
                Assessment::Indeterminate { .. } => return Ok(Some(slot.clone())),
                Assessment::Good if blessed.is_none() => blessed = Some(slot.clone()),
                _ => {}
            }
        }
        Ok(blessed)
    }

    fn set_primary(&self, slot: &SlotName) -> Result<(), BootError> {
        let (path, name) = self.entry(slot)?;
        rename_entry(&path, &name.with_tries(DEFAULT_TRIES)).map(|_| ())
    }

    fn state(&self, slot: &SlotName) -> Result<SlotState, BootError> {
        Ok(match self.entry(slot)?.1.assessment() {
            Assessment::Bad => SlotState::Bad,
            Assessment::Good | Assessment::Indeterminate { .. } => SlotState::Good,
        })
    }

    fn set_state(&self, slot: &SlotName, state: SlotState) -> Result<(), BootError> {
        let (path, name) = self.entry(slot)?;
        let to = match state {
            SlotState::Good => name.blessed(),
            SlotState::Bad => name.marked_bad(),
        };
        rename_entry(&path, &to).map(|_| ())
    }

    fn attempts_left(&self, slot: &SlotName) -> Result<Option<u32>, BootError> {
        Ok(self.entry(slot)?.1.counter.map(|c| c.left))
    }
}

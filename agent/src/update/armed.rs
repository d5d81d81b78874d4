//! The note of the slot an install or `mark active` armed (`<state_dir>/armed.json`, see
//! `outpost_health::armed`), so that the gate of a later boot can tell when that slot never
//! got as far as its agent. Kept after the bootloader write it describes is durable; a failure
//! to keep it is logged, never fails the install or mark (the note only ever adds a record).

use outpost_health::armed::Armed;
use outpost_update::mark::MarkState;
use outpost_update::{Booted, SlotId};

use super::InstallTracker;
use crate::config::UpdateConfig;
use crate::health::context;

/// Before an install writes: it marks its target bad first, which voids an earlier arming of
/// that slot (installed, not yet booted). Left in place, a failed install would later read as
/// "never reached its agent".
pub fn before_install(tracker: &InstallTracker) {
    if let Some(path) = tracker.armed_file() {
        if let Err(e) = Armed::remove(path) {
            tracing::warn!(error = %e, "cannot remove the armed-slot note");
        }
    }
}

/// After an install: the slot it activated is armed for its first trial.
pub fn after_install(cfg: &UpdateConfig, tracker: &InstallTracker, activated: &[SlotId]) {
    if let Some(slot) = activated.first() {
        arm(cfg, tracker, slot);
    }
}

/// After a mark: `active` on another slot arms it; `active` on the booted slot, or any mark of
/// the armed slot, is an operator's decision that replaces the note.
pub fn after_mark(
    cfg: &UpdateConfig,
    tracker: &InstallTracker,
    state: MarkState,
    slot: &SlotId,
    booted: &Booted,
) {
    let Some(path) = tracker.armed_file() else {
        return;
    };
    if state == MarkState::Active && !matches!(booted, Booted::Slot(b) if b == slot) {
        return arm(cfg, tracker, slot);
    }
    let names_it = match (Armed::load(path), context::slot_ref(cfg, slot)) {
        (Ok(Some(a)), Ok(r)) => a.slot.slot == r.slot,
        (Ok(None), _) => false,
        // Unreadable note or slot: dropping the note is the safe side (no false record).
        _ => true,
    };
    if state == MarkState::Active || names_it {
        if let Err(e) = Armed::remove(path) {
            tracing::warn!(error = %e, "cannot remove the armed-slot note");
        }
    }
}

fn arm(cfg: &UpdateConfig, tracker: &InstallTracker, slot: &SlotId) {
    let Some(path) = tracker.armed_file() else {
        return;
    };
    let note = context::slot_ref(cfg, slot)
        .and_then(|r| Ok((r, context::boot_id(cfg)?)))
        .map_err(|e| e.to_string())
        .and_then(|(r, boot)| {
            let at = outpost_health::record::rfc3339(std::time::SystemTime::now());
            Armed::new(r, boot, at)
                .save(path)
                .map_err(|e| e.to_string())
        });
    match note {
        Ok(()) => tracing::info!(%slot, "armed slot noted for the next boot's health gate"),
        Err(e) => tracing::warn!(%slot, error = %e, "cannot note the armed slot"),
    }
}

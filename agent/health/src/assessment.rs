//! What this boot is, decided from the booted slot, the bootloader's view of it, central.raucs
//! and the gate's state from earlier boots. Pure: the driver gathers the readings.
//!
//! Backends fall in two families (see the crate docs for the facts behind them):
//! - **self-describing** (rpi-tryboot, systemd-boot): the bootloader alone tells a trial from a
//!   committed slot. A trial is "booted from `[tryboot]`" (the booted slot is not the `[all]`
//!   default, `state == Bad`) or "the booted entry still has a counter" (`attempts_left` is
//!   `Some`). A committed slot is permanently good there: nothing to re-arm.
//! - **counting** (GRUB, U-Boot, custom): the bootloader counts *every* boot (GRUB sets
//!   `<slot>_TRY=1` before each boot, U-Boot lowers `BOOT_<slot>_LEFT`), so a committed slot
//!   reads exactly like a trial. Here the gate's own `committed` record decides: the booted
//!   slot is committed iff the record names it with the activation keys central.raucs has for
//!   it now. Such a slot is re-armed (`set_state(Good)`) on every boot. With no record at all
//!   a slot central.raucs never saw installed is a factory image (adopted as committed); one
//!   it saw installed is checked (when in doubt, run the gate: a healthy system passes).
//!   GRUB adds one fact: the booted slot reads `Good` only if someone marked it good in this
//!   boot, which counts as committed.
//!
//! One case no bootloader reading shows: a slot armed for its first trial whose kernel or init
//! never got as far as the agent. Its trial was never opened, so after the bootloader's counter
//! falls back nothing would say it failed. The installer's note (`armed.json`,
//! [`crate::armed`]) does: armed in an earlier boot, another slot runs, no trial of that
//! install on record → [`Assessment::NeverReachedAgent`].

use outpost_boot::{SlotName, SlotState};

use crate::armed::Armed;
use crate::state_file::{Decision, GateState, SlotRef, TrialState};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendFamily {
    Grub,
    Uboot,
    RpiTryboot,
    SystemdBoot,
    Custom,
}

impl BackendFamily {
    /// Whether the bootloader falls back after a number of boots unless the booted slot is
    /// marked good again, even once committed (GRUB, U-Boot; custom scripts are assumed to).
    pub fn rearm_each_boot(self) -> bool {
        matches!(
            self,
            BackendFamily::Grub | BackendFamily::Uboot | BackendFamily::Custom
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            BackendFamily::Grub => "grub",
            BackendFamily::Uboot => "uboot",
            BackendFamily::RpiTryboot => "rpi-tryboot",
            BackendFamily::SystemdBoot => "systemd-boot",
            BackendFamily::Custom => "custom",
        }
    }
}

/// Everything the assessment reads about this boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootFacts {
    pub family: BackendFamily,
    /// The booted slot with its central.raucs activation keys and version.
    pub booted: SlotRef,
    /// `/proc/sys/kernel/random/boot_id`.
    pub boot_id: String,
    /// `state(booted)` and `attempts_left(booted)` as the backend reports them now.
    pub state: SlotState,
    pub attempts_left: Option<u32>,
    /// The installer's note of the slot it armed last (`armed.json`), if any.
    pub armed: Option<Armed>,
}

impl BootFacts {
    /// The same facts with the armed note told (it is never assessed twice).
    pub fn without_armed(&self) -> Self {
        Self {
            armed: None,
            ..self.clone()
        }
    }

    pub fn booted_name(&self) -> Result<SlotName, outpost_boot::SlotNameError> {
        SlotName::new(&self.booted.slot)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assessment {
    /// The booted slot is committed. `rearm`: mark it good again now (counting backends).
    NotATrial { slot: SlotRef, rearm: bool },
    /// Run the gate on the booted slot. `resume_from_ms`: the gate already started in this
    /// boot at that uptime (the agent restarted), so the deadline is kept.
    Trial {
        slot: SlotRef,
        boots: u32,
        resume_from_ms: Option<u64>,
    },
    /// The gate decided to commit (in this boot or before a reboot); finish it (idempotent).
    AfterCommittedTrial { slot: SlotRef },
    /// The gate decided to fail in this boot; finish marking bad and rebooting.
    FailingTrial { slot: SlotRef, reason: String },
    /// Another slot than the trial's runs: the trial failed, or never got a verdict before the
    /// bootloader gave up on it. Record why, then assess the booted slot again.
    AfterFailedTrial { failed: SlotRef, reason: String },
    /// The gate marked this slot bad, yet it booted again (no fallback was possible). It is
    /// neither committed nor rebooted again (that would loop).
    BootedBadSlot { slot: SlotRef, reason: String },
    /// A slot armed in an earlier boot runs not, and no trial of that install was ever opened:
    /// the bootloader gave up on it before its agent started (kernel panic, init failure, an
    /// early hang). Record why and mark it bad, then assess the booted slot again.
    NeverReachedAgent { armed: Armed, reason: String },
}

/// Decides what this boot is (see the module docs).
pub fn assess(f: &BootFacts, st: &GateState) -> Assessment {
    if let Some(t) = &st.trial {
        if t.slot.slot != f.booted.slot {
            return after_failed(f, t);
        }
        if t.slot.activation == f.booted.activation {
            if let Some(a) = continue_trial(f, t) {
                return a;
            }
        }
        // Same slot, rewritten since: that trial is superseded; assess the new content.
    }
    if let Some(a) = never_reached_agent(f, st) {
        return a;
    }
    fresh(f, st)
}

fn never_reached_agent(f: &BootFacts, st: &GateState) -> Option<Assessment> {
    let armed = f.armed.as_ref()?;
    // Armed in this boot: the reboot into it is still to come. Booted: its own gate runs.
    if armed.boot_id == f.boot_id || armed.slot.slot == f.booted.slot {
        return None;
    }
    // Its agent did run: the trial (or commit) of this very install is on record.
    let this_install =
        |r: &SlotRef| r.slot == armed.slot.slot && r.activation == armed.slot.activation;
    if st.trial.as_ref().is_some_and(|t| this_install(&t.slot))
        || st.committed.as_ref().is_some_and(this_install)
    {
        return None;
    }
    let version = armed
        .slot
        .version
        .as_deref()
        .map(|v| format!(" (version {v})"))
        .unwrap_or_default();
    Some(Assessment::NeverReachedAgent {
        armed: armed.clone(),
        reason: format!(
            "the bootloader fell back to {} before slot {}{version} started its agent \
             (its kernel or init failed, or it hung early in boot); armed {}",
            f.booted.slot, armed.slot.slot, armed.armed_at
        ),
    })
}

fn continue_trial(f: &BootFacts, t: &TrialState) -> Option<Assessment> {
    let slot = t.slot.clone();
    Some(match &t.decision {
        Some(Decision::Commit) => Assessment::AfterCommittedTrial { slot },
        Some(Decision::Fail { reason }) if t.boot_id == f.boot_id => Assessment::FailingTrial {
            slot,
            reason: reason.clone(),
        },
        Some(Decision::Fail { reason }) => Assessment::BootedBadSlot {
            slot,
            reason: reason.clone(),
        },
        // Marked good outside the gate (rauc mark-good): the bootloader has the last word.
        None if bootloader_says_committed(f) => return None,
        None => {
            let same = t.boot_id == f.boot_id;
            Assessment::Trial {
                slot,
                boots: if same {
                    t.boots
                } else {
                    t.boots.saturating_add(1)
                },
                resume_from_ms: same.then_some(t.started_uptime_ms),
            }
        }
    })
}

fn after_failed(f: &BootFacts, t: &TrialState) -> Assessment {
    let reason = match &t.decision {
        Some(Decision::Fail { reason }) => reason.clone(),
        Some(Decision::Commit) => format!(
            "the checks passed but the bootloader booted {} before the commit reached it",
            f.booted.slot
        ),
        None => format!(
            "the bootloader fell back to {} after {} boot(s) of {} without a verdict \
             (agent crash, hang or power loss during the gate)",
            f.booted.slot, t.boots, t.slot.slot
        ),
    };
    Assessment::AfterFailedTrial {
        failed: t.slot.clone(),
        reason,
    }
}

/// No open trial for the booted content: is this boot a new trial?
fn fresh(f: &BootFacts, st: &GateState) -> Assessment {
    let trial = match f.family {
        BackendFamily::RpiTryboot | BackendFamily::SystemdBoot => !bootloader_says_committed(f),
        BackendFamily::Grub | BackendFamily::Uboot | BackendFamily::Custom => {
            let committed = st
                .committed
                .as_ref()
                .is_some_and(|c| c.slot == f.booted.slot && c.activation == f.booted.activation);
            let known = st.committed.is_some() || f.booted.activation.was_installed();
            !committed && !bootloader_says_committed(f) && known
        }
    };
    if trial {
        Assessment::Trial {
            slot: f.booted.clone(),
            boots: 1,
            resume_from_ms: None,
        }
    } else {
        Assessment::NotATrial {
            slot: f.booted.clone(),
            rearm: f.family.rearm_each_boot(),
        }
    }
}

/// What the bootloader alone says about the booted slot being committed.
fn bootloader_says_committed(f: &BootFacts) -> bool {
    match f.family {
        // Only the [all] default reads Good; a [tryboot] boot reads Bad.
        BackendFamily::RpiTryboot => f.state == SlotState::Good,
        // A blessed entry has no counter.
        BackendFamily::SystemdBoot => f.attempts_left.is_none(),
        // GRUB set _TRY=1 before booting it: Good now means marked good in this boot.
        BackendFamily::Grub => f.state == SlotState::Good,
        // U-Boot lowers LEFT on every boot and reads Good while any are left; custom scripts
        // say nothing reliable: only the gate's record counts.
        BackendFamily::Uboot | BackendFamily::Custom => false,
    }
}

#[cfg(test)]
mod tests;

//! `rauc status mark-good|mark-bad|mark-active [booted|other|<slot>]` (RAUC 1.8 `src/mark.c`).
//!
//! good → `set_state(slot, good)`; bad → `set_state(slot, bad)`; active → `set_primary(slot)`
//! then `activated.timestamp`/`activated.count` in the status file. A status-file failure after
//! a successful `set_primary` is reported as success with a warning, as RAUC does: the
//! bootloader state, which decides what boots, is already written.

use std::path::Path;
use std::time::SystemTime;

use outpost_boot::{BootError, Bootloader, SlotState};

use crate::slots::{Booted, Slot, SlotId, SlotTable};
use crate::status_file::CentralStatus;
use crate::timestamp::rauc_timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkState {
    Good,
    Bad,
    Active,
}

impl std::str::FromStr for MarkState {
    type Err = MarkError;
    fn from_str(s: &str) -> Result<Self, MarkError> {
        match s {
            "good" => Ok(MarkState::Good),
            "bad" => Ok(MarkState::Bad),
            "active" => Ok(MarkState::Active),
            other => Err(MarkError::UnknownState(other.to_string())),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MarkError {
    #[error("unknown subcommand {0}")]
    UnknownState(String),
    #[error("did not find booted slot")]
    NoBootedSlot,
    #[error("no other bootable slot of the same class found")]
    NoOtherSlot,
    #[error("no slot with class {class} and name {name} found")]
    NoSuchSlot { class: String, name: String },
    #[error("invalid slot name format: '{0}'")]
    BadIdentifier(String),
    #[error("slot {0} has no bootname")]
    NoBootname(SlotId),
    #[error("failed marking slot {slot} as {state}: {source}")]
    Bootloader {
        slot: SlotId,
        state: &'static str,
        #[source]
        source: Box<BootError>,
    },
}

/// Result of a mark operation: the slot and RAUC's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkOutcome {
    pub slot: SlotId,
    pub message: String,
}

/// Resolves `booted`, `other` or `<class>.<index>` (a root slot) to a slot. Pure.
pub fn resolve<'a>(
    identifier: &str,
    slots: &'a SlotTable,
    booted: &Booted,
) -> Result<&'a Slot, MarkError> {
    let booted_slot = match booted {
        Booted::Slot(id) => slots.get(id),
        Booted::External => None,
    };
    match identifier {
        "booted" => booted_slot.ok_or(MarkError::NoBootedSlot),
        "other" => {
            let b = booted_slot.ok_or(MarkError::NoBootedSlot)?;
            slots
                .iter()
                .find(|s| {
                    s.id.class() == b.id.class()
                        && s.parent.is_none()
                        && s.bootname.is_some()
                        && s.id != b.id
                })
                .ok_or(MarkError::NoOtherSlot)
        }
        name => {
            let id = SlotId::parse(name).map_err(|_| MarkError::BadIdentifier(name.to_string()))?;
            slots
                .get(&id)
                .filter(|s| s.parent.is_none())
                .ok_or_else(|| MarkError::NoSuchSlot {
                    class: id.class().to_string(),
                    name: name.to_string(),
                })
        }
    }
}

/// Runs one mark operation.
pub fn mark(
    state: MarkState,
    identifier: &str,
    slots: &SlotTable,
    booted: &Booted,
    bootloader: &dyn Bootloader,
    status_file: Option<&Path>,
    now: SystemTime,
) -> Result<MarkOutcome, MarkError> {
    let slot = resolve(identifier, slots, booted)?;
    let bootname = slot
        .bootname
        .as_ref()
        .ok_or_else(|| MarkError::NoBootname(slot.id.clone()))?;
    let fail = |state: &'static str| {
        move |source| MarkError::Bootloader {
            slot: slot.id.clone(),
            state,
            source: Box::new(source),
        }
    };
    let message = match state {
        MarkState::Good => {
            bootloader
                .set_state(bootname, SlotState::Good)
                .map_err(fail("good"))?;
            format!("marked slot {} as good", slot.id)
        }
        MarkState::Bad => {
            bootloader
                .set_state(bootname, SlotState::Bad)
                .map_err(fail("bad"))?;
            format!("marked slot {} as bad", slot.id)
        }
        MarkState::Active => {
            bootloader.set_primary(bootname).map_err(fail("active"))?;
            match record_activation(status_file, &slot.id, now) {
                Ok(()) => format!("activated slot {}", slot.id),
                Err(e) => format!(
                    "activated slot {}, but failed to write status file: {e}",
                    slot.id
                ),
            }
        }
    };
    Ok(MarkOutcome {
        slot: slot.id.clone(),
        message,
    })
}

fn record_activation(
    status_file: Option<&Path>,
    slot: &SlotId,
    now: SystemTime,
) -> Result<(), crate::status_file::StatusFileError> {
    let Some(path) = status_file else {
        return Ok(());
    };
    let mut st = CentralStatus::load(path)?;
    let mut s = st.slot(slot);
    s.activated_timestamp = Some(rauc_timestamp(now));
    s.activated_count += 1;
    st.set_slot(slot, &s);
    st.save(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slots::SlotType;
    use outpost_boot::SlotName;
    use std::path::PathBuf;

    fn table() -> SlotTable {
        let s = |n: &str, b: Option<&str>, p: Option<&str>| Slot {
            id: SlotId::parse(n).unwrap(),
            device: PathBuf::from("/dev/null"),
            slot_type: SlotType::Raw,
            bootname: b.map(|b| SlotName::new(b).unwrap()),
            parent: p.map(|p| SlotId::parse(p).unwrap()),
            readonly: false,
        };
        SlotTable::new(vec![
            s("rootfs.0", Some("A"), None),
            s("rootfs.1", Some("B"), None),
            s("appfs.0", None, Some("rootfs.0")),
        ])
        .unwrap()
    }

    #[test]
    fn identifiers_resolve_like_rauc() {
        let t = table();
        let b = Booted::Slot(SlotId::parse("rootfs.1").unwrap());
        let r = |i: &str| resolve(i, &t, &b).map(|s| s.id.to_string());
        assert_eq!(r("booted").unwrap(), "rootfs.1");
        assert_eq!(r("other").unwrap(), "rootfs.0");
        assert_eq!(r("rootfs.0").unwrap(), "rootfs.0");
        assert!(
            matches!(r("appfs.0"), Err(MarkError::NoSuchSlot { .. })),
            "children are not markable"
        );
        assert!(matches!(r("rootfs.7"), Err(MarkError::NoSuchSlot { .. })));
        assert!(matches!(r("rootfs"), Err(MarkError::BadIdentifier(_))));
        assert!(matches!(
            resolve("other", &t, &Booted::External),
            Err(MarkError::NoBootedSlot)
        ));
        assert!("maybe".parse::<MarkState>().is_err());
    }
}

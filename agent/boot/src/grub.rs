//! GRUB backend: `ORDER`, `<slot>_OK`, `<slot>_TRY` in a grubenv, as RAUC 1.8 writes them
//! (RAUC runs `grub-editenv <grubenv> set ...`; we edit the block ourselves, with the same
//! result byte for byte, and replace the file atomically).
//!
//! RAUC's `contrib/grub.conf` boots the first slot in `ORDER` with `_OK=1` and `_TRY=0`, and
//! sets its `_TRY=1` before booting it. A slot that is not marked good again (`_TRY=0`) is
//! skipped on the next boot: one attempt per arming.

use std::path::{Path, PathBuf};

use crate::atomic_file;
use crate::bootloader::Bootloader;
use crate::error::BootError;
use crate::grubenv::{self, GrubEnv};
use crate::num::strtoull;
use crate::slot::{SlotName, SlotState};

#[derive(Debug, Clone)]
pub struct GrubBackend {
    path: PathBuf,
    /// Every slot that has a bootname, in the order `set_primary` lists the others in `ORDER`
    /// (RAUC lists the configured slots in hash-table order; a fixed order is clearer).
    slots: Vec<SlotName>,
}

impl GrubBackend {
    pub fn new(path: impl Into<PathBuf>, slots: Vec<SlotName>) -> Self {
        Self {
            path: path.into(),
            slots,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn load(&self) -> Result<GrubEnv, BootError> {
        let bytes = atomic_file::read_bounded(&self.path, grubenv::BLOCK_SIZE)?;
        GrubEnv::parse(&bytes).map_err(|source| self.env_err(source))
    }

    /// Applies `pairs` in order (like one `grub-editenv set a=1 b=2` call) and writes once.
    fn update(&self, pairs: &[(String, String)]) -> Result<(), BootError> {
        let mut env = self.load()?;
        for (name, value) in pairs {
            env.set(name, value)
                .map_err(|source| self.env_err(source))?;
        }
        let bytes = env.serialize().map_err(|source| self.env_err(source))?;
        atomic_file::replace(&self.path, &bytes)
    }

    fn env_err(&self, source: grubenv::GrubEnvError) -> BootError {
        BootError::GrubEnv {
            path: self.path.clone(),
            source,
        }
    }

    fn check_known(&self, slot: &SlotName) -> Result<(), BootError> {
        if self.slots.contains(slot) {
            Ok(())
        } else {
            Err(BootError::UnknownSlot {
                slot: slot.to_string(),
            })
        }
    }
}

/// A variable RAUC requires to be present (its `grub_env_get` fails otherwise).
fn var(env: &GrubEnv, name: &str) -> Result<String, BootError> {
    let value = env
        .get(name)
        .ok_or_else(|| BootError::MissingVar { name: name.into() })?;
    String::from_utf8(value).map_err(|_| BootError::NotUtf8 { name: name.into() })
}

/// RAUC: good = `_OK` is 1 and `_TRY` is 0, both read with `g_ascii_strtoull(.., 0)`.
fn ok_and_not_tried(env: &GrubEnv, slot: &SlotName) -> Result<bool, BootError> {
    let ok = strtoull(&var(env, &format!("{slot}_OK"))?, 0);
    let tried = strtoull(&var(env, &format!("{slot}_TRY"))?, 0);
    Ok(ok == 1 && tried == 0)
}

/// `ORDER` split on single spaces, as `g_strsplit(order, " ", -1)` does.
fn in_order(order: &str, slot: &SlotName) -> bool {
    order.split(' ').any(|b| b == slot.as_str())
}

impl Bootloader for GrubBackend {
    fn primary(&self) -> Result<Option<SlotName>, BootError> {
        let env = self.load()?;
        let order = var(&env, "ORDER")?;
        for bootname in order.split(' ') {
            let Some(slot) = self.slots.iter().find(|s| s.as_str() == bootname) else {
                continue;
            };
            if ok_and_not_tried(&env, slot)? {
                return Ok(Some(slot.clone()));
            }
        }
        Ok(None)
    }

    fn set_primary(&self, slot: &SlotName) -> Result<(), BootError> {
        self.check_known(slot)?;
        let mut order = slot.to_string();
        for other in self.slots.iter().filter(|s| *s != slot) {
            order.push(' ');
            order.push_str(other.as_str());
        }
        self.update(&[
            (format!("{slot}_OK"), "1".into()),
            (format!("{slot}_TRY"), "0".into()),
            ("ORDER".into(), order),
        ])
    }

    fn state(&self, slot: &SlotName) -> Result<SlotState, BootError> {
        let env = self.load()?;
        if !in_order(&var(&env, "ORDER")?, slot) {
            return Ok(SlotState::Bad);
        }
        Ok(if ok_and_not_tried(&env, slot)? {
            SlotState::Good
        } else {
            SlotState::Bad
        })
    }

    fn set_state(&self, slot: &SlotName, state: SlotState) -> Result<(), BootError> {
        self.check_known(slot)?;
        let ok = match state {
            SlotState::Good => "1",
            SlotState::Bad => "0",
        };
        self.update(&[
            (format!("{slot}_OK"), ok.into()),
            (format!("{slot}_TRY"), "0".into()),
        ])
    }

    fn attempts_left(&self, slot: &SlotName) -> Result<Option<u32>, BootError> {
        Ok(Some(match self.state(slot)? {
            SlotState::Good => 1,
            SlotState::Bad => 0,
        }))
    }
}

//! U-Boot backend: `BOOT_ORDER` and `BOOT_<slot>_LEFT` as RAUC 1.8 writes them, in an env
//! described by an `fw_env.config` (plain files; one copy, or two for a redundant env).
//!
//! RAUC calls `fw_setenv` once per variable; we change all variables of one operation in a single
//! env write, which is strictly safer. Values are hex as RAUC writes them for `set_state`
//! (`%x`) and as its `contrib/uboot.sh` reads them (`setexpr` is hex). RAUC writes the
//! `set_primary` count with `%d`, which only differs for counts of 10 or more (then RAUC's own
//! reader, base 16, would misread it); we write hex there too.
//!
//! Writes: a redundant env gets the *other* copy written with flags + 1 and fsynced, so a cut
//! leaves the current copy valid (libubootenv's scheme). A single env that fills its whole file
//! is replaced atomically (temp + rename); a single env inside a larger file (a raw partition
//! image) is written in place and fsynced, as libubootenv does: a cut there can leave a bad CRC,
//! which U-Boot answers with its built-in default env. Use a redundant env where that matters.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;

use crate::atomic_file;
use crate::bootloader::Bootloader;
use crate::error::BootError;
use crate::fw_env_config::{EnvLocation, FwEnvConfig};
use crate::num::strtoull;
use crate::slot::{SlotName, SlotState};
use crate::ubootenv::{Copy, Layout, UbootEnv};

/// RAUC's `UBOOT_DEFAULT_ATTEMPTS` and `UBOOT_ATTEMPTS_PRIMARY`.
pub const DEFAULT_ATTEMPTS: u32 = 3;

#[derive(Debug, Clone)]
pub struct UbootBackend {
    config: FwEnvConfig,
    slots: Vec<SlotName>,
    /// system.conf `boot-attempts`: what mark-good writes.
    boot_attempts: u32,
    /// system.conf `boot-attempts-primary`: what set_primary writes.
    boot_attempts_primary: u32,
}

/// The env as read, with where the next write must go.
#[derive(Debug, Clone)]
pub struct LoadedEnv {
    pub env: UbootEnv,
    /// Redundant envs: the copy that is current and its flags.
    current: Option<(usize, u8)>,
}

impl UbootBackend {
    pub fn new(config: FwEnvConfig, slots: Vec<SlotName>) -> Self {
        Self {
            config,
            slots,
            boot_attempts: DEFAULT_ATTEMPTS,
            boot_attempts_primary: DEFAULT_ATTEMPTS,
        }
    }

    /// Overrides RAUC's defaults; 0 means "use the default", as in RAUC.
    pub fn with_attempts(mut self, boot_attempts: u32, boot_attempts_primary: u32) -> Self {
        let or_default = |n| if n == 0 { DEFAULT_ATTEMPTS } else { n };
        self.boot_attempts = or_default(boot_attempts);
        self.boot_attempts_primary = or_default(boot_attempts_primary);
        self
    }

    /// Reads the current env (for a redundant env, the copy libubootenv would pick).
    pub fn load(&self) -> Result<LoadedEnv, BootError> {
        // FwEnvConfig guarantees one copy for Single and two for Redundant, so the indexing
        // below cannot go out of bounds.
        let copies = self.config.copies();
        match self.config.layout() {
            Layout::Single => {
                let image = read_copy(&copies[0])?;
                let (env, _) = UbootEnv::parse(&image, Layout::Single)?;
                Ok(LoadedEnv { env, current: None })
            }
            Layout::Redundant => {
                let decode = |loc: &EnvLocation| -> Result<_, BootError> {
                    let image = read_copy(loc)?;
                    Ok(UbootEnv::parse(&image, Layout::Redundant)
                        .map(|(env, flags)| Copy { env, flags }))
                };
                let selected = UbootEnv::select(decode(&copies[0])?, decode(&copies[1])?)?;
                Ok(LoadedEnv {
                    env: selected.env,
                    current: Some((selected.current, selected.flags)),
                })
            }
        }
    }

    /// Writes `loaded.env` back (see the module docs for where and how).
    pub fn store(&self, loaded: &LoadedEnv) -> Result<(), BootError> {
        let copies = self.config.copies();
        let size = self.config.size();
        match self.config.layout() {
            Layout::Single => {
                let image = loaded.env.serialize(size, Layout::Single, 0)?;
                write_single(&copies[0], &image)
            }
            Layout::Redundant => {
                // An env loaded through another (single) backend has no current copy: write
                // copy 0 as if copy 1 were current with flags 0.
                let (current, flags) = loaded.current.unwrap_or((1, 0));
                let target = &copies[1 - current.min(1)];
                let image = loaded
                    .env
                    .serialize(size, Layout::Redundant, flags.wrapping_add(1))?;
                write_in_place(target, &image)
            }
        }
    }

    fn modify(
        &self,
        f: impl FnOnce(&mut UbootEnv) -> Result<(), BootError>,
    ) -> Result<(), BootError> {
        let mut loaded = self.load()?;
        f(&mut loaded.env)?;
        self.store(&loaded)
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

fn left_var(slot: &SlotName) -> String {
    format!("BOOT_{slot}_LEFT")
}

fn var<'a>(env: &'a UbootEnv, name: &str) -> Result<&'a str, BootError> {
    let v = env
        .get(name)
        .ok_or_else(|| BootError::MissingVar { name: name.into() })?;
    std::str::from_utf8(v).map_err(|_| BootError::NotUtf8 { name: name.into() })
}

/// `BOOT_<slot>_LEFT` read like RAUC: `g_ascii_strtoull(.., 16)`, clamped to u32.
fn attempts(env: &UbootEnv, slot: &SlotName) -> Result<u32, BootError> {
    let n = strtoull(var(env, &left_var(slot))?, 16);
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

fn set(env: &mut UbootEnv, name: &str, value: &str) -> Result<(), BootError> {
    env.set(name, value).map_err(BootError::from)
}

impl Bootloader for UbootBackend {
    fn primary(&self) -> Result<Option<SlotName>, BootError> {
        let env = self.load()?.env;
        for bootname in var(&env, "BOOT_ORDER")?.split(' ') {
            let Some(slot) = self.slots.iter().find(|s| s.as_str() == bootname) else {
                continue;
            };
            if attempts(&env, slot)? > 0 {
                return Ok(Some(slot.clone()));
            }
        }
        Ok(None)
    }

    fn set_primary(&self, slot: &SlotName) -> Result<(), BootError> {
        self.check_known(slot)?;
        self.modify(|env| {
            // RAUC: the slot first, then the current order without it and without empty words;
            // the configured slots if BOOT_ORDER is unset.
            let current: Vec<String> = match env.get("BOOT_ORDER") {
                Some(_) => var(env, "BOOT_ORDER")?
                    .split(' ')
                    .map(str::to_owned)
                    .collect(),
                None => self.slots.iter().map(SlotName::to_string).collect(),
            };
            let mut order = slot.to_string();
            for b in current
                .iter()
                .filter(|b| !b.is_empty() && *b != slot.as_str())
            {
                order.push(' ');
                order.push_str(b);
            }
            set(
                env,
                &left_var(slot),
                &format!("{:x}", self.boot_attempts_primary),
            )?;
            set(env, "BOOT_ORDER", &order)
        })
    }

    fn state(&self, slot: &SlotName) -> Result<SlotState, BootError> {
        let env = self.load()?.env;
        if !var(&env, "BOOT_ORDER")?
            .split(' ')
            .any(|b| b == slot.as_str())
        {
            return Ok(SlotState::Bad);
        }
        Ok(if attempts(&env, slot)? > 0 {
            SlotState::Good
        } else {
            SlotState::Bad
        })
    }

    fn set_state(&self, slot: &SlotName, state: SlotState) -> Result<(), BootError> {
        self.check_known(slot)?;
        self.modify(|env| match state {
            SlotState::Good => set(env, &left_var(slot), &format!("{:x}", self.boot_attempts)),
            SlotState::Bad => {
                // RAUC drops the slot from BOOT_ORDER (if there is one) and zeroes its counter.
                if env.get("BOOT_ORDER").is_some() {
                    let order: Vec<String> = var(env, "BOOT_ORDER")?
                        .split(' ')
                        .filter(|b| !b.is_empty() && *b != slot.as_str())
                        .map(str::to_owned)
                        .collect();
                    set(env, "BOOT_ORDER", &order.join(" "))?;
                }
                set(env, &left_var(slot), "0")
            }
        })
    }

    fn attempts_left(&self, slot: &SlotName) -> Result<Option<u32>, BootError> {
        let env = self.load()?.env;
        Ok(Some(attempts(&env, slot)?))
    }
}

fn read_copy(loc: &EnvLocation) -> Result<Vec<u8>, BootError> {
    let f = File::open(&loc.path).map_err(|e| BootError::io("open", &loc.path, e))?;
    let mut buf = vec![0u8; loc.size];
    f.read_exact_at(&mut buf, loc.offset)
        .map_err(|e| BootError::io("read env from", &loc.path, e))?;
    Ok(buf)
}

/// A single env that is the whole file is replaced atomically; otherwise written in place.
fn write_single(loc: &EnvLocation, image: &[u8]) -> Result<(), BootError> {
    let meta = std::fs::metadata(&loc.path).map_err(|e| BootError::io("stat", &loc.path, e))?;
    if loc.offset == 0 && meta.is_file() && meta.len() == image.len() as u64 {
        atomic_file::replace(&loc.path, image)
    } else {
        write_in_place(loc, image)
    }
}

fn write_in_place(loc: &EnvLocation, image: &[u8]) -> Result<(), BootError> {
    let f = OpenOptions::new()
        .write(true)
        .open(&loc.path)
        .map_err(|e| BootError::io("open", &loc.path, e))?;
    f.write_all_at(image, loc.offset)
        .map_err(|e| BootError::io("write env to", &loc.path, e))?;
    f.sync_all()
        .map_err(|e| BootError::io("fsync", &loc.path, e))
}

//! [`SystemdBootBackend`]: RAUC's four calls on one systemd-boot entry per slot, all expressed
//! in the entries' file names (see the module docs of [`super`] for why).

use std::fs;
use std::path::{Path, PathBuf};

use super::esp::{Esp, TYPE1_DIR, UKI_DIR};
use super::name::{rename_entry, Assessment, EntryName};
use crate::bootloader::Bootloader;
use crate::error::BootError;
use crate::slot::{SlotName, SlotState};

/// Tries a fresh trial gets when none are configured (systemd's own `+3`).
pub const DEFAULT_TRIES: u32 = 3;
/// The default entry-name prefix: `outpost_<generation>-<bootname>.efi`.
pub const DEFAULT_PREFIX: &str = "outpost";

/// Which kind of boot entry each slot has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// Type #2: a unified kernel image in `EFI/Linux/`.
    Uki,
    /// Type #1: a `.conf` in `loader/entries/`.
    Type1,
}

impl EntryKind {
    /// From the entry directory as configured (`EFI/Linux` or `loader/entries`, either case,
    /// leading or trailing `/` ignored); `None` for any other directory, which systemd-boot
    /// would not read.
    pub fn from_dir(dir: &str) -> Option<Self> {
        let d = dir.trim_matches('/');
        if d.eq_ignore_ascii_case(UKI_DIR) {
            Some(Self::Uki)
        } else if d.eq_ignore_ascii_case(TYPE1_DIR) {
            Some(Self::Type1)
        } else {
            None
        }
    }

    pub fn dir(self) -> &'static str {
        match self {
            Self::Uki => UKI_DIR,
            Self::Type1 => TYPE1_DIR,
        }
    }

    pub fn ext(self) -> &'static str {
        match self {
            Self::Uki => "efi",
            Self::Type1 => "conf",
        }
    }
}

/// Where the slots' entries are and how they are named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemdBootConfig {
    /// The ESP's mount point (`/boot`, `/efi`).
    pub esp: PathBuf,
    pub kind: EntryKind,
    /// Entry names are `<prefix>_<generation>-<bootname>`.
    pub prefix: String,
    /// Tries a slot gets from `set_primary` (`+<tries>`); at least 1.
    pub tries: u32,
    /// efivarfs, to honour `LoaderEntryDefault`/`LoaderEntryOneShot`; `None` ignores them.
    pub efivars: Option<PathBuf>,
}

impl SystemdBootConfig {
    /// UKIs under `esp`, default prefix and tries, EFI variables ignored.
    pub fn new(esp: impl Into<PathBuf>) -> Self {
        Self {
            esp: esp.into(),
            kind: EntryKind::Uki,
            prefix: DEFAULT_PREFIX.to_owned(),
            tries: DEFAULT_TRIES,
            efivars: None,
        }
    }

    pub fn entry_dir(&self) -> PathBuf {
        self.esp.join(self.kind.dir())
    }

    /// The counter-less stem of `slot`'s entry at `generation`.
    pub fn stem(&self, generation: u64, slot: &SlotName) -> String {
        format!("{}_{generation}-{slot}", self.prefix)
    }

    /// `(generation, bootname)` from a stem this backend wrote, `None` for other entries.
    pub fn parse_stem<'a>(&self, stem: &'a str) -> Option<(u64, &'a str)> {
        let rest = stem.strip_prefix(&self.prefix)?.strip_prefix('_')?;
        let (generation, bootname) = rest.split_once('-')?;
        let all_digits = !generation.is_empty() && generation.bytes().all(|b| b.is_ascii_digit());
        Some((generation.parse().ok().filter(|_| all_digits)?, bootname))
    }
}

/// One slot's entry file.
#[derive(Debug, Clone)]
struct SlotEntry {
    slot: SlotName,
    generation: u64,
    path: PathBuf,
    name: EntryName,
}

/// systemd-boot with one boot-counted entry per A/B slot.
#[derive(Debug, Clone)]
pub struct SystemdBootBackend {
    cfg: SystemdBootConfig,
    slots: Vec<SlotName>,
}

impl SystemdBootBackend {
    pub fn new(cfg: SystemdBootConfig, slots: Vec<SlotName>) -> Self {
        Self { cfg, slots }
    }

    pub fn config(&self) -> &SystemdBootConfig {
        &self.cfg
    }

    fn esp(&self) -> Esp {
        Esp {
            root: self.cfg.esp.clone(),
            efivars: self.cfg.efivars.clone(),
        }
    }

    fn known(&self, slot: &SlotName) -> Result<(), BootError> {
        if self.slots.contains(slot) {
            Ok(())
        } else {
            Err(BootError::UnknownSlot {
                slot: slot.to_string(),
            })
        }
    }

    /// The configured slot an entry file belongs to, if any.
    fn slot_of(&self, dir: &Path, path: &Path, name: &EntryName) -> Option<(SlotName, u64)> {
        if path.parent() != Some(dir) || name.ext != self.cfg.kind.ext() {
            return None;
        }
        let (generation, bootname) = self.cfg.parse_stem(&name.stem)?;
        let slot = self.slots.iter().find(|s| s.as_str() == bootname)?;
        Some((slot.clone(), generation))
    }

    /// Every configured slot's entry; two files for one slot is an error (which one would
    /// the firmware boot?).
    fn slot_entries(&self) -> Result<Vec<SlotEntry>, BootError> {
        let dir = self.cfg.entry_dir();
        let rd = fs::read_dir(&dir).map_err(|e| BootError::io("list", &dir, e))?;
        let mut out: Vec<SlotEntry> = Vec::new();
        for item in rd {
            let item = item.map_err(|e| BootError::io("list", &dir, e))?;
            let path = item.path();
            let Some(name) = item.file_name().to_str().and_then(EntryName::parse) else {
                continue;
            };
            let Some((slot, generation)) = self.slot_of(&dir, &path, &name) else {
                continue;
            };
            if let Some(other) = out.iter().find(|e| e.slot == slot) {
                return Err(BootError::DuplicateEntry {
                    slot: slot.to_string(),
                    first: other.path.clone(),
                    second: path,
                });
            }
            out.push(SlotEntry {
                slot,
                generation,
                path,
                name,
            });
        }
        Ok(out)
    }

    fn entry(&self, slot: &SlotName) -> Result<SlotEntry, BootError> {
        self.known(slot)?;
        self.pick(self.slot_entries()?, slot)
    }

    fn pick(&self, entries: Vec<SlotEntry>, slot: &SlotName) -> Result<SlotEntry, BootError> {
        entries
            .into_iter()
            .find(|e| &e.slot == slot)
            .ok_or_else(|| BootError::NoEntry {
                slot: slot.to_string(),
                dir: self.cfg.entry_dir(),
                expected: format!(
                    "{}_<generation>-{slot}[+<tries>].{}",
                    self.cfg.prefix,
                    self.cfg.kind.ext()
                ),
            })
    }

    /// What systemd-boot boots next, as an entry file name (for errors and reports).
    pub fn default_entry(&self) -> Result<Option<String>, BootError> {
        Ok(self
            .esp()
            .scan()?
            .default_entry()
            .map(|(_, e)| e.file_name.clone()))
    }
}

impl Bootloader for SystemdBootBackend {
    /// The slot whose entry systemd-boot boots without a keypress; `None` if that entry is no
    /// slot's (or the menu is empty). An exhausted (`+0`) entry can be that entry when every
    /// entry is exhausted: systemd-boot then boots the first one anyway.
    fn primary(&self) -> Result<Option<SlotName>, BootError> {
        let menu = self.esp().scan()?;
        let dir = self.cfg.entry_dir();
        Ok(menu
            .default_entry()
            .and_then(|(path, e)| self.slot_of(&dir, path, &e.name))
            .map(|(slot, _)| slot))
    }

    /// One rename: a fresh `+<tries>` counter and, if needed, a generation above every other
    /// slot's, so the entry sorts first. Then reads back what systemd-boot would boot and
    /// fails if it is still another entry (a newer os-release version, a `default` pattern).
    fn set_primary(&self, slot: &SlotName) -> Result<(), BootError> {
        self.known(slot)?;
        let entries = self.slot_entries()?;
        let highest_other = entries
            .iter()
            .filter(|e| &e.slot != slot)
            .map(|e| e.generation)
            .max();
        let target = self.pick(entries, slot)?;
        let generation = match highest_other {
            Some(h) if h >= target.generation => {
                h.checked_add(1).ok_or_else(|| BootError::Unmodelled {
                    what: format!("entry generation {h} cannot be raised"),
                })?
            }
            _ => target.generation,
        };
        let to = EntryName {
            stem: self.cfg.stem(generation, slot),
            ..target.name.clone()
        }
        .with_tries(self.cfg.tries.max(1));
        rename_entry(&target.path, &to)?;
        if self.primary()?.as_ref() != Some(slot) {
            return Err(BootError::NotPrimary {
                slot: slot.to_string(),
                chosen: self.default_entry()?.unwrap_or_else(|| "nothing".into()),
            });
        }
        Ok(())
    }

    /// Bad when the entry has 0 tries left, or when systemd-boot would not list it at all
    /// (missing kernel, UKI without `.osrel`); Good when blessed or still counting.
    fn state(&self, slot: &SlotName) -> Result<SlotState, BootError> {
        let e = self.entry(slot)?;
        if e.name.assessment() == Assessment::Bad {
            return Ok(SlotState::Bad);
        }
        let listed = self
            .esp()
            .scan()?
            .entries
            .iter()
            .any(|(path, _)| *path == e.path);
        Ok(if listed {
            SlotState::Good
        } else {
            SlotState::Bad
        })
    }

    /// Good = `systemd-bless-boot good` (drop the counter); Bad = `systemd-bless-boot bad`
    /// (`+0-<done>`). One rename each; the generation is kept.
    fn set_state(&self, slot: &SlotName, state: SlotState) -> Result<(), BootError> {
        let e = self.entry(slot)?;
        let to = match state {
            SlotState::Good => e.name.blessed(),
            SlotState::Bad => e.name.marked_bad(),
        };
        rename_entry(&e.path, &to).map(|_| ())
    }

    /// `Some(left)` while the entry is counted (a trial), `None` once blessed.
    fn attempts_left(&self, slot: &SlotName) -> Result<Option<u32>, BootError> {
        Ok(self.entry(slot)?.name.counter.map(|c| c.left))
    }
}

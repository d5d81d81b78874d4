//! Raspberry Pi firmware A/B ("tryboot") through `autoboot.txt` on the first FAT partition:
//!
//! ```text
//! [all]
//! tryboot_a_b=1
//! boot_partition=2
//! [tryboot]
//! boot_partition=3
//! ```
//! A normal boot uses `[all]`; a reboot with the one-shot flag (`reboot "0 tryboot"`) uses
//! `[tryboot]` once. If the trial hangs or fails, the next normal boot is back on `[all]`.
//! Committing rewrites the file so `[all]` names the new partition.
//!
//! Mapped onto RAUC's calls: only the `[all]` slot is good; `set_primary(x)` arms `x` in
//! `[tryboot]` (the caller must then reboot with the tryboot flag); `set_state(x, Good)` commits
//! (`[all]` = `[tryboot]` = x); `set_state(x, Bad)` disarms x, or moves `[all]` to another slot
//! if x was the default. The file is always rewritten whole, atomically, in the canonical form
//! above; other sections or keys are not preserved (autoboot.txt only honours a few).
//!
//! Not verified on hardware: needs an EEPROM with tryboot_a_b support.

use std::path::PathBuf;

use crate::atomic_file;
use crate::bootloader::Bootloader;
use crate::error::BootError;
use crate::slot::{SlotName, SlotState};

/// autoboot.txt is a few lines; anything bigger is not ours.
pub const MAX_AUTOBOOT_LEN: usize = 4096;

/// The two partitions autoboot.txt points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Autoboot {
    /// `[all] boot_partition`: what a normal boot uses.
    pub default: u8,
    /// `[tryboot] boot_partition`: what a tryboot reboot uses (defaults to `default`).
    pub tryboot: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AutobootError {
    #[error("autoboot.txt has no boot_partition in [all]")]
    NoDefault,
    #[error("autoboot.txt does not enable tryboot_a_b=1")]
    NotAb,
    #[error("autoboot.txt line {line}: bad boot_partition {value:?}")]
    BadPartition { line: usize, value: String },
}

impl Autoboot {
    /// Parses the `[all]` and `[tryboot]` sections; other sections and keys are ignored, and a
    /// repeated key keeps its last value (as the firmware's config parser does).
    pub fn parse(text: &str) -> Result<Self, AutobootError> {
        let mut section = "all".to_owned();
        let (mut default, mut tryboot, mut ab) = (None, None, false);
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = s.trim().to_ascii_lowercase();
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            match (section.as_str(), key.trim()) {
                ("all", "tryboot_a_b") => ab = value.trim() == "1",
                (s @ ("all" | "tryboot"), "boot_partition") => {
                    let n = value
                        .trim()
                        .parse::<u8>()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| AutobootError::BadPartition {
                            line: i + 1,
                            value: value.to_owned(),
                        })?;
                    if s == "all" {
                        default = Some(n);
                    } else {
                        tryboot = Some(n);
                    }
                }
                _ => {}
            }
        }
        let default = default.ok_or(AutobootError::NoDefault)?;
        if !ab {
            return Err(AutobootError::NotAb);
        }
        Ok(Self {
            default,
            tryboot: tryboot.unwrap_or(default),
        })
    }

    pub fn serialize(&self) -> String {
        format!(
            "[all]\ntryboot_a_b=1\nboot_partition={}\n[tryboot]\nboot_partition={}\n",
            self.default, self.tryboot
        )
    }
}

#[derive(Debug, Clone)]
pub struct RpiTrybootBackend {
    path: PathBuf,
    /// Each slot's boot partition number.
    slots: Vec<(SlotName, u8)>,
}

impl RpiTrybootBackend {
    pub fn new(path: impl Into<PathBuf>, slots: Vec<(SlotName, u8)>) -> Self {
        Self {
            path: path.into(),
            slots,
        }
    }

    fn load(&self) -> Result<Autoboot, BootError> {
        let bytes = atomic_file::read_bounded(&self.path, MAX_AUTOBOOT_LEN)?;
        let text = String::from_utf8(bytes).map_err(|_| BootError::NotUtf8 {
            name: self.path.display().to_string(),
        })?;
        Autoboot::parse(&text).map_err(|source| BootError::Autoboot {
            path: self.path.clone(),
            source,
        })
    }

    fn store(&self, a: &Autoboot) -> Result<(), BootError> {
        atomic_file::replace(&self.path, a.serialize().as_bytes())
    }

    fn partition(&self, slot: &SlotName) -> Result<u8, BootError> {
        self.slots
            .iter()
            .find(|(s, _)| s == slot)
            .map(|(_, p)| *p)
            .ok_or_else(|| BootError::UnknownSlot {
                slot: slot.to_string(),
            })
    }

    fn slot_of(&self, partition: u8) -> Option<SlotName> {
        self.slots
            .iter()
            .find(|(_, p)| *p == partition)
            .map(|(s, _)| s.clone())
    }
}

impl Bootloader for RpiTrybootBackend {
    /// The armed trial slot if there is one, else the default.
    fn primary(&self) -> Result<Option<SlotName>, BootError> {
        let a = self.load()?;
        Ok(self.slot_of(a.tryboot).or_else(|| self.slot_of(a.default)))
    }

    fn set_primary(&self, slot: &SlotName) -> Result<(), BootError> {
        let part = self.partition(slot)?;
        let mut a = self.load()?;
        a.tryboot = part;
        self.store(&a)
    }

    fn state(&self, slot: &SlotName) -> Result<SlotState, BootError> {
        let part = self.partition(slot)?;
        Ok(if self.load()?.default == part {
            SlotState::Good
        } else {
            SlotState::Bad
        })
    }

    fn set_state(&self, slot: &SlotName, state: SlotState) -> Result<(), BootError> {
        let part = self.partition(slot)?;
        let mut a = self.load()?;
        match state {
            SlotState::Good => {
                a.default = part;
                a.tryboot = part;
            }
            SlotState::Bad if a.default == part => {
                // The default itself is bad: fall back to another configured slot.
                let other = self.slots.iter().map(|(_, p)| *p).find(|p| *p != part);
                let Some(other) = other else {
                    return Err(BootError::NoFallback {
                        slot: slot.to_string(),
                    });
                };
                a.default = other;
                a.tryboot = other;
            }
            SlotState::Bad => a.tryboot = a.default,
        }
        self.store(&a)
    }

    /// An armed trial has one attempt; the default is not counted; other slots have none.
    fn attempts_left(&self, slot: &SlotName) -> Result<Option<u32>, BootError> {
        let part = self.partition(slot)?;
        let a = self.load()?;
        Ok(if a.default == part {
            None
        } else if a.tryboot == part {
            Some(1)
        } else {
            Some(0)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend(dir: &std::path::Path, text: &str) -> RpiTrybootBackend {
        let path = dir.join("autoboot.txt");
        std::fs::write(&path, text).unwrap();
        let s = |n| SlotName::new(n).unwrap();
        RpiTrybootBackend::new(path, vec![(s("A"), 2), (s("B"), 3)])
    }

    #[test]
    fn parses_the_documented_file() {
        let a = Autoboot::parse(
            "[all]\ntryboot_a_b=1\nboot_partition=2\n[tryboot]\nboot_partition=3\n",
        )
        .unwrap();
        assert_eq!(
            a,
            Autoboot {
                default: 2,
                tryboot: 3
            }
        );
        assert_eq!(Autoboot::parse(&a.serialize()).unwrap(), a);
        let a = Autoboot::parse(
            "# c\n[all]\n tryboot_a_b = 1\nboot_partition=2\n[pi5]\nboot_partition=9\n",
        )
        .unwrap();
        assert_eq!(
            a,
            Autoboot {
                default: 2,
                tryboot: 2
            }
        );
    }

    #[test]
    fn rejects_incomplete_files() {
        assert_eq!(
            Autoboot::parse("[all]\ntryboot_a_b=1\n"),
            Err(AutobootError::NoDefault)
        );
        assert_eq!(
            Autoboot::parse("[all]\nboot_partition=2\n"),
            Err(AutobootError::NotAb)
        );
        assert!(matches!(
            Autoboot::parse("[all]\ntryboot_a_b=1\nboot_partition=x\n"),
            Err(AutobootError::BadPartition { line: 3, .. })
        ));
        assert!(matches!(
            Autoboot::parse("[all]\ntryboot_a_b=1\nboot_partition=0\n"),
            Err(AutobootError::BadPartition { .. })
        ));
    }

    #[test]
    fn install_trial_commit_cycle() {
        let dir = tempfile::tempdir().unwrap();
        let b = backend(dir.path(), "[all]\ntryboot_a_b=1\nboot_partition=2\n");
        let (a_, b_) = (SlotName::new("A").unwrap(), SlotName::new("B").unwrap());
        assert_eq!(b.primary().unwrap(), Some(a_.clone()));
        b.set_state(&b_, SlotState::Bad).unwrap();
        b.set_primary(&b_).unwrap();
        assert_eq!(b.primary().unwrap(), Some(b_.clone()));
        assert_eq!(b.state(&b_).unwrap(), SlotState::Bad);
        assert_eq!(b.attempts_left(&b_).unwrap(), Some(1));
        let text = std::fs::read_to_string(dir.path().join("autoboot.txt")).unwrap();
        assert_eq!(
            text,
            "[all]\ntryboot_a_b=1\nboot_partition=2\n[tryboot]\nboot_partition=3\n"
        );
        // Health gate passed on B: commit.
        b.set_state(&b_, SlotState::Good).unwrap();
        assert_eq!(b.state(&b_).unwrap(), SlotState::Good);
        assert_eq!(b.state(&a_).unwrap(), SlotState::Bad);
        assert_eq!(b.attempts_left(&b_).unwrap(), None);
        // Disarming a trial and marking the default bad.
        b.set_primary(&a_).unwrap();
        b.set_state(&a_, SlotState::Bad).unwrap();
        assert_eq!(b.primary().unwrap(), Some(b_.clone()));
        b.set_state(&b_, SlotState::Bad).unwrap();
        assert_eq!(b.primary().unwrap(), Some(a_));
    }
}

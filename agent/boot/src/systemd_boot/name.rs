//! The boot-counting file name codec (pure) and the one file operation the backend does:
//! `<stem>+<left>[-<done>].<conf|efi>` (Type #1 entries in `loader/entries/`, UKIs in
//! `EFI/Linux/`).
//!
//! - systemd-boot, before booting an entry with `left > 0`, renames it to `+<left-1>-<done+1>`;
//!   entries with `left == 0` are "bad" and sorted last, so another entry boots instead.
//! - `systemd-bless-boot good` renames to `<stem>.<ext>` (no counter: "good", never counted
//!   again); `bad` renames to `<stem>+0-<done>.<ext>`.
//!
//! [`rename_entry`] is a single `rename(2)` plus an fsync of the file and of its directory, so a
//! power cut leaves the old or the new name, never both and never neither (and, on vfat, never
//! the new name with the content lost).

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::BootError;

/// A boot entry file name, split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryName {
    /// Everything before the counter (`outpost-B`).
    pub stem: String,
    /// `conf` or `efi`.
    pub ext: String,
    pub counter: Option<Counter>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counter {
    pub left: u32,
    pub done: u32,
    /// Whether the name spelled `-<done>` (systemd-boot adds it on its first decrement).
    pub has_done: bool,
}

/// Boot assessment of an entry, from its name alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assessment {
    /// No counter: blessed (or never counted).
    Good,
    /// Counting, with tries left: a trial.
    Indeterminate { left: u32 },
    /// Tries exhausted or marked bad.
    Bad,
}

impl EntryName {
    /// Parses `stem[+left[-done]].ext` for ext `conf` or `efi`; `None` for other files.
    /// A `+` suffix that is not all digits is part of the stem (systemd does the same).
    pub fn parse(file_name: &str) -> Option<Self> {
        let (base, ext) = file_name.rsplit_once('.')?;
        if !matches!(ext, "conf" | "efi") || base.is_empty() {
            return None;
        }
        let counter = base.rsplit_once('+').and_then(|(stem, tail)| {
            let (left, done) = match tail.split_once('-') {
                Some((l, d)) => (l, Some(d)),
                None => (tail, None),
            };
            let num = |s: &str| {
                (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| s.parse::<u32>().ok())
                    .flatten()
            };
            let left = num(left)?;
            let done = match done {
                Some(d) => Some(num(d)?),
                None => None,
            };
            (!stem.is_empty()).then_some((
                stem,
                Counter {
                    left,
                    done: done.unwrap_or(0),
                    has_done: done.is_some(),
                },
            ))
        });
        Some(match counter {
            Some((stem, c)) => Self {
                stem: stem.to_owned(),
                ext: ext.to_owned(),
                counter: Some(c),
            },
            None => Self {
                stem: base.to_owned(),
                ext: ext.to_owned(),
                counter: None,
            },
        })
    }

    pub fn file_name(&self) -> String {
        match self.counter {
            None => format!("{}.{}", self.stem, self.ext),
            Some(c) if c.has_done => format!("{}+{}-{}.{}", self.stem, c.left, c.done, self.ext),
            Some(c) => format!("{}+{}.{}", self.stem, c.left, self.ext),
        }
    }

    pub fn assessment(&self) -> Assessment {
        match self.counter {
            None => Assessment::Good,
            Some(c) if c.left == 0 => Assessment::Bad,
            Some(c) => Assessment::Indeterminate { left: c.left },
        }
    }

    /// A fresh trial with `tries` attempts (what an installer writes): `stem+tries.ext`.
    pub fn with_tries(&self, tries: u32) -> Self {
        Self {
            counter: Some(Counter {
                left: tries,
                done: 0,
                has_done: false,
            }),
            ..self.clone()
        }
    }

    /// What `systemd-bless-boot good` renames to.
    pub fn blessed(&self) -> Self {
        Self {
            counter: None,
            ..self.clone()
        }
    }

    /// What `systemd-bless-boot bad` renames to: `+0-<done>`.
    pub fn marked_bad(&self) -> Self {
        let done = self.counter.map_or(0, |c| c.done);
        Self {
            counter: Some(Counter {
                left: 0,
                done,
                has_done: true,
            }),
            ..self.clone()
        }
    }

    /// What systemd-boot renames to before it boots the entry (for simulations in tests).
    pub fn after_boot_attempt(&self) -> Self {
        match self.counter {
            Some(c) if c.left > 0 => Self {
                counter: Some(Counter {
                    left: c.left - 1,
                    done: c.done.saturating_add(1),
                    has_done: true,
                }),
                ..self.clone()
            },
            _ => self.clone(),
        }
    }
}

/// The entry in `dir` whose stem and extension match, whatever its counter.
pub fn find_entry(
    dir: &Path,
    stem: &str,
    ext: &str,
) -> Result<Option<(PathBuf, EntryName)>, BootError> {
    let rd = fs::read_dir(dir).map_err(|e| BootError::io("list", dir, e))?;
    for item in rd {
        let item = item.map_err(|e| BootError::io("list", dir, e))?;
        let name = item.file_name();
        let Some(parsed) = name.to_str().and_then(EntryName::parse) else {
            continue;
        };
        if parsed.stem == stem && parsed.ext == ext {
            return Ok(Some((item.path(), parsed)));
        }
    }
    Ok(None)
}

/// Renames the entry at `path` to `to` in the same directory and fsyncs the directory.
pub fn rename_entry(path: &Path, to: &EntryName) -> Result<PathBuf, BootError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let target = dir.join(to.file_name());
    if target != path {
        // rename(2) would silently replace a file of that name; two files for one slot would
        // then have become one. Only this process renames (single writer), so the check is
        // not racy in practice.
        if fs::symlink_metadata(&target).is_ok() {
            return Err(BootError::io(
                "rename",
                path,
                std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    format!("{} already exists", target.display()),
                ),
            ));
        }
        fs::rename(path, &target).map_err(|e| BootError::io("rename", path, e))?;
        // On vfat (the ESP) the renamed entry is written with cluster 0 and size 0; the real
        // ones follow when the file's inode is written back, ~30 s later. A directory fsync
        // persists the empty entry, so a power cut in between left an empty, unbootable entry
        // (found by tests/vm scenario 5 on systemd-boot). Syncing the file writes them now.
        fs::File::open(&target)
            .and_then(|f| f.sync_all())
            .map_err(|e| BootError::io("fsync", &target, e))?;
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| BootError::io("fsync dir", dir, e))?;
    }
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> EntryName {
        EntryName::parse(s).unwrap()
    }

    #[test]
    fn parses_and_formats_counted_names() {
        for name in [
            "outpost-A.conf",
            "outpost-B+3.efi",
            "outpost-B+2-1.efi",
            "x+0-3.conf",
            "a+b.conf",
        ] {
            assert_eq!(n(name).file_name(), name);
        }
        assert_eq!(n("outpost-B+2-1.efi").stem, "outpost-B");
        assert_eq!(n("a+b.conf").counter, None);
        assert_eq!(n("a+1-x.conf").stem, "a+1-x");
        assert_eq!(EntryName::parse("loader.txt"), None);
        assert_eq!(EntryName::parse(".conf"), None);
    }

    #[test]
    fn assessment_and_transitions_follow_systemd() {
        let fresh = n("nixos_2.efi").with_tries(3);
        assert_eq!(fresh.file_name(), "nixos_2+3.efi");
        assert_eq!(fresh.assessment(), Assessment::Indeterminate { left: 3 });
        let tried = fresh.after_boot_attempt();
        assert_eq!(tried.file_name(), "nixos_2+2-1.efi");
        assert_eq!(tried.blessed().file_name(), "nixos_2.efi");
        assert_eq!(tried.blessed().assessment(), Assessment::Good);
        assert_eq!(tried.marked_bad().file_name(), "nixos_2+0-1.efi");
        assert_eq!(n("e.conf").marked_bad().file_name(), "e+0-0.conf");
        let exhausted = n("e+1-2.conf").after_boot_attempt();
        assert_eq!(exhausted.file_name(), "e+0-3.conf");
        assert_eq!(exhausted.assessment(), Assessment::Bad);
        assert_eq!(exhausted.after_boot_attempt(), exhausted);
    }

    #[test]
    fn bless_renames_the_file_found_by_stem() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("outpost-B+2-1.conf"), "title B\n").unwrap();
        fs::write(dir.path().join("outpost-A.conf"), "title A\n").unwrap();
        let (path, name) = find_entry(dir.path(), "outpost-B", "conf")
            .unwrap()
            .unwrap();
        let blessed = rename_entry(&path, &name.blessed()).unwrap();
        assert_eq!(blessed, dir.path().join("outpost-B.conf"));
        assert_eq!(fs::read_to_string(&blessed).unwrap(), "title B\n");
        assert!(!path.exists());
        assert!(find_entry(dir.path(), "outpost-C", "conf")
            .unwrap()
            .is_none());
    }
}

//! `<state_dir>/armed.json`: the slot an install (or `mark active`) armed for its first trial,
//! and in which boot. Written by the installer, read and removed by the gate at the first
//! agent start of a later boot.
//!
//! Why it exists: a trial is opened by the agent *in the new slot*. When the new slot never
//! gets that far (its kernel panics, its init exits, it hangs before the agent starts), the
//! bootloader's own counter falls back to the old slot and the gate state holds no trial of the
//! new one, so without this note the device would never say that the update failed. With it,
//! the old slot's gate sees "armed in an earlier boot, another slot runs, no trial of it was
//! ever opened" and records the rollback (see [`crate::assessment`]).
//!
//! A file of its own (not a field of `health.json`): an older agent in the fallback slot must
//! still read the gate state it knows; it ignores this file.

use std::path::Path;

use serde::{Deserialize, Serialize};

use outpost_boot::atomic_file;

use crate::state_file::{SlotRef, StateFileError};

/// Beside the gate state (`health.json`) in the state directory.
pub const ARMED_FILE: &str = "armed.json";
/// Written to `format`; a reader refuses other values rather than misreading them.
pub const FORMAT: u32 = 1;
const MAX_LEN: usize = 16 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Armed {
    pub format: u32,
    /// The armed slot with the central.raucs keys the arming wrote.
    pub slot: SlotRef,
    /// The boot in which it was armed: the trial can only begin in a later one.
    pub boot_id: String,
    /// RFC 3339, for the record.
    pub armed_at: String,
}

impl Armed {
    pub fn new(slot: SlotRef, boot_id: String, armed_at: String) -> Self {
        Self {
            format: FORMAT,
            slot,
            boot_id,
            armed_at,
        }
    }

    /// Reads `path`; `None` when there is no file. A corrupt file is an error the caller may
    /// log and ignore: it only ever adds a record, never decides a commit.
    pub fn load(path: &Path) -> Result<Option<Self>, StateFileError> {
        let bytes = match atomic_file::read_bounded(path, MAX_LEN) {
            Ok(b) => b,
            Err(outpost_boot::BootError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                return Ok(None)
            }
            Err(source) => {
                return Err(StateFileError::Io {
                    path: path.display().to_string(),
                    source,
                })
            }
        };
        let armed: Armed = serde_json::from_slice(&bytes).map_err(|e| StateFileError::Corrupt {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        if armed.format != FORMAT {
            return Err(StateFileError::Corrupt {
                path: path.display().to_string(),
                reason: format!("format {} is not {FORMAT}", armed.format),
            });
        }
        Ok(Some(armed))
    }

    pub fn save(&self, path: &Path) -> Result<(), StateFileError> {
        crate::state_file::save_json(self, path)
    }

    /// Removes `path` (durably: the directory is synced); a missing file is fine.
    pub fn remove(path: &Path) -> Result<(), StateFileError> {
        let io = |op, p: &Path, e| StateFileError::Io {
            path: path.display().to_string(),
            source: outpost_boot::BootError::Io {
                op,
                path: p.to_owned(),
                source: e,
            },
        };
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io("remove", path, e)),
        }
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io("fsync dir", dir, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state_file::ActivationKey;

    #[test]
    fn round_trips_missing_is_none_and_remove_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(ARMED_FILE);
        assert_eq!(Armed::load(&p).unwrap(), None);
        let a = Armed::new(
            SlotRef {
                slot: "B".into(),
                activation: ActivationKey {
                    activated_count: 2,
                    ..Default::default()
                },
                version: Some("4".into()),
            },
            "boot-1".into(),
            "2026-11-22T10:00:00Z".into(),
        );
        a.save(&p).unwrap();
        assert_eq!(Armed::load(&p).unwrap(), Some(a));
        Armed::remove(&p).unwrap();
        assert_eq!(Armed::load(&p).unwrap(), None);
        Armed::remove(&p).unwrap();
    }

    #[test]
    fn refuses_other_formats_and_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(ARMED_FILE);
        std::fs::write(&p, b"{").unwrap();
        assert!(matches!(
            Armed::load(&p),
            Err(StateFileError::Corrupt { .. })
        ));
        let mut a = serde_json::to_value(Armed::new(
            SlotRef {
                slot: "B".into(),
                activation: ActivationKey::default(),
                version: None,
            },
            "b".into(),
            "t".into(),
        ))
        .unwrap();
        a["format"] = 2.into();
        std::fs::write(&p, serde_json::to_vec(&a).unwrap()).unwrap();
        assert!(matches!(
            Armed::load(&p),
            Err(StateFileError::Corrupt { .. })
        ));
    }
}

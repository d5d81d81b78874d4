//! `<data-directory>/central.raucs`, with RAUC's group and key names (`src/status_file.c`).
//!
//! One `[slot.<class>.<index>]` group per slot that has status. Keys, in the order RAUC writes
//! them: `bundle.compatible bundle.version bundle.description bundle.build bundle.hash status
//! sha256 size installed.transaction installed.timestamp installed.count activated.timestamp
//! activated.count`. RAUC 1.8 writes neither `bundle.hash` nor `installed.transaction`; later
//! releases do, and 1.8 ignores keys it does not know, so writing `bundle.hash` is compatible.
//! Groups that are not slots (RAUC ≥ 1.11 `[system] boot-id`) are kept as they are.
//!
//! Saving replaces the file atomically (temp, fsync, rename, fsync dir): after a power cut it
//! holds the old or the new status, never a mix.

use std::io;
use std::path::Path;

use outpost_boot::atomic_file;

use crate::keyfile::{self, Group, KeyFile, KeyFileError};
use crate::slots::SlotId;

/// A status file is a few hundred bytes per slot; refuse absurd sizes before parsing.
pub const MAX_STATUS_FILE_LEN: usize = 1024 * 1024;

/// The status RAUC keeps for one slot. `None` / 0 fields are not written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlotStatus {
    pub bundle_compatible: Option<String>,
    pub bundle_version: Option<String>,
    pub bundle_description: Option<String>,
    pub bundle_build: Option<String>,
    pub bundle_hash: Option<String>,
    /// `ok` after a successful write; RAUC keeps `update` in memory while writing, and we
    /// persist it before the first byte is written (see `install::execute`).
    pub status: Option<String>,
    /// sha256 (hex) and size of the image in the slot; both or neither.
    pub checksum: Option<(String, u64)>,
    pub installed_transaction: Option<String>,
    pub installed_timestamp: Option<String>,
    pub installed_count: u64,
    pub activated_timestamp: Option<String>,
    pub activated_count: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum StatusFileError {
    #[error("status file {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("status file {path}: {source}")]
    Syntax {
        path: String,
        #[source]
        source: KeyFileError,
    },
    #[error("status file: {0}")]
    Write(#[from] outpost_boot::BootError),
}

/// The whole central status file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CentralStatus {
    file: KeyFile,
}

impl CentralStatus {
    pub fn parse(data: &[u8]) -> Result<Self, KeyFileError> {
        Ok(CentralStatus {
            file: KeyFile::parse(data)?,
        })
    }

    /// Reads `path`; a missing file is an empty status (RAUC: every slot gets default status).
    pub fn load(path: &Path) -> Result<Self, StatusFileError> {
        let bytes = match atomic_file::read_bounded(path, MAX_STATUS_FILE_LEN) {
            Ok(b) => b,
            Err(outpost_boot::BootError::Io { source, .. })
                if source.kind() == io::ErrorKind::NotFound =>
            {
                return Ok(Self::default())
            }
            Err(e) => return Err(StatusFileError::Write(e)),
        };
        Self::parse(&bytes).map_err(|source| StatusFileError::Syntax {
            path: path.display().to_string(),
            source,
        })
    }

    /// Status of `slot`; default if it has no group. Malformed values read as absent, as in
    /// RAUC (it logs and uses defaults rather than failing the install).
    pub fn slot(&self, slot: &SlotId) -> SlotStatus {
        match self.file.group(&group_name(slot)) {
            Some(g) => read_group(g),
            None => SlotStatus::default(),
        }
    }

    /// Slots that have a group, in file order.
    pub fn slot_ids(&self) -> Vec<SlotId> {
        self.file
            .groups
            .iter()
            .filter_map(|g| g.name.strip_prefix("slot."))
            .filter_map(|n| SlotId::parse(n).ok())
            .collect()
    }

    /// Replaces the group of `slot` (kept in place, or appended) with `status` in RAUC's order.
    pub fn set_slot(&mut self, slot: &SlotId, status: &SlotStatus) {
        let g = self.file.group_mut(&group_name(slot));
        g.entries.clear();
        write_group(g, status);
    }

    pub fn serialize(&self) -> String {
        self.file.serialize()
    }

    /// Atomic replace (see the module docs).
    pub fn save(&self, path: &Path) -> Result<(), StatusFileError> {
        Ok(atomic_file::replace(path, self.serialize().as_bytes())?)
    }
}

fn group_name(slot: &SlotId) -> String {
    format!("slot.{slot}")
}

fn read_group(g: &Group) -> SlotStatus {
    let s = |k: &str| g.string(k).ok().flatten();
    let n = |k: &str| g.raw(k).and_then(keyfile::parse_u64);
    SlotStatus {
        bundle_compatible: s("bundle.compatible"),
        bundle_version: s("bundle.version"),
        bundle_description: s("bundle.description"),
        bundle_build: s("bundle.build"),
        bundle_hash: s("bundle.hash"),
        status: s("status"),
        checksum: s("sha256").map(|h| (h, n("size").unwrap_or(0))),
        installed_transaction: s("installed.transaction"),
        installed_timestamp: s("installed.timestamp"),
        installed_count: n("installed.count").unwrap_or(0),
        activated_timestamp: s("activated.timestamp"),
        activated_count: n("activated.count").unwrap_or(0),
    }
}

fn write_group(g: &mut Group, st: &SlotStatus) {
    let mut opt = |k: &str, v: &Option<String>| {
        if let Some(v) = v {
            g.set_string(k, v);
        }
    };
    opt("bundle.compatible", &st.bundle_compatible);
    opt("bundle.version", &st.bundle_version);
    opt("bundle.description", &st.bundle_description);
    opt("bundle.build", &st.bundle_build);
    opt("bundle.hash", &st.bundle_hash);
    opt("status", &st.status);
    if let Some((sha, size)) = &st.checksum {
        g.set_string("sha256", sha);
        g.set_raw("size", size.to_string());
    }
    if let Some(t) = &st.installed_transaction {
        g.set_string("installed.transaction", t);
    }
    // RAUC 1.8 writes the count together with the timestamp.
    if let Some(t) = &st.installed_timestamp {
        g.set_string("installed.timestamp", t);
        g.set_raw("installed.count", st.installed_count.to_string());
    }
    if let Some(t) = &st.activated_timestamp {
        g.set_string("activated.timestamp", t);
        g.set_raw("activated.count", st.activated_count.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes written by the real rauc 1.8 after one install (grub, booted A).
    const RAUC_18: &str = "[slot.rootfs.1]\nbundle.compatible=Test\nbundle.version=1.2.3\n\
        bundle.description=desc\nbundle.build=b1\nstatus=ok\n\
        sha256=a279994684225de8b805194dcdbc43bc5007a62e585faa9cc52d727a2032c904\nsize=1048576\n\
        installed.timestamp=2026-11-22T05:39:55Z\ninstalled.count=1\n\
        activated.timestamp=2026-11-22T05:39:56Z\nactivated.count=1\n\n\
        [slot.appfs.1]\nbundle.compatible=Test\nbundle.version=1.2.3\nbundle.description=desc\n\
        bundle.build=b1\nstatus=ok\n\
        sha256=2997f7ddc229041ed3c9d147e30c9d8429d4f71e3ce3570d9abb565d35e746f9\nsize=300000\n\
        installed.timestamp=2026-11-22T05:39:55Z\ninstalled.count=1\n";

    fn id(s: &str) -> SlotId {
        SlotId::parse(s).unwrap()
    }

    #[test]
    fn reads_and_rewrites_rauc_output_byte_for_byte() {
        let mut st = CentralStatus::parse(RAUC_18.as_bytes()).unwrap();
        let r = st.slot(&id("rootfs.1"));
        assert_eq!(r.status.as_deref(), Some("ok"));
        assert_eq!(r.checksum.as_ref().unwrap().1, 1048576);
        assert_eq!(r.activated_count, 1);
        let a = st.slot(&id("appfs.1"));
        assert_eq!(a.activated_timestamp, None);
        assert_eq!(st.slot(&id("rootfs.0")), SlotStatus::default());
        // Rewriting every slot from the model reproduces RAUC's bytes.
        for s in st.slot_ids() {
            let v = st.slot(&s);
            st.set_slot(&s, &v);
        }
        assert_eq!(st.serialize(), RAUC_18);
    }

    #[test]
    fn escapes_values_and_keeps_other_groups() {
        let mut st = CentralStatus::parse(b"[system]\nboot-id=abc\n").unwrap();
        let v = SlotStatus {
            bundle_description: Some(" leading space\nand newline".into()),
            installed_timestamp: Some("t".into()),
            installed_count: 2,
            ..Default::default()
        };
        st.set_slot(&id("rootfs.0"), &v);
        let text = st.serialize();
        assert!(text.starts_with("[system]\nboot-id=abc\n\n[slot.rootfs.0]\n"));
        assert!(text.contains("bundle.description=\\sleading space\\nand newline\n"));
        let back = CentralStatus::parse(text.as_bytes()).unwrap();
        assert_eq!(back.slot(&id("rootfs.0")), v);
    }

    #[test]
    fn save_is_atomic_and_load_tolerates_a_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("central.raucs");
        assert_eq!(CentralStatus::load(&p).unwrap(), CentralStatus::default());
        let st = CentralStatus::parse(RAUC_18.as_bytes()).unwrap();
        st.save(&p).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), RAUC_18);
        assert!(!atomic_file::temp_path(&p).unwrap().exists());
        std::fs::write(&p, "garbage without group").unwrap();
        assert!(matches!(
            CentralStatus::load(&p),
            Err(StatusFileError::Syntax { .. })
        ));
    }
}

//! The gate's persisted state (`<state_dir>/health.json`), replaced atomically
//! (`outpost_boot::atomic_file::replace`) so a kill -9 or power cut leaves the old or the new
//! document, never a mix.
//!
//! Why this holds "never two slots committed, never a committed slot that failed its checks"
//! under kill -9 at any point:
//! - `committed` is one field: one slot (and the activation of it) at a time.
//! - A verdict is written as `trial.decision` *before* anything acts on it (bootloader, record,
//!   reboot). On restart the assessment finishes the written decision and never takes the
//!   other one: a trial decided `Fail` is never committed, one decided `Commit` is never
//!   marked bad by the gate.
//! - `committed` is only set after the bootloader has the slot marked good; the marking is
//!   idempotent, so repeating it after a kill is harmless.

use std::path::Path;

use serde::{Deserialize, Serialize};

use outpost_boot::atomic_file;

use crate::record::CheckReport;

/// The document is small; refuse anything absurd before parsing.
pub const MAX_STATE_LEN: usize = 256 * 1024;
/// Written to `format`; a reader refuses other values rather than misreading them.
pub const FORMAT: u32 = 1;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateState {
    pub format: u32,
    /// The slot (and its activation) the gate committed last, or adopted as the baseline.
    pub committed: Option<SlotRef>,
    /// The trial in progress or decided but not yet closed.
    pub trial: Option<TrialState>,
    /// The last closed trial, for `outpostctl health`.
    pub last: Option<LastOutcome>,
}

/// One installation of a slot: which slot, and the central.raucs keys that change whenever it
/// is written and activated again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlotRef {
    /// Bootname (`A`, `B`).
    pub slot: String,
    pub activation: ActivationKey,
    pub version: Option<String>,
}

/// What identifies the current content of a slot in central.raucs. An install rewrites these,
/// so a commit of an older install of the same slot does not count for a newer one. The daemon
/// copies them from `outpost_update::SlotStatus` (same names; `installed.*`, `activated.*`,
/// `bundle.hash`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivationKey {
    pub installed_timestamp: Option<String>,
    pub installed_count: u64,
    pub activated_timestamp: Option<String>,
    pub activated_count: u64,
    pub bundle_hash: Option<String>,
}

impl ActivationKey {
    /// Whether central.raucs says the slot was ever installed or activated by RAUC/the agent
    /// (a factory image has no such keys).
    pub fn was_installed(&self) -> bool {
        self.installed_count > 0
            || self.activated_count > 0
            || self.installed_timestamp.is_some()
            || self.activated_timestamp.is_some()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrialState {
    pub slot: SlotRef,
    /// The boot the current attempt runs in; a different boot id means the machine rebooted.
    pub boot_id: String,
    /// Boots this trial has seen.
    pub boots: u32,
    /// Uptime (ms) at which the gate started in `boot_id`: the deadline survives restarts of
    /// the agent within one boot.
    pub started_uptime_ms: u64,
    pub started_at: String,
    /// Written before it is acted on.
    pub decision: Option<Decision>,
    /// When the decision was taken (RFC 3339): a record repeated after a restart carries the
    /// same time, so the repeat is byte-identical and the outbox stores it once.
    #[serde(default)]
    pub decided_at: Option<String>,
    /// The checks as of the decision (for the records written when finishing it).
    #[serde(default)]
    pub checks: Vec<CheckReport>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "verdict", deny_unknown_fields)]
pub enum Decision {
    Commit,
    Fail { reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LastOutcome {
    pub slot: String,
    pub version: Option<String>,
    pub result: crate::record::RecordResult,
    pub reason: Option<String>,
    pub at: String,
}

#[derive(Debug, thiserror::Error)]
pub enum StateFileError {
    #[error("health state {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: outpost_boot::BootError,
    },
    #[error("health state {path} is corrupt: {reason}")]
    Corrupt { path: String, reason: String },
}

impl GateState {
    pub fn new() -> Self {
        Self {
            format: FORMAT,
            ..Self::default()
        }
    }

    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let st: GateState = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if st.format != FORMAT {
            return Err(format!("format {} is not {FORMAT}", st.format));
        }
        Ok(st)
    }

    /// Reads `path`; a missing file is a fresh state (first boot with the gate).
    pub fn load(path: &Path) -> Result<Self, StateFileError> {
        let bytes = match atomic_file::read_bounded(path, MAX_STATE_LEN) {
            Ok(b) => b,
            Err(outpost_boot::BootError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                return Ok(Self::new())
            }
            Err(source) => {
                return Err(StateFileError::Io {
                    path: path.display().to_string(),
                    source,
                })
            }
        };
        Self::parse(&bytes).map_err(|reason| StateFileError::Corrupt {
            path: path.display().to_string(),
            reason,
        })
    }

    pub fn save(&self, path: &Path) -> Result<(), StateFileError> {
        save_json(self, path)
    }
}

/// Replaces `path` with `value` as pretty JSON, atomically (the gate's files).
pub(crate) fn save_json(value: &impl Serialize, path: &Path) -> Result<(), StateFileError> {
    // Serializing plain data cannot fail; map it anyway rather than unwrap.
    let bytes = serde_json::to_vec_pretty(value).map_err(|e| StateFileError::Corrupt {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    atomic_file::replace(path, &bytes).map_err(|source| StateFileError::Io {
        path: path.display().to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_missing_is_fresh() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("health.json");
        assert_eq!(GateState::load(&p).unwrap(), GateState::new());
        let st = GateState {
            format: FORMAT,
            committed: Some(SlotRef {
                slot: "A".into(),
                activation: ActivationKey::default(),
                version: Some("1".into()),
            }),
            trial: Some(TrialState {
                decided_at: None,
                slot: SlotRef {
                    slot: "B".into(),
                    activation: ActivationKey {
                        activated_count: 1,
                        ..Default::default()
                    },
                    version: Some("2".into()),
                },
                boot_id: "b1".into(),
                boots: 1,
                started_uptime_ms: 5,
                started_at: "t".into(),
                decision: Some(Decision::Fail { reason: "x".into() }),
                checks: vec![],
            }),
            last: None,
        };
        st.save(&p).unwrap();
        assert_eq!(GateState::load(&p).unwrap(), st);
    }

    #[test]
    fn refuses_other_formats_and_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("health.json");
        std::fs::write(
            &p,
            br#"{"format":2,"committed":null,"trial":null,"last":null}"#,
        )
        .unwrap();
        assert!(matches!(
            GateState::load(&p),
            Err(StateFileError::Corrupt { .. })
        ));
        std::fs::write(&p, b"{").unwrap();
        assert!(matches!(
            GateState::load(&p),
            Err(StateFileError::Corrupt { .. })
        ));
    }
}

//! The record appended to the outbox stream `outpost.health` for every decision of the gate.
//!
//! JSON, one object per decision. `decision_id` is the same each time the same decision is
//! appended again (a kill -9 between "appended" and "persisted" repeats the append), so the hub
//! or a reader can drop the duplicate; the outbox gives at-least-once delivery.

use serde::{Deserialize, Serialize};

/// The outbox stream the records go to.
pub const STREAM: &str = "outpost.health";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthRecord {
    /// `<boot id>/<slot>/<result>`: stable across repeated appends of one decision.
    pub decision_id: String,
    pub result: RecordResult,
    /// The slot the decision is about (the trial slot).
    pub slot: String,
    /// `bundle.version` of that slot from central.raucs.
    pub version: Option<String>,
    /// The slot running when the record was made (differs from `slot` after a rollback).
    pub booted_slot: String,
    /// `/proc/sys/kernel/random/boot_id` of the boot that made the record.
    pub boot_id: String,
    /// Boots the trial has seen (U-Boot grants several attempts).
    pub boots: u32,
    pub reason: Option<String>,
    /// RFC 3339 wall-clock times (informational: the gate's deadline runs on uptime).
    pub started_at: Option<String>,
    pub decided_at: String,
    pub deadline_ms: u64,
    pub checks: Vec<CheckReport>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecordResult {
    /// All required checks passed together; the slot was marked good.
    Committed,
    /// A required check failed for good or the deadline passed; the slot was marked bad and a
    /// reboot requested.
    Failed,
    /// The next boot runs the old slot: the failed (or unfinished) trial is recorded with why.
    RolledBack,
    /// A slot the gate had marked bad booted again (no fallback was possible). Never committed.
    BootedBadSlot,
}

impl RecordResult {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordResult::Committed => "committed",
            RecordResult::Failed => "failed",
            RecordResult::RolledBack => "rolled-back",
            RecordResult::BootedBadSlot => "booted-bad-slot",
        }
    }
}

/// One check as the gate last saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckReport {
    pub name: String,
    pub kind: String,
    pub required: bool,
    /// `None`: never finished a run.
    pub result: Option<Verdict>,
    pub detail: Option<String>,
    /// Duration of the last run.
    pub duration_ms: u64,
    pub runs: u32,
}

/// The outcome of one run of a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Pass,
    /// Failed now; retried until the deadline.
    Fail,
    /// Failed for good (unit `failed`, a fatal exit code): a required one fails the gate now.
    Fatal,
    /// Did not finish within its timeout; retried like `Fail`.
    Timeout,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Fatal => "fatal",
            Verdict::Timeout => "timeout",
        }
    }
}

/// A wall-clock time as RFC 3339 with milliseconds, UTC.
pub fn rfc3339(t: std::time::SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

//! What `outpostctl health [--json]` shows: the gate's phase and each check. The driver
//! publishes a [`HealthStatus`] on a `tokio::sync::watch` channel; the daemon's API serves it
//! as JSON and the CLI renders it with [`HealthStatus::render`].

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::record::CheckReport;
use crate::state_file::LastOutcome;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthStatus {
    pub phase: Phase,
    /// The booted slot.
    pub booted: Option<String>,
    /// The trial slot and version while checking.
    pub slot: Option<String>,
    pub version: Option<String>,
    pub boots: Option<u32>,
    /// Uptime (ms) at which the gate fails unless committed.
    pub deadline_uptime_ms: Option<u64>,
    pub reason: Option<String>,
    pub checks: Vec<CheckReport>,
    pub last: Option<LastOutcome>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// The driver has not assessed the boot yet.
    #[default]
    Starting,
    NotATrial,
    Checking,
    Committed,
    /// Marked bad; a reboot was requested.
    Failed,
    BootedBadSlot,
    /// The driver stopped on an error (see `reason`); a restart resumes.
    Error,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Starting => "starting",
            Phase::NotATrial => "not a trial",
            Phase::Checking => "checking",
            Phase::Committed => "committed",
            Phase::Failed => "failed (reboot requested)",
            Phase::BootedBadSlot => "booted a slot marked bad",
            Phase::Error => "error",
        }
    }
}

impl HealthStatus {
    /// Human-readable text for `outpostctl health`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "gate:     {}", self.phase.as_str());
        if let Some(b) = &self.booted {
            let _ = writeln!(out, "booted:   {b}");
        }
        if let Some(s) = &self.slot {
            let v = self.version.as_deref().unwrap_or("?");
            let boots = self.boots.unwrap_or(1);
            let _ = writeln!(out, "trial:    {s} (version {v}, boot {boots})");
        }
        if let Some(ms) = self.deadline_uptime_ms {
            let _ = writeln!(out, "deadline: at uptime {}s", ms / 1000);
        }
        if let Some(r) = &self.reason {
            let _ = writeln!(out, "reason:   {r}");
        }
        for c in &self.checks {
            let result = c.result.map_or("pending", |v| v.as_str());
            let req = if c.required { "required" } else { "optional" };
            let _ = write!(
                out,
                "  {:<20} {:<12} {:<8} {:<8} {:>6}ms runs={}",
                c.name, c.kind, req, result, c.duration_ms, c.runs
            );
            if let Some(d) = &c.detail {
                let _ = write!(out, "  {d}");
            }
            out.push('\n');
        }
        if let Some(l) = &self.last {
            let v = l.version.as_deref().unwrap_or("?");
            let _ = writeln!(
                out,
                "last:     {} {} (version {v}) at {}{}",
                l.result.as_str(),
                l.slot,
                l.at,
                l.reason
                    .as_ref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            );
        }
        out
    }
}

//! The `[health]` configuration: the deadline, the re-run interval and the checks.
//!
//! ```toml
//! [health]
//! deadline = "5m"          # all required checks must pass together before this
//! interval = "5s"          # how often a check is re-run (passed checks too)
//! builtin_checks = ["local-api", "outbox-writable"]   # the default
//! reboot = "auto"          # after a failed trial: logind, else reboot(2) (see `reboot`)
//!
//! [[health.checks]]
//! name = "k3s"
//! kind = "systemd-unit"
//! unit = "k3s.service"
//!
//! [[health.checks]]
//! name = "readyz"
//! kind = "http"
//! url = "https://127.0.0.1:6443/readyz"
//! ca_file = "/var/lib/rancher/k3s/server/tls/server-ca.crt"
//! timeout = "10s"
//! ```
//!
//! Strict: unknown keys and keys of another kind are errors (a typo must not silently turn a
//! check off). Durations are humantime strings ("30s", "5m"). The TOML is parsed into a raw
//! struct first and then into [`CheckConfig`], so each kind only carries its own fields.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

mod reboot;
pub use reboot::{RebootMethod, RebootPath};

/// Default `deadline`: five minutes from the start of the gate in this boot.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(300);
/// Default `interval` between two runs of the same check.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
/// Default per-check `timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "RawHealth")]
pub struct HealthConfig {
    pub deadline: Duration,
    pub interval: Duration,
    /// Built-in checks and the configured ones, in run order; names are unique.
    pub checks: Vec<CheckConfig>,
    /// How a failed trial reboots into the fallback (`reboot = "auto"`).
    pub reboot: RebootMethod,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CheckConfig {
    pub name: String,
    pub kind: CheckKind,
    pub timeout: Duration,
    /// A required check must pass for the gate to commit; an optional one is only reported.
    pub required: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CheckKind {
    /// `ActiveState == "active"`. `fatal_on_failed`: a unit in `failed` fails the gate at once
    /// (systemd gave up restarting it) instead of waiting for the deadline.
    SystemdUnit {
        unit: String,
        fatal_on_failed: bool,
    },
    /// argv[0] is run without a shell; exit 0 passes. An exit code in `fatal_exit_codes` fails
    /// the gate at once; any other failure is retried until the deadline.
    Command {
        argv: Vec<String>,
        fatal_exit_codes: Vec<i32>,
    },
    /// GET must answer 2xx. https uses `ca_file` (PEM) if given, else the webpki roots.
    Http {
        url: String,
        ca_file: Option<PathBuf>,
    },
    /// The system has been up at least this long (`/proc/uptime`).
    Uptime {
        min: Duration,
    },
    Builtin(Builtin),
}

/// Checks the daemon answers itself (see [`crate::driver::BuiltinProbe`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Builtin {
    /// The local API answers on its socket.
    LocalApi,
    /// A write transaction on the outbox store commits.
    OutboxWritable,
    /// At least one batch was acknowledged by the hub since boot. Off by default: an offline
    /// device must still be able to commit a good update.
    UploadedOnce,
    /// K3s answers `/readyz` and its node is `Ready` (needs `[k3s]`).
    K3sReady,
    /// Every Deployment, DaemonSet and StatefulSet of the booted slot's workload set is rolled
    /// out (needs `[workloads]`; added by itself to a trial of a slot that carries a set).
    WorkloadsReady,
}

impl Builtin {
    pub fn as_str(self) -> &'static str {
        match self {
            Builtin::LocalApi => "local-api",
            Builtin::OutboxWritable => "outbox-writable",
            Builtin::UploadedOnce => "uploaded-once",
            Builtin::K3sReady => "k3s-ready",
            Builtin::WorkloadsReady => "workloads-ready",
        }
    }
}

impl CheckKind {
    /// The `kind =` word, for reports.
    pub fn label(&self) -> &'static str {
        match self {
            CheckKind::SystemdUnit { .. } => "systemd-unit",
            CheckKind::Command { .. } => "command",
            CheckKind::Http { .. } => "http",
            CheckKind::Uptime { .. } => "uptime",
            CheckKind::Builtin(_) => "builtin",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("bad duration {value:?} for {key}: {reason}")]
    Duration {
        key: String,
        value: String,
        reason: String,
    },
    #[error("{0} must be longer than zero")]
    Zero(String),
    #[error("check name is empty")]
    EmptyName,
    #[error("check {0:?} is configured twice")]
    Duplicate(String),
    #[error("check {name:?}: kind {kind} needs {key}")]
    Missing {
        name: String,
        kind: &'static str,
        key: &'static str,
    },
    #[error("check {name:?}: {key} does not belong to kind {kind}")]
    Foreign {
        name: String,
        kind: &'static str,
        key: &'static str,
    },
    #[error("check {name:?}: {reason}")]
    Invalid { name: String, reason: String },
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            deadline: DEFAULT_DEADLINE,
            interval: DEFAULT_INTERVAL,
            checks: default_builtins().into_iter().map(builtin_check).collect(),
            reboot: RebootMethod::default(),
        }
    }
}

impl HealthConfig {
    /// The same config with another deadline (tests, and callers that shorten it).
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }
}

fn default_builtins() -> Vec<Builtin> {
    vec![Builtin::LocalApi, Builtin::OutboxWritable]
}

fn builtin_check(b: Builtin) -> CheckConfig {
    CheckConfig {
        name: b.as_str().to_owned(),
        kind: CheckKind::Builtin(b),
        timeout: DEFAULT_TIMEOUT,
        required: true,
    }
}

/// `[health]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHealth {
    deadline: Option<String>,
    interval: Option<String>,
    #[serde(default = "default_builtins")]
    builtin_checks: Vec<Builtin>,
    #[serde(default)]
    checks: Vec<RawCheck>,
    #[serde(default)]
    reboot: RebootMethod,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum RawKind {
    SystemdUnit,
    Command,
    Http,
    Uptime,
    Builtin,
}

/// `[[health.checks]]` as written: every key of every kind, sorted out by `TryFrom`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCheck {
    name: String,
    kind: RawKind,
    timeout: Option<String>,
    #[serde(default = "yes")]
    required: bool,
    unit: Option<String>,
    fatal_on_failed: Option<bool>,
    command: Option<Vec<String>>,
    fatal_exit_codes: Option<Vec<i32>>,
    url: Option<String>,
    ca_file: Option<PathBuf>,
    min: Option<String>,
    builtin: Option<Builtin>,
}

fn yes() -> bool {
    true
}

/// Parses a humantime duration and refuses zero.
pub fn parse_duration(key: &str, value: &str) -> Result<Duration, ConfigError> {
    let d = humantime::parse_duration(value).map_err(|e| ConfigError::Duration {
        key: key.to_owned(),
        value: value.to_owned(),
        reason: e.to_string(),
    })?;
    if d.is_zero() {
        return Err(ConfigError::Zero(key.to_owned()));
    }
    Ok(d)
}

fn duration_or(
    key: &str,
    value: &Option<String>,
    default: Duration,
) -> Result<Duration, ConfigError> {
    value
        .as_deref()
        .map_or(Ok(default), |v| parse_duration(key, v))
}

impl TryFrom<RawHealth> for HealthConfig {
    type Error = ConfigError;

    fn try_from(raw: RawHealth) -> Result<Self, ConfigError> {
        let mut checks: Vec<CheckConfig> = Vec::new();
        let configured = raw
            .checks
            .into_iter()
            .map(CheckConfig::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        for b in raw.builtin_checks {
            // A builtin also listed in [[health.checks]] keeps its explicit settings.
            let explicit = configured
                .iter()
                .any(|c| c.kind == CheckKind::Builtin(b) || c.name == b.as_str());
            if !explicit && !checks.iter().any(|c| c.name == b.as_str()) {
                checks.push(builtin_check(b));
            }
        }
        for c in configured {
            if checks.iter().any(|o| o.name == c.name) {
                return Err(ConfigError::Duplicate(c.name));
            }
            checks.push(c);
        }
        Ok(Self {
            deadline: duration_or("deadline", &raw.deadline, DEFAULT_DEADLINE)?,
            interval: duration_or("interval", &raw.interval, DEFAULT_INTERVAL)?,
            checks,
            reboot: raw.reboot,
        })
    }
}

impl TryFrom<RawCheck> for CheckConfig {
    type Error = ConfigError;

    fn try_from(raw: RawCheck) -> Result<Self, ConfigError> {
        if raw.name.trim().is_empty() {
            return Err(ConfigError::EmptyName);
        }
        let kind = raw_kind(&raw)?;
        reject_foreign(&raw, kind.label())?;
        Ok(Self {
            timeout: duration_or(
                &format!("{}.timeout", raw.name),
                &raw.timeout,
                DEFAULT_TIMEOUT,
            )?,
            name: raw.name,
            kind,
            required: raw.required,
        })
    }
}

fn raw_kind(raw: &RawCheck) -> Result<CheckKind, ConfigError> {
    let missing = |kind, key| ConfigError::Missing {
        name: raw.name.clone(),
        kind,
        key,
    };
    let invalid = |reason: &str| ConfigError::Invalid {
        name: raw.name.clone(),
        reason: reason.to_owned(),
    };
    Ok(match raw.kind {
        RawKind::SystemdUnit => {
            let unit = raw
                .unit
                .clone()
                .ok_or_else(|| missing("systemd-unit", "unit"))?;
            if unit.is_empty() || unit.contains('/') || !unit.contains('.') {
                return Err(invalid("unit must be a unit name like k3s.service"));
            }
            CheckKind::SystemdUnit {
                unit,
                fatal_on_failed: raw.fatal_on_failed.unwrap_or(true),
            }
        }
        RawKind::Command => {
            let argv = raw
                .command
                .clone()
                .ok_or_else(|| missing("command", "command"))?;
            if argv.first().is_none_or(|a| a.is_empty()) {
                return Err(invalid("command must name a program"));
            }
            CheckKind::Command {
                argv,
                fatal_exit_codes: raw.fatal_exit_codes.clone().unwrap_or_default(),
            }
        }
        RawKind::Http => {
            let url = raw.url.clone().ok_or_else(|| missing("http", "url"))?;
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(invalid("url must start with http:// or https://"));
            }
            CheckKind::Http {
                url,
                ca_file: raw.ca_file.clone(),
            }
        }
        RawKind::Uptime => {
            let min = raw.min.as_deref().ok_or_else(|| missing("uptime", "min"))?;
            CheckKind::Uptime {
                min: parse_duration(&format!("{}.min", raw.name), min)?,
            }
        }
        RawKind::Builtin => {
            CheckKind::Builtin(raw.builtin.ok_or_else(|| missing("builtin", "builtin"))?)
        }
    })
}

/// Refuses keys that belong to another kind.
fn reject_foreign(raw: &RawCheck, kind: &'static str) -> Result<(), ConfigError> {
    let present: [(&'static str, bool, &'static str); 8] = [
        ("unit", raw.unit.is_some(), "systemd-unit"),
        (
            "fatal_on_failed",
            raw.fatal_on_failed.is_some(),
            "systemd-unit",
        ),
        ("command", raw.command.is_some(), "command"),
        (
            "fatal_exit_codes",
            raw.fatal_exit_codes.is_some(),
            "command",
        ),
        ("url", raw.url.is_some(), "http"),
        ("ca_file", raw.ca_file.is_some(), "http"),
        ("min", raw.min.is_some(), "uptime"),
        ("builtin", raw.builtin.is_some(), "builtin"),
    ];
    match present
        .iter()
        .find(|(_, set, owner)| *set && *owner != kind)
    {
        Some((key, _, _)) => Err(ConfigError::Foreign {
            name: raw.name.clone(),
            kind,
            key,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests;

//! Supervision of the K3s unit as a sans-IO state machine (like `outpost_health::gate`):
//! inputs are observations and the results of actions, each with the time; outputs are the
//! [`Action`]s the driver runs, one at a time. The driver reads the unit state, `/readyz`, the
//! node and the certificates, and says whether the device is quiet; this module only decides.
//!
//! Rules:
//! - A unit that is `inactive` gets [`Action::StartUnit`], a `failed` one
//!   [`Action::RestartUnit`]. Consecutive attempts back off exponentially, 5 s doubling to at
//!   most 5 min; ten minutes of health (unit active and `/readyz` ok) reset the backoff.
//! - When the earliest leaf certificate expires within 30 days, the device is quiet (no install
//!   and no health trial in progress), no action is outstanding and no rotation was started in
//!   the last 24 h: [`Action::StopUnit`], then [`Action::RotateCertificates`] (`k3s
//!   certificate rotate`, which needs K3s stopped), then [`Action::StartUnit`], whatever the
//!   result of the step before (K3s must come back). Unit states seen meanwhile are ignored.
//! - Only one action is outstanding at a time; the next decision waits for its
//!   [`Input::Done`].

use std::time::{Duration, SystemTime};

use serde::{Serialize, Serializer};

use crate::certs::{Due, DEFAULT_ROTATION_THRESHOLD};

/// A unit's `ActiveState`, as far as supervision cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UnitActivity {
    Active,
    Activating,
    Deactivating,
    Reloading,
    Inactive,
    Failed,
    /// Not read (bus error) or not a state we know.
    Unknown,
}

impl UnitActivity {
    /// From `org.freedesktop.systemd1.Unit.ActiveState`.
    pub fn from_active_state(s: &str) -> Self {
        match s {
            "active" => Self::Active,
            "activating" => Self::Activating,
            "deactivating" => Self::Deactivating,
            "reloading" => Self::Reloading,
            "inactive" => Self::Inactive,
            "failed" => Self::Failed,
            _ => Self::Unknown,
        }
    }
}

/// The time: monotonic for backoff and intervals, wall clock for certificates and reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    pub mono: Duration,
    pub wall: SystemTime,
}

/// One look at K3s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub unit: UnitActivity,
    /// `None`: not asked, or the API could not be reached.
    pub readyz: Option<bool>,
    pub node_ready: Option<bool>,
    /// The earliest leaf certificate (`certs::earliest`), if read.
    pub earliest_cert: Option<Due>,
    /// No install and no health trial in progress (the daemon knows).
    pub quiet: bool,
    /// What went wrong while observing, if anything (reported, not acted on).
    pub error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    StartUnit,
    RestartUnit,
    StopUnit,
    /// Run `k3s certificate rotate` (the unit is stopped).
    RotateCertificates,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Observed(Observation, Now),
    /// The outstanding action finished (`Err`: what went wrong).
    Done {
        action: Action,
        result: Result<(), String>,
        now: Now,
    },
}

/// The timings; [`Policy::default`] holds the documented ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub backoff_first: Duration,
    pub backoff_max: Duration,
    /// Health that long resets the backoff.
    pub healthy_reset: Duration,
    /// Rotate when the earliest leaf certificate expires sooner than this.
    pub rotate_before: Duration,
    /// At most one rotation started per this interval.
    pub rotation_interval: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            backoff_first: Duration::from_secs(5),
            backoff_max: Duration::from_secs(300),
            healthy_reset: Duration::from_secs(600),
            rotate_before: DEFAULT_ROTATION_THRESHOLD,
            rotation_interval: Duration::from_secs(24 * 3600),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RotationStep {
    Stopping,
    Rotating,
    Starting,
}

/// The supervisor's state; [`Supervisor::handle`] advances it.
#[derive(Debug, Clone)]
pub struct Supervisor {
    policy: Policy,
    outstanding: Option<Action>,
    rotation: Option<RotationStep>,
    /// Consecutive (re)starts since K3s was last healthy long enough.
    attempts: u32,
    next_attempt: Option<Duration>,
    healthy_since: Option<Duration>,
    last_rotation_mono: Option<Duration>,
    status: Status,
}

/// What `outpostctl k3s --json` shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Status {
    /// The unit's last seen state.
    pub unit: Option<UnitActivity>,
    pub ready: Option<bool>,
    pub node_ready: Option<bool>,
    /// (Re)starts ordered by the agent since it started.
    pub restarts: u32,
    #[serde(serialize_with = "rfc3339")]
    pub last_restart: Option<SystemTime>,
    /// (Re)starts since K3s was last healthy for the reset period: drives the backoff.
    pub consecutive_restarts: u32,
    pub cert_earliest: Option<std::path::PathBuf>,
    #[serde(serialize_with = "rfc3339")]
    pub cert_earliest_expiry: Option<SystemTime>,
    pub rotating: bool,
    pub rotations: u32,
    #[serde(serialize_with = "rfc3339")]
    pub last_rotation: Option<SystemTime>,
    pub last_error: Option<String>,
}

impl Supervisor {
    pub fn new(policy: Policy) -> Self {
        Self {
            policy,
            outstanding: None,
            rotation: None,
            attempts: 0,
            next_attempt: None,
            healthy_since: None,
            last_rotation_mono: None,
            status: Status::default(),
        }
    }

    pub fn status(&self) -> &Status {
        &self.status
    }

    /// The action the driver is running, if any.
    pub fn outstanding(&self) -> Option<Action> {
        self.outstanding
    }

    /// When the backoff lets the next (re)start happen (monotonic), if one is held back.
    pub fn next_attempt(&self) -> Option<Duration> {
        self.next_attempt
    }

    pub fn handle(&mut self, input: Input) -> Vec<Action> {
        match input {
            Input::Observed(obs, now) => self.observed(obs, now),
            Input::Done { action, result, .. } => self.done(action, result),
        }
    }

    fn observed(&mut self, obs: Observation, now: Now) -> Vec<Action> {
        self.record(&obs);
        self.track_health(&obs, now);
        if self.outstanding.is_some() || self.rotation.is_some() {
            return Vec::new();
        }
        if self.rotation_allowed(&obs, now) {
            self.last_rotation_mono = Some(now.mono);
            self.status.rotating = true;
            self.status.rotations += 1;
            self.status.last_rotation = Some(now.wall);
            return self.rotation_step(RotationStep::Stopping);
        }
        let action = match obs.unit {
            UnitActivity::Inactive => Action::StartUnit,
            UnitActivity::Failed => Action::RestartUnit,
            _ => return Vec::new(),
        };
        if self.next_attempt.is_some_and(|t| now.mono < t) {
            return Vec::new();
        }
        self.attempts += 1;
        self.next_attempt = Some(now.mono + self.backoff(self.attempts));
        self.status.restarts += 1;
        self.status.consecutive_restarts = self.attempts;
        self.status.last_restart = Some(now.wall);
        self.emit(action)
    }

    fn done(&mut self, action: Action, result: Result<(), String>) -> Vec<Action> {
        if self.outstanding != Some(action) {
            // Not what we asked for: a driver bug or a stale report; nothing to decide.
            return Vec::new();
        }
        self.outstanding = None;
        let failed = result.is_err();
        if let Err(e) = result {
            self.status.last_error = Some(format!("{}: {e}", label(action)));
        }
        match self.rotation {
            // Stopping failed: rotating under a running K3s is not allowed; start it instead.
            Some(RotationStep::Stopping) if failed => self.rotation_step(RotationStep::Starting),
            Some(RotationStep::Stopping) => self.rotation_step(RotationStep::Rotating),
            Some(RotationStep::Rotating) => self.rotation_step(RotationStep::Starting),
            Some(RotationStep::Starting) => {
                self.rotation = None;
                self.status.rotating = false;
                Vec::new()
            }
            None => Vec::new(),
        }
    }

    fn rotation_step(&mut self, step: RotationStep) -> Vec<Action> {
        self.rotation = Some(step);
        self.emit(match step {
            RotationStep::Stopping => Action::StopUnit,
            RotationStep::Rotating => Action::RotateCertificates,
            RotationStep::Starting => Action::StartUnit,
        })
    }

    fn emit(&mut self, action: Action) -> Vec<Action> {
        self.outstanding = Some(action);
        vec![action]
    }

    fn record(&mut self, obs: &Observation) {
        self.status.unit = Some(obs.unit);
        self.status.ready = obs.readyz;
        self.status.node_ready = obs.node_ready;
        if let Some(due) = &obs.earliest_cert {
            self.status.cert_earliest = Some(due.earliest_cert.clone());
            self.status.cert_earliest_expiry = Some(due.expires);
        }
        if let Some(e) = &obs.error {
            self.status.last_error = Some(e.clone());
        }
    }

    fn track_health(&mut self, obs: &Observation, now: Now) {
        let healthy = obs.unit == UnitActivity::Active && obs.readyz == Some(true);
        if !healthy {
            self.healthy_since = None;
            return;
        }
        let since = *self.healthy_since.get_or_insert(now.mono);
        if now.mono.saturating_sub(since) >= self.policy.healthy_reset {
            self.attempts = 0;
            self.next_attempt = None;
            self.status.consecutive_restarts = 0;
        }
    }

    fn rotation_allowed(&self, obs: &Observation, now: Now) -> bool {
        let due = obs
            .earliest_cert
            .as_ref()
            .is_some_and(|d| d.is_due(now.wall, self.policy.rotate_before));
        let rested = self
            .last_rotation_mono
            .is_none_or(|t| now.mono.saturating_sub(t) >= self.policy.rotation_interval);
        due && obs.quiet && rested
    }

    /// The wait after the `n`th consecutive attempt: first, doubling, capped.
    fn backoff(&self, n: u32) -> Duration {
        let factor = 1u32.checked_shl(n.saturating_sub(1)).unwrap_or(u32::MAX);
        self.policy
            .backoff_first
            .checked_mul(factor)
            .unwrap_or(self.policy.backoff_max)
            .min(self.policy.backoff_max)
    }
}

fn label(a: Action) -> &'static str {
    match a {
        Action::StartUnit => "starting k3s",
        Action::RestartUnit => "restarting k3s",
        Action::StopUnit => "stopping k3s",
        Action::RotateCertificates => "k3s certificate rotate",
    }
}

fn rfc3339<S: Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&humantime::format_rfc3339_seconds(*t).to_string()),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests;

//! The driver: runs the [`Gate`] against injected capabilities. It reads clocks and the
//! bootloader, runs checks concurrently (tokio tasks, each under its timeout), and carries out
//! the gate's actions strictly in order; the first action that fails stops the run with an
//! error (the state file already holds what was decided, so a restart resumes correctly).
//!
//! The daemon wires it with one call:
//! `Driver::new(config, state_path, caps).run(BootContext { .. }).await`.
//! Bootloader calls and state-file writes are small synchronous file operations and run inline.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use outpost_boot::{BootError, Bootloader, SlotName, SlotState};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::armed::{Armed, ARMED_FILE};
use crate::assessment::{BackendFamily, BootFacts};
use crate::checks::{CheckConfig, HealthConfig};
use crate::gate::{millis, Action, Gate, GatePlan, Input, Now, Outcome};
use crate::record::HealthRecord;
use crate::runner::systemd::{ClientError, Logind, SystemdClient};
use crate::runner::{BoxFuture, BuiltinProbe, CheckOutcome, CheckRunner, Clock};
use crate::state_file::{ActivationKey, GateState, SlotRef, StateFileError};
use crate::status::{HealthStatus, Phase};

/// Appends records to the outbox stream [`crate::STREAM`].
pub trait RecordSink: Send + Sync {
    fn append<'a>(&'a self, record: &'a HealthRecord) -> BoxFuture<'a, Result<(), ClientError>>;
}

/// Everything the driver does I/O through.
#[derive(Clone)]
pub struct Capabilities {
    pub bootloader: Arc<dyn Bootloader + Send + Sync>,
    pub systemd: Arc<dyn SystemdClient>,
    pub logind: Arc<dyn Logind>,
    pub records: Arc<dyn RecordSink>,
    pub clock: Arc<dyn Clock>,
    pub builtins: Arc<dyn BuiltinProbe>,
}

/// What the daemon knows about this boot before the gate starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootContext {
    pub family: BackendFamily,
    /// The booted slot's bootname (from `rauc.slot=`/`outpost.slot=` or the root device).
    pub booted: SlotName,
    /// central.raucs keys of the booted slot (default if it has none).
    pub activation: ActivationKey,
    /// central.raucs `bundle.version` of the booted slot.
    pub version: Option<String>,
    pub boot_id: String,
}

impl BootContext {
    fn slot_ref(&self) -> SlotRef {
        SlotRef {
            slot: self.booted.to_string(),
            activation: self.activation.clone(),
            version: self.version.clone(),
        }
    }
}

/// Reads `/proc/sys/kernel/random/boot_id`.
pub fn read_boot_id() -> std::io::Result<String> {
    Ok(std::fs::read_to_string("/proc/sys/kernel/random/boot_id")?
        .trim()
        .to_owned())
}

#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error(transparent)]
    State(#[from] StateFileError),
    #[error("bootloader {op} {slot}: {source}")]
    Boot {
        op: &'static str,
        slot: String,
        #[source]
        source: Box<BootError>,
    },
    #[error("state names slot {0:?}, which is not a valid bootname")]
    BadSlot(String),
    #[error("appending to outpost.health: {0}")]
    Record(ClientError),
    #[error("asking logind to reboot: {0}")]
    Reboot(ClientError),
}

pub struct Driver {
    config: HealthConfig,
    state_path: PathBuf,
    caps: Capabilities,
    status: watch::Sender<HealthStatus>,
}

/// One finished run of a check, as the task returns it.
type Finished = (String, CheckOutcome, Duration);

impl Driver {
    pub fn new(config: HealthConfig, state_path: impl Into<PathBuf>, caps: Capabilities) -> Self {
        Self {
            config,
            state_path: state_path.into(),
            caps,
            status: watch::Sender::new(HealthStatus::default()),
        }
    }

    /// Publishes status on `status` (the daemon's shared channel) instead of a private one.
    pub fn with_status(mut self, status: watch::Sender<HealthStatus>) -> Self {
        self.status = status;
        self
    }

    /// Live status for `outpostctl health`.
    pub fn status(&self) -> watch::Receiver<HealthStatus> {
        self.status.subscribe()
    }

    /// Assesses this boot and, in a trial, runs the gate to its verdict.
    pub async fn run(&self, ctx: BootContext) -> Result<Outcome, DriverError> {
        let result = self.run_inner(&ctx).await;
        if let Err(e) = &result {
            self.status.send_modify(|s| {
                s.phase = Phase::Error;
                s.reason = Some(e.to_string());
            });
        }
        result
    }

    async fn run_inner(&self, ctx: &BootContext) -> Result<Outcome, DriverError> {
        let state = match GateState::load(&self.state_path) {
            Ok(s) => s,
            // Decisions are written atomically, so this is bit rot or tampering. Starting
            // fresh is safe: a counting backend then re-checks an installed slot.
            Err(e @ StateFileError::Corrupt { .. }) => {
                tracing::warn!(error = %e, "health state unreadable; starting fresh");
                GateState::new()
            }
            Err(e) => return Err(e.into()),
        };
        let facts = self.facts(ctx)?;
        let plan = GatePlan::from_config(&self.config);
        let (mut gate, actions) = Gate::begin(plan, &facts, state, self.now());
        let mut tasks: JoinSet<Finished> = JoinSet::new();
        // Published only after the actions ran: a status that says "decided" means the
        // decision is persisted, recorded and carried out (`outpostctl health --wait` relies on it).
        self.execute(actions, &mut tasks).await?;
        // An armed note from an earlier boot has been told now (the armed slot's trial is
        // persisted, or its rollback recorded): drop it. Kept until here, a kill -9 before
        // this line tells it again, and the record is the same.
        if facts
            .armed
            .as_ref()
            .is_some_and(|a| a.boot_id != ctx.boot_id)
        {
            Armed::remove(&self.armed_path())?;
        }
        self.publish(&gate, &facts);
        while let Gate::ExpectResults(e) = &gate {
            let wait = e.next_wakeup().saturating_sub(self.caps.clock.since_boot());
            let input = tokio::select! {
                Some(joined) = tasks.join_next() => match joined {
                    Ok((name, outcome, duration)) => Input::CheckDone {
                        name,
                        verdict: outcome.verdict,
                        detail: outcome.detail,
                        duration,
                        now: self.now(),
                    },
                    // A check task panicked or was cancelled: report it as a failed run.
                    Err(e) => {
                        tracing::warn!(error = %e, "health check task ended abnormally");
                        Input::Tick(self.now())
                    }
                },
                _ = tokio::time::sleep(wait) => Input::Tick(self.now()),
            };
            self.note_result(&input);
            let (next, actions) = gate.handle(input);
            gate = next;
            self.execute(actions, &mut tasks).await?;
            self.publish(&gate, &facts);
        }
        match gate {
            Gate::Done(outcome) => Ok(outcome),
            Gate::ExpectResults(_) => unreachable!("the loop above runs until Done"),
        }
    }

    fn facts(&self, ctx: &BootContext) -> Result<BootFacts, DriverError> {
        let boot = |op, source| DriverError::Boot {
            op,
            slot: ctx.booted.to_string(),
            source: Box::new(source),
        };
        let bl = &self.caps.bootloader;
        // The note only ever adds a record: an unreadable one is logged, not fatal.
        let armed = Armed::load(&self.armed_path()).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "ignoring the armed-slot note");
            None
        });
        Ok(BootFacts {
            armed,
            family: ctx.family,
            booted: ctx.slot_ref(),
            boot_id: ctx.boot_id.clone(),
            state: bl.state(&ctx.booted).map_err(|e| boot("state", e))?,
            attempts_left: bl
                .attempts_left(&ctx.booted)
                .map_err(|e| boot("attempts_left", e))?,
        })
    }

    /// `armed.json` beside the gate state (see [`crate::armed`]).
    fn armed_path(&self) -> PathBuf {
        self.state_path.with_file_name(ARMED_FILE)
    }

    fn now(&self) -> Now {
        Now {
            since_boot: self.caps.clock.since_boot(),
            wall: self.caps.clock.wall(),
        }
    }

    async fn execute(
        &self,
        actions: Vec<Action>,
        tasks: &mut JoinSet<Finished>,
    ) -> Result<(), DriverError> {
        for action in actions {
            match action {
                Action::RunCheck(name) => self.spawn_check(&name, tasks),
                Action::PersistState(st) => st.save(&self.state_path)?,
                Action::Commit { slot } | Action::Rearm { slot } => {
                    self.set_state(&slot, SlotState::Good)?
                }
                Action::MarkBad { slot } => self.set_state(&slot, SlotState::Bad)?,
                Action::MarkBadAndReboot { slot, reason } => {
                    self.set_state(&slot, SlotState::Bad)?;
                    tracing::warn!(%slot, %reason, "health gate failed; rebooting to fall back");
                    self.caps
                        .logind
                        .reboot()
                        .await
                        .map_err(DriverError::Reboot)?;
                }
                Action::AppendRecord(r) => self
                    .caps
                    .records
                    .append(&r)
                    .await
                    .map_err(DriverError::Record)?,
            }
        }
        Ok(())
    }

    fn set_state(&self, slot: &str, state: SlotState) -> Result<(), DriverError> {
        let name = SlotName::new(slot).map_err(|_| DriverError::BadSlot(slot.to_owned()))?;
        self.caps
            .bootloader
            .set_state(&name, state)
            .map_err(|source| DriverError::Boot {
                op: if state == SlotState::Good {
                    "mark good"
                } else {
                    "mark bad"
                },
                slot: slot.to_owned(),
                source: Box::new(source),
            })
    }

    fn spawn_check(&self, name: &str, tasks: &mut JoinSet<Finished>) {
        let Some(check) = self.config.checks.iter().find(|c| c.name == name).cloned() else {
            return;
        };
        let runner = CheckRunner {
            systemd: self.caps.systemd.clone(),
            builtins: self.caps.builtins.clone(),
            clock: self.caps.clock.clone(),
        };
        tasks.spawn(async move { run_one(runner, check).await });
    }

    /// Folds a finished run into the published checks. The gate's own reports replace them on
    /// the next publish while it expects results; when this run decides the gate, `Done` has
    /// no reports, and without this the deciding check would show as never run.
    fn note_result(&self, input: &Input) {
        let Input::CheckDone {
            name,
            verdict,
            detail,
            duration,
            ..
        } = input
        else {
            return;
        };
        self.status.send_modify(|s| {
            if let Some(c) = s.checks.iter_mut().find(|c| &c.name == name) {
                c.result = Some(*verdict);
                c.detail.clone_from(detail);
                c.duration_ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
                c.runs = c.runs.saturating_add(1);
            }
        });
    }

    fn publish(&self, gate: &Gate, facts: &BootFacts) {
        let status = match gate {
            Gate::ExpectResults(e) => {
                let t = e.state().trial.as_ref();
                HealthStatus {
                    phase: Phase::Checking,
                    booted: Some(facts.booted.slot.clone()),
                    slot: t.map(|t| t.slot.slot.clone()),
                    version: t.and_then(|t| t.slot.version.clone()),
                    boots: t.map(|t| t.boots),
                    deadline_uptime_ms: Some(millis(e.deadline_at())),
                    reason: None,
                    checks: e.reports(),
                    last: e.state().last.clone(),
                }
            }
            Gate::Done(outcome) => {
                let (phase, reason) = match outcome {
                    Outcome::NotATrial => (Phase::NotATrial, None),
                    Outcome::Committed => (Phase::Committed, None),
                    Outcome::Failed { reason } => (Phase::Failed, Some(reason.clone())),
                    Outcome::BootedBadSlot { reason } => {
                        (Phase::BootedBadSlot, Some(reason.clone()))
                    }
                };
                let prev = self.status.borrow().clone();
                // What this and earlier boots decided (e.g. the rolled-back trial): the state
                // file holds it once the gate is done, and the status shows it at once.
                let last = GateState::load(&self.state_path)
                    .ok()
                    .and_then(|s| s.last)
                    .or(prev.last.clone());
                HealthStatus {
                    phase,
                    booted: Some(facts.booted.slot.clone()),
                    reason,
                    last,
                    ..prev
                }
            }
        };
        self.status.send_replace(status);
    }
}

async fn run_one(runner: CheckRunner, check: CheckConfig) -> Finished {
    let t0 = Instant::now();
    let outcome = runner.run(&check).await;
    (check.name, outcome, t0.elapsed())
}

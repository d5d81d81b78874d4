//! The health gate as a sans-IO state machine (rustls `Expect*` style): each state consumes
//! itself on an [`Input`] and returns the next state plus the [`Action`]s the driver must run,
//! in order. The driver runs checks, reads clocks and writes files; this module only decides.
//!
//! ```text
//!            begin(assessment)
//!                 │ Trial                       other assessments: finishing actions
//!                 ▼                              ──────────────────────────────► Done
//!         ┌── ExpectResults ◄── Tick / CheckDone (not yet decided)
//!         │       │ all required pass together      │ required check fatal, or deadline
//!         │       ▼                                  ▼
//!         │  Done(Committed)                    Done(Failed)
//! ```
//!
//! Rules: every check runs at start and again `interval` after each of its runs (passed ones
//! too), so a check that passed earlier and fails now un-passes. The gate commits the first
//! moment every required check's latest result is a pass. A required check that fails *for
//! good* ([`Verdict::Fatal`]) fails the gate at once; other failures are retried until the
//! deadline, which runs on uptime from the gate's start in this boot (kept across agent
//! restarts). Optional checks are only reported.

use std::time::{Duration, SystemTime};

use crate::assessment::{assess, Assessment, BootFacts};
use crate::checks::HealthConfig;
use crate::finish;
use crate::record::{rfc3339, CheckReport, HealthRecord, Verdict};
use crate::state_file::{Decision, GateState, SlotRef, TrialState};

/// The time as the gate needs it: uptime for deadlines, wall clock for records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    pub since_boot: Duration,
    pub wall: SystemTime,
}

/// What the gate needs to know of a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckSpec {
    pub name: String,
    pub kind: &'static str,
    pub required: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatePlan {
    pub deadline: Duration,
    pub interval: Duration,
    pub checks: Vec<CheckSpec>,
}

impl GatePlan {
    pub fn from_config(c: &HealthConfig) -> Self {
        Self {
            deadline: c.deadline,
            interval: c.interval,
            checks: c
                .checks
                .iter()
                .map(|c| CheckSpec {
                    name: c.name.clone(),
                    kind: c.kind.label(),
                    required: c.required,
                })
                .collect(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Time passed (the driver ticks at [`ExpectResults::next_wakeup`]).
    Tick(Now),
    /// One run of a check finished.
    CheckDone {
        name: String,
        verdict: Verdict,
        detail: Option<String>,
        duration: Duration,
        now: Now,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Start one run of the named check (the driver enforces its timeout).
    RunCheck(String),
    /// Replace the state file with this document. Must succeed before later actions run.
    PersistState(Box<GateState>),
    /// `set_state(slot, Good)`: the gate passed. Idempotent.
    Commit { slot: String },
    /// `set_state(slot, Good)` on a committed slot of a counting backend, every boot.
    Rearm { slot: String },
    /// `set_state(slot, Bad)` for a trial that already lost (no reboot: we run another slot).
    MarkBad { slot: String },
    /// `set_state(slot, Bad)`, then ask logind to reboot so the bootloader falls back.
    MarkBadAndReboot { slot: String, reason: String },
    /// Append to the `outpost.health` stream.
    AppendRecord(HealthRecord),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    NotATrial,
    Committed,
    Failed { reason: String },
    BootedBadSlot { reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    ExpectResults(Box<ExpectResults>),
    Done(Outcome),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectResults {
    plan: GatePlan,
    state: GateState,
    booted: String,
    started: Duration,
    checks: Vec<Progress>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Progress {
    spec: CheckSpec,
    running: bool,
    next_due: Duration,
    last: Option<(Verdict, Option<String>, Duration)>,
    runs: u32,
}

impl Gate {
    /// Assesses the boot and returns the first state with its actions.
    pub fn begin(
        plan: GatePlan,
        facts: &BootFacts,
        state: GateState,
        now: Now,
    ) -> (Gate, Vec<Action>) {
        let assessment = assess(facts, &state);
        Self::begin_with(plan, facts, assessment, state, now)
    }

    pub fn begin_with(
        plan: GatePlan,
        facts: &BootFacts,
        assessment: Assessment,
        state: GateState,
        now: Now,
    ) -> (Gate, Vec<Action>) {
        match assessment {
            Assessment::NotATrial { slot, rearm } => finish::not_a_trial(state, slot, rearm),
            Assessment::Trial {
                slot,
                boots,
                resume_from_ms,
            } => ExpectResults::start(plan, facts, state, slot, boots, resume_from_ms, now),
            Assessment::AfterCommittedTrial { .. } => finish::commit(state, facts, &plan, now),
            Assessment::FailingTrial { .. } => finish::fail(state, facts, &plan, now),
            Assessment::BootedBadSlot { reason, .. } => {
                finish::booted_bad(state, facts, &plan, reason, now)
            }
            Assessment::AfterFailedTrial { failed, reason } => {
                // The armed note of this same install is told by this record already.
                let facts = match &facts.armed {
                    Some(a) if a.slot == failed => facts.without_armed(),
                    _ => facts.clone(),
                };
                let (state, mut actions) =
                    finish::rolled_back(state, &facts, &plan, failed, reason, now);
                // The old slot runs now: assess it with the failed trial closed.
                let (gate, more) = Self::begin(plan, &facts, state, now);
                actions.extend(more);
                (gate, actions)
            }
            Assessment::NeverReachedAgent { armed, reason } => {
                let facts = facts.without_armed();
                let (state, mut actions) =
                    finish::never_reached_agent(state, &facts, &plan, armed, reason, now);
                let (gate, more) = Self::begin(plan, &facts, state, now);
                actions.extend(more);
                (gate, actions)
            }
        }
    }

    pub fn handle(self, input: Input) -> (Gate, Vec<Action>) {
        match self {
            Gate::ExpectResults(e) => (*e).handle(input),
            done @ Gate::Done(_) => (done, Vec::new()),
        }
    }
}

impl ExpectResults {
    fn start(
        plan: GatePlan,
        facts: &BootFacts,
        mut state: GateState,
        slot: SlotRef,
        boots: u32,
        resume_from_ms: Option<u64>,
        now: Now,
    ) -> (Gate, Vec<Action>) {
        let started = resume_from_ms.map_or(now.since_boot, Duration::from_millis);
        let resumed = resume_from_ms.is_some();
        if !resumed {
            state.trial = Some(TrialState {
                decided_at: None,
                slot,
                boot_id: facts.boot_id.clone(),
                boots,
                started_uptime_ms: millis(started),
                started_at: rfc3339(now.wall),
                decision: None,
                checks: Vec::new(),
            });
        }
        let checks = plan
            .checks
            .iter()
            .map(|spec| Progress {
                spec: spec.clone(),
                running: false,
                next_due: now.since_boot,
                last: None,
                runs: 0,
            })
            .collect();
        let gate = ExpectResults {
            plan,
            booted: facts.booted.slot.clone(),
            state,
            started,
            checks,
        };
        // The trial's start is durable before the first check runs: the deadline and the boot
        // count survive a kill -9.
        let mut actions = Vec::new();
        if !resumed {
            actions.push(Action::PersistState(Box::new(gate.state.clone())));
        }
        let (gate, more) = gate.step(now);
        actions.extend(more);
        (gate, actions)
    }

    /// Uptime at which the gate fails unless it committed.
    pub fn deadline_at(&self) -> Duration {
        self.started + self.plan.deadline
    }

    /// When the driver must tick next: the earliest due idle check, or the deadline.
    pub fn next_wakeup(&self) -> Duration {
        self.checks
            .iter()
            .filter(|c| !c.running)
            .map(|c| c.next_due)
            .fold(self.deadline_at(), Duration::min)
    }

    pub fn state(&self) -> &GateState {
        &self.state
    }

    pub fn reports(&self) -> Vec<CheckReport> {
        self.checks.iter().map(Progress::report).collect()
    }

    fn handle(mut self, input: Input) -> (Gate, Vec<Action>) {
        match input {
            Input::Tick(now) => self.step(now),
            Input::CheckDone {
                name,
                verdict,
                detail,
                duration,
                now,
            } => {
                let interval = self.plan.interval;
                let Some(c) = self.checks.iter_mut().find(|c| c.spec.name == name) else {
                    // Not one of ours (config changed under a running driver): ignore.
                    return self.step(now);
                };
                c.running = false;
                c.runs = c.runs.saturating_add(1);
                c.next_due = now.since_boot + interval;
                c.last = Some((verdict, detail.clone(), duration));
                if verdict == Verdict::Fatal && c.spec.required {
                    let reason = format!(
                        "check {name} failed for good: {}",
                        detail.unwrap_or_else(|| "no detail".into())
                    );
                    return self.decide(Decision::Fail { reason }, now);
                }
                self.step(now)
            }
        }
    }

    /// Commit if all required checks pass now, fail past the deadline, else run due checks.
    fn step(self, now: Now) -> (Gate, Vec<Action>) {
        let all_pass = self
            .checks
            .iter()
            .filter(|c| c.spec.required)
            .all(|c| matches!(c.last, Some((Verdict::Pass, _, _))));
        if all_pass {
            return self.decide(Decision::Commit, now);
        }
        if now.since_boot >= self.deadline_at() {
            let reason = self.deadline_reason();
            return self.decide(Decision::Fail { reason }, now);
        }
        let mut me = self;
        let mut actions = Vec::new();
        for c in me.checks.iter_mut().filter(|c| !c.running) {
            if now.since_boot >= c.next_due {
                c.running = true;
                actions.push(Action::RunCheck(c.spec.name.clone()));
            }
        }
        (Gate::ExpectResults(Box::new(me)), actions)
    }

    fn deadline_reason(&self) -> String {
        let failing: Vec<String> = self
            .checks
            .iter()
            .filter(|c| c.spec.required)
            .filter(|c| !matches!(c.last, Some((Verdict::Pass, _, _))))
            .map(|c| match &c.last {
                None => format!("{} (never finished)", c.spec.name),
                Some((v, d, _)) => match d {
                    Some(d) => format!("{} ({}: {d})", c.spec.name, v.as_str()),
                    None => format!("{} ({})", c.spec.name, v.as_str()),
                },
            })
            .collect();
        format!(
            "deadline of {} passed; not passing: {}",
            humantime::format_duration(self.plan.deadline),
            failing.join(", ")
        )
    }

    /// Writes the decision into the state and returns the actions that carry it out.
    fn decide(mut self, decision: Decision, now: Now) -> (Gate, Vec<Action>) {
        let reports = self.reports();
        if let Some(t) = self.state.trial.as_mut() {
            t.decision = Some(decision);
            t.decided_at = Some(crate::record::rfc3339(now.wall));
            t.checks = reports;
        }
        let facts_booted = self.booted;
        let plan = self.plan;
        let mut actions = vec![Action::PersistState(Box::new(self.state.clone()))];
        let (gate, more) = finish::after_decision(self.state, &facts_booted, &plan, now);
        actions.extend(more);
        (gate, actions)
    }
}

impl Progress {
    fn report(&self) -> CheckReport {
        CheckReport {
            name: self.spec.name.clone(),
            kind: self.spec.kind.to_owned(),
            required: self.spec.required,
            result: self.last.as_ref().map(|l| l.0),
            detail: self.last.as_ref().and_then(|l| l.1.clone()),
            duration_ms: self.last.as_ref().map_or(0, |l| millis(l.2)),
            runs: self.runs,
        }
    }
}

pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests;

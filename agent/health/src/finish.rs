//! The action sequences that carry out a decision, pure. Each is ordered so that a kill -9
//! between any two actions is finished correctly by the next start:
//!
//! - commit: (decision persisted) → `Commit` → record → persist `committed`, trial closed.
//!   A kill before the last step re-enters through `AfterCommittedTrial`, which repeats the
//!   idempotent `Commit` and the record (same `decision_id`).
//! - fail: (decision persisted) → record → `MarkBadAndReboot`. A kill re-enters through
//!   `FailingTrial` (same boot) or, after the reboot, `AfterFailedTrial` (old slot).
//! - rollback seen on the old slot: `MarkBad` (idempotent) → record → persist trial closed.

use crate::armed::Armed;
use crate::assessment::BootFacts;
use crate::gate::{millis, Action, Gate, GatePlan, Now, Outcome};
use crate::record::{rfc3339, HealthRecord, RecordResult};
use crate::state_file::{Decision, GateState, LastOutcome, SlotRef, TrialState};

pub(crate) fn not_a_trial(mut state: GateState, slot: SlotRef, rearm: bool) -> (Gate, Vec<Action>) {
    let mut actions = Vec::new();
    if rearm {
        actions.push(Action::Rearm {
            slot: slot.slot.clone(),
        });
    }
    // Adopt the running slot as the committed baseline (factory image, marked good outside
    // the gate) and drop a superseded trial of it.
    let stale_trial = state
        .trial
        .as_ref()
        .is_some_and(|t| t.slot.slot == slot.slot);
    if state.committed.as_ref() != Some(&slot) || stale_trial {
        state.committed = Some(slot);
        if stale_trial {
            state.trial = None;
        }
        actions.push(Action::PersistState(Box::new(state)));
    }
    (Gate::Done(Outcome::NotATrial), actions)
}

/// Dispatches on the decision just written into `state.trial`.
pub(crate) fn after_decision(
    state: GateState,
    booted: &str,
    plan: &GatePlan,
    now: Now,
) -> (Gate, Vec<Action>) {
    let ctx = Ctx {
        booted: booted.to_owned(),
        boot_id: state
            .trial
            .as_ref()
            .map(|t| t.boot_id.clone())
            .unwrap_or_default(),
        deadline_ms: millis(plan.deadline),
    };
    match state.trial.as_ref().and_then(|t| t.decision.clone()) {
        Some(Decision::Commit) => commit_with(state, &ctx, now),
        _ => fail_with(state, &ctx, now),
    }
}

pub(crate) fn commit(
    state: GateState,
    f: &BootFacts,
    plan: &GatePlan,
    now: Now,
) -> (Gate, Vec<Action>) {
    commit_with(state, &Ctx::of(f, plan), now)
}

pub(crate) fn fail(
    state: GateState,
    f: &BootFacts,
    plan: &GatePlan,
    now: Now,
) -> (Gate, Vec<Action>) {
    fail_with(state, &Ctx::of(f, plan), now)
}

pub(crate) fn booted_bad(
    state: GateState,
    f: &BootFacts,
    plan: &GatePlan,
    reason: String,
    now: Now,
) -> (Gate, Vec<Action>) {
    let ctx = Ctx::of(f, plan);
    let mut actions = Vec::new();
    if let Some(t) = &state.trial {
        actions.push(Action::AppendRecord(record(
            RecordResult::BootedBadSlot,
            t,
            &ctx,
            &ctx.boot_id,
            Some(reason.clone()),
            now,
        )));
    }
    (Gate::Done(Outcome::BootedBadSlot { reason }), actions)
}

/// Closes a trial that lost while another slot runs now. Returns the state to assess next.
pub(crate) fn rolled_back(
    mut state: GateState,
    f: &BootFacts,
    plan: &GatePlan,
    failed: SlotRef,
    reason: String,
    now: Now,
) -> (GateState, Vec<Action>) {
    let ctx = Ctx::of(f, plan);
    let mut actions = vec![Action::MarkBad {
        slot: failed.slot.clone(),
    }];
    if let Some(t) = state.trial.take() {
        actions.push(Action::AppendRecord(record(
            RecordResult::RolledBack,
            &t,
            &ctx,
            &ctx.boot_id,
            Some(reason.clone()),
            now,
        )));
    }
    state.last = Some(LastOutcome {
        slot: failed.slot,
        version: failed.version,
        result: RecordResult::RolledBack,
        reason: Some(reason),
        at: rfc3339(now.wall),
    });
    actions.push(Action::PersistState(Box::new(state.clone())));
    (state, actions)
}

/// The slot armed in an earlier boot never reached its agent: no trial state exists, so the
/// record is made from the armed note as a trial of zero boots (`boots: 0` tells the hub the
/// slot never ran its agent), then closed like any fallback.
pub(crate) fn never_reached_agent(
    mut state: GateState,
    f: &BootFacts,
    plan: &GatePlan,
    armed: Armed,
    reason: String,
    now: Now,
) -> (GateState, Vec<Action>) {
    state.trial = Some(TrialState {
        slot: armed.slot.clone(),
        boot_id: armed.boot_id,
        boots: 0,
        started_uptime_ms: 0,
        started_at: armed.armed_at,
        decision: None,
        decided_at: None,
        checks: Vec::new(),
    });
    rolled_back(state, f, plan, armed.slot, reason, now)
}

struct Ctx {
    booted: String,
    boot_id: String,
    deadline_ms: u64,
}

impl Ctx {
    fn of(f: &BootFacts, plan: &GatePlan) -> Self {
        Self {
            booted: f.booted.slot.clone(),
            boot_id: f.boot_id.clone(),
            deadline_ms: millis(plan.deadline),
        }
    }
}

fn commit_with(mut state: GateState, ctx: &Ctx, now: Now) -> (Gate, Vec<Action>) {
    let Some(t) = state.trial.take() else {
        return (Gate::Done(Outcome::Committed), Vec::new());
    };
    let mut actions = vec![
        Action::Commit {
            slot: t.slot.slot.clone(),
        },
        Action::AppendRecord(record(
            RecordResult::Committed,
            &t,
            ctx,
            &t.boot_id,
            None,
            now,
        )),
    ];
    state.last = Some(LastOutcome {
        slot: t.slot.slot.clone(),
        version: t.slot.version.clone(),
        result: RecordResult::Committed,
        reason: None,
        at: rfc3339(now.wall),
    });
    state.committed = Some(t.slot);
    actions.push(Action::PersistState(Box::new(state)));
    (Gate::Done(Outcome::Committed), actions)
}

fn fail_with(state: GateState, ctx: &Ctx, now: Now) -> (Gate, Vec<Action>) {
    let Some(t) = state.trial.as_ref() else {
        return (
            Gate::Done(Outcome::Failed {
                reason: "no trial".into(),
            }),
            Vec::new(),
        );
    };
    let reason = match &t.decision {
        Some(Decision::Fail { reason }) => reason.clone(),
        _ => "failed".to_owned(),
    };
    let actions = vec![
        Action::AppendRecord(record(
            RecordResult::Failed,
            t,
            ctx,
            &t.boot_id,
            Some(reason.clone()),
            now,
        )),
        Action::MarkBadAndReboot {
            slot: t.slot.slot.clone(),
            reason: reason.clone(),
        },
    ];
    (Gate::Done(Outcome::Failed { reason }), actions)
}

/// `decision_boot`: the boot the decision was taken in, for a `decision_id` that stays the
/// same when the decision is finished after a restart or reboot.
fn record(
    result: RecordResult,
    t: &TrialState,
    ctx: &Ctx,
    decision_boot: &str,
    reason: Option<String>,
    now: Now,
) -> HealthRecord {
    HealthRecord {
        decision_id: format!("{decision_boot}/{}/{}", t.slot.slot, result.as_str()),
        result,
        slot: t.slot.slot.clone(),
        version: t.slot.version.clone(),
        booted_slot: ctx.booted.clone(),
        boot_id: ctx.boot_id.clone(),
        boots: t.boots,
        reason,
        started_at: Some(t.started_at.clone()),
        decided_at: t.decided_at.clone().unwrap_or_else(|| rfc3339(now.wall)),
        deadline_ms: ctx.deadline_ms,
        checks: t.checks.clone(),
    }
}

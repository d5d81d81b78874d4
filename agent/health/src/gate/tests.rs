use std::time::{Duration, SystemTime, UNIX_EPOCH};

use outpost_boot::SlotState;

use super::*;
use crate::assessment::BackendFamily;
use crate::record::RecordResult;
use crate::state_file::ActivationKey;

fn now(ms: u64) -> Now {
    Now {
        since_boot: Duration::from_millis(ms),
        wall: UNIX_EPOCH + Duration::from_secs(1_700_000_000) + Duration::from_millis(ms),
    }
}

fn plan(checks: &[(&str, bool)]) -> GatePlan {
    GatePlan {
        deadline: Duration::from_millis(10_000),
        interval: Duration::from_millis(1_000),
        checks: checks
            .iter()
            .map(|(n, r)| CheckSpec {
                name: (*n).into(),
                kind: "command",
                required: *r,
            })
            .collect(),
    }
}

fn slot(name: &str, n: u64) -> SlotRef {
    SlotRef {
        slot: name.into(),
        activation: ActivationKey {
            activated_count: n,
            ..Default::default()
        },
        version: Some(format!("{n}.0")),
    }
}

fn trial_facts() -> BootFacts {
    BootFacts {
        family: BackendFamily::Grub,
        booted: slot("B", 1),
        boot_id: "boot-1".into(),
        state: SlotState::Bad,
        attempts_left: Some(0),
        armed: None,
    }
}

fn base_state() -> GateState {
    GateState {
        committed: Some(slot("A", 0)),
        ..GateState::new()
    }
}

fn done(name: &str, verdict: Verdict, at: u64) -> Input {
    Input::CheckDone {
        name: name.into(),
        verdict,
        detail: Some(format!("{name} said {}", verdict.as_str())),
        duration: Duration::from_millis(5),
        now: now(at),
    }
}

fn runs(actions: &[Action]) -> Vec<&str> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::RunCheck(n) => Some(n.as_str()),
            _ => None,
        })
        .collect()
}

fn kinds(actions: &[Action]) -> Vec<&'static str> {
    actions
        .iter()
        .map(|a| match a {
            Action::RunCheck(_) => "run",
            Action::PersistState(_) => "persist",
            Action::Commit { .. } => "commit",
            Action::Rearm { .. } => "rearm",
            Action::MarkBad { .. } => "mark-bad",
            Action::MarkBadAndReboot { .. } => "mark-bad-reboot",
            Action::AppendRecord(_) => "record",
        })
        .collect()
}

fn record_of(actions: &[Action]) -> &HealthRecord {
    actions
        .iter()
        .find_map(|a| match a {
            Action::AppendRecord(r) => Some(r),
            _ => None,
        })
        .expect("a record")
}

#[test]
fn a_trial_persists_its_start_then_runs_every_check() {
    let (gate, actions) = Gate::begin(
        plan(&[("a", true), ("b", false)]),
        &trial_facts(),
        base_state(),
        now(500),
    );
    assert_eq!(kinds(&actions), ["persist", "run", "run"]);
    let Action::PersistState(st) = &actions[0] else {
        unreachable!()
    };
    let t = st.trial.as_ref().unwrap();
    assert_eq!(
        (t.slot.slot.as_str(), t.started_uptime_ms, t.boots),
        ("B", 500, 1)
    );
    assert!(t.decision.is_none());
    let Gate::ExpectResults(e) = gate else {
        panic!()
    };
    assert_eq!(e.deadline_at(), Duration::from_millis(10_500));
}

#[test]
fn commits_when_all_required_pass_together_with_ordered_actions() {
    let (g, _) = Gate::begin(
        plan(&[("a", true), ("b", true), ("opt", false)]),
        &trial_facts(),
        base_state(),
        now(0),
    );
    let (g, a) = g.handle(done("a", Verdict::Pass, 100));
    assert!(a.is_empty());
    let (g, _) = g.handle(done("opt", Verdict::Fail, 150));
    let (g, a) = g.handle(done("b", Verdict::Pass, 200));
    assert_eq!(g, Gate::Done(Outcome::Committed));
    assert_eq!(kinds(&a), ["persist", "commit", "record", "persist"]);
    let Action::PersistState(decided) = &a[0] else {
        unreachable!()
    };
    assert_eq!(
        decided.trial.as_ref().unwrap().decision,
        Some(Decision::Commit)
    );
    let Action::PersistState(closed) = &a[3] else {
        unreachable!()
    };
    assert_eq!(closed.committed, Some(slot("B", 1)));
    assert!(closed.trial.is_none());
    let r = record_of(&a);
    assert_eq!(r.result, RecordResult::Committed);
    assert_eq!((r.slot.as_str(), r.version.as_deref()), ("B", Some("1.0")));
    assert_eq!(r.checks.len(), 3);
    assert_eq!(
        r.checks[2].result,
        Some(Verdict::Fail),
        "optional failures are reported"
    );
    assert_eq!(r.decision_id, "boot-1/B/committed");
}

#[test]
fn a_check_that_passed_and_now_fails_un_passes() {
    let (g, _) = Gate::begin(
        plan(&[("a", true), ("b", true)]),
        &trial_facts(),
        base_state(),
        now(0),
    );
    let (g, _) = g.handle(done("a", Verdict::Pass, 100));
    let (g, _) = g.handle(done("b", Verdict::Fail, 100));
    // Both are due again after the interval; a fails now, b passes: still no commit.
    let (g, a) = g.handle(Input::Tick(now(1_100)));
    assert_eq!(runs(&a), ["a", "b"]);
    let (g, _) = g.handle(done("a", Verdict::Fail, 1_200));
    let (g, a) = g.handle(done("b", Verdict::Pass, 1_200));
    assert!(matches!(g, Gate::ExpectResults(_)), "a un-passed: {a:?}");
    let (g, a) = g.handle(Input::Tick(now(2_200)));
    assert_eq!(runs(&a), ["a", "b"]);
    let (g, _) = g.handle(done("a", Verdict::Pass, 2_300));
    assert_eq!(g, Gate::Done(Outcome::Committed));
}

#[test]
fn a_required_fatal_result_fails_at_once_an_optional_one_does_not() {
    let (g, _) = Gate::begin(
        plan(&[("unit", true), ("opt", false)]),
        &trial_facts(),
        base_state(),
        now(0),
    );
    let (g, a) = g.handle(done("opt", Verdict::Fatal, 10));
    assert!(a.is_empty());
    let (g, a) = g.handle(done("unit", Verdict::Fatal, 20));
    let Gate::Done(Outcome::Failed { reason }) = g else {
        panic!("{g:?}")
    };
    assert!(reason.contains("unit failed for good"), "{reason}");
    assert_eq!(kinds(&a), ["persist", "record", "mark-bad-reboot"]);
    let Action::PersistState(st) = &a[0] else {
        unreachable!()
    };
    assert!(matches!(
        st.trial.as_ref().unwrap().decision,
        Some(Decision::Fail { .. })
    ));
    assert_eq!(record_of(&a).result, RecordResult::Failed);
}

#[test]
fn failures_are_retried_until_the_deadline() {
    let (g, _) = Gate::begin(
        plan(&[("a", true), ("b", true)]),
        &trial_facts(),
        base_state(),
        now(0),
    );
    let (g, _) = g.handle(done("a", Verdict::Fail, 100));
    let Gate::ExpectResults(e) = &g else { panic!() };
    assert_eq!(e.next_wakeup(), Duration::from_millis(1_100));
    let (g, a) = g.handle(Input::Tick(now(9_999)));
    assert_eq!(runs(&a), ["a"], "b is still running");
    let (g, a) = g.handle(Input::Tick(now(10_000)));
    let Gate::Done(Outcome::Failed { reason }) = g else {
        panic!("{g:?}")
    };
    assert!(reason.contains("deadline of 10s passed"), "{reason}");
    assert!(reason.contains("b (never finished)"), "{reason}");
    assert_eq!(kinds(&a), ["persist", "record", "mark-bad-reboot"]);
}

#[test]
fn a_restart_in_the_same_boot_keeps_the_deadline() {
    let (_, a) = Gate::begin(
        plan(&[("a", true)]),
        &trial_facts(),
        base_state(),
        now(1_000),
    );
    let Action::PersistState(st) = a[0].clone() else {
        panic!()
    };
    // kill -9; the agent restarts 4 s later in the same boot.
    let (g, a) = Gate::begin(plan(&[("a", true)]), &trial_facts(), *st, now(5_000));
    assert_eq!(kinds(&a), ["run"], "no new start is written");
    let Gate::ExpectResults(e) = g else { panic!() };
    assert_eq!(e.deadline_at(), Duration::from_millis(11_000));
}

#[test]
fn a_decided_commit_is_finished_after_a_kill() {
    let (g, _) = Gate::begin(plan(&[("a", true)]), &trial_facts(), base_state(), now(0));
    let (_, a) = g.handle(done("a", Verdict::Pass, 10));
    let Action::PersistState(decided) = a[0].clone() else {
        panic!()
    };
    // kill -9 right after the decision was written.
    let (g, a2) = Gate::begin(plan(&[("a", true)]), &trial_facts(), *decided, now(20));
    assert_eq!(g, Gate::Done(Outcome::Committed));
    assert_eq!(kinds(&a2), ["commit", "record", "persist"]);
    assert_eq!(
        record_of(&a2).decision_id,
        record_of(&a).decision_id,
        "same decision id"
    );
    assert_eq!(
        record_of(&a2).checks,
        record_of(&a).checks,
        "check results survive"
    );
}

#[test]
fn no_required_checks_commits_at_once() {
    let (g, a) = Gate::begin(
        plan(&[("opt", false)]),
        &trial_facts(),
        base_state(),
        now(0),
    );
    assert_eq!(g, Gate::Done(Outcome::Committed));
    assert_eq!(
        kinds(&a),
        ["persist", "persist", "commit", "record", "persist"]
    );
}

#[test]
fn the_old_slot_records_the_rollback_then_rearms() {
    let (g, _) = Gate::begin(plan(&[("a", true)]), &trial_facts(), base_state(), now(0));
    let (_, a) = g.handle(done("a", Verdict::Fatal, 10));
    let Action::PersistState(decided) = a[0].clone() else {
        panic!()
    };
    let old = BootFacts {
        booted: slot("A", 0),
        boot_id: "boot-2".into(),
        ..trial_facts()
    };
    let (g, a) = Gate::begin(plan(&[("a", true)]), &old, *decided, now(0));
    assert_eq!(g, Gate::Done(Outcome::NotATrial));
    assert_eq!(kinds(&a), ["mark-bad", "record", "persist", "rearm"]);
    assert_eq!(a[0], Action::MarkBad { slot: "B".into() });
    let r = record_of(&a);
    assert_eq!(
        (r.result, r.slot.as_str(), r.booted_slot.as_str()),
        (RecordResult::RolledBack, "B", "A")
    );
    assert!(r.reason.as_deref().unwrap().contains("a failed for good"));
    let Action::PersistState(st) = &a[2] else {
        unreachable!()
    };
    assert!(st.trial.is_none());
    assert_eq!(st.committed, Some(slot("A", 0)));
    assert_eq!(st.last.as_ref().unwrap().result, RecordResult::RolledBack);
}

#[test]
fn wall_clock_is_only_informational() {
    let mut n = now(0);
    n.wall = SystemTime::UNIX_EPOCH;
    let (g, _) = Gate::begin(plan(&[("a", true)]), &trial_facts(), base_state(), n);
    let Gate::ExpectResults(e) = g else { panic!() };
    assert_eq!(e.deadline_at(), Duration::from_millis(10_000));
}

#[test]
fn a_decision_finished_again_after_a_kill_repeats_the_identical_record() {
    let record = |a: &[Action]| {
        a.iter()
            .find_map(|a| match a {
                Action::AppendRecord(r) => Some(r.clone()),
                _ => None,
            })
            .unwrap()
    };
    for verdict in [Verdict::Pass, Verdict::Fatal] {
        let (g, _) = Gate::begin(plan(&[("a", true)]), &trial_facts(), base_state(), now(0));
        let (_, a) = g.handle(done("a", verdict, 10));
        let Action::PersistState(decided) = a[0].clone() else {
            panic!("{a:?}")
        };
        let first = record(&a);
        // kill -9 after the decision was written; the agent restarts 3 s later.
        let (_, again) = Gate::begin(plan(&[("a", true)]), &trial_facts(), *decided, now(3_010));
        assert_eq!(
            record(&again),
            first,
            "{verdict:?}: the outbox stores it once"
        );
    }
}

#[test]
fn a_slot_that_never_reached_its_agent_is_recorded_marked_bad_and_the_old_slot_adopted() {
    // B was armed in boot-1; its kernel or init never got to the agent, GRUB fell back to A.
    let facts = BootFacts {
        booted: slot("A", 0),
        boot_id: "boot-3".into(),
        armed: Some(crate::armed::Armed::new(
            slot("B", 4),
            "boot-1".into(),
            "2026-11-22T10:00:00Z".into(),
        )),
        ..trial_facts()
    };
    let (g, a) = Gate::begin(plan(&[("a", true)]), &facts, base_state(), now(0));
    assert_eq!(g, Gate::Done(Outcome::NotATrial));
    assert_eq!(kinds(&a), ["mark-bad", "record", "persist", "rearm"]);
    assert_eq!(a[0], Action::MarkBad { slot: "B".into() });
    let r = record_of(&a);
    assert_eq!(
        (r.result, r.slot.as_str(), r.booted_slot.as_str(), r.boots),
        (RecordResult::RolledBack, "B", "A", 0)
    );
    assert_eq!(r.version.as_deref(), Some("4.0"));
    assert_eq!(r.decision_id, "boot-3/B/rolled-back");
    assert_eq!(r.started_at.as_deref(), Some("2026-11-22T10:00:00Z"));
    assert!(r.reason.as_deref().unwrap().contains("started its agent"));
    let Action::PersistState(st) = &a[2] else {
        unreachable!()
    };
    assert!(st.trial.is_none());
    assert_eq!(st.committed, Some(slot("A", 0)));
    assert_eq!(st.last.as_ref().unwrap().result, RecordResult::RolledBack);
    assert_eq!(st.last.as_ref().unwrap().slot, "B");
}

use super::*;
use crate::armed::Armed;
use crate::state_file::ActivationKey;

fn slot(name: &str, activated: u64) -> SlotRef {
    SlotRef {
        slot: name.into(),
        activation: ActivationKey {
            activated_count: activated,
            ..Default::default()
        },
        version: Some(format!("v{activated}")),
    }
}

fn facts(family: BackendFamily, booted: SlotRef, state: SlotState, left: Option<u32>) -> BootFacts {
    BootFacts {
        family,
        booted,
        boot_id: "boot-2".into(),
        state,
        attempts_left: left,
        armed: None,
    }
}

fn trial(s: SlotRef, boot: &str, decision: Option<Decision>) -> TrialState {
    TrialState {
        decided_at: None,
        slot: s,
        boot_id: boot.into(),
        boots: 1,
        started_uptime_ms: 1000,
        started_at: "t".into(),
        decision,
        checks: vec![],
    }
}

fn committed(s: SlotRef) -> GateState {
    GateState {
        committed: Some(s),
        ..GateState::new()
    }
}

#[test]
fn counting_backends_use_the_commit_record() {
    for fam in [
        BackendFamily::Grub,
        BackendFamily::Uboot,
        BackendFamily::Custom,
    ] {
        // GRUB reads the booted slot Bad on every boot (it set _TRY=1).
        let f = facts(fam, slot("B", 1), SlotState::Bad, Some(0));
        assert_eq!(
            assess(&f, &committed(slot("B", 1))),
            Assessment::NotATrial {
                slot: slot("B", 1),
                rearm: true
            },
            "{fam:?}"
        );
        assert!(matches!(
            assess(&f, &committed(slot("A", 0))),
            Assessment::Trial {
                boots: 1,
                resume_from_ms: None,
                ..
            }
        ));
        // B was installed again (new activation) since its commit: a new trial.
        let f2 = facts(fam, slot("B", 2), SlotState::Bad, Some(0));
        assert!(matches!(
            assess(&f2, &committed(slot("B", 1))),
            Assessment::Trial { .. }
        ));
    }
}

#[test]
fn a_factory_image_without_history_is_adopted() {
    let f = facts(BackendFamily::Uboot, slot("A", 0), SlotState::Good, Some(2));
    assert!(matches!(
        assess(&f, &GateState::new()),
        Assessment::NotATrial { .. }
    ));
    // ...but a slot central.raucs saw installed is checked.
    let f = facts(BackendFamily::Uboot, slot("B", 1), SlotState::Good, Some(2));
    assert!(matches!(
        assess(&f, &GateState::new()),
        Assessment::Trial { .. }
    ));
    // GRUB: Good while booted = marked good in this boot by someone else.
    let f = facts(BackendFamily::Grub, slot("B", 1), SlotState::Good, Some(1));
    assert!(matches!(
        assess(&f, &GateState::new()),
        Assessment::NotATrial { rearm: true, .. }
    ));
}

#[test]
fn self_describing_backends_trust_the_bootloader() {
    let rpi_trial = facts(
        BackendFamily::RpiTryboot,
        slot("B", 1),
        SlotState::Bad,
        Some(1),
    );
    assert!(matches!(
        assess(&rpi_trial, &committed(slot("B", 1))),
        Assessment::Trial { .. }
    ));
    let rpi_default = facts(
        BackendFamily::RpiTryboot,
        slot("B", 1),
        SlotState::Good,
        None,
    );
    assert_eq!(
        assess(&rpi_default, &GateState::new()),
        Assessment::NotATrial {
            slot: slot("B", 1),
            rearm: false
        }
    );
    let sd_counting = facts(
        BackendFamily::SystemdBoot,
        slot("B", 1),
        SlotState::Bad,
        Some(0),
    );
    assert!(matches!(
        assess(&sd_counting, &GateState::new()),
        Assessment::Trial { .. }
    ));
    let sd_blessed = facts(
        BackendFamily::SystemdBoot,
        slot("B", 1),
        SlotState::Good,
        None,
    );
    assert!(matches!(
        assess(&sd_blessed, &GateState::new()),
        Assessment::NotATrial { .. }
    ));
}

#[test]
fn an_open_trial_resumes_in_the_same_boot_and_counts_boots_across_reboots() {
    let f = facts(BackendFamily::Uboot, slot("B", 1), SlotState::Good, Some(2));
    let mut st = committed(slot("A", 0));
    st.trial = Some(trial(slot("B", 1), "boot-2", None));
    assert_eq!(
        assess(&f, &st),
        Assessment::Trial {
            slot: slot("B", 1),
            boots: 1,
            resume_from_ms: Some(1000)
        }
    );
    st.trial = Some(trial(slot("B", 1), "boot-1", None));
    assert_eq!(
        assess(&f, &st),
        Assessment::Trial {
            slot: slot("B", 1),
            boots: 2,
            resume_from_ms: None
        }
    );
}

#[test]
fn written_decisions_are_finished_never_reversed() {
    let f = facts(BackendFamily::Grub, slot("B", 1), SlotState::Bad, Some(0));
    let mut st = committed(slot("A", 0));
    st.trial = Some(trial(slot("B", 1), "boot-2", Some(Decision::Commit)));
    assert!(matches!(
        assess(&f, &st),
        Assessment::AfterCommittedTrial { .. }
    ));
    let fail = Some(Decision::Fail {
        reason: "k3s failed".into(),
    });
    st.trial = Some(trial(slot("B", 1), "boot-2", fail.clone()));
    assert!(matches!(assess(&f, &st), Assessment::FailingTrial { .. }));
    // Marked bad, rebooted, and still booted B: no commit, no reboot loop.
    st.trial = Some(trial(slot("B", 1), "boot-1", fail));
    assert!(matches!(assess(&f, &st), Assessment::BootedBadSlot { .. }));
}

#[test]
fn the_old_slot_running_means_the_trial_failed() {
    let f = facts(BackendFamily::Grub, slot("A", 0), SlotState::Bad, Some(0));
    let mut st = committed(slot("A", 0));
    st.trial = Some(trial(
        slot("B", 1),
        "boot-1",
        Some(Decision::Fail {
            reason: "deadline".into(),
        }),
    ));
    assert_eq!(
        assess(&f, &st),
        Assessment::AfterFailedTrial {
            failed: slot("B", 1),
            reason: "deadline".into()
        }
    );
    st.trial = Some(trial(slot("B", 1), "boot-1", None));
    match assess(&f, &st) {
        Assessment::AfterFailedTrial { reason, .. } => {
            assert!(reason.contains("without a verdict"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

fn armed(s: SlotRef, boot: &str) -> Armed {
    Armed::new(s, boot.into(), "2026-11-22T10:00:00Z".into())
}

#[test]
fn an_armed_slot_that_never_opened_its_trial_failed_before_its_agent() {
    for fam in [BackendFamily::Grub, BackendFamily::SystemdBoot] {
        // Armed in boot-1, boot-2 runs A again, and no trial of B's install is on record.
        let mut f = facts(fam, slot("A", 0), SlotState::Good, None);
        f.armed = Some(armed(slot("B", 4), "boot-1"));
        match assess(&f, &committed(slot("A", 0))) {
            Assessment::NeverReachedAgent { armed: a, reason } => {
                assert_eq!(a.slot, slot("B", 4));
                assert!(
                    reason.contains("before slot B (version v4) started its agent"),
                    "{reason}"
                );
            }
            other => panic!("{fam:?}: {other:?}"),
        }
    }
}

#[test]
fn an_armed_note_is_not_a_failure_before_the_reboot_or_once_its_agent_ran() {
    let base = facts(BackendFamily::Grub, slot("A", 0), SlotState::Good, None);
    let not_never = |f: &BootFacts, st: &GateState| {
        !matches!(assess(f, st), Assessment::NeverReachedAgent { .. })
    };
    // Same boot as the arming: the reboot is still to come.
    let f = BootFacts {
        armed: Some(armed(slot("B", 4), "boot-2")),
        ..base.clone()
    };
    assert!(not_never(&f, &committed(slot("A", 0))));
    // The armed slot is the booted one (GRUB set B_TRY=1): its own gate runs (a trial).
    let f = BootFacts {
        booted: slot("B", 4),
        state: SlotState::Bad,
        attempts_left: Some(0),
        armed: Some(armed(slot("B", 4), "boot-1")),
        ..base.clone()
    };
    assert!(matches!(
        assess(&f, &committed(slot("A", 0))),
        Assessment::Trial { .. }
    ));
    // B's agent ran and committed this install; A runs again later (e.g. a manual switch).
    let f = BootFacts {
        armed: Some(armed(slot("B", 4), "boot-1")),
        ..base.clone()
    };
    assert!(not_never(&f, &committed(slot("B", 4))));
    // B's agent opened the trial (its note removal was cut by a kill): the trial tells it.
    let mut st = committed(slot("A", 0));
    st.trial = Some(trial(slot("B", 4), "boot-1", None));
    assert!(matches!(
        assess(&f, &st),
        Assessment::AfterFailedTrial { .. }
    ));
    // An older install of B was committed; the armed one is another (newer activation).
    let f = BootFacts {
        armed: Some(armed(slot("B", 5), "boot-1")),
        ..base
    };
    assert!(!not_never(&f, &committed(slot("B", 4))));
}

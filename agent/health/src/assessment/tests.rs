use super::*;
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

//! The reboot simulator: install, reboot into the trial, run the gate, reboot again into
//! whatever the bootloader picks, for every backend.

use std::time::Duration;

use outpost_boot::SlotState;
use outpost_health::{Outcome, RecordResult, Verdict};

use crate::sim::{config, Device, Kind, ALL};

fn results(d: &Device) -> Vec<(RecordResult, String)> {
    d.records()
        .iter()
        .map(|r| (r.result, r.slot.clone()))
        .collect()
}

#[tokio::test]
async fn a_good_update_is_committed_and_stays() {
    for kind in ALL {
        let mut d = Device::new(kind);
        let cfg = config("");
        assert_eq!(
            d.run_agent(&cfg).await.unwrap(),
            Outcome::NotATrial,
            "{kind:?} factory A"
        );
        d.install("B", "2.0");
        d.reboot();
        assert_eq!(d.booted.as_str(), "B", "{kind:?}");
        assert_eq!(
            d.run_agent(&cfg).await.unwrap(),
            Outcome::Committed,
            "{kind:?}"
        );
        assert_eq!(d.state_of("B"), SlotState::Good, "{kind:?}");
        assert_eq!(d.reboot_requests(), 0);
        let st = d.gate_state();
        assert_eq!(st.committed.as_ref().map(|c| c.slot.as_str()), Some("B"));
        assert!(st.trial.is_none());
        let recs = d.records();
        assert_eq!(
            results(&d),
            [(RecordResult::Committed, "B".into())],
            "{kind:?}"
        );
        assert_eq!(recs[0].version.as_deref(), Some("2.0"));
        assert!(recs[0]
            .checks
            .iter()
            .filter(|c| c.required)
            .all(|c| c.result == Some(Verdict::Pass)));
        // Routine boots keep B: counting backends are re-armed on every boot (U-Boot would
        // fall back after 3 boots otherwise).
        for _ in 0..4 {
            d.reboot();
            assert_eq!(d.booted.as_str(), "B", "{kind:?}");
            assert_eq!(
                d.run_agent(&cfg).await.unwrap(),
                Outcome::NotATrial,
                "{kind:?}"
            );
        }
        assert_eq!(d.records().len(), 1, "no records for routine boots");
    }
}

#[tokio::test]
async fn a_failing_check_marks_bad_reboots_and_the_old_slot_records_why() {
    for kind in ALL {
        let mut d = Device::new(kind);
        let cfg = config("");
        d.run_agent(&cfg).await.unwrap();
        d.install("B", "2.0");
        d.reboot();
        assert_eq!(d.booted.as_str(), "B");
        d.units.set("app.service", "failed", "failed");
        let out = d.run_agent(&cfg).await.unwrap();
        assert!(
            matches!(&out, Outcome::Failed { reason } if reason.contains("app failed for good")),
            "{kind:?} {out:?}"
        );
        assert_eq!(d.reboot_requests(), 1, "{kind:?}");
        assert_eq!(d.state_of("B"), SlotState::Bad, "{kind:?}");
        // The reboot logind was asked for: the bootloader falls back.
        d.units.set("app.service", "active", "running");
        d.reboot();
        assert_eq!(d.booted.as_str(), "A", "{kind:?}");
        assert_eq!(
            d.run_agent(&cfg).await.unwrap(),
            Outcome::NotATrial,
            "{kind:?}"
        );
        assert_eq!(
            results(&d),
            [
                (RecordResult::Failed, "B".into()),
                (RecordResult::RolledBack, "B".into())
            ],
            "{kind:?}"
        );
        let rb = &d.records()[1];
        assert_eq!(rb.booted_slot, "A");
        assert!(
            rb.reason
                .as_deref()
                .unwrap()
                .contains("app failed for good"),
            "{rb:?}"
        );
        let st = d.gate_state();
        assert_eq!(st.committed.as_ref().map(|c| c.slot.as_str()), Some("A"));
        assert!(st.trial.is_none());
        assert_eq!(
            st.last.as_ref().map(|l| l.result),
            Some(RecordResult::RolledBack)
        );
        // And it stays on A.
        d.reboot();
        assert_eq!(d.booted.as_str(), "A", "{kind:?}");
        assert_eq!(d.run_agent(&cfg).await.unwrap(), Outcome::NotATrial);
        assert_eq!(d.records().len(), 2);
    }
}

#[tokio::test]
async fn an_agent_crash_loop_exhausts_the_attempts_and_the_old_slot_runs() {
    for kind in ALL {
        let mut d = Device::new(kind);
        let cfg = config("");
        d.run_agent(&cfg).await.unwrap();
        d.install("B", "2.0");
        // The unit never comes up and the agent dies (a hang + watchdog reset) every boot
        // before the deadline.
        d.units.set("app.service", "activating", "start");
        let mut boots_of_b = 0;
        d.reboot();
        while d.booted.as_str() == "B" {
            boots_of_b += 1;
            assert!(boots_of_b <= 5, "{kind:?} never fell back");
            let crashed = tokio::time::timeout(Duration::from_millis(60), d.run_agent(&cfg)).await;
            assert!(crashed.is_err(), "{kind:?}: the gate must still be running");
            d.reboot();
        }
        let expected = match kind {
            Kind::Grub | Kind::Rpi => 1,
            Kind::Uboot | Kind::SdBoot => 3,
        };
        assert_eq!(boots_of_b, expected, "{kind:?}");
        assert_eq!(d.reboot_requests(), 0, "nobody asked for these reboots");
        d.units.set("app.service", "active", "running");
        assert_eq!(
            d.run_agent(&cfg).await.unwrap(),
            Outcome::NotATrial,
            "{kind:?}"
        );
        let recs = d.records();
        assert_eq!(recs.len(), 1, "{kind:?} {recs:?}");
        assert_eq!(
            (recs[0].result, recs[0].slot.as_str()),
            (RecordResult::RolledBack, "B")
        );
        assert_eq!(recs[0].boots, expected, "{kind:?}");
        assert!(recs[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("without a verdict"));
        assert_eq!(d.state_of("B"), SlotState::Bad, "{kind:?}");
        d.reboot();
        assert_eq!(d.booted.as_str(), "A", "{kind:?}");
    }
}

#[tokio::test]
async fn an_offline_device_commits_unless_uploads_are_required() {
    for kind in [Kind::Grub, Kind::Uboot] {
        let mut d = Device::new(kind);
        d.uploaded = false;
        d.run_agent(&config("")).await.unwrap();
        d.install("B", "2.0");
        d.reboot();
        assert_eq!(
            d.run_agent(&config("")).await.unwrap(),
            Outcome::Committed,
            "{kind:?}"
        );

        // Opting in to "uploaded at least once" keeps an offline device from committing.
        let strict = config(
            "[[health.checks]]\nname = \"hub\"\nkind = \"builtin\"\nbuiltin = \"uploaded-once\"\n",
        )
        .with_deadline(Duration::from_millis(300));
        let mut d = Device::new(kind);
        d.run_agent(&strict).await.unwrap();
        d.install("B", "2.0");
        d.reboot();
        let out = d.run_agent(&strict).await.unwrap();
        assert!(
            matches!(&out, Outcome::Failed { reason } if reason.contains("hub (fail: no upload acknowledged yet)")),
            "{out:?}"
        );
    }
}

#[tokio::test]
async fn a_restarted_agent_resumes_the_trial_with_its_deadline() {
    let mut d = Device::new(Kind::Grub);
    let cfg = config("").with_deadline(Duration::from_millis(400));
    d.run_agent(&cfg).await.unwrap();
    d.install("B", "2.0");
    d.reboot();
    d.units.set("app.service", "activating", "start");
    let _ = tokio::time::timeout(Duration::from_millis(250), d.run_agent(&cfg)).await;
    // Restarted in the same boot: the deadline is the first start's, so it ends soon.
    let t0 = std::time::Instant::now();
    let out = d.run_agent(&cfg).await.unwrap();
    assert!(matches!(out, Outcome::Failed { .. }), "{out:?}");
    assert!(
        t0.elapsed() < Duration::from_millis(350),
        "{:?}",
        t0.elapsed()
    );
}

#[tokio::test]
async fn the_status_after_a_verdict_shows_the_run_that_decided_it() {
    let mut d = Device::new(Kind::Grub);
    let cfg = config("");
    d.run_agent(&cfg).await.unwrap();
    d.install("B", "2.0");
    d.reboot();
    d.units.set("app.service", "failed", "failed");
    let driver = d.driver(&cfg);
    let status = driver.status();
    let out = driver.run(d.context()).await.unwrap();
    assert!(matches!(out, Outcome::Failed { .. }), "{out:?}");
    let st = status.borrow().clone();
    assert_eq!(st.phase, outpost_health::status::Phase::Failed);
    let app = st.checks.iter().find(|c| c.name == "app").unwrap();
    assert_eq!(app.result, Some(Verdict::Fatal), "{st:?}");
    assert!(app.runs >= 1);
    assert!(app.detail.as_deref().unwrap().contains("failed"), "{app:?}");
}

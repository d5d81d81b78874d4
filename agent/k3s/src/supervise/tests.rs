use std::path::PathBuf;

use super::*;

const T0: u64 = 1_800_000_000;

fn now(secs: u64) -> Now {
    Now {
        mono: Duration::from_secs(secs),
        wall: SystemTime::UNIX_EPOCH + Duration::from_secs(T0 + secs),
    }
}

fn obs(unit: UnitActivity) -> Observation {
    Observation {
        unit,
        readyz: Some(unit == UnitActivity::Active),
        node_ready: Some(unit == UnitActivity::Active),
        earliest_cert: Some(Due {
            earliest_cert: PathBuf::from("client-admin.crt"),
            expires: SystemTime::UNIX_EPOCH + Duration::from_secs(T0 + 300 * 86400),
        }),
        quiet: true,
        error: None,
    }
}

fn expiring(mut o: Observation, quiet: bool) -> Observation {
    o.earliest_cert = Some(Due {
        earliest_cert: PathBuf::from("serving-kube-apiserver.crt"),
        expires: SystemTime::UNIX_EPOCH + Duration::from_secs(T0 + 10 * 86400),
    });
    o.quiet = quiet;
    o
}

fn done(s: &mut Supervisor, action: Action, t: u64) -> Vec<Action> {
    s.handle(Input::Done {
        action,
        result: Ok(()),
        now: now(t),
    })
}

fn see(s: &mut Supervisor, o: Observation, t: u64) -> Vec<Action> {
    s.handle(Input::Observed(o, now(t)))
}

#[test]
fn states_map_from_systemd() {
    assert_eq!(
        UnitActivity::from_active_state("failed"),
        UnitActivity::Failed
    );
    assert_eq!(
        UnitActivity::from_active_state("maintenance"),
        UnitActivity::Unknown
    );
}

#[test]
fn healthy_k3s_is_left_alone() {
    let mut s = Supervisor::new(Policy::default());
    for t in 0..20 {
        assert!(see(&mut s, obs(UnitActivity::Active), t * 5).is_empty());
    }
    assert_eq!(s.status().restarts, 0);
    assert_eq!(s.status().ready, Some(true));
}

#[test]
fn inactive_is_started_failed_is_restarted_with_exponential_backoff() {
    let mut s = Supervisor::new(Policy::default());
    assert_eq!(
        see(&mut s, obs(UnitActivity::Inactive), 0),
        [Action::StartUnit]
    );
    // One action at a time.
    assert!(see(&mut s, obs(UnitActivity::Inactive), 1).is_empty());
    assert!(done(&mut s, Action::StartUnit, 1).is_empty());
    // It failed: the next attempt waits 5 s after the first, then 10, 20, ... up to 300.
    let mut t = 1;
    let mut attempt_at = 0;
    for wait in [5u64, 10, 20, 40, 80, 160, 300, 300] {
        while t < attempt_at + wait {
            assert!(
                see(&mut s, obs(UnitActivity::Failed), t).is_empty(),
                "t={t}"
            );
            t += 1;
        }
        assert_eq!(
            see(&mut s, obs(UnitActivity::Failed), t),
            [Action::RestartUnit],
            "t={t}"
        );
        assert!(done(&mut s, Action::RestartUnit, t).is_empty());
        attempt_at = t;
        t += 1;
    }
    assert_eq!(s.status().restarts, 9);
    assert_eq!(s.status().consecutive_restarts, 9);
    assert!(s.status().last_restart.is_some());
}

#[test]
fn ten_minutes_of_health_reset_the_backoff() {
    let mut s = Supervisor::new(Policy::default());
    for (t, a) in [
        (0, Action::RestartUnit),
        (5, Action::RestartUnit),
        (15, Action::RestartUnit),
    ] {
        assert_eq!(see(&mut s, obs(UnitActivity::Failed), t), [a]);
        done(&mut s, a, t);
    }
    // Healthy from 20 s on, but it fails at 500 s (< 10 min): still backing off (40 s).
    see(&mut s, obs(UnitActivity::Active), 20);
    assert!(see(&mut s, obs(UnitActivity::Active), 500).is_empty());
    see(&mut s, obs(UnitActivity::Failed), 501);
    assert_eq!(s.status().consecutive_restarts, 4);
    done(&mut s, Action::RestartUnit, 501);
    // Active but /readyz failing is not health.
    let mut not_ready = obs(UnitActivity::Active);
    not_ready.readyz = Some(false);
    see(&mut s, not_ready, 510);
    see(&mut s, obs(UnitActivity::Active), 520);
    see(&mut s, obs(UnitActivity::Active), 1119);
    assert_eq!(s.status().consecutive_restarts, 4);
    see(&mut s, obs(UnitActivity::Active), 1120);
    assert_eq!(s.status().consecutive_restarts, 0);
    assert_eq!(s.next_attempt(), None);
    // The next failure is restarted at once, then 5 s later.
    assert_eq!(
        see(&mut s, obs(UnitActivity::Failed), 1121),
        [Action::RestartUnit]
    );
    done(&mut s, Action::RestartUnit, 1121);
    assert!(see(&mut s, obs(UnitActivity::Failed), 1125).is_empty());
    assert_eq!(
        see(&mut s, obs(UnitActivity::Failed), 1126),
        [Action::RestartUnit]
    );
}

#[test]
fn rotation_waits_for_quiet_then_stops_rotates_starts() {
    let mut s = Supervisor::new(Policy::default());
    assert!(see(&mut s, expiring(obs(UnitActivity::Active), false), 0).is_empty());
    assert!(see(&mut s, expiring(obs(UnitActivity::Active), false), 60).is_empty());
    assert_eq!(
        s.status().cert_earliest,
        Some(PathBuf::from("serving-kube-apiserver.crt"))
    );
    assert_eq!(
        see(&mut s, expiring(obs(UnitActivity::Active), true), 120),
        [Action::StopUnit]
    );
    assert!(s.status().rotating);
    // K3s is down on purpose: no restart while rotating.
    assert!(see(&mut s, expiring(obs(UnitActivity::Inactive), true), 121).is_empty());
    assert_eq!(
        done(&mut s, Action::StopUnit, 122),
        [Action::RotateCertificates]
    );
    assert!(see(&mut s, expiring(obs(UnitActivity::Inactive), false), 123).is_empty());
    assert_eq!(
        done(&mut s, Action::RotateCertificates, 130),
        [Action::StartUnit]
    );
    assert!(done(&mut s, Action::StartUnit, 131).is_empty());
    assert!(!s.status().rotating);
    assert_eq!(s.status().rotations, 1);
    assert_eq!(s.status().restarts, 0, "rotation is not a crash restart");
}

#[test]
fn rotation_at_most_once_a_day() {
    let mut s = Supervisor::new(Policy::default());
    let day = 24 * 3600;
    assert_eq!(
        see(&mut s, expiring(obs(UnitActivity::Active), true), 0),
        [Action::StopUnit]
    );
    done(&mut s, Action::StopUnit, 1);
    done(&mut s, Action::RotateCertificates, 2);
    done(&mut s, Action::StartUnit, 3);
    // Still expiring (the rotation did not help): not again within 24 h.
    assert!(see(&mut s, expiring(obs(UnitActivity::Active), true), 10).is_empty());
    assert!(see(&mut s, expiring(obs(UnitActivity::Active), true), day - 1).is_empty());
    assert_eq!(
        see(&mut s, expiring(obs(UnitActivity::Active), true), day),
        [Action::StopUnit]
    );
    assert_eq!(s.status().rotations, 2);
}

#[test]
fn failed_steps_still_bring_k3s_back() {
    let mut s = Supervisor::new(Policy::default());
    see(&mut s, expiring(obs(UnitActivity::Active), true), 0);
    let next = s.handle(Input::Done {
        action: Action::StopUnit,
        result: Err("Access denied".into()),
        now: now(1),
    });
    assert_eq!(
        next,
        [Action::StartUnit],
        "never rotate under a running K3s"
    );
    done(&mut s, Action::StartUnit, 2);
    assert_eq!(
        s.status().last_error.as_deref(),
        Some("stopping k3s: Access denied")
    );

    let mut s = Supervisor::new(Policy::default());
    see(&mut s, expiring(obs(UnitActivity::Active), true), 0);
    done(&mut s, Action::StopUnit, 1);
    let next = s.handle(Input::Done {
        action: Action::RotateCertificates,
        result: Err("exit status 1".into()),
        now: now(2),
    });
    assert_eq!(next, [Action::StartUnit]);
    // A report for an action that is not outstanding changes nothing.
    assert!(done(&mut s, Action::RestartUnit, 3).is_empty());
    assert_eq!(s.outstanding(), Some(Action::StartUnit));
}

#[test]
fn status_serializes_for_outpostctl() {
    let mut s = Supervisor::new(Policy::default());
    let mut o = obs(UnitActivity::Failed);
    o.error = Some("K3s is not running: connection to 127.0.0.1:6443 refused".into());
    see(&mut s, o, 0);
    let v = serde_json::to_value(s.status()).unwrap();
    assert_eq!(v["unit"], "failed");
    assert_eq!(v["restarts"], 1);
    assert_eq!(v["last_restart"], "2027-01-15T08:00:00Z");
    assert_eq!(v["cert_earliest_expiry"], "2027-11-11T08:00:00Z");
    assert_eq!(v["last_rotation"], serde_json::Value::Null);
    assert!(v["last_error"].as_str().unwrap().contains("not running"));
}

//! The production clients against a real dbus-daemon with the fake systemd1/login1 service.

use outpost_dbus::systemd::UnitControl;
use outpost_dbus::testing::{serve, unit_path, FakeState, TestBus};
use outpost_dbus::{connect, DbusLogind, DbusSystemd};
use outpost_health::record::Verdict;
use outpost_health::runner::systemd::{check_unit, Logind, SystemdClient};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unit_checks_and_reboot_over_a_real_bus() {
    let bus = TestBus::start().expect("dbus-daemon (apt-get install dbus)");
    let fake = FakeState::default();
    fake.set_unit("k3s.service", "active", "running");
    fake.set_unit("broken.service", "failed", "failed");
    fake.set_unit("slow.service", "activating", "start");
    let _service = serve(bus.address(), fake.clone()).await.unwrap();

    let conn = connect(Some(bus.address())).await.unwrap();
    let systemd = DbusSystemd::new(conn.clone());
    let st = SystemdClient::unit_state(&systemd, "k3s.service")
        .await
        .unwrap();
    assert_eq!(
        (
            st.load_state.as_str(),
            st.active_state.as_str(),
            st.sub_state.as_str()
        ),
        ("loaded", "active", "running")
    );

    let verdict = |unit: &'static str, fatal: bool| {
        let s = systemd.clone();
        async move { check_unit(&s, unit, fatal).await.verdict }
    };
    assert_eq!(verdict("k3s.service", true).await, Verdict::Pass);
    assert_eq!(verdict("broken.service", true).await, Verdict::Fatal);
    assert_eq!(verdict("broken.service", false).await, Verdict::Fail);
    assert_eq!(verdict("slow.service", true).await, Verdict::Fail);
    // GetUnit answers NoSuchUnit, LoadUnit a not-found unit: fatal (a typo will not heal).
    assert_eq!(verdict("missing.service", true).await, Verdict::Fatal);

    // States are read fresh: a unit that comes up is seen on the next run.
    fake.set_unit("slow.service", "active", "running");
    assert_eq!(verdict("slow.service", true).await, Verdict::Pass);
    fake.set_unit("k3s.service", "failed", "failed");
    assert_eq!(verdict("k3s.service", true).await, Verdict::Fatal);

    assert_eq!(fake.reboots(), 0);
    Logind::reboot(&DbusLogind::new(conn)).await.unwrap();
    assert_eq!(fake.reboots(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_service_on_the_bus_is_a_retryable_failure() {
    let bus = TestBus::start().unwrap();
    let conn = connect(Some(bus.address())).await.unwrap();
    let systemd = DbusSystemd::new(conn.clone());
    let r = check_unit(&systemd, "k3s.service", true).await;
    assert_eq!(r.verdict, Verdict::Fail, "{r:?}");
    assert!(Logind::reboot(&DbusLogind::new(conn)).await.is_err());
}

#[test]
fn unit_paths_are_escaped_like_systemd() {
    assert_eq!(
        unit_path("k3s.service"),
        "/org/freedesktop/systemd1/unit/k3s_2eservice"
    );
    assert_eq!(
        unit_path("a-b@1.service"),
        "/org/freedesktop/systemd1/unit/a_2db_401_2eservice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_stop_restart_over_a_real_bus() {
    let bus = TestBus::start().expect("dbus-daemon (apt-get install dbus)");
    let fake = FakeState::default();
    fake.set_unit("k3s.service", "inactive", "dead");
    let _service = serve(bus.address(), fake.clone()).await.unwrap();
    let systemd = DbusSystemd::new(connect(Some(bus.address())).await.unwrap());
    let state = |s: &DbusSystemd| {
        let s = s.clone();
        async move {
            let st = SystemdClient::unit_state(&s, "k3s.service").await.unwrap();
            (st.active_state, st.sub_state)
        }
    };

    SystemdClient::start_unit(&systemd, "k3s.service")
        .await
        .unwrap();
    assert_eq!(state(&systemd).await, ("active".into(), "running".into()));
    SystemdClient::stop_unit(&systemd, "k3s.service")
        .await
        .unwrap();
    assert_eq!(state(&systemd).await, ("inactive".into(), "dead".into()));
    // A unit that crashes at once: restart leaves it failed, as systemd would report it.
    fake.set_start_outcome("k3s.service", "failed", "failed");
    SystemdClient::restart_unit(&systemd, "k3s.service")
        .await
        .unwrap();
    assert_eq!(state(&systemd).await, ("failed".into(), "failed".into()));
    // The job path comes back from systemd1 (mode "replace", as systemctl uses).
    let job = systemd
        .control("k3s.service", UnitControl::Restart)
        .await
        .unwrap();
    assert!(
        job.as_str().starts_with("/org/freedesktop/systemd1/job/"),
        "{job:?}"
    );

    let err = SystemdClient::start_unit(&systemd, "missing.service")
        .await
        .unwrap_err();
    assert!(err.0.contains("NoSuchUnit"), "{err}");

    let calls: Vec<(&str, String, String)> = fake
        .calls()
        .into_iter()
        .map(|c| (c.method, c.unit, c.mode))
        .collect();
    let r = |m: &'static str, u: &str| (m, u.to_owned(), "replace".to_owned());
    assert_eq!(
        calls,
        [
            r("StartUnit", "k3s.service"),
            r("StopUnit", "k3s.service"),
            r("RestartUnit", "k3s.service"),
            r("RestartUnit", "k3s.service"),
            r("StartUnit", "missing.service"),
        ]
    );
}

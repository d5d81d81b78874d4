//! kill -9 of the agent during the gate, 30 times at random instants: a child process (this
//! test binary, re-executed) runs the driver on a GRUB device in a temp dir; the parent kills
//! it with SIGKILL, restarts it until it finishes, reboots the device if asked, and checks:
//! never two slots committed, never a committed slot whose checks failed.

use std::path::Path;
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::{Duration, Instant};

use outpost_boot::grub::GrubBackend;
use outpost_boot::grubenv::GrubEnv;
use outpost_boot::{Bootloader, SlotState};
use outpost_health::driver::{BootContext, Capabilities, Driver};
use outpost_health::runner::uptime::SystemClock;
use outpost_health::state_file::{ActivationKey, SlotRef};
use outpost_health::{BackendFamily, GateState, HealthConfig, RecordResult};
use rand::Rng;

use crate::fakes::{arc, read_records, Builtins, RebootFile, RecordFile, Units};
use crate::sim::s;

const CHILD_ENV: &str = "OUTPOST_HEALTH_KILL9_DIR";

fn backend(dir: &Path) -> GrubBackend {
    GrubBackend::new(dir.join("grubenv"), vec![s("A"), s("B")])
}

fn activation(slot: &str) -> ActivationKey {
    ActivationKey {
        activated_count: u64::from(slot == "B"),
        ..Default::default()
    }
}

/// The child: one agent start on the device in `$OUTPOST_HEALTH_KILL9_DIR`.
#[test]
fn kill9_child() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let dir = Path::new(&dir);
    let boot = std::fs::read_to_string(dir.join("boot")).unwrap();
    let (booted, boot_id) = boot.trim().split_once(' ').unwrap();
    let cfg: HealthConfig = {
        #[derive(serde::Deserialize)]
        struct Doc {
            health: HealthConfig,
        }
        let text = format!(
            "[health]\ndeadline = \"5s\"\ninterval = \"10ms\"\nbuiltin_checks = []\n\
             [[health.checks]]\nname = \"app\"\nkind = \"command\"\nfatal_exit_codes = [7]\n\
             command = [\"sh\", \"-c\", \"sleep 0.03; test -e {}/healthy || exit 7\"]\n\
             [[health.checks]]\nname = \"up\"\nkind = \"uptime\"\nmin = \"10ms\"\n",
            dir.display()
        );
        toml::from_str::<Doc>(&text).unwrap().health
    };
    let caps = Capabilities {
        bootloader: Arc::new(backend(dir)),
        systemd: arc(Units::default()),
        logind: arc(RebootFile(dir.join("reboot-requested"))),
        records: arc(RecordFile(dir.join("records.jsonl"))),
        clock: arc(SystemClock::new()),
        builtins: arc(Builtins { uploaded: false }),
    };
    let ctx = BootContext {
        family: BackendFamily::Grub,
        booted: s(booted),
        activation: activation(booted),
        version: Some(if booted == "B" { "2.0" } else { "1.0" }.into()),
        boot_id: boot_id.to_owned(),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(Driver::new(cfg, dir.join("health.json"), caps).run(ctx))
        .unwrap();
}

fn spawn_child(dir: &Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "kill9::kill9_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

fn run_to_end(dir: &Path) {
    let mut child = spawn_child(dir);
    let t0 = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            assert!(st.success(), "child failed: {st}");
            return;
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "child hangs");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// RAUC's grub.conf at power-on.
fn grub_boot(dir: &Path) -> String {
    let p = dir.join("grubenv");
    let mut env = GrubEnv::parse(&std::fs::read(&p).unwrap()).unwrap();
    let get = |env: &GrubEnv, k: &str| String::from_utf8(env.get(k).unwrap_or_default()).unwrap();
    let order = get(&env, "ORDER");
    let slot = order
        .split(' ')
        .find(|sl| get(&env, &format!("{sl}_OK")) == "1" && get(&env, &format!("{sl}_TRY")) == "0")
        .unwrap()
        .to_owned();
    env.set(&format!("{slot}_TRY"), "1").unwrap();
    std::fs::write(&p, env.serialize().unwrap()).unwrap();
    slot
}

fn setup(dir: &Path, healthy: bool) {
    let mut env = GrubEnv::new();
    for (k, v) in [
        ("ORDER", "A B"),
        ("A_OK", "1"),
        ("A_TRY", "0"),
        ("B_OK", "1"),
        ("B_TRY", "0"),
    ] {
        env.set(k, v).unwrap();
    }
    std::fs::write(dir.join("grubenv"), env.serialize().unwrap()).unwrap();
    // A ran and was committed before; B was just installed and activated.
    let st = GateState {
        committed: Some(SlotRef {
            slot: "A".into(),
            activation: activation("A"),
            version: Some("1.0".into()),
        }),
        ..GateState::new()
    };
    st.save(&dir.join("health.json")).unwrap();
    let b = backend(dir);
    b.set_state(&s("B"), SlotState::Bad).unwrap();
    b.set_primary(&s("B")).unwrap();
    assert_eq!(grub_boot(dir), "B");
    std::fs::write(dir.join("boot"), "B boot-1").unwrap();
    if healthy {
        std::fs::write(dir.join("healthy"), "").unwrap();
    }
}

#[test]
fn random_kill9_during_the_gate_never_breaks_the_invariants() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    let mut rng = rand::rng();
    for round in 0..30 {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let healthy = rng.random_bool(0.5);
        setup(dir, healthy);
        // One SIGKILL at a random instant of the gate (start, checks, decision, actions).
        let mut child = spawn_child(dir);
        std::thread::sleep(Duration::from_millis(rng.random_range(0..150)));
        child.kill().unwrap();
        child.wait().unwrap();
        // systemd restarts the agent in the same boot.
        run_to_end(dir);
        let rebooted = dir.join("reboot-requested").exists();
        if rebooted {
            let slot = grub_boot(dir);
            std::fs::write(dir.join("boot"), format!("{slot} boot-2")).unwrap();
            run_to_end(dir);
        }
        let st = GateState::load(&dir.join("health.json")).unwrap();
        let recs = read_records(&dir.join("records.jsonl"));
        let of = |r: RecordResult| {
            recs.iter()
                .filter(|x| x.result == r && x.slot == "B")
                .count()
        };
        let committed = st.committed.as_ref().map(|c| c.slot.clone());
        let ctx = format!("round {round} healthy={healthy} {st:?} {recs:?}");
        assert!(st.trial.is_none(), "{ctx}");
        if healthy {
            assert!(!rebooted, "{ctx}");
            assert_eq!(committed.as_deref(), Some("B"), "{ctx}");
            assert_eq!(
                backend(dir).state(&s("B")).unwrap(),
                SlotState::Good,
                "{ctx}"
            );
            assert!(of(RecordResult::Committed) >= 1, "{ctx}");
            assert_eq!(
                of(RecordResult::Failed) + of(RecordResult::RolledBack),
                0,
                "{ctx}"
            );
        } else {
            // Failed checks: never committed, marked bad, the old slot runs and recorded it.
            assert!(rebooted, "{ctx}");
            assert_eq!(committed.as_deref(), Some("A"), "{ctx}");
            assert_eq!(
                backend(dir).state(&s("B")).unwrap(),
                SlotState::Bad,
                "{ctx}"
            );
            assert_eq!(of(RecordResult::Committed), 0, "{ctx}");
            assert!(
                of(RecordResult::Failed) >= 1 && of(RecordResult::RolledBack) >= 1,
                "{ctx}"
            );
            assert_eq!(backend(dir).primary().unwrap(), Some(s("A")), "{ctx}");
        }
        // Repeated appends after a kill carry the same decision id.
        let mut ids: Vec<_> = recs
            .iter()
            .map(|r| (r.decision_id.clone(), r.result))
            .collect();
        ids.dedup();
        assert!(ids.len() <= 2, "{ctx}");
    }
}

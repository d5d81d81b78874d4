//! The health gate in the real agent: a device with file-backed slots and a real GRUB
//! environment (edited with the real `grub-editenv`), systemd1/login1 stand-ins on a private
//! `dbus-daemon` (`outpost-sim-systemd`), and reboots played by the test: stop the agent, do
//! what GRUB does at power-on, start the agent with the slot GRUB picked and a new boot id.
//! The gate itself is tested for every backend in `agent/health/tests` (reboot simulator,
//! kill -9 of the driver); this proves the daemon wires it up and keeps its promises.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use outpost_e2e::unix_http::UnixHttp;
use outpost_e2e::{bin_path, wait_for, Agent};
use rand::Rng;
use serde_json::Value;

/// The stand-in systemd1/login1 on a private bus; killed on drop. (Also used by workloads.rs.)
pub(crate) struct SimSystemd {
    child: Child,
    pub(crate) address: String,
    reboots: PathBuf,
}

impl SimSystemd {
    pub(crate) fn start(dir: &Path, units: &[&str]) -> Result<Self> {
        let reboots = dir.join("reboots");
        let out = dir.join("sim-systemd.out");
        let mut cmd = Command::new(bin_path("outpost-sim-systemd"));
        cmd.arg("--reboots").arg(&reboots);
        for u in units {
            cmd.arg("--unit").arg(u);
        }
        let child = cmd
            .stdout(std::fs::File::create(&out)?)
            .stderr(std::fs::File::create(dir.join("sim-systemd.log"))?)
            .spawn()
            .context("starting outpost-sim-systemd")?;
        let address = wait_for(Duration::from_secs(10), "the private bus", || {
            Ok(std::fs::read_to_string(&out)?
                .lines()
                .find_map(|l| l.strip_prefix("bus: ").map(str::to_owned)))
        })?;
        Ok(Self {
            child,
            address,
            reboots,
        })
    }

    pub(crate) fn reboot_requests(&self) -> usize {
        std::fs::read_to_string(&self.reboots)
            .map(|t| t.lines().count())
            .unwrap_or(0)
    }
}

impl Drop for SimSystemd {
    fn drop(&mut self) {
        // SIGTERM, not SIGKILL: it stops its dbus-daemon on the way out.
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        let _ = self.child.wait();
    }
}

pub(crate) fn grub_editenv(env: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new("grub-editenv").arg(env).args(args).output()?;
    ensure!(
        out.status.success(),
        "grub-editenv {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

/// GRUB at power-on with RAUC's grub.cfg: the first slot in ORDER with _OK=1 and _TRY=0
/// boots, after _TRY=1 is saved. Returns its bootname.
pub(crate) fn grub_power_on(env: &Path) -> Result<String> {
    let order = grub_var(env, "ORDER")?;
    for s in order.split(' ') {
        if grub_var(env, &format!("{s}_OK"))? == "1" && grub_var(env, &format!("{s}_TRY"))? == "0" {
            grub_editenv(env, &["set", &format!("{s}_TRY=1")])?;
            return Ok(s.to_owned());
        }
    }
    bail!("GRUB found no bootable slot in {order:?}")
}

pub(crate) fn grub_var(env: &Path, name: &str) -> Result<String> {
    Ok(grub_editenv(env, &["list"])?
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}=")).map(str::to_owned))
        .unwrap_or_default())
}

/// A simulated device: slots A and B, GRUB, central.raucs, the agent's config.
struct Device {
    dir: tempfile::TempDir,
    boot_no: u32,
    booted: String,
}

impl Device {
    /// Factory state: A booted and good, B good but never installed.
    fn new() -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let d = dir.path();
        std::fs::create_dir_all(d.join("data"))?;
        for s in ["rootfs-a", "rootfs-b"] {
            std::fs::write(d.join(s), vec![0u8; 4096])?;
        }
        std::fs::write(
            d.join("keyring.pem"),
            "not used: no install in these tests\n",
        )?;
        grub_editenv(&d.join("grubenv"), &["create"])?;
        grub_editenv(
            &d.join("grubenv"),
            &["set", "ORDER=A B", "A_OK=1", "A_TRY=0", "B_OK=1", "B_TRY=0"],
        )?;
        Ok(Self {
            dir,
            boot_no: 0,
            booted: String::new(),
        })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn grubenv(&self) -> PathBuf {
        self.path().join("grubenv")
    }

    /// What an install of `version` into `slot` leaves behind (as outpost-update writes it):
    /// the slot marked bad while written, then activated: primary with a fresh try.
    fn installed(&self, slot: &str, index: u32, version: &str, count: u32) -> Result<()> {
        let other = if slot == "A" { "B" } else { "A" };
        grub_editenv(
            &self.grubenv(),
            &[
                "set",
                &format!("ORDER={slot} {other}"),
                &format!("{slot}_OK=1"),
                &format!("{slot}_TRY=0"),
            ],
        )?;
        let status = self.path().join("data/central.raucs");
        let mut text = std::fs::read_to_string(&status).unwrap_or_default();
        text.push_str(&format!(
            "\n[slot.rootfs.{index}]\nbundle.compatible=e2e\nbundle.version={version}\nstatus=ok\n\
             installed.timestamp=2026-11-22T00:00:0{count}Z\ninstalled.count={count}\n\
             activated.timestamp=2026-11-22T00:00:0{count}Z\nactivated.count={count}\n"
        ));
        std::fs::write(status, text)?;
        Ok(())
    }

    /// GRUB at power-on with RAUC's grub.cfg: the first slot in ORDER with _OK=1 and _TRY=0
    /// boots, after _TRY=1 is saved.
    fn power_on(&mut self) -> Result<String> {
        let slot = grub_power_on(&self.grubenv())?;
        self.boot_no += 1;
        self.booted = slot.clone();
        Ok(slot)
    }

    /// Writes agent.toml for the current boot.
    fn configure(&self, bus: &str, checks: &str) -> Result<PathBuf> {
        let d = self.path().display();
        let config = self.path().join("agent.toml");
        std::fs::write(
            &config,
            format!(
                r#"state_dir = "{d}/state"

[api]
socket = "{d}/agent.sock"

[update]
compatible = "e2e"
bootloader = "grub"
grubenv = "{d}/grubenv"
keyring = "{d}/keyring.pem"
data_directory = "{d}/data"
booted_slot = "{booted}"
boot_id = "boot-{n}"

[[update.slots]]
class = "rootfs"
index = 0
device = "{d}/rootfs-a"
type = "ext4"
bootname = "A"

[[update.slots]]
class = "rootfs"
index = 1
device = "{d}/rootfs-b"
type = "ext4"
bootname = "B"

[dbus]
bus = "{bus}"
rauc_name = ""
agent_name = ""

[health]
deadline = "20s"
interval = "100ms"
{checks}
"#,
                booted = self.booted,
                n = self.boot_no,
            ),
        )?;
        Ok(config)
    }

    fn health(&self) -> Result<Value> {
        UnixHttp::new(&self.path().join("agent.sock"))
            .get("/v1/health")?
            .json()
    }

    /// Waits until the gate decided this boot; returns the status document.
    fn decided(&self) -> Result<Value> {
        wait_for(Duration::from_secs(30), "the gate's verdict", || {
            let h = self.health()?;
            Ok(match h["phase"].as_str() {
                Some("starting" | "checking") | None => None,
                Some(_) => Some(h),
            })
        })
    }

    /// `outpostctl health --wait --json`: exit status and the document it printed.
    fn ctl_wait(&self) -> Result<(Option<i32>, Value)> {
        let out = Command::new(bin_path("outpostctl"))
            .arg("--socket")
            .arg(self.path().join("agent.sock"))
            .args(["health", "--wait", "--timeout", "30s", "--json"])
            .output()?;
        Ok((out.status.code(), serde_json::from_slice(&out.stdout)?))
    }

    fn gate_state(&self) -> Result<Value> {
        Ok(serde_json::from_slice(&std::fs::read(
            self.path().join("state/health.json"),
        )?)?)
    }

    /// The `outpost.health` records in the outbox (no hub here: they wait there).
    fn health_records(&self) -> Result<u64> {
        let v = UnixHttp::new(&self.path().join("agent.sock"))
            .get("/v1/outbox")?
            .json()?;
        Ok(v["streams"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|s| s["stream"] == "outpost.health")
            .and_then(|s| s["pending"].as_u64())
            .unwrap_or(0))
    }
}

const PASSING: &str = r#"
[[health.checks]]
name = "app"
kind = "systemd-unit"
unit = "app.service"

[[health.checks]]
name = "selftest"
kind = "command"
command = ["true"]
"#;

const FAILING: &str = r#"
[[health.checks]]
name = "selftest"
kind = "command"
command = ["sh", "-c", "echo config unreadable >&2; exit 3"]
fatal_exit_codes = [3]
"#;

#[test]
fn good_update_commits_bad_update_rolls_back_and_the_old_slot_records_why() -> Result<()> {
    let mut dev = Device::new()?;
    let sim = SimSystemd::start(dev.path(), &["app.service=active"])?;

    // Factory boot of A: not a trial.
    assert_eq!(dev.power_on()?, "A");
    let mut agent = Agent::start(&dev.configure(&sim.address, PASSING)?)?;
    assert_eq!(dev.decided()?["phase"], "not-a-trial");
    agent.terminate()?;

    // v2 into B, reboot: trial, every check passes (the unit over D-Bus), committed.
    dev.installed("B", 1, "2.0", 1)?;
    assert_eq!(dev.power_on()?, "B");
    let mut agent = Agent::start(&dev.configure(&sim.address, PASSING)?)?;
    let (code, h) = dev.ctl_wait()?;
    assert_eq!(code, Some(0), "{h}");
    assert_eq!(h["phase"], "committed", "{h}");
    let app = h["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "app");
    assert_eq!(app.map(|c| c["result"].clone()), Some("pass".into()), "{h}");
    assert_eq!(grub_var(&dev.grubenv(), "B_OK")?, "1");
    assert_eq!(
        grub_var(&dev.grubenv(), "B_TRY")?,
        "0",
        "committed: GRUB boots B again"
    );
    assert_eq!(dev.gate_state()?["committed"]["slot"], "B");
    agent.terminate()?;

    // A routine reboot of the committed B: not a trial, B re-armed.
    assert_eq!(dev.power_on()?, "B");
    let mut agent = Agent::start(&dev.configure(&sim.address, PASSING)?)?;
    assert_eq!(dev.decided()?["phase"], "not-a-trial");
    assert_eq!(grub_var(&dev.grubenv(), "B_TRY")?, "0");
    agent.terminate()?;

    // v3 into A whose self-test fails for good: marked bad, a reboot requested.
    dev.installed("A", 0, "3.0", 1)?;
    assert_eq!(dev.power_on()?, "A");
    let mut agent = Agent::start(&dev.configure(&sim.address, FAILING)?)?;
    let (code, h) = dev.ctl_wait()?;
    assert_eq!(code, Some(1), "{h}");
    assert_eq!(h["phase"], "failed", "{h}");
    assert!(
        h["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("selftest"),
        "{h}"
    );
    assert_eq!(grub_var(&dev.grubenv(), "A_OK")?, "0", "A marked bad");
    wait_for(Duration::from_secs(10), "the reboot request", || {
        Ok((sim.reboot_requests() == 1).then_some(()))
    })?;
    agent.terminate()?;

    // The reboot: GRUB skips A, B runs and records the rollback.
    assert_eq!(dev.power_on()?, "B");
    let mut agent = Agent::start(&dev.configure(&sim.address, FAILING)?)?;
    let h = dev.decided()?;
    assert_eq!(h["phase"], "not-a-trial", "{h}");
    assert_eq!(
        h["last"]["result"],
        "rolled-back",
        "{h}\n{}\n{}",
        dev.gate_state()?,
        std::fs::read_to_string(dev.path().join("agent.log")).unwrap_or_default()
    );
    assert_eq!(h["last"]["slot"], "A");
    // committed (B), failed (A), rolled-back (A), each once.
    assert_eq!(dev.health_records()?, 3);
    assert_eq!(sim.reboot_requests(), 1);
    agent.terminate()?;
    Ok(())
}

/// A slot armed through the agent whose kernel or init never gets to the agent: GRUB's one try
/// is spent without a trial ever opening, and the old slot's gate records that from the
/// agent's armed-slot note.
#[test]
fn a_slot_that_never_reached_its_agent_is_recorded_by_the_old_slot() -> Result<()> {
    let mut dev = Device::new()?;
    let sim = SimSystemd::start(dev.path(), &["app.service=active"])?;
    assert_eq!(dev.power_on()?, "A");
    let mut agent = Agent::start(&dev.configure(&sim.address, PASSING)?)?;
    assert_eq!(dev.decided()?["phase"], "not-a-trial");
    let out = Command::new(bin_path("outpostctl"))
        .arg("--socket")
        .arg(dev.path().join("agent.sock"))
        .args(["mark", "active", "other"])
        .output()?;
    ensure!(
        out.status.success(),
        "mark active other: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let armed = dev.path().join("state/armed.json");
    ensure!(armed.exists(), "no armed-slot note after mark active");
    agent.terminate()?;

    // B's boot dies before its agent (no agent runs in it); GRUB then falls back to A.
    assert_eq!(dev.power_on()?, "B");
    assert_eq!(dev.power_on()?, "A");
    let mut agent = Agent::start(&dev.configure(&sim.address, PASSING)?)?;
    let h = dev.decided()?;
    assert_eq!(h["phase"], "not-a-trial", "{h}");
    assert_eq!(h["last"]["slot"], "B", "{h}");
    assert_eq!(h["last"]["result"], "rolled-back", "{h}");
    let reason = h["last"]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("before slot B"), "{reason}");
    assert_eq!(grub_var(&dev.grubenv(), "B_OK")?, "0", "B marked bad");
    assert_eq!(dev.health_records()?, 1);
    assert!(!armed.exists(), "the note is told once and removed");
    agent.terminate()?;

    // The next boot of A has nothing more to tell.
    assert_eq!(dev.power_on()?, "A");
    let mut agent = Agent::start(&dev.configure(&sim.address, PASSING)?)?;
    assert_eq!(dev.decided()?["phase"], "not-a-trial");
    assert_eq!(dev.health_records()?, 1);
    agent.terminate()?;
    Ok(())
}

#[test]
#[ignore = "slow end-to-end: 30 kill -9 rounds"]
fn kill9_of_the_agent_during_the_gate_never_breaks_its_promises() -> Result<()> {
    let mut rng = rand::rng();
    for round in 0..30 {
        let healthy = rng.random_bool(0.5);
        let mut dev = Device::new()?;
        let sim = SimSystemd::start(dev.path(), &["app.service=active"])?;
        assert_eq!(dev.power_on()?, "A");
        dev.installed("B", 1, "2.0", 1)?;
        assert_eq!(dev.power_on()?, "B");
        let checks = if healthy { PASSING } else { FAILING };
        let config = dev.configure(&sim.address, checks)?;
        let mut agent = Agent::start(&config)?;
        std::thread::sleep(Duration::from_millis(rng.random_range(0..120)));
        agent.kill9();
        // The same boot: the agent restarts (systemd's Restart=on-failure) and finishes.
        let mut agent = Agent::start(&config)?;
        let h = dev.decided()?;
        let st = dev.gate_state()?;
        let (ok, tried) = (
            grub_var(&dev.grubenv(), "B_OK")?,
            grub_var(&dev.grubenv(), "B_TRY")?,
        );
        if healthy {
            // Committed now, or before the kill (then this start finds B committed).
            ensure!(
                h["phase"] == "committed"
                    || (h["phase"] == "not-a-trial" && h["last"]["result"] == "committed"),
                "round {round}: {h}"
            );
            ensure!(st["committed"]["slot"] == "B", "round {round}: {st}");
            ensure!(
                ok == "1" && tried == "0",
                "round {round}: B_OK={ok} B_TRY={tried}"
            );
            ensure!(
                sim.reboot_requests() == 0,
                "round {round}: rebooted a good slot"
            );
        } else {
            ensure!(h["phase"] == "failed", "round {round}: {h}");
            // Committed stays the factory slot A (adopted), never the failed B.
            ensure!(st["committed"]["slot"] != "B", "round {round}: {st}");
            ensure!(ok == "0", "round {round}: B_OK={ok}");
            wait_for(Duration::from_secs(10), "the reboot request", || {
                Ok((sim.reboot_requests() >= 1).then_some(()))
            })?;
        }
        agent.terminate()?;
    }
    Ok(())
}

#[test]
fn installs_are_refused_while_the_booted_slot_is_on_trial() -> Result<()> {
    let mut dev = Device::new()?;
    let sim = SimSystemd::start(dev.path(), &[])?;
    assert_eq!(dev.power_on()?, "A");
    dev.installed("B", 1, "2.0", 1)?;
    assert_eq!(dev.power_on()?, "B");
    let ready = dev.path().join("ready");
    let checks = format!(
        "[[health.checks]]\nname = \"app\"\nkind = \"command\"\ncommand = [\"test\", \"-e\", \"{}\"]\n",
        ready.display()
    );
    let mut agent = Agent::start(&dev.configure(&sim.address, &checks)?)?;
    wait_for(Duration::from_secs(10), "the trial", || {
        Ok((dev.health()?["phase"] == "checking").then_some(()))
    })?;
    let install = |dev: &Device| -> Result<(u16, String)> {
        let r = UnixHttp::new(&dev.path().join("agent.sock")).post(
            "/v1/install",
            &[("content-type", "application/json")],
            br#"{"bundle":"/nonexistent/update.raucb"}"#,
        )?;
        Ok((r.status, String::from_utf8_lossy(&r.body).into_owned()))
    };
    let (status, body) = install(&dev)?;
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("slot B is on trial"), "{body}");
    let out = Command::new(bin_path("outpostctl"))
        .arg("--socket")
        .arg(dev.path().join("agent.sock"))
        .args(["install", "/nonexistent/update.raucb"])
        .output()?;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("on trial"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The application comes up: committed, and installs are possible again (this one then
    // fails on its missing bundle, not on the gate).
    std::fs::write(&ready, "")?;
    assert_eq!(dev.decided()?["phase"], "committed");
    let (status, body) = install(&dev)?;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("/nonexistent/update.raucb"), "{body}");
    agent.terminate()?;
    Ok(())
}

#[test]
fn a_gate_that_cannot_reboot_keeps_installs_held_and_retries() -> Result<()> {
    let mut dev = Device::new()?;
    assert_eq!(dev.power_on()?, "A");
    dev.installed("B", 1, "2.0", 1)?;
    assert_eq!(dev.power_on()?, "B");
    // No logind anywhere: the failed trial is marked bad, but the reboot request fails.
    let nowhere = format!("unix:path={}", dev.path().join("no-bus").display());
    let mut agent = Agent::start(&dev.configure(&nowhere, FAILING)?)?;
    let h = wait_for(Duration::from_secs(10), "the gate's error", || {
        let h = dev.health()?;
        Ok((h["phase"] == "error").then_some(h))
    })?;
    assert!(
        h["reason"].as_str().unwrap_or_default().contains("reboot"),
        "{h}"
    );
    assert_eq!(
        grub_var(&dev.grubenv(), "B_OK")?,
        "0",
        "marked bad before the reboot"
    );
    let r = UnixHttp::new(&dev.path().join("agent.sock")).post(
        "/v1/install",
        &[("content-type", "application/json")],
        br#"{"bundle":"/nonexistent/update.raucb"}"#,
    )?;
    let body = String::from_utf8_lossy(&r.body);
    assert_eq!(r.status, 409, "{body}");
    assert!(body.contains("retrying"), "{body}");
    let log = std::fs::read_to_string(dev.path().join("agent.log"))?;
    assert!(log.contains("health gate stopped; retrying"), "{log}");
    agent.terminate()?;
    Ok(())
}

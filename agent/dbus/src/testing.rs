//! A private bus and a fake systemd1/login1 service for tests, because no systemd runs as PID 1
//! here. The fake answers exactly the calls [`crate::systemd`] and [`crate::logind`] make, on a
//! real `dbus-daemon` (session-like config, unix socket in a temp dir), so the production
//! client code is what talks to it. Unit control (`StartUnit`, `StopUnit`, `RestartUnit`) is
//! recorded ([`FakeState::calls`]) and changes the unit's state at once: start and restart make
//! it `active`/`running` (or what [`FakeState::set_start_outcome`] says), stop
//! `inactive`/`dead`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use outpost_health::runner::systemd::UnitState;
use zbus::object_server::ObjectServer;
use zbus::zvariant::OwnedObjectPath;

/// A `dbus-daemon` on a unix socket in a temp dir; killed on drop.
pub struct TestBus {
    child: Child,
    address: String,
    _dir: tempfile::TempDir,
}

#[derive(Debug, thiserror::Error)]
pub enum TestBusError {
    #[error("starting dbus-daemon: {0}")]
    Io(#[from] std::io::Error),
    #[error("dbus-daemon printed no address")]
    NoAddress,
    #[error("serving the fake services: {0}")]
    Bus(#[from] zbus::Error),
}

impl TestBus {
    pub fn start() -> Result<Self, TestBusError> {
        let dir = tempfile::tempdir()?;
        let socket = dir.path().join("bus");
        let config = dir.path().join("bus.conf");
        std::fs::write(
            &config,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
                socket.display()
            ),
        )?;
        let mut child = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .args(["--nofork", "--print-address"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()?;
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            BufReader::new(out).read_line(&mut line)?;
        }
        let address = line.trim().to_owned();
        if address.is_empty() {
            let _ = child.kill();
            let _ = child.wait();
            return Err(TestBusError::NoAddress);
        }
        Ok(Self {
            child,
            address,
            _dir: dir,
        })
    }

    pub fn address(&self) -> &str {
        &self.address
    }
}

impl Drop for TestBus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Shared state of the fake services: unit states to answer, unit control calls and reboots
/// received.
#[derive(Clone, Default)]
pub struct FakeState {
    units: Arc<Mutex<HashMap<String, UnitState>>>,
    start_outcomes: Arc<Mutex<HashMap<String, UnitState>>>,
    calls: Arc<Mutex<Vec<UnitCall>>>,
    jobs: Arc<AtomicU32>,
    reboots: Arc<AtomicU32>,
}

/// One `Manager.{Start,Stop,Restart}Unit` call received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitCall {
    /// `StartUnit`, `StopUnit` or `RestartUnit`.
    pub method: &'static str,
    pub unit: String,
    pub mode: String,
}

impl FakeState {
    /// Sets (or adds) a unit's `ActiveState`/`SubState` (`LoadState` = `loaded`).
    pub fn set_unit(&self, unit: &str, active: &str, sub: &str) {
        if let Ok(mut u) = self.units.lock() {
            u.insert(
                unit.to_owned(),
                UnitState {
                    load_state: "loaded".into(),
                    active_state: active.into(),
                    sub_state: sub.into(),
                },
            );
        }
    }

    /// What a start or restart of `unit` leaves it in (default `active`/`running`); e.g.
    /// `failed`/`failed` for a unit that crashes at once.
    pub fn set_start_outcome(&self, unit: &str, active: &str, sub: &str) {
        if let Ok(mut o) = self.start_outcomes.lock() {
            o.insert(
                unit.to_owned(),
                UnitState {
                    load_state: "loaded".into(),
                    active_state: active.into(),
                    sub_state: sub.into(),
                },
            );
        }
    }

    /// The unit control calls received so far, in order.
    pub fn calls(&self) -> Vec<UnitCall> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// The unit's `(ActiveState, SubState)` now, if known.
    pub fn unit(&self, unit: &str) -> Option<(String, String)> {
        self.get(unit).map(|u| (u.active_state, u.sub_state))
    }

    pub fn reboots(&self) -> u32 {
        self.reboots.load(Ordering::SeqCst)
    }

    fn get(&self, unit: &str) -> Option<UnitState> {
        self.units.lock().ok().and_then(|u| u.get(unit).cloned())
    }

    /// Records the call; for a known unit, applies it and returns a new job path.
    fn control(
        &self,
        method: &'static str,
        unit: &str,
        mode: &str,
    ) -> Result<OwnedObjectPath, SystemdError> {
        if let Ok(mut c) = self.calls.lock() {
            c.push(UnitCall {
                method,
                unit: unit.to_owned(),
                mode: mode.to_owned(),
            });
        }
        if self.get(unit).is_none() {
            return Err(SystemdError::NoSuchUnit(format!("Unit {unit} not found.")));
        }
        let next = if method == "StopUnit" {
            UnitState {
                load_state: "loaded".into(),
                active_state: "inactive".into(),
                sub_state: "dead".into(),
            }
        } else {
            self.start_outcomes
                .lock()
                .ok()
                .and_then(|o| o.get(unit).cloned())
                .unwrap_or(UnitState {
                    load_state: "loaded".into(),
                    active_state: "active".into(),
                    sub_state: "running".into(),
                })
        };
        if let Ok(mut u) = self.units.lock() {
            u.insert(unit.to_owned(), next);
        }
        let job = self.jobs.fetch_add(1, Ordering::SeqCst) + 1;
        OwnedObjectPath::try_from(format!("/org/freedesktop/systemd1/job/{job}"))
            .map_err(|e| SystemdError::ZBus(e.into()))
    }
}

/// The fake services, connected to `address` under `org.freedesktop.systemd1` and
/// `org.freedesktop.login1`. Keep the returned connection alive while testing.
pub async fn serve(address: &str, state: FakeState) -> Result<zbus::Connection, TestBusError> {
    Ok(zbus::connection::Builder::address(address)?
        .name("org.freedesktop.systemd1")?
        .name("org.freedesktop.login1")?
        .serve_at(
            "/org/freedesktop/systemd1",
            FakeManager {
                state: state.clone(),
            },
        )?
        .serve_at("/org/freedesktop/login1", FakeLogin { state })?
        .build()
        .await?)
}

/// systemd's object path for a unit: bytes outside `[A-Za-z0-9]` become `_xx`.
pub fn unit_path(unit: &str) -> String {
    let mut p = String::from("/org/freedesktop/systemd1/unit/");
    for b in unit.bytes() {
        if b.is_ascii_alphanumeric() {
            p.push(char::from(b));
        } else {
            p.push_str(&format!("_{b:02x}"));
        }
    }
    p
}

#[derive(Debug, zbus::DBusError)]
#[zbus(prefix = "org.freedesktop.systemd1")]
enum SystemdError {
    #[zbus(error)]
    ZBus(zbus::Error),
    NoSuchUnit(String),
}

struct FakeManager {
    state: FakeState,
}

impl FakeManager {
    async fn export(
        &self,
        server: &ObjectServer,
        unit: &str,
    ) -> Result<OwnedObjectPath, SystemdError> {
        let path = unit_path(unit);
        let obj = FakeUnit {
            unit: unit.to_owned(),
            state: self.state.clone(),
        };
        // `at` returns false if already exported: fine, the object reads the shared state.
        server.at(path.as_str(), obj).await?;
        OwnedObjectPath::try_from(path).map_err(|e| SystemdError::ZBus(e.into()))
    }
}

#[zbus::interface(name = "org.freedesktop.systemd1.Manager")]
impl FakeManager {
    async fn get_unit(
        &self,
        name: &str,
        #[zbus(object_server)] server: &ObjectServer,
    ) -> Result<OwnedObjectPath, SystemdError> {
        if self.state.get(name).is_none() {
            return Err(SystemdError::NoSuchUnit(format!("Unit {name} not loaded.")));
        }
        self.export(server, name).await
    }

    async fn load_unit(
        &self,
        name: &str,
        #[zbus(object_server)] server: &ObjectServer,
    ) -> Result<OwnedObjectPath, SystemdError> {
        self.export(server, name).await
    }

    fn start_unit(&self, name: &str, mode: &str) -> Result<OwnedObjectPath, SystemdError> {
        self.state.control("StartUnit", name, mode)
    }

    fn stop_unit(&self, name: &str, mode: &str) -> Result<OwnedObjectPath, SystemdError> {
        self.state.control("StopUnit", name, mode)
    }

    fn restart_unit(&self, name: &str, mode: &str) -> Result<OwnedObjectPath, SystemdError> {
        self.state.control("RestartUnit", name, mode)
    }
}

struct FakeUnit {
    unit: String,
    state: FakeState,
}

impl FakeUnit {
    /// An unknown unit reads like systemd's answer for a missing unit file.
    fn now(&self) -> UnitState {
        self.state.get(&self.unit).unwrap_or(UnitState {
            load_state: "not-found".into(),
            active_state: "inactive".into(),
            sub_state: "dead".into(),
        })
    }
}

#[zbus::interface(name = "org.freedesktop.systemd1.Unit")]
impl FakeUnit {
    #[zbus(property)]
    fn load_state(&self) -> String {
        self.now().load_state
    }
    #[zbus(property)]
    fn active_state(&self) -> String {
        self.now().active_state
    }
    #[zbus(property)]
    fn sub_state(&self) -> String {
        self.now().sub_state
    }
}

struct FakeLogin {
    state: FakeState,
}

#[zbus::interface(name = "org.freedesktop.login1.Manager")]
impl FakeLogin {
    fn reboot(&self, interactive: bool) {
        // The agent must never ask for an interactive (polkit) reboot.
        if !interactive {
            self.state.reboots.fetch_add(1, Ordering::SeqCst);
        }
    }
}

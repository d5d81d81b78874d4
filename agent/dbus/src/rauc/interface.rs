//! `de.pengutronix.rauc.Installer` at `/`: RAUC 1.8's methods, signal and properties, plus
//! 1.9's `InspectBundle`, over an [`InstallerBackend`].
//!
//! The install properties (`Operation`, `Progress`, `LastError`) and `Completed` are written
//! by one task only, [`follow`], from the backend's [`InstallStatus`] watch; method handlers
//! never touch them. One writer keeps the order RAUC clients rely on even when an install ends
//! before the `InstallBundle` reply is sent: `LastError` (on failure), then `Completed`, then
//! `Operation` back to `idle` (RAUC's `service_install_cleanup`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;
use zbus::object_server::{InterfaceRef, SignalEmitter};
use zbus::zvariant::OwnedValue;

use super::args;
use super::backend::{InstallStatus, InstallerBackend};
use super::values::{self, VarDict};

/// RAUC answers every failed call with `G_IO_ERROR_FAILED_HANDLED`, which GLib puts on the bus
/// under this name. Using it too means GLib clients get the same `GError` (domain `G_IO_ERROR`,
/// code 30) and `rauc` prints our message exactly where it prints RAUC's.
#[derive(Debug, zbus::DBusError)]
#[zbus(prefix = "org.gtk.GDBus.UnmappedGError.Quark._g_2dio_2derror_2dquark")]
pub enum RaucError {
    #[zbus(error)]
    ZBus(zbus::Error),
    /// `G_IO_ERROR_FAILED_HANDLED`.
    Code30(String),
}

impl RaucError {
    fn failed(message: impl Into<String>) -> Self {
        RaucError::Code30(message.into())
    }
}

/// `Progress`: percent, message, nesting depth.
type ProgressTuple = (i32, String, i32);

/// The properties an install changes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct InstallProps {
    operation: &'static str,
    last_error: String,
    progress: ProgressTuple,
}

impl Default for InstallProps {
    fn default() -> Self {
        InstallProps {
            operation: IDLE,
            last_error: String::new(),
            progress: (0, String::new(), 0),
        }
    }
}

const IDLE: &str = "idle";
const INSTALLING: &str = "installing";

pub struct Installer {
    backend: Arc<dyn InstallerBackend>,
    props: Mutex<InstallProps>,
    compatible: String,
    variant: String,
    boot_slot: String,
}

/// What [`follow`] continues from: the backend's watch and what was announced so far.
pub struct Following {
    follower: Follower,
    rx: watch::Receiver<InstallStatus>,
}

impl Installer {
    /// The interface, its properties already showing the backend's current state, and the
    /// state [`follow`] needs to keep them current.
    pub fn new(backend: Arc<dyn InstallerBackend>) -> (Self, Following) {
        let system = backend.system();
        let mut rx = backend.install_status();
        let follower = Follower::new(&rx.borrow_and_update().clone());
        let installer = Installer {
            backend,
            props: Mutex::new(follower.shown.clone()),
            compatible: system.compatible,
            variant: system.variant,
            boot_slot: system.boot_slot,
        };
        (installer, Following { follower, rx })
    }

    fn props(&self) -> MutexGuard<'_, InstallProps> {
        // Plain data: a panic elsewhere while holding it leaves nothing half-written.
        self.props.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn start(
        &self,
        source: String,
        args: &HashMap<String, OwnedValue>,
    ) -> Result<(), RaucError> {
        let request = args::install_request(source, args).map_err(RaucError::failed)?;
        tracing::info!(bundle = %request.source, "D-Bus InstallBundle");
        self.backend
            .start_install(request)
            .await
            .map_err(|e| RaucError::failed(e.0))
    }
}

#[zbus::interface(name = "de.pengutronix.rauc.Installer")]
impl Installer {
    /// Deprecated in RAUC: `InstallBundle` without arguments.
    async fn install(&self, source: String) -> Result<(), RaucError> {
        self.start(source, &HashMap::new()).await
    }

    /// Starts an install and returns; progress comes as property changes, the end as
    /// `Completed`.
    async fn install_bundle(
        &self,
        source: String,
        args: HashMap<String, OwnedValue>,
    ) -> Result<(), RaucError> {
        self.start(source, &args).await
    }

    /// Deprecated in RAUC: the bundle's compatible and version.
    #[zbus(out_args("compatible", "version"))]
    async fn info(&self, bundle: String) -> Result<(String, String), RaucError> {
        let d = self
            .backend
            .inspect(bundle)
            .await
            .map_err(|e| RaucError::failed(e.0))?;
        Ok((d.compatible, d.version.unwrap_or_default()))
    }

    /// RAUC ≥ 1.9: the verified bundle's manifest as nested dictionaries (see
    /// [`values::inspect`]). `args` takes RAUC's streaming keys only, which are refused.
    #[zbus(out_args("info"))]
    async fn inspect_bundle(
        &self,
        source: String,
        args: HashMap<String, OwnedValue>,
    ) -> Result<VarDict, RaucError> {
        if let Some(key) = args.keys().min() {
            return Err(RaucError::failed(format!(
                "Unsupported key: {}",
                key.chars().take(64).collect::<String>()
            )));
        }
        let d = self
            .backend
            .inspect(source)
            .await
            .map_err(|e| RaucError::failed(e.0))?;
        values::inspect(d)
            .map_err(|e| RaucError::failed(format!("encoding the bundle description: {e}")))
    }

    #[zbus(out_args("slot_name", "message"))]
    async fn mark(
        &self,
        state: String,
        slot_identifier: String,
    ) -> Result<(String, String), RaucError> {
        let m = self
            .backend
            .mark(state, slot_identifier)
            .await
            .map_err(|e| RaucError::failed(e.0))?;
        Ok((m.slot, m.message))
    }

    #[zbus(out_args("slot_status_array"))]
    async fn get_slot_status(&self) -> Result<Vec<(String, VarDict)>, RaucError> {
        let slots = self
            .backend
            .slot_status()
            .await
            .map_err(|e| RaucError::failed(e.0))?;
        Ok(values::slot_status(slots))
    }

    #[zbus(out_args("primary"))]
    async fn get_primary(&self) -> Result<String, RaucError> {
        self.backend
            .primary()
            .await
            .map_err(|e| RaucError::failed(format!("Failed getting primary slot: {e}")))
    }

    /// Emitted when an install ended: 0 succeeded, 1 failed.
    #[zbus(signal)]
    async fn completed(emitter: &SignalEmitter<'_>, result: i32) -> zbus::Result<()>;

    #[zbus(property)]
    fn operation(&self) -> String {
        self.props().operation.to_owned()
    }

    #[zbus(property)]
    fn last_error(&self) -> String {
        self.props().last_error.clone()
    }

    #[zbus(property)]
    fn progress(&self) -> ProgressTuple {
        self.props().progress.clone()
    }

    #[zbus(property)]
    fn compatible(&self) -> String {
        self.compatible.clone()
    }

    #[zbus(property)]
    fn variant(&self) -> String {
        self.variant.clone()
    }

    #[zbus(property)]
    fn boot_slot(&self) -> String {
        self.boot_slot.clone()
    }
}

/// One announcement, with the value it announces, in the order they must go out. zbus's
/// `*_changed` sends the property's value at the time of sending, so each value is put in
/// place right before its own signal.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Emit {
    LastError(String),
    Operation(&'static str),
    Progress(ProgressTuple),
    Completed(i32),
}

/// Turns backend snapshots into property values and signals; pure, so the ordering is tested
/// without a bus.
#[derive(Debug, Default)]
struct Follower {
    /// The install properties as last announced.
    shown: InstallProps,
    /// Serial of the install whose start was announced.
    started: Option<u64>,
    /// Serial up to which `Completed` was sent (or that ended before we served).
    completed: u64,
}

impl Follower {
    /// Starts from the backend's state when serving begins: installs that already ended get
    /// no `Completed`, a running one is shown as running.
    fn new(first: &InstallStatus) -> Self {
        let mut f = Follower {
            completed: first.finished.as_ref().map_or(0, |d| d.serial),
            ..Default::default()
        };
        let _ = f.apply(first);
        f
    }

    fn last_error(&mut self, v: String, out: &mut Vec<Emit>) {
        if self.shown.last_error != v {
            self.shown.last_error.clone_from(&v);
            out.push(Emit::LastError(v));
        }
    }

    fn operation(&mut self, v: &'static str, out: &mut Vec<Emit>) {
        if self.shown.operation != v {
            self.shown.operation = v;
            out.push(Emit::Operation(v));
        }
    }

    fn progress(&mut self, v: ProgressTuple, out: &mut Vec<Emit>) {
        if self.shown.progress != v {
            self.shown.progress = v.clone();
            out.push(Emit::Progress(v));
        }
    }

    fn apply(&mut self, s: &InstallStatus) -> Vec<Emit> {
        let mut out = Vec::new();
        // An install that ended first: even when the next one already runs.
        if let Some(done) = s.finished.as_ref().filter(|d| d.serial > self.completed) {
            self.completed = done.serial;
            // Its start may never have been seen (watch keeps the latest value only); then the
            // progress shown is the previous install's and says nothing about this one.
            let seen = self.started == Some(done.serial);
            if !seen {
                self.started = Some(done.serial);
                self.last_error(String::new(), &mut out);
            }
            let percent = if seen { self.shown.progress.0 } else { 0 };
            match &done.error {
                None if percent < 100 => {
                    self.progress((100, "Installing done.".into(), 1), &mut out)
                }
                None => {}
                Some(e) => {
                    self.progress((percent, "Installing failed.".into(), 1), &mut out);
                    self.last_error(e.clone(), &mut out);
                }
            }
            out.push(Emit::Completed(i32::from(done.error.is_some())));
            self.operation(IDLE, &mut out);
        }
        if let Some(run) = &s.running {
            if self.started != Some(run.serial) && run.serial > self.completed {
                // RAUC's install thread clears LastError, then reports "Installing".
                self.started = Some(run.serial);
                self.last_error(String::new(), &mut out);
                self.operation(INSTALLING, &mut out);
                self.progress((0, "Installing".into(), 1), &mut out);
            }
            if self.started == Some(run.serial) {
                let percent = i32::from(run.percent.min(100));
                self.progress((percent, run.step.clone(), 2), &mut out);
            }
        }
        out
    }
}

/// Follows the backend's installs until the watch closes, announcing every change.
pub async fn follow(iface: InterfaceRef<Installer>, following: Following) {
    let Following {
        mut follower,
        mut rx,
    } = following;
    while rx.changed().await.is_ok() {
        let status = rx.borrow_and_update().clone();
        let emits = follower.apply(&status);
        let installer = iface.get().await;
        let emitter = iface.signal_emitter();
        for e in emits {
            let sent = match e {
                Emit::LastError(v) => {
                    installer.props().last_error = v;
                    installer.last_error_changed(emitter).await
                }
                Emit::Operation(v) => {
                    installer.props().operation = v;
                    installer.operation_changed(emitter).await
                }
                Emit::Progress(v) => {
                    installer.props().progress = v;
                    installer.progress_changed(emitter).await
                }
                Emit::Completed(code) => Installer::completed(emitter, code).await,
            };
            if let Err(err) = sent {
                // The bus connection is gone; the server is being dropped.
                tracing::warn!(error = %err, "D-Bus: cannot announce install progress");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::backend::{FinishedInstall, RunningInstall};
    use super::*;

    fn running(serial: u64, percent: u8, step: &str) -> Option<RunningInstall> {
        Some(RunningInstall {
            serial,
            percent,
            step: step.into(),
        })
    }

    fn finished(serial: u64, error: Option<&str>) -> Option<FinishedInstall> {
        Some(FinishedInstall {
            serial,
            error: error.map(str::to_owned),
        })
    }

    #[test]
    fn an_install_is_announced_in_rauc_order() {
        let mut f = Follower::new(&InstallStatus::default());
        let s1 = InstallStatus {
            running: running(1, 0, "Checking bundle"),
            finished: None,
        };
        assert_eq!(
            f.apply(&s1),
            vec![
                Emit::Operation("installing"),
                Emit::Progress((0, "Installing".into(), 1)),
                Emit::Progress((0, "Checking bundle".into(), 2))
            ]
        );
        let s2 = InstallStatus {
            running: None,
            finished: finished(1, Some("signature verification failed")),
        };
        assert_eq!(
            f.apply(&s2),
            vec![
                Emit::Progress((0, "Installing failed.".into(), 1)),
                Emit::LastError("signature verification failed".into()),
                Emit::Completed(1),
                Emit::Operation("idle")
            ]
        );
        // Nothing new: nothing announced.
        assert!(f.apply(&s2).is_empty());
    }

    #[test]
    fn a_missed_end_is_still_completed_before_the_next_start() {
        let mut f = Follower::new(&InstallStatus::default());
        // Install 1 ran and failed, install 2 began, all before the follower woke.
        let s = InstallStatus {
            running: running(2, 5, "Checking bundle"),
            finished: finished(1, Some("boom")),
        };
        let emits = f.apply(&s);
        let completed = emits.iter().position(|e| *e == Emit::Completed(1)).unwrap();
        let started = emits
            .iter()
            .position(|e| *e == Emit::Operation("installing"))
            .unwrap();
        assert!(completed < started, "{emits:?}");
        assert_eq!(f.shown.operation, "installing");
        assert_eq!(f.shown.last_error, "", "cleared for the new install");
    }

    #[test]
    fn installs_that_ended_before_serving_are_not_completed_again() {
        let first = InstallStatus {
            running: None,
            finished: finished(3, None),
        };
        let mut f = Follower::new(&first);
        assert!(f.apply(&first).is_empty());
        assert_eq!(f.shown.operation, "idle");
    }
}

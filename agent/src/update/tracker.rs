//! One install at a time, and what `GET /v1/install` shows: the running install's percent and
//! step, or the last install's result. The state lives in memory only: after a restart the
//! slots and the status file (`GET /v1/slots`) tell what was installed.
//!
//! The state sits in a `tokio::sync::watch` so that observers (the D-Bus server's
//! `Operation`/`Progress`/`Completed`) follow every install, whoever started it, without
//! polling. `watch` keeps only the latest value, so each install also leaves its final view in
//! [`Observed::finished`]: an observer that wakes up after the next install already began still
//! learns how the previous one ended.

use std::sync::{Mutex, MutexGuard};

use outpost_update::install::InstallReport;
use outpost_update::Progress;
use tokio::sync::watch;

use super::UpdateError;
use crate::views::{InstallState, InstallView, WrittenSlot};

/// What an observer of the tracker sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// Installs begun since the agent started; the running (or last) one has this number.
    /// 0: none yet.
    pub serial: u64,
    pub view: InstallView,
    /// The last install that ended: its serial and its final view.
    pub finished: Option<(u64, InstallView)>,
}

#[derive(Debug)]
pub struct InstallTracker {
    state: watch::Sender<Observed>,
    /// Held by an install for its whole run and by every mark: both write the bootloader env
    /// and the status file, which must never be read-modified-written by two at once.
    exclusive: Mutex<()>,
    /// Whether installs may begin now (see [`Hold`]).
    hold: watch::Sender<Hold>,
    /// `[workloads]`, where a joint bundle's workload set is staged for its target slot.
    workloads: std::sync::OnceLock<crate::config::WorkloadsConfig>,
    /// `<state_dir>/armed.json`: where installs and marks note the slot they armed.
    armed_file: std::sync::OnceLock<std::path::PathBuf>,
}

/// The health gate's say on installs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hold {
    Open,
    /// The gate has not assessed this boot yet: installs wait for it (milliseconds).
    Pending,
    /// The booted slot is on trial: installs are refused with this reason.
    Held(String),
}

/// Why [`InstallTracker::try_begin`] did not claim the installer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimError {
    #[error("an installation is already running")]
    Busy,
    #[error("{0}")]
    Held(String),
}

impl Default for InstallTracker {
    fn default() -> Self {
        InstallTracker {
            state: watch::Sender::new(Observed {
                serial: 0,
                view: InstallView::idle(),
                finished: None,
            }),
            exclusive: Mutex::new(()),
            hold: watch::Sender::new(Hold::Open),
            workloads: std::sync::OnceLock::new(),
            armed_file: std::sync::OnceLock::new(),
        }
    }
}

impl InstallTracker {
    /// Lets installs stage the workload sets that bundles carry (set once, at start).
    pub fn set_workloads(&self, cfg: crate::config::WorkloadsConfig) {
        let _ = self.workloads.set(cfg);
    }

    pub fn workloads(&self) -> Option<&crate::config::WorkloadsConfig> {
        self.workloads.get()
    }

    /// Lets installs and marks keep the armed-slot note (set once, at start).
    pub fn set_armed_file(&self, path: std::path::PathBuf) {
        let _ = self.armed_file.set(path);
    }

    pub fn armed_file(&self) -> Option<&std::path::Path> {
        self.armed_file.get().map(|p| p.as_path())
    }
}

/// Step shown while the bundle's signature and payload are checked (before RAUC's steps).
pub const VERIFY_STEP: &str = "Checking bundle";

impl InstallTracker {
    /// Serialises bootloader/status writers; blocks (call on the blocking pool).
    pub fn exclusive(&self) -> MutexGuard<'_, ()> {
        self.exclusive.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn snapshot(&self) -> InstallView {
        self.state.borrow().view.clone()
    }

    pub fn is_running(&self) -> bool {
        self.state.borrow().view.state == InstallState::Running
    }

    /// Every change from now on (and the current state, marked as seen).
    pub fn subscribe(&self) -> watch::Receiver<Observed> {
        self.state.subscribe()
    }

    /// Refuses installs with `reason` until called with `None`. The health gate holds them
    /// while the booted slot is on trial: the other slot is its fallback, and writing it then
    /// would leave a failing trial nothing known-good to fall back to.
    pub fn hold(&self, hold: Hold) {
        self.hold.send_replace(hold);
    }

    /// Waits (at most `limit`) while the gate has not assessed this boot.
    pub async fn wait_assessed(&self, limit: std::time::Duration) {
        let mut rx = self.hold.subscribe();
        let _ = tokio::time::timeout(limit, rx.wait_for(|h| *h != Hold::Pending)).await;
    }

    /// Whether the gate lets installs begin now (an install may still be running).
    pub fn may_begin(&self) -> Result<(), ClaimError> {
        match &*self.hold.borrow() {
            Hold::Open => {}
            Hold::Pending => {
                return Err(ClaimError::Held(
                    "the health gate has not assessed this boot yet; retry in a moment".into(),
                ))
            }
            Hold::Held(reason) => return Err(ClaimError::Held(reason.clone())),
        }
        Ok(())
    }

    /// Claims the installer for `bundle`, unless an install runs or installs are held.
    pub fn try_begin(&self, bundle: &str) -> Result<InstallView, ClaimError> {
        self.may_begin()?;
        let mut begun = None;
        // The check and the claim happen under the watch's lock: two callers cannot both win.
        self.state.send_if_modified(|o| {
            if o.view.state == InstallState::Running {
                return false;
            }
            o.serial += 1;
            o.view = InstallView {
                state: InstallState::Running,
                step: VERIFY_STEP.to_owned(),
                bundle: Some(bundle.to_owned()),
                started_ms: Some(crate::now_ms()),
                ..InstallView::idle()
            };
            begun = Some(o.view.clone());
            true
        });
        begun.ok_or(ClaimError::Busy)
    }

    pub fn verified(&self, compatible: &str, version: Option<&str>) {
        self.state.send_modify(|o| {
            o.view.compatible = Some(compatible.to_owned());
            o.view.version = version.map(str::to_owned);
        });
    }

    pub fn progress(&self, p: &Progress) {
        self.state.send_if_modified(|o| {
            let v = &mut o.view;
            if v.step != p.step {
                tracing::info!(percent = p.percent, step = %p.step, "install");
            }
            // The engine never goes backwards; keep the view monotonic even if it did.
            let percent = v.percent.max(p.percent);
            let changed = percent != v.percent || v.step != p.step;
            v.percent = percent;
            v.step.clone_from(&p.step);
            changed
        });
    }

    pub fn finish(&self, result: &Result<InstallReport, UpdateError>) {
        self.state.send_modify(|o| {
            let v = &mut o.view;
            v.finished_ms = Some(crate::now_ms());
            match result {
                Ok(report) => {
                    v.state = InstallState::Succeeded;
                    v.percent = 100;
                    v.written = report
                        .written
                        .iter()
                        .map(|(slot, bytes)| WrittenSlot {
                            slot: slot.to_string(),
                            bytes: *bytes,
                        })
                        .collect();
                    v.activated = report.activated.iter().map(|s| s.to_string()).collect();
                }
                Err(e) => {
                    v.state = InstallState::Failed;
                    v.error = Some(crate::oneline(&e.to_string()));
                }
            }
            o.finished = Some((o.serial, o.view.clone()));
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hold_refuses_installs_with_its_reason_until_released() {
        let t = InstallTracker::default();
        t.hold(Hold::Held("slot B is on trial".into()));
        assert_eq!(
            t.try_begin("/a.raucb").unwrap_err(),
            ClaimError::Held("slot B is on trial".into())
        );
        assert_eq!(
            t.snapshot().state,
            InstallState::Idle,
            "nothing was claimed"
        );
        t.hold(Hold::Open);
        assert!(t.try_begin("/a.raucb").is_ok());
    }

    #[tokio::test]
    async fn an_install_waits_for_the_gate_to_assess_the_boot() {
        let t = std::sync::Arc::new(InstallTracker::default());
        t.hold(Hold::Pending);
        let waiter = tokio::spawn({
            let t = t.clone();
            async move {
                t.wait_assessed(std::time::Duration::from_secs(10)).await;
                t.try_begin("/a.raucb")
            }
        });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "still waiting while pending");
        t.hold(Hold::Open);
        assert!(waiter.await.unwrap().is_ok());
    }

    #[test]
    fn observers_see_each_install_begin_and_end_even_when_they_wake_late() {
        let t = InstallTracker::default();
        let mut rx = t.subscribe();
        assert_eq!(rx.borrow_and_update().serial, 0);
        assert!(t.try_begin("/a.raucb").is_ok());
        assert_eq!(
            t.try_begin("/b.raucb").unwrap_err(),
            ClaimError::Busy,
            "one at a time"
        );
        t.progress(&Progress {
            percent: 40,
            step: "Copying image to rootfs.1".into(),
        });
        t.finish(&Err(UpdateError::NotConfigured));
        // The next install begins before the observer looked: the failure is still there.
        assert!(t.try_begin("/b.raucb").is_ok());
        assert!(rx.has_changed().unwrap());
        let o = rx.borrow_and_update().clone();
        assert_eq!(o.serial, 2);
        assert_eq!(o.view.state, InstallState::Running);
        assert_eq!(o.view.percent, 0, "a new install starts from 0");
        let (serial, last) = o.finished.unwrap();
        assert_eq!((serial, last.state), (1, InstallState::Failed));
        assert!(last.error.unwrap().contains("not configured"));
        // Repeating the same progress wakes nobody.
        t.progress(&Progress {
            percent: 0,
            step: VERIFY_STEP.into(),
        });
        assert!(!rx.has_changed().unwrap());
    }
}

//! One install at a time, and what `GET /v1/install` shows: the running install's percent and
//! step, or the last install's result. The state lives in memory only: after a restart the
//! slots and the status file (`GET /v1/slots`) tell what was installed.

use std::sync::{Mutex, MutexGuard};

use outpost_update::install::InstallReport;
use outpost_update::Progress;

use super::UpdateError;
use crate::views::{InstallState, InstallView, WrittenSlot};

#[derive(Debug)]
pub struct InstallTracker {
    view: Mutex<InstallView>,
    /// Held by an install for its whole run and by every mark: both write the bootloader env
    /// and the status file, which must never be read-modified-written by two at once.
    exclusive: Mutex<()>,
}

impl Default for InstallTracker {
    fn default() -> Self {
        InstallTracker {
            view: Mutex::new(InstallView::idle()),
            exclusive: Mutex::new(()),
        }
    }
}

/// Step shown while the bundle's signature and payload are checked (before RAUC's steps).
pub const VERIFY_STEP: &str = "Checking bundle";

impl InstallTracker {
    fn lock(&self) -> MutexGuard<'_, InstallView> {
        // A panic elsewhere must not take the install status down with it.
        self.view.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Serialises bootloader/status writers; blocks (call on the blocking pool).
    pub fn exclusive(&self) -> MutexGuard<'_, ()> {
        self.exclusive.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn snapshot(&self) -> InstallView {
        self.lock().clone()
    }

    pub fn is_running(&self) -> bool {
        self.lock().state == InstallState::Running
    }

    /// Claims the installer for `bundle`; `None` if an install is already running.
    pub fn try_begin(&self, bundle: &str) -> Option<InstallView> {
        let mut v = self.lock();
        if v.state == InstallState::Running {
            return None;
        }
        *v = InstallView {
            state: InstallState::Running,
            step: VERIFY_STEP.to_owned(),
            bundle: Some(bundle.to_owned()),
            started_ms: Some(crate::now_ms()),
            ..InstallView::idle()
        };
        Some(v.clone())
    }

    pub fn verified(&self, compatible: &str, version: Option<&str>) {
        let mut v = self.lock();
        v.compatible = Some(compatible.to_owned());
        v.version = version.map(str::to_owned);
    }

    pub fn progress(&self, p: &Progress) {
        let mut v = self.lock();
        if v.step != p.step {
            tracing::info!(percent = p.percent, step = %p.step, "install");
        }
        // The engine never goes backwards; keep the view monotonic even if it did.
        v.percent = v.percent.max(p.percent);
        v.step.clone_from(&p.step);
    }

    pub fn finish(&self, result: &Result<InstallReport, UpdateError>) {
        let mut v = self.lock();
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
    }
}

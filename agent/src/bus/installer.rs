//! RAUC's installer over `crate::update`: installs start through the same
//! [`update::install::start`] as `POST /v1/install`, slots and marks go through
//! [`update::slots`], and the tracker's watch becomes the interface's install status.

use std::path::Path;
use std::sync::Arc;

use outpost_bundle::{Bundle, BundleInfo};
use outpost_dbus::rauc::{
    BackendError, BundleDescription, FinishedInstall, ImageDescription, InstallRequest,
    InstallStatus, InstallerBackend, Marked, RunningInstall, SlotEntry, SystemInfo,
};
use outpost_health::runner::BoxFuture;
use outpost_update::Booted;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::slot_status;
use crate::config::UpdateConfig;
use crate::update::install::Overrides;
use crate::update::tracker::Observed;
use crate::update::{self, context, InstallTracker, UpdateError};
use crate::views::InstallState;

pub struct RaucInstaller {
    cfg: Arc<UpdateConfig>,
    tracker: Arc<InstallTracker>,
    status: watch::Receiver<InstallStatus>,
}

impl RaucInstaller {
    /// The backend, and the task that mirrors the tracker into its install status (it ends
    /// when the D-Bus side stops listening).
    pub fn new(cfg: Arc<UpdateConfig>, tracker: Arc<InstallTracker>) -> (Self, JoinHandle<()>) {
        let mut from = tracker.subscribe();
        let (to, status) = watch::channel(install_status(&from.borrow_and_update()));
        let forward = tokio::spawn(async move {
            loop {
                tokio::select! {
                    changed = from.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        to.send_replace(install_status(&from.borrow_and_update()));
                    }
                    _ = to.closed() => return,
                }
            }
        });
        (
            RaucInstaller {
                cfg,
                tracker,
                status,
            },
            forward,
        )
    }
}

/// The tracker's state in the interface's terms.
pub fn install_status(o: &Observed) -> InstallStatus {
    InstallStatus {
        running: (o.view.state == InstallState::Running).then(|| RunningInstall {
            serial: o.serial,
            percent: o.view.percent,
            step: o.view.step.clone(),
        }),
        finished: o.finished.as_ref().map(|(serial, v)| FinishedInstall {
            serial: *serial,
            error: match v.state {
                InstallState::Succeeded => None,
                _ => Some(v.error.clone().unwrap_or_else(|| "failed".to_owned())),
            },
        }),
    }
}

fn failed(e: impl std::fmt::Display) -> BackendError {
    BackendError::new(crate::oneline(&e.to_string()))
}

/// Runs blocking update code off the runtime.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, UpdateError> + Send + 'static,
) -> Result<T, BackendError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| failed(format!("internal task failed: {e}")))?
        .map_err(failed)
}

impl InstallerBackend for RaucInstaller {
    fn start_install(&self, request: InstallRequest) -> BoxFuture<'_, Result<(), BackendError>> {
        Box::pin(async move {
            let overrides = Overrides {
                ignore_compatible: request.ignore_compatible,
                ignore_version_limit: request.ignore_version_limit,
                require_manifest_hash: request.require_manifest_hash,
            };
            update::install::start(
                self.cfg.clone(),
                self.tracker.clone(),
                &request.source,
                overrides,
            )
            .await
            .map(drop)
            .map_err(failed)
        })
    }

    fn install_status(&self) -> watch::Receiver<InstallStatus> {
        self.status.clone()
    }

    fn inspect(&self, source: String) -> BoxFuture<'_, Result<BundleDescription, BackendError>> {
        let cfg = self.cfg.clone();
        Box::pin(async move {
            if !Path::new(&source).is_absolute() {
                return Err(BackendError::new(format!(
                    "bundle {source:?} must be an absolute path on the device"
                )));
            }
            blocking(move || {
                let keyring = context::keyring(&cfg)?;
                let path = Path::new(&source);
                let bundle = Bundle::open(path, &keyring, &context::verify_options(&cfg)).map_err(
                    |source| UpdateError::Bundle {
                        path: path.to_owned(),
                        source,
                    },
                )?;
                Ok(describe(bundle.info(), bundle.manifest()))
            })
            .await
        })
    }

    fn mark(&self, state: String, slot: String) -> BoxFuture<'_, Result<Marked, BackendError>> {
        let cfg = self.cfg.clone();
        let tracker = self.tracker.clone();
        Box::pin(async move {
            // An install holds the bootloader for minutes: refuse rather than queue behind it.
            if tracker.is_running() {
                return Err(BackendError::new(
                    "an installation is running; mark again when it has finished",
                ));
            }
            let m = blocking(move || update::slots::mark(&cfg, &tracker, &state, &slot)).await?;
            Ok(Marked {
                slot: m.slot,
                message: m.message,
            })
        })
    }

    fn slot_status(&self) -> BoxFuture<'_, Result<Vec<SlotEntry>, BackendError>> {
        let cfg = self.cfg.clone();
        Box::pin(async move {
            let view = blocking(move || update::slots::view(&cfg)).await?;
            Ok(slot_status::entries(&view))
        })
    }

    fn primary(&self) -> BoxFuture<'_, Result<String, BackendError>> {
        let cfg = self.cfg.clone();
        Box::pin(async move {
            let view = blocking(move || update::slots::view(&cfg)).await?;
            view.primary.ok_or_else(|| {
                BackendError::new("the bootloader names none of the configured slots as primary")
            })
        })
    }

    fn system(&self) -> SystemInfo {
        SystemInfo {
            compatible: self.cfg.system.compatible.clone(),
            variant: self.cfg.system.variant_name.clone().unwrap_or_default(),
            boot_slot: boot_slot(&self.cfg),
        }
    }
}

/// RAUC's `BootSlot`: what the kernel command line named, i.e. the booted slot's bootname
/// (its name if it has none); `_external_` for `rauc.external`; empty when undetectable.
fn boot_slot(cfg: &UpdateConfig) -> String {
    match context::booted(cfg) {
        Ok(Booted::Slot(id)) => match cfg.system.slots.get(&id) {
            Some(s) => s
                .bootname
                .as_ref()
                .map_or_else(|| id.to_string(), |b| b.to_string()),
            None => id.to_string(),
        },
        Ok(Booted::External) => "_external_".to_owned(),
        Err(e) => {
            tracing::warn!(error = %e, "D-Bus BootSlot: booted slot unknown");
            String::new()
        }
    }
}

fn describe(info: &BundleInfo, m: &outpost_bundle::Manifest) -> BundleDescription {
    BundleDescription {
        manifest_hash: info.manifest_hash.clone(),
        compatible: m.compatible.clone(),
        version: m.version.clone(),
        description: m.description.clone(),
        build: m.build.clone(),
        format: m.format.to_string(),
        verity_hash: m.verity_hash.map(hex),
        verity_salt: m.verity_salt.map(hex),
        verity_size: m.verity_size,
        images: info
            .images
            .iter()
            .map(|i| ImageDescription {
                slot_class: i.class.clone(),
                variant: i.variant.clone(),
                filename: i.filename.clone(),
                checksum: i.sha256.clone(),
                size: i.size,
                hooks: [
                    (i.hooks.pre_install, "pre-install"),
                    (i.hooks.install, "install"),
                    (i.hooks.post_install, "post-install"),
                ]
                .into_iter()
                .filter(|(on, _)| *on)
                .map(|(_, h)| h.to_owned())
                .collect(),
                adaptive: i.adaptive.clone(),
            })
            .collect(),
        meta: m
            .meta
            .iter()
            .map(|(g, kvs)| {
                (
                    g.clone(),
                    kvs.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                )
            })
            .collect(),
    }
}

fn hex(bytes: [u8; 32]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracker_states_map_to_running_and_finished() {
        let t = InstallTracker::default();
        let mut rx = t.subscribe();
        assert_eq!(
            install_status(&rx.borrow_and_update()),
            InstallStatus::default()
        );
        t.try_begin("/a.raucb").unwrap();
        let s = install_status(&rx.borrow_and_update());
        let run = s.running.unwrap();
        assert_eq!((run.serial, run.percent), (1, 0));
        assert!(s.finished.is_none());
        t.finish(&Err(UpdateError::NotConfigured));
        let s = install_status(&rx.borrow_and_update());
        assert!(s.running.is_none());
        let done = s.finished.unwrap();
        assert_eq!(done.serial, 1);
        assert!(done.error.unwrap().contains("not configured"));
    }
}

//! One install, run on the blocking pool: configuration checks first (bootloader, booted slot,
//! status folder), then the bundle's signature and payload, then `outpost-update`'s plan and
//! executor, whose progress feeds the tracker.
//!
//! [`start`] is the one way an install begins, shared by `POST /v1/install` and D-Bus
//! `InstallBundle`: the same checks, the same one-at-a-time claim, the same detached task.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use outpost_bundle::Bundle;
use outpost_update::install::{install, Environment, InstallReport};
use outpost_update::InstallOptions;

use super::{context, InstallTracker, UpdateError};
use crate::config::UpdateConfig;
use crate::views::InstallView;

/// Per-install switches a caller may set (RAUC's `InstallBundle` arguments); the rest comes
/// from the configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// RAUC `ignore-compatible`: install a bundle made for another `compatible`.
    pub ignore_compatible: bool,
    /// RAUC `ignore-version-limit`: ignore `min-bundle-version`.
    pub ignore_version_limit: bool,
    /// RAUC `require-manifest-hash`: the bundle's manifest must have this sha256 (hex).
    pub require_manifest_hash: Option<String>,
}

/// Why an install did not start (nothing was claimed or written).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("bundle {0:?} must be an absolute path on the device")]
    NotAbsolute(String),
    #[error("bundle {path}: {source}")]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("an installation is already running")]
    Busy,
    /// Installs are held (the booted slot is on trial); the text says why and until when.
    #[error("{0}")]
    Held(String),
}

/// Checks `bundle`, claims the installer and runs the install detached on the blocking pool.
/// Returns the tracker's view of the begun install; progress and the result go to `tracker`.
pub async fn start(
    cfg: Arc<UpdateConfig>,
    tracker: Arc<InstallTracker>,
    bundle: &str,
    overrides: Overrides,
) -> Result<InstallView, StartError> {
    // Right after start the gate is still assessing this boot; wait for it rather than race.
    // A trial refuses before anything else: that is what the caller must hear first.
    tracker
        .wait_assessed(std::time::Duration::from_secs(10))
        .await;
    if let Err(super::tracker::ClaimError::Held(reason)) = tracker.may_begin() {
        return Err(StartError::Held(reason));
    }
    let path = PathBuf::from(bundle);
    if !path.is_absolute() {
        return Err(StartError::NotAbsolute(bundle.to_owned()));
    }
    // A stat only (not is_file): the bundle may come through a pipe or a device node.
    if let Err(source) = tokio::fs::metadata(&path).await {
        return Err(StartError::Unreadable { path, source });
    }
    let view = tracker.try_begin(bundle).map_err(|e| match e {
        super::tracker::ClaimError::Busy => StartError::Busy,
        super::tracker::ClaimError::Held(reason) => StartError::Held(reason),
    })?;
    tracing::info!(bundle = %path.display(), ?overrides, "install started");
    // Detached: the install outlives the request. A daemon shutdown waits for it (the
    // runtime joins blocking tasks), so it is never cut between "written" and "activated".
    drop(tokio::task::spawn_blocking(move || {
        let result = run(&cfg, &path, &overrides, &tracker);
        match &result {
            Ok(r) => {
                tracing::info!(written = ?r.written, activated = ?r.activated, "install succeeded")
            }
            Err(e) => tracing::warn!(error = %e, "install failed"),
        }
        tracker.finish(&result);
    }));
    Ok(view)
}

/// Installs `bundle`; the caller has claimed the tracker with `try_begin` and calls `finish`.
pub fn run(
    cfg: &UpdateConfig,
    bundle: &Path,
    overrides: &Overrides,
    tracker: &InstallTracker,
) -> Result<InstallReport, UpdateError> {
    let _exclusive = tracker.exclusive();
    let bootloader = context::open_bootloader(cfg)?;
    let booted = context::booted(cfg)?;
    let status = context::status_file(cfg)?;
    let keyring = context::keyring(cfg)?;
    let verified =
        Bundle::open(bundle, &keyring, &context::verify_options(cfg)).map_err(|source| {
            UpdateError::Bundle {
                path: bundle.to_owned(),
                source,
            }
        })?;
    let info = verified.info();
    tracing::info!(bundle = %bundle.display(), compatible = %info.compatible, version = ?info.version, signer = %info.signer.subject, "bundle verified");
    if let Some(want) = &overrides.require_manifest_hash {
        // Checked after the signature (the hash of an unsigned manifest means nothing) and
        // before the plan: a mismatch writes nothing.
        if !want.eq_ignore_ascii_case(&info.manifest_hash) {
            return Err(UpdateError::ManifestHash {
                expected: want.clone(),
                found: info.manifest_hash.clone(),
            });
        }
    }
    tracker.verified(&info.compatible, info.version.as_deref());
    let env = Environment {
        bootloader: &*bootloader,
        status_file: status.as_deref(),
        now: &SystemTime::now,
    };
    // RAUC's convention: the chunk store of `x.raucb` is the folder `x.castr` beside it.
    let castr = bundle.with_extension("castr");
    let options = InstallOptions {
        ignore_compatible: overrides.ignore_compatible,
        ignore_version_limit: overrides.ignore_version_limit,
        casync_store: castr.is_dir().then_some(castr),
        ..InstallOptions::from_config(&cfg.system)
    };
    stage_workloads(cfg, &verified, &booted, &options, tracker)?;
    super::armed::before_install(tracker);
    let report = install(
        &verified,
        &cfg.system.compatible,
        &cfg.system.slots,
        &booted,
        &options,
        &env,
        &mut |p| tracker.progress(&p),
    )?;
    super::armed::after_install(cfg, tracker, &report.activated);
    Ok(report)
}

/// Workloads follow the slot: a joint OS + workloads bundle's set is imported and bound to the
/// slot the install activates; a bundle without one carries the booted slot's set over. Both
/// happen before anything is written, so the new slot never boots with a stale set.
fn stage_workloads(
    cfg: &UpdateConfig,
    verified: &outpost_bundle::VerifiedBundle,
    booted: &outpost_update::Booted,
    options: &InstallOptions,
    tracker: &InstallTracker,
) -> Result<(), UpdateError> {
    use outpost_update::install::{plan, slot_sizes, PlanInput, Step, WORKLOADS_CLASS};
    let carries_set = verified.manifest().image(WORKLOADS_CLASS).is_some();
    let Some(workloads) = tracker.workloads() else {
        return match carries_set {
            true => Err(UpdateError::WorkloadsNotConfigured),
            false => Ok(()),
        };
    };
    // The same pure plan the install makes next: which slot it activates.
    let sizes = slot_sizes(&cfg.system.slots);
    let planned = plan(PlanInput {
        manifest: verified.manifest(),
        compatible: &cfg.system.compatible,
        slots: &cfg.system.slots,
        booted,
        slot_sizes: &sizes,
        options,
    })
    .map_err(outpost_update::install::Error::from)?;
    let slot = planned
        .steps
        .iter()
        .find_map(|s| match s {
            Step::Activate { slot, .. } => Some(slot.clone()),
            _ => None,
        })
        .or_else(|| planned.images.first().map(|i| i.slot.clone()))
        .ok_or_else(|| UpdateError::Workloads("the install writes no slot".into()))?
        .to_string();
    if carries_set {
        let revision = crate::workloads::stage_for_slot(workloads, verified, &slot)
            .map_err(UpdateError::Workloads)?;
        tracing::info!(%slot, %revision, "workload set staged for the new slot");
    } else if let outpost_update::Booted::Slot(current) = booted {
        if let Some(revision) = crate::workloads::carry_over(workloads, &current.to_string(), &slot)
            .map_err(UpdateError::Workloads)?
        {
            tracing::info!(%slot, %revision, "the booted slot's workload set carries over to the new slot");
        }
    }
    Ok(())
}

//! One install, run on the blocking pool: configuration checks first (bootloader, booted slot,
//! status folder), then the bundle's signature and payload, then `outpost-update`'s plan and
//! executor, whose progress feeds the tracker.

use std::path::Path;
use std::time::SystemTime;

use outpost_bundle::Bundle;
use outpost_update::install::{install, Environment, InstallReport};
use outpost_update::InstallOptions;

use super::{context, InstallTracker, UpdateError};
use crate::config::UpdateConfig;

/// Installs `bundle`; the caller has claimed the tracker with `try_begin` and calls `finish`.
pub fn run(
    cfg: &UpdateConfig,
    bundle: &Path,
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
    tracker.verified(&info.compatible, info.version.as_deref());
    let env = Environment {
        bootloader: &*bootloader,
        status_file: status.as_deref(),
        now: &SystemTime::now,
    };
    let report = install(
        &verified,
        &cfg.system.compatible,
        &cfg.system.slots,
        &booted,
        &InstallOptions::from_config(&cfg.system),
        &env,
        &mut |p| tracker.progress(&p),
    )?;
    Ok(report)
}

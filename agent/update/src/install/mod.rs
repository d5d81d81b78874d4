//! Install = [`plan`] (pure: manifest + slots + booted slot + options → steps or a
//! [`Refusal`]) then [`execute`] (the small I/O driver). [`install`] does both, after
//! measuring the slot devices.

mod casync_image;
mod execute;
mod plan;
mod progress;
mod slot_writer;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Seek, SeekFrom};

use outpost_bundle::VerifiedBundle;

pub use execute::{execute, Environment, InstallError, InstallReport};
pub use plan::{
    plan, ImageTarget, InstallOptions, Plan, PlanInput, Refusal, Step, WORKLOADS_CLASS,
};
pub use progress::Progress;

use crate::slots::{Booted, SlotId, SlotTable};

/// Refused before anything was written, or failed while executing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("installation refused: {0}")]
    Refused(#[from] Refusal),
    #[error("installation failed: {0}")]
    Failed(#[from] InstallError),
}

/// Size in bytes of every slot device that can be opened (regular file or block device).
/// Slots whose device is missing are left out; the planner refuses to write them.
pub fn slot_sizes(slots: &SlotTable) -> BTreeMap<SlotId, u64> {
    slots
        .iter()
        .filter_map(|s| {
            // Seeking to the end gives the size of block devices too (metadata says 0).
            let size = File::open(&s.device)
                .and_then(|mut f| f.seek(SeekFrom::End(0)))
                .ok()?;
            Some((s.id.clone(), size))
        })
        .collect()
}

/// Plans and executes the install of a verified bundle.
pub fn install(
    bundle: &VerifiedBundle,
    compatible: &str,
    slots: &SlotTable,
    booted: &Booted,
    options: &InstallOptions,
    env: &Environment<'_>,
    progress: &mut dyn FnMut(Progress),
) -> Result<InstallReport, Error> {
    let sizes = slot_sizes(slots);
    let plan = plan(PlanInput {
        manifest: bundle.manifest(),
        compatible,
        slots,
        booted,
        slot_sizes: &sizes,
        options,
    })?;
    Ok(execute(&plan, bundle, env, progress)?)
}

//! The I/O driver of a [`Plan`]: runs each step against the bootloader, the slot devices and
//! the status file. It takes no decisions; the plan did.
//!
//! Slot writes: the device is opened for writing without truncation (block devices cannot be
//! truncated and RAUC does not truncate file-backed slots either), the image is streamed from
//! the bundle through `extract_image` (which hashes what it streams and checks size and sha256
//! at the end), capped at the manifest size so a lying payload cannot write past the image
//! ([`SlotWriter`], which writes around the page cache where it can and otherwise starts
//! writeback early), then `fsync`ed. Only then is the
//! status recorded and, after all images, the slot activated.

use std::fs::OpenOptions;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use outpost_boot::{BootError, Bootloader, SlotName, SlotState};
use outpost_bundle::{BundleError, VerifiedBundle};

use super::plan::{ImageTarget, Plan, Step};
use super::progress::{Progress, ProgressMeter};
use super::slot_writer::{self, SlotWriter};
use crate::slots::SlotId;
use crate::status_file::{CentralStatus, SlotStatus, StatusFileError};
use crate::timestamp::rauc_timestamp;

/// What the executor writes to, besides the slots.
pub struct Environment<'a> {
    pub bootloader: &'a dyn Bootloader,
    /// `central.raucs`; `None` keeps no status (per-slot status is not supported).
    pub status_file: Option<&'a Path>,
    /// Wall clock for `installed.timestamp` / `activated.timestamp`.
    pub now: &'a dyn Fn() -> SystemTime,
}

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("failed marking slot {slot} non-bootable: {source}")]
    MarkBad {
        slot: SlotId,
        #[source]
        source: Box<BootError>,
    },
    #[error("failed opening slot {slot} device {device}: {source}")]
    OpenSlot {
        slot: SlotId,
        device: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed updating slot {slot}: {source}")]
    Write {
        slot: SlotId,
        #[source]
        source: Box<BundleError>,
    },
    #[error("failed syncing slot {slot}: {source}")]
    Sync {
        slot: SlotId,
        #[source]
        source: io::Error,
    },
    #[error("error while writing status file: {0}")]
    Status(#[from] StatusFileError),
    #[error("failed marking slot {slot} bootable: {source}")]
    Activate {
        slot: SlotId,
        #[source]
        source: Box<BootError>,
    },
    #[error("failed writing the casync image of slot {slot}: {message}")]
    Casync { slot: SlotId, message: String },
    #[error("plan step refers to image #{0}, which the plan does not have")]
    BadPlan(usize),
}

/// What was done.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstallReport {
    /// Slots written, with the bytes written to each.
    pub written: Vec<(SlotId, u64)>,
    pub activated: Vec<SlotId>,
}

/// Runs `plan` (from `plan()` over `bundle.manifest()`), reporting progress as it goes.
pub fn execute(
    plan: &Plan,
    bundle: &VerifiedBundle,
    env: &Environment<'_>,
    progress: &mut dyn FnMut(Progress),
) -> Result<InstallReport, InstallError> {
    let mut status = match env.status_file {
        Some(p) => Some(CentralStatus::load(p)?),
        None => None,
    };
    let mut meter = ProgressMeter::new(plan, progress);
    let mut report = InstallReport::default();
    for step in &plan.steps {
        match step {
            Step::MarkBad { slot, bootname } => {
                meter.begin(format!("Marking target slot {slot} as non-bootable"));
                mark_bad(env.bootloader, slot, bootname)?;
            }
            Step::MarkUpdating { image } => {
                let t = image_of(plan, *image)?;
                meter.begin(format!("Checking slot {}", t.slot));
                update_status(&mut status, env, &t.slot, |s| {
                    s.status = Some("update".into());
                    s.checksum = None;
                })?;
            }
            Step::WriteImage { image } => {
                let t = image_of(plan, *image)?;
                meter.begin(format!("Copying image to {}", t.slot));
                let n = write_image(bundle, t, &mut |n| meter.bytes(n))?;
                report.written.push((t.slot.clone(), n));
            }
            Step::RecordInstalled { image } => {
                let t = image_of(plan, *image)?;
                meter.begin(format!("Updating slot {} status", t.slot));
                let now = rauc_timestamp((env.now)());
                update_status(&mut status, env, &t.slot, |s| {
                    record_installed(s, bundle, t, now)
                })?;
            }
            Step::Activate { slot, bootname } => {
                meter.begin(format!("Marking target slot {slot} as bootable"));
                env.bootloader
                    .set_primary(bootname)
                    .map_err(|source| InstallError::Activate {
                        slot: slot.clone(),
                        source: Box::new(source),
                    })?;
                let now = rauc_timestamp((env.now)());
                update_status(&mut status, env, slot, |s| {
                    s.activated_timestamp = Some(now);
                    s.activated_count += 1;
                })?;
                report.activated.push(slot.clone());
            }
        }
    }
    meter.finish("Installing done");
    Ok(report)
}

fn image_of(plan: &Plan, i: usize) -> Result<&ImageTarget, InstallError> {
    plan.images.get(i).ok_or(InstallError::BadPlan(i))
}

fn mark_bad(bl: &dyn Bootloader, slot: &SlotId, bootname: &SlotName) -> Result<(), InstallError> {
    bl.set_state(bootname, SlotState::Bad)
        .map_err(|source| InstallError::MarkBad {
            slot: slot.clone(),
            source: Box::new(source),
        })
}

/// RAUC's bookkeeping after a successful copy (`launch_and_wait_default_handler`).
fn record_installed(s: &mut SlotStatus, bundle: &VerifiedBundle, t: &ImageTarget, now: String) {
    let info = bundle.info();
    s.bundle_compatible = Some(info.compatible.clone());
    s.bundle_version = info.version.clone();
    s.bundle_description = info.description.clone();
    s.bundle_build = info.build.clone();
    s.bundle_hash = Some(info.manifest_hash.clone());
    s.status = Some("ok".into());
    s.checksum = Some((hex::encode(t.sha256), t.size));
    s.installed_timestamp = Some(now);
    s.installed_count += 1;
}

fn update_status(
    status: &mut Option<CentralStatus>,
    env: &Environment<'_>,
    slot: &SlotId,
    edit: impl FnOnce(&mut SlotStatus),
) -> Result<(), InstallError> {
    let (Some(st), Some(path)) = (status.as_mut(), env.status_file) else {
        return Ok(());
    };
    let mut s = st.slot(slot);
    edit(&mut s);
    st.set_slot(slot, &s);
    st.save(path)?;
    Ok(())
}

/// Streams one image into its slot; returns the bytes written.
fn write_image(
    bundle: &VerifiedBundle,
    t: &ImageTarget,
    on_bytes: &mut dyn FnMut(u64),
) -> Result<u64, InstallError> {
    if let Some(src) = &t.casync {
        return super::casync_image::write(bundle, t, src, on_bytes).map_err(|message| {
            InstallError::Casync {
                slot: t.slot.clone(),
                message,
            }
        });
    }
    let file = OpenOptions::new()
        .write(true)
        .open(&t.device)
        .map_err(|source| InstallError::OpenSlot {
            slot: t.slot.clone(),
            device: t.device.clone(),
            source,
        })?;
    let direct = slot_writer::open_direct(&t.device);
    let mut out = SlotWriter::new(&file, direct, t.size, on_bytes);
    let n = bundle
        .extract_image(&t.class, &mut out)
        .map_err(|source| InstallError::Write {
            slot: t.slot.clone(),
            source: Box::new(source),
        })?;
    // Durable before anything (status, bootloader) refers to the new content.
    file.sync_all().map_err(|source| InstallError::Sync {
        slot: t.slot.clone(),
        source,
    })?;
    Ok(n)
}

//! The install plan: pure. Given the signed manifest, the slots, the booted slot and the sizes
//! of the slot devices, either the ordered steps RAUC 1.8 would take, or a typed refusal
//! before anything is written (`launch_and_wait_default_handler` in RAUC's `src/install.c`).
//!
//! Order of steps: `MarkBad` every target root slot that has a bootname → per image:
//! `MarkUpdating` (status file) → `WriteImage` → `RecordInstalled` (status file) → `Activate`
//! every target root slot with a bootname (set primary + `activated.*`). Slots are written only
//! after they are marked bad, and activated only after every image is written, synced and
//! verified: a power cut at any step leaves the bootloader on the old good slot or on a fully
//! written new one.

use std::collections::BTreeMap;
use std::path::PathBuf;

use outpost_boot::SlotName;
use outpost_bundle::manifest::{check_filename, Image, Manifest};

use crate::slots::{Booted, SlotId, SlotTable};
use crate::version::{self, VersionError};

/// Install switches (RAUC's D-Bus `InstallBundle` args plus `system.conf` settings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallOptions {
    /// RAUC `ignore-compatible`.
    pub ignore_compatible: bool,
    /// Downgrade floor (`min-bundle-version`): bundles older than this are refused.
    pub min_version: Option<String>,
    /// RAUC `ignore-version-limit`.
    pub ignore_version_limit: bool,
    /// `activate-installed`: make the new slot primary after install (RAUC default true).
    pub activate: bool,
    /// `variant-name`: picks `[image.<class>.<variant>]` over the default image.
    pub variant: Option<String>,
    /// Where the chunks of casync images (`.caibx`) are: the bundle's `.castr` folder, or
    /// RAUC's `[casync] storepath`. `None`: casync images are refused.
    pub casync_store: Option<PathBuf>,
}

impl Default for InstallOptions {
    fn default() -> Self {
        InstallOptions {
            ignore_compatible: false,
            min_version: None,
            ignore_version_limit: false,
            activate: true,
            variant: None,
            casync_store: None,
        }
    }
}

impl InstallOptions {
    /// The defaults a `system.conf` sets: `activate-installed`, `min-bundle-version`,
    /// `variant-name`.
    pub fn from_config(conf: &crate::system_conf::SystemConfig) -> Self {
        InstallOptions {
            min_version: conf.min_bundle_version.clone(),
            activate: conf.activate_installed,
            variant: conf.variant_name.clone(),
            ..Default::default()
        }
    }
}

/// Everything the planner looks at. No I/O happens in planning.
#[derive(Debug, Clone, Copy)]
pub struct PlanInput<'a> {
    pub manifest: &'a Manifest,
    /// `[system] compatible`.
    pub compatible: &'a str,
    pub slots: &'a SlotTable,
    pub booted: &'a Booted,
    /// Size of each slot's device in bytes; a slot missing here has no device.
    pub slot_sizes: &'a BTreeMap<SlotId, u64>,
    pub options: &'a InstallOptions,
}

/// One image and where it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageTarget {
    pub class: String,
    pub slot: SlotId,
    pub device: PathBuf,
    pub filename: String,
    pub size: u64,
    pub sha256: [u8; 32],
    /// Set for a casync image: where its chunks are, and the seed (the booted group's slot of
    /// the same class, whose chunks need not be copied from the store).
    pub casync: Option<CasyncSource>,
}

/// The chunk sources of a casync image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CasyncSource {
    pub store: PathBuf,
    pub seed: Option<PathBuf>,
}

/// One step of the install, executed in order by `execute`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// `set_state(slot, bad)`: the bootloader must not pick the slot while it is written.
    MarkBad { slot: SlotId, bootname: SlotName },
    /// Status `update` without checksum, so a cut never leaves a stale checksum on garbage.
    MarkUpdating { image: usize },
    /// Stream `images[image]` into its slot, check size and sha256, fsync.
    WriteImage { image: usize },
    /// Status `ok` with the bundle's keys, `installed.*` bumped.
    RecordInstalled { image: usize },
    /// `set_primary(slot)` (fresh attempts) and `activated.*` bumped.
    Activate { slot: SlotId, bootname: SlotName },
}

/// An install, ready to execute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub images: Vec<ImageTarget>,
    pub steps: Vec<Step>,
}

/// Why an install is refused. Nothing has been written when one of these is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("compatible mismatch: expected '{system}', bundle is for '{bundle}'")]
    Incompatible { system: String, bundle: String },
    #[error("version mismatch: expected at least '{min}' but bundle manifest has {found}")]
    Downgrade { min: String, found: String },
    #[error("version limit: {0}")]
    BadVersion(#[from] VersionError),
    #[error("bundle has no images for slots (a workload set alone is applied by [workloads], not installed)")]
    NoImages,
    #[error("no slot of class '{class}' is configured (image '{filename}')")]
    UnknownClass { class: String, filename: String },
    #[error("no inactive target slot for class '{class}'")]
    NoTargetSlot { class: String },
    #[error("target slot {slot} is readonly")]
    ReadOnly { slot: SlotId },
    #[error("slot {slot}: slot type '{slot_type}' cannot be written by copying an image")]
    UnsupportedSlotType {
        slot: SlotId,
        slot_type: &'static str,
    },
    #[error("image for class '{class}': {what} is not supported by this installer")]
    Unsupported { class: String, what: String },
    #[error("image filename '{0}' escapes the bundle")]
    EscapingFilename(String),
    #[error("image '{filename}' has no size or sha256 in the manifest")]
    UnhashedImage { filename: String },
    #[error("slot {slot}: device {device} not found")]
    MissingDevice { slot: SlotId, device: PathBuf },
    #[error("image '{filename}' ({size} bytes) does not fit slot {slot} ({capacity} bytes)")]
    ImageTooLarge {
        filename: String,
        size: u64,
        slot: SlotId,
        capacity: u64,
    },
    /// Impossible by construction (target selection skips the booted group); kept as a last
    /// check so a future change cannot silently write the running system.
    #[error("refusing to write slot {slot}: it is the booted slot or part of its group")]
    TargetIsBooted { slot: SlotId },
}

/// The image class of a bundle's workload manifest set; never written to a slot.
pub const WORKLOADS_CLASS: &str = "manifests";

/// Builds the plan or refuses (see the module docs).
pub fn plan(input: PlanInput<'_>) -> Result<Plan, Refusal> {
    let m = input.manifest;
    let opts = input.options;
    if !opts.ignore_compatible && m.compatible != input.compatible {
        return Err(Refusal::Incompatible {
            system: input.compatible.to_string(),
            bundle: m.compatible.clone(),
        });
    }
    check_version(m, opts)?;
    if m.handler_filename.is_some() {
        return Err(unsupported("*", "a custom [handler]"));
    }
    if m.install_check_hook {
        return Err(unsupported("*", "the install-check hook"));
    }
    let group = input.slots.target_group(input.booted);
    let mut images = Vec::new();
    // The workload set of a joint OS + workloads bundle goes to no slot: the daemon stages
    // it for the target slot (docs/workloads.md).
    for image in select_images(m, opts.variant.as_deref())
        .into_iter()
        .filter(|i| i.class != WORKLOADS_CLASS)
    {
        images.push(target_for(&input, &group, image)?);
    }
    if images.is_empty() {
        return Err(Refusal::NoImages);
    }
    Ok(Plan {
        steps: steps(&input, &images, opts.activate),
        images,
    })
}

fn check_version(m: &Manifest, opts: &InstallOptions) -> Result<(), Refusal> {
    let Some(min) = opts
        .min_version
        .as_deref()
        .filter(|_| !opts.ignore_version_limit)
    else {
        return Ok(());
    };
    let downgrade = |found: String| Refusal::Downgrade {
        min: min.to_string(),
        found,
    };
    match &m.version {
        None => Err(downgrade("no version".into())),
        Some(v) if !version::at_least(v, min)? => Err(downgrade(format!("'{v}'"))),
        Some(_) => Ok(()),
    }
}

/// RAUC `get_install_images`: per class (manifest order), the image of the system's variant,
/// else the default image.
fn select_images<'m>(m: &'m Manifest, variant: Option<&str>) -> Vec<&'m Image> {
    let mut classes: Vec<&str> = Vec::new();
    for i in &m.images {
        if !classes.contains(&i.class.as_str()) {
            classes.push(&i.class);
        }
    }
    classes
        .into_iter()
        .filter_map(|c| {
            let of_class = || m.images.iter().filter(move |i| i.class == c);
            of_class()
                .find(|i| i.variant.is_some() && i.variant.as_deref() == variant)
                .or_else(|| of_class().find(|i| i.variant.is_none()))
        })
        .collect()
}

fn target_for(
    input: &PlanInput<'_>,
    group: &BTreeMap<String, &crate::slots::Slot>,
    image: &Image,
) -> Result<ImageTarget, Refusal> {
    let class = &image.class;
    let filename = match &image.filename {
        Some(f) if !image.hooks.install => f.clone(),
        _ => return Err(unsupported(class, "an 'install' slot hook")),
    };
    if image.hooks.pre_install || image.hooks.post_install {
        return Err(unsupported(class, "pre-/post-install slot hooks"));
    }
    check_filename(&filename).map_err(|_| Refusal::EscapingFilename(filename.clone()))?;
    if !input.slots.has_class(class) {
        return Err(Refusal::UnknownClass {
            class: class.clone(),
            filename,
        });
    }
    let casync = if filename.ends_with(".caibx") {
        let store = input.options.casync_store.clone().ok_or_else(|| {
            unsupported(
                class,
                "a casync image (.caibx) without its chunk store (the .castr folder beside the bundle)",
            )
        })?;
        let seed = input
            .slots
            .iter()
            .find(|s| {
                s.id.class() == class.as_str() && input.slots.in_booted_group(s, input.booted)
            })
            .map(|s| s.device.clone());
        Some(CasyncSource { store, seed })
    } else {
        if let Some(kind) = archive_kind(&filename) {
            return Err(unsupported(class, kind));
        }
        None
    };
    let slot = *group.get(class).ok_or_else(|| Refusal::NoTargetSlot {
        class: class.clone(),
    })?;
    if input.slots.in_booted_group(slot, input.booted) {
        return Err(Refusal::TargetIsBooted {
            slot: slot.id.clone(),
        });
    }
    if slot.readonly {
        return Err(Refusal::ReadOnly {
            slot: slot.id.clone(),
        });
    }
    if !slot.slot_type.is_block_copy() {
        return Err(Refusal::UnsupportedSlotType {
            slot: slot.id.clone(),
            slot_type: slot.slot_type.as_str(),
        });
    }
    let (Some(size), Some(sha256)) = (image.size, image.sha256) else {
        return Err(Refusal::UnhashedImage { filename });
    };
    let capacity = *input
        .slot_sizes
        .get(&slot.id)
        .ok_or_else(|| Refusal::MissingDevice {
            slot: slot.id.clone(),
            device: slot.device.clone(),
        })?;
    if size > capacity {
        return Err(Refusal::ImageTooLarge {
            filename,
            size,
            slot: slot.id.clone(),
            capacity,
        });
    }
    Ok(ImageTarget {
        class: class.clone(),
        slot: slot.id.clone(),
        device: slot.device.clone(),
        filename,
        size,
        sha256,
        casync,
    })
}

/// Image types that need unpacking (tar) or chunk stores (casync): not a verbatim copy.
fn archive_kind(filename: &str) -> Option<&'static str> {
    const KINDS: &[(&str, &str)] = &[
        (".caibx", "a casync image (.caibx)"),
        (".caidx", "a casync directory index (.caidx)"),
        (".tar", "a tar archive"),
        (".tgz", "a tar archive"),
        (".tar.gz", "a tar archive"),
        (".tar.xz", "a tar archive"),
        (".tar.bz2", "a tar archive"),
        (".tar.zst", "a tar archive"),
    ];
    KINDS
        .iter()
        .find(|(ext, _)| filename.ends_with(ext))
        .map(|(_, k)| *k)
}

/// Root target slots that carry a bootname, in image order (RAUC skips children and
/// bootname-less slots when marking and activating).
fn boot_targets(input: &PlanInput<'_>, images: &[ImageTarget]) -> Vec<(SlotId, SlotName)> {
    let mut out: Vec<(SlotId, SlotName)> = Vec::new();
    for t in images {
        let Some(slot) = input.slots.get(&t.slot) else {
            continue;
        };
        if let (None, Some(b)) = (&slot.parent, &slot.bootname) {
            if !out.iter().any(|(id, _)| id == &slot.id) {
                out.push((slot.id.clone(), b.clone()));
            }
        }
    }
    out
}

fn steps(input: &PlanInput<'_>, images: &[ImageTarget], activate: bool) -> Vec<Step> {
    let boot = boot_targets(input, images);
    let mut steps: Vec<Step> = boot
        .iter()
        .map(|(slot, bootname)| Step::MarkBad {
            slot: slot.clone(),
            bootname: bootname.clone(),
        })
        .collect();
    for image in 0..images.len() {
        steps.push(Step::MarkUpdating { image });
        steps.push(Step::WriteImage { image });
        steps.push(Step::RecordInstalled { image });
    }
    if activate {
        steps.extend(
            boot.into_iter()
                .map(|(slot, bootname)| Step::Activate { slot, bootname }),
        );
    }
    steps
}

fn unsupported(class: &str, what: &str) -> Refusal {
    Refusal::Unsupported {
        class: class.to_string(),
        what: what.to_string(),
    }
}

#[cfg(test)]
mod tests;

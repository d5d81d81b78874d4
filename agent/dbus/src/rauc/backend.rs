//! What the RAUC interface needs from the installer, in plain Rust types (no zbus here): the
//! daemon implements [`InstallerBackend`] over its update code, tests with a stand-in.

use outpost_health::runner::BoxFuture;
use tokio::sync::watch;

use super::values::Value;

/// A failed call: one line, shown to the D-Bus caller as RAUC shows its errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BackendError(pub String);

impl BackendError {
    pub fn new(message: impl Into<String>) -> Self {
        BackendError(message.into())
    }
}

/// One `InstallBundle` call, its arguments already checked by the interface.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstallRequest {
    /// The bundle's absolute path (what the caller sent; the backend checks it).
    pub source: String,
    pub ignore_compatible: bool,
    pub ignore_version_limit: bool,
    /// sha256 (hex) the bundle's manifest must have.
    pub require_manifest_hash: Option<String>,
}

/// The installer as observers see it: the running install and the last one that ended.
/// Every install shows here, however it was started (D-Bus, HTTP, CLI).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstallStatus {
    pub running: Option<RunningInstall>,
    pub finished: Option<FinishedInstall>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningInstall {
    /// Counts installs since the backend started; tells one install from the next.
    pub serial: u64,
    /// 0..=100.
    pub percent: u8,
    /// The current step ("Copying image to rootfs.1").
    pub step: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinishedInstall {
    pub serial: u64,
    /// `None`: succeeded; else the one-line reason.
    pub error: Option<String>,
}

/// The `[system]` facts RAUC publishes as properties; fixed while the agent runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SystemInfo {
    pub compatible: String,
    pub variant: String,
    /// What RAUC calls the boot slot: the booted slot's bootname (else its name),
    /// `_external_` when booted from outside the slots, empty when unknown.
    pub boot_slot: String,
}

/// One slot of `GetSlotStatus`: its name and RAUC's keys for it (see [`super::values`]).
pub type SlotEntry = (String, Vec<(String, Value)>);

/// A verified bundle's manifest, for `Info` and `InspectBundle`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BundleDescription {
    /// sha256 (hex) of the signed manifest.
    pub manifest_hash: String,
    pub compatible: String,
    pub version: Option<String>,
    pub description: Option<String>,
    pub build: Option<String>,
    /// `plain`, `verity` or `crypt`.
    pub format: String,
    pub verity_hash: Option<String>,
    pub verity_salt: Option<String>,
    pub verity_size: Option<u64>,
    pub images: Vec<ImageDescription>,
    /// `[meta.<label>]` groups.
    pub meta: Vec<(String, Vec<(String, String)>)>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageDescription {
    pub slot_class: String,
    pub variant: Option<String>,
    pub filename: Option<String>,
    /// sha256 (hex).
    pub checksum: Option<String>,
    pub size: Option<u64>,
    /// `pre-install`, `install`, `post-install`.
    pub hooks: Vec<String>,
    pub adaptive: Vec<String>,
}

/// `Mark`'s answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marked {
    /// The slot that was marked (`rootfs.1`).
    pub slot: String,
    /// RAUC's message ("marked slot rootfs.1 as good").
    pub message: String,
}

/// The installer behind `de.pengutronix.rauc.Installer`. Object-safe; every call may block on
/// disk or the bootloader, so the futures are expected to move that work off the runtime.
pub trait InstallerBackend: Send + Sync {
    /// Begins an install and returns once it runs (or was refused: busy, bad path). Progress
    /// and the result are seen through [`InstallerBackend::install_status`].
    fn start_install(&self, request: InstallRequest) -> BoxFuture<'_, Result<(), BackendError>>;
    /// Follows every install. Called once, when the interface is served.
    fn install_status(&self) -> watch::Receiver<InstallStatus>;
    /// Verifies the bundle at `source` and describes its manifest.
    fn inspect(&self, source: String) -> BoxFuture<'_, Result<BundleDescription, BackendError>>;
    /// `good|bad|active` on `booted|other|<slot>`.
    fn mark(&self, state: String, slot: String) -> BoxFuture<'_, Result<Marked, BackendError>>;
    fn slot_status(&self) -> BoxFuture<'_, Result<Vec<SlotEntry>, BackendError>>;
    /// The slot the bootloader boots next.
    fn primary(&self) -> BoxFuture<'_, Result<String, BackendError>>;
    fn system(&self) -> SystemInfo;
}

//! A RAUC-compatible D-Bus server: `de.pengutronix.rauc.Installer` at `/`, so RAUC's own CLI
//! (`rauc install`, `rauc status`, `rauc status mark-*`) and RAUC clients (e.g. hawkBit's
//! rauc-hawkbit-updater) drive outpost-agent as they would drive `rauc service`.
//!
//! Covered (RAUC 1.8, checked against the real `rauc` CLI and `rauc service` in
//! `tests/rauc_cli.rs`): `Install`, `InstallBundle` (`ignore-compatible`,
//! `ignore-version-limit`, `require-manifest-hash`), `Info`, `Mark`, `GetSlotStatus`,
//! `GetPrimary`, `Completed`, and the properties `Operation LastError Progress Compatible
//! Variant BootSlot` with `PropertiesChanged` during installs; plus 1.9's `InspectBundle`.
//! Not covered: HTTP streaming (`tls-*`, `http-headers` and URL sources are refused by name),
//! `transaction-id` (refused: not recorded), 1.13's `GetArtifactStatus`, and the 1.16
//! preview `Poller` interface.
//!
//! * [`backend`]: the [`InstallerBackend`] trait and its plain types.
//! * [`args`]: `InstallBundle`'s `a{sv}` checks.
//! * [`values`]: RAUC's dictionaries (slot status types, `InspectBundle` nesting).
//! * [`interface`]: the zbus interface and the task that turns installs into signals.

pub mod args;
pub mod backend;
pub mod interface;
pub mod values;

pub use backend::{
    BackendError, BundleDescription, FinishedInstall, ImageDescription, InstallRequest,
    InstallStatus, InstallerBackend, Marked, RunningInstall, SlotEntry, SystemInfo,
};
pub use values::Value;

/// RAUC's bus name, object path and interface.
pub const BUS_NAME: &str = "de.pengutronix.rauc";
pub const OBJECT_PATH: &str = "/";
pub const INTERFACE: &str = "de.pengutronix.rauc.Installer";

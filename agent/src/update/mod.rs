//! A/B updates in the daemon: the `[update]` settings turned into the pieces `outpost-update`
//! drives (keyring, bootloader backend, booted slot, status file), one install at a time on the
//! blocking pool with its progress kept for `GET /v1/install`, and the `slots`/`mark` views.
//!
//! Everything here is synchronous I/O; the API calls it through `spawn_blocking` so a slow
//! device or bootloader script never stalls the local API.

mod armed;
pub mod context;
pub mod error;
pub mod install;
pub mod slots;
pub mod tracker;

#[cfg(test)]
pub(crate) mod testkit;
#[cfg(test)]
pub(crate) mod tests;

pub use error::UpdateError;
pub use tracker::InstallTracker;

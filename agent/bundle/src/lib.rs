//! `outpost-bundle`: the RAUC-compatible update bundle format, verified in
//! pure Rust (no OpenSSL, no loop mounts, no device-mapper).
//!
//! Layers, bottom-up: [`trailer`] splits `payload ‖ CMS ‖ u64 BE len`;
//! [`signature`] verifies the CMS against a [`Keyring`]; [`manifest`] parses
//! `manifest.raucm` strictly; [`verity`] authenticates each payload block of a
//! verity bundle; [`squashfs`] reads files from the (authenticated) payload;
//! [`info`] ties them together as [`Bundle::open`]; [`stream`] copies an image stored verbatim
//! ([`extent`]) in one pipelined pass. [`keyfile`] is the GLib key-file codec
//! (manifests here; `system.conf` and `central.raucs` in `outpost-update`).
//!
//! Invariant: nothing is parsed from the squashfs before the payload is
//! authenticated (plain: full digest; verity: per-block hash tree).

pub mod digest;
pub mod extent;
pub mod info;
pub mod keyfile;
pub mod keyring;
pub mod manifest;
mod names;
mod pipe;
pub mod purpose;
pub mod signature;
pub mod squashfs;
pub mod stream;
pub mod trailer;
pub mod verity;

#[doc(hidden)]
pub mod fuzzing;

pub use info::{Bundle, BundleError, BundleInfo, ImageInfo, VerifiedBundle};
pub use keyring::{Keyring, KeyringError};
pub use manifest::{BundleFormat, Manifest, ManifestError};
pub use purpose::Purpose;
pub use signature::{SignatureError, Signer, VerifyOptions};

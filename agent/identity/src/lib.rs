//! Outpost device identity: the device's P-256 key behind one trait, [`KeyBackend`], and the
//! adapters that let rustls (mTLS to the hub) and rcgen (enrollment CSRs) sign with it.
//!
//! Backends:
//! - [`TpmKey`]: generated in the TPM 2.0 (ECC P-256, ECDSA-SHA256, fixedTPM, fixedParent,
//!   sensitiveDataOrigin, noDA), never exportable. TCTI from config, default
//!   `device:/dev/tpmrm0`.
//! - [`FileKey`]: PKCS#8 PEM in a 0600 file, for devices without a TPM, only when configured
//!   explicitly ([`open_backend`] warns each time; [`KeyProtection::Software`] is reported
//!   at enrollment).
//!
//! # Where the TPM key is kept, and why
//!
//! The key is kept as a **blob under the SRK** in the agent's state directory
//! ([`TpmConfig::KEY_BLOB_FILE`], mode 0600, written once atomically): the TPM2B_PUBLIC and
//! the TPM2B_PRIVATE that the TPM encrypted and integrity-protected with the SRK. At each
//! start the SRK is re-derived with `CreatePrimary` (deterministic for a given owner seed and
//! template) and the blob is loaded under it. We do not use a persistent handle because:
//! - it needs no NV space and no `EvictControl` with owner authorization;
//! - there is no handle to pick: no clash with the TCG-reserved SRK/EK handles
//!   (0x81000001/2, 0x81010001/2) or with whatever else (vendor, other software) occupies the
//!   owner range on a given board;
//! - a fresh filesystem (re-flashed device) can never silently pick up a stale key left
//!   at a handle by an earlier installation;
//! - the blob survives reboots and TPM restarts exactly like a persistent object, and is
//!   useless elsewhere: the private part only loads under this TPM's SRK (another TPM, or
//!   `TPM2_Clear`, gives [`TpmErrorKind::WrongTpm`]: the device must re-enroll).
//!
//! The cost is one `CreatePrimary` + `Load` per start (tens to a few hundred ms on a
//! discrete TPM). Parsec and Keylime store their keys the same way.
//!
//! The key has an empty authorization value, so anyone who can both read the blob and open
//! the TPM device can sign with it (not copy it). Protection comes from the blob's 0600 mode
//! (loading refuses looser modes) and from `/dev/tpmrm0` being limited to group `tss`.
//!
//! Only the `tpm` module tree imports `tss_esapi`.

pub mod attestation;
mod backend;
mod config;
pub mod csr;
mod ecdsa;
mod error;
mod file;
mod fsutil;
pub mod tls;
mod tpm;

pub use attestation::{Attestor, TpmAnswer, TpmEvidence};
pub use backend::{KeyBackend, KeyProtection};
pub use config::{open_backend, BackendConfig};
pub use csr::make_csr;
pub use error::{IdentityError, TpmErrorKind};
pub use file::FileKey;
pub use tls::client_config;
pub use tpm::{TpmConfig, TpmKey};

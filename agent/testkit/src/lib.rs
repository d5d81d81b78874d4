//! `outpost-testkit`: fixtures for tests of `outpost-bundle`, `outpost-update` and the agent,
//! made at test time with the real tools (openssl, `rauc bundle`, `grub-editenv`, swtpm), after
//! rauc-demo's `make.sh`. Nothing binary is committed. Dev-only: a dev-dependency, never a
//! dependency, and free to panic (a fixture that cannot be made is a failed test).
//!
//! * [`cmd`]: run a tool and fail loudly; make sure the tools are installed.
//! * [`pki`]: CAs and signers (EC or RSA, with or without an extendedKeyUsage).
//! * [`bundle`]: a manifest, a content folder and `rauc bundle`.
//! * [`device`]: deterministic image bytes, slot files, a grubenv and snapshots of them.
//! * [`swtpm`]: a private swtpm per test (TPM 2.0 simulator).
//! * [`esp`]: a directory ESP with UKIs or Type #1 entries, and the real `bootctl list` of it.

#![forbid(unsafe_code)]

pub mod bundle;
pub mod cmd;
pub mod device;
pub mod ek_ca;
pub mod esp;
pub mod ext4;
pub mod pki;
pub mod swtpm;

pub use bundle::{rauc_bundle, Manifest};
pub use cmd::{ensure_tools, run, run_stdout};
pub use device::{grub_list, grubenv, noise, snapshot, write_slot};
pub use pki::{KeyType, Pki};
pub use swtpm::Swtpm;

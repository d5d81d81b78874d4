//! `outpost-update`: A/B slots and native installation of RAUC bundles, with RAUC 1.8
//! semantics so a RAUC system can switch to the agent without changing its `system.conf`,
//! its bootloader scripts or its `central.raucs`.
//!
//! | module | what | I/O |
//! |---|---|---|
//! | [`system_conf`] | RAUC `system.conf` → [`SystemConfig`] | pure |
//! | [`slots`] | slot model, booted/active/inactive, target choice | pure |
//! | [`booted`] | booted slot from the kernel command line | pure (+ `detect`) |
//! | [`status_file`] | `central.raucs` with RAUC's keys, atomic save | load/save |
//! | [`install`](mod@install) | `plan` (pure, typed refusals) and `execute` (driver) | driver only |
//! | [`mark`] | `mark good/bad/active booted/other/<slot>` | bootloader, status |
//! | [`report`] | `slots`, like `rauc status` | reads |
//! | [`backend`] | the `outpost-boot` backend a `system.conf` names | — |
//!
//! Invariants: the booted slot's group is never a target (by construction in
//! [`SlotTable::target_group`], re-checked by the planner); a target is marked bad before its
//! first byte is written and made primary only after every image is written, size- and
//! sha256-checked and fsynced; the status file and bootloader env are replaced atomically.
#![forbid(unsafe_code)]

pub mod backend;
pub mod booted;
pub mod install;
pub mod mark;
pub mod report;
pub mod slots;
pub mod status_file;
pub mod system_conf;
mod timestamp;
pub mod version;

// system.conf and central.raucs use the bundle crate's key-file codec (manifests use it too).
use outpost_bundle::keyfile;

pub use install::{install, InstallOptions, Progress, Refusal};
pub use slots::{Booted, Slot, SlotActivity, SlotId, SlotTable, SlotType};
pub use status_file::{CentralStatus, SlotStatus};
pub use system_conf::SystemConfig;
pub use timestamp::rauc_timestamp;

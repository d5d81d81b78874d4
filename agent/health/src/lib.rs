//! `outpost-health`: boot assessment and the health-gated commit of an A/B update.
//!
//! At start the agent learns which slot it booted and whether this boot is a *trial* (the
//! slot was activated by an install and not yet committed). In a trial it runs the health
//! gate: every configured check must pass *together* before the deadline; then the slot is
//! marked good (commit). If a required check fails for good or the deadline passes, the slot
//! is marked bad and logind is asked to reboot, so the bootloader falls back; the next boot
//! (old slot) records why. Every decision is appended to the outbox stream `outpost.health`.
//!
//! | module | what | I/O |
//! |---|---|---|
//! | [`checks`] | `[health]` config (strict serde, humantime durations) | pure |
//! | [`assessment`] | trial or not, per backend family | pure |
//! | [`gate`] | the sans-IO gate: inputs → next state + [`gate::Action`]s | pure |
//! | `finish` | ordered action sequences that carry out a decision | pure |
//! | [`record`] | the `outpost.health` record | pure |
//! | [`status`] | what `outpostctl health` shows | pure |
//! | [`state_file`] | the persisted gate state, replaced atomically | file |
//! | [`runner`] | command, HTTP(S), uptime, systemd-unit and builtin checks (async, tokio) | yes |
//! | [`driver`] | runs the gate against injected capabilities | yes |
//!
//! # What each bootloader shows the gate (facts from `outpost-boot`)
//!
//! | backend | trial boot of B | committed B, routine boot | commit | fall back |
//! |---|---|---|---|---|
//! | GRUB | `state(B)=Bad`, `attempts_left=Some(0)` (GRUB set `B_TRY=1`) | the same! GRUB sets `_TRY=1` on every boot | `set_state(B,Good)`: `B_OK=1 B_TRY=0` | next boot skips B (`_TRY=1`): one attempt |
//! | U-Boot | `LEFT` lowered, `state(B)=Good` while `LEFT>0` | the same: the script lowers `LEFT` on every boot | `set_state(B,Good)`: `LEFT=boot-attempts` | after `LEFT` reaches 0 (default 3 boots) |
//! | rpi-tryboot | booted from `[tryboot]`: `state(B)=Bad`, `attempts_left=Some(1)` | `[all]` is B: `state=Good`, `attempts_left=None` | `[all]=[tryboot]=B` | any normal reboot uses `[all]` |
//! | systemd-boot (`outpost_boot::systemd_boot`) | entry `outpost_<g>-B+L-D`: counter present | blessed entry (no counter) | rename to `outpost_<g>-B.efi` | systemd-boot sorts `+0` entries last |
//! | custom | no attempt count; `state` is the script's word | same | `set-state good` | the script's business |
//!
//! So GRUB, U-Boot and custom are *counting* backends: a routine boot of a committed slot
//! reads like a trial, and the gate's own `committed` record (slot + central.raucs activation
//! keys) decides; a committed slot is re-armed (`set_state(Good)`) on every boot or the
//! bootloader would fall back. rpi-tryboot and systemd-boot are *self-describing*: the
//! bootloader's view decides alone. Details in [`assessment`].
//!
//! # Invariants under kill -9 and power loss
//! Decisions are written to the state file before they are acted on; commit and mark-bad are
//! idempotent and re-run on restart; a trial decided `Fail` is never committed and one decided
//! `Commit` is never marked bad by the gate; `committed` names one slot. See [`state_file`].
//!
//! # Not covered here
//! If the agent crash-loops so fast it never reaches a verdict, only the bootloader's attempt
//! count (and a systemd `StartLimitAction=reboot` / watchdog on the agent unit) ends the trial.
#![forbid(unsafe_code)]

pub mod armed;
pub mod assessment;
pub mod checks;
pub mod driver;
mod finish;
pub mod gate;
pub mod record;
pub mod runner;
pub mod state_file;
pub mod status;

pub use assessment::{assess, Assessment, BackendFamily, BootFacts};
pub use checks::{CheckConfig, CheckKind, HealthConfig};
pub use gate::{Action, Gate, GatePlan, Input, Now, Outcome};
pub use record::{HealthRecord, RecordResult, Verdict, STREAM};
pub use state_file::GateState;

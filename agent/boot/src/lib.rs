//! Bootloader state for A/B updates, with RAUC 1.8 semantics.
//!
//! Every bootloader is driven through the same four calls RAUC uses (`get_state`, `set_state`,
//! `get_primary`, `set_primary`), here the [`Bootloader`] trait. The on-disk formats are pure
//! codecs (no I/O; parse from bytes with strict bounds) kept apart from the backends that read
//! and write files or run programs:
//!
//! | codec (pure)   | backend (I/O)  | what it drives                                   |
//! |----------------|----------------|--------------------------------------------------|
//! | [`grubenv`]    | [`grub`]       | GRUB `grubenv`: `ORDER`, `<slot>_OK`, `<slot>_TRY` |
//! | [`ubootenv`], [`fw_env_config`] | [`uboot`] | U-Boot env: `BOOT_ORDER`, `BOOT_<slot>_LEFT` |
//! | -              | [`custom`]     | an integrator's script (RAUC custom protocol)    |
//! | [`rpi_tryboot::Autoboot`] | [`rpi_tryboot`] | Raspberry Pi `autoboot.txt` (`tryboot_a_b`) |
//! | [`systemd_boot::name`], [`systemd_boot::menu`], [`systemd_boot::uki`] | [`systemd_boot`] | systemd-boot entries `outpost_<gen>-<slot>+LEFT-DONE.efi` |
//!
//! Every file write is power-cut safe: whole files are replaced with [`atomic_file`] (temp,
//! fsync, rename, fsync dir); a redundant U-Boot env is written to its inactive copy;
//! systemd-boot entries are only renamed (one `rename(2)` and a directory fsync per call).
#![forbid(unsafe_code)]

pub mod bootloader;
mod crc32;
pub mod custom;
pub mod error;
pub mod fw_env_config;
pub mod grub;
pub mod grubenv;
mod num;
pub mod rpi_tryboot;
pub mod slot;
pub mod systemd_boot;
pub mod uboot;
pub mod ubootenv;

pub mod atomic_file;
#[doc(hidden)]
pub mod fuzzing;

pub use bootloader::Bootloader;
pub use error::BootError;
pub use slot::{SlotName, SlotNameError, SlotState};

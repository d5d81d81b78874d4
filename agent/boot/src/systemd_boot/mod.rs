//! systemd-boot with boot counting ("Automatic Boot Assessment") as an A/B [`crate::Bootloader`].
//!
//! Each slot has one entry on the ESP, a UKI in `EFI/Linux/` (or a Type #1 `.conf` in
//! `loader/entries/`), named `<prefix>_<generation>-<bootname>[+<left>[-<done>]].<efi|conf>`:
//!
//! | RAUC call | file name |
//! |---|---|
//! | `set_primary(B)` | `outpost_<g>-B+3.efi`, `g` above every other slot's generation (one rename) |
//! | `set_state(B, Good)` (mark-good) | `outpost_<g>-B.efi`: counter dropped, as `systemd-bless-boot good` |
//! | `set_state(B, Bad)` (mark-bad) | `outpost_<g>-B+0-<done>.efi`, as `systemd-bless-boot bad` |
//! | `state(B)` | Bad if `+0` or if systemd-boot would not list the entry; else Good |
//! | `primary()` | the slot of the entry systemd-boot boots without a keypress ([`menu`]) |
//! | `attempts_left(B)` | `Some(left)` while counted (a trial), `None` once blessed |
//!
//! **Why "primary" is the sort order and not loader.conf's `default`.** systemd-boot boots the
//! first entry of its menu unless a `default` pattern (loader.conf, or the
//! `LoaderEntryDefault`/`LoaderEntryOneShot` EFI variables) matches one. Its menu puts entries
//! with 0 tries left last; that is the whole automatic fallback: a trial that used up its
//! tries sinks below the old slot. A `default` pattern, though, picks the first *matching*
//! entry even when it has 0 tries left (systemd-boot 252's `config_entry_find`, and bootctl 252
//! shows the same: `default outpost_*-b*` keeps choosing `outpost_2-b+0-3.conf`). Pinning the
//! primary slot in loader.conf would therefore boot a failed trial forever, and switching
//! `default` on mark-bad would be a second write that a power cut can separate from the first.
//! With the sort order, every call is **one `rename(2)` plus a directory fsync**: a power cut
//! leaves the old name (the previous, known state) or the new one, and whichever it is, the
//! firmware's own rules pick a bootable entry. Nothing else on the ESP is written, so the
//! firmware's own counting renames never race a file we rewrite.
//!
//! The name carries the order: entries sort by id (the lower-cased file name) newest first,
//! with systemd's version comparison ([`verscmp`]), so a generation *before* the bootname
//! decides (`outpost_3-a` > `outpost_2-b`). What it cannot beat: for UKIs both carrying an
//! os-release `ID`/`IMAGE_ID` (sort key), the os-release version is compared first, so a UKI
//! with an older version cannot be made primary over a good newer one; Type #1 entries with
//! `sort-key` and `version` likewise. A `default` pattern (loader.conf or EFI variables) that
//! matches only one slot wins too. `set_primary` therefore reads the menu back and fails
//! ([`crate::BootError::NotPrimary`]) rather than report a switch that will not happen;
//! `default @saved` is refused outright (the choice depends on the last boot).
//!
//! Deployment rules that follow: leave `default` unset in loader.conf (or use a glob matching
//! every slot entry, e.g. `default outpost_*`), do not `bootctl set-default` a single entry,
//! and name the factory entries `outpost_1-A.efi` and `outpost_0-B.efi` (any generations; the
//! higher one is primary).
//!
//! Verified offline against bootctl 252 (`bootctl --esp-path=… --no-variables list` on a
//! directory ESP; see `tests/it/sdboot.rs`). Not verified: the firmware itself booting (needs
//! UEFI), and `systemd-bless-boot` (it reads `LoaderBootCountPath`, an EFI variable).

mod backend;
pub mod esp;
pub mod glob;
pub mod menu;
pub mod name;
pub mod uki;
pub mod verscmp;

pub use backend::{
    EntryKind, SystemdBootBackend, SystemdBootConfig, DEFAULT_PREFIX, DEFAULT_TRIES,
};
pub use name::{find_entry, rename_entry, Assessment, Counter, EntryName};

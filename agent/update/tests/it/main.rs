//! Integration tests against the real rauc 1.8, grub-editenv and dbus-daemon.

mod fixture;
mod power_cut;
mod rauc_compare;
mod refusals;

//! Integration tests against the real rauc 1.8, grub-editenv, dbus-daemon and bootctl.

mod casync;
mod fixture;
mod power_cut;
mod rauc_compare;
mod refusals;
mod sdboot;
mod tampered;

//! A simulated device's files: image and slot bytes, a GRUB environment, snapshots.

use std::path::Path;
use std::process::Command;

use crate::cmd::{run, run_stdout};

/// Deterministic incompressible bytes (xorshift), different per seed: squashfs stores them
/// verbatim, so tests can find (and tamper with) image bytes inside a payload.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A slot file of `len` bytes with distinct old content (`noise(seed)`), so "unchanged" and
/// "overwritten" are visible.
pub fn write_slot(path: &Path, seed: u64, len: usize) {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).unwrap();
    }
    std::fs::write(path, noise(seed, len)).unwrap();
}

/// A fresh grubenv at `path` with slots A and B both good, A first (RAUC's grub.conf layout).
pub fn grubenv(path: &Path) {
    run(Command::new("grub-editenv").arg(path).arg("create"));
    run(Command::new("grub-editenv").arg(path).args([
        "set",
        "ORDER=A B",
        "A_OK=1",
        "A_TRY=0",
        "B_OK=1",
        "B_TRY=0",
    ]));
}

/// `grub-editenv PATH list`: the real tool's view of the bootloader state.
pub fn grub_list(path: &Path) -> String {
    run_stdout(Command::new("grub-editenv").arg(path).arg("list"))
}

/// The bytes of each of `files` (relative to `dir`; empty if missing), for "nothing was
/// written" checks.
pub fn snapshot(dir: &Path, files: &[&str]) -> Vec<(String, Vec<u8>)> {
    files
        .iter()
        .map(|f| {
            (
                f.to_string(),
                std::fs::read(dir.join(f)).unwrap_or_default(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_is_deterministic_per_seed() {
        assert_eq!(noise(3, 100), noise(3, 100));
        assert_ne!(noise(3, 100), noise(4, 100));
        assert_eq!(noise(3, 10)[..], noise(3, 100)[..10]);
    }
}

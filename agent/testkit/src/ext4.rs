//! Reproducible ext4 images made by the real `mkfs.ext4 -d`: fixed UUID, hash seed and time,
//! so the same folder gives the same bytes (delta-update tests and benchmarks).

use std::path::Path;
use std::process::Command;

/// A `size_mib` MiB ext4 image of folder `dir` at `image` (4 KiB blocks).
pub fn image(dir: &Path, image: &Path, size_mib: usize) {
    crate::cmd::run(
        Command::new("mkfs.ext4")
            .args([
                "-q",
                "-F",
                "-b",
                "4096",
                "-U",
                "6f9619ff-8b86-d011-b42d-00cf4fc964ff",
            ])
            .args(["-E", "hash_seed=6f9619ff-8b86-d011-b42d-00cf4fc964ff", "-d"])
            .arg(dir)
            .arg(image)
            .arg(format!("{size_mib}M"))
            .env("E2FSPROGS_FAKE_TIME", "1700000000"),
    );
}

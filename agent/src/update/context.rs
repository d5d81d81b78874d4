//! The I/O pieces an install or mark needs, built fresh from `[update]` for each operation:
//! keyring and bootloader files are re-read every time, so rotating the keyring or editing
//! the bootloader env needs no agent restart, and no stale handle outlives a change.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use outpost_boot::rpi_tryboot::RpiTrybootBackend;
use outpost_boot::Bootloader;
use outpost_bundle::{Keyring, VerifyOptions};
use outpost_update::system_conf::BootloaderKind;
use outpost_update::Booted;

use super::UpdateError;
use crate::config::UpdateConfig;

/// Keyring files are a few certificates; anything bigger is a mistake.
const MAX_KEYRING_BYTES: u64 = 4 * 1024 * 1024;

/// The trust anchors: `keyring` (a PEM file) plus every file of a keyring directory
/// (RAUC's `[keyring] directory`, hash-named PEM files).
pub fn keyring(cfg: &UpdateConfig) -> Result<Keyring, UpdateError> {
    let mut pem = Vec::new();
    let mut named = None;
    if let Some(p) = &cfg.system.keyring_path {
        pem.extend(read_pem(p)?);
        named = Some(p.clone());
    }
    if let Some(dir) = &cfg.system.keyring_directory {
        let entries = std::fs::read_dir(dir).map_err(|source| UpdateError::KeyringRead {
            path: dir.clone(),
            source,
        })?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        for f in files {
            pem.push(b'\n');
            pem.extend(read_pem(&f)?);
        }
        named.get_or_insert_with(|| dir.clone());
    }
    let path = named.ok_or(UpdateError::NoKeyring)?;
    Keyring::from_pem(&pem).map_err(|source| UpdateError::Keyring { path, source })
}

/// Reads a keyring PEM given on the command line (`outpostctl info --keyring`).
pub fn keyring_file(path: &Path) -> Result<Keyring, UpdateError> {
    let pem = read_pem(path)?;
    Keyring::from_pem(&pem).map_err(|source| UpdateError::Keyring {
        path: path.to_owned(),
        source,
    })
}

fn read_pem(path: &Path) -> Result<Vec<u8>, UpdateError> {
    use std::io::Read;
    let err = |source| UpdateError::KeyringRead {
        path: path.to_owned(),
        source,
    };
    let mut out = Vec::new();
    std::fs::File::open(path)
        .map_err(err)?
        .take(MAX_KEYRING_BYTES)
        .read_to_end(&mut out)
        .map_err(err)?;
    Ok(out)
}

/// RAUC's verification defaults with the configured purpose, at the current time.
pub fn verify_options(cfg: &UpdateConfig) -> VerifyOptions {
    let mut opts = VerifyOptions::at(SystemTime::now());
    opts.purpose = cfg.purpose;
    opts
}

pub fn open_bootloader(
    cfg: &UpdateConfig,
) -> Result<Box<dyn Bootloader + Send + Sync>, UpdateError> {
    if cfg.system.bootloader == BootloaderKind::RpiTryboot {
        return Ok(Box::new(RpiTrybootBackend::new(
            cfg.autoboot.clone(),
            cfg.boot_partitions.clone(),
        )));
    }
    Ok(outpost_update::backend::open_bootloader(
        &cfg.system,
        &cfg.fw_env_config,
    )?)
}

/// The forced slot (`booted_slot`), else the kernel command line.
pub fn booted(cfg: &UpdateConfig) -> Result<Booted, UpdateError> {
    match &cfg.booted_slot {
        Some(id) => Ok(Booted::Slot(id.clone())),
        None => Ok(outpost_update::booted::detect(&cfg.system.slots)?),
    }
}

/// The central status file; its folder is created on first use (mode 0700, like state_dir).
pub fn status_file(cfg: &UpdateConfig) -> Result<Option<PathBuf>, UpdateError> {
    let Some(path) = cfg.system.status_file() else {
        return Ok(None);
    };
    if let Some(dir) = path.parent().filter(|d| !d.exists()) {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|source| UpdateError::DataDir {
                path: dir.to_owned(),
                source,
            })?;
    }
    Ok(Some(path.to_owned()))
}

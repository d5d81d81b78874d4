//! The bootloader backend a `system.conf` (or the agent's native `[update]`) asks for, built
//! from `outpost-boot`.

use std::path::Path;

use outpost_boot::custom::CustomBackend;
use outpost_boot::fw_env_config::FwEnvConfig;
use outpost_boot::grub::GrubBackend;
use outpost_boot::systemd_boot::SystemdBootBackend;
use outpost_boot::uboot::UbootBackend;
use outpost_boot::Bootloader;

use crate::system_conf::{BootloaderKind, SystemConfig};

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("bootloader '{0}' is not supported by this agent")]
    Unsupported(&'static str),
    #[error(
        "bootloader rpi-tryboot needs each slot's boot partition; open it with RpiTrybootBackend"
    )]
    NeedsPartitions,
    #[error("bootloader systemd-boot needs the ESP (update.esp in the agent configuration)")]
    NoEsp,
    #[error("bootloader=custom needs [handlers] bootloader-custom-backend")]
    NoCustomBackend,
    #[error("reading {path}: {source}")]
    FwEnvConfig {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Boot(#[from] outpost_boot::BootError),
    #[error("fw_env.config: {0}")]
    FwEnv(#[from] outpost_boot::fw_env_config::FwEnvConfigError),
}

/// Opens the backend of `conf`. `fw_env_config` is where U-Boot's `fw_env.config` lives
/// (normally `/etc/fw_env.config`).
pub fn open_bootloader(
    conf: &SystemConfig,
    fw_env_config: &Path,
) -> Result<Box<dyn Bootloader + Send + Sync>, BackendError> {
    let slots = conf.slots.bootnames();
    Ok(match conf.bootloader {
        BootloaderKind::Grub => Box::new(GrubBackend::new(conf.grubenv.clone(), slots)),
        BootloaderKind::Custom => {
            let program = conf
                .custom_backend
                .clone()
                .ok_or(BackendError::NoCustomBackend)?;
            Box::new(CustomBackend::new(program, slots))
        }
        BootloaderKind::Uboot => {
            let text = std::fs::read_to_string(fw_env_config).map_err(|source| {
                BackendError::FwEnvConfig {
                    path: fw_env_config.display().to_string(),
                    source,
                }
            })?;
            let mut b = UbootBackend::new(FwEnvConfig::parse(&text)?, slots);
            if let (Some(a), Some(p)) = (conf.boot_attempts, conf.boot_attempts_primary) {
                b = b.with_attempts(a, p);
            } else if conf.boot_attempts.is_some() || conf.boot_attempts_primary.is_some() {
                // RAUC's defaults are 3 and 3; keep the other at its default.
                b = b.with_attempts(
                    conf.boot_attempts.unwrap_or(3),
                    conf.boot_attempts_primary.unwrap_or(3),
                );
            }
            Box::new(b)
        }
        BootloaderKind::SystemdBoot => {
            let cfg = conf.systemd_boot.clone().ok_or(BackendError::NoEsp)?;
            Box::new(SystemdBootBackend::new(cfg, slots))
        }
        BootloaderKind::Barebox => return Err(BackendError::Unsupported("barebox")),
        BootloaderKind::Efi => return Err(BackendError::Unsupported("efi")),
        BootloaderKind::Noop => return Err(BackendError::Unsupported("noop")),
        // Needs each slot's boot partition, which system.conf cannot express.
        BootloaderKind::RpiTryboot => return Err(BackendError::NeedsPartitions),
    })
}

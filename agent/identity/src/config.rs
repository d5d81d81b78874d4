//! Choosing a backend from configuration. The file backend is never a silent fallback.

use std::path::PathBuf;
use std::sync::Arc;

use crate::{FileKey, IdentityError, KeyBackend, TpmConfig, TpmKey};

/// Which key backend the agent uses; the agent's config file maps onto this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendConfig {
    /// The TPM (the default for devices).
    Tpm(TpmConfig),
    /// A software key in a 0600 PEM file; only when configured explicitly.
    File { path: PathBuf },
}

/// Open (creating on first use) the configured backend. Opening the file backend logs a
/// warning every time, so a device without TPM protection is visible in every boot's log.
pub fn open_backend(config: &BackendConfig) -> Result<Arc<dyn KeyBackend>, IdentityError> {
    match config {
        BackendConfig::Tpm(tpm) => Ok(Arc::new(TpmKey::open_or_create(tpm)?)),
        BackendConfig::File { path } => {
            tracing::warn!(
                path = %path.display(),
                key_protection = "software",
                "device identity key is a software key in a file, not in a TPM: anyone who \
                 can read the file can impersonate this device"
            );
            Ok(Arc::new(FileKey::open_or_create(path)?))
        }
    }
}

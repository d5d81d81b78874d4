//! Why an update operation failed; every variant renders as one line for the API.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error("updates are not configured (no [update] section in the agent configuration)")]
    NotConfigured,
    #[error(
        "no bundle keyring configured (update.keyring, or [keyring] path/directory in system.conf)"
    )]
    NoKeyring,
    #[error("cannot read keyring {path}: {source}")]
    KeyringRead {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("keyring {path}: {source}")]
    Keyring {
        path: PathBuf,
        source: outpost_bundle::KeyringError,
    },
    #[error("cannot open bundle {path}: {source}")]
    Bundle {
        path: PathBuf,
        source: outpost_bundle::BundleError,
    },
    #[error("bootloader: {0}")]
    Backend(#[from] outpost_update::backend::BackendError),
    #[error("booted slot: {0}")]
    Booted(#[from] outpost_update::booted::BootedError),
    #[error(transparent)]
    Install(#[from] outpost_update::install::Error),
    #[error("{0}")]
    Mark(#[from] outpost_update::mark::MarkError),
    #[error(transparent)]
    Status(#[from] outpost_update::status_file::StatusFileError),
    #[error("the bundle carries a workload set (image 'manifests') but [workloads] is not configured: its OS and workloads are one update")]
    WorkloadsNotConfigured,
    #[error("staging the bundle's workload set: {0}")]
    Workloads(String),
    #[error("manifest hash mismatch: required {expected}, bundle has {found}")]
    ManifestHash { expected: String, found: String },
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
}

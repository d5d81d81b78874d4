//! Errors of the I/O backends. Codec errors are nested so callers can tell a corrupt env from
//! an I/O failure; every variant names the file or program involved.

use std::path::PathBuf;

use crate::fw_env_config::FwEnvConfigError;
use crate::grubenv::GrubEnvError;
use crate::rpi_tryboot::AutobootError;
use crate::ubootenv::UbootEnvError;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BootError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is larger than the {limit} bytes expected")]
    TooLarge { path: PathBuf, limit: usize },
    #[error("grubenv {path}: {source}")]
    GrubEnv {
        path: PathBuf,
        #[source]
        source: GrubEnvError,
    },
    #[error("autoboot.txt {path}: {source}")]
    Autoboot {
        path: PathBuf,
        #[source]
        source: AutobootError,
    },
    #[error("slot {slot} is bad and no other slot is configured to fall back to")]
    NoFallback { slot: String },
    #[error("U-Boot env: {0}")]
    UbootEnv(#[from] UbootEnvError),
    #[error("fw_env.config: {0}")]
    FwEnvConfig(#[from] FwEnvConfigError),
    #[error("bootloader variable {name} is not set")]
    MissingVar { name: String },
    #[error("bootloader variable {name} is not valid UTF-8")]
    NotUtf8 { name: String },
    #[error("slot {slot} is not one of the configured slots")]
    UnknownSlot { slot: String },
    #[error("no systemd-boot entry for slot {slot} in {dir} (expected {expected})")]
    NoEntry {
        slot: String,
        dir: PathBuf,
        expected: String,
    },
    #[error("slot {slot} has two systemd-boot entries: {first} and {second}")]
    DuplicateEntry {
        slot: String,
        first: PathBuf,
        second: PathBuf,
    },
    #[error(
        "slot {slot} is armed, but systemd-boot would boot {chosen}: it sorts first (a newer \
         os-release version or sort key) or a default pattern selects it"
    )]
    NotPrimary { slot: String, chosen: String },
    #[error("{what}: the boot choice then depends on state the agent cannot set")]
    Unmodelled { what: String },
    #[error("{program}: {reason}")]
    Script { program: PathBuf, reason: String },
    #[error("{program} {args:?} exited with {status}")]
    ScriptFailed {
        program: PathBuf,
        args: Vec<String>,
        status: std::process::ExitStatus,
    },
    #[error("{program} {args:?} printed {output:?}, expected {expected}")]
    ScriptOutput {
        program: PathBuf,
        args: Vec<String>,
        output: String,
        expected: &'static str,
    },
}

impl BootError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        BootError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

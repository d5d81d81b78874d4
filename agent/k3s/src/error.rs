//! The one error type of talking to K3s: each variant says what a person should look at.

use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum K3sError {
    #[error("cannot read K3s credentials {path}: {source}")]
    ReadCredentials {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("K3s credentials {path}: {reason}")]
    BadCredentials { path: PathBuf, reason: String },
    #[error("bad K3s API URL {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
    /// Not a Kubernetes object name (RFC 1123: lower-case letters, digits, `-`, `.`).
    #[error("not a Kubernetes name: {0:?}")]
    BadName(String),
    #[error("K3s is not running: connection to {addr} refused")]
    NotRunning { addr: String },
    #[error("cannot connect to K3s at {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("TLS with K3s at {addr}: {source}")]
    Tls {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{method} {path}: no answer from K3s within {}", humantime::format_duration(*after))]
    Timeout {
        method: &'static str,
        path: String,
        after: Duration,
    },
    #[error("{method} {path}: HTTP: {reason}")]
    Http {
        method: &'static str,
        path: String,
        reason: String,
    },
    /// A status we do not expect, with the `message` of the Kubernetes `Status` body if any.
    #[error("{method} {path}: K3s answered {code}: {message}")]
    Status {
        method: &'static str,
        path: String,
        code: u16,
        message: String,
    },
    #[error("{path}: unexpected answer: {reason}")]
    Decode { path: String, reason: String },
}

impl K3sError {
    /// True if K3s (its API server) is simply not up: refused, or not answering in time.
    pub fn is_not_running(&self) -> bool {
        matches!(self, K3sError::NotRunning { .. })
    }
}

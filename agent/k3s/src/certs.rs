//! When must K3s's certificates be rotated? Reads the `*.crt` files of the given directories
//! (K3s's `server/tls` and `agent` dirs), takes each certificate's notAfter (x509-parser), and
//! decides purely with [`rotation_due`].
//!
//! From the K3s docs (docs.k3s.io/cli/certificate): `k3s certificate rotate` must run while
//! K3s is stopped, then K3s is started again; K3s itself renews leaf certificates that expire
//! within 120 days when it starts. So a K3s that runs for months without a restart is the case
//! this covers. CA certificates are reported but never make a rotation due: `rotate` does not
//! renew them (that is `k3s certificate rotate-ca`, a human decision).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::Serialize;

/// 30 days: rotate when the earliest leaf certificate expires sooner than this.
pub const DEFAULT_ROTATION_THRESHOLD: Duration = Duration::from_secs(30 * 24 * 3600);

/// One certificate of a `.crt` file (a file may hold a chain).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertInfo {
    pub path: PathBuf,
    pub subject: String,
    pub not_after: SystemTime,
    pub is_ca: bool,
}

/// The certificate that expires first, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Due {
    pub earliest_cert: PathBuf,
    pub expires: SystemTime,
}

impl Due {
    /// Expires within `threshold` of `now` (or already expired).
    pub fn is_due(&self, now: SystemTime, threshold: Duration) -> bool {
        match now.checked_add(threshold) {
            Some(limit) => self.expires <= limit,
            None => true,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Parse { path: PathBuf, reason: String },
}

/// What a scan found: every certificate read, and the files that could not be (a bad file does
/// not hide the others).
#[derive(Debug, Default)]
pub struct CertScan {
    pub certs: Vec<CertInfo>,
    pub errors: Vec<CertError>,
}

/// Reads every `*.crt` directly in each of `dirs`. A directory that does not exist is skipped
/// (K3s's `agent` dir appears only after its first start).
pub fn scan(dirs: &[PathBuf]) -> CertScan {
    let mut scan = CertScan::default();
    for dir in dirs {
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => {
                scan.errors.push(CertError::Read {
                    path: dir.clone(),
                    source,
                });
                continue;
            }
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "crt") && p.is_file())
            .collect();
        files.sort();
        for path in files {
            match read_file(&path) {
                Ok(certs) => scan.certs.extend(certs),
                Err(e) => scan.errors.push(e),
            }
        }
    }
    scan
}

/// The certificates of one PEM file.
pub fn read_file(path: &Path) -> Result<Vec<CertInfo>, CertError> {
    let data = std::fs::read(path).map_err(|source| CertError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_pem(path, &data)
}

/// The certificates of PEM `data` (`path` only names them).
pub fn parse_pem(path: &Path, data: &[u8]) -> Result<Vec<CertInfo>, CertError> {
    let bad = |reason: String| CertError::Parse {
        path: path.to_owned(),
        reason,
    };
    let mut out = Vec::new();
    for pem in x509_parser::pem::Pem::iter_from_buffer(data) {
        let pem = pem.map_err(|e| bad(format!("PEM: {e}")))?;
        if pem.label != "CERTIFICATE" {
            continue;
        }
        let cert = pem.parse_x509().map_err(|e| bad(format!("X.509: {e}")))?;
        let secs = cert.validity().not_after.timestamp();
        let not_after = u64::try_from(secs)
            .ok()
            .and_then(|s| SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(s)))
            .unwrap_or(SystemTime::UNIX_EPOCH);
        out.push(CertInfo {
            path: path.to_owned(),
            subject: cert.subject().to_string(),
            not_after,
            is_ca: cert.is_ca(),
        });
    }
    if out.is_empty() {
        return Err(bad("no PEM certificate".into()));
    }
    Ok(out)
}

/// The leaf (non-CA) certificate that expires first.
pub fn earliest(certs: &[CertInfo]) -> Option<Due> {
    certs
        .iter()
        .filter(|c| !c.is_ca)
        .min_by_key(|c| c.not_after)
        .map(|c| Due {
            earliest_cert: c.path.clone(),
            expires: c.not_after,
        })
}

/// `Some` when the earliest leaf certificate expires within `threshold` of `now`.
pub fn rotation_due(now: SystemTime, certs: &[CertInfo], threshold: Duration) -> Option<Due> {
    earliest(certs).filter(|d| d.is_due(now, threshold))
}

#[cfg(test)]
mod tests;

//! The enrolled certificate on disk: what it says (for `outpostctl identity` and to decide
//! whether to enroll) and replacing it atomically.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use x509_parser::prelude::{FromDer, X509Certificate};

/// Facts about a certificate chain's leaf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// Subject Common Name: the device id the hub knows.
    pub common_name: Option<String>,
    pub subject: String,
    pub issuer: String,
    pub not_before_ms: i64,
    pub not_after_ms: i64,
    /// The leaf's SubjectPublicKeyInfo (DER).
    pub spki: Vec<u8>,
}

impl CertInfo {
    pub fn is_valid_at(&self, now_ms: i64) -> bool {
        self.not_before_ms <= now_ms && now_ms < self.not_after_ms
    }
}

/// Parses the leaf (first certificate) of a PEM chain.
pub fn inspect_pem(pem: &[u8]) -> Result<CertInfo, String> {
    let (_, block) =
        x509_parser::pem::parse_x509_pem(pem).map_err(|_| "no PEM certificate".to_owned())?;
    if block.label != "CERTIFICATE" {
        return Err(format!(
            "PEM block is a {:?}, not a CERTIFICATE",
            block.label
        ));
    }
    let (_, cert) = X509Certificate::from_der(&block.contents)
        .map_err(|e| format!("certificate does not parse: {e}"))?;
    let validity = cert.validity();
    let info = CertInfo {
        common_name: cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(str::to_owned),
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        not_before_ms: validity.not_before.timestamp().saturating_mul(1000),
        not_after_ms: validity.not_after.timestamp().saturating_mul(1000),
        spki: cert.public_key().raw.to_vec(),
    };
    Ok(info)
}

/// Reads and inspects the certificate file; `Ok(None)` if there is none yet.
pub fn read(path: &Path) -> Result<Option<(Vec<u8>, CertInfo)>, String> {
    match fs::read(path) {
        Ok(pem) => {
            let info = inspect_pem(&pem).map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(Some((pem, info)))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// Replaces `path` with `bytes` all or nothing: a 0600 temporary file in the same folder
/// (fsynced), renamed over the target, then the folder fsynced. A missing folder is created
/// with mode 0700. A crash leaves the old certificate or the new one, never a mix.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    DirBuilder::new().recursive(true).mode(0o700).create(&dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    File::open(&dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn cert_pem(cn: &str) -> (String, Vec<u8>) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(rcgen::DnType::CommonName, cn);
        p.not_before = rcgen::date_time_ymd(2020, 1, 1);
        p.not_after = rcgen::date_time_ymd(2030, 1, 1);
        let cert = p.self_signed(&key).unwrap();
        (
            cert.pem(),
            rcgen::PublicKeyData::subject_public_key_info(&key),
        )
    }

    #[test]
    fn inspects_the_leaf() {
        let (pem, spki) = cert_pem("abc123");
        let info = inspect_pem(pem.as_bytes()).unwrap();
        assert_eq!(info.common_name.as_deref(), Some("abc123"));
        assert_eq!(info.subject, "CN=abc123");
        assert_eq!(info.spki, spki);
        assert_eq!(info.not_after_ms, 1_893_456_000_000);
        assert!(info.is_valid_at(1_800_000_000_000));
        assert!(!info.is_valid_at(1_900_000_000_000));
        assert!(inspect_pem(b"junk").is_err());
        let key_pem = rcgen::KeyPair::generate().unwrap().serialize_pem();
        assert!(inspect_pem(key_pem.as_bytes()).is_err());
    }

    #[test]
    fn writes_atomically_with_mode_0600_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("identity/device.crt");
        assert_eq!(read(&path).unwrap(), None);
        write_atomically(&path, b"one").unwrap();
        write_atomically(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode = fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(dir_mode & 0o777, 0o700);
        assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
        assert!(read(&path).is_err(), "not PEM");
    }
}

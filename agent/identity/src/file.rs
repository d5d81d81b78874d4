//! The software backend: a P-256 key as PKCS#8 PEM in a 0600 file.
//!
//! For devices without a TPM, and only when configured explicitly: anyone who can read the
//! file (root, a backup, a stolen disk) can copy the device's identity. It reports
//! [`KeyProtection::Software`] so enrollment can tag or limit such devices.

use std::fmt;
use std::path::{Path, PathBuf};

use p256::ecdsa::signature::Signer as _;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use rand_core::OsRng;

use crate::fsutil::{self, Created};
use crate::{IdentityError, KeyBackend, KeyProtection};

/// A P-256 key loaded from (or first created in) a private PEM file.
pub struct FileKey {
    path: PathBuf,
    key: p256::ecdsa::SigningKey,
    spki: Vec<u8>,
}

impl fmt::Debug for FileKey {
    // Hand-written so the private key can never end up in a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileKey").field("path", &self.path).finish()
    }
}

impl FileKey {
    /// Load the key at `path`, or create it (0600, atomically) if the file does not exist.
    /// An existing file that group/other may access is refused, never "fixed" silently.
    pub fn open_or_create(path: &Path) -> Result<Self, IdentityError> {
        if let Some(pem) = fsutil::read_private_file(path)? {
            return Self::from_pem(path, &pem);
        }
        let key = p256::ecdsa::SigningKey::random(&mut OsRng);
        // Zeroizing<String>: the PEM copy of the secret is wiped when dropped.
        let pem = key
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| bad_file(path, e.to_string()))?;
        match fsutil::create_private_file(path, pem.as_bytes())? {
            Created::Yes => Self::with_key(path, key),
            // Another process won the race: its key is the identity, load that one.
            Created::AlreadyExisted => Self::open(path),
        }
    }

    /// Load an existing key file; fails if it is missing.
    pub fn open(path: &Path) -> Result<Self, IdentityError> {
        match fsutil::read_private_file(path)? {
            Some(pem) => Self::from_pem(path, &pem),
            None => Err(IdentityError::Io {
                path: path.to_path_buf(),
                source: std::io::ErrorKind::NotFound.into(),
            }),
        }
    }

    /// The file the key lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn from_pem(path: &Path, pem: &[u8]) -> Result<Self, IdentityError> {
        let pem = std::str::from_utf8(pem).map_err(|_| bad_file(path, "not UTF-8 PEM".into()))?;
        // The error text of pkcs8 describes the structure, never the key bytes.
        let key = p256::ecdsa::SigningKey::from_pkcs8_pem(pem)
            .map_err(|e| bad_file(path, format!("not a P-256 PKCS#8 PEM key: {e}")))?;
        Self::with_key(path, key)
    }

    fn with_key(path: &Path, key: p256::ecdsa::SigningKey) -> Result<Self, IdentityError> {
        let spki = key
            .verifying_key()
            .to_public_key_der()
            .map_err(|e| IdentityError::BadPublicKey(e.to_string()))?
            .as_bytes()
            .to_vec();
        Ok(FileKey {
            path: path.to_path_buf(),
            key,
            spki,
        })
    }
}

impl KeyBackend for FileKey {
    fn public_key_spki_der(&self) -> &[u8] {
        &self.spki
    }

    fn sign_sha256(&self, msg: &[u8]) -> Result<Vec<u8>, IdentityError> {
        // SigningKey<NistP256> hashes with SHA-256 and uses RFC 6979 nonces.
        let sig: p256::ecdsa::Signature = self
            .key
            .try_sign(msg)
            .map_err(|e| IdentityError::BadSignature(e.to_string()))?;
        Ok(sig.to_der().as_bytes().to_vec())
    }

    fn protection(&self) -> KeyProtection {
        KeyProtection::Software
    }
}

fn bad_file(path: &Path, reason: String) -> IdentityError {
    IdentityError::BadKeyFile {
        path: path.to_path_buf(),
        reason,
    }
}

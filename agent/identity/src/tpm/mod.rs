//! The TPM 2.0 backend. This module tree is the only code that imports `tss_esapi`.
//!
//! Layout (one file per operation family, after Parsec's TPM provider):
//! `context` opens the TCTI, `keys` holds templates and SRK create/load, `sign` signs,
//! `blob` is the on-disk format, `error` maps every TSS error.
//!
//! Persistence: the key is a blob (TPM2B_PUBLIC + SRK-wrapped TPM2B_PRIVATE) in the agent's
//! state directory, loaded under a re-derived SRK at each start; see the crate docs for why
//! this beats a persistent handle.

mod attest;
mod blob;
mod context;
mod error;
mod keys;
mod sign;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sha2::{Digest as _, Sha256};
use tss_esapi::handles::KeyHandle;
use tss_esapi::Context;

use crate::attestation::{Attestor, TpmAnswer, TpmEvidence};
use crate::fsutil::{self, Created};
use crate::{ecdsa, IdentityError, KeyBackend, KeyProtection};

/// Where the TPM is and where the key blob is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TpmConfig {
    /// TCTI string, e.g. [`TpmConfig::DEFAULT_TCTI`] or `swtpm:host=127.0.0.1,port=2321`.
    pub tcti: String,
    /// The key blob file (mode 0600), normally [`TpmConfig::KEY_BLOB_FILE`] in the state dir.
    pub key_blob: PathBuf,
}

impl TpmConfig {
    /// The kernel's resource manager: it swaps objects in and out, so the agent can keep its
    /// key loaded while other TPM users come and go. The agent runs in group `tss`.
    pub const DEFAULT_TCTI: &'static str = "device:/dev/tpmrm0";
    /// File name of the key blob inside the agent's state directory.
    pub const KEY_BLOB_FILE: &'static str = "identity.tpmkey";

    /// The default TCTI and the blob at `state_dir/identity.tpmkey`.
    pub fn in_state_dir(state_dir: &Path) -> Self {
        TpmConfig {
            tcti: Self::DEFAULT_TCTI.to_owned(),
            key_blob: state_dir.join(Self::KEY_BLOB_FILE),
        }
    }
}

/// The device identity key, generated in and never leaving the TPM.
pub struct TpmKey {
    /// ESAPI contexts are not `Sync` and one context must not run two commands at once.
    ctx: Mutex<Context>,
    handle: KeyHandle,
    spki: Vec<u8>,
    tcti: String,
}

impl fmt::Debug for TpmKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TpmKey").field("tcti", &self.tcti).finish()
    }
}

impl TpmKey {
    /// Load the identity key from `config.key_blob`, or create it in the TPM and store the
    /// blob (0600, atomically) if there is none. A blob that exists but does not load is an
    /// error, never a reason to make a new key: the identity would silently change.
    pub fn open_or_create(config: &TpmConfig) -> Result<Self, IdentityError> {
        let mut ctx = context::open(&config.tcti)?;
        let stored = match fsutil::read_private_file(&config.key_blob)? {
            Some(bytes) => bytes,
            None => create_blob(&mut ctx, &config.key_blob)?,
        };
        let bad_blob = |reason: String| IdentityError::BadKeyBlob {
            path: config.key_blob.clone(),
            reason,
        };
        let blob = blob::decode(&stored).map_err(bad_blob)?;
        let (parsed, point) = keys::parse(&blob).map_err(bad_blob)?;
        let handle = keys::load(&mut ctx, parsed)?;
        Ok(TpmKey {
            ctx: Mutex::new(ctx),
            handle,
            spki: ecdsa::spki_from_sec1(&point)?,
            tcti: config.tcti.clone(),
        })
    }
}

/// Create a key and store it; returns the stored bytes (another process's if it won a race).
fn create_blob(ctx: &mut Context, path: &Path) -> Result<Vec<u8>, IdentityError> {
    let blob = keys::create(ctx)?;
    let bytes = blob::encode(&blob).map_err(|reason| IdentityError::BadKeyBlob {
        path: path.to_path_buf(),
        reason,
    })?;
    match fsutil::create_private_file(path, &bytes)? {
        Created::Yes => {
            tracing::info!(path = %path.display(), "created a new TPM identity key");
            Ok(bytes)
        }
        Created::AlreadyExisted => {
            fsutil::read_private_file(path)?.ok_or_else(|| IdentityError::Io {
                path: path.to_path_buf(),
                source: std::io::Error::other("key blob vanished right after it was created"),
            })
        }
    }
}

impl TpmKey {
    fn context(
        &self,
        op: &'static str,
    ) -> Result<std::sync::MutexGuard<'_, Context>, IdentityError> {
        // A poisoned lock means a panic mid-command; the context's session state is unknown.
        self.ctx.lock().map_err(|_| IdentityError::Tpm {
            op,
            kind: crate::TpmErrorKind::Other,
            detail: "TPM context unusable after an earlier panic".into(),
        })
    }
}

impl Attestor for TpmKey {
    fn evidence(&self) -> Result<TpmEvidence, IdentityError> {
        attest::evidence(&mut *self.context("enrollment evidence")?, self.handle)
    }

    fn answer(
        &self,
        evidence: &TpmEvidence,
        id_object: &[u8],
        encrypted_secret: &[u8],
        nonce: &[u8],
    ) -> Result<TpmAnswer, IdentityError> {
        let mut ctx = self.context("enrollment answer")?;
        attest::answer(
            &mut ctx,
            self.handle,
            evidence,
            id_object,
            encrypted_secret,
            nonce,
        )
    }
}

impl KeyBackend for TpmKey {
    fn public_key_spki_der(&self) -> &[u8] {
        &self.spki
    }

    fn sign_sha256(&self, msg: &[u8]) -> Result<Vec<u8>, IdentityError> {
        let digest: [u8; 32] = Sha256::digest(msg).into();
        sign::sign_digest(&mut *self.context("Sign")?, self.handle, &digest)
    }

    fn protection(&self) -> KeyProtection {
        KeyProtection::Tpm
    }

    fn attestor(&self) -> Option<&dyn Attestor> {
        Some(self)
    }
}

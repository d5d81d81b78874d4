//! TPM 2.0 attestation checks for enrollment, as the hub runs them: TPM structures
//! (TPMT_PUBLIC, TPMS_ATTEST, TPMT_SIGNATURE), MakeCredential in software, EK certificate
//! chains against TPM-manufacturer CAs, and the two-round protocol in [`evidence`].
//!
//! Pure: no I/O, no tokio, no global state, no TPM. The device side (EK, AK,
//! ActivateCredential, Certify) lives in `outpost-identity`'s `tpm/` module; the tests here
//! drive a real swtpm through tpm2-tools to prove the two interoperate.

mod certify;
mod credential;
mod ek;
mod error;
pub mod evidence;
mod kdf;
mod public;
mod reader;

pub use certify::{verify_signature, CertifyInfo};
pub use credential::{make_credential, Credential};
pub use ek::{ek_device_id, EkPolicy, EkTrust, TrustedEk};
pub use error::AttestError;
pub use kdf::kdfa_sha256;
pub use public::{attrs, qualified_name_under_owner_primary, KeyParams, TpmPublic};

//! The single place where TSS/TPM errors become [`IdentityError`]s.

use tss_esapi::constants::response_code::{Tss2ResponseCode, Tss2ResponseCodeKind};

use crate::{IdentityError, TpmErrorKind};

/// Map a tss-esapi error raised by TPM operation `op` (e.g. "Sign").
pub(super) fn to_identity_error(op: &'static str, err: tss_esapi::Error) -> IdentityError {
    let kind = match err {
        tss_esapi::Error::Tss2Error(rc) => kind_of(rc),
        tss_esapi::Error::WrapperError(_) => TpmErrorKind::Other,
    };
    IdentityError::Tpm {
        op,
        kind,
        detail: err.to_string(),
    }
}

fn kind_of(rc: Tss2ResponseCode) -> TpmErrorKind {
    match rc.kind() {
        Some(Tss2ResponseCodeKind::Lockout) => TpmErrorKind::Lockout,
        Some(Tss2ResponseCodeKind::ObjectMemory | Tss2ResponseCodeKind::ObjectHandles) => {
            TpmErrorKind::OutOfMemory
        }
        // Load checks the private blob's HMAC with a key derived from the parent (SRK):
        // a different TPM or a cleared owner hierarchy yields an integrity failure.
        Some(Tss2ResponseCodeKind::Integrity) => TpmErrorKind::WrongTpm,
        _ => TpmErrorKind::Other,
    }
}

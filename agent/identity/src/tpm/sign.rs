//! TPM2_Sign with the identity key, returning the DER signature TLS and X.509 need.

use std::convert::TryFrom;

use tss_esapi::constants::tss::{TPM2_RH_NULL, TPM2_ST_HASHCHECK};
use tss_esapi::handles::KeyHandle;
use tss_esapi::interface_types::algorithm::HashingAlgorithm;
use tss_esapi::interface_types::session_handles::AuthSession;
use tss_esapi::structures::{Digest, HashScheme, HashcheckTicket, Signature, SignatureScheme};
use tss_esapi::tss2_esys::TPMT_TK_HASHCHECK;
use tss_esapi::Context;

use super::error::to_identity_error;
use crate::{ecdsa, IdentityError};

/// Sign a SHA-256 digest computed outside the TPM. The key is unrestricted, so the
/// "null" hashcheck ticket is enough (tickets only matter for restricted keys).
pub(super) fn sign_digest(
    ctx: &mut Context,
    key: KeyHandle,
    digest: &[u8; 32],
) -> Result<Vec<u8>, IdentityError> {
    let digest = Digest::try_from(digest.as_slice()).map_err(|e| to_identity_error("Sign", e))?;
    let ticket = null_ticket().map_err(|e| to_identity_error("Sign", e))?;
    let scheme = SignatureScheme::EcDsa {
        hash_scheme: HashScheme::new(HashingAlgorithm::Sha256),
    };
    let signature = ctx
        .execute_with_session(Some(AuthSession::Password), |ctx| {
            ctx.sign(key, digest, scheme, ticket)
        })
        .map_err(|e| to_identity_error("Sign", e))?;
    match signature {
        // The TPM returns raw r and s (possibly shorter than 32 bytes); peers need DER.
        Signature::EcDsa(sig) => {
            ecdsa::der_from_r_s(sig.signature_r().value(), sig.signature_s().value())
        }
        other => Err(IdentityError::BadSignature(format!(
            "TPM returned a {:?} signature, expected ECDSA",
            other.algorithm()
        ))),
    }
}

fn null_ticket() -> Result<HashcheckTicket, tss_esapi::Error> {
    HashcheckTicket::try_from(TPMT_TK_HASHCHECK {
        tag: TPM2_ST_HASHCHECK,
        hierarchy: TPM2_RH_NULL,
        digest: Default::default(),
    })
}

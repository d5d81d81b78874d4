//! EK, AK, TPM2_ActivateCredential and TPM2_Certify for enrollment ([`crate::Attestor`]).
//!
//! swtpm has no resource manager and few object slots: at most the device key, the EK and
//! the AK are loaded at once, and each is flushed as soon as it is not needed, on error too.

use std::convert::TryFrom;

use tss_esapi::abstraction::{ak, ek, AsymmetricAlgorithmSelection, DefaultKey, KeyCustomization};
use tss_esapi::attributes::{ObjectAttributesBuilder, SessionAttributesBuilder};
use tss_esapi::constants::SessionType;
use tss_esapi::handles::{AuthHandle, KeyHandle, ObjectHandle, SessionHandle};
use tss_esapi::interface_types::algorithm::{HashingAlgorithm, SignatureSchemeAlgorithm};
use tss_esapi::interface_types::ecc::EccCurve;
use tss_esapi::interface_types::key_bits::RsaKeyBits;
use tss_esapi::interface_types::session_handles::{AuthSession, PolicySession};
use tss_esapi::structures::{
    Data, EncryptedSecret, IdObject, Private, Public, SignatureScheme, SymmetricDefinition,
};
use tss_esapi::traits::{Marshall, UnMarshall};
use tss_esapi::Context;

use super::error::to_identity_error;
use super::keys;
use crate::attestation::{TpmAnswer, TpmEvidence};
use crate::IdentityError;

/// noDA on the AK: it has an empty auth value, and a power cut during enrollment must not
/// count towards the TPM's dictionary-attack lockout (tss-esapi's AK template omits it).
struct NoDa;

impl KeyCustomization for NoDa {
    fn attributes(&self, builder: ObjectAttributesBuilder) -> ObjectAttributesBuilder {
        builder.with_no_da(true)
    }
}

const EK_ALG: AsymmetricAlgorithmSelection = AsymmetricAlgorithmSelection::Rsa(RsaKeyBits::Rsa2048);

pub(super) fn evidence(ctx: &mut Context, key: KeyHandle) -> Result<TpmEvidence, IdentityError> {
    // A TPM without an EK certificate can still enroll against an EK allowlist.
    let ek_certificate = ek::retrieve_ek_pubcert(ctx, EK_ALG).ok();
    let ek = create_ek(ctx)?;
    let made = with_flush(ctx, ek.into(), |ctx| {
        let ek_public = marshall_public(ctx, ek, "ReadPublic(EK)")?;
        let ak = ak::create_ak_2(
            ctx,
            ek,
            HashingAlgorithm::Sha256,
            AsymmetricAlgorithmSelection::Ecc(EccCurve::NistP256),
            SignatureSchemeAlgorithm::EcDsa,
            None,
            NoDa,
        )
        .map_err(|e| to_identity_error("Create(AK)", e))?;
        Ok((ek_public, ak))
    })?;
    let (ek_public, ak) = made;
    let srk_public = keys::srk_public(ctx)?;
    let key_public = marshall_public(ctx, key, "ReadPublic(device key)")?;
    Ok(TpmEvidence {
        ek_certificate,
        ek_public,
        srk_public,
        ak_public: ak
            .out_public
            .marshall()
            .map_err(|e| to_identity_error("marshal AK public", e))?,
        key_public,
        ak_private: ak.out_private.value().to_vec(),
    })
}

pub(super) fn answer(
    ctx: &mut Context,
    key: KeyHandle,
    evidence: &TpmEvidence,
    id_object: &[u8],
    encrypted_secret: &[u8],
    nonce: &[u8],
) -> Result<TpmAnswer, IdentityError> {
    let bad = |what: &str, e: tss_esapi::Error| IdentityError::Tpm {
        op: "ActivateCredential",
        kind: crate::TpmErrorKind::Other,
        detail: format!("the hub's {what} does not fit its TPM structure: {e}"),
    };
    let id_object = IdObject::try_from(id_object.to_vec()).map_err(|e| bad("credential", e))?;
    let encrypted_secret =
        EncryptedSecret::try_from(encrypted_secret.to_vec()).map_err(|e| bad("secret", e))?;
    let nonce = Data::try_from(nonce.to_vec()).map_err(|e| bad("nonce", e))?;
    let ak_public = Public::unmarshall(&evidence.ak_public)
        .map_err(|e| to_identity_error("unmarshal AK public", e))?;
    let ak_private = Private::try_from(evidence.ak_private.clone())
        .map_err(|e| to_identity_error("AK private", e))?;

    let ek = create_ek(ctx)?;
    let activated = with_flush(ctx, ek.into(), |ctx| {
        let ak = ak::load_ak(ctx, ek, None, ak_private, ak_public)
            .map_err(|e| to_identity_error("Load(AK)", e))?;
        match activate(ctx, ak, ek, id_object, encrypted_secret) {
            Ok(secret) => Ok((ak, secret)),
            Err(e) => {
                let _ = ctx.flush_context(ak.into());
                Err(e)
            }
        }
    });
    // The EK is flushed; a loaded AK does not need its parent to stay loaded.
    let (ak, secret) = activated?;
    let (attest, signature) = with_flush(ctx, ak.into(), |ctx| {
        ctx.execute_with_sessions(
            (
                Some(AuthSession::Password),
                Some(AuthSession::Password),
                None,
            ),
            |ctx| ctx.certify(key.into(), ak, nonce, SignatureScheme::Null),
        )
        .map_err(|e| to_identity_error("Certify", e))
    })?;
    Ok(TpmAnswer {
        secret,
        certify_info: attest
            .marshall()
            .map_err(|e| to_identity_error("marshal TPMS_ATTEST", e))?,
        certify_signature: signature
            .marshall()
            .map_err(|e| to_identity_error("marshal TPMT_SIGNATURE", e))?,
    })
}

/// ActivateCredential: session 1 authorizes the AK (HMAC, empty auth), session 2 satisfies
/// the EK's policy, PolicySecret(endorsement hierarchy).
fn activate(
    ctx: &mut Context,
    ak: KeyHandle,
    ek: KeyHandle,
    id_object: IdObject,
    encrypted_secret: EncryptedSecret,
) -> Result<Vec<u8>, IdentityError> {
    let err = |e| to_identity_error("ActivateCredential", e);
    let (attrs, mask) = SessionAttributesBuilder::new().build();
    let hmac = ctx
        .start_auth_session(
            None,
            None,
            None,
            SessionType::Hmac,
            SymmetricDefinition::AES_128_CFB,
            HashingAlgorithm::Sha256,
        )
        .map_err(err)?
        .ok_or_else(|| missing_session("HMAC"))?;
    let policy = ctx
        .start_auth_session(
            None,
            None,
            None,
            SessionType::Policy,
            SymmetricDefinition::AES_128_CFB,
            HashingAlgorithm::Sha256,
        )
        .map_err(err);
    let policy = match policy {
        Ok(Some(p)) => p,
        other => {
            flush_session(ctx, hmac);
            return Err(other.err().unwrap_or_else(|| missing_session("policy")));
        }
    };
    let result = (|| {
        ctx.tr_sess_set_attributes(hmac, attrs, mask).map_err(err)?;
        ctx.tr_sess_set_attributes(policy, attrs, mask)
            .map_err(err)?;
        let policy_session = PolicySession::try_from(policy).map_err(err)?;
        ctx.execute_with_session(Some(hmac), |ctx| {
            ctx.policy_secret(
                policy_session,
                AuthHandle::Endorsement,
                Default::default(),
                Default::default(),
                Default::default(),
                None,
            )
        })
        .map_err(err)?;
        ctx.set_sessions((Some(hmac), Some(policy), None));
        let secret = ctx.activate_credential(ak, ek, id_object, encrypted_secret);
        ctx.clear_sessions();
        secret.map(|d| d.value().to_vec()).map_err(err)
    })();
    flush_session(ctx, policy);
    flush_session(ctx, hmac);
    result
}

fn missing_session(kind: &str) -> IdentityError {
    IdentityError::Tpm {
        op: "StartAuthSession",
        kind: crate::TpmErrorKind::Other,
        detail: format!("no {kind} session returned"),
    }
}

fn flush_session(ctx: &mut Context, session: AuthSession) {
    let _ = ctx.flush_context(ObjectHandle::from(SessionHandle::from(session)));
}

/// The EK from the TCG default template (the one its certificate certifies).
fn create_ek(ctx: &mut Context) -> Result<KeyHandle, IdentityError> {
    ek::create_ek_object_2(ctx, EK_ALG, DefaultKey)
        .map_err(|e| to_identity_error("CreatePrimary(EK)", e))
}

fn marshall_public(
    ctx: &mut Context,
    key: KeyHandle,
    op: &'static str,
) -> Result<Vec<u8>, IdentityError> {
    // read_public takes no authorization and fails inside a password session.
    ctx.clear_sessions();
    let (public, _, _) = ctx.read_public(key).map_err(|e| to_identity_error(op, e))?;
    public.marshall().map_err(|e| to_identity_error(op, e))
}

/// Runs `f`, then flushes `handle` whatever `f` returned.
fn with_flush<T>(
    ctx: &mut Context,
    handle: ObjectHandle,
    f: impl FnOnce(&mut Context) -> Result<T, IdentityError>,
) -> Result<T, IdentityError> {
    let result = f(ctx);
    let flushed = ctx
        .flush_context(handle)
        .map_err(|e| to_identity_error("FlushContext", e));
    let value = result?;
    flushed?;
    Ok(value)
}

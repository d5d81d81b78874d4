//! Key templates, the SRK, and creating/loading the identity key under it.
//!
//! The SRK is re-derived with `CreatePrimary` at every start instead of being persisted:
//! a primary key is a deterministic function of the owner seed and the template, so the same
//! template yields the same SRK after every reboot or TPM restart, and no NV slot or
//! persistent handle is needed. Only `TPM2_Clear` (new owner seed) changes it, and then the
//! old identity is rightly gone.

use std::convert::TryFrom;

use tss_esapi::attributes::{ObjectAttributes, ObjectAttributesBuilder};
use tss_esapi::handles::KeyHandle;
use tss_esapi::interface_types::algorithm::{HashingAlgorithm, PublicAlgorithm};
use tss_esapi::interface_types::ecc::EccCurve;
use tss_esapi::interface_types::resource_handles::Hierarchy;
use tss_esapi::interface_types::session_handles::AuthSession;
use tss_esapi::structures::{
    EccPoint, EccScheme, HashScheme, Private, Public, PublicBuilder, PublicEccParametersBuilder,
    SymmetricDefinitionObject,
};
use tss_esapi::traits::{Marshall, UnMarshall};
use tss_esapi::Context;

use super::blob::KeyBlob;
use super::error::to_identity_error;
use crate::{ecdsa, IdentityError};

/// ECC P-256 storage root key, restricted decrypt with AES-128-CFB (the TCG provisioning
/// guidance's ECC SRK shape). noDA: it has empty auth, and a power cut (no orderly
/// TPM2_Shutdown) must never count as a failed authorization.
pub(super) fn srk_template() -> Result<Public, tss_esapi::Error> {
    let attributes = ObjectAttributesBuilder::new()
        .with_fixed_tpm(true)
        .with_fixed_parent(true)
        .with_sensitive_data_origin(true)
        .with_user_with_auth(true)
        .with_no_da(true)
        .with_restricted(true)
        .with_decrypt(true)
        .build()?;
    let params = PublicEccParametersBuilder::new_restricted_decryption_key(
        SymmetricDefinitionObject::AES_128_CFB,
        EccCurve::NistP256,
    )
    .build()?;
    ecc_public(attributes, params)
}

/// The device identity key: unrestricted ECDSA-P256-SHA256 signing key.
/// fixedTPM + fixedParent: it can never be duplicated out of this TPM.
/// sensitiveDataOrigin: the TPM generated the private key; nobody outside ever saw it.
/// noDA: empty auth, and power cuts must not push the TPM into dictionary-attack lockout
/// (tss-esapi's `create_unrestricted_signing_ecc_public` does not set it).
/// Not restricted, so it can sign TLS handshakes and CSRs (arbitrary digests).
pub(super) fn identity_template() -> Result<Public, tss_esapi::Error> {
    let params = PublicEccParametersBuilder::new_unrestricted_signing_key(
        EccScheme::EcDsa(HashScheme::new(HashingAlgorithm::Sha256)),
        EccCurve::NistP256,
    )
    .build()?;
    ecc_public(identity_attributes()?, params)
}

fn identity_attributes() -> Result<ObjectAttributes, tss_esapi::Error> {
    ObjectAttributesBuilder::new()
        .with_fixed_tpm(true)
        .with_fixed_parent(true)
        .with_sensitive_data_origin(true)
        .with_user_with_auth(true)
        .with_no_da(true)
        .with_sign_encrypt(true)
        .build()
}

fn ecc_public(
    attributes: ObjectAttributes,
    params: tss_esapi::structures::PublicEccParameters,
) -> Result<Public, tss_esapi::Error> {
    PublicBuilder::new()
        .with_public_algorithm(PublicAlgorithm::Ecc)
        .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
        .with_object_attributes(attributes)
        .with_ecc_parameters(params)
        .with_ecc_unique_identifier(EccPoint::default())
        .build()
}

/// Generate a new identity key under the SRK and return it as a storable blob.
pub(super) fn create(ctx: &mut Context) -> Result<KeyBlob, IdentityError> {
    let template = identity_template().map_err(|e| to_identity_error("identity template", e))?;
    let created = with_srk(ctx, |ctx, srk| {
        ctx.create(srk, template, None, None, None, None)
            .map_err(|e| to_identity_error("Create(identity key)", e))
    })?;
    let public = created
        .out_public
        .marshall()
        .map_err(|e| to_identity_error("marshal public", e))?;
    Ok(KeyBlob {
        public,
        private: created.out_private.value().to_vec(),
    })
}

/// A stored key parsed back into TPM structures.
pub(super) struct ParsedKey {
    pub(super) public: Public,
    private: Private,
}

/// Parse a blob and check that its public area is an identity key as we create them
/// (so a blob imported or made with other attributes is never reported as `Tpm`).
/// Returns the uncompressed SEC1 point; errors are reasons for `BadKeyBlob`.
pub(super) fn parse(blob: &KeyBlob) -> Result<(ParsedKey, Vec<u8>), String> {
    let public = Public::unmarshall(&blob.public)
        .map_err(|e| format!("public part is not a TPMT_PUBLIC: {e}"))?;
    // unmarshall ignores trailing bytes; re-marshalling must give back exactly the input.
    if public.marshall().ok().as_deref() != Some(blob.public.as_slice()) {
        return Err("public part has trailing or non-canonical bytes".into());
    }
    let point = identity_point(&public)?;
    let private = Private::try_from(blob.private.clone())
        .map_err(|e| format!("private part does not fit a TPM2B_PRIVATE: {e}"))?;
    Ok((ParsedKey { public, private }, point))
}

/// Load a parsed key under the SRK. The TPM checks the private part's integrity against
/// the public area and the SRK, so a blob from another TPM fails here (`WrongTpm`).
pub(super) fn load(ctx: &mut Context, key: ParsedKey) -> Result<KeyHandle, IdentityError> {
    let ParsedKey { public, private } = key;
    with_srk(ctx, |ctx, srk| {
        ctx.load(srk, private, public)
            .map_err(|e| to_identity_error("Load(identity key)", e))
    })
}

/// Uncompressed SEC1 point of `public` if it has exactly the identity key's shape.
pub(super) fn identity_point(public: &Public) -> Result<Vec<u8>, String> {
    let Public::Ecc {
        object_attributes,
        name_hashing_algorithm,
        parameters,
        unique,
        ..
    } = public
    else {
        return Err("not an ECC key".into());
    };
    let expected = identity_attributes().map_err(|e| e.to_string())?;
    if *object_attributes != expected {
        return Err(format!(
            "object attributes {:#010x}, expected {:#010x} \
             (fixedTPM|fixedParent|sensitiveDataOrigin|userWithAuth|noDA|sign)",
            u32::from(*object_attributes),
            u32::from(expected)
        ));
    }
    if *name_hashing_algorithm != HashingAlgorithm::Sha256
        || parameters.ecc_curve() != EccCurve::NistP256
        || parameters.ecc_scheme() != EccScheme::EcDsa(HashScheme::new(HashingAlgorithm::Sha256))
    {
        return Err("not an ECDSA-SHA256 P-256 key with a SHA-256 name".into());
    }
    ecdsa::sec1_from_xy(unique.x().value(), unique.y().value()).map_err(|e| e.to_string())
}

/// The SRK's public area (marshalled TPMT_PUBLIC): the hub computes the device key's
/// Qualified Name from it.
pub(super) fn srk_public(ctx: &mut Context) -> Result<Vec<u8>, IdentityError> {
    let template = srk_template().map_err(|e| to_identity_error("SRK template", e))?;
    let srk = ctx
        .execute_with_session(Some(AuthSession::Password), |ctx| {
            ctx.create_primary(Hierarchy::Owner, template, None, None, None, None)
        })
        .map_err(|e| to_identity_error("CreatePrimary(SRK)", e))?;
    let public = srk.out_public.marshall();
    ctx.flush_context(srk.key_handle.into())
        .map_err(|e| to_identity_error("FlushContext(SRK)", e))?;
    public.map_err(|e| to_identity_error("marshal SRK public", e))
}

/// Run `f` with a freshly derived SRK inside a password session, then flush the SRK:
/// a loaded child does not need its parent to stay loaded, and without a resource manager
/// (swtpm) every resident object costs one of a handful of slots.
fn with_srk<T>(
    ctx: &mut Context,
    f: impl FnOnce(&mut Context, KeyHandle) -> Result<T, IdentityError>,
) -> Result<T, IdentityError> {
    let template = srk_template().map_err(|e| to_identity_error("SRK template", e))?;
    ctx.execute_with_session(Some(AuthSession::Password), |ctx| {
        let srk = ctx
            .create_primary(Hierarchy::Owner, template, None, None, None, None)
            .map_err(|e| to_identity_error("CreatePrimary(SRK)", e))?
            .key_handle;
        let result = f(ctx, srk);
        let flushed = ctx
            .flush_context(srk.into())
            .map_err(|e| to_identity_error("FlushContext(SRK)", e));
        let value = result?;
        flushed?;
        Ok(value)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_template_has_the_required_attributes() {
        let public = identity_template().unwrap();
        let attrs = public.object_attributes();
        assert!(attrs.fixed_tpm() && attrs.fixed_parent() && attrs.sensitive_data_origin());
        assert!(attrs.no_da() && attrs.sign_encrypt() && attrs.user_with_auth());
        assert!(!attrs.decrypt() && !attrs.restricted());
    }

    #[test]
    fn srk_template_is_a_no_da_restricted_decryption_key() {
        let attrs = srk_template().unwrap().object_attributes();
        assert!(attrs.no_da() && attrs.restricted() && attrs.decrypt() && attrs.fixed_tpm());
        assert!(!attrs.sign_encrypt());
    }

    #[test]
    fn identity_point_rejects_keys_without_no_da_or_other_shapes() {
        let unique = EccPoint::new(
            vec![1; 32].try_into().unwrap(),
            vec![2; 32].try_into().unwrap(),
        );
        let with = |attrs: ObjectAttributes| {
            let params = PublicEccParametersBuilder::new_unrestricted_signing_key(
                EccScheme::EcDsa(HashScheme::new(HashingAlgorithm::Sha256)),
                EccCurve::NistP256,
            )
            .build()
            .unwrap();
            PublicBuilder::new()
                .with_public_algorithm(PublicAlgorithm::Ecc)
                .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
                .with_object_attributes(attrs)
                .with_ecc_parameters(params)
                .with_ecc_unique_identifier(unique.clone())
                .build()
                .unwrap()
        };
        let good = identity_attributes().unwrap();
        let point = identity_point(&with(good)).unwrap();
        assert_eq!(point.len(), 65);
        assert_eq!(point[0], 4);
        let no_da_missing = ObjectAttributesBuilder::new()
            .with_fixed_tpm(true)
            .with_fixed_parent(true)
            .with_sensitive_data_origin(true)
            .with_user_with_auth(true)
            .with_sign_encrypt(true)
            .build()
            .unwrap();
        assert!(identity_point(&with(no_da_missing)).is_err());
        assert!(identity_point(&srk_template().unwrap()).is_err());
    }
}

//! TPM2_MakeCredential in software (TPM 2.0 Part 1 §24, Part 3 §12.6) for an RSA EK: what a
//! hub sends so that only the TPM holding that EK, with the named object loaded, can recover
//! the secret (with TPM2_ActivateCredential).

use aes::cipher::{AsyncStreamCipher, KeyIvInit};
use hmac::{Hmac, Mac};
use rand_core::{CryptoRng, RngCore};
use rsa::{BigUint, Oaep, RsaPublicKey};
use sha2::Sha256;

use crate::kdf::kdfa_sha256;
use crate::public::{KeyParams, TpmPublic};
use crate::reader::put_tpm2b;
use crate::AttestError;

/// The two halves ActivateCredential takes, each without its outer TPM2B size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// TPM2B_ID_OBJECT contents: TPM2B(integrity HMAC) ‖ AES-CFB(TPM2B(secret)).
    pub id_object: Vec<u8>,
    /// TPM2B_ENCRYPTED_SECRET contents: the seed under RSA-OAEP(SHA-256, "IDENTITY\0").
    pub encrypted_secret: Vec<u8>,
}

/// Wraps `secret` (1..=32 bytes) for the TPM holding `ek`, bound to the object `object_name`.
pub fn make_credential(
    ek: &TpmPublic,
    object_name: &[u8],
    secret: &[u8],
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<Credential, AttestError> {
    if secret.is_empty() || secret.len() > 32 {
        return Err(AttestError::Crypto(
            "credential secret must be 1..=32 bytes".into(),
        ));
    }
    ek.check_endorsement_key()?;
    let public = rsa_public_key(ek)?;
    // The seed is one digest of the EK's name algorithm (SHA-256).
    let mut seed = [0u8; 32];
    rng.fill_bytes(&mut seed);
    let encrypted_secret = public
        .encrypt(rng, Oaep::new_with_label::<Sha256, _>("IDENTITY\0"), &seed)
        .map_err(|e| AttestError::Crypto(format!("RSA-OAEP of the seed: {e}")))?;

    // AES-128 from the EK's symmetric definition (template L-1), IV zero.
    let sym_key = kdfa_sha256(&seed, "STORAGE", object_name, &[], 128);
    let mut enc_identity = Vec::with_capacity(2 + secret.len());
    put_tpm2b(&mut enc_identity, secret);
    cfb_mode::Encryptor::<aes::Aes128>::new_from_slices(&sym_key, &[0u8; 16])
        .map_err(|e| AttestError::Crypto(format!("AES-128-CFB: {e}")))?
        .encrypt(&mut enc_identity);

    let hmac_key = kdfa_sha256(&seed, "INTEGRITY", &[], &[], 256);
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&hmac_key)
        .map_err(|e| AttestError::Crypto(format!("HMAC: {e}")))?;
    mac.update(&enc_identity);
    mac.update(object_name);
    let outer_hmac = mac.finalize().into_bytes();

    let mut id_object = Vec::with_capacity(2 + outer_hmac.len() + enc_identity.len());
    put_tpm2b(&mut id_object, &outer_hmac);
    id_object.extend_from_slice(&enc_identity);
    Ok(Credential {
        id_object,
        encrypted_secret,
    })
}

/// The RSA public key of an RSA TPMT_PUBLIC (exponent 0 means 65537).
pub fn rsa_public_key(key: &TpmPublic) -> Result<RsaPublicKey, AttestError> {
    let KeyParams::Rsa {
        exponent, modulus, ..
    } = &key.params
    else {
        return Err(AttestError::unacceptable(
            "endorsement key",
            "not an RSA key",
        ));
    };
    let e = if *exponent == 0 { 65537 } else { *exponent };
    RsaPublicKey::new(BigUint::from_bytes_be(modulus), BigUint::from(e))
        .map_err(|e| AttestError::unacceptable("endorsement key", format!("bad RSA key: {e}")))
}

//! TPMT_PUBLIC (TPM 2.0 Part 2 §12.2.4) for the RSA and ECC keys enrollment uses: parse,
//! Name, Qualified Name, and the shapes we accept for the EK, the AK, the SRK and the device key.

use sha2::{Digest, Sha256};

use crate::reader::Reader;
use crate::AttestError;

pub const TPM_ALG_RSA: u16 = 0x0001;
pub const TPM_ALG_SHA256: u16 = 0x000B;
pub const TPM_ALG_NULL: u16 = 0x0010;
pub const TPM_ALG_ECDSA: u16 = 0x0018;
pub const TPM_ALG_ECC: u16 = 0x0023;
pub const TPM_ALG_AES: u16 = 0x0006;
pub const TPM_ALG_CFB: u16 = 0x0043;
pub const TPM_ECC_NIST_P256: u16 = 0x0003;
/// The owner (storage) hierarchy's handle: the Qualified Name of its primaries starts here.
pub const TPM_RH_OWNER: u32 = 0x4000_0001;

/// TPMA_OBJECT bits (Part 2 §8.3).
pub mod attrs {
    pub const FIXED_TPM: u32 = 1 << 1;
    pub const FIXED_PARENT: u32 = 1 << 4;
    pub const SENSITIVE_DATA_ORIGIN: u32 = 1 << 5;
    pub const USER_WITH_AUTH: u32 = 1 << 6;
    pub const ADMIN_WITH_POLICY: u32 = 1 << 7;
    pub const NO_DA: u32 = 1 << 10;
    pub const RESTRICTED: u32 = 1 << 16;
    pub const DECRYPT: u32 = 1 << 17;
    pub const SIGN_ENCRYPT: u32 = 1 << 18;
}

/// TPMT_SYM_DEF_OBJECT, when not TPM_ALG_NULL: (algorithm, key bits, mode).
pub type Symmetric = Option<(u16, u16, u16)>;

/// The algorithm-specific half of a TPMT_PUBLIC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyParams {
    Rsa {
        symmetric: Symmetric,
        /// (scheme, hash) unless TPM_ALG_NULL.
        scheme: Option<(u16, u16)>,
        key_bits: u16,
        /// 0 means the default, 65537.
        exponent: u32,
        modulus: Vec<u8>,
    },
    Ecc {
        symmetric: Symmetric,
        scheme: Option<(u16, u16)>,
        curve: u16,
        kdf: Option<(u16, u16)>,
        x: Vec<u8>,
        y: Vec<u8>,
    },
}

/// A parsed TPMT_PUBLIC and the exact bytes it came from (its Name hashes those bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TpmPublic {
    raw: Vec<u8>,
    pub name_alg: u16,
    pub attributes: u32,
    pub auth_policy: Vec<u8>,
    pub params: KeyParams,
}

impl TpmPublic {
    /// Parses a marshalled TPMT_PUBLIC (no TPM2B size prefix), RSA or ECC, SHA-256 name.
    pub fn parse(bytes: &[u8], what: &'static str) -> Result<Self, AttestError> {
        let mut r = Reader::new(bytes, what);
        let alg = r.u16()?;
        let name_alg = r.u16()?;
        let attributes = r.u32()?;
        let auth_policy = r.tpm2b()?.to_vec();
        let params = match alg {
            TPM_ALG_RSA => {
                let symmetric = sym_def(&mut r)?;
                let scheme = read_scheme(&mut r)?;
                let key_bits = r.u16()?;
                let exponent = r.u32()?;
                let modulus = r.tpm2b()?.to_vec();
                KeyParams::Rsa {
                    symmetric,
                    scheme,
                    key_bits,
                    exponent,
                    modulus,
                }
            }
            TPM_ALG_ECC => {
                let symmetric = sym_def(&mut r)?;
                let scheme = read_scheme(&mut r)?;
                let curve = r.u16()?;
                let kdf = read_scheme(&mut r)?;
                let x = r.tpm2b()?.to_vec();
                let y = r.tpm2b()?.to_vec();
                KeyParams::Ecc {
                    symmetric,
                    scheme,
                    curve,
                    kdf,
                    x,
                    y,
                }
            }
            other => return Err(r.malformed(format!("key type {other:#06x} is not RSA or ECC"))),
        };
        r.finish()?;
        if name_alg != TPM_ALG_SHA256 {
            return Err(AttestError::unacceptable(
                what,
                format!("name algorithm {name_alg:#06x} is not SHA-256"),
            ));
        }
        Ok(TpmPublic {
            raw: bytes.to_vec(),
            name_alg,
            attributes,
            auth_policy,
            params,
        })
    }

    /// The marshalled TPMT_PUBLIC.
    pub fn bytes(&self) -> &[u8] {
        &self.raw
    }

    /// TPM Name: nameAlg ‖ SHA-256(TPMT_PUBLIC).
    pub fn name(&self) -> Vec<u8> {
        let mut name = TPM_ALG_SHA256.to_be_bytes().to_vec();
        name.extend_from_slice(&Sha256::digest(&self.raw));
        name
    }

    /// The uncompressed SEC1 point (0x04 ‖ X ‖ Y) of a P-256 key.
    pub fn p256_point(&self) -> Option<Vec<u8>> {
        match &self.params {
            KeyParams::Ecc { curve, x, y, .. }
                if *curve == TPM_ECC_NIST_P256 && x.len() <= 32 && y.len() <= 32 =>
            {
                let mut point = vec![4u8];
                for c in [x, y] {
                    point.extend(std::iter::repeat_n(0, 32 - c.len()));
                    point.extend_from_slice(c);
                }
                Some(point)
            }
            _ => None,
        }
    }

    fn require(&self, what: &'static str, set: u32, clear: u32) -> Result<(), AttestError> {
        if self.attributes & set != set || self.attributes & clear != 0 {
            return Err(AttestError::unacceptable(
                what,
                format!(
                    "object attributes {:#010x}: needs {set:#010x} set and {clear:#010x} clear",
                    self.attributes
                ),
            ));
        }
        Ok(())
    }

    fn require_p256_ecdsa(&self, what: &'static str) -> Result<(), AttestError> {
        match &self.params {
            KeyParams::Ecc {
                curve: TPM_ECC_NIST_P256,
                scheme: Some((TPM_ALG_ECDSA, TPM_ALG_SHA256)),
                ..
            } if self.p256_point().is_some() => Ok(()),
            _ => Err(AttestError::unacceptable(
                what,
                "not an ECDSA-SHA256 P-256 key",
            )),
        }
    }

    /// The attestation key: a restricted signing key that never left its TPM, so it only
    /// signs structures the TPM made itself (TPMS_ATTEST starts with TPM_GENERATED_VALUE).
    pub fn check_attestation_key(&self) -> Result<(), AttestError> {
        const WHAT: &str = "attestation key";
        self.require_p256_ecdsa(WHAT)?;
        self.require(
            WHAT,
            attrs::FIXED_TPM
                | attrs::FIXED_PARENT
                | attrs::SENSITIVE_DATA_ORIGIN
                | attrs::RESTRICTED
                | attrs::SIGN_ENCRYPT,
            attrs::DECRYPT,
        )
    }

    /// The device (mTLS) key: generated in the TPM and never exportable; unrestricted so it
    /// can sign TLS handshakes.
    pub fn check_device_key(&self) -> Result<(), AttestError> {
        const WHAT: &str = "device key";
        self.require_p256_ecdsa(WHAT)?;
        self.require(
            WHAT,
            attrs::FIXED_TPM
                | attrs::FIXED_PARENT
                | attrs::SENSITIVE_DATA_ORIGIN
                | attrs::SIGN_ENCRYPT,
            attrs::DECRYPT | attrs::RESTRICTED,
        )
    }

    /// The device key's parent: a storage key that cannot leave its TPM.
    pub fn check_storage_root_key(&self) -> Result<(), AttestError> {
        const WHAT: &str = "storage root key";
        self.require(
            WHAT,
            attrs::FIXED_TPM | attrs::FIXED_PARENT | attrs::RESTRICTED | attrs::DECRYPT,
            attrs::SIGN_ENCRYPT,
        )
    }

    /// The endorsement key in the TCG default RSA-2048 shape (EK profile template L-1):
    /// a restricted decryption key with AES-128-CFB, which MakeCredential encrypts to.
    pub fn check_endorsement_key(&self) -> Result<(), AttestError> {
        const WHAT: &str = "endorsement key";
        match &self.params {
            KeyParams::Rsa {
                symmetric: Some((TPM_ALG_AES, 128, TPM_ALG_CFB)),
                key_bits: 2048,
                modulus,
                ..
            } if modulus.len() == 256 => {}
            _ => {
                return Err(AttestError::unacceptable(
                    WHAT,
                    "not an RSA-2048 storage key with AES-128-CFB (TCG EK template L-1)",
                ))
            }
        }
        self.require(
            WHAT,
            attrs::FIXED_TPM | attrs::FIXED_PARENT | attrs::RESTRICTED | attrs::DECRYPT,
            attrs::SIGN_ENCRYPT,
        )
    }
}

/// Qualified Name of an object whose parent is a primary key of the owner hierarchy:
/// QN(primary) = nameAlg ‖ H(TPM_RH_OWNER ‖ Name(primary)); QN(child) = nameAlg ‖ H(QN(primary)
/// ‖ Name(child)) (Part 1 §16). The TPM computes it from the objects it really holds, so
/// matching it proves the child was loaded under that primary, not loaded from outside.
pub fn qualified_name_under_owner_primary(primary: &TpmPublic, child: &TpmPublic) -> Vec<u8> {
    let qn = |parent: &[u8], name: &[u8]| {
        let mut h = Sha256::new();
        h.update(parent);
        h.update(name);
        let mut out = TPM_ALG_SHA256.to_be_bytes().to_vec();
        out.extend_from_slice(&h.finalize());
        out
    };
    let primary_qn = qn(&TPM_RH_OWNER.to_be_bytes(), &primary.name());
    qn(&primary_qn, &child.name())
}

fn sym_def(r: &mut Reader<'_>) -> Result<Symmetric, AttestError> {
    let alg = r.u16()?;
    if alg == TPM_ALG_NULL {
        return Ok(None);
    }
    Ok(Some((alg, r.u16()?, r.u16()?)))
}

/// TPMT_RSA_SCHEME / TPMT_ECC_SCHEME / TPMT_KDF_SCHEME: an algorithm and, unless NULL, a hash.
/// ECDAA (the only scheme with a further field) is refused as malformed for our purposes.
fn read_scheme(r: &mut Reader<'_>) -> Result<Option<(u16, u16)>, AttestError> {
    const TPM_ALG_ECDAA: u16 = 0x001A;
    let alg = r.u16()?;
    if alg == TPM_ALG_NULL {
        return Ok(None);
    }
    if alg == TPM_ALG_ECDAA {
        return Err(r.malformed("ECDAA schemes are not supported".into()));
    }
    Ok(Some((alg, r.u16()?)))
}

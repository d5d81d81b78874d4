//! On-disk format of the TPM key: a magic line, then TPM2B_PUBLIC and TPM2B_PRIVATE exactly
//! as tpm2-tools writes them (`tpm2_create -u key.pub -r key.priv`), so the two halves can be
//! inspected with `tpm2_print -t TPM2B_PUBLIC` and loaded with `tpm2_load`.
//!
//! Both halves sit in one file so that one atomic link(2) stores the whole key: two files
//! could be torn apart by a power cut between two renames.

/// Identifies the format and its version.
pub(super) const MAGIC: &[u8; 16] = b"OUTPOST-TPMKEY1\n";

/// The stored key: marshalled TPMT_PUBLIC and the SRK-wrapped private area.
#[derive(Clone, PartialEq, Eq)]
pub(super) struct KeyBlob {
    pub(super) public: Vec<u8>,
    pub(super) private: Vec<u8>,
}

impl std::fmt::Debug for KeyBlob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "KeyBlob {{ public: {} bytes, private: {} bytes }}",
            self.public.len(),
            self.private.len()
        )
    }
}

/// Serialize; fails only if a half exceeds the 16-bit TPM2B size, which the TPM never returns.
pub(super) fn encode(blob: &KeyBlob) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(MAGIC.len() + 4 + blob.public.len() + blob.private.len());
    out.extend_from_slice(MAGIC);
    put_tpm2b(&mut out, &blob.public)?;
    put_tpm2b(&mut out, &blob.private)?;
    Ok(out)
}

/// Parse strictly: right magic, two TPM2B fields, no trailing bytes.
pub(super) fn decode(bytes: &[u8]) -> Result<KeyBlob, String> {
    let rest = bytes
        .strip_prefix(MAGIC.as_slice())
        .ok_or("not an Outpost TPM key blob (bad magic)")?;
    let (public, rest) = take_tpm2b(rest, "public")?;
    let (private, rest) = take_tpm2b(rest, "private")?;
    if !rest.is_empty() {
        return Err(format!("{} trailing bytes", rest.len()));
    }
    if public.is_empty() || private.is_empty() {
        return Err("empty public or private part".into());
    }
    Ok(KeyBlob {
        public: public.to_vec(),
        private: private.to_vec(),
    })
}

fn put_tpm2b(out: &mut Vec<u8>, data: &[u8]) -> Result<(), String> {
    let len = u16::try_from(data.len()).map_err(|_| "TPM2B part longer than 65535 bytes")?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(data);
    Ok(())
}

fn take_tpm2b<'a>(bytes: &'a [u8], what: &str) -> Result<(&'a [u8], &'a [u8]), String> {
    let (len, rest) = bytes
        .split_first_chunk::<2>()
        .ok_or_else(|| format!("truncated before the {what} size"))?;
    let len = usize::from(u16::from_be_bytes(*len));
    if rest.len() < len {
        return Err(format!("truncated {what} part"));
    }
    Ok(rest.split_at(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> KeyBlob {
        KeyBlob {
            public: vec![1, 2, 3],
            private: vec![4, 5],
        }
    }

    #[test]
    fn round_trips_with_tpm2b_layout() {
        let bytes = encode(&sample()).unwrap();
        assert_eq!(&bytes[16..], &[0, 3, 1, 2, 3, 0, 2, 4, 5]);
        assert_eq!(decode(&bytes).unwrap(), sample());
    }

    #[test]
    fn rejects_bad_magic_truncation_trailing_data_and_empty_parts() {
        let good = encode(&sample()).unwrap();
        let mut bad_magic = good.clone();
        bad_magic[0] ^= 1;
        assert!(decode(&bad_magic).is_err());
        for cut in 0..good.len() {
            assert!(
                decode(&good[..cut]).is_err(),
                "prefix of {cut} bytes accepted"
            );
        }
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(decode(&trailing).is_err());
        let empty = encode(&KeyBlob {
            public: vec![],
            private: vec![1],
        })
        .unwrap();
        assert!(decode(&empty).is_err());
    }
}

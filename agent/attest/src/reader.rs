//! Big-endian reader for TPM 2.0 marshalled structures (TPM 2.0 Part 2): every read is bounds
//! checked, and a structure must be consumed exactly.

use crate::AttestError;

pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], what: &'static str) -> Self {
        Reader { buf, what }
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], AttestError> {
        if self.buf.len() < n {
            return Err(self.malformed(format!(
                "truncated: needs {n} more bytes, {} left",
                self.buf.len()
            )));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, AttestError> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, AttestError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, AttestError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, AttestError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    /// A TPM2B: 16-bit size, then that many bytes.
    pub(crate) fn tpm2b(&mut self) -> Result<&'a [u8], AttestError> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }

    /// The structure must end here: trailing bytes would be unsigned or unchecked data.
    pub(crate) fn finish(self) -> Result<(), AttestError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(self.malformed(format!("{} trailing bytes", self.buf.len())))
        }
    }

    pub(crate) fn malformed(&self, reason: String) -> AttestError {
        AttestError::Malformed {
            what: self.what,
            reason,
        }
    }
}

/// Appends a TPM2B (16-bit size prefix); `data` is at most a digest or a key here.
pub(crate) fn put_tpm2b(out: &mut Vec<u8>, data: &[u8]) {
    let len = u16::try_from(data.len()).expect("TPM2B payloads here are small");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(data);
}

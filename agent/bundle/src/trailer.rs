//! The bundle trailer: `[ payload ][ CMS DER ][ u64 BE = len(CMS) ]`.
//!
//! RAUC (`open_local_bundle`) reads the last 8 bytes as the CMS size, refuses a
//! zero size or one above `max-bundle-signature-size` (64 KiB by default), and
//! takes everything before the CMS as the payload. The pure part here works on
//! the 8 trailer bytes and the file length; [`read_layout`] is the thin
//! `Read + Seek` wrapper that never touches the payload.

use std::io::{Read, Seek, SeekFrom};

/// Length of the big-endian CMS size field at the very end of a bundle.
pub const TRAILER_LEN: u64 = 8;

/// RAUC's default `max-bundle-signature-size`: a CMS above this is refused
/// before any allocation is driven by it.
pub const MAX_CMS_LEN: u64 = 64 * 1024;

/// Where the payload and the CMS live inside a bundle file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Bytes `[0, payload_len)`: squashfs (plain) or squashfs ‖ hash tree (verity).
    pub payload_len: u64,
    /// Offset of the CMS DER blob (equals `payload_len`).
    pub cms_offset: u64,
    /// Length of the CMS DER blob.
    pub cms_len: u64,
}

/// Why a bundle's trailer is unusable.
#[derive(Debug, thiserror::Error)]
pub enum TrailerError {
    #[error("bundle too short: {len} bytes cannot hold a signature trailer")]
    TooShort { len: u64 },
    #[error("signature size field is zero")]
    EmptySignature,
    #[error("signature size {size} exceeds the limit of {max} bytes")]
    SignatureTooLarge { size: u64, max: u64 },
    #[error("signature size field {size} does not fit a bundle of {file_len} bytes")]
    SizeExceedsFile { size: u64, file_len: u64 },
    #[error("bundle has an empty payload")]
    EmptyPayload,
    #[error("reading the bundle trailer: {0}")]
    Io(#[from] std::io::Error),
}

/// Computes the layout from the last 8 bytes of a file of `file_len` bytes.
pub fn parse_trailer(trailer: [u8; 8], file_len: u64) -> Result<Layout, TrailerError> {
    if file_len < TRAILER_LEN {
        return Err(TrailerError::TooShort { len: file_len });
    }
    let size = u64::from_be_bytes(trailer);
    if size == 0 {
        return Err(TrailerError::EmptySignature);
    }
    if size > MAX_CMS_LEN {
        return Err(TrailerError::SignatureTooLarge {
            size,
            max: MAX_CMS_LEN,
        });
    }
    let before_trailer = file_len - TRAILER_LEN;
    let payload_len = before_trailer
        .checked_sub(size)
        .ok_or(TrailerError::SizeExceedsFile { size, file_len })?;
    if payload_len == 0 {
        return Err(TrailerError::EmptyPayload);
    }
    Ok(Layout {
        payload_len,
        cms_offset: payload_len,
        cms_len: size,
    })
}

/// Splits an in-memory bundle (tests, fuzzing) into `(payload, cms)`.
pub fn split(bundle: &[u8]) -> Result<(&[u8], &[u8]), TrailerError> {
    let len = bundle.len() as u64;
    let tail_start = bundle
        .len()
        .checked_sub(TRAILER_LEN as usize)
        .ok_or(TrailerError::TooShort { len })?;
    let mut trailer = [0u8; 8];
    trailer.copy_from_slice(&bundle[tail_start..]);
    let layout = parse_trailer(trailer, len)?;
    // Both bounds were checked against `len` by `parse_trailer`.
    let cms_start = layout.cms_offset as usize;
    Ok((&bundle[..cms_start], &bundle[cms_start..tail_start]))
}

/// Reads the layout and the CMS blob (at most [`MAX_CMS_LEN`] bytes) from a
/// seekable source; the payload is left where it is.
pub fn read_layout<R: Read + Seek>(source: &mut R) -> Result<(Layout, Vec<u8>), TrailerError> {
    let file_len = source.seek(SeekFrom::End(0))?;
    if file_len < TRAILER_LEN {
        return Err(TrailerError::TooShort { len: file_len });
    }
    source.seek(SeekFrom::Start(file_len - TRAILER_LEN))?;
    let mut trailer = [0u8; 8];
    source.read_exact(&mut trailer)?;
    let layout = parse_trailer(trailer, file_len)?;
    source.seek(SeekFrom::Start(layout.cms_offset))?;
    // Bounded by MAX_CMS_LEN above.
    let mut cms = vec![0u8; layout.cms_len as usize];
    source.read_exact(&mut cms)?;
    Ok((layout, cms))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle(payload: &[u8], cms: &[u8]) -> Vec<u8> {
        let mut b = payload.to_vec();
        b.extend_from_slice(cms);
        b.extend_from_slice(&(cms.len() as u64).to_be_bytes());
        b
    }

    #[test]
    fn splits_payload_and_cms() {
        let b = bundle(b"payload", b"cms!");
        let (p, c) = split(&b).unwrap();
        assert_eq!((p, c), (&b"payload"[..], &b"cms!"[..]));
        let (layout, cms) = read_layout(&mut std::io::Cursor::new(&b)).unwrap();
        assert_eq!(layout.payload_len, 7);
        assert_eq!(cms, b"cms!");
    }

    #[test]
    fn rejects_bad_trailers() {
        assert!(matches!(
            split(b"1234567"),
            Err(TrailerError::TooShort { len: 7 })
        ));
        assert!(matches!(
            split(&bundle(b"p", b"")),
            Err(TrailerError::EmptySignature)
        ));
        let mut lying = bundle(b"p", b"cms");
        let n = lying.len();
        lying[n - 8..].copy_from_slice(&100u64.to_be_bytes());
        assert!(matches!(
            split(&lying),
            Err(TrailerError::SizeExceedsFile { size: 100, .. })
        ));
        lying[n - 8..].copy_from_slice(&u64::MAX.to_be_bytes());
        assert!(matches!(
            split(&lying),
            Err(TrailerError::SignatureTooLarge { .. })
        ));
        assert!(matches!(
            split(&bundle(b"", b"cms")),
            Err(TrailerError::EmptyPayload)
        ));
    }
}

use super::*;
use crate::verity::tests::{build, data};

/// A tree over `blocks` blocks of test data, and the data.
fn tree(blocks: usize) -> (HashTree, Vec<u8>) {
    let d = data(blocks);
    let (params, tree) = build(&d, &[3u8; 32]);
    (HashTree::verify(&params, d.len() as u64, tree).unwrap(), d)
}

fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(&DigestAlg::Sha256.digest(data));
    out
}

/// Ranges crossing buffer and block boundaries: an unaligned start (like a squashfs file
/// after the 96-byte superblock), several buffers long, and a short tail elsewhere.
fn extents() -> Vec<Extent> {
    vec![
        Extent {
            offset: 96,
            len: 2 * CHUNK as u64 + 5000,
        },
        Extent {
            offset: 2 * CHUNK as u64 + 9000,
            len: 777,
        },
    ]
}

fn expected(d: &[u8], extents: &[Extent]) -> Vec<u8> {
    extents
        .iter()
        .flat_map(|e| {
            d[e.offset as usize..(e.offset + e.len) as usize]
                .iter()
                .copied()
        })
        .collect()
}

#[test]
fn verity_copy_writes_the_ranges_in_order_with_their_sha256() {
    let (t, d) = tree(2 * CHUNK / BLOCK_SIZE + 8);
    let want = expected(&d, &extents());
    let mut out = Vec::new();
    let (n, sha) = copy(&d, Check::Verity(&t), &extents(), &mut out).unwrap();
    assert_eq!(out, want);
    assert_eq!(n, want.len() as u64);
    assert_eq!(sha, sha256(&want));
}

/// Records whether each write got aligned memory.
struct Aligned(Vec<bool>);

impl Write for Aligned {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.push((buf.as_ptr() as usize).is_multiple_of(ALIGN));
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn image_bytes_reach_the_writer_at_aligned_addresses() {
    // Whatever the range's offset in the payload, so a slot writer can use O_DIRECT.
    let (t, d) = tree(2 * CHUNK / BLOCK_SIZE + 8);
    let payload_len = d.len() as u64;
    for check in [Check::Verity(&t), Check::Payload { payload_len }] {
        let mut out = Aligned(Vec::new());
        copy(&d, check, &extents(), &mut out).unwrap();
        assert_eq!(out.0, vec![true; 4]);
    }
}

#[test]
fn plain_copy_writes_the_ranges_and_refuses_ranges_past_the_payload() {
    let d = data(2 * CHUNK / BLOCK_SIZE + 8);
    let want = expected(&d, &extents());
    let mut out = Vec::new();
    let payload_len = d.len() as u64;
    let (n, sha) = copy(&d, Check::Payload { payload_len }, &extents(), &mut out).unwrap();
    assert_eq!(
        (out.len() as u64, n, sha),
        (n, want.len() as u64, sha256(&want))
    );
    assert_eq!(out, want);

    // The signature covers only the payload: bytes after it (the CMS) are never copied.
    let past = [Extent {
        offset: 10,
        len: payload_len,
    }];
    let mut out = Vec::new();
    let err = copy(&d, Check::Payload { payload_len }, &past, &mut out).unwrap_err();
    assert!(matches!(err, StreamError::OutOfRange { .. }), "{err}");
    assert!(out.is_empty());
}

#[test]
fn tampered_block_stops_the_copy_with_only_verified_blocks_written() {
    let (t, mut d) = tree(2 * CHUNK / BLOCK_SIZE + 8);
    let good = d.clone();
    let bad_block = (CHUNK + 3 * BLOCK_SIZE) / BLOCK_SIZE;
    d[bad_block * BLOCK_SIZE + 17] ^= 0x40;
    let mut out = Vec::new();
    let err = copy(&d, Check::Verity(&t), &extents(), &mut out).unwrap_err();
    assert!(
        matches!(err, StreamError::Verity(VerityError::DataBlockMismatch(n)) if n == bad_block as u64),
        "{err}"
    );
    // What was written is a prefix of the authentic image that ends before the tampered
    // block: every written byte lies in a block that passed its check.
    let image = expected(&good, &extents());
    assert_eq!(out[..], image[..out.len()]);
    let first = extents()[0].offset as usize;
    assert!(first + out.len() <= bad_block * BLOCK_SIZE, "{}", out.len());
}

#[test]
fn a_block_outside_the_tree_is_refused() {
    let (t, d) = tree(4);
    let mut longer = d.clone();
    longer.extend_from_slice(&[0u8; BLOCK_SIZE]);
    let beyond = [Extent {
        offset: 0,
        len: 5 * BLOCK_SIZE as u64,
    }];
    let err = copy(&longer, Check::Verity(&t), &beyond, &mut Vec::new()).unwrap_err();
    assert!(
        matches!(err, StreamError::Verity(VerityError::BlockOutOfRange(4))),
        "{err}"
    );
}

#[test]
fn short_source_and_failing_writer_are_reported() {
    let (t, d) = tree(4);
    let cut = d[..3 * BLOCK_SIZE].to_vec();
    let all = [Extent {
        offset: 0,
        len: d.len() as u64,
    }];
    let err = copy(&cut, Check::Verity(&t), &all, &mut Vec::new()).unwrap_err();
    assert!(matches!(err, StreamError::Read(_)), "{err}");

    struct Full;
    impl Write for Full {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::other("slot full"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let err = copy(&d, Check::Verity(&t), &all, &mut Full).unwrap_err();
    assert!(
        matches!(&err, StreamError::Write(e) if e.to_string() == "slot full"),
        "{err}"
    );
}

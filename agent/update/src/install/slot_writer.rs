//! The writer an image is streamed into: the slot device, capped at the manifest size,
//! written around the page cache when it can be, with writeback started as it goes otherwise.
//!
//! The cap: the planner checked the manifest size against the slot, so the slot is never
//! overrun even if the payload file is longer than declared.
//!
//! Direct writes: a second handle opened with `O_DIRECT` takes every write whose memory, length
//! and slot offset are [`DIRECT_ALIGN`]-aligned (the bundle's verbatim-image copy hands out
//! such buffers, several at a time as one vectored write: one `pwritev`, one large device
//! write). The data goes from our buffer to the device, skipping the copy into the page
//! cache and the later writeback: on a 2-core device that CPU is what the two SHA-256 hashes
//! of an install need, and an image of GiBs does not evict everything else from the cache.
//! Where `O_DIRECT` is refused (tmpfs, some FUSE filesystems) or a direct write fails with
//! `EINVAL` (a stricter alignment), the writer falls back to buffered writes for good.
//!
//! Writeback of buffered writes: every [`WRITEBACK_STEP`] bytes the range just written is
//! handed to the kernel with `posix_fadvise(DONTNEED)`, which starts writing those dirty pages
//! without waiting, so the final `fsync` has little left to do. It is a hint: where it is not
//! supported it is skipped. The caller's `fsync` after the image stays the durability point
//! for both kinds of write (it also flushes the device cache the direct writes went to).

use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{posix_fadvise, OFlag, PosixFadviseAdvice};
use nix::sys::uio::pwritev;

/// Bytes between two writeback hints.
const WRITEBACK_STEP: u64 = 16 << 20;
/// Alignment of memory, length and offset for a direct write: the largest logical block size
/// of common devices, so it satisfies 512-byte devices too.
pub(super) const DIRECT_ALIGN: usize = 4096;

pub(super) struct SlotWriter<'a> {
    file: &'a File,
    /// The same slot opened with `O_DIRECT`, while direct writes work.
    direct: Option<File>,
    written: u64,
    cap: u64,
    /// Bytes already handed to writeback.
    hinted: u64,
    on_bytes: &'a mut dyn FnMut(u64),
}

/// Opens `device` for direct writes; `None` where the filesystem or device refuses.
pub(super) fn open_direct(device: &Path) -> Option<File> {
    OpenOptions::new()
        .write(true)
        .custom_flags(OFlag::O_DIRECT.bits())
        .open(device)
        .ok()
}

impl<'a> SlotWriter<'a> {
    /// A writer at the start of `file` refusing to go past `cap` bytes; `direct` is the same
    /// slot from [`open_direct`], if any.
    pub(super) fn new(
        file: &'a File,
        direct: Option<File>,
        cap: u64,
        on_bytes: &'a mut dyn FnMut(u64),
    ) -> Self {
        SlotWriter {
            file,
            direct,
            written: 0,
            cap,
            hinted: 0,
            on_bytes,
        }
    }

    /// Whether `buf` can go to the device directly at the current offset.
    fn direct_ok(&self, buf: &[u8]) -> bool {
        self.direct.is_some()
            && (buf.as_ptr() as usize).is_multiple_of(DIRECT_ALIGN)
            && buf.len().is_multiple_of(DIRECT_ALIGN)
            && self.written.is_multiple_of(DIRECT_ALIGN as u64)
    }

    fn write_at_end(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.direct_ok(buf) {
            if let Some(direct) = &self.direct {
                match direct.write_at(buf, self.written) {
                    Err(e) if e.raw_os_error() == Some(Errno::EINVAL as i32) => {
                        // Stricter alignment than ours, or no direct I/O after all.
                        self.direct = None;
                    }
                    other => return other,
                }
            }
        }
        let n = self.file.write_at(buf, self.written)?;
        if self.written + n as u64 - self.hinted >= WRITEBACK_STEP {
            self.start_writeback(self.written + n as u64);
        }
        Ok(n)
    }

    fn start_writeback(&mut self, end: u64) {
        let (Ok(offset), Ok(len)) = (self.hinted.try_into(), (end - self.hinted).try_into()) else {
            return;
        };
        // A hint only: the fsync after the image decides durability.
        let _ = posix_fadvise(
            self.file,
            offset,
            len,
            PosixFadviseAdvice::POSIX_FADV_DONTNEED,
        );
        self.hinted = end;
    }
}

impl SlotWriter<'_> {
    fn check_cap(&self, len: u64) -> io::Result<()> {
        if self.written + len > self.cap {
            return Err(io::Error::other(format!(
                "image is larger than the {} bytes the manifest declares",
                self.cap
            )));
        }
        Ok(())
    }

    /// Several aligned buffers in one direct `pwritev` (one large device write); `None` when
    /// they do not all qualify or direct writes turn out refused.
    fn write_direct_vectored(&mut self, bufs: &[IoSlice<'_>]) -> Option<io::Result<usize>> {
        if bufs.len() < 2 || !bufs.iter().all(|b| self.direct_ok(b)) {
            return None;
        }
        let direct = self.direct.as_ref()?;
        let offset = i64::try_from(self.written).ok()?;
        match pwritev(direct, bufs, offset) {
            Err(Errno::EINVAL) => {
                self.direct = None;
                None
            }
            Err(e) => Some(Err(e.into())),
            Ok(n) => Some(Ok(n)),
        }
    }

    fn advance(&mut self, n: usize) {
        self.written += n as u64;
        (self.on_bytes)(n as u64);
    }
}

impl Write for SlotWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.check_cap(buf.len() as u64)?;
        let n = self.write_at_end(buf)?;
        self.advance(n);
        Ok(n)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.check_cap(bufs.iter().map(|b| b.len() as u64).sum())?;
        if let Some(result) = self.write_direct_vectored(bufs) {
            let n = result?;
            self.advance(n);
            return Ok(n);
        }
        match bufs.iter().find(|b| !b.is_empty()) {
            Some(b) => self.write(b),
            None => Ok(0),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `len` bytes of `value` starting at an aligned address.
    fn aligned(len: usize, value: u8) -> (Vec<u8>, usize) {
        let buf = vec![value; len + DIRECT_ALIGN];
        let pad = (buf.as_ptr() as usize).wrapping_neg() % DIRECT_ALIGN;
        (buf, pad)
    }

    #[test]
    fn writes_up_to_the_cap_and_refuses_more() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("slot");
        let file = File::create(&path).unwrap();
        let mut seen = 0u64;
        let mut on_bytes = |n| seen += n;
        {
            let mut w = SlotWriter::new(&file, None, WRITEBACK_STEP + 10, &mut on_bytes);
            w.write_all(&vec![1u8; WRITEBACK_STEP as usize]).unwrap();
            w.write_all(&[2u8; 10]).unwrap();
            assert!(w.write_all(&[3u8]).is_err());
        }
        assert_eq!(seen, WRITEBACK_STEP + 10);
        let data = std::fs::read(&path).unwrap();
        assert_eq!(data.len() as u64, WRITEBACK_STEP + 10);
        assert_eq!(data[data.len() - 1], 2);
    }

    #[test]
    fn aligned_and_unaligned_writes_mix_into_the_same_bytes() {
        // Direct writes where possible (if this filesystem offers them), buffered otherwise:
        // the slot ends up with exactly the bytes in order either way.
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("slot");
        std::fs::write(&path, vec![0xffu8; 5 * DIRECT_ALIGN]).unwrap();
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        let mut on_bytes = |_| {};
        let (a, pa) = aligned(2 * DIRECT_ALIGN, 1);
        let (b, pb) = aligned(DIRECT_ALIGN, 2);
        {
            let direct = open_direct(&path);
            let mut w = SlotWriter::new(&file, direct, 5 * DIRECT_ALIGN as u64, &mut on_bytes);
            w.write_all(&a[pa..pa + 2 * DIRECT_ALIGN]).unwrap(); // aligned
            w.write_all(&b[pb + 1..pb + 11]).unwrap(); // unaligned memory and length
            w.write_all(&b[pb..pb + DIRECT_ALIGN]).unwrap(); // now an unaligned offset
            w.write_all(&[3u8; 6]).unwrap();
        }
        file.sync_all().unwrap();
        let mut want = vec![1u8; 2 * DIRECT_ALIGN];
        want.extend_from_slice(&[2u8; 10]);
        want.extend_from_slice(&vec![2u8; DIRECT_ALIGN]);
        want.extend_from_slice(&[3u8; 6]);
        let got = std::fs::read(&path).unwrap();
        assert_eq!(got[..want.len()], want[..]);
        assert!(got[want.len()..].iter().all(|&x| x == 0xff));
    }

    #[test]
    fn vectored_writes_keep_order_and_the_cap() {
        // Aligned buffers go out as one pwritev where direct writes work, others one by one:
        // the same bytes in order either way, and never past the cap.
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("slot");
        std::fs::write(&path, vec![0xffu8; 6 * DIRECT_ALIGN]).unwrap();
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        let mut seen = 0u64;
        let mut on_bytes = |n| seen += n;
        let (a, pa) = aligned(2 * DIRECT_ALIGN, 1);
        let (b, pb) = aligned(DIRECT_ALIGN, 2);
        let (c, pc) = aligned(DIRECT_ALIGN, 3);
        {
            let direct = open_direct(&path);
            let mut w = SlotWriter::new(&file, direct, 5 * DIRECT_ALIGN as u64, &mut on_bytes);
            let mut bufs = [
                IoSlice::new(&a[pa..pa + 2 * DIRECT_ALIGN]),
                IoSlice::new(&b[pb..pb + DIRECT_ALIGN]),
                IoSlice::new(&c[pc..pc + 100]), // unaligned length
            ];
            let mut left = &mut bufs[..];
            while !left.is_empty() {
                let n = w.write_vectored(left).unwrap();
                IoSlice::advance_slices(&mut left, n);
            }
            let too_much = [
                IoSlice::new(&c[pc..pc + DIRECT_ALIGN]),
                IoSlice::new(&c[pc..pc + DIRECT_ALIGN]),
            ];
            assert!(w.write_vectored(&too_much).is_err(), "past the cap");
        }
        assert_eq!(seen, 3 * DIRECT_ALIGN as u64 + 100);
        file.sync_all().unwrap();
        let mut want = vec![1u8; 2 * DIRECT_ALIGN];
        want.extend_from_slice(&vec![2u8; DIRECT_ALIGN]);
        want.extend_from_slice(&[3u8; 100]);
        let got = std::fs::read(&path).unwrap();
        assert_eq!(got[..want.len()], want[..]);
        assert!(got[want.len()..].iter().all(|&x| x == 0xff));
    }
}

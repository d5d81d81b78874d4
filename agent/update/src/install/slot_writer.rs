//! The writer an image is streamed into: the slot device, capped at the manifest size, with
//! writeback started as it goes.
//!
//! The cap: the planner checked the manifest size against the slot, so the slot is never
//! overrun even if the payload file is longer than declared.
//!
//! Writeback: every [`WRITEBACK_STEP`] bytes the range just written is handed to the kernel
//! with `posix_fadvise(DONTNEED)`, which starts writing those dirty pages to the device
//! without waiting. The disk then works while the rest of the image is read and hashed, and
//! the final `fsync` (still the only durability point) has little left to do. It is a hint:
//! where it is not supported it is skipped.

use std::fs::File;
use std::io::{self, Write};

use nix::fcntl::{posix_fadvise, PosixFadviseAdvice};

/// Bytes between two writeback hints.
const WRITEBACK_STEP: u64 = 16 << 20;

pub(super) struct SlotWriter<'a> {
    file: &'a mut File,
    written: u64,
    cap: u64,
    /// Bytes already handed to writeback.
    hinted: u64,
    on_bytes: &'a mut dyn FnMut(u64),
}

impl<'a> SlotWriter<'a> {
    /// A writer at the start of `file` refusing to go past `cap` bytes.
    pub(super) fn new(file: &'a mut File, cap: u64, on_bytes: &'a mut dyn FnMut(u64)) -> Self {
        SlotWriter {
            file,
            written: 0,
            cap,
            hinted: 0,
            on_bytes,
        }
    }

    fn start_writeback(&mut self) {
        let (Ok(offset), Ok(len)) = (
            self.hinted.try_into(),
            (self.written - self.hinted).try_into(),
        ) else {
            return;
        };
        // A hint only: the fsync after the image decides durability.
        let _ = posix_fadvise(
            &*self.file,
            offset,
            len,
            PosixFadviseAdvice::POSIX_FADV_DONTNEED,
        );
        self.hinted = self.written;
    }
}

impl Write for SlotWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.written + buf.len() as u64 > self.cap {
            return Err(io::Error::other(format!(
                "image is larger than the {} bytes the manifest declares",
                self.cap
            )));
        }
        let n = self.file.write(buf)?;
        self.written += n as u64;
        (self.on_bytes)(n as u64);
        if self.written - self.hinted >= WRITEBACK_STEP {
            self.start_writeback();
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_up_to_the_cap_and_refuses_more() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("slot");
        let mut file = File::create(&path).unwrap();
        let mut seen = 0u64;
        let mut on_bytes = |n| seen += n;
        {
            let mut w = SlotWriter::new(&mut file, WRITEBACK_STEP + 10, &mut on_bytes);
            w.write_all(&vec![1u8; WRITEBACK_STEP as usize]).unwrap();
            w.write_all(&[2u8; 10]).unwrap();
            assert!(w.write_all(&[3u8]).is_err());
        }
        assert_eq!(seen, WRITEBACK_STEP + 10);
        let data = std::fs::read(&path).unwrap();
        assert_eq!(data.len() as u64, WRITEBACK_STEP + 10);
        assert_eq!(data[data.len() - 1], 2);
    }
}

//! Reading files out of the bundle's squashfs in user space (`backhand`).
//!
//! Only ever opened over an authenticated source: the plain payload after
//! its digest matched the signature, or a [`crate::verity::VerityReader`].
//! Metadata tables are loaded by backhand; file data is streamed.

use std::io::{self, BufRead, Seek, Write};
use std::path::{Path, PathBuf};

use backhand::{BackhandError, DataSize, FilesystemReader, InnerNode};

use crate::extent::{raw_extents, Extent, FileLayout, Stored};
use crate::verity::{FailureLog, VerityError};

/// Why a file cannot be read from the payload.
#[derive(Debug, thiserror::Error)]
pub enum SquashfsError {
    #[error("payload is not a readable squashfs: {0}")]
    Open(String),
    #[error("file '{0}' not found in the bundle payload")]
    NotFound(String),
    #[error("'{0}' in the bundle payload is not a regular file")]
    NotAFile(String),
    #[error("file '{path}' exceeds the {max}-byte limit")]
    TooLarge { path: String, max: usize },
    #[error("reading '{path}' from the payload: {source}")]
    Read { path: String, source: io::Error },
    /// A block failed its dm-verity check while squashfs read it.
    #[error("payload tampered: {0}")]
    Verity(#[from] VerityError),
}

/// Surfaces a [`VerityError`] carried inside an `io::Error` as a typed error.
fn from_io(path: &str, e: io::Error) -> SquashfsError {
    let is_verity = e.get_ref().is_some_and(|inner| inner.is::<VerityError>());
    if is_verity {
        if let Some(Ok(v)) = e.into_inner().map(|inner| inner.downcast::<VerityError>()) {
            return SquashfsError::Verity(*v);
        }
        return SquashfsError::Open(format!("{path}: verity failure"));
    }
    SquashfsError::Read {
        path: path.to_string(),
        source: e,
    }
}

/// A squashfs filesystem over an authenticated payload.
pub struct Squashfs {
    fs: FilesystemReader<'static>,
    failures: Option<FailureLog>,
}

impl std::fmt::Debug for Squashfs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Squashfs")
            .field("block_size", &self.fs.block_size)
            .finish()
    }
}

impl Squashfs {
    /// Opens the squashfs starting at offset 0 of `reader`.
    pub fn open<R: BufRead + Seek + Send + 'static>(reader: R) -> Result<Self, SquashfsError> {
        Self::open_logged(reader, None)
    }

    /// Like [`Squashfs::open`]; a failure recorded in `failures` (from a
    /// [`crate::verity::VerityReader`]) is reported as [`SquashfsError::Verity`].
    pub fn open_logged<R: BufRead + Seek + Send + 'static>(
        reader: R,
        failures: Option<FailureLog>,
    ) -> Result<Self, SquashfsError> {
        let verity_failure = |log: &Option<FailureLog>| log.as_ref().and_then(FailureLog::take);
        let fs = FilesystemReader::from_reader(reader).map_err(|e| {
            if let Some(v) = verity_failure(&failures) {
                return SquashfsError::Verity(v);
            }
            match e {
                BackhandError::StdIo(io) => match from_io("/", io) {
                    SquashfsError::Read { source, .. } => SquashfsError::Open(source.to_string()),
                    other => other,
                },
                other => SquashfsError::Open(other.to_string()),
            }
        })?;
        Ok(Squashfs { fs, failures })
    }

    /// Opens the file at bundle-relative `name` for reading in large pieces.
    pub fn open_file(&self, name: &str) -> Result<FileReader<'_>, SquashfsError> {
        let path = absolute(name);
        let node = self
            .fs
            .files()
            .find(|n| n.fullpath == path)
            .ok_or_else(|| SquashfsError::NotFound(name.to_string()))?;
        let InnerNode::File(file) = &node.inner else {
            return Err(SquashfsError::NotAFile(name.to_string()));
        };
        Ok(FileReader {
            inner: self.fs.file(file).reader(),
            name: name.to_string(),
            failures: self.failures.as_ref(),
        })
    }

    /// The payload ranges holding the file at bundle-relative `name`, if squashfs stored all
    /// of it verbatim (see [`crate::extent`]); `None` means: read it with [`Self::open_file`].
    pub fn raw_extents(&self, name: &str) -> Result<Option<Vec<Extent>>, SquashfsError> {
        let path = absolute(name);
        let node = self
            .fs
            .files()
            .find(|n| n.fullpath == path)
            .ok_or_else(|| SquashfsError::NotFound(name.to_string()))?;
        let InnerNode::File(file) = &node.inner else {
            return Err(SquashfsError::NotAFile(name.to_string()));
        };
        let stored = |d: &DataSize| Stored {
            size: d.size(),
            raw: d.uncompressed(),
        };
        let blocks: Vec<Stored> = file.block_sizes().iter().map(stored).collect();
        // No fragment, or an index the table does not have (then the tail is missing and
        // raw_extents refuses).
        let fragment = self
            .fs
            .fragments
            .as_ref()
            .and_then(|f| f.get(file.frag_index()))
            .map(|f| (f.start, stored(&f.size), file.block_offset()));
        Ok(raw_extents(&FileLayout {
            file_len: file.file_len() as u64,
            block_size: self.fs.block_size,
            blocks_start: file.blocks_start(),
            blocks: &blocks,
            fragment,
        }))
    }

    /// Streams the file at bundle-relative `name` into `out`; returns its length.
    pub fn copy_to(&self, name: &str, out: &mut dyn Write) -> Result<u64, SquashfsError> {
        let mut file = self.open_file(name)?;
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0u64;
        loop {
            let n = file.fill(&mut buf)?;
            if n == 0 {
                return Ok(total);
            }
            out.write_all(&buf[..n]).map_err(|e| file.error(e))?;
            total += n as u64;
        }
    }

    /// Reads a small file (the manifest) fully, refusing more than `max` bytes.
    pub fn read_small(&self, name: &str, max: usize) -> Result<Vec<u8>, SquashfsError> {
        let mut buf = Vec::new();
        let mut limited = LimitedWriter {
            out: &mut buf,
            left: max,
        };
        match self.copy_to(name, &mut limited) {
            Err(SquashfsError::Read { source, .. })
                if source.kind() == io::ErrorKind::FileTooLarge =>
            {
                Err(SquashfsError::TooLarge {
                    path: name.to_string(),
                    max,
                })
            }
            other => other.map(|_| buf),
        }
    }
}

fn absolute(name: &str) -> PathBuf {
    Path::new("/").join(name)
}

/// Bounds an in-memory read by the caller's limit, not by the file's claim.
struct LimitedWriter<'a> {
    out: &'a mut Vec<u8>,
    left: usize,
}

impl Write for LimitedWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.len() > self.left {
            return Err(io::Error::new(
                io::ErrorKind::FileTooLarge,
                "file too large",
            ));
        }
        self.left -= buf.len();
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A file of the payload being read (see [`Squashfs::open_file`]).
pub struct FileReader<'a> {
    inner: backhand::SquashfsReadFile<'a, 'static>,
    name: String,
    failures: Option<&'a FailureLog>,
}

impl FileReader<'_> {
    /// Fills `buf` until it is full or the file ends; returns the bytes read (0 at the end).
    pub fn fill(&mut self, buf: &mut [u8]) -> Result<usize, SquashfsError> {
        let inner = &mut self.inner;
        crate::pipe::fill(&mut |b| io::Read::read(inner, b), buf).map_err(|e| self.error(e))
    }

    /// Turns an I/O error met while streaming this file (reading it, or writing it out) into
    /// the typed error: a recorded dm-verity failure wins.
    pub fn error(&self, e: io::Error) -> SquashfsError {
        match self.failures.and_then(FailureLog::take) {
            Some(v) => SquashfsError::Verity(v),
            None => from_io(&self.name, e),
        }
    }
}

//! The crate's errors: [`NameError`] for the naming rules, [`ArchiveError`] for refused
//! manifest-set archives, and [`enum@Error`] for everything the store and the apply can report.

use std::io;
use std::path::{Path, PathBuf};

use thiserror::Error;

/// A name that breaks the rules in [`crate::names`].
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NameError {
    /// Revisions are `[A-Za-z0-9._+-]{1,64}`, not starting with '.'.
    #[error("revision {0:?} is not 1-64 characters of [A-Za-z0-9._+-] not starting with '.'")]
    Revision(String),
    /// Slot names are `[A-Za-z0-9._-]{1,64}`, not starting with '.'.
    #[error("slot name {0:?} is not 1-64 characters of [A-Za-z0-9._-] not starting with '.'")]
    Slot(String),
    /// A manifest file name K3s would skip or could not turn into an AddOn name.
    #[error("manifest file name {name:?}: {reason}")]
    Manifest { name: String, reason: &'static str },
    /// The AddOn name belongs to one of K3s's packaged components.
    #[error("manifest file name {name:?}: AddOn name {addon:?} is reserved for a K3s packaged component")]
    Reserved { name: String, addon: String },
    /// An image file name K3s would not import or that is unsafe as a file name.
    #[error("image file name {name:?}: {reason}")]
    Image { name: String, reason: &'static str },
}

/// Why a manifest-set archive was refused. Every variant names the entry or file at fault.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ArchiveError {
    /// The tar stream itself is broken (truncated, bad checksum, ...).
    #[error("reading the tar archive: {0}")]
    Tar(#[source] io::Error),
    /// The entry is not where the layout allows (`manifests/<file>`, `images/<file>`).
    #[error("tar entry {entry:?}: {reason}")]
    Layout { entry: String, reason: &'static str },
    /// Only regular files and the two top-level directories are allowed.
    #[error("tar entry {entry:?}: {kind} entries are not allowed")]
    EntryType { entry: String, kind: String },
    /// Absolute paths and `..` components.
    #[error("tar entry {entry:?}: absolute paths and '..' are not allowed")]
    UnsafePath { entry: String },
    /// The file name breaks the naming rules.
    #[error("tar entry {entry:?}: {source}")]
    Name {
        entry: String,
        #[source]
        source: NameError,
    },
    /// The same path appears twice.
    #[error("tar entry {entry:?} appears twice")]
    Duplicate { entry: String },
    /// Two manifests whose names K3s turns into the same AddOn name.
    #[error("manifests {first:?} and {second:?} would both be the K3s AddOn {addon:?}")]
    DuplicateAddon {
        addon: String,
        first: String,
        second: String,
    },
    /// One manifest over the per-file limit.
    #[error("manifest {entry:?} is {size} bytes, over the limit of {limit}")]
    ManifestTooLarge {
        entry: String,
        size: u64,
        limit: u64,
    },
    /// All manifests together over the limit.
    #[error("manifests exceed {limit} bytes in total (at {entry:?})")]
    TotalTooLarge { entry: String, limit: u64 },
    /// More files than allowed.
    #[error("archive has more than {limit} files (at {entry:?})")]
    TooManyFiles { entry: String, limit: usize },
    /// Manifests must be UTF-8 text.
    #[error("manifest {file:?} is not UTF-8")]
    NotUtf8 { file: String },
    /// The manifest does not parse as YAML (or is too deep or expands too much).
    #[error("manifest {file:?}: YAML error at line {line}, column {column}: {message}")]
    Yaml {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    /// A document is not a Kubernetes object K3s could apply.
    #[error("manifest {file:?}, document {document}: {reason}")]
    Object {
        file: String,
        document: usize,
        reason: String,
    },
}

/// Everything the store and the apply can fail with.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    #[error(transparent)]
    Name(#[from] NameError),
    #[error("manifest set refused: {0}")]
    Archive(#[from] ArchiveError),
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The revision exists in the store with other content: a revision names one content forever.
    #[error("revision {0} is already in the store with different content")]
    Conflict(String),
    #[error("revision {0} is not in the store")]
    UnknownRevision(String),
    /// A file this crate wrote does not read back as expected (disk corruption or tampering).
    #[error("{path}: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    /// `rename(2)` cannot cross filesystems, and a copy would not be atomic.
    #[error("staging dir {staging} and manifests dir {manifests} are on different filesystems; the staging dir must be a sibling of the manifests dir")]
    CrossDevice {
        staging: PathBuf,
        manifests: PathBuf,
    },
    /// K3s walks the manifests dir recursively, so a staging dir inside it would be applied;
    /// and the manifests dir must not be inside the staging dir.
    #[error("staging dir {staging} and manifests dir {manifests} must not contain one another (K3s applies every file under the manifests dir)")]
    StagingOverlapsManifests {
        staging: PathBuf,
        manifests: PathBuf,
    },
    /// K3s needs AddOn names unique across the whole manifests dir.
    #[error("manifest {file:?} would be the K3s AddOn {addon:?}, which {other} already is")]
    AddonClash {
        addon: String,
        file: String,
        other: PathBuf,
    },
    /// Only tombstones may be removed; a live manifest is removed by applying a revision.
    #[error("{0:?} is not a tombstone of the applied set")]
    NotATombstone(String),
}

impl Error {
    pub(crate) fn io(op: &'static str, path: &Path, source: io::Error) -> Self {
        Error::Io {
            op,
            path: path.to_owned(),
            source,
        }
    }

    pub(crate) fn corrupt(path: &Path, reason: impl Into<String>) -> Self {
        Error::Corrupt {
            path: path.to_owned(),
            reason: reason.into(),
        }
    }
}

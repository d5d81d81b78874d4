//! Workload sets: the manifests a channel's devices should run, published as signed artifacts.
//!
//! `outpost-hub workloads set --channel NAME ARTIFACT|DIR` verifies the artifact (a RAUC bundle
//! whose `manifests` image is the set; see docs/workloads.md) against `[releases] keyring` —
//! the check a device makes — and checks the set inside with the device's own rules
//! (outpost-workloads: file names, YAML, no unsafe archive entries). A directory is first
//! packed into such a bundle with `rauc bundle` and the signing certificate and key given on
//! the command line; the key is read by rauc only and never copied.
//!
//! Files live beside releases (`data_dir/releases/<id>/bundle.raucb`, served by the same
//! `Range`-aware route); the id is the first 16 hex digits of the artifact's SHA-256.

use std::path::{Path, PathBuf};
use std::process::Command;

use outpost_proto::updates::{BUNDLE_FILE, RELEASES_PREFIX};
use outpost_proto::workloads::{WorkloadOffer, WorkloadQuery};
use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use crate::releases::{copy_atomically, file_sha256, valid_channel, ReleaseError};
use crate::store::{Store, StoreError};

/// The image class of the manifest set in an artifact.
pub const MANIFESTS_CLASS: &str = "manifests";
/// The file name of that image inside bundles the hub packs.
const MANIFESTS_TAR: &str = "manifests.tar";

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS workload_sets (
    id              TEXT    PRIMARY KEY,
    channel         TEXT    NOT NULL,
    compatible      TEXT    NOT NULL,
    revision        TEXT    NOT NULL,
    artifact_size   INTEGER NOT NULL,
    artifact_sha256 TEXT    NOT NULL,
    manifests       INTEGER NOT NULL,
    images          INTEGER NOT NULL,
    added_at_ms     INTEGER NOT NULL,
    seq             INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS workload_sets_by_channel ON workload_sets (channel, compatible, seq);
";

/// A published workload set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkloadSet {
    pub id: String,
    pub channel: String,
    pub compatible: String,
    pub revision: String,
    pub artifact_size: u64,
    pub artifact_sha256: String,
    /// Number of manifest files and of airgap image archives in the set.
    pub manifests: u64,
    pub images: u64,
    pub added_at_ms: i64,
}

impl WorkloadSet {
    pub fn offer(&self) -> WorkloadOffer {
        WorkloadOffer {
            id: self.id.clone(),
            channel: self.channel.clone(),
            compatible: self.compatible.clone(),
            revision: self.revision.clone(),
            artifact_path: format!("{RELEASES_PREFIX}{}/{BUNDLE_FILE}", self.id),
            artifact_size: self.artifact_size,
            artifact_sha256: self.artifact_sha256.clone(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    #[error(transparent)]
    Release(#[from] ReleaseError),
    #[error("{0}: the artifact has no '{MANIFESTS_CLASS}' image (a workload set is a bundle with [image.{MANIFESTS_CLASS}])")]
    NoManifestsImage(PathBuf),
    #[error("{path}: the manifest set inside is refused: {message}")]
    BadSet { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    Pack { path: PathBuf, message: String },
    #[error("a directory is packed and signed with `rauc bundle`: give --compatible, --revision, --cert and --key")]
    PackArgsMissing,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How to sign a directory into an artifact.
#[derive(Debug, Clone)]
pub struct PackOptions {
    pub compatible: String,
    pub revision: String,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The `rauc` program that signs.
    pub rauc: PathBuf,
}

/// Verifies and publishes `artifact` as the current set of `channel`.
pub fn set(
    store: &mut Store,
    releases_dir: &Path,
    keyring: Option<&Path>,
    artifact: &Path,
    channel: &str,
    now_ms: i64,
) -> Result<WorkloadSet, WorkloadError> {
    if !valid_channel(channel) {
        return Err(ReleaseError::BadChannel(channel.to_owned()).into());
    }
    let verified = crate::releases::verify(keyring, artifact)?;
    let info = verified.info().clone();
    let revision = info.version.clone().ok_or(ReleaseError::NoVersion)?;
    if !info.images.iter().any(|i| i.class == MANIFESTS_CLASS) {
        return Err(WorkloadError::NoManifestsImage(artifact.to_owned()));
    }
    let counts = check_set(&verified, &revision, artifact)?;
    let (size, sha256) = file_sha256(artifact)?;
    let id = sha256[..16].to_owned();
    let dir = releases_dir.join(&id);
    std::fs::create_dir_all(&dir).map_err(|source| ReleaseError::Io {
        path: dir.clone(),
        source,
    })?;
    copy_atomically(artifact, &dir.join(BUNDLE_FILE))?;
    let set = WorkloadSet {
        id,
        channel: channel.to_owned(),
        compatible: info.compatible,
        revision,
        artifact_size: size,
        artifact_sha256: sha256,
        manifests: counts.0,
        images: counts.1,
        added_at_ms: now_ms,
    };
    store.put_workload_set(&set)?;
    Ok(set)
}

/// Reads the set out of the verified artifact with the device's rules; (manifests, images).
fn check_set(
    verified: &outpost_bundle::VerifiedBundle,
    revision: &str,
    artifact: &Path,
) -> Result<(u64, u64), WorkloadError> {
    let bad = |message: String| WorkloadError::BadSet {
        path: artifact.to_owned(),
        message,
    };
    let scratch = tempfile::tempdir().map_err(|e| bad(format!("scratch directory: {e}")))?;
    let tar_path = scratch.path().join(MANIFESTS_TAR);
    let mut out = std::fs::File::create(&tar_path).map_err(|e| bad(e.to_string()))?;
    verified
        .extract_image(MANIFESTS_CLASS, &mut out)
        .map_err(|e| bad(e.to_string()))?;
    drop(out);
    let file = std::fs::File::open(&tar_path).map_err(|e| bad(e.to_string()))?;
    let dest = scratch.path().join("set");
    std::fs::create_dir(&dest).map_err(|e| bad(e.to_string()))?;
    let set = outpost_workloads::read_set(revision, file, &dest).map_err(|e| bad(e.to_string()))?;
    Ok((set.manifests.len() as u64, set.images.len() as u64))
}

/// Packs `dir` (`manifests/*.yaml|yml|json` and optional `images/*.tar*`, or only manifest
/// files at its top level) into a signed artifact at `out` with `rauc bundle`.
pub fn pack(dir: &Path, opts: &PackOptions, out: &Path) -> Result<(), WorkloadError> {
    let err = |path: &Path, message: String| WorkloadError::Pack {
        path: path.to_owned(),
        message,
    };
    let work = tempfile::tempdir().map_err(|e| err(dir, format!("scratch directory: {e}")))?;
    let input = work.path().join("input");
    std::fs::create_dir(&input).map_err(|e| err(&input, e.to_string()))?;
    let tar_path = input.join(MANIFESTS_TAR);
    write_tar(dir, &tar_path).map_err(|e| err(dir, e.to_string()))?;
    let manifest = format!(
        "[update]\ncompatible={}\nversion={}\n\n[bundle]\nformat=verity\n\n[image.{MANIFESTS_CLASS}]\nfilename={MANIFESTS_TAR}\n",
        opts.compatible, opts.revision
    );
    let manifest_path = input.join("manifest.raucm");
    std::fs::write(&manifest_path, manifest).map_err(|e| err(&manifest_path, e.to_string()))?;
    // `rauc bundle` refuses a verity bundle whose squashfs is 4096 bytes or less ("squashfs
    // size must be larger than 4096 bytes"), and a few small manifests compress below that.
    // Incompressible filler (not an image: devices never read it) keeps every set above it.
    let padding = input.join(PADDING_FILE);
    std::fs::write(&padding, filler(PADDING_LEN)).map_err(|e| err(&padding, e.to_string()))?;
    let _ = std::fs::remove_file(out);
    let output = Command::new(&opts.rauc)
        .arg("bundle")
        .arg(format!("--cert={}", opts.cert.display()))
        .arg(format!("--key={}", opts.key.display()))
        .arg(&input)
        .arg(out)
        .output()
        .map_err(|e| err(&opts.rauc, format!("cannot run: {e}")))?;
    if !output.status.success() {
        return Err(err(
            dir,
            format!(
                "rauc bundle failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        ));
    }
    Ok(())
}

/// The filler file in bundles the hub packs, and its length.
const PADDING_FILE: &str = ".padding";
const PADDING_LEN: usize = 8192;

/// `len` bytes that no compressor shrinks, the same every time (a packed directory gives the
/// same bundle content each time): xorshift64.
fn filler(len: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 56) as u8
        })
        .collect()
}

/// The archive layout devices accept; entry order is sorted so a directory packs the same
/// way every time.
fn write_tar(dir: &Path, tar_path: &Path) -> std::io::Result<()> {
    let file = std::fs::File::create(tar_path)?;
    let mut builder = tar::Builder::new(file);
    builder.mode(tar::HeaderMode::Deterministic);
    let structured = dir.join("manifests").is_dir();
    let groups: Vec<(PathBuf, &str)> = if structured {
        vec![
            (dir.join("manifests"), "manifests"),
            (dir.join("images"), "images"),
        ]
    } else {
        vec![(dir.to_owned(), "manifests")]
    };
    for (src, prefix) in groups {
        if !src.is_dir() {
            continue;
        }
        let mut names: Vec<PathBuf> = std::fs::read_dir(&src)?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()?;
        names.sort();
        for path in names {
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if name.starts_with('.') || !path.is_file() {
                continue;
            }
            builder.append_path_with_name(&path, format!("{prefix}/{name}"))?;
        }
    }
    builder.into_inner()?.sync_all()
}

impl Store {
    fn put_workload_set(&mut self, w: &WorkloadSet) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        let seq: i64 = tx.query_row(
            "SELECT coalesce(max(seq), 0) + 1 FROM workload_sets",
            [],
            |row| row.get(0),
        )?;
        // Setting the same artifact again makes it current again (a workload rollback).
        tx.execute(
            "INSERT INTO workload_sets (id, channel, compatible, revision, artifact_size,
                                        artifact_sha256, manifests, images, added_at_ms, seq)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (id) DO UPDATE SET channel = ?2, added_at_ms = ?9, seq = ?10",
            params![
                w.id,
                w.channel,
                w.compatible,
                w.revision,
                w.artifact_size as i64,
                w.artifact_sha256,
                w.manifests as i64,
                w.images as i64,
                w.added_at_ms,
                seq
            ],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The current set of the query's channel and compatible, unless the device runs it.
    pub fn workload_offer_for(&self, q: &WorkloadQuery) -> Result<Option<WorkloadSet>, StoreError> {
        let current = self
            .conn
            .query_row(
                &format!(
                    "{SELECT} WHERE channel = ?1 AND compatible = ?2 ORDER BY seq DESC LIMIT 1"
                ),
                params![q.channel, q.compatible],
                row_to_set,
            )
            .optional()?;
        Ok(current.filter(|w| w.revision != q.revision))
    }

    pub fn workload_sets(&self) -> Result<Vec<WorkloadSet>, StoreError> {
        let mut stmt = self.conn.prepare(&format!("{SELECT} ORDER BY seq"))?;
        let rows = stmt
            .query_map([], row_to_set)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Whether `id` is a published workload set (its artifact may be served).
    pub fn workload_set_exists(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT 1 FROM workload_sets WHERE id = ?1",
                params![id],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }
}

const SELECT: &str = "SELECT id, channel, compatible, revision, artifact_size, artifact_sha256,
                             manifests, images, added_at_ms FROM workload_sets";

fn row_to_set(r: &rusqlite::Row<'_>) -> rusqlite::Result<WorkloadSet> {
    Ok(WorkloadSet {
        id: r.get(0)?,
        channel: r.get(1)?,
        compatible: r.get(2)?,
        revision: r.get(3)?,
        artifact_size: r.get::<_, i64>(4)?.max(0) as u64,
        artifact_sha256: r.get(5)?,
        manifests: r.get::<_, i64>(6)?.max(0) as u64,
        images: r.get::<_, i64>(7)?.max(0) as u64,
        added_at_ms: r.get(8)?,
    })
}

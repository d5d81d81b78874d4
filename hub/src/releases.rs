//! Releases: bundles the hub hands to devices, by channel.
//!
//! `outpost-hub release add BUNDLE --channel NAME [--store DIR]` verifies the bundle against
//! `[releases] keyring` (the same check a device makes: a hub never offers what devices would
//! refuse), copies it (and a casync chunk store) under `data_dir/releases/<id>/`, and makes it
//! the channel's current release for its `compatible`. A device asking `GET /v1/updates` gets
//! the current release of its channel and compatible unless it already runs that version.
//!
//! The release id is the first 16 hex digits of the bundle's SHA-256: files under it never
//! change, so devices can resume downloads across hub restarts.

use std::path::{Path, PathBuf};

use outpost_proto::updates::{UpdateOffer, UpdateQuery, BUNDLE_FILE, RELEASES_PREFIX, STORE_DIR};
use rusqlite::{params, OptionalExtension};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::store::{Store, StoreError};

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS releases (
    id            TEXT    PRIMARY KEY,
    channel       TEXT    NOT NULL,
    compatible    TEXT    NOT NULL,
    version       TEXT    NOT NULL,
    bundle_size   INTEGER NOT NULL,
    bundle_sha256 TEXT    NOT NULL,
    has_store     INTEGER NOT NULL,
    added_at_ms   INTEGER NOT NULL,
    seq           INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS releases_by_channel ON releases (channel, compatible, seq);
";

/// A published release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Release {
    pub id: String,
    pub channel: String,
    pub compatible: String,
    pub version: String,
    pub bundle_size: u64,
    pub bundle_sha256: String,
    pub has_store: bool,
    pub added_at_ms: i64,
}

impl Release {
    pub fn offer(&self) -> UpdateOffer {
        UpdateOffer {
            release: self.id.clone(),
            channel: self.channel.clone(),
            compatible: self.compatible.clone(),
            version: self.version.clone(),
            bundle_path: format!("{RELEASES_PREFIX}{}/{BUNDLE_FILE}", self.id),
            bundle_size: self.bundle_size,
            bundle_sha256: self.bundle_sha256.clone(),
            store_path: self
                .has_store
                .then(|| format!("{RELEASES_PREFIX}{}/{STORE_DIR}/", self.id)),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    #[error("no [releases] keyring in hub.toml: the hub verifies bundles before it offers them")]
    NoKeyring,
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("keyring {path}: {message}")]
    Keyring { path: PathBuf, message: String },
    #[error("bundle {path} refused: {message}")]
    Bundle { path: PathBuf, message: String },
    #[error("the bundle has no version: devices could not tell it from what they run")]
    NoVersion,
    #[error("channel {0:?}: use 1-64 letters, digits, '.', '-' or '_'")]
    BadChannel(String),
    #[error("chunk store {path}: {message}")]
    BadStore { path: PathBuf, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ReleaseError + '_ {
    move |source| ReleaseError::Io {
        path: path.to_owned(),
        source,
    }
}

pub fn valid_channel(channel: &str) -> bool {
    (1..=64).contains(&channel.len())
        && channel
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

/// Verifies and publishes `bundle` (and `store`) in `releases_dir` and the database.
pub fn add(
    store: &mut Store,
    releases_dir: &Path,
    keyring: Option<&Path>,
    bundle: &Path,
    chunk_store: Option<&Path>,
    channel: &str,
    now_ms: i64,
) -> Result<Release, ReleaseError> {
    if !valid_channel(channel) {
        return Err(ReleaseError::BadChannel(channel.to_owned()));
    }
    let verified = verify(keyring, bundle)?;
    let info = verified.info().clone();
    let version = info.version.clone().ok_or(ReleaseError::NoVersion)?;
    let (size, sha256) = file_sha256(bundle)?;
    let id = sha256[..16].to_owned();
    let dir = releases_dir.join(&id);
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    copy_atomically(bundle, &dir.join(BUNDLE_FILE))?;
    if let Some(src) = chunk_store {
        copy_store(src, &dir.join(STORE_DIR))?;
    }
    let release = Release {
        id,
        channel: channel.to_owned(),
        compatible: info.compatible,
        version,
        bundle_size: size,
        bundle_sha256: sha256,
        has_store: chunk_store.is_some(),
        added_at_ms: now_ms,
    };
    store.put_release(&release)?;
    Ok(release)
}

/// Opens `bundle` and verifies it as a device would, against the keyring at `keyring`.
pub(crate) fn verify(
    keyring: Option<&Path>,
    bundle: &Path,
) -> Result<outpost_bundle::VerifiedBundle, ReleaseError> {
    let keyring_path = keyring.ok_or(ReleaseError::NoKeyring)?;
    let pem = std::fs::read(keyring_path).map_err(io(keyring_path))?;
    let keyring = outpost_bundle::Keyring::from_pem(&pem).map_err(|e| ReleaseError::Keyring {
        path: keyring_path.to_owned(),
        message: e.to_string(),
    })?;
    let opts = outpost_bundle::VerifyOptions::at(std::time::SystemTime::now());
    outpost_bundle::Bundle::open(bundle, &keyring, &opts).map_err(|e| ReleaseError::Bundle {
        path: bundle.to_owned(),
        message: e.to_string(),
    })
}

pub(crate) fn file_sha256(path: &Path) -> Result<(u64, String), ReleaseError> {
    let mut file = std::fs::File::open(path).map_err(io(path))?;
    let mut hasher = Sha256::new();
    let size = std::io::copy(&mut file, &mut hasher).map_err(io(path))?;
    Ok((size, hex::encode(hasher.finalize())))
}

pub(crate) fn copy_atomically(from: &Path, to: &Path) -> Result<(), ReleaseError> {
    let tmp = to.with_extension("tmp");
    std::fs::copy(from, &tmp).map_err(io(from))?;
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(io(&tmp))?;
    std::fs::rename(&tmp, to).map_err(io(to))
}

/// Copies a casync store (`<4 hex>/<64 hex>.cacnk` files only; anything else is refused, so
/// nothing but chunks is ever served from it).
fn copy_store(from: &Path, to: &Path) -> Result<(), ReleaseError> {
    let bad = |message: String| ReleaseError::BadStore {
        path: from.to_owned(),
        message,
    };
    let mut chunks = 0usize;
    for prefix in std::fs::read_dir(from).map_err(io(from))? {
        let prefix = prefix.map_err(io(from))?;
        let name = prefix.file_name().to_string_lossy().into_owned();
        if !is_hex(&name, 4) || !prefix.path().is_dir() {
            // casync leaves lock and temporary files in a store; they are not chunks.
            if name.starts_with('.') {
                continue;
            }
            return Err(bad(format!("unexpected entry {name:?}")));
        }
        let dest = to.join(&name);
        std::fs::create_dir_all(&dest).map_err(io(&dest))?;
        for chunk in std::fs::read_dir(prefix.path()).map_err(io(&prefix.path()))? {
            let chunk = chunk.map_err(io(&prefix.path()))?;
            let file = chunk.file_name().to_string_lossy().into_owned();
            let Some(hex) = file.strip_suffix(".cacnk") else {
                if file.starts_with('.') {
                    continue;
                }
                return Err(bad(format!("unexpected file {name}/{file}")));
            };
            if !is_hex(hex, 64) || !hex.starts_with(&name) {
                return Err(bad(format!("unexpected file {name}/{file}")));
            }
            std::fs::copy(chunk.path(), dest.join(&file)).map_err(io(&chunk.path()))?;
            chunks += 1;
        }
    }
    if chunks == 0 {
        return Err(bad("no chunks in it".into()));
    }
    Ok(())
}

pub fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl Store {
    fn put_release(&mut self, r: &Release) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        let seq: i64 = tx.query_row(
            "SELECT coalesce(max(seq), 0) + 1 FROM releases",
            [],
            |row| row.get(0),
        )?;
        // Adding the same bundle again makes it current again (e.g. to roll a channel back).
        tx.execute(
            "INSERT INTO releases (id, channel, compatible, version, bundle_size, bundle_sha256,
                                   has_store, added_at_ms, seq)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT (id) DO UPDATE SET channel = ?2, added_at_ms = ?8, seq = ?9,
                                            has_store = max(has_store, ?7)",
            params![
                r.id,
                r.channel,
                r.compatible,
                r.version,
                r.bundle_size as i64,
                r.bundle_sha256,
                r.has_store,
                r.added_at_ms,
                seq
            ],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The current release of `channel` for `compatible`, if it is not `version`.
    pub fn offer_for(&self, q: &UpdateQuery) -> Result<Option<Release>, StoreError> {
        let current = self
            .conn
            .query_row(
                "SELECT id, channel, compatible, version, bundle_size, bundle_sha256, has_store,
                        added_at_ms
                 FROM releases WHERE channel = ?1 AND compatible = ?2
                 ORDER BY seq DESC LIMIT 1",
                params![q.channel, q.compatible],
                row_to_release,
            )
            .optional()?;
        Ok(current.filter(|r| r.version != q.version))
    }

    pub fn releases(&self) -> Result<Vec<Release>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT id, channel, compatible, version, bundle_size, bundle_sha256, has_store,
                    added_at_ms
             FROM releases ORDER BY seq",
        )?;
        let rows = stmt
            .query_map([], row_to_release)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Whether `id` is a published release or workload set (its files may be served).
    pub fn serves_artifact(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self.release_exists(id)? || self.workload_set_exists(id)?)
    }

    /// Whether `id` is a published release.
    pub fn release_exists(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT 1 FROM releases WHERE id = ?1", params![id], |_| {
                Ok(())
            })
            .optional()?
            .is_some())
    }
}

fn row_to_release(r: &rusqlite::Row<'_>) -> rusqlite::Result<Release> {
    Ok(Release {
        id: r.get(0)?,
        channel: r.get(1)?,
        compatible: r.get(2)?,
        version: r.get(3)?,
        bundle_size: r.get::<_, i64>(4)?.max(0) as u64,
        bundle_sha256: r.get(5)?,
        has_store: r.get(6)?,
        added_at_ms: r.get(7)?,
    })
}

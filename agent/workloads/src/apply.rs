//! Applying a stored revision to K3s's auto-deploy directory, atomically.
//!
//! `<manifests_dir>/<subdir>/` is replaced as a whole: the complete new directory (manifests,
//! tombstones, the `.outpost-revision` marker) is built and fsynced in the staging dir, then
//! exchanged with the live one by one `renameat2(RENAME_EXCHANGE)`; the old one, now at the
//! staging path, is deleted afterwards. K3s polls the tree every 15 s, so replacing files one
//! by one would let it apply a mix of two revisions (a new Deployment with an old ConfigMap);
//! and a power cut in the middle would leave that mix in place. With the exchange, every
//! instant shows either the complete old or the complete new directory. The staging dir must
//! be outside the manifests dir (K3s walks it recursively) but on the same filesystem
//! (rename does not cross filesystems).
//!
//! Tombstones: K3s never deletes the objects of a deleted file, but applies an empty file as
//! an empty object set and prunes what the AddOn had created. A file the previous set had and
//! this one lacks is therefore replaced by a comment-only tombstone, kept (with its content
//! unchanged, so K3s does not re-apply it) until the daemon saw K3s apply it and calls
//! [`remove_tombstone`].

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{renameat2, RenameFlags, AT_FDCWD};
use serde::{Deserialize, Serialize};

use crate::error::{Error, NameError};
use crate::fsutil;
use crate::names;
use crate::set::ManifestSet;
use crate::store::Store;

/// The marker dotfile in the live directory (K3s skips dotfiles).
pub const MARKER: &str = ".outpost-revision";
/// Prefix of every tombstone's content.
pub const TOMBSTONE_PREFIX: &str = "# removed by outpost:";
/// Prefix of our files in the airgap images dir (other images there are not ours to touch).
pub const IMAGE_PREFIX: &str = "outpost-";

/// The directory the new set is built in, inside the staging dir.
const NEXT: &str = "next";
const MAX_TOMBSTONE: u64 = 4096;
const MAX_MARKER: u64 = 16 * 1024 * 1024;
/// How deep the clash check walks the manifests dir.
const MAX_WALK_DEPTH: usize = 16;

/// Where a revision is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// K3s's auto-deploy dir, usually `/var/lib/rancher/k3s/server/manifests`.
    pub manifests_dir: PathBuf,
    /// Our directory inside it (default `outpost`).
    pub subdir: String,
    /// Work dir on the same filesystem as `manifests_dir`, never inside it.
    pub staging_dir: PathBuf,
    /// K3s's airgap images dir (`/var/lib/rancher/k3s/agent/images`), if images are managed.
    pub images_dir: Option<PathBuf>,
}

/// A file that stands for a removed manifest until K3s has applied it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tombstone {
    /// The K3s AddOn (in kube-system) whose `spec.checksum` becomes `sha256` once applied.
    pub addon: String,
    pub file: String,
    pub sha256: String,
}

/// What the live directory holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedState {
    pub revision: String,
    /// Tombstones still present.
    pub tombstones: Vec<Tombstone>,
}

/// What [`apply`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApplyReport {
    pub revision: String,
    /// The revision the live directory held before, if any.
    pub previous: Option<String>,
    /// Nothing changed: manifests and images were already exactly this revision's.
    pub unchanged: bool,
    /// The tombstones the live directory now holds.
    pub tombstones: Vec<Tombstone>,
    /// Images were added or removed: K3s imports images only at start, so restart it.
    pub images_changed: bool,
    pub images_added: Vec<String>,
    pub images_removed: Vec<String>,
}

/// `.outpost-revision`: the revision and what the directory holds, written last.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Marker {
    revision: String,
    /// File name → sha256.
    manifests: BTreeMap<String, String>,
    tombstones: Vec<Tombstone>,
}

impl Target {
    /// A target with the defaults: subdir `outpost`, staging dir `.outpost-staging` beside
    /// `manifests_dir`, no images.
    pub fn new(manifests_dir: impl Into<PathBuf>) -> Target {
        let manifests_dir = manifests_dir.into();
        let staging_dir = fsutil::parent(&manifests_dir).join(".outpost-staging");
        Target {
            manifests_dir,
            subdir: "outpost".to_owned(),
            staging_dir,
            images_dir: None,
        }
    }

    /// The same target, also managing images in `images_dir`.
    pub fn with_images(mut self, images_dir: impl Into<PathBuf>) -> Target {
        self.images_dir = Some(images_dir.into());
        self
    }

    /// `<manifests_dir>/<subdir>`.
    pub fn live_dir(&self) -> PathBuf {
        self.manifests_dir.join(&self.subdir)
    }

    fn next_dir(&self) -> PathBuf {
        self.staging_dir.join(NEXT)
    }

    fn check_subdir(&self) -> Result<(), Error> {
        let ok = !self.subdir.is_empty()
            && self.subdir.len() <= 64
            && !self.subdir.starts_with('.')
            && self
                .subdir
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        ok.then_some(()).ok_or_else(|| {
            Error::Name(NameError::Manifest {
                name: self.subdir.clone(),
                reason: "the target subdir must be 1-64 of [A-Za-z0-9._-], not starting with '.'",
            })
        })
    }
}

/// Makes the target hold exactly `revision` (see the module docs). Callers serialize calls
/// per target.
pub fn apply(store: &Store, revision: &str, target: &Target) -> Result<ApplyReport, Error> {
    let set = store
        .get(revision)?
        .ok_or_else(|| Error::UnknownRevision(revision.to_owned()))?;
    prepare(target)?;
    check_addon_clashes(&set, target)?;

    let live = target.live_dir();
    let live_exists = is_dir(&live)?;
    let previous_marker = if live_exists {
        read_marker(&live)?
    } else {
        None
    };
    let tombstones = tombstones_for(&set, &live, live_exists)?;
    let marker = Marker {
        revision: revision.to_owned(),
        manifests: set
            .manifests
            .iter()
            .map(|m| (m.name.clone(), m.sha256.clone()))
            .collect(),
        tombstones: tombstones.iter().map(|(t, _)| t.clone()).collect(),
    };

    // Images first: they must be on disk before the manifests that use them go live.
    let (images_added, stale_images) = match &target.images_dir {
        Some(dir) => install_images(store, &set, dir)?,
        None => (Vec::new(), Vec::new()),
    };

    let manifests_same = live_exists && live_matches(&live, &set, &marker)?;
    if !manifests_same {
        build_next(store, &set, target, &tombstones, &marker)?;
        swap_in(target, live_exists)?;
    }
    store.record_applied(revision)?;

    let mut images_removed = Vec::new();
    if let Some(dir) = &target.images_dir {
        for name in stale_images {
            fsutil::remove_any(&dir.join(format!("{IMAGE_PREFIX}{name}")))?;
            images_removed.push(name);
        }
        if !images_removed.is_empty() {
            fsutil::sync_dir(dir)?;
        }
    }
    let images_changed = !images_added.is_empty() || !images_removed.is_empty();
    Ok(ApplyReport {
        revision: revision.to_owned(),
        previous: previous_marker.map(|m| m.revision),
        unchanged: manifests_same && !images_changed,
        tombstones: marker.tombstones,
        images_changed,
        images_added,
        images_removed,
    })
}

/// What the live directory holds, or `None` before the first apply.
pub fn applied(target: &Target) -> Result<Option<AppliedState>, Error> {
    let live = target.live_dir();
    if !is_dir(&live)? {
        return Ok(None);
    }
    let Some(marker) = read_marker(&live)? else {
        return Ok(None);
    };
    // A tombstone unlinked without its marker update (cut in between) is gone: skip it.
    let tombstones = marker
        .tombstones
        .into_iter()
        .filter(|t| live.join(&t.file).exists())
        .collect();
    Ok(Some(AppliedState {
        revision: marker.revision,
        tombstones,
    }))
}

/// Removes the tombstone of `addon` once K3s has applied it (its AddOn's `spec.checksum` is
/// the tombstone's sha256). An absent tombstone is fine for K3s, so an unlink suffices; the
/// marker is then rewritten atomically. Removing an absent tombstone is a no-op.
pub fn remove_tombstone(target: &Target, addon: &str) -> Result<(), Error> {
    let live = target.live_dir();
    let Some(mut marker) = (if is_dir(&live)? {
        read_marker(&live)?
    } else {
        None
    }) else {
        return Ok(());
    };
    if marker.manifests.keys().any(|f| addon_of(f) == addon) {
        return Err(Error::NotATombstone(addon.to_owned()));
    }
    let Some(pos) = marker.tombstones.iter().position(|t| t.addon == addon) else {
        return Ok(());
    };
    let tomb = marker.tombstones.remove(pos);
    fsutil::remove_any(&live.join(&tomb.file))?;
    fsutil::sync_dir(&live)?;
    fsutil::replace(&live.join(MARKER), &marker_bytes(&marker)?)
}

/// Creates the dirs, checks where the staging dir is, and removes a crash's leftover
/// `<staging>/next`. Nothing else in the staging dir is touched: a misconfigured staging dir
/// (say `/var/lib`) must never lose its contents.
fn prepare(target: &Target) -> Result<(), Error> {
    target.check_subdir()?;
    fsutil::create_dir_all(&target.manifests_dir)?;
    fsutil::create_dir_all(&target.staging_dir)?;
    let canon = |p: &Path| fs::canonicalize(p).map_err(|e| Error::io("resolve", p, e));
    let manifests = canon(&target.manifests_dir)?;
    let staging = canon(&target.staging_dir)?;
    if staging.starts_with(&manifests) || manifests.starts_with(&staging) {
        return Err(Error::StagingOverlapsManifests { staging, manifests });
    }
    fsutil::remove_any(&target.next_dir())?;
    if let Some(dir) = &target.images_dir {
        fsutil::create_dir_all(dir)?;
    }
    Ok(())
}

/// The tombstones the new directory holds: every non-dot file of the live directory the new
/// set lacks. Existing tombstones keep their content (and thus their checksum, so K3s does
/// not apply them again); removed manifests get a new one. A file whose AddOn the new set
/// still has (`web.yaml` → `web.v2.yaml`) needs none: the new file replaces the AddOn's set.
fn tombstones_for(
    set: &ManifestSet,
    live: &Path,
    live_exists: bool,
) -> Result<Vec<(Tombstone, Vec<u8>)>, Error> {
    if !live_exists {
        return Ok(Vec::new());
    }
    let new_files: BTreeSet<&str> = set.manifests.iter().map(|m| m.name.as_str()).collect();
    let new_addons: BTreeSet<&str> = set.manifests.iter().map(|m| m.addon()).collect();
    let mut out = Vec::new();
    for file in fsutil::list_dir(live)? {
        if file.starts_with('.') || new_files.contains(file.as_str()) {
            continue;
        }
        // Only names K3s would have applied can have objects to prune.
        let Ok(addon) = names::addon_name(&file) else {
            continue;
        };
        if new_addons.contains(addon) {
            continue;
        }
        let path = live.join(&file);
        let existing = match fs::metadata(&path) {
            Ok(m) if m.is_file() && m.len() <= MAX_TOMBSTONE => {
                fsutil::read_bounded(&path, MAX_TOMBSTONE)?
            }
            _ => Vec::new(),
        };
        let content = if existing.starts_with(TOMBSTONE_PREFIX.as_bytes()) {
            existing
        } else {
            format!(
                "{TOMBSTONE_PREFIX} revision {} no longer has this file\n",
                set.revision
            )
            .into_bytes()
        };
        let tomb = Tombstone {
            addon: addon.to_owned(),
            file,
            sha256: fsutil::sha256_hex(&content),
        };
        out.push((tomb, content));
    }
    Ok(out)
}

/// Whether the live directory already is exactly what we would build.
fn live_matches(live: &Path, set: &ManifestSet, marker: &Marker) -> Result<bool, Error> {
    if read_marker(live)?.as_ref() != Some(marker) {
        return Ok(false);
    }
    let mut expected: BTreeSet<String> = marker.manifests.keys().cloned().collect();
    expected.extend(marker.tombstones.iter().map(|t| t.file.clone()));
    expected.insert(MARKER.to_owned());
    let present: BTreeSet<String> = fsutil::list_dir(live)?.into_iter().collect();
    if present != expected {
        return Ok(false);
    }
    for m in &set.manifests {
        let (sha, _) = fsutil::hash_file(&live.join(&m.name))?;
        if sha != m.sha256 {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Builds `<staging>/next`: manifests (checked against the store's hashes), tombstones, and
/// the marker last; everything fsynced.
fn build_next(
    store: &Store,
    set: &ManifestSet,
    target: &Target,
    tombstones: &[(Tombstone, Vec<u8>)],
    marker: &Marker,
) -> Result<(), Error> {
    let next = target.next_dir();
    fsutil::create_dir(&next)?;
    for m in &set.manifests {
        let src = store.manifest_path(&set.revision, &m.name);
        fsutil::copy_verified(&src, &next.join(&m.name), &m.sha256)?;
    }
    for (t, content) in tombstones {
        fsutil::write_synced(&next.join(&t.file), content)?;
    }
    fsutil::write_synced(&next.join(MARKER), &marker_bytes(marker)?)?;
    fsutil::sync_dir(&next)?;
    fsutil::sync_dir(&target.staging_dir)
}

/// Puts `<staging>/next` in place of the live directory in one rename, makes that durable,
/// then deletes the old directory (now at `<staging>/next`).
fn swap_in(target: &Target, live_exists: bool) -> Result<(), Error> {
    let next = target.next_dir();
    let live = target.live_dir();
    let flags = if live_exists {
        RenameFlags::RENAME_EXCHANGE
    } else {
        RenameFlags::RENAME_NOREPLACE
    };
    renameat2(AT_FDCWD, &next, AT_FDCWD, &live, flags).map_err(|errno| match errno {
        Errno::EXDEV => Error::CrossDevice {
            staging: target.staging_dir.clone(),
            manifests: target.manifests_dir.clone(),
        },
        other => Error::io("rename", &live, io::Error::from(other)),
    })?;
    fsutil::sync_dir(&target.manifests_dir)?;
    fsutil::sync_dir(&target.staging_dir)?;
    if live_exists {
        fsutil::remove_any(&next)?;
    }
    Ok(())
}

/// Copies the set's images into `dir` as `outpost-<name>` (skipping identical ones) and
/// returns (added, no longer wanted). Deletion waits until the new manifests are live.
fn install_images(
    store: &Store,
    set: &ManifestSet,
    dir: &Path,
) -> Result<(Vec<String>, Vec<String>), Error> {
    let mut added = Vec::new();
    for image in &set.images {
        let dest = dir.join(format!("{IMAGE_PREFIX}{}", image.name));
        // Sizes differ → certainly different; equal sizes need the hash.
        let same = match fs::metadata(&dest) {
            Ok(m) if m.is_file() && m.len() == image.size => {
                fsutil::hash_file(&dest)?.0 == image.sha256
            }
            _ => false,
        };
        if same {
            continue;
        }
        // The temp name does not end in an image suffix, so K3s never imports a partial copy.
        let temp = fsutil::temp_beside(&dest);
        let src = store.image_path(&set.revision, &image.name);
        fsutil::copy_verified(&src, &temp, &image.sha256)?;
        fs::rename(&temp, &dest).map_err(|e| Error::io("rename", &dest, e))?;
        added.push(image.name.clone());
    }
    if !added.is_empty() {
        fsutil::sync_dir(dir)?;
    }
    let wanted: BTreeSet<&str> = set.images.iter().map(|i| i.name.as_str()).collect();
    let mut stale = Vec::new();
    for file in fsutil::list_dir(dir)? {
        if let Some(name) = file.strip_prefix(IMAGE_PREFIX) {
            if !wanted.contains(name) {
                stale.push(name.to_owned());
            }
        } else if file.starts_with(&format!(".{IMAGE_PREFIX}")) && file.ends_with(".outpost-tmp") {
            // A copy a crash interrupted.
            fsutil::remove_any(&dir.join(&file))?;
        }
    }
    Ok((added, stale))
}

fn read_marker(live: &Path) -> Result<Option<Marker>, Error> {
    let path = live.join(MARKER);
    if !path.exists() {
        return Ok(None);
    }
    let bytes = fsutil::read_bounded(&path, MAX_MARKER)?;
    // An unreadable marker means "unknown state": rebuild rather than fail forever.
    Ok(serde_json::from_slice(&bytes).ok())
}

fn marker_bytes(marker: &Marker) -> Result<Vec<u8>, Error> {
    serde_json::to_vec_pretty(marker).map_err(|e| Error::corrupt(Path::new(MARKER), e.to_string()))
}

fn addon_of(file: &str) -> &str {
    file.split('.').next().unwrap_or(file)
}

fn is_dir(path: &Path) -> Result<bool, Error> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => Ok(true),
        Ok(_) => Err(Error::corrupt(path, "exists but is not a directory")),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io("stat", path, e)),
    }
}

/// K3s needs AddOn names unique across the whole manifests dir: refuse a set whose AddOn is
/// also a file elsewhere in it (outside our subdir), which would make the two overwrite each
/// other's AddOn every 15 s.
fn check_addon_clashes(set: &ManifestSet, target: &Target) -> Result<(), Error> {
    let ours: BTreeMap<&str, &str> = set
        .manifests
        .iter()
        .map(|m| (m.addon(), m.name.as_str()))
        .collect();
    let live = target.live_dir();
    let mut stack = vec![(target.manifests_dir.clone(), 0usize)];
    while let Some((dir, depth)) = stack.pop() {
        for name in fsutil::list_dir(&dir)? {
            let path = dir.join(&name);
            if name.starts_with('.') || path == live {
                continue;
            }
            let meta = match fs::symlink_metadata(&path) {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io("stat", &path, e)),
            };
            if meta.is_dir() {
                if depth < MAX_WALK_DEPTH {
                    stack.push((path, depth + 1));
                }
                continue;
            }
            let k3s_applies = names::MANIFEST_SUFFIXES.iter().any(|s| name.ends_with(s))
                && !dir.join(format!("{name}.skip")).exists();
            if !k3s_applies {
                continue;
            }
            if let Some(file) = ours.get(addon_of(&name)) {
                return Err(Error::AddonClash {
                    addon: addon_of(&name).to_owned(),
                    file: (*file).to_owned(),
                    other: path,
                });
            }
        }
    }
    Ok(())
}

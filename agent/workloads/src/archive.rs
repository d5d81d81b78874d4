//! Reading a manifest-set archive (`manifests.tar`, the `manifests` image of a verified RAUC
//! bundle) into a directory, checking every rule on the way.
//!
//! Layout: `manifests/<file>` (`.yaml`, `.yml`, `.json`) and `images/<file>` (airgap image
//! archives), plus optional directory entries for `manifests/` and `images/` (and `./`, as
//! `tar -C dir .` writes; a leading `./` on any path is accepted for the same reason).
//! Nothing else: no links, devices, subdirectories, absolute paths, `..` or duplicates.
//! Manifests are read into memory (bounded) and parsed before they are written; images are
//! streamed to disk and hashed on the way.

use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::path::Path;

use tar::EntryType;

use crate::error::{ArchiveError, Error};
use crate::fsutil;
use crate::names;
use crate::objects;
use crate::set::{ImageFile, ManifestFile, ManifestSet};

/// Largest manifest file.
pub const MAX_MANIFEST: u64 = 4 * 1024 * 1024;
/// Largest sum of all manifest files.
pub const MAX_MANIFESTS_TOTAL: u64 = 32 * 1024 * 1024;
/// Most files (manifests and images) in one set.
pub const MAX_FILES: usize = 1000;

/// Sub-directories of an extracted set (in the store and in an archive).
pub const MANIFESTS_DIR: &str = "manifests";
pub const IMAGES_DIR: &str = "images";

/// Reads the archive from `reader`, writing `dest/manifests/*` and `dest/images/*` (both
/// created; `dest` must exist). Files are fsynced, and so are the two directories at the end.
/// On error, `dest` holds a partial extraction the caller must remove.
pub fn read_set(revision: &str, reader: impl Read, dest: &Path) -> Result<ManifestSet, Error> {
    read_set_limited(revision, reader, dest, Limits::DEFAULT)
}

/// The limits, apart so unit tests can use small ones.
#[derive(Debug, Clone, Copy)]
struct Limits {
    manifest: u64,
    total: u64,
    files: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

impl Limits {
    const DEFAULT: Limits = Limits {
        manifest: MAX_MANIFEST,
        total: MAX_MANIFESTS_TOTAL,
        files: MAX_FILES,
    };
}

fn read_set_limited(
    revision: &str,
    reader: impl Read,
    dest: &Path,
    limits: Limits,
) -> Result<ManifestSet, Error> {
    names::check_revision(revision)?;
    let manifests_dir = dest.join(MANIFESTS_DIR);
    let images_dir = dest.join(IMAGES_DIR);
    fsutil::create_dir(&manifests_dir)?;
    fsutil::create_dir(&images_dir)?;

    let mut archive = tar::Archive::new(reader);
    let mut state = State {
        limits,
        ..State::default()
    };
    for entry in archive.entries().map_err(ArchiveError::Tar)? {
        let mut entry = entry.map_err(ArchiveError::Tar)?;
        let path = String::from_utf8(entry.path_bytes().into_owned()).map_err(|e| {
            ArchiveError::Layout {
                entry: String::from_utf8_lossy(e.as_bytes()).into_owned(),
                reason: "path is not UTF-8",
            }
        })?;
        let kind = entry.header().entry_type();
        let expected = entry.size();
        match place(&path, kind)? {
            Place::Dir => {}
            Place::Manifest(name) => {
                let name = name.to_owned();
                state.admit(&path, &name, true)?;
                let file = read_manifest(&path, &name, expected, &mut entry, &mut state)?;
                fsutil::write_synced(&manifests_dir.join(&name), &file.1)?;
                state.manifests.push(file.0);
            }
            Place::Image(name) => {
                let name = name.to_owned();
                state.admit(&path, &name, false)?;
                let (sha256, size) = fsutil::copy_synced(&mut entry, &images_dir.join(&name))?;
                check_complete(&path, expected, size)?;
                state.images.push(ImageFile { name, sha256, size });
            }
        }
    }
    fsutil::sync_dir(&manifests_dir)?;
    fsutil::sync_dir(&images_dir)?;
    fsutil::sync_dir(dest)?;

    let mut set = ManifestSet {
        revision: revision.to_owned(),
        manifests: state.manifests,
        images: state.images,
    };
    set.manifests.sort_by(|a, b| a.name.cmp(&b.name));
    set.images.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(set)
}

/// A truncated stream ends an entry early without an error from the reader.
fn check_complete(entry: &str, expected: u64, got: u64) -> Result<(), ArchiveError> {
    if got == expected {
        return Ok(());
    }
    Err(ArchiveError::Tar(std::io::Error::new(
        std::io::ErrorKind::UnexpectedEof,
        format!("entry {entry:?} ends after {got} of {expected} bytes"),
    )))
}

#[derive(Default)]
struct State {
    limits: Limits,
    /// Every path seen (after `./` is stripped), for duplicates.
    seen: HashSet<String>,
    /// AddOn name → the manifest that took it.
    addons: BTreeMap<String, String>,
    files: usize,
    manifest_bytes: u64,
    manifests: Vec<ManifestFile>,
    images: Vec<ImageFile>,
}

impl State {
    /// Checks a file entry's name, uniqueness and the file count before anything is written.
    fn admit(&mut self, entry: &str, name: &str, manifest: bool) -> Result<(), ArchiveError> {
        let key = format!(
            "{}/{name}",
            if manifest { MANIFESTS_DIR } else { IMAGES_DIR }
        );
        if !self.seen.insert(key) {
            return Err(ArchiveError::Duplicate {
                entry: entry.to_owned(),
            });
        }
        self.files += 1;
        if self.files > self.limits.files {
            return Err(ArchiveError::TooManyFiles {
                entry: entry.to_owned(),
                limit: self.limits.files,
            });
        }
        let name_err = |source| ArchiveError::Name {
            entry: entry.to_owned(),
            source,
        };
        if !manifest {
            return names::check_image_name(name).map_err(name_err);
        }
        let addon = names::addon_name(name).map_err(name_err)?;
        if let Some(first) = self.addons.get(addon) {
            return Err(ArchiveError::DuplicateAddon {
                addon: addon.to_owned(),
                first: first.clone(),
                second: name.to_owned(),
            });
        }
        self.addons.insert(addon.to_owned(), name.to_owned());
        Ok(())
    }
}

/// Reads one manifest (bounded), parses it and returns its record and bytes.
fn read_manifest(
    entry_path: &str,
    name: &str,
    expected: u64,
    entry: &mut impl Read,
    state: &mut State,
) -> Result<(ManifestFile, Vec<u8>), ArchiveError> {
    let limits = state.limits;
    let too_large = |size| ArchiveError::ManifestTooLarge {
        entry: entry_path.to_owned(),
        size,
        limit: limits.manifest,
    };
    let total_too_large = || ArchiveError::TotalTooLarge {
        entry: entry_path.to_owned(),
        limit: limits.total,
    };
    // The header's size refuses early; the bounded read below does not trust it.
    if expected > limits.manifest {
        return Err(too_large(expected));
    }
    if state.manifest_bytes + expected > limits.total {
        return Err(total_too_large());
    }
    let mut bytes = Vec::new();
    // One byte past the limit tells "too large" whatever the header said.
    entry
        .take(limits.manifest + 1)
        .read_to_end(&mut bytes)
        .map_err(ArchiveError::Tar)?;
    let size = bytes.len() as u64;
    if size > limits.manifest {
        return Err(too_large(size));
    }
    check_complete(entry_path, expected, size)?;
    state.manifest_bytes += size;
    if state.manifest_bytes > limits.total {
        return Err(total_too_large());
    }
    let objects = objects::parse(name, &bytes)?;
    let file = ManifestFile {
        name: name.to_owned(),
        sha256: fsutil::sha256_hex(&bytes),
        size,
        objects,
    };
    Ok((file, bytes))
}

enum Place<'a> {
    Dir,
    Manifest(&'a str),
    Image(&'a str),
}

/// Where an entry goes, or why it may not exist.
fn place(path: &str, kind: EntryType) -> Result<Place<'_>, ArchiveError> {
    let layout = |reason| ArchiveError::Layout {
        entry: path.to_owned(),
        reason,
    };
    if path.starts_with('/') || path.split('/').any(|c| c == "..") {
        return Err(ArchiveError::UnsafePath {
            entry: path.to_owned(),
        });
    }
    let rel = path.strip_prefix("./").unwrap_or(path);
    match kind {
        EntryType::Directory => match rel.trim_end_matches('/') {
            "" | "." | MANIFESTS_DIR | IMAGES_DIR => Ok(Place::Dir),
            _ => Err(layout(
                "only the manifests/ and images/ directories are allowed",
            )),
        },
        EntryType::Regular => {
            let mut parts = rel.split('/');
            match (parts.next(), parts.next(), parts.next()) {
                (Some(MANIFESTS_DIR), Some(name), None) if !name.is_empty() => {
                    Ok(Place::Manifest(name))
                }
                (Some(IMAGES_DIR), Some(name), None) if !name.is_empty() => Ok(Place::Image(name)),
                _ => Err(layout(
                    "files must be manifests/<file> or images/<file>, one level deep",
                )),
            }
        }
        other => Err(ArchiveError::EntryType {
            entry: path.to_owned(),
            kind: entry_kind(other),
        }),
    }
}

fn entry_kind(kind: EntryType) -> String {
    match kind {
        EntryType::Symlink => "symlink".to_owned(),
        EntryType::Link => "hardlink".to_owned(),
        EntryType::Char => "character device".to_owned(),
        EntryType::Block => "block device".to_owned(),
        EntryType::Fifo => "fifo".to_owned(),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(entries: &[(&str, EntryType, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, kind, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            // set_path refuses '..'; write the raw name to test our own check.
            let name = &mut h.as_old_mut().name;
            name[..path.len()].copy_from_slice(path.as_bytes());
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    const CM: &[u8] = b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n";

    fn read(entries: &[(&str, EntryType, &[u8])]) -> Result<ManifestSet, Error> {
        let dir = tempfile::tempdir().unwrap();
        read_set("1", &tar_of(entries)[..], dir.path())
    }

    #[test]
    fn reads_layout() {
        let set = read(&[
            ("./", EntryType::Directory, b""),
            ("./manifests/", EntryType::Directory, b""),
            ("./manifests/b.yaml", EntryType::Regular, CM),
            (
                "manifests/a.json",
                EntryType::Regular,
                br#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"x"}}"#,
            ),
            ("images/app.tar", EntryType::Regular, b"image"),
        ])
        .unwrap();
        let names: Vec<_> = set.manifests.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["a.json", "b.yaml"]);
        assert_eq!(set.manifests[1].objects.len(), 1);
        assert_eq!(set.images[0].sha256, fsutil::sha256_hex(b"image"));
        assert_eq!(set.images[0].size, 5);
    }

    #[test]
    fn refuses() {
        let r = |e: &[(&str, EntryType, &[u8])]| read(e).unwrap_err().to_string();
        assert!(r(&[("x.yaml", EntryType::Regular, CM)]).contains("one level"));
        assert!(r(&[("manifests/d/x.yaml", EntryType::Regular, CM)]).contains("one level"));
        assert!(r(&[("other/", EntryType::Directory, b"")]).contains("directories"));
        assert!(r(&[("manifests/../x.yaml", EntryType::Regular, CM)]).contains(".."));
        assert!(r(&[("/manifests/x.yaml", EntryType::Regular, CM)]).contains("absolute"));
        assert!(r(&[("manifests/x.yaml", EntryType::Symlink, b"")]).contains("symlink"));
        assert!(r(&[("manifests/x.yaml", EntryType::Link, b"")]).contains("hardlink"));
        assert!(r(&[("manifests/x.yaml", EntryType::Fifo, b"")]).contains("fifo"));
        assert!(r(&[("images/x.zip", EntryType::Regular, b"")]).contains("image file name"));
        let dup = r(&[
            ("manifests/x.yaml", EntryType::Regular, CM),
            ("./manifests/x.yaml", EntryType::Regular, CM),
        ]);
        assert!(dup.contains("twice"), "{dup}");
    }

    #[test]
    fn limits() {
        let big = vec![b'#'; MAX_MANIFEST as usize + 1];
        let e = read(&[("manifests/x.yaml", EntryType::Regular, &big)]).unwrap_err();
        assert!(matches!(
            e,
            Error::Archive(ArchiveError::ManifestTooLarge { .. })
        ));
        let small = Limits {
            manifest: 100,
            total: 250,
            files: 3,
        };
        let read_small = |entries: &[(&str, EntryType, &[u8])]| {
            let dir = tempfile::tempdir().unwrap();
            read_set_limited("1", &tar_of(entries)[..], dir.path(), small)
        };
        let at_limit = vec![b'#'; 100];
        assert!(read_small(&[("manifests/x.yaml", EntryType::Regular, &at_limit)]).is_ok());
        let e = read_small(&[
            ("manifests/a.yaml", EntryType::Regular, &at_limit),
            ("manifests/b.yaml", EntryType::Regular, &at_limit),
            ("manifests/c.yaml", EntryType::Regular, &at_limit),
        ])
        .unwrap_err();
        assert!(matches!(
            e,
            Error::Archive(ArchiveError::TotalTooLarge { .. })
        ));
        let e = read_small(&[
            ("images/a.tar", EntryType::Regular, b""),
            ("images/b.tar", EntryType::Regular, b""),
            ("images/c.tar", EntryType::Regular, b""),
            ("images/d.tar", EntryType::Regular, b""),
        ])
        .unwrap_err();
        assert!(matches!(
            e,
            Error::Archive(ArchiveError::TooManyFiles { .. })
        ));
    }

    #[test]
    fn empty_set_and_truncation() {
        assert!(read(&[]).unwrap().manifests.is_empty());
        let data = tar_of(&[("manifests/x.yaml", EntryType::Regular, CM)]);
        let dir = tempfile::tempdir().unwrap();
        let e = read_set("1", &data[..540], dir.path()).unwrap_err();
        assert!(matches!(e, Error::Archive(ArchiveError::Tar(_))), "{e}");
    }
}

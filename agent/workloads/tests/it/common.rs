//! Fixtures: archives built with the tar crate, and a device-like directory layout.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use outpost_workloads::{ManifestSet, Store, Target};
use tar::{EntryType, Header};
use tempfile::TempDir;

/// A ConfigMap manifest with a marker value, so contents differ per call.
pub fn cm(name: &str, value: &str) -> Vec<u8> {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  v: \"{value}\"\n")
        .into_bytes()
}

pub fn deployment(name: &str) -> Vec<u8> {
    format!("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: apps\nspec: {{}}\n")
        .into_bytes()
}

/// A tar of regular files.
/// Imports a set of `files` as `revision`.
pub fn import(store: &Store, revision: &str, files: &[(&str, &[u8])]) -> ManifestSet {
    store.import(revision, &set_tar(files)[..]).unwrap()
}

pub fn set_tar(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut h = Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, path, *data).unwrap();
    }
    b.into_inner().unwrap()
}

/// A tar of one raw entry: the name is written as is (the tar crate's `set_path` would refuse
/// `..`), with an optional link target.
pub fn raw_tar(name: &str, kind: EntryType, data: &[u8], link: Option<&str>) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    if let Some(link) = link {
        h.set_link_name(link).unwrap();
    }
    h.set_cksum();
    b.append(&h, data).unwrap();
    b.into_inner().unwrap()
}

/// A device: `state/workloads` and K3s's `server/manifests` + `agent/images`.
pub struct Device {
    pub dir: TempDir,
}

impl Device {
    pub fn new() -> Device {
        Device {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn store_dir(&self) -> PathBuf {
        self.dir.path().join("state/workloads")
    }

    pub fn store(&self) -> Store {
        Store::open(&self.store_dir()).unwrap()
    }

    pub fn manifests_dir(&self) -> PathBuf {
        self.dir.path().join("k3s/server/manifests")
    }

    pub fn images_dir(&self) -> PathBuf {
        self.dir.path().join("k3s/agent/images")
    }

    pub fn target(&self) -> Target {
        Target::new(self.manifests_dir()).with_images(self.images_dir())
    }
}

/// Every file of a directory with its content (empty map if absent).
pub fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let Ok(rd) = fs::read_dir(dir) else {
        return BTreeMap::new();
    };
    rd.map(|e| {
        let e = e.unwrap();
        (
            e.file_name().into_string().unwrap(),
            fs::read(e.path()).unwrap(),
        )
    })
    .collect()
}

/// Entry names of a directory, sorted (empty if absent).
pub fn names(dir: &Path) -> Vec<String> {
    let Ok(rd) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<String> = rd
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

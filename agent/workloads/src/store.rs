//! The revision store: every imported manifest set, extracted and checked, under
//! `<state>/workloads/`, and which revision belongs to which boot slot.
//!
//! ```text
//! revisions/<rev>/manifests/*   the set's manifests, as imported
//! revisions/<rev>/images/*      its airgap images
//! revisions/<rev>/set.json      ManifestSet + import order
//! bindings.json                 {"A": "<rev>", "B": "<rev>"} (or {"default": ...})
//! applied.json                  {"revision": "<rev>"}: last revision apply swapped in
//! tmp/                          imports in progress and prunes; emptied by the next one
//! ```
//!
//! A revision appears by one `rename(2)` of a complete, fsynced directory, and disappears by
//! one rename into `tmp/`, so after a power cut every `revisions/<rev>` is complete. One
//! process (the daemon) writes the store; others may read it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::archive::{self, IMAGES_DIR, MANIFESTS_DIR};
use crate::error::Error;
use crate::fsutil;
use crate::names;
use crate::set::ManifestSet;

const SET_JSON: &str = "set.json";
const BINDINGS_JSON: &str = "bindings.json";
const APPLIED_JSON: &str = "applied.json";
/// Bound for the store's own JSON files (a set.json of 1000 files with objects fits easily).
const MAX_JSON: u64 = 64 * 1024 * 1024;

/// The store over one directory; see the module docs.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

/// A revision in the store and when it was imported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RevisionEntry {
    pub revision: String,
    /// Import order: 1 for the first import, increasing. Used instead of the clock, which on
    /// a device without an RTC may jump backwards.
    pub seq: u64,
    /// Wall clock at import, informational.
    pub imported_unix: u64,
}

/// `set.json`: the set plus its place in the import order.
#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    seq: u64,
    imported_unix: u64,
    #[serde(flatten)]
    set: ManifestSet,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Applied {
    revision: String,
}

impl Store {
    /// Opens (creating if needed) the store at `dir`, e.g. `<state>/workloads`.
    pub fn open(dir: &Path) -> Result<Store, Error> {
        let store = Store {
            root: dir.to_owned(),
        };
        fsutil::create_dir_all(&store.revisions_dir())?;
        fsutil::create_dir_all(&store.tmp_dir())?;
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `revisions/<rev>`; the revision is not checked for existence.
    pub fn revision_dir(&self, revision: &str) -> PathBuf {
        self.revisions_dir().join(revision)
    }

    pub(crate) fn manifest_path(&self, revision: &str, name: &str) -> PathBuf {
        self.revision_dir(revision).join(MANIFESTS_DIR).join(name)
    }

    pub(crate) fn image_path(&self, revision: &str, name: &str) -> PathBuf {
        self.revision_dir(revision).join(IMAGES_DIR).join(name)
    }

    fn revisions_dir(&self) -> PathBuf {
        self.root.join("revisions")
    }

    fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Imports the (already verified) manifest-set tar of `revision`. Importing a revision
    /// that is present with the same content returns it unchanged; different content under
    /// the same revision is refused ([`Error::Conflict`]).
    pub fn import(&self, revision: &str, reader: impl Read) -> Result<ManifestSet, Error> {
        names::check_revision(revision)?;
        self.clean_tmp()?;
        let tmp = self.tmp_dir().join(format!("import-{revision}"));
        fsutil::create_dir(&tmp)?;
        let set = match archive::read_set(revision, reader, &tmp) {
            Ok(set) => set,
            Err(e) => {
                // Best effort: the next import empties tmp/ anyway.
                let _ = fsutil::remove_any(&tmp);
                return Err(e);
            }
        };
        if let Some(existing) = self.get(revision)? {
            fsutil::remove_any(&tmp)?;
            return if existing.same_content(&set) {
                Ok(existing)
            } else {
                Err(Error::Conflict(revision.to_owned()))
            };
        }
        let seq = self.revisions()?.iter().map(|r| r.seq).max().unwrap_or(0) + 1;
        let stored = Stored {
            seq,
            imported_unix: now_unix(),
            set,
        };
        let json = serde_json::to_vec_pretty(&stored)
            .map_err(|e| Error::corrupt(&tmp, format!("serializing set.json: {e}")))?;
        fsutil::write_synced(&tmp.join(SET_JSON), &json)?;
        fsutil::sync_dir(&tmp)?;
        let dest = self.revision_dir(revision);
        fs::rename(&tmp, &dest).map_err(|e| Error::io("rename", &dest, e))?;
        fsutil::sync_dir(&self.revisions_dir())?;
        fsutil::sync_dir(&self.tmp_dir())?;
        Ok(stored.set)
    }

    /// The set of `revision`, if the store has it.
    pub fn get(&self, revision: &str) -> Result<Option<ManifestSet>, Error> {
        names::check_revision(revision)?;
        Ok(self.stored(revision)?.map(|s| s.set))
    }

    fn stored(&self, revision: &str) -> Result<Option<Stored>, Error> {
        let path = self.revision_dir(revision).join(SET_JSON);
        if !path.exists() {
            return Ok(None);
        }
        let stored: Stored = read_json(&path)?;
        if stored.set.revision != revision {
            return Err(Error::corrupt(
                &path,
                format!("holds revision {}", stored.set.revision),
            ));
        }
        // The names become paths in the apply: never trust them without the rules.
        let names_ok = stored
            .set
            .manifests
            .iter()
            .all(|m| names::addon_name(&m.name).is_ok())
            && stored
                .set
                .images
                .iter()
                .all(|i| names::check_image_name(&i.name).is_ok());
        if !names_ok {
            return Err(Error::corrupt(&path, "holds a file name the rules refuse"));
        }
        Ok(Some(stored))
    }

    /// All revisions, oldest import first.
    pub fn revisions(&self) -> Result<Vec<RevisionEntry>, Error> {
        let mut out = Vec::new();
        for name in fsutil::list_dir(&self.revisions_dir())? {
            // Anything else in revisions/ was not put there by us; leave it alone.
            if names::check_revision(&name).is_err() {
                continue;
            }
            if let Some(s) = self.stored(&name)? {
                out.push(RevisionEntry {
                    revision: name,
                    seq: s.seq,
                    imported_unix: s.imported_unix,
                });
            }
        }
        out.sort_by_key(|r| r.seq);
        Ok(out)
    }

    /// The revision bound to boot slot `slot`.
    pub fn binding(&self, slot: &str) -> Result<Option<String>, Error> {
        names::check_slot(slot)?;
        Ok(self.bindings()?.remove(slot))
    }

    /// Every slot binding.
    pub fn bindings(&self) -> Result<BTreeMap<String, String>, Error> {
        let path = self.root.join(BINDINGS_JSON);
        if !path.exists() {
            return Ok(BTreeMap::new());
        }
        read_json(&path)
    }

    /// Binds `revision` (which must be in the store) to boot slot `slot`, atomically.
    pub fn bind(&self, slot: &str, revision: &str) -> Result<(), Error> {
        names::check_slot(slot)?;
        if self.get(revision)?.is_none() {
            return Err(Error::UnknownRevision(revision.to_owned()));
        }
        let mut all = self.bindings()?;
        all.insert(slot.to_owned(), revision.to_owned());
        write_json(&self.root.join(BINDINGS_JSON), &all)
    }

    /// The revision the last successful [`crate::apply::apply`] swapped in.
    pub fn applied(&self) -> Result<Option<String>, Error> {
        let path = self.root.join(APPLIED_JSON);
        if !path.exists() {
            return Ok(None);
        }
        let a: Applied = read_json(&path)?;
        Ok(Some(a.revision))
    }

    pub(crate) fn record_applied(&self, revision: &str) -> Result<(), Error> {
        if self.applied()?.as_deref() == Some(revision) {
            return Ok(());
        }
        let a = Applied {
            revision: revision.to_owned(),
        };
        write_json(&self.root.join(APPLIED_JSON), &a)
    }

    /// Removes the oldest revisions beyond the newest `keep`, never one bound to a slot or
    /// currently applied. Returns the removed revisions, oldest first.
    pub fn prune(&self, keep: usize) -> Result<Vec<String>, Error> {
        self.clean_tmp()?;
        let mut protected: BTreeSet<String> = self.bindings()?.into_values().collect();
        protected.extend(self.applied()?);
        let all = self.revisions()?;
        let excess = all.len().saturating_sub(keep);
        let mut removed = Vec::new();
        for entry in all.into_iter().take(excess) {
            if protected.contains(&entry.revision) {
                continue;
            }
            // Rename first: a cut mid-delete leaves the half-deleted tree in tmp/, never a
            // revision that looks present but lacks files.
            let from = self.revision_dir(&entry.revision);
            let to = self.tmp_dir().join(format!("prune-{}", entry.revision));
            fs::rename(&from, &to).map_err(|e| Error::io("rename", &from, e))?;
            fsutil::sync_dir(&self.revisions_dir())?;
            fsutil::remove_any(&to)?;
            removed.push(entry.revision);
        }
        Ok(removed)
    }

    /// Empties tmp/ of what a crash left (one writer: nothing in it is in use).
    fn clean_tmp(&self) -> Result<(), Error> {
        let tmp = self.tmp_dir();
        for name in fsutil::list_dir(&tmp)? {
            fsutil::remove_any(&tmp.join(name))?;
        }
        Ok(())
    }
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, Error> {
    let bytes = fsutil::read_bounded(path, MAX_JSON)?;
    serde_json::from_slice(&bytes).map_err(|e| Error::corrupt(path, e.to_string()))
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), Error> {
    let mut bytes =
        serde_json::to_vec_pretty(value).map_err(|e| Error::corrupt(path, e.to_string()))?;
    bytes.push(b'\n');
    fsutil::replace(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_with(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            b.append_data(&mut h, path, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    const CM: &[u8] = b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n";

    #[test]
    fn import_is_idempotent_and_conflicts() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let t = tar_with(&[("manifests/a.yaml", CM)]);
        let set = store.import("r1", &t[..]).unwrap();
        assert_eq!(store.import("r1", &t[..]).unwrap(), set);
        let other = tar_with(&[("manifests/b.yaml", CM)]);
        assert!(matches!(
            store.import("r1", &other[..]),
            Err(Error::Conflict(_))
        ));
        assert_eq!(store.get("r1").unwrap().unwrap(), set);
        assert!(store.get("r2").unwrap().is_none());
        assert!(store.import("../x", &t[..]).is_err());
        let bad = tar_with(&[("manifests/coredns.yaml", CM)]);
        assert!(store.import("r3", &bad[..]).is_err());
        assert!(store.get("r3").unwrap().is_none());
        assert!(fsutil::list_dir(&dir.path().join("tmp"))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn bindings_and_prune() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for i in 1..=5 {
            let t = tar_with(&[(&format!("manifests/m{i}.yaml"), CM)]);
            store.import(&format!("r{i}"), &t[..]).unwrap();
        }
        assert!(matches!(
            store.bind("A", "nope"),
            Err(Error::UnknownRevision(_))
        ));
        store.bind("A", "r1").unwrap();
        store.bind("B", "r3").unwrap();
        store.record_applied("r2").unwrap();
        assert_eq!(store.binding("A").unwrap().as_deref(), Some("r1"));
        assert_eq!(store.binding("default").unwrap(), None);
        assert_eq!(store.prune(2).unwrap(), Vec::<String>::new());
        store.bind("A", "r5").unwrap();
        assert_eq!(store.prune(2).unwrap(), vec!["r1".to_owned()]);
        let left: Vec<_> = store
            .revisions()
            .unwrap()
            .into_iter()
            .map(|r| r.revision)
            .collect();
        assert_eq!(left, ["r2", "r3", "r4", "r5"]);
        // Reopening sees the same state.
        let again = Store::open(dir.path()).unwrap();
        assert_eq!(again.bindings().unwrap().len(), 2);
        assert_eq!(again.applied().unwrap().as_deref(), Some("r2"));
    }
}

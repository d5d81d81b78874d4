//! What [`super::ApiServer`] answers: an in-memory model the test mutates, optionally merged
//! with a manifests dir read on every request (for a fake K3s process: the agent writes
//! manifests, the "cluster" follows them). A test stand-in, not a Kubernetes: nothing is
//! scheduled, nothing runs.
//!
//! Manifests mode, like K3s's deploy controller over `server/manifests` (`pkg/deploy`): the
//! dir is walked recursively; every file ending in `.yaml`, `.yml` or `.json` whose name does
//! not start with '.' is an AddOn named after its basename up to the first '.'
//! (`outpost/web.yaml` → `web`), with `spec.checksum` the hex SHA-256 of the file's content
//! and `spec.source` its path; every Deployment, DaemonSet or StatefulSet in its YAML
//! documents is reported rolled out, unless its pod template carries the annotation
//! `outpost.io/test-never-ready: "true"`. A file with a `<name>.skip` sibling is skipped, as
//! K3s does. Two files with the same AddOn name: the one walked last wins (K3s forbids it).
//!
//! A deleted AddOn stays deleted while its file is unchanged: K3s re-creates an AddOn only
//! when it re-applies the file, which it does when the file's modification time changes (or
//! when K3s restarts: a new model). Its objects are not touched (the model's workloads come
//! from the files).
//! Entries set on the model win over the dir's.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use yaml_rust2::{Yaml, YamlLoader};

use crate::api::{WorkloadKind, WorkloadRef};

/// The annotation (on the pod template) that keeps a manifests-mode workload not ready.
pub const NEVER_READY_ANNOTATION: &str = "outpost.io/test-never-ready";

/// A node of the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeNode {
    pub name: String,
    pub ready: bool,
    pub reason: String,
    pub message: String,
}

/// An AddOn of the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeAddon {
    pub source: String,
    pub checksum: String,
}

/// Shared, cheap to clone; every setter takes effect on the next request.
#[derive(Clone)]
pub struct Model(Arc<Mutex<State>>);

struct State {
    ready: bool,
    nodes: Vec<FakeNode>,
    workloads: BTreeMap<WorkloadRef, Value>,
    addons: BTreeMap<String, FakeAddon>,
    deleted_addons: Vec<String>,
    /// Manifests mode: AddOn name → the file as it was when its AddOn was deleted.
    tombstoned: BTreeMap<String, FileStamp>,
    manifests: Option<PathBuf>,
    requests: Vec<String>,
}

impl Default for Model {
    /// Ready, one ready node `outpost`, nothing else.
    fn default() -> Self {
        Self(Arc::new(Mutex::new(State {
            ready: true,
            nodes: vec![FakeNode {
                name: "outpost".into(),
                ready: true,
                reason: "KubeletReady".into(),
                message: "kubelet is posting ready status".into(),
            }],
            workloads: BTreeMap::new(),
            addons: BTreeMap::new(),
            deleted_addons: Vec::new(),
            tombstoned: BTreeMap::new(),
            manifests: None,
            requests: Vec::new(),
        })))
    }
}

impl Model {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What `/readyz` answers: 200 `ok`, or 500 with the failing checks.
    pub fn set_ready(&self, ready: bool) {
        self.lock().ready = ready;
    }

    /// Sets (or adds) a node and its `Ready` condition.
    pub fn set_node(&self, name: &str, ready: bool, reason: &str, message: &str) {
        let mut s = self.lock();
        let node = FakeNode {
            name: name.into(),
            ready,
            reason: reason.into(),
            message: message.into(),
        };
        match s.nodes.iter_mut().find(|n| n.name == name) {
            Some(n) => *n = node,
            None => s.nodes.push(node),
        }
    }

    /// The object answered for `w` (a full object as the API returns it; see [`workload_json`]).
    pub fn set_workload(&self, w: &WorkloadRef, object: Value) {
        self.lock().workloads.insert(w.clone(), object);
    }

    pub fn remove_workload(&self, w: &WorkloadRef) {
        self.lock().workloads.remove(w);
    }

    pub fn set_addon(&self, name: &str, source: &str, checksum: &str) {
        self.lock().addons.insert(
            name.into(),
            FakeAddon {
                source: source.into(),
                checksum: checksum.into(),
            },
        );
    }

    /// Answer from this manifests dir too (see the module docs); `None` stops it.
    pub fn set_manifests_dir(&self, dir: Option<PathBuf>) {
        self.lock().manifests = dir;
    }

    /// `METHOD path` of every request so far.
    pub fn requests(&self) -> Vec<String> {
        self.lock().requests.clone()
    }

    /// `METHOD path` of the requests after the first `from`.
    pub fn requests_from(&self, from: usize) -> Vec<String> {
        self.lock()
            .requests
            .get(from..)
            .unwrap_or_default()
            .to_vec()
    }

    /// Names of the AddOns deleted so far.
    pub fn deleted_addons(&self) -> Vec<String> {
        self.lock().deleted_addons.clone()
    }

    pub(super) fn log(&self, line: String) {
        self.lock().requests.push(line);
    }

    pub(super) fn ready(&self) -> bool {
        self.lock().ready
    }

    pub(super) fn nodes(&self) -> Vec<FakeNode> {
        self.lock().nodes.clone()
    }

    pub(super) fn workload(&self, w: &WorkloadRef) -> Option<Value> {
        let (explicit, dir) = {
            let s = self.lock();
            (s.workloads.get(w).cloned(), s.manifests.clone())
        };
        explicit.or_else(|| scan(&dir?).workloads.remove(w))
    }

    pub(super) fn addon(&self, name: &str) -> Option<FakeAddon> {
        let (explicit, dir) = {
            let s = self.lock();
            (s.addons.get(name).cloned(), s.manifests.clone())
        };
        if explicit.is_some() {
            return explicit;
        }
        let (addon, stamp) = scan(&dir?).addons.remove(name)?;
        let mut s = self.lock();
        match s.tombstoned.get(name) {
            // Deleted, and K3s has not re-applied the file since.
            Some(gone) if *gone == stamp => None,
            Some(_) => {
                s.tombstoned.remove(name);
                Some(addon)
            }
            None => Some(addon),
        }
    }

    /// Deletes the AddOn; true if there was one. In manifests mode the file's AddOn stays
    /// gone until the file changes (K3s re-applies it then).
    pub(super) fn delete_addon(&self, name: &str) -> bool {
        let dir = {
            let mut s = self.lock();
            if s.addons.remove(name).is_some() {
                s.deleted_addons.push(name.into());
                return true;
            }
            s.manifests.clone()
        };
        if self.addon(name).is_none() {
            return false;
        }
        let Some((_, stamp)) = dir.and_then(|d| scan(&d).addons.remove(name)) else {
            return false;
        };
        let mut s = self.lock();
        s.tombstoned.insert(name.into(), stamp);
        s.deleted_addons.push(name.into());
        true
    }
}

/// A full API object for `w` with `replicas` desired pods, rolled out or not (then: updated
/// but none available).
pub fn workload_json(w: &WorkloadRef, replicas: i64, ready: bool) -> Value {
    let meta = json!({"name": w.name, "namespace": w.namespace, "generation": 1});
    let n = if ready { replicas } else { 0 };
    let (kind, spec, status) = match w.kind {
        WorkloadKind::Deployment => (
            "Deployment",
            json!({"replicas": replicas}),
            json!({"observedGeneration": 1, "replicas": replicas, "updatedReplicas": replicas,
                   "readyReplicas": n, "availableReplicas": n}),
        ),
        WorkloadKind::DaemonSet => (
            "DaemonSet",
            json!({"updateStrategy": {"type": "RollingUpdate"}}),
            json!({"observedGeneration": 1, "desiredNumberScheduled": replicas,
                   "currentNumberScheduled": replicas, "updatedNumberScheduled": replicas,
                   "numberReady": n, "numberAvailable": n}),
        ),
        WorkloadKind::StatefulSet => (
            "StatefulSet",
            json!({"replicas": replicas, "updateStrategy": {"type": "RollingUpdate"}}),
            json!({"observedGeneration": 1, "replicas": replicas, "readyReplicas": n,
                   "currentReplicas": replicas, "updatedReplicas": replicas,
                   "currentRevision": format!("{}-1", w.name),
                   "updateRevision": format!("{}-1", w.name)}),
        ),
    };
    json!({"apiVersion": "apps/v1", "kind": kind, "metadata": meta, "spec": spec, "status": status})
}

/// A file as K3s's deploy controller tells it apart: content and modification time.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    checksum: String,
    modified: Option<SystemTime>,
}

#[derive(Default)]
struct Scan {
    workloads: BTreeMap<WorkloadRef, Value>,
    addons: BTreeMap<String, (FakeAddon, FileStamp)>,
}

/// How deep the walk goes (a loop of bind mounts must not hang a test).
const MAX_DEPTH: usize = 32;

fn scan(dir: &Path) -> Scan {
    let mut files = Vec::new();
    walk(dir, 0, &mut files);
    // K3s sorts the paths it walked before applying them.
    files.sort();
    let skipped: BTreeSet<PathBuf> = files
        .iter()
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?;
            Some(p.with_file_name(name.strip_suffix(".skip")?))
        })
        .collect();
    let mut out = Scan::default();
    for path in files {
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if !is_manifest(name) || skipped.contains(&path) {
            continue;
        }
        let Ok(content) = std::fs::read(&path) else {
            continue;
        };
        let modified = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
        let checksum = hex(&Sha256::digest(&content));
        let addon = name.split('.').next().unwrap_or(name).to_owned();
        out.addons.insert(
            addon,
            (
                FakeAddon {
                    source: path.display().to_string(),
                    checksum: checksum.clone(),
                },
                FileStamp { checksum, modified },
            ),
        );
        let text = String::from_utf8_lossy(&content);
        for doc in YamlLoader::load_from_str(&text).unwrap_or_default() {
            if let Some((w, replicas, ready)) = workload_of(&doc) {
                let object = workload_json(&w, replicas, ready);
                out.workloads.insert(w, object);
            }
        }
    }
    out
}

/// K3s's rule: not a dotfile, and `.yaml`, `.yml` or `.json` (any case).
fn is_manifest(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    !name.starts_with('.')
        && [".yaml", ".yml", ".json"]
            .iter()
            .any(|ext| lower.ends_with(ext))
}

/// Every file under `dir`, recursively, as Go's `filepath.Walk` lists them: a symlink to a
/// file counts (K3s reads through it), a symlinked directory is not entered.
fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    if depth > MAX_DEPTH {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let path = entry.path();
        if kind.is_dir() {
            walk(&path, depth + 1, out);
        } else if kind.is_file() || (kind.is_symlink() && path.is_file()) {
            out.push(path);
        }
    }
}

/// (workload, replicas, ready) of one YAML document, if it is a workload.
fn workload_of(doc: &Yaml) -> Option<(WorkloadRef, i64, bool)> {
    let kind = WorkloadKind::from_kind(doc["kind"].as_str()?)?;
    let name = doc["metadata"]["name"].as_str()?;
    let namespace = doc["metadata"]["namespace"].as_str().unwrap_or("default");
    let spec = &doc["spec"];
    let replicas = spec["replicas"].as_i64().unwrap_or(1);
    let never = &spec["template"]["metadata"]["annotations"][NEVER_READY_ANNOTATION];
    let never_ready = never.as_str() == Some("true") || never.as_bool() == Some(true);
    Some((
        WorkloadRef::new(kind, namespace, name),
        replicas,
        !never_ready,
    ))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_dir_yields_workloads_and_addons() {
        let dir = tempfile::tempdir().unwrap();
        let yaml = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 2\n  template:\n    metadata:\n      labels: {app: web}\n---\napiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: agent\n  namespace: edge\nspec:\n  template:\n    metadata:\n      annotations:\n        outpost.io/test-never-ready: \"true\"\n---\nkind: Service\nmetadata: {name: web}\n";
        std::fs::write(dir.path().join("app.yaml"), yaml).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "x").unwrap();
        let s = scan(dir.path());
        assert_eq!(s.addons.len(), 1);
        // sha256 of the exact bytes, as K3s's deploy controller computes it.
        assert_eq!(
            s.addons["app"].0.checksum,
            hex(&Sha256::digest(yaml.as_bytes()))
        );
        let web = WorkloadRef::new(WorkloadKind::Deployment, "default", "web");
        let agent = WorkloadRef::new(WorkloadKind::DaemonSet, "edge", "agent");
        assert_eq!(s.workloads[&web]["status"]["availableReplicas"], 2);
        assert_eq!(s.workloads[&agent]["status"]["numberAvailable"], 0);
    }

    #[test]
    fn subdirectories_are_walked_like_k3s_does() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("outpost/deeper")).unwrap();
        std::fs::create_dir_all(d.join(".hidden")).unwrap();
        let dep = |name: &str| {
            format!("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n")
        };
        std::fs::write(d.join("outpost/web.v2.yaml"), dep("web")).unwrap();
        std::fs::write(d.join("outpost/deeper/db.YML"), dep("db")).unwrap();
        std::fs::write(d.join("outpost/.outpost-revision"), "{}").unwrap();
        std::fs::write(d.join("outpost/.dot.yaml"), dep("dot")).unwrap();
        std::fs::write(d.join("outpost/readme.md"), "x").unwrap();
        std::fs::write(d.join("outpost/off.yaml"), dep("off")).unwrap();
        std::fs::write(d.join("outpost/off.yaml.skip"), "").unwrap();
        // Go's filepath.Walk enters dot directories; only dot *files* are skipped.
        std::fs::write(d.join(".hidden/in-dot-dir.json"), "{}").unwrap();
        let s = scan(d);
        let names: Vec<&str> = s.addons.keys().map(String::as_str).collect();
        assert_eq!(names, ["db", "in-dot-dir", "web"]);
        assert!(s.addons["web"].0.source.ends_with("outpost/web.v2.yaml"));
        let web = WorkloadRef::new(WorkloadKind::Deployment, "default", "web");
        let off = WorkloadRef::new(WorkloadKind::Deployment, "default", "off");
        assert!(s.workloads.contains_key(&web) && !s.workloads.contains_key(&off));
    }

    #[test]
    fn a_deleted_addon_stays_deleted_until_its_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sub/gone.yaml");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, "# removed\n").unwrap();
        let model = Model::default();
        model.set_manifests_dir(Some(dir.path().to_owned()));
        assert!(model.addon("gone").is_some());
        assert!(model.delete_addon("gone"));
        assert!(model.addon("gone").is_none(), "re-created without a change");
        assert!(!model.delete_addon("gone"), "nothing left to delete");
        assert_eq!(model.deleted_addons(), ["gone"]);
        // New content (and so a new mtime): K3s applies the file again.
        std::fs::write(&file, "# removed again\n").unwrap();
        let back = model.addon("gone").expect("re-applied");
        assert_eq!(back.checksum, hex(&Sha256::digest(b"# removed again\n")));
        assert!(model.addon("nothing").is_none() && !model.delete_addon("nothing"));
    }
}

//! What [`super::ApiServer`] answers: an in-memory model the test mutates, optionally merged
//! with a manifests dir read on every request (for a fake K3s process: the agent writes
//! manifests, the "cluster" follows them).
//!
//! Manifests mode, like K3s's deploy controller over `server/manifests`: every `*.yaml`,
//! `*.yml` or `*.json` file directly in the dir is an AddOn named after the file without its
//! extension, with `spec.checksum` the hex SHA-256 of the file's content and `spec.source` its
//! path; every Deployment, DaemonSet or StatefulSet in its YAML documents is reported rolled
//! out, unless its pod template carries the annotation `outpost.io/test-never-ready: "true"`.
//! Entries set on the model win over the dir's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

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
        explicit.or_else(|| {
            let dir = dir?;
            scan(&dir).workloads.remove(w)
        })
    }

    pub(super) fn addon(&self, name: &str) -> Option<FakeAddon> {
        let (explicit, dir) = {
            let s = self.lock();
            (s.addons.get(name).cloned(), s.manifests.clone())
        };
        explicit.or_else(|| scan(&dir?).addons.remove(name))
    }

    /// Deletes the AddOn; true if there was one. In manifests mode the file's AddOn comes
    /// back on the next read, as K3s re-applies the file.
    pub(super) fn delete_addon(&self, name: &str) -> bool {
        let existed = self.addon(name).is_some();
        let mut s = self.lock();
        s.addons.remove(name);
        if existed {
            s.deleted_addons.push(name.into());
        }
        existed
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

#[derive(Default)]
struct Scan {
    workloads: BTreeMap<WorkloadRef, Value>,
    addons: BTreeMap<String, FakeAddon>,
}

fn scan(dir: &Path) -> Scan {
    let mut out = Scan::default();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
        let Some(ext) = path.extension().and_then(|e| e.to_str()) else {
            continue;
        };
        if !matches!(ext, "yaml" | "yml" | "json") || !path.is_file() {
            continue;
        }
        let (Some(stem), Ok(content)) = (
            path.file_stem().and_then(|s| s.to_str()),
            std::fs::read(&path),
        ) else {
            continue;
        };
        out.addons.insert(
            stem.to_owned(),
            FakeAddon {
                source: path.display().to_string(),
                checksum: hex(&Sha256::digest(&content)),
            },
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
            s.addons["app"].checksum,
            hex(&Sha256::digest(yaml.as_bytes()))
        );
        let web = WorkloadRef::new(WorkloadKind::Deployment, "default", "web");
        let agent = WorkloadRef::new(WorkloadKind::DaemonSet, "edge", "agent");
        assert_eq!(s.workloads[&web]["status"]["availableReplicas"], 2);
        assert_eq!(s.workloads[&agent]["status"]["numberAvailable"], 0);
    }
}

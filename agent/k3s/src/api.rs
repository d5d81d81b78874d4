//! The calls the agent makes to K3s, behind [`K3sApi`] so the supervision and the daemon can
//! be tested without K3s. [`crate::client::K3sClient`] is the real one.

use std::fmt;

use serde::Serialize;

use crate::error::K3sError;
use crate::types::{DaemonSet, Deployment, StatefulSet};
use crate::BoxFuture;

/// The kinds of workload whose rollout we wait for (group `apps/v1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum WorkloadKind {
    Deployment,
    DaemonSet,
    StatefulSet,
}

impl WorkloadKind {
    /// The resource name in the API path (`/apis/apps/v1/namespaces/{ns}/{resource}/{name}`).
    pub fn resource(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "deployments",
            WorkloadKind::DaemonSet => "daemonsets",
            WorkloadKind::StatefulSet => "statefulsets",
        }
    }

    /// The `kind` of a manifest, if it is one of ours.
    pub fn from_kind(kind: &str) -> Option<Self> {
        match kind {
            "Deployment" => Some(WorkloadKind::Deployment),
            "DaemonSet" => Some(WorkloadKind::DaemonSet),
            "StatefulSet" => Some(WorkloadKind::StatefulSet),
            _ => None,
        }
    }

    /// Lower case, as `kubectl` prints it (`deployment default/web`).
    pub fn label(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "deployment",
            WorkloadKind::DaemonSet => "daemonset",
            WorkloadKind::StatefulSet => "statefulset",
        }
    }
}

/// One workload: kind, namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct WorkloadRef {
    pub kind: WorkloadKind,
    pub namespace: String,
    pub name: String,
}

impl WorkloadRef {
    pub fn new(kind: WorkloadKind, namespace: &str, name: &str) -> Self {
        Self {
            kind,
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        }
    }

    /// The object's API path.
    pub fn path(&self) -> String {
        format!(
            "/apis/apps/v1/namespaces/{}/{}/{}",
            self.namespace,
            self.kind.resource(),
            self.name
        )
    }
}

impl fmt::Display for WorkloadRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}/{}", self.kind.label(), self.namespace, self.name)
    }
}

/// A workload object as read, with the fields the readiness rules need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkloadStatus {
    Deployment(Deployment),
    DaemonSet(DaemonSet),
    StatefulSet(StatefulSet),
}

/// A node and its `Ready` condition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeStatus {
    pub name: String,
    /// The `Ready` condition's status is `"True"` (absent or `Unknown` is not ready).
    pub ready: bool,
    pub reason: Option<String>,
    pub message: Option<String>,
}

/// K3s's `AddOn` object (`k3s.cattle.io/v1`) for one file of the manifests dir.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AddonStatus {
    pub name: String,
    /// Hex SHA-256 of the manifest file K3s last applied.
    pub checksum: String,
    /// The manifest file's path.
    pub source: String,
}

/// The K3s API as the agent uses it. Object-safe (`Arc<dyn K3sApi>`), futures boxed like
/// `outpost_health::runner::systemd::SystemdClient`.
pub trait K3sApi: Send + Sync {
    /// `GET /readyz`: `Ok(true)` on 200, `Ok(false)` when the API server answers that it is
    /// not ready (500/503).
    fn readyz(&self) -> BoxFuture<'_, Result<bool, K3sError>>;
    /// `GET /api/v1/nodes`.
    fn nodes(&self) -> BoxFuture<'_, Result<Vec<NodeStatus>, K3sError>>;
    /// `GET` the workload; `None` if it does not exist (yet): 404.
    fn workload<'a>(
        &'a self,
        workload: &'a WorkloadRef,
    ) -> BoxFuture<'a, Result<Option<WorkloadStatus>, K3sError>>;
    /// `GET` the AddOn `kube-system/{name}`; `None` if K3s has none (404).
    fn addon<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<AddonStatus>, K3sError>>;
    /// `DELETE` the AddOn `kube-system/{name}` (so K3s re-applies its file). `Ok(false)` if
    /// there was none.
    fn delete_addon<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<bool, K3sError>>;
}

/// The AddOn object's path.
pub fn addon_path(name: &str) -> String {
    format!("/apis/k3s.cattle.io/v1/namespaces/kube-system/addons/{name}")
}

//! What `GET /v1/workloads` shows (and `outpostctl workloads` prints).

use outpost_proto::workloads::WorkloadOffer;
use outpost_workloads::{ManifestSet, Tombstone};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkloadsView {
    /// The hub channel followed; `None`: only sets from OS bundles.
    pub channel: Option<String>,
    /// The boot slot whose set is run (`rootfs.0`, or `default` without A/B updates).
    pub slot: String,
    /// The revision bound to that slot (what should run).
    pub desired: Option<String>,
    /// The revision in K3s's manifests folder.
    pub applied: Option<String>,
    /// The applied set: its files and objects.
    pub set: Option<ManifestSet>,
    /// Files the applied set dropped, waiting for K3s to prune their objects.
    pub tombstones: Vec<Tombstone>,
    /// Per workload (Deployment, DaemonSet, StatefulSet) of the applied set.
    pub objects: Vec<ObjectStatus>,
    /// The hub's offer at the last check.
    pub offer: Option<WorkloadOffer>,
    pub last_check: Option<String>,
    pub last_apply: Option<String>,
    pub last_error: Option<String>,
}

/// One workload's readiness, as K3s reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectStatus {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    /// `None`: not asked yet (or K3s unreachable).
    pub ready: Option<bool>,
    pub message: Option<String>,
}

impl WorkloadsView {
    pub fn new(channel: Option<String>, slot: String) -> Self {
        WorkloadsView {
            channel,
            slot,
            desired: None,
            applied: None,
            set: None,
            tombstones: Vec::new(),
            objects: Vec::new(),
            offer: None,
            last_check: None,
            last_apply: None,
            last_error: None,
        }
    }
}

/// `POST /v1/workloads/check` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CycleView {
    /// `up_to_date`, `applied`, `deferred`, `failed`.
    pub result: String,
    pub message: String,
    pub offer: Option<WorkloadOffer>,
}

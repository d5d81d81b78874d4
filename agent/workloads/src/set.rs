//! A manifest set: the desired workload state of a device at one revision.

use serde::{Deserialize, Serialize};

use crate::objects::{ObjectRef, Workload};

/// What a revision holds: its manifests (with the objects they declare) and airgap images.
/// Serialized as `set.json` in the store and by `outpostctl workloads --json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestSet {
    pub revision: String,
    /// Sorted by name.
    pub manifests: Vec<ManifestFile>,
    /// Sorted by name.
    pub images: Vec<ImageFile>,
}

/// One manifest file of a set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    /// File name, e.g. `web.yaml`; checked by [`crate::names::addon_name`].
    pub name: String,
    /// Lowercase hex sha256 of the content: what K3s puts in the AddOn's `spec.checksum`.
    pub sha256: String,
    pub size: u64,
    pub objects: Vec<ObjectRef>,
}

/// One airgap image archive of a set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageFile {
    /// File name in the set, e.g. `web.tar.zst`; installed as `outpost-<name>`.
    pub name: String,
    pub sha256: String,
    pub size: u64,
}

impl ManifestFile {
    /// The K3s AddOn this file becomes: the name up to the first '.'.
    pub fn addon(&self) -> &str {
        self.name.split('.').next().unwrap_or(&self.name)
    }
}

impl ManifestSet {
    /// Every workload (Deployment, DaemonSet, StatefulSet) the set declares, for readiness.
    pub fn workloads(&self) -> Vec<Workload> {
        self.manifests
            .iter()
            .flat_map(|m| m.objects.iter().filter_map(ObjectRef::workload))
            .collect()
    }

    /// Same manifests and images (names and hashes) as `other`, whatever the revision.
    pub fn same_content(&self, other: &ManifestSet) -> bool {
        let files = |s: &ManifestSet| {
            (
                s.manifests
                    .iter()
                    .map(|m| (m.name.clone(), m.sha256.clone()))
                    .collect::<Vec<_>>(),
                s.images
                    .iter()
                    .map(|i| (i.name.clone(), i.sha256.clone()))
                    .collect::<Vec<_>>(),
            )
        };
        files(self) == files(other)
    }
}

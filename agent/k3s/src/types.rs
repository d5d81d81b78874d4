//! The Kubernetes objects as far as we read them. Lenient: Kubernetes omits zero values and
//! empty lists from its JSON, so every field defaults, and unknown fields are ignored.
//!
//! Field names and meanings: the Kubernetes API reference,
//! <https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/deployment-v1/>,
//! `.../daemon-set-v1/`, `.../stateful-set-v1/`, `.../cluster-resources/node-v1/`; the AddOn
//! object is K3s's (`k3s.cattle.io/v1`, `spec.source`, `spec.checksum`).

use serde::Deserialize;

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ObjectMeta {
    pub name: String,
    pub namespace: String,
    /// Bumped by the API server on every spec change.
    pub generation: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    /// `"True"`, `"False"` or `"Unknown"`.
    pub status: String,
    pub reason: Option<String>,
    pub message: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Deployment {
    pub metadata: ObjectMeta,
    pub spec: DeploymentSpec,
    pub status: DeploymentStatus,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct DeploymentSpec {
    /// Desired pods; the API server defaults it to 1.
    pub replicas: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct DeploymentStatus {
    pub observed_generation: i64,
    /// Pods of any revision (old ones included).
    pub replicas: i64,
    pub updated_replicas: i64,
    pub ready_replicas: i64,
    pub available_replicas: i64,
    pub conditions: Vec<Condition>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct DaemonSet {
    pub metadata: ObjectMeta,
    pub spec: DaemonSetSpec,
    pub status: DaemonSetStatus,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct DaemonSetSpec {
    pub update_strategy: UpdateStrategy,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct DaemonSetStatus {
    pub observed_generation: i64,
    pub desired_number_scheduled: i64,
    pub current_number_scheduled: i64,
    pub updated_number_scheduled: i64,
    pub number_ready: i64,
    pub number_available: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct StatefulSet {
    pub metadata: ObjectMeta,
    pub spec: StatefulSetSpec,
    pub status: StatefulSetStatus,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct StatefulSetSpec {
    /// Desired pods; the API server defaults it to 1.
    pub replicas: Option<i64>,
    pub update_strategy: UpdateStrategy,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct StatefulSetStatus {
    pub observed_generation: i64,
    pub replicas: i64,
    pub ready_replicas: i64,
    pub current_replicas: i64,
    pub updated_replicas: i64,
    pub current_revision: String,
    pub update_revision: String,
}

/// `spec.updateStrategy` of DaemonSets and StatefulSets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct UpdateStrategy {
    /// `RollingUpdate` (the default, also when empty) or `OnDelete`.
    #[serde(rename = "type")]
    pub type_: String,
    pub rolling_update: Option<RollingUpdate>,
}

impl UpdateStrategy {
    pub fn is_on_delete(&self) -> bool {
        self.type_ == "OnDelete"
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct RollingUpdate {
    /// StatefulSet only: pods with an ordinal below it keep the old revision.
    pub partition: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct NodeList {
    pub items: Vec<Node>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Node {
    pub metadata: ObjectMeta,
    pub status: NodeStatusFields,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct NodeStatusFields {
    pub conditions: Vec<Condition>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Addon {
    pub metadata: ObjectMeta,
    pub spec: AddonSpec,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct AddonSpec {
    pub source: String,
    pub checksum: String,
}

/// The `Status` object Kubernetes answers errors with (`kind: Status`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Status {
    pub status: String,
    pub message: String,
    pub reason: String,
    pub code: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_values_may_be_omitted() {
        // A Deployment just created: the controller has not written a status yet.
        let d: Deployment = serde_json::from_str(
            r#"{"kind":"Deployment","metadata":{"name":"web","generation":1},"spec":{}}"#,
        )
        .unwrap();
        assert_eq!(d.metadata.generation, 1);
        assert_eq!(d.spec.replicas, None);
        assert_eq!(d.status, DeploymentStatus::default());
        let s: StatefulSet = serde_json::from_str("{}").unwrap();
        assert!(!s.spec.update_strategy.is_on_delete());
    }

    #[test]
    fn node_conditions_are_read() {
        // Shape: kubernetes.io/docs/reference/kubernetes-api/cluster-resources/node-v1/
        let n: NodeList = serde_json::from_str(
            r#"{"kind":"NodeList","apiVersion":"v1","metadata":{"resourceVersion":"9"},
            "items":[{"metadata":{"name":"edge-1"},"status":{"conditions":[
              {"type":"MemoryPressure","status":"False","reason":"KubeletHasSufficientMemory"},
              {"type":"Ready","status":"True","reason":"KubeletReady",
               "message":"kubelet is posting ready status","lastHeartbeatTime":"2026-01-01T00:00:00Z"}]}}]}"#,
        )
        .unwrap();
        assert_eq!(n.items[0].status.conditions[1].type_, "Ready");
        assert_eq!(n.items[0].status.conditions[1].status, "True");
    }
}

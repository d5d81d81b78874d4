//! Each call against the stand-in, in the shapes the Kubernetes API reference documents.

use outpost_k3s::readiness::evaluate;
use outpost_k3s::testing::workload_json;
use outpost_k3s::{K3sApi, Readiness, WorkloadKind, WorkloadRef, WorkloadStatus};
use serde_json::json;

use super::setup;

/// /readyz: 200 `ok` when ready, 500 listing the failed checks when not
/// (kubernetes.io/docs/reference/using-api/health-checks/).
#[tokio::test]
async fn readyz_true_and_false() {
    let dir = tempfile::tempdir().unwrap();
    let (server, client) = setup(dir.path()).await;
    let api: &dyn K3sApi = &client;
    assert!(api.readyz().await.unwrap());
    server.model().set_ready(false);
    assert!(!api.readyz().await.unwrap());
    server.model().set_ready(true);
    assert!(api.readyz().await.unwrap());
}

/// NodeList with NodeCondition type Ready
/// (kubernetes.io/docs/reference/kubernetes-api/cluster-resources/node-v1/).
#[tokio::test]
async fn a_not_ready_node_is_reported_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (server, client) = setup(dir.path()).await;
    let nodes = client.nodes().await.unwrap();
    assert_eq!(nodes.len(), 1);
    assert!(nodes[0].ready);
    server.model().set_node(
        "outpost",
        false,
        "KubeletNotReady",
        "container runtime network not ready: NetworkReady=false",
    );
    let nodes = client.nodes().await.unwrap();
    assert_eq!(nodes[0].name, "outpost");
    assert!(!nodes[0].ready);
    assert_eq!(nodes[0].reason.as_deref(), Some("KubeletNotReady"));
    assert!(nodes[0]
        .message
        .as_deref()
        .unwrap()
        .contains("NetworkReady=false"));
}

/// DeploymentStatus, DaemonSetStatus, StatefulSetStatus
/// (kubernetes.io/docs/reference/kubernetes-api/workload-resources/deployment-v1/,
/// daemon-set-v1/, stateful-set-v1/): ready, not ready, and 404 before it exists.
#[tokio::test]
async fn each_workload_kind_ready_not_ready_and_missing() {
    let dir = tempfile::tempdir().unwrap();
    let (server, client) = setup(dir.path()).await;
    for kind in [
        WorkloadKind::Deployment,
        WorkloadKind::DaemonSet,
        WorkloadKind::StatefulSet,
    ] {
        let w = WorkloadRef::new(kind, "edge", "sensor");
        assert_eq!(client.workload(&w).await.unwrap(), None, "{w}");
        assert_eq!(
            evaluate(&w, None),
            Readiness::NotReady(format!("{w}: not found"))
        );

        server.model().set_workload(&w, workload_json(&w, 2, false));
        let st = client.workload(&w).await.unwrap().unwrap();
        let r = evaluate(&w, Some(&st));
        assert!(!r.is_ready(), "{w}: {r:?}");
        let matches = matches!(
            (&st, kind),
            (WorkloadStatus::Deployment(_), WorkloadKind::Deployment)
                | (WorkloadStatus::DaemonSet(_), WorkloadKind::DaemonSet)
                | (WorkloadStatus::StatefulSet(_), WorkloadKind::StatefulSet)
        );
        assert!(matches, "{st:?}");

        server.model().set_workload(&w, workload_json(&w, 2, true));
        let st = client.workload(&w).await.unwrap();
        assert_eq!(evaluate(&w, st.as_ref()), Readiness::Ready, "{w}");
    }
    // The reason names the numbers a person needs.
    let w = WorkloadRef::new(WorkloadKind::Deployment, "default", "web");
    server.model().set_workload(
        &w,
        json!({"kind":"Deployment","metadata":{"name":"web","namespace":"default","generation":5},
        "spec":{"replicas":2},"status":{"observedGeneration":5,"replicas":2,"updatedReplicas":2,
        "readyReplicas":1,"availableReplicas":1,"unavailableReplicas":1}}),
    );
    let st = client.workload(&w).await.unwrap();
    assert_eq!(
        evaluate(&w, st.as_ref()),
        Readiness::NotReady("deployment default/web: 1 of 2 replicas available".into())
    );
}

/// K3s's AddOn (k3s.cattle.io/v1, kube-system): spec.checksum and spec.source; delete.
#[tokio::test]
async fn addon_get_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    let (server, client) = setup(dir.path()).await;
    assert_eq!(client.addon("sensor").await.unwrap(), None);
    assert!(!client.delete_addon("sensor").await.unwrap());
    let sum = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    server.model().set_addon(
        "sensor",
        "/var/lib/rancher/k3s/server/manifests/sensor.yaml",
        sum,
    );
    let a = client.addon("sensor").await.unwrap().unwrap();
    assert_eq!(a.name, "sensor");
    assert_eq!(a.checksum, sum);
    assert_eq!(
        a.source,
        "/var/lib/rancher/k3s/server/manifests/sensor.yaml"
    );
    assert!(client.delete_addon("sensor").await.unwrap());
    assert_eq!(client.addon("sensor").await.unwrap(), None);
    assert_eq!(server.model().deleted_addons(), ["sensor"]);
    assert!(server
        .model()
        .requests()
        .contains(&"DELETE /apis/k3s.cattle.io/v1/namespaces/kube-system/addons/sensor".into()));
}

/// The manifests-dir mode a fake K3s runs: workloads ready unless annotated never-ready, one
/// AddOn per file with the file's SHA-256.
#[tokio::test]
async fn manifests_dir_mode() {
    let dir = tempfile::tempdir().unwrap();
    let manifests = tempfile::tempdir().unwrap();
    let (server, client) = setup(dir.path()).await;
    server
        .model()
        .set_manifests_dir(Some(manifests.path().to_owned()));
    let yaml = "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: db\n  namespace: data\nspec:\n  replicas: 1\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: stuck\nspec:\n  template:\n    metadata:\n      annotations:\n        outpost.io/test-never-ready: \"true\"\n";
    std::fs::write(manifests.path().join("app.yaml"), yaml).unwrap();
    let db = WorkloadRef::new(WorkloadKind::StatefulSet, "data", "db");
    let stuck = WorkloadRef::new(WorkloadKind::Deployment, "default", "stuck");
    let st = client.workload(&db).await.unwrap();
    assert!(evaluate(&db, st.as_ref()).is_ready());
    let st = client.workload(&stuck).await.unwrap();
    assert!(!evaluate(&stuck, st.as_ref()).is_ready());
    let a = client.addon("app").await.unwrap().unwrap();
    // sha256 of the file, computed here independently with sha256sum.
    let out = std::process::Command::new("sha256sum")
        .arg(manifests.path().join("app.yaml"))
        .output()
        .unwrap();
    let expected = String::from_utf8(out.stdout).unwrap();
    assert_eq!(a.checksum, expected.split_whitespace().next().unwrap());
    std::fs::remove_file(manifests.path().join("app.yaml")).unwrap();
    assert_eq!(client.workload(&db).await.unwrap(), None);
    assert_eq!(client.addon("app").await.unwrap(), None);
}

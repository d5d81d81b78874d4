//! The rules against status objects shaped as the Kubernetes API reference documents them:
//! DeploymentStatus (kubernetes.io/docs/reference/kubernetes-api/workload-resources/deployment-v1/),
//! DaemonSetStatus (.../daemon-set-v1/), StatefulSetStatus (.../stateful-set-v1/).

use serde_json::json;

use super::*;
use crate::api::WorkloadKind;

fn dep(v: serde_json::Value) -> Deployment {
    serde_json::from_value(v).unwrap()
}

fn web() -> WorkloadRef {
    WorkloadRef::new(WorkloadKind::Deployment, "default", "web")
}

fn reason(r: Readiness) -> String {
    match r {
        Readiness::NotReady(s) => s,
        Readiness::Ready => panic!("expected not ready"),
    }
}

#[test]
fn deployment_rolled_out() {
    let d = dep(json!({"metadata":{"generation":3},"spec":{"replicas":2},
        "status":{"observedGeneration":3,"replicas":2,"updatedReplicas":2,"readyReplicas":2,"availableReplicas":2}}));
    assert_eq!(deployment(&web(), &d), Readiness::Ready);
}

#[test]
fn deployment_replicas_default_to_one_and_zero_is_ready_when_empty() {
    let d = dep(json!({"metadata":{"generation":1},"spec":{},
        "status":{"observedGeneration":1,"replicas":1,"updatedReplicas":1,"availableReplicas":1}}));
    assert!(deployment(&web(), &d).is_ready());
    let d = dep(json!({"metadata":{"generation":1},"spec":{},"status":{"observedGeneration":1}}));
    assert_eq!(
        reason(deployment(&web(), &d)),
        "deployment default/web: 0 of 1 replicas updated"
    );
    // Scaled to zero: Kubernetes omits every zero count.
    let d = dep(
        json!({"metadata":{"generation":2},"spec":{"replicas":0},"status":{"observedGeneration":2}}),
    );
    assert!(deployment(&web(), &d).is_ready());
}

#[test]
fn deployment_not_ready_reasons() {
    let unobserved = dep(json!({"metadata":{"generation":4},"spec":{"replicas":1},
        "status":{"observedGeneration":3,"replicas":1,"updatedReplicas":1,"availableReplicas":1}}));
    assert!(reason(deployment(&web(), &unobserved)).contains("generation 4 not yet observed"));
    let old_left = dep(json!({"metadata":{"generation":2},"spec":{"replicas":2},
        "status":{"observedGeneration":2,"replicas":3,"updatedReplicas":2,"availableReplicas":2}}));
    assert_eq!(
        reason(deployment(&web(), &old_left)),
        "deployment default/web: 1 old replicas pending termination"
    );
    let unavailable = dep(json!({"metadata":{"generation":2},"spec":{"replicas":2},
        "status":{"observedGeneration":2,"replicas":2,"updatedReplicas":2,"readyReplicas":1,"availableReplicas":1}}));
    assert_eq!(
        reason(deployment(&web(), &unavailable)),
        "deployment default/web: 1 of 2 replicas available"
    );
    let stalled = dep(json!({"metadata":{"generation":2},"spec":{"replicas":1},
        "status":{"observedGeneration":2,"replicas":1,"updatedReplicas":0,
        "conditions":[{"type":"Progressing","status":"False","reason":"ProgressDeadlineExceeded",
          "message":"ReplicaSet \"web-5d\" has timed out progressing."}]}}));
    assert!(reason(deployment(&web(), &stalled)).contains("exceeded its progress deadline"));
}

#[test]
fn daemon_set_rules() {
    let w = WorkloadRef::new(WorkloadKind::DaemonSet, "kube-system", "agent");
    let ds = |v| -> DaemonSet { serde_json::from_value(v).unwrap() };
    let ok = ds(
        json!({"metadata":{"generation":1},"status":{"observedGeneration":1,
        "desiredNumberScheduled":1,"currentNumberScheduled":1,"updatedNumberScheduled":1,
        "numberReady":1,"numberAvailable":1}}),
    );
    assert!(daemon_set(&w, &ok).is_ready());
    let updating = ds(
        json!({"metadata":{"generation":2},"status":{"observedGeneration":2,
        "desiredNumberScheduled":1,"numberAvailable":1}}),
    );
    assert_eq!(
        reason(daemon_set(&w, &updating)),
        "daemonset kube-system/agent: 0 of 1 pods updated"
    );
    // OnDelete: old pods stay until deleted; only availability counts.
    let on_delete = ds(
        json!({"metadata":{"generation":2},"spec":{"updateStrategy":{"type":"OnDelete"}},
        "status":{"observedGeneration":2,"desiredNumberScheduled":1,"numberAvailable":1}}),
    );
    assert!(daemon_set(&w, &on_delete).is_ready());
    let unavailable = ds(
        json!({"metadata":{"generation":1},"status":{"observedGeneration":1,
        "desiredNumberScheduled":1,"updatedNumberScheduled":1,"numberUnavailable":1}}),
    );
    assert_eq!(
        reason(daemon_set(&w, &unavailable)),
        "daemonset kube-system/agent: 0 of 1 pods available"
    );
    let unobserved = ds(json!({"metadata":{"generation":3},"status":{"observedGeneration":2}}));
    assert!(!daemon_set(&w, &unobserved).is_ready());
}

#[test]
fn stateful_set_rules() {
    let w = WorkloadRef::new(WorkloadKind::StatefulSet, "db", "pg");
    let sts = |v| -> StatefulSet { serde_json::from_value(v).unwrap() };
    let ok = sts(json!({"metadata":{"generation":2},"spec":{"replicas":2},
        "status":{"observedGeneration":2,"replicas":2,"readyReplicas":2,"currentReplicas":2,
        "updatedReplicas":2,"currentRevision":"pg-7d","updateRevision":"pg-7d"}}));
    assert!(stateful_set(&w, &ok).is_ready());
    let rolling = sts(json!({"metadata":{"generation":3},"spec":{"replicas":2},
        "status":{"observedGeneration":3,"replicas":2,"readyReplicas":2,"currentReplicas":1,
        "updatedReplicas":1,"currentRevision":"pg-7d","updateRevision":"pg-8e"}}));
    assert_eq!(
        reason(stateful_set(&w, &rolling)),
        "statefulset db/pg: 1 of 2 replicas at revision pg-8e"
    );
    let not_ready = sts(json!({"metadata":{"generation":1},"spec":{"replicas":2},
        "status":{"observedGeneration":1,"replicas":2,"readyReplicas":1}}));
    assert_eq!(
        reason(stateful_set(&w, &not_ready)),
        "statefulset db/pg: 1 of 2 replicas ready"
    );
    // A brand-new object: observedGeneration 0 is never "observed".
    let fresh = sts(json!({"metadata":{"generation":0},"spec":{"replicas":0}}));
    assert!(!stateful_set(&w, &fresh).is_ready());
    let partitioned = sts(json!({"metadata":{"generation":3},
        "spec":{"replicas":3,"updateStrategy":{"type":"RollingUpdate","rollingUpdate":{"partition":2}}},
        "status":{"observedGeneration":3,"readyReplicas":3,"updatedReplicas":1,
        "currentRevision":"a","updateRevision":"b"}}));
    assert!(stateful_set(&w, &partitioned).is_ready());
    let on_delete = sts(json!({"metadata":{"generation":3},
        "spec":{"replicas":1,"updateStrategy":{"type":"OnDelete"}},
        "status":{"observedGeneration":3,"readyReplicas":1,"currentRevision":"a","updateRevision":"b"}}));
    assert!(stateful_set(&w, &on_delete).is_ready());
}

#[test]
fn missing_workload_is_not_ready() {
    assert_eq!(
        reason(evaluate(&web(), None)),
        "deployment default/web: not found"
    );
}

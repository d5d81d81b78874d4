//! Is a workload rolled out? The rules `kubectl rollout status` applies (kubectl's
//! `polymorphichelpers/rollout_status.go`), pure. Each answer says why not in words a person
//! can act on.
//!
//! - Deployment: the controller saw the latest spec (`status.observedGeneration >=
//!   metadata.generation`), it is not past its progress deadline, every desired pod runs the new
//!   template (`updatedReplicas >= spec.replicas`, default 1), no pod of an old template is left
//!   (`replicas <= updatedReplicas`) and enough are available (`availableReplicas >=
//!   spec.replicas`).
//! - DaemonSet: observed, `updatedNumberScheduled >= desiredNumberScheduled` (not checked for
//!   `OnDelete`, whose pods change only when deleted) and `numberAvailable >=
//!   desiredNumberScheduled`.
//! - StatefulSet: observed (and `observedGeneration` non-zero), `readyReplicas >= spec.replicas`;
//!   with `RollingUpdate` (the default) and a partition, `updatedReplicas >= replicas -
//!   partition`, without one `currentRevision == updateRevision`. `OnDelete`: no revision check.

use serde::Serialize;

use crate::api::{WorkloadRef, WorkloadStatus};
use crate::types::{DaemonSet, Deployment, StatefulSet};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", content = "reason", rename_all = "snake_case")]
pub enum Readiness {
    Ready,
    NotReady(String),
}

impl Readiness {
    pub fn is_ready(&self) -> bool {
        matches!(self, Readiness::Ready)
    }
}

/// Readiness of a workload as read (`None`: it does not exist yet).
pub fn evaluate(workload: &WorkloadRef, status: Option<&WorkloadStatus>) -> Readiness {
    match status {
        None => Readiness::NotReady(format!("{workload}: not found")),
        Some(WorkloadStatus::Deployment(d)) => deployment(workload, d),
        Some(WorkloadStatus::DaemonSet(d)) => daemon_set(workload, d),
        Some(WorkloadStatus::StatefulSet(s)) => stateful_set(workload, s),
    }
}

pub fn deployment(w: &WorkloadRef, d: &Deployment) -> Readiness {
    let st = &d.status;
    let want = d.spec.replicas.unwrap_or(1);
    if st.observed_generation < d.metadata.generation {
        return not_observed(w, st.observed_generation, d.metadata.generation);
    }
    let stalled = st.conditions.iter().find(|c| {
        c.type_ == "Progressing" && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
    });
    if let Some(c) = stalled {
        let msg = c.message.as_deref().unwrap_or("");
        return Readiness::NotReady(
            format!("{w}: exceeded its progress deadline {msg}")
                .trim_end()
                .to_owned(),
        );
    }
    if st.updated_replicas < want {
        return Readiness::NotReady(format!(
            "{w}: {} of {want} replicas updated",
            st.updated_replicas
        ));
    }
    if st.replicas > st.updated_replicas {
        return Readiness::NotReady(format!(
            "{w}: {} old replicas pending termination",
            st.replicas - st.updated_replicas
        ));
    }
    if st.available_replicas < want {
        return Readiness::NotReady(format!(
            "{w}: {} of {want} replicas available",
            st.available_replicas
        ));
    }
    Readiness::Ready
}

pub fn daemon_set(w: &WorkloadRef, d: &DaemonSet) -> Readiness {
    let st = &d.status;
    if st.observed_generation < d.metadata.generation {
        return not_observed(w, st.observed_generation, d.metadata.generation);
    }
    let want = st.desired_number_scheduled;
    if !d.spec.update_strategy.is_on_delete() && st.updated_number_scheduled < want {
        return Readiness::NotReady(format!(
            "{w}: {} of {want} pods updated",
            st.updated_number_scheduled
        ));
    }
    if st.number_available < want {
        return Readiness::NotReady(format!(
            "{w}: {} of {want} pods available",
            st.number_available
        ));
    }
    Readiness::Ready
}

pub fn stateful_set(w: &WorkloadRef, s: &StatefulSet) -> Readiness {
    let st = &s.status;
    if st.observed_generation == 0 || st.observed_generation < s.metadata.generation {
        return not_observed(w, st.observed_generation, s.metadata.generation);
    }
    let want = s.spec.replicas.unwrap_or(1);
    if st.ready_replicas < want {
        return Readiness::NotReady(format!(
            "{w}: {} of {want} replicas ready",
            st.ready_replicas
        ));
    }
    let strategy = &s.spec.update_strategy;
    if strategy.is_on_delete() {
        return Readiness::Ready;
    }
    let partition = strategy
        .rolling_update
        .as_ref()
        .and_then(|r| r.partition)
        .unwrap_or(0);
    if partition > 0 {
        let need = (want - partition).max(0);
        if st.updated_replicas < need {
            return Readiness::NotReady(format!(
                "{w}: {} of {need} replicas above partition {partition} updated",
                st.updated_replicas
            ));
        }
        return Readiness::Ready;
    }
    if st.current_revision != st.update_revision {
        return Readiness::NotReady(format!(
            "{w}: {} of {want} replicas at revision {}",
            st.updated_replicas, st.update_revision
        ));
    }
    Readiness::Ready
}

fn not_observed(w: &WorkloadRef, observed: i64, generation: i64) -> Readiness {
    Readiness::NotReady(format!(
        "{w}: generation {generation} not yet observed by its controller (observed {observed})"
    ))
}

#[cfg(test)]
mod tests;

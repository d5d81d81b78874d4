//! `outpost-k3s`: what the agent needs of K3s, the single-node Kubernetes that runs the device's
//! workloads. The agent supervises K3s's unit and gates OS updates on its workloads being
//! rolled out, so it needs a handful of API calls, the readiness rules, and certificate expiry.
//!
//! | module | what | I/O |
//! |---|---|---|
//! | [`api`] | [`K3sApi`]: `/readyz`, nodes, one workload, K3s's AddOn objects (get, delete) | trait |
//! | [`client`] | [`K3sClient`]: the real one, HTTPS with K3s's admin client certificate | network, credential files |
//! | [`types`] | the Kubernetes objects, only the fields we read, lenient | pure |
//! | [`readiness`] | is a Deployment/DaemonSet/StatefulSet rolled out (`kubectl rollout status`'s rules) | pure |
//! | [`certs`] | notAfter of K3s's certificates; [`certs::rotation_due`] | reads `*.crt`; decision pure |
//! | [`supervise`] | [`Supervisor`]: start/restart with backoff, certificate rotation when quiet | pure (sans-IO) |
//! | `testing` (feature) | an mTLS stand-in for the K3s API server, a K3s-like TLS dir writer | network, files |
//!
//! Where the facts come from: object shapes and field meanings from the Kubernetes API reference
//! (kubernetes.io/docs/reference/kubernetes-api/: `workload-resources/deployment-v1`,
//! `daemon-set-v1`, `stateful-set-v1`, `cluster-resources/node-v1`), `/readyz` from
//! kubernetes.io/docs/reference/using-api/health-checks/ (200 `ok` when ready), readiness rules
//! from kubectl's `rollout status`, the AddOn object (`k3s.cattle.io/v1`, `spec.source`,
//! `spec.checksum`) and the TLS dir layout (`/var/lib/rancher/k3s/server/tls`:
//! `server-ca.crt`, `client-admin.crt`, `client-admin.key`) from K3s, and rotation from
//! docs.k3s.io/cli/certificate (`k3s certificate rotate` with K3s stopped; K3s renews
//! certificates within 120 days of expiry when it starts).
//!
//! K3s cannot run in this repository's test environment: tests run the real client against
//! `testing::ApiServer`, which answers the same paths with the same JSON shapes.
#![forbid(unsafe_code)]

pub mod api;
pub mod certs;
pub mod client;
pub mod error;
pub mod readiness;
pub mod supervise;
#[cfg(feature = "testing")]
pub mod testing;
pub mod types;

use std::future::Future;
use std::pin::Pin;

pub use api::{AddonStatus, K3sApi, NodeStatus, WorkloadKind, WorkloadRef, WorkloadStatus};
pub use client::{ClientConfig, K3sClient};
pub use error::K3sError;
pub use readiness::Readiness;
pub use supervise::Supervisor;

/// A boxed future, so [`K3sApi`] stays object-safe (`Arc<dyn K3sApi>`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

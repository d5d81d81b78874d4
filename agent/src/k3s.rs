//! `[k3s]`: the daemon's side of K3s — outpost-k3s's supervisor wired to systemd (over the
//! lazy D-Bus connection), the real API client, K3s's certificate files and the clocks; the
//! answers behind the `k3s-ready` and `workloads-ready` checks; and the clean-up of workload
//! tombstones once K3s has applied them.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use outpost_health::runner::systemd::SystemdClient;
use outpost_k3s::supervise::{Action, Input, Now, Observation, Policy, Status, UnitActivity};
use outpost_k3s::{ClientConfig, K3sApi, K3sClient, Readiness, Supervisor, WorkloadRef};
use tokio::sync::{watch, Mutex};

use crate::config::K3sConfig;
use crate::shutdown::Shutdown;
use crate::update::InstallTracker;

/// A workload's (kind, namespace, name) and whether it is rolled out (why not, if not).
pub type ObjectVerdict = (String, String, String, Result<String, String>);

pub struct K3s {
    cfg: K3sConfig,
    api: Arc<dyn K3sApi>,
    systemd: Arc<dyn SystemdClient>,
    tracker: Arc<InstallTracker>,
    supervisor: Mutex<Supervisor>,
    status: watch::Sender<Status>,
    started: Instant,
    /// Tombstones whose AddOn was found absent, since when.
    absent_addons: Mutex<std::collections::HashMap<String, Instant>>,
}

/// How long a tombstone's AddOn must stay absent before the tombstone is removed.
const ABSENT_ADDON_GRACE: Duration = Duration::from_secs(30);

impl K3s {
    /// `api` is the real client unless a test injects another (K3s cannot run here).
    pub fn new(
        cfg: K3sConfig,
        api: Arc<dyn K3sApi>,
        systemd: Arc<dyn SystemdClient>,
        tracker: Arc<InstallTracker>,
    ) -> Arc<Self> {
        let policy = Policy {
            rotate_before: cfg.rotate_before,
            ..Policy::default()
        };
        let supervisor = Supervisor::new(policy);
        let status = watch::Sender::new(supervisor.status().clone());
        Arc::new(K3s {
            cfg,
            api,
            systemd,
            tracker,
            supervisor: Mutex::new(supervisor),
            status,
            started: Instant::now(),
            absent_addons: Mutex::new(std::collections::HashMap::new()),
        })
    }

    /// The real client over K3s's credentials (read on first use, so K3s may start later).
    pub fn client(cfg: &K3sConfig) -> Result<Arc<dyn K3sApi>, String> {
        let config = ClientConfig {
            url: cfg.api.clone(),
            ..ClientConfig::from_tls_dir(&cfg.tls_dir)
        };
        Ok(Arc::new(K3sClient::new(config).map_err(|e| e.to_string())?))
    }

    pub fn api(&self) -> Arc<dyn K3sApi> {
        self.api.clone()
    }

    pub fn status(&self) -> Status {
        self.status.borrow().clone()
    }

    /// `k3s-ready`: `/readyz` answers ok and the node (or every node) is `Ready`.
    pub async fn ready(&self) -> Result<String, String> {
        if !self.api.readyz().await.map_err(|e| e.to_string())? {
            return Err("the API server's /readyz is not ok".into());
        }
        let nodes = self.api.nodes().await.map_err(|e| e.to_string())?;
        let counted: Vec<_> = nodes
            .iter()
            .filter(|n| self.cfg.node.as_deref().is_none_or(|want| n.name == want))
            .collect();
        if counted.is_empty() {
            return Err(match &self.cfg.node {
                Some(n) => format!("node {n} is not registered"),
                None => "no node is registered".into(),
            });
        }
        if let Some(n) = counted.iter().find(|n| !n.ready) {
            return Err(format!(
                "node {} is not Ready{}",
                n.name,
                n.message
                    .as_deref()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            ));
        }
        Ok(format!("API ready, {} node(s) Ready", counted.len()))
    }

    /// Each workload's readiness as (kind, namespace, name, verdict), for `workloads-ready`
    /// and `outpostctl workloads`.
    pub async fn workloads_ready(
        &self,
        set: &outpost_workloads::ManifestSet,
    ) -> Vec<ObjectVerdict> {
        let mut out = Vec::new();
        for w in set.workloads() {
            let kind = match w.kind {
                outpost_workloads::WorkloadKind::Deployment => {
                    outpost_k3s::WorkloadKind::Deployment
                }
                outpost_workloads::WorkloadKind::DaemonSet => outpost_k3s::WorkloadKind::DaemonSet,
                outpost_workloads::WorkloadKind::StatefulSet => {
                    outpost_k3s::WorkloadKind::StatefulSet
                }
            };
            let r = WorkloadRef::new(kind, &w.namespace, &w.name);
            let verdict = match self.api.workload(&r).await {
                Ok(status) => match outpost_k3s::readiness::evaluate(&r, status.as_ref()) {
                    Readiness::Ready => Ok(format!("{r} is rolled out")),
                    Readiness::NotReady(why) => Err(why),
                },
                Err(e) => Err(format!("{r}: {e}")),
            };
            out.push((w.kind.as_str().to_owned(), w.namespace, w.name, verdict));
        }
        out
    }

    /// `workloads-ready` over the booted slot's set; also refreshes the objects' view.
    pub async fn check_workloads(
        &self,
        workloads: &crate::workloads::Workloads,
    ) -> Result<String, String> {
        let view = workloads.view();
        let Some(desired) = view.desired.clone() else {
            // The view is filled in by the first apply at start, which may not have finished:
            // ask the store, or a trial could pass before its set was ever looked at.
            if workloads.slot_has_set() {
                return Err("the workload set bound to this slot is not applied yet".into());
            }
            return Ok("no workload set is bound to this slot".into());
        };
        if view.applied.as_deref() != Some(desired.as_str()) {
            return Err(format!(
                "revision {desired} is not applied yet (K3s's folder holds {})",
                view.applied.as_deref().unwrap_or("nothing")
            ));
        }
        let Some(set) = view.set else {
            return Err(format!("revision {desired} is not in the store"));
        };
        let verdicts = self.workloads_ready(&set).await;
        workloads.set_object_status(&verdicts);
        let waiting: Vec<&str> = verdicts
            .iter()
            .filter_map(|(_, _, _, v)| v.as_ref().err().map(String::as_str))
            .collect();
        if waiting.is_empty() {
            Ok(format!(
                "revision {desired}: {} workload(s) rolled out",
                verdicts.len()
            ))
        } else {
            Err(format!("revision {desired}: {}", waiting.join("; ")))
        }
    }

    /// Deletes tombstone files (and their AddOns) that K3s has applied: their objects are gone.
    pub async fn collect_tombstones(&self, workloads: &crate::workloads::Workloads) {
        for t in workloads.view().tombstones {
            let done = match self.api.addon(&t.addon).await {
                Ok(Some(a)) if a.checksum == t.sha256 => {
                    if let Err(e) = self.api.delete_addon(&t.addon).await {
                        tracing::warn!(addon = %t.addon, error = %e, "cannot delete a pruned AddOn");
                        continue;
                    }
                    true
                }
                // No AddOn: K3s never applied the dropped file, or its AddOn was deleted and
                // the agent stopped before the file went. Only after it stayed absent for
                // two of K3s's passes (15 s each): K3s creates an AddOn before it reads the
                // file, so a file it is applying right now may show none for a moment.
                Ok(None) => {
                    let mut absent = self.absent_addons.lock().await;
                    let since = *absent.entry(t.addon.clone()).or_insert_with(Instant::now);
                    since.elapsed() >= ABSENT_ADDON_GRACE
                }
                // Not applied yet (K3s polls every 15 s) or K3s is down: next time.
                _ => false,
            };
            if !done {
                continue;
            }
            self.absent_addons.lock().await.remove(&t.addon);
            match workloads.remove_tombstone(&t.addon).await {
                Ok(()) => {
                    tracing::info!(addon = %t.addon, "the objects of a dropped manifest are pruned")
                }
                Err(e) => tracing::warn!(addon = %t.addon, error = %e, "cannot remove a tombstone"),
            }
        }
    }

    fn now(&self) -> Now {
        Now {
            mono: self.started.elapsed(),
            wall: SystemTime::now(),
        }
    }

    async fn observe(&self) -> Observation {
        let unit = match self.systemd.unit_state(&self.cfg.unit).await {
            Ok(s) => UnitActivity::from_active_state(&s.active_state),
            Err(_) => UnitActivity::Unknown,
        };
        let mut error = None;
        let readyz = match self.api.readyz().await {
            Ok(r) => Some(r),
            Err(e) => {
                error = Some(e.to_string());
                None
            }
        };
        let node_ready = match readyz {
            Some(true) => Some(self.ready().await.is_ok()),
            _ => None,
        };
        let dirs = vec![self.cfg.tls_dir.clone()];
        let scan = tokio::task::spawn_blocking(move || outpost_k3s::certs::scan(&dirs))
            .await
            .ok();
        let earliest_cert = scan.and_then(|s| outpost_k3s::certs::earliest(&s.certs));
        Observation {
            unit,
            readyz,
            node_ready,
            earliest_cert,
            quiet: self.tracker.may_begin().is_ok(),
            error,
        }
    }

    async fn perform(&self, action: Action) -> Result<(), String> {
        let unit = &self.cfg.unit;
        tracing::info!(?action, %unit, "k3s supervision");
        match action {
            Action::StartUnit => self
                .systemd
                .start_unit(unit)
                .await
                .map_err(|e| e.to_string()),
            Action::RestartUnit => self
                .systemd
                .restart_unit(unit)
                .await
                .map_err(|e| e.to_string()),
            Action::StopUnit => self
                .systemd
                .stop_unit(unit)
                .await
                .map_err(|e| e.to_string()),
            Action::RotateCertificates => {
                // systemd's stop job is queued, not finished: wait until the unit is down.
                for _ in 0..120 {
                    match self.systemd.unit_state(unit).await {
                        Ok(s) if s.active_state == "inactive" || s.active_state == "failed" => {
                            break
                        }
                        _ => tokio::time::sleep(Duration::from_millis(500)).await,
                    }
                }
                let (program, args) = self
                    .cfg
                    .rotate_command
                    .split_first()
                    .ok_or("no rotate command")?;
                let out = tokio::process::Command::new(program)
                    .args(args)
                    .output()
                    .await
                    .map_err(|e| format!("{program}: {e}"))?;
                if out.status.success() {
                    Ok(())
                } else {
                    Err(format!(
                        "{}: {}",
                        self.cfg.rotate_command.join(" "),
                        crate::oneline(&String::from_utf8_lossy(&out.stderr))
                    ))
                }
            }
        }
    }

    /// Observe every `poll`, act on what the supervisor decides; clean tombstones meanwhile.
    pub async fn run(
        self: Arc<Self>,
        workloads: Option<Arc<crate::workloads::Workloads>>,
        mut shutdown: Shutdown,
    ) {
        loop {
            let observation = self.observe().await;
            let mut actions = if self.cfg.supervise {
                let mut s = self.supervisor.lock().await;
                let a = s.handle(Input::Observed(observation.clone(), self.now()));
                self.status.send_replace(s.status().clone());
                a
            } else {
                self.status.send_modify(|s| {
                    s.unit = Some(observation.unit);
                    s.ready = observation.readyz;
                    s.node_ready = observation.node_ready;
                    s.last_error = observation.error.clone();
                });
                Vec::new()
            };
            while let Some(action) = actions.pop() {
                let result = self.perform(action).await;
                if let Err(e) = &result {
                    tracing::warn!(?action, error = %e, "k3s supervision step failed");
                }
                let mut s = self.supervisor.lock().await;
                actions.extend(s.handle(Input::Done {
                    action,
                    result,
                    now: self.now(),
                }));
                self.status.send_replace(s.status().clone());
            }
            if let Some(w) = &workloads {
                // K3s imports airgap images when it starts: new ones need a restart.
                if self.cfg.supervise && w.take_images_changed() {
                    tracing::info!("new airgap images: restarting K3s to import them");
                    if let Err(e) = self.systemd.restart_unit(&self.cfg.unit).await {
                        tracing::warn!(error = %e, "cannot restart K3s for its new images");
                    }
                }
            }
            if let (Some(w), Some(true)) = (&workloads, observation.readyz) {
                self.collect_tombstones(w).await;
                // Keeps `outpostctl workloads` current; the verdict itself is the gate's.
                let _ = self.check_workloads(w).await;
            }
            tokio::select! {
                _ = shutdown.wait() => return,
                _ = tokio::time::sleep(self.cfg.poll) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex as StdMutex;

    use outpost_health::runner::systemd::{ClientError, UnitState};
    use outpost_health::runner::BoxFuture;
    use outpost_k3s::{AddonStatus, K3sError, NodeStatus, WorkloadStatus};

    use super::*;

    /// systemd with one unit whose state the test sets; records the control calls.
    #[derive(Default)]
    struct Units {
        state: StdMutex<String>,
        calls: StdMutex<Vec<String>>,
    }

    impl SystemdClient for Units {
        fn unit_state<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<UnitState, ClientError>> {
            let active_state = self.state.lock().unwrap().clone();
            Box::pin(async move {
                Ok(UnitState {
                    load_state: "loaded".into(),
                    active_state,
                    sub_state: String::new(),
                })
            })
        }
        fn start_unit<'a>(&'a self, unit: &'a str) -> BoxFuture<'a, Result<(), ClientError>> {
            self.calls.lock().unwrap().push(format!("start {unit}"));
            *self.state.lock().unwrap() = "active".into();
            Box::pin(async { Ok(()) })
        }
        fn stop_unit<'a>(&'a self, unit: &'a str) -> BoxFuture<'a, Result<(), ClientError>> {
            self.calls.lock().unwrap().push(format!("stop {unit}"));
            *self.state.lock().unwrap() = "inactive".into();
            Box::pin(async { Ok(()) })
        }
        fn restart_unit<'a>(&'a self, unit: &'a str) -> BoxFuture<'a, Result<(), ClientError>> {
            self.calls.lock().unwrap().push(format!("restart {unit}"));
            *self.state.lock().unwrap() = "active".into();
            Box::pin(async { Ok(()) })
        }
    }

    /// An API whose readyz and nodes the test sets.
    struct Api {
        readyz: bool,
        nodes: Vec<NodeStatus>,
    }

    impl K3sApi for Api {
        fn readyz(&self) -> outpost_k3s::BoxFuture<'_, Result<bool, K3sError>> {
            let r = self.readyz;
            Box::pin(async move { Ok(r) })
        }
        fn nodes(&self) -> outpost_k3s::BoxFuture<'_, Result<Vec<NodeStatus>, K3sError>> {
            let n = self.nodes.clone();
            Box::pin(async move { Ok(n) })
        }
        fn workload<'a>(
            &'a self,
            _: &'a WorkloadRef,
        ) -> outpost_k3s::BoxFuture<'a, Result<Option<WorkloadStatus>, K3sError>> {
            Box::pin(async { Ok(None) })
        }
        fn addon<'a>(
            &'a self,
            _: &'a str,
        ) -> outpost_k3s::BoxFuture<'a, Result<Option<AddonStatus>, K3sError>> {
            Box::pin(async { Ok(None) })
        }
        fn delete_addon<'a>(
            &'a self,
            _: &'a str,
        ) -> outpost_k3s::BoxFuture<'a, Result<bool, K3sError>> {
            Box::pin(async { Ok(false) })
        }
    }

    fn node(name: &str, ready: bool) -> NodeStatus {
        NodeStatus {
            name: name.into(),
            ready,
            reason: None,
            message: (!ready).then(|| "kubelet stopped posting node status".into()),
        }
    }

    fn config(node: Option<&str>) -> K3sConfig {
        K3sConfig {
            unit: "k3s.service".into(),
            api: "https://127.0.0.1:6443".into(),
            tls_dir: "/nonexistent".into(),
            node: node.map(str::to_owned),
            supervise: true,
            rotate_before: Duration::from_secs(30 * 86400),
            rotate_command: vec!["true".into()],
            poll: Duration::from_millis(10),
        }
    }

    fn k3s(cfg: K3sConfig, api: Api, units: Arc<Units>) -> Arc<K3s> {
        K3s::new(
            cfg,
            Arc::new(api),
            units,
            Arc::new(InstallTracker::default()),
        )
    }

    #[tokio::test]
    async fn ready_needs_readyz_and_the_named_node() {
        let units = Arc::new(Units::default());
        let api = |readyz, nodes| Api { readyz, nodes };
        let k = k3s(
            config(None),
            api(false, vec![node("n1", true)]),
            units.clone(),
        );
        assert!(k.ready().await.unwrap_err().contains("/readyz"));
        let k = k3s(config(None), api(true, vec![]), units.clone());
        assert!(k.ready().await.unwrap_err().contains("no node"));
        let both = vec![node("edge", true), node("other", false)];
        let k = k3s(config(None), api(true, both.clone()), units.clone());
        let err = k.ready().await.unwrap_err();
        assert!(err.contains("other is not Ready: kubelet"), "{err}");
        // Only the configured node counts.
        let k = k3s(config(Some("edge")), api(true, both.clone()), units.clone());
        assert_eq!(k.ready().await.unwrap(), "API ready, 1 node(s) Ready");
        let k = k3s(config(Some("gone")), api(true, both), units);
        assert!(k
            .ready()
            .await
            .unwrap_err()
            .contains("gone is not registered"));
    }

    /// The first control call the supervision loop makes on a unit in `state`.
    async fn first_call(state: &str) -> (String, Status) {
        let units = Arc::new(Units::default());
        *units.state.lock().unwrap() = state.into();
        let api = Api {
            readyz: false,
            nodes: vec![],
        };
        let k = k3s(config(None), api, units.clone());
        let (trigger, shutdown) = crate::shutdown::channel();
        let task = tokio::spawn(k.clone().run(None, shutdown));
        for _ in 0..200 {
            if !units.calls.lock().unwrap().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        trigger.trigger();
        task.await.unwrap();
        let first = units.calls.lock().unwrap().first().cloned();
        (first.unwrap_or_default(), k.status())
    }

    #[tokio::test]
    async fn a_failed_unit_is_restarted_and_an_inactive_one_started() {
        let (call, status) = first_call("failed").await;
        assert_eq!(call, "restart k3s.service");
        assert_eq!(status.restarts, 1);
        assert_eq!(first_call("inactive").await.0, "start k3s.service");
        assert_eq!(
            first_call("active").await.0,
            "",
            "a running K3s is left alone"
        );
    }

    #[tokio::test]
    async fn certificates_close_to_expiry_are_rotated_with_k3s_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let tls = dir.path().join("tls");
        outpost_k3s::testing::write_tls_dir(
            &tls,
            outpost_k3s::testing::TlsDirOptions {
                leaf_valid_for: Duration::from_secs(10 * 86400),
            },
        )
        .unwrap();
        let marker = dir.path().join("rotated");
        let units = Arc::new(Units::default());
        *units.state.lock().unwrap() = "active".into();
        let cfg = K3sConfig {
            tls_dir: tls,
            // The rotation sees K3s stopped: it records the unit's state when it ran.
            rotate_command: vec![
                "sh".into(),
                "-c".into(),
                format!("echo rotated > {}", marker.display()),
            ],
            ..config(None)
        };
        let api = Api {
            readyz: true,
            nodes: vec![node("edge", true)],
        };
        let k = k3s(cfg, api, units.clone());
        let (trigger, shutdown) = crate::shutdown::channel();
        let task = tokio::spawn(k.clone().run(None, shutdown));
        for _ in 0..300 {
            if units.calls.lock().unwrap().len() >= 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        trigger.trigger();
        task.await.unwrap();
        assert_eq!(
            *units.calls.lock().unwrap(),
            vec!["stop k3s.service", "start k3s.service"]
        );
        assert!(marker.exists(), "k3s certificate rotate did not run");
        let status = k.status();
        assert_eq!(status.rotations, 1);
        assert!(status.cert_earliest_expiry.is_some());
    }
}

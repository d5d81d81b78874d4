//! `[workloads]`: the signed manifest set each boot slot runs on K3s (docs/workloads.md).
//!
//! Offline first: at start the agent applies the revision bound to the booted slot from its
//! own store (`state_dir/workloads`), before and without any network. When a channel is
//! configured it then asks the hub (`GET /v1/workloads`) every interval; a new revision is
//! downloaded (resumable), verified like a bundle (keyring, compatible, revision), imported,
//! bound to the booted slot and applied — atomically, by `outpost-workloads`. A slot on trial
//! (health gate checking) gets no new standalone set: its set is part of the decision.
//!
//! Bindings are per slot, so a rollback to the other slot re-applies the set that belonged to
//! it (the joint OS + workloads transaction).

mod fetch;
pub mod view;

use std::sync::Arc;
use std::time::Duration;

use outpost_outbox::Outbox;
use outpost_proto::workloads::{WorkloadOffer, WorkloadQuery, WORKLOADS_PATH};
use outpost_workloads::{ApplyReport, Store, Target};
use serde::Serialize;
use tokio::sync::{watch, Notify};

use crate::config::{HubConfig, UpdateConfig, WorkloadsConfig};
use crate::identity::Identity;
use crate::shutdown::Shutdown;
use crate::update::InstallTracker;
pub use view::{CycleView, ObjectStatus, WorkloadsView};

/// The outbox stream of workload applies.
pub const STREAM: &str = "outpost.workloads";
/// The binding key on devices without A/B slots.
pub const DEFAULT_SLOT: &str = "default";

/// An `outpost.workloads` record.
#[derive(Debug, Clone, Serialize)]
pub struct ApplyRecord {
    pub slot: String,
    pub revision: String,
    pub previous: Option<String>,
    /// `applied` or `failed`.
    pub result: &'static str,
    pub reason: Option<String>,
    pub manifests: usize,
    pub pruned: Vec<String>,
    pub images_changed: bool,
}

pub struct Workloads {
    cfg: WorkloadsConfig,
    update: Option<Arc<UpdateConfig>>,
    hub: Option<HubConfig>,
    identity: Option<Arc<Identity>>,
    tracker: Arc<InstallTracker>,
    outbox: Outbox,
    request_timeout: Duration,
    slot: String,
    view: watch::Sender<WorkloadsView>,
    wake: Notify,
    /// The store and the manifests folder have one writer at a time.
    lock: tokio::sync::Mutex<()>,
    /// One cycle at a time (the poller and `POST /v1/workloads/check` download into the same
    /// part file).
    cycling: tokio::sync::Mutex<()>,
    /// An apply changed the airgap images: K3s imports them only when it starts.
    images_changed: std::sync::atomic::AtomicBool,
}

impl Workloads {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        cfg: WorkloadsConfig,
        update: Option<Arc<UpdateConfig>>,
        hub: Option<HubConfig>,
        identity: Option<Arc<Identity>>,
        tracker: Arc<InstallTracker>,
        outbox: Outbox,
        request_timeout: Duration,
    ) -> Arc<Self> {
        let slot = booted_slot_key(update.as_deref());
        let view = watch::Sender::new(WorkloadsView::new(cfg.channel.clone(), slot.clone()));
        Arc::new(Workloads {
            cfg,
            update,
            hub,
            identity,
            tracker,
            outbox,
            request_timeout,
            slot,
            view,
            wake: Notify::new(),
            lock: tokio::sync::Mutex::new(()),
            cycling: tokio::sync::Mutex::new(()),
            images_changed: std::sync::atomic::AtomicBool::new(false),
        })
    }

    pub fn view(&self) -> WorkloadsView {
        self.view.borrow().clone()
    }

    pub fn config(&self) -> &WorkloadsConfig {
        &self.cfg
    }

    /// The revision in K3s's folder and the objects of its set (for the readiness checks).
    pub fn applied_set(&self) -> Option<outpost_workloads::ManifestSet> {
        self.view.borrow().set.clone()
    }

    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// The booted slot's key in the store's bindings.
    pub fn slot(&self) -> &str {
        &self.slot
    }

    /// Whether a set is bound to the booted slot (its trial then waits for `workloads-ready`).
    pub fn slot_has_set(&self) -> bool {
        Store::open(&self.cfg.dir)
            .and_then(|s| s.binding(&self.slot))
            .map(|b| b.is_some())
            .unwrap_or(false)
    }

    /// Removes a tombstone K3s has applied and refreshes the view.
    pub async fn remove_tombstone(&self, addon: &str) -> Result<(), String> {
        let _one = self.lock.lock().await;
        let (cfg, addon) = (self.cfg.clone(), addon.to_owned());
        tokio::task::spawn_blocking(move || {
            outpost_workloads::remove_tombstone(&target(&cfg), &addon).map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| format!("workloads task: {e}"))??;
        drop(_one);
        self.after_apply(&Ok(None)).await;
        Ok(())
    }

    /// Records each workload's readiness in the view.
    pub fn set_object_status(&self, statuses: &[crate::k3s::ObjectVerdict]) {
        self.view.send_modify(|v| {
            for o in &mut v.objects {
                if let Some((_, _, _, r)) = statuses
                    .iter()
                    .find(|(k, ns, n, _)| *k == o.kind && *ns == o.namespace && *n == o.name)
                {
                    o.ready = Some(r.is_ok());
                    o.message = Some(match r {
                        Ok(m) | Err(m) => m.clone(),
                    });
                }
            }
        });
    }

    /// Applies the revision bound to the booted slot (no network). `Ok(None)`: none bound.
    pub async fn reconcile(&self) -> Result<Option<ApplyReport>, String> {
        let _one = self.lock.lock().await;
        let (cfg, slot) = (self.cfg.clone(), self.slot.clone());
        let result = tokio::task::spawn_blocking(move || -> Result<_, String> {
            let store = Store::open(&cfg.dir).map_err(|e| e.to_string())?;
            let Some(revision) = store.binding(&slot).map_err(|e| e.to_string())? else {
                return Ok(None);
            };
            let report = apply_and_prune(&store, &cfg, &revision)?;
            Ok(Some(report))
        })
        .await
        .map_err(|e| format!("workloads task: {e}"))?;
        self.after_apply(&result).await;
        result
    }

    /// Refreshes the view from the store and K3s's folder, and records an apply.
    /// Whether an apply changed the airgap images since the last call (K3s must restart to
    /// import them).
    pub fn take_images_changed(&self) -> bool {
        self.images_changed
            .swap(false, std::sync::atomic::Ordering::SeqCst)
    }

    async fn after_apply(&self, result: &Result<Option<ApplyReport>, String>) {
        if let Ok(Some(r)) = result {
            if r.images_changed {
                self.images_changed
                    .store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
        let cfg = self.cfg.clone();
        let slot = self.slot.clone();
        let state = tokio::task::spawn_blocking(move || local_state(&cfg, &slot))
            .await
            .ok()
            .and_then(Result::ok);
        let now = outpost_proto::time::rfc3339_millis(now_ms());
        self.view.send_modify(|v| {
            if let Some((desired, applied, set, tombstones)) = state {
                v.desired = desired;
                v.applied = applied;
                v.objects = set
                    .as_ref()
                    .map(|s| {
                        s.workloads()
                            .into_iter()
                            .map(|w| ObjectStatus {
                                kind: w.kind.as_str().to_owned(),
                                namespace: w.namespace,
                                name: w.name,
                                ready: None,
                                message: None,
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                v.set = set;
                v.tombstones = tombstones;
            }
            match result {
                Ok(Some(r)) if !r.unchanged => v.last_apply = Some(now.clone()),
                Err(e) => v.last_error = Some(e.clone()),
                _ => {}
            }
            if result.is_ok() {
                v.last_error = None;
            }
        });
        match result {
            Ok(Some(r)) if !r.unchanged => {
                tracing::info!(revision = %r.revision, previous = ?r.previous, pruned = r.tombstones.len(), images_changed = r.images_changed, "workloads applied");
                self.record(r, None).await;
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "workloads not applied"),
        }
    }

    async fn record(&self, r: &ApplyReport, reason: Option<String>) {
        let manifests = self
            .view
            .borrow()
            .set
            .as_ref()
            .map(|s| s.manifests.len())
            .unwrap_or(0);
        let record = ApplyRecord {
            slot: self.slot.clone(),
            revision: r.revision.clone(),
            previous: r.previous.clone(),
            result: if reason.is_none() {
                "applied"
            } else {
                "failed"
            },
            reason,
            manifests,
            pruned: r.tombstones.iter().map(|t| t.addon.clone()).collect(),
            images_changed: r.images_changed,
        };
        let id = format!(
            "workloads:{}:{}:{}",
            self.slot,
            r.revision,
            r.previous.as_deref().unwrap_or("none")
        );
        crate::records::record_once(&self.outbox, STREAM, &id, &record, "the workloads apply")
            .await;
    }

    /// Asks the hub for the channel's set; `Ok(None)` when the device runs it.
    pub async fn check(&self) -> Result<Option<WorkloadOffer>, String> {
        let (Some(channel), Some(update)) = (self.cfg.channel.clone(), self.update.clone()) else {
            return Err("no [workloads] channel: sets come only inside OS bundles".into());
        };
        let query = WorkloadQuery {
            compatible: update.system.compatible.clone(),
            revision: self.view.borrow().desired.clone().unwrap_or_default(),
            channel,
        };
        let result = self.ask(&query).await;
        self.view.send_modify(|v| {
            v.last_check = Some(outpost_proto::time::rfc3339_millis(now_ms()));
            if let Ok(offer) = &result {
                v.offer = offer.clone();
            }
        });
        result
    }

    async fn ask(&self, query: &WorkloadQuery) -> Result<Option<WorkloadOffer>, String> {
        let mut client = self.client()?;
        let (status, body) = client
            .get_once(&format!("{WORKLOADS_PATH}?{}", query.to_query()), 64 * 1024)
            .await
            .map_err(|e| crate::oneline(&e.to_string()))?;
        match status.as_u16() {
            204 => Ok(None),
            200 => {
                let offer: WorkloadOffer = serde_json::from_slice(&body)
                    .map_err(|e| format!("the hub's offer does not parse: {e}"))?;
                if !outpost_proto::updates::valid_release_id(&offer.id)
                    || !offer
                        .artifact_path
                        .starts_with(outpost_proto::updates::RELEASES_PREFIX)
                    || outpost_workloads::check_revision(&offer.revision).is_err()
                {
                    return Err("the hub's offer names an invalid workload set".into());
                }
                Ok(Some(offer))
            }
            other => Err(format!(
                "the hub answered HTTP {other}: {}",
                crate::oneline(&String::from_utf8_lossy(&body[..body.len().min(200)]))
            )),
        }
    }

    fn client(&self) -> Result<crate::uploader::client::HubClient, String> {
        let hub = self.hub.as_ref().ok_or("no [hub] configured")?;
        crate::delivery::make_client(hub, self.identity.as_ref(), self.request_timeout)
    }

    /// One cycle: check, and apply what the channel wants unless the slot is on trial.
    pub async fn cycle(&self) -> CycleView {
        let _one_cycle = self.cycling.lock().await;
        let view = |result: &str, message: String, offer: Option<WorkloadOffer>| CycleView {
            result: result.to_owned(),
            message,
            offer,
        };
        let offer = match self.check().await {
            Ok(Some(o)) => o,
            Ok(None) => {
                let current = self.view.borrow().desired.clone();
                return view(
                    "up_to_date",
                    format!(
                        "up to date (revision {})",
                        current.as_deref().unwrap_or("none")
                    ),
                    None,
                );
            }
            Err(e) => return view("failed", format!("workloads check failed: {e}"), None),
        };
        if let Err(crate::update::tracker::ClaimError::Held(reason)) = self.tracker.may_begin() {
            return view(
                "deferred",
                format!(
                    "revision {} waits: the booted slot is on trial ({reason})",
                    offer.revision
                ),
                Some(offer),
            );
        }
        match self.fetch_and_apply(&offer).await {
            Ok(report) => view(
                "applied",
                format!(
                    "applied revision {} ({} file(s) pruned)",
                    report.revision,
                    report.tombstones.len()
                ),
                Some(offer),
            ),
            Err(e) => {
                self.view.send_modify(|v| v.last_error = Some(e.clone()));
                view(
                    "failed",
                    format!("revision {}: {e}", offer.revision),
                    Some(offer),
                )
            }
        }
    }

    async fn fetch_and_apply(&self, offer: &WorkloadOffer) -> Result<ApplyReport, String> {
        let update = self
            .update
            .clone()
            .ok_or("no [update]: nothing to verify with")?;
        let downloads = self.cfg.dir.join("downloads");
        tokio::fs::create_dir_all(&downloads)
            .await
            .map_err(|e| format!("{}: {e}", downloads.display()))?;
        let path =
            fetch::download(|| self.client(), &downloads, offer, self.request_timeout).await?;
        let _one = self.lock.lock().await;
        let (cfg, slot, offer2, path2) = (
            self.cfg.clone(),
            self.slot.clone(),
            offer.clone(),
            path.clone(),
        );
        let result = tokio::task::spawn_blocking(move || -> Result<ApplyReport, String> {
            let store = Store::open(&cfg.dir).map_err(|e| e.to_string())?;
            fetch::import_artifact(&update, &store, &path2, &offer2)?;
            store
                .bind(&slot, &offer2.revision)
                .map_err(|e| e.to_string())?;
            apply_and_prune(&store, &cfg, &offer2.revision)
        })
        .await
        .map_err(|e| format!("workloads task: {e}"))?;
        // Verified and stored, or refused: the download is not needed again either way.
        let _ = tokio::fs::remove_file(&path).await;
        let wrapped = result.clone().map(Some);
        drop(_one);
        self.after_apply(&wrapped).await;
        result
    }

    /// At start: the bound revision, offline; then the channel every interval.
    pub async fn run(self: Arc<Self>, mut shutdown: Shutdown) {
        let mut pause = Duration::from_secs(5);
        loop {
            match self.reconcile().await {
                Ok(Some(r)) => {
                    tracing::info!(slot = %self.slot, revision = %r.revision, "workloads in place")
                }
                Ok(None) => tracing::info!(slot = %self.slot, "no workload set bound to this slot"),
                Err(e) => {
                    // K3s's folder may be on a filesystem mounted later: try again.
                    tracing::warn!(error = %e, retry_in = ?pause, "workloads: cannot apply the bound set");
                    tokio::select! {
                        _ = shutdown.wait() => return,
                        _ = tokio::time::sleep(pause) => {}
                    }
                    pause = (pause * 2).min(Duration::from_secs(300));
                    continue;
                }
            }
            break;
        }
        if self.cfg.channel.is_none() {
            return;
        }
        let mut wait = Duration::from_secs(5);
        loop {
            tokio::select! {
                _ = shutdown.wait() => return,
                _ = tokio::time::sleep(wait) => {}
                _ = self.wake.notified() => {}
            }
            let outcome = self.cycle().await;
            tracing::info!(result = %outcome.result, "{}", outcome.message);
            wait = self.cfg.interval;
        }
    }
}

fn target(cfg: &WorkloadsConfig) -> Target {
    Target {
        manifests_dir: cfg.manifests_dir.clone(),
        subdir: cfg.subdir.clone(),
        staging_dir: cfg.staging_dir.clone(),
        images_dir: cfg.images_dir.clone(),
    }
}

fn apply_and_prune(
    store: &Store,
    cfg: &WorkloadsConfig,
    revision: &str,
) -> Result<ApplyReport, String> {
    let report =
        outpost_workloads::apply(store, revision, &target(cfg)).map_err(|e| e.to_string())?;
    if let Err(e) = store.prune(cfg.keep) {
        tracing::warn!(error = %e, "workloads: old revisions not pruned");
    }
    Ok(report)
}

type LocalState = (
    Option<String>,
    Option<String>,
    Option<outpost_workloads::ManifestSet>,
    Vec<outpost_workloads::Tombstone>,
);

/// (bound revision, applied revision, applied set, tombstones) from disk.
fn local_state(cfg: &WorkloadsConfig, slot: &str) -> Result<LocalState, String> {
    let store = Store::open(&cfg.dir).map_err(|e| e.to_string())?;
    let desired = store.binding(slot).map_err(|e| e.to_string())?;
    let applied = outpost_workloads::applied(&target(cfg)).map_err(|e| e.to_string())?;
    let (revision, tombstones) = match applied {
        Some(a) => (Some(a.revision), a.tombstones),
        None => (None, Vec::new()),
    };
    let set = match &revision {
        Some(r) => store.get(r).map_err(|e| e.to_string())?,
        None => None,
    };
    Ok((desired, revision, set, tombstones))
}

/// The booted slot's name, the key of its binding; `default` without A/B updates.
fn booted_slot_key(update: Option<&UpdateConfig>) -> String {
    let Some(update) = update else {
        return DEFAULT_SLOT.to_owned();
    };
    match crate::update::context::booted(update) {
        Ok(outpost_update::Booted::Slot(id)) => id.to_string(),
        Ok(outpost_update::Booted::External) => "external".to_owned(),
        Err(e) => {
            tracing::warn!(error = %e, "workloads: booted slot unknown; using the default binding");
            DEFAULT_SLOT.to_owned()
        }
    }
}

/// Stages the workload set of a joint OS + workloads bundle for `slot` (the install's target):
/// imported into the store and bound, applied when that slot boots.
pub fn stage_for_slot(
    cfg: &WorkloadsConfig,
    bundle: &outpost_bundle::VerifiedBundle,
    slot: &str,
) -> Result<String, String> {
    let revision = bundle
        .info()
        .version
        .clone()
        .ok_or("the bundle has no version (the workload set's revision)")?;
    let store = Store::open(&cfg.dir).map_err(|e| e.to_string())?;
    fetch::import_from_bundle(&store, bundle, &revision)?;
    store.bind(slot, &revision).map_err(|e| e.to_string())?;
    Ok(revision)
}

/// Binds `to` to the revision `from` runs (an OS update without a set keeps the workloads).
pub fn carry_over(cfg: &WorkloadsConfig, from: &str, to: &str) -> Result<Option<String>, String> {
    let store = Store::open(&cfg.dir).map_err(|e| e.to_string())?;
    let Some(revision) = store.binding(from).map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    store.bind(to, &revision).map_err(|e| e.to_string())?;
    Ok(Some(revision))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

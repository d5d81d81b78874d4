//! What every request handler shares. Read-only after start except for atomics.

use std::sync::Arc;
use std::time::Instant;

use outpost_health::status::HealthStatus;
use outpost_outbox::Outbox;
use tokio::sync::watch;

use super::errors::RejectCounters;
use crate::config::{Config, UpdateConfig};
use crate::identity::Identity;
use crate::update::InstallTracker;
use crate::uploader::status::UploaderStatus;

pub struct AppState {
    pub outbox: Outbox,
    pub config: Arc<Config>,
    pub started: Instant,
    pub rejected: RejectCounters,
    pub uploader: Arc<UploaderStatus>,
    /// `[update]`, shared with install tasks; `None` when updates are not configured.
    pub update: Option<Arc<UpdateConfig>>,
    pub install: Arc<InstallTracker>,
    /// The health gate's latest status (`GET /v1/health`); `phase: starting` until the gate
    /// assessed this boot. Subscribe for changes.
    pub health: watch::Sender<HealthStatus>,
    /// `[identity]` (with `[hub]`): the device key and enrollment; `None` otherwise.
    pub identity: Option<Arc<Identity>>,
    /// `[delivery]`: updates from the hub; `None` otherwise.
    pub delivery: Option<Arc<crate::delivery::Delivery>>,
    /// `[workloads]`: the manifest sets applied to K3s; `None` otherwise.
    pub workloads: Option<Arc<crate::workloads::Workloads>>,
    /// `[k3s]`: supervision and the API behind the K3s checks; `None` otherwise.
    pub k3s: Option<Arc<crate::k3s::K3s>>,
}

impl AppState {
    pub fn new(outbox: Outbox, config: Arc<Config>, uploader: Arc<UploaderStatus>) -> Self {
        let install = Arc::new(InstallTracker::default());
        install.set_armed_file(config.state_dir.join(outpost_health::armed::ARMED_FILE));
        Self {
            outbox,
            started: Instant::now(),
            rejected: RejectCounters::default(),
            uploader,
            update: config.update.clone().map(Arc::new),
            install,
            health: watch::Sender::new(HealthStatus::default()),
            identity: config
                .identity
                .clone()
                .zip(config.hub.clone())
                .map(|(id, hub)| {
                    let timeout =
                        std::time::Duration::from_millis(config.uploader.request_timeout_ms);
                    Identity::new(id, hub, timeout)
                }),
            delivery: None,
            workloads: None,
            k3s: None,
            config,
        }
        .with_delivery()
        .with_workloads()
        .with_k3s()
    }

    fn with_k3s(mut self) -> Self {
        if let Some(cfg) = self.config.k3s.clone() {
            match crate::k3s::K3s::client(&cfg) {
                Ok(api) => {
                    let bus = Arc::new(crate::health::bus::LazyBus::new(
                        self.config.dbus.as_ref().map(|d| d.bus.clone()),
                    ));
                    self.k3s = Some(crate::k3s::K3s::new(cfg, api, bus, self.install.clone()));
                }
                Err(e) => tracing::error!(error = %e, "[k3s] unusable: K3s is not supervised"),
            }
        }
        self
    }

    /// Replaces the K3s API client (tests: K3s cannot run here).
    pub fn with_k3s_api(mut self, api: Arc<dyn outpost_k3s::K3sApi>) -> Self {
        if let Some(cfg) = self.config.k3s.clone() {
            let bus = Arc::new(crate::health::bus::LazyBus::new(
                self.config.dbus.as_ref().map(|d| d.bus.clone()),
            ));
            self.k3s = Some(crate::k3s::K3s::new(cfg, api, bus, self.install.clone()));
        }
        self
    }

    fn with_workloads(mut self) -> Self {
        if let Some(cfg) = self.config.workloads.clone() {
            self.install.set_workloads(cfg.clone());
            self.workloads = Some(crate::workloads::Workloads::new(
                cfg,
                self.update.clone(),
                self.config.hub.clone(),
                self.identity.clone(),
                self.install.clone(),
                self.outbox.clone(),
                std::time::Duration::from_millis(self.config.uploader.request_timeout_ms),
            ));
        }
        self
    }

    /// `[delivery]` needs `[hub]` and `[update]` (checked when the configuration loads).
    fn with_delivery(mut self) -> Self {
        if let (Some(cfg), Some(hub), Some(update)) = (
            self.config.delivery.clone(),
            self.config.hub.clone(),
            self.update.clone(),
        ) {
            self.delivery = Some(crate::delivery::Delivery::new(
                cfg,
                hub,
                update,
                self.install.clone(),
                self.outbox.clone(),
                self.identity.clone(),
                std::time::Duration::from_millis(self.config.uploader.request_timeout_ms),
            ));
        }
        self
    }
}

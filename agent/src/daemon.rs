//! Wiring and lifecycle: open the outbox, listen, upload, and stop without losing a record.

use std::io::Write;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use outpost_outbox::{Outbox, OutboxConfig, OutboxError};
use tokio::task::JoinHandle;

use crate::api::{self, AppState, BindError};
use crate::config::Config;
use crate::shutdown::{self, Shutdown, ShutdownTrigger};
use crate::systemd;
use crate::uploader::status::UploaderStatus;
use crate::uploader::{tls, Uploader};

const STATUS_INTERVAL: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("cannot create directory {path}: {source}")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open outbox {path}: {source}")]
    Outbox { path: PathBuf, source: OutboxError },
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error("cannot install signal handlers: {0}")]
    Signal(std::io::Error),
    #[error("internal task failed: {0}")]
    Task(String),
}

/// A started daemon: the outbox is open and the API listens.
pub struct Running {
    trigger: ShutdownTrigger,
    state: Arc<AppState>,
    servers: Vec<JoinHandle<()>>,
    /// RAUC's API and io.outpost.Agent1 on D-Bus (`[dbus]`), if served.
    bus: Option<crate::bus::BusHandle>,
    uploader: Option<JoinHandle<()>>,
    /// Opens the device key and enrolls (`[identity]`); ends once enrolled.
    identity: Option<JoinHandle<()>>,
    reporter: JoinHandle<()>,
    /// The health gate of this boot (`None` without `[update]`).
    health: Option<JoinHandle<()>>,
    /// `[delivery]`: the update poller.
    delivery: Option<JoinHandle<()>>,
    /// `[workloads]`: the bound set at start, then the channel poller.
    workloads: Option<JoinHandle<()>>,
    /// `[k3s]`: supervision, readiness and tombstone clean-up.
    k3s: Option<JoinHandle<()>>,
    /// `unix:/run/outpost/agent.sock` (and the TCP address, if any).
    pub endpoints: Vec<String>,
}

fn create_private_dir(path: &Path) -> Result<(), DaemonError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|source| DaemonError::Dir {
            path: path.to_owned(),
            source,
        })
}

pub async fn start(config: Config) -> Result<Running, DaemonError> {
    let config = Arc::new(config);
    create_private_dir(&config.state_dir)?;
    if let Some(dir) = config
        .outbox
        .path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
    {
        create_private_dir(dir)?;
    }
    let outbox_config = OutboxConfig {
        path: config.outbox.path.clone(),
        max_bytes: config.outbox.max_bytes,
    };
    let path = config.outbox.path.clone();
    let outbox = tokio::task::spawn_blocking(move || Outbox::open(outbox_config))
        .await
        .map_err(|e| DaemonError::Task(e.to_string()))?
        .map_err(|source| DaemonError::Outbox { path, source })?;
    tracing::info!(path = %config.outbox.path.display(), max_bytes = config.outbox.max_bytes, "outbox open");

    // Bind before spawning anything, so a bind error leaves nothing running.
    let mut listeners = vec![api::bind_unix(&config.api.socket, config.api.socket_mode)?];
    if let Some(addr) = config.api.tcp {
        listeners.push(api::bind_tcp(addr).await?);
    }
    let endpoints: Vec<String> = listeners.iter().map(api::Listener::describe).collect();

    let (trigger, shutdown) = shutdown::channel();
    let uploader_status = Arc::new(UploaderStatus::new(config.hub.is_some()));
    let state = Arc::new(AppState::new(
        outbox.clone(),
        config.clone(),
        uploader_status.clone(),
    ));
    let servers = listeners
        .into_iter()
        .map(|l| tokio::spawn(api::serve(l, state.clone(), shutdown.clone())))
        .collect();
    // Never fatal: without the bus the agent still queues, uploads and runs the gate.
    let bus = match &config.dbus {
        Some(cfg) => crate::bus::serve(state.clone(), cfg)
            .await
            .map_err(|e| tracing::error!(error = %e, "D-Bus not served; running without it"))
            .ok(),
        None => None,
    };

    // [identity]: open the key once (TPM: hundreds of ms) and enroll if needed, beside the API.
    let identity = state.identity.clone().map(|id| {
        let backoff = crate::uploader::backoff::Backoff::new(
            config.uploader.backoff_base_ms,
            config.uploader.backoff_cap_ms,
        );
        tokio::spawn(id.run(shutdown.clone(), backoff))
    });
    let uploader = config.hub.clone().map(|hub| {
        // Fail loudly in the log but keep queueing: publishing must work even while the
        // device's certificate is missing or broken.
        if hub.key.is_some() {
            if let Err(e) = tls::client_config(&hub) {
                tracing::error!(error = %e, "hub TLS configuration unusable; records are queued until it is fixed");
            }
        }
        let mut up = Uploader::new(outbox.clone(), hub, config.uploader, uploader_status.clone());
        if let Some(id) = &state.identity {
            up = up.with_identity(id.clone());
        }
        tokio::spawn(up.run(shutdown.clone()))
    });
    if uploader.is_none() {
        tracing::info!("no [hub] configured: records are only queued");
    }
    let delivery = state
        .delivery
        .clone()
        .map(|d| tokio::spawn(d.run(shutdown.clone())));
    let workloads = state
        .workloads
        .clone()
        .map(|w| tokio::spawn(w.run(shutdown.clone())));
    let k3s = state
        .k3s
        .clone()
        .map(|k| tokio::spawn(k.run(state.workloads.clone(), shutdown.clone())));
    let reporter = tokio::spawn(report(state.clone(), shutdown));
    // After the API listens: the gate's local-api check calls it.
    let health = crate::health::start(state.clone());
    Ok(Running {
        trigger,
        state,
        servers,
        bus,
        uploader,
        identity,
        reporter,
        health,
        delivery,
        workloads,
        k3s,
        endpoints,
    })
}

impl Running {
    /// Stops accepting, finishes in-flight requests, stops the uploader, closes the outbox.
    pub async fn stop(self) -> Result<(), DaemonError> {
        self.trigger.trigger();
        if let Some(bus) = self.bus {
            bus.stop().await;
        }
        if let Some(delivery) = self.delivery {
            // Safe at any await point: a download resumes from what reached the disk, and a
            // started install runs on the blocking pool, which the runtime waits for.
            delivery.abort();
            let _ = delivery.await;
        }
        if let Some(k3s) = self.k3s {
            // Safe at any await point: systemd jobs run on their own; a rotation cut short is
            // finished by K3s's next start (it renews what is about to expire).
            k3s.abort();
            let _ = k3s.await;
        }
        if let Some(workloads) = self.workloads {
            // Safe at any await point: an apply runs on the blocking pool (which the runtime
            // waits for) and swaps K3s's folder in one rename.
            workloads.abort();
            let _ = workloads.await;
        }
        if let Some(gate) = self.health {
            // Safe at any await point: every decision is persisted before it is acted on,
            // and the next start resumes the trial (see outpost-health's invariants).
            gate.abort();
            let _ = gate.await;
        }
        for server in self.servers {
            server.await.map_err(|e| DaemonError::Task(e.to_string()))?;
        }
        if let Some(up) = self.uploader {
            up.await.map_err(|e| DaemonError::Task(e.to_string()))?;
        }
        if let Some(identity) = self.identity {
            identity
                .await
                .map_err(|e| DaemonError::Task(e.to_string()))?;
        }
        self.reporter.abort();
        let _ = self.reporter.await;
        let outbox = self.state.outbox.clone();
        drop(self.state);
        // Closing any clone stops the writer after it committed everything queued so far.
        tokio::task::spawn_blocking(move || outbox.close())
            .await
            .map_err(|e| DaemonError::Task(e.to_string()))?;
        tracing::info!("outbox closed");
        Ok(())
    }

    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }
}

/// Keeps systemd's STATUS= current and feeds the watchdog, if enabled.
async fn report(state: Arc<AppState>, mut shutdown: Shutdown) {
    let watchdog = systemd::watchdog_period();
    let period = watchdog.map_or(STATUS_INTERVAL, |w| w.min(STATUS_INTERVAL));
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = shutdown.wait() => return,
        }
        if watchdog.is_some() {
            systemd::watchdog();
        }
        systemd::status(&status_line(&state).await);
    }
}

async fn status_line(state: &AppState) -> String {
    let outbox = state.outbox.clone();
    let pending = match tokio::task::spawn_blocking(move || outbox.stats()).await {
        Ok(Ok(stats)) => crate::api::info::views_from(&stats).0.pending.to_string(),
        _ => "?".to_owned(),
    };
    let up = state.uploader.snapshot();
    format!(
        "{pending} records pending; uploader {}",
        serde_json::to_value(up.state)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    )
}

/// The daemon's whole life: start, announce readiness, wait for SIGTERM/SIGINT, stop.
pub async fn run(config: Config) -> Result<(), DaemonError> {
    use tokio::signal::unix::{signal, SignalKind};
    // Installed before READY so a stop request right after readiness is never missed.
    let mut term = signal(SignalKind::terminate()).map_err(DaemonError::Signal)?;
    let mut int = signal(SignalKind::interrupt()).map_err(DaemonError::Signal)?;
    let running = start(config).await?;
    let socket = running.endpoints.first().cloned().unwrap_or_default();
    tracing::info!(endpoints = ?running.endpoints, "ready");
    systemd::ready(&status_line(running.state()).await);
    {
        // Tests and scripts wait for this exact line.
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "outpost-agent ready: api on {socket}");
        let _ = out.flush();
    }
    let signal = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    tracing::info!(signal, "shutting down");
    systemd::stopping();
    running.stop().await?;
    tracing::info!("stopped");
    Ok(())
}

//! `[delivery]`: the device polls its hub for the current release of its channel, downloads it
//! (resumable, rate-capped, inside time windows) and installs it through the one install path
//! (`update::install::start`), then reports the outcome to the outbox stream `outpost.updates`.
//!
//! The decision what to do with an offer is made from the slots, so it survives restarts:
//! - the booted slot runs the offered version: nothing (the hub said 204 anyway);
//! - the primary, non-booted slot holds it (installed, the reboot has not happened): nothing;
//! - a slot holding it is marked bad (the health gate rolled it back): not installed again,
//!   until the channel offers another release;
//! - otherwise download (continuing any part on disk) and install.

pub mod chunks;
pub mod delta;
pub mod download;
pub mod view;

use std::sync::Arc;
use std::time::{Duration, Instant};

use outpost_outbox::Outbox;
use outpost_proto::updates::{UpdateOffer, UpdateQuery, UPDATES_PATH};
use rand::Rng;
use serde::Serialize;
use tokio::sync::{watch, Notify};

use crate::config::{DeliveryConfig, HubConfig, UpdateConfig};
use crate::identity::Identity;
use crate::shutdown::Shutdown;
use crate::update::install::{start as start_install, Overrides};
use crate::update::InstallTracker;
use crate::uploader::client::HubClient;
use crate::views::{InstallState, SlotsView};
use download::DownloadError;
pub use view::{CycleView, DeliveryView, Phase};

/// The outbox stream of update outcomes.
pub const STREAM: &str = "outpost.updates";
/// Tries of a release whose download keeps failing verification before it is given up.
const BAD_DOWNLOADS: u32 = 3;

/// An `outpost.updates` record.
#[derive(Debug, Clone, Serialize)]
pub struct UpdateRecord {
    pub release: String,
    pub channel: String,
    pub from_version: Option<String>,
    pub to_version: String,
    /// `installed` or `failed`.
    pub result: &'static str,
    pub reason: Option<String>,
    pub bundle_size: u64,
    /// Bytes fetched from the hub for this release (resumed parts count once).
    pub fetched: u64,
    pub seconds: u64,
}

pub struct Delivery {
    cfg: DeliveryConfig,
    hub: HubConfig,
    update: Arc<UpdateConfig>,
    tracker: Arc<InstallTracker>,
    outbox: Outbox,
    identity: Option<Arc<Identity>>,
    request_timeout: Duration,
    view: watch::Sender<DeliveryView>,
    wake: Notify,
    /// One cycle at a time (the timer and `update now` may race).
    cycle: tokio::sync::Mutex<BadCounts>,
}

/// How a release ended, for its `outpost.updates` record.
struct Outcome {
    result: &'static str,
    reason: Option<String>,
    fetched: u64,
    began: Instant,
}

impl Outcome {
    fn failed(reason: String, fetched: u64, began: Instant) -> Self {
        Outcome {
            result: "failed",
            reason: Some(reason),
            fetched,
            began,
        }
    }
}

#[derive(Default)]
struct BadCounts(std::collections::HashMap<String, u32>);

impl Delivery {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        cfg: DeliveryConfig,
        hub: HubConfig,
        update: Arc<UpdateConfig>,
        tracker: Arc<InstallTracker>,
        outbox: Outbox,
        identity: Option<Arc<Identity>>,
        request_timeout: Duration,
    ) -> Arc<Self> {
        let view = watch::Sender::new(DeliveryView::new(&cfg.channel));
        Arc::new(Delivery {
            cfg,
            hub,
            update,
            tracker,
            outbox,
            identity,
            request_timeout,
            view,
            wake: Notify::new(),
            cycle: tokio::sync::Mutex::new(BadCounts::default()),
        })
    }

    pub fn view(&self) -> DeliveryView {
        self.view.borrow().clone()
    }

    fn client(&self) -> Result<HubClient, String> {
        make_client(&self.hub, self.identity.as_ref(), self.request_timeout)
    }

    /// For a casync bundle: fetches the chunks the booted slot lacks from the hub's store into
    /// the store folder beside the downloaded bundle. Returns the compressed bytes received.
    async fn fetch_delta(
        &self,
        offer: &UpdateOffer,
        bundle: &std::path::Path,
    ) -> Result<u64, String> {
        let Some(store_path) = offer.store_path.clone() else {
            return Ok(0);
        };
        let (cfg, path) = (self.update.clone(), bundle.to_path_buf());
        let missing = tokio::task::spawn_blocking(move || delta::missing_chunks(&cfg, &path))
            .await
            .map_err(|e| format!("delta planning task: {e}"))??;
        let Some((wanted, digest)) = missing else {
            return Ok(0);
        };
        let received = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (hub, identity, timeout) = (
            self.hub.clone(),
            self.identity.clone(),
            self.request_timeout,
        );
        let stats = chunks::prefetch(
            move || make_client(&hub, identity.as_ref(), timeout),
            &store_path,
            wanted,
            digest,
            &delta::store_beside(bundle),
            4,
            received.clone(),
        )
        .await?;
        tracing::info!(release = %offer.release, fetched = stats.fetched, cached = stats.cached, bytes = stats.bytes, "delta chunks ready");
        let received = received.load(std::sync::atomic::Ordering::Relaxed);
        self.view.send_modify(|v| v.fetched += received);
        Ok(received)
    }

    async fn slots(&self) -> Result<SlotsView, String> {
        let cfg = self.update.clone();
        tokio::task::spawn_blocking(move || crate::update::slots::view(&cfg))
            .await
            .map_err(|e| format!("slots task: {e}"))?
            .map_err(|e| crate::oneline(&e.to_string()))
    }

    /// Asks the hub; `Ok(None)` when up to date.
    pub async fn check(&self) -> Result<(Option<UpdateOffer>, Option<String>), String> {
        self.view.send_modify(|v| v.phase = Phase::Checking);
        let result = self.check_inner().await;
        self.view.send_modify(|v| {
            v.phase = Phase::Idle;
            v.last_check = Some(outpost_proto::time::rfc3339_millis(now_ms()));
            if let Ok((offer, current)) = &result {
                v.offer = offer.clone();
                v.current_version = current.clone();
                v.downloaded = offer
                    .as_ref()
                    .map(|o| download::have(&self.cfg.dir, o))
                    .unwrap_or(0);
            }
        });
        result
    }

    async fn check_inner(&self) -> Result<(Option<UpdateOffer>, Option<String>), String> {
        let slots = self.slots().await?;
        let current = booted_version(&slots);
        let query = UpdateQuery {
            compatible: self.update.system.compatible.clone(),
            version: current.clone().unwrap_or_default(),
            channel: self.cfg.channel.clone(),
        };
        let mut client = self.client()?;
        let (status, body) = client
            .get_once(&format!("{UPDATES_PATH}?{}", query.to_query()), 64 * 1024)
            .await
            .map_err(|e| crate::oneline(&e.to_string()))?;
        match status.as_u16() {
            204 => Ok((None, current)),
            200 => {
                let offer: UpdateOffer = serde_json::from_slice(&body)
                    .map_err(|e| format!("the hub's offer does not parse: {e}"))?;
                if !outpost_proto::updates::valid_release_id(&offer.release)
                    || !offer
                        .bundle_path
                        .starts_with(outpost_proto::updates::RELEASES_PREFIX)
                {
                    return Err("the hub's offer names an invalid release".into());
                }
                Ok((Some(offer), current))
            }
            other => Err(format!(
                "the hub answered HTTP {other}: {}",
                crate::oneline(&String::from_utf8_lossy(&body[..body.len().min(200)]))
            )),
        }
    }

    /// One full cycle: check, and (when `install`) download and install what is offered.
    /// `anytime` ignores the download windows (an operator's `update now`).
    pub async fn cycle(&self, install: bool, anytime: bool) -> CycleView {
        let mut bad = self.cycle.lock().await;
        let outcome = self.cycle_inner(&mut bad, install, anytime).await;
        self.view.send_modify(|v| {
            v.phase = Phase::Idle;
            v.last_result = Some(outcome.message.clone());
        });
        outcome
    }

    async fn cycle_inner(&self, bad: &mut BadCounts, install: bool, anytime: bool) -> CycleView {
        let view = |result: &str, message: String, offer: Option<UpdateOffer>, fetched| CycleView {
            result: result.to_owned(),
            message,
            offer,
            fetched,
        };
        let (offer, current) = match self.check().await {
            Ok((Some(o), c)) => (o, c),
            Ok((None, c)) => {
                return view(
                    "up_to_date",
                    format!(
                        "up to date ({} on channel {})",
                        c.as_deref().unwrap_or("unknown version"),
                        self.cfg.channel
                    ),
                    None,
                    0,
                )
            }
            Err(e) => return view("failed", format!("update check failed: {e}"), None, 0),
        };
        if let Some(reason) = self.skip_reason(&offer, bad).await {
            return view("skipped", reason, Some(offer), 0);
        }
        if !install {
            return view(
                "offered",
                format!("release {} ({}) is available", offer.release, offer.version),
                Some(offer),
                0,
            );
        }
        if !anytime && !self.cfg.may_download_at(now_ms() as u64 / 1000) {
            self.view.send_modify(|v| v.phase = Phase::WaitingForWindow);
            return view(
                "waiting_for_window",
                format!(
                    "release {} ({}) waits for a download window",
                    offer.release, offer.version
                ),
                Some(offer),
                0,
            );
        }
        let began = Instant::now();
        let (path, fetched) = match self.download(&offer).await {
            Ok(done) => done,
            Err((e, fetched)) => {
                if let DownloadError::Bad(_) = e {
                    *bad.0.entry(offer.release.clone()).or_default() += 1;
                }
                let given_up = matches!(e, DownloadError::Fatal(_))
                    || bad.0.get(&offer.release).copied().unwrap_or(0) >= BAD_DOWNLOADS;
                let message = format!("downloading release {} failed: {e}", offer.release);
                if given_up {
                    let outcome = Outcome::failed(message.clone(), fetched, began);
                    self.record(&offer, &current, outcome).await;
                }
                return view("failed", message, Some(offer), fetched);
            }
        };
        let fetched = match self.fetch_delta(&offer, &path).await {
            Ok(chunk_bytes) => fetched + chunk_bytes,
            Err(e) => {
                let message = format!(
                    "fetching the chunks of release {} failed: {e}",
                    offer.release
                );
                return view("failed", message, Some(offer), fetched);
            }
        };
        self.view.send_modify(|v| v.phase = Phase::Installing);
        let result = self.install(&path).await;
        // The bundle is either in a slot now or refused: its download is not needed again.
        let _ = tokio::fs::remove_file(&path).await;
        let _ = tokio::fs::remove_dir_all(delta::store_beside(&path)).await;
        match result {
            Ok(()) => {
                let message = format!(
                    "installed release {} ({}); {} bytes fetched; active after the next reboot",
                    offer.release, offer.version, fetched
                );
                let outcome = Outcome {
                    result: "installed",
                    reason: None,
                    fetched,
                    began,
                };
                self.record(&offer, &current, outcome).await;
                view("installed", message, Some(offer), fetched)
            }
            Err(e) => {
                let message = format!("installing release {} failed: {e}", offer.release);
                bad.0.insert(offer.release.clone(), BAD_DOWNLOADS);
                let outcome = Outcome::failed(message.clone(), fetched, began);
                self.record(&offer, &current, outcome).await;
                view("failed", message, Some(offer), fetched)
            }
        }
    }

    /// Why an offer is not acted on, from the slots (installed and waiting for the reboot,
    /// rolled back) or from this run (given up).
    async fn skip_reason(&self, offer: &UpdateOffer, bad: &BadCounts) -> Option<String> {
        if bad.0.get(&offer.release).copied().unwrap_or(0) >= BAD_DOWNLOADS {
            return Some(format!(
                "release {} was given up after failures; waiting for another release",
                offer.release
            ));
        }
        let slots = self.slots().await.ok()?;
        for s in &slots.slots {
            if s.status.bundle_version.as_deref() != Some(offer.version.as_str()) {
                continue;
            }
            if s.boot_status.as_deref() == Some("bad") {
                return Some(format!(
                    "release {} ({}) is in {} which is marked bad (rolled back); not installing it again",
                    offer.release, offer.version, s.name
                ));
            }
            if slots.primary.as_deref() == Some(s.name.as_str())
                && slots.booted.as_deref() != Some(s.name.as_str())
            {
                return Some(format!(
                    "release {} ({}) is installed in {}; waiting for the reboot",
                    offer.release, offer.version, s.name
                ));
            }
        }
        None
    }

    /// Downloads with retries (backoff with jitter) until done, a fatal error or a bad
    /// answer. Returns the finished file and the bytes fetched.
    async fn download(
        &self,
        offer: &UpdateOffer,
    ) -> Result<(std::path::PathBuf, u64), (DownloadError, u64)> {
        if let Some(done) = download::finished(&self.cfg.dir, offer) {
            return Ok((done, 0));
        }
        self.view.send_modify(|v| v.phase = Phase::Downloading);
        let mut fetched = 0u64;
        let mut delay = Duration::from_millis(500);
        let mut transient_failures = 0u32;
        loop {
            let mut client = self
                .client()
                .map_err(|e| (DownloadError::Fatal(e), fetched))?;
            let frame_timeout = self.request_timeout.max(Duration::from_secs(5));
            let result = download::attempt(
                &mut client,
                &self.cfg.dir,
                offer,
                frame_timeout,
                self.cfg.max_bytes_per_second,
                |have| self.view.send_modify(|v| v.downloaded = have),
            )
            .await;
            match result {
                Ok(f) => {
                    fetched += f.received;
                    self.view.send_modify(|v| v.fetched += f.received);
                    if f.have == offer.bundle_size {
                        return download::finish(&self.cfg.dir, offer)
                            .await
                            .map(|p| (p, fetched))
                            .map_err(|e| (e, fetched));
                    }
                    // The hub closed early without an error: continue from here, soon.
                    if f.received > 0 {
                        delay = Duration::from_millis(500);
                    }
                }
                Err((DownloadError::Transient(e), received)) => {
                    // What arrived is on disk: the next attempt resumes after it.
                    fetched += received;
                    self.view.send_modify(|v| v.fetched += received);
                    if received > 0 {
                        // Progress: the link works, only not for long. Retry soon.
                        delay = Duration::from_millis(500);
                        transient_failures = 0;
                    } else {
                        transient_failures += 1;
                    }
                    tracing::info!(release = %offer.release, error = %e, received, retry_in_ms = delay.as_millis() as u64, "download interrupted; resuming");
                    if transient_failures > 20 {
                        return Err((DownloadError::Transient(e), fetched));
                    }
                }
                Err((e, received)) => return Err((e, fetched + received)),
            }
            let jitter = rand::rng().random_range(0..=delay.as_millis() as u64 / 2);
            tokio::time::sleep(delay + Duration::from_millis(jitter)).await;
            delay = (delay * 2).min(Duration::from_secs(60));
        }
    }

    async fn install(&self, bundle: &std::path::Path) -> Result<(), String> {
        let mut rx = self.tracker.subscribe();
        let serial = rx.borrow().serial;
        start_install(
            self.update.clone(),
            self.tracker.clone(),
            &bundle.display().to_string(),
            Overrides::default(),
        )
        .await
        .map_err(|e| e.to_string())?;
        let done = rx
            .wait_for(|o| o.serial > serial && o.view.state != InstallState::Running)
            .await
            .map_err(|_| "the installer went away".to_owned())?
            .view
            .clone();
        match done.state {
            InstallState::Succeeded => Ok(()),
            _ => Err(done.error.unwrap_or_else(|| "install failed".into())),
        }
    }

    async fn record(&self, offer: &UpdateOffer, current: &Option<String>, outcome: Outcome) {
        let Outcome {
            result,
            reason,
            fetched,
            began,
        } = outcome;
        let record = UpdateRecord {
            release: offer.release.clone(),
            channel: offer.channel.clone(),
            from_version: current.clone(),
            to_version: offer.version.clone(),
            result,
            reason,
            bundle_size: offer.bundle_size,
            fetched,
            seconds: began.elapsed().as_secs(),
        };
        let id = format!("update:{}:{result}", offer.release);
        crate::records::record_once(&self.outbox, STREAM, &id, &record, "the update outcome").await;
    }

    /// Starts a cycle now (`outpostctl update now` runs one itself; this is for the timer).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// The polling loop: a first check shortly after start, then every interval ± jitter.
    pub async fn run(self: Arc<Self>, mut shutdown: Shutdown) {
        let mut wait = Duration::from_secs(5) + self.jittered(Duration::ZERO);
        loop {
            tokio::select! {
                _ = shutdown.wait() => return,
                _ = tokio::time::sleep(wait) => {}
                _ = self.wake.notified() => {}
            }
            let outcome = self.cycle(self.cfg.auto_install, false).await;
            tracing::info!(result = %outcome.result, "{}", outcome.message);
            wait = self.jittered(self.cfg.interval);
        }
    }

    fn jittered(&self, base: Duration) -> Duration {
        let j = self.cfg.jitter.as_millis() as u64;
        if j == 0 {
            return base;
        }
        let offset = rand::rng().random_range(0..=2 * j) as i64 - j as i64;
        let ms = (base.as_millis() as i64 + offset).max(1000);
        Duration::from_millis(ms as u64)
    }
}

pub(crate) fn make_client(
    hub: &HubConfig,
    identity: Option<&Arc<Identity>>,
    timeout: Duration,
) -> Result<HubClient, String> {
    let tls = match identity {
        Some(identity) => identity.client_config()?,
        None => {
            crate::uploader::tls::client_config(hub).map_err(|e| crate::oneline(&e.to_string()))?
        }
    };
    let client = HubClient::new(hub, tls, timeout).map_err(|e| crate::oneline(&e.to_string()))?;
    Ok(match identity {
        Some(identity) => client.with_time_floor(identity.time_floor()),
        None => client,
    })
}

/// The bundle version of the booted slot (what the device runs).
fn booted_version(slots: &SlotsView) -> Option<String> {
    let booted = slots.booted.as_deref()?;
    slots
        .slots
        .iter()
        .find(|s| s.name == booted)
        .and_then(|s| s.status.bundle_version.clone())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;

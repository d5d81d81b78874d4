//! The health gate in the daemon: `outpost-health`'s driver wired to the agent's own pieces.
//!
//! | file | capability |
//! |---|---|
//! | [`context`] | what this boot is: booted slot, its central.raucs keys, boot id, backend family |
//! | [`probes`] | the built-in checks: local API, outbox writable, uploaded once |
//! | [`records`] | decisions go to the outbox stream `outpost.health` |
//! | [`bus`] | systemd1 and login1 over D-Bus, connected on first use |
//! | [`clock`] | `CLOCK_BOOTTIME` (keeps counting through suspend and agent restarts) |
//!
//! The gate runs once per agent start, only when `[update]` is configured (without slots
//! there is nothing to commit). Its status is published on `AppState::health` for
//! `GET /v1/health`, `outpostctl health` and D-Bus.

pub mod bus;
pub mod clock;
pub mod context;
pub mod probes;
pub mod records;

use std::sync::Arc;
use std::time::Duration;

use outpost_health::driver::{Capabilities, Driver};
use outpost_health::status::{HealthStatus, Phase};
use outpost_health::Outcome;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::api::AppState;
use crate::update::tracker::Hold;
use crate::update::InstallTracker;

/// File in `state_dir` holding the gate's decisions across restarts and reboots.
pub const STATE_FILE: &str = "health.json";

/// Pauses before the gate runs again after an error (doubling up to the maximum).
const RETRY_FIRST: Duration = Duration::from_secs(5);
const RETRY_MAX: Duration = Duration::from_secs(300);

/// Starts the gate for this boot, if updates are configured. The task ends with the gate's
/// verdict; the daemon keeps running either way (a failed gate has asked for a reboot).
pub fn start(state: Arc<AppState>) -> Option<JoinHandle<()>> {
    let Some(update) = state.update.clone() else {
        state.health.send_modify(|s| {
            s.phase = Phase::NotATrial;
            s.reason = Some("updates are not configured ([update] is missing)".into());
        });
        return None;
    };
    state.install.hold(Hold::Pending);
    tokio::spawn(hold_installs_during_trials(
        state.health.subscribe(),
        state.install.clone(),
    ));
    Some(tokio::spawn(async move {
        let prepared = tokio::task::spawn_blocking({
            let tracker = state.install.clone();
            move || context::prepare(&update, tracker)
        })
        .await;
        let (ctx, bootloader) = match prepared {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => return fail(&state, e.to_string()),
            Err(e) => return fail(&state, format!("internal task failed: {e}")),
        };
        let bus = Arc::new(
            bus::LazyBus::new(state.config.dbus.as_ref().map(|d| d.bus.clone()))
                .with_reboot(state.config.health.reboot),
        );
        let caps = Capabilities {
            bootloader,
            systemd: bus.clone(),
            logind: bus,
            records: Arc::new(records::OutboxSink::new(state.outbox.clone())),
            clock: Arc::new(clock::BootClock),
            builtins: Arc::new(probes::Probes::new(state.clone())),
        };
        let path = state.config.state_dir.join(STATE_FILE);
        let driver = Driver::new(gate_config(&state), path, caps).with_status(state.health.clone());
        tracing::info!(slot = %ctx.booted, family = ctx.family.as_str(), "health gate: assessing this boot");
        let mut pause = RETRY_FIRST;
        loop {
            match driver.run(ctx.clone()).await {
                Ok(Outcome::NotATrial) => tracing::info!("health gate: not a trial boot"),
                Ok(Outcome::Committed) => tracing::info!("health gate: slot committed"),
                Ok(Outcome::Failed { reason }) => {
                    tracing::error!(%reason, "health gate failed: slot marked bad, reboot requested")
                }
                Ok(Outcome::BootedBadSlot { reason }) => {
                    tracing::error!(%reason, "booted a slot the gate marked bad")
                }
                // The state file holds what was decided, so running again resumes exactly
                // where it stopped (a full outbox, logind not answering the reboot yet).
                Err(e) => {
                    tracing::error!(error = %e, retry_in = ?pause, "health gate stopped; retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(RETRY_MAX);
                    continue;
                }
            }
            return;
        }
    }))
}

/// Mirrors the gate's phase into the install tracker's hold until the gate has decided. A gate
/// that stopped on an error inside a trial keeps installs held while it retries; one that
/// could not even assess the boot (no trial known) lets them through.
async fn hold_installs_during_trials(
    mut rx: watch::Receiver<HealthStatus>,
    install: Arc<InstallTracker>,
) {
    loop {
        let hold = {
            let s = rx.borrow_and_update();
            match s.phase {
                Phase::Starting => Hold::Pending,
                Phase::Error if s.slot.is_some() => Hold::Held(format!(
                    "the health gate of slot {} stopped on an error and is retrying ({}); \
                     installing now would overwrite its fallback",
                    s.slot.as_deref().unwrap_or("?"),
                    s.reason.as_deref().unwrap_or("see the agent's log")
                )),
                Phase::Checking => Hold::Held(format!(
                    "slot {} is on trial (health gate checking); installing now would overwrite \
                     its fallback: wait until it is committed (outpostctl health --wait)",
                    s.slot.as_deref().unwrap_or("?")
                )),
                _ => Hold::Open,
            }
        };
        install.hold(hold);
        // Watch for the daemon's life (a retry after an error goes back to Checking); the
        // loop ends when the daemon's state, which owns the sender, is dropped.
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// `[health]`, plus `workloads-ready` when the booted slot carries a workload set: OS and
/// workloads are one decision (docs/workloads.md).
fn gate_config(state: &AppState) -> outpost_health::HealthConfig {
    let mut cfg = state.config.health.clone();
    let carries_set = state
        .workloads
        .as_ref()
        .is_some_and(|w| w.config().gate && w.slot_has_set());
    let listed = cfg.checks.iter().any(|c| {
        c.kind
            == outpost_health::CheckKind::Builtin(outpost_health::checks::Builtin::WorkloadsReady)
    });
    if carries_set && !listed {
        cfg.checks.push(outpost_health::CheckConfig {
            name: "workloads-ready".into(),
            kind: outpost_health::CheckKind::Builtin(
                outpost_health::checks::Builtin::WorkloadsReady,
            ),
            timeout: outpost_health::checks::DEFAULT_TIMEOUT,
            required: true,
        });
    }
    cfg
}

fn fail(state: &AppState, reason: String) {
    tracing::error!(%reason, "health gate cannot assess this boot");
    state.health.send_replace(HealthStatus {
        phase: Phase::Error,
        reason: Some(reason),
        ..HealthStatus::default()
    });
}

//! The agent on D-Bus (`[dbus]`): RAUC's `de.pengutronix.rauc.Installer`, so RAUC's CLI and
//! RAUC clients drive this agent's installs and marks, and `io.outpost.Agent1` for what RAUC
//! has no word for (health gate, outbox, identity, publishing). The protocol side lives in
//! `outpost-dbus`; this module implements its two backend traits over the daemon's pieces:
//!
//! * [`installer`]: installs through [`crate::update::install::start`] (the same path as
//!   `POST /v1/install`), slots and marks through [`crate::update::slots`].
//! * [`slot_status`]: RAUC's `GetSlotStatus` keys from the `GET /v1/slots` view.
//! * [`agent`]: `io.outpost.Agent1` over the outbox, the health watch and the configuration.
//!
//! Serving is optional and never fatal: the daemon logs a failure to get the bus and goes on
//! without it (the outbox and the health gate matter more).

pub mod agent;
pub mod installer;
pub mod slot_status;

use std::sync::Arc;

use outpost_dbus::agent1::AgentBackend;
use outpost_dbus::rauc::InstallerBackend;
use outpost_dbus::{Bus, BusServer, ServeConfig, ServeError};
use tokio::task::JoinHandle;

use crate::api::AppState;
use crate::config::{BusAddress, DbusConfig};

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("D-Bus: {0}")]
    Serve(#[from] ServeError),
}

/// What is being served; dropping it stops serving (the connection closes, the names go).
pub struct BusHandle {
    server: Option<BusServer>,
    forward: Option<JoinHandle<()>>,
}

impl BusHandle {
    /// The well-known names owned.
    pub fn names(&self) -> &[String] {
        self.server.as_ref().map_or(&[], |s| s.names())
    }

    /// Releases the names and stops.
    pub async fn stop(mut self) {
        if let Some(f) = self.forward.take() {
            f.abort();
        }
        if let Some(s) = self.server.take() {
            s.stop().await;
        }
    }
}

impl Drop for BusHandle {
    fn drop(&mut self) {
        if let Some(f) = self.forward.take() {
            f.abort();
        }
    }
}

/// Connects to `cfg.bus` and serves RAUC's installer (when `[update]` is configured) and
/// `io.outpost.Agent1` under the configured names.
pub async fn serve(state: Arc<AppState>, cfg: &DbusConfig) -> Result<BusHandle, BusError> {
    let mut forward = None;
    let installer = match (&cfg.rauc_name, &state.update) {
        (Some(name), Some(update)) => {
            let (backend, task) =
                installer::RaucInstaller::new(update.clone(), state.install.clone());
            forward = Some(task);
            Some((name.clone(), Arc::new(backend) as Arc<dyn InstallerBackend>))
        }
        (Some(name), None) => {
            // Claiming RAUC's name without an installer would only hide a real RAUC.
            tracing::warn!(%name, "D-Bus: no [update] section, so RAUC's API is not served");
            None
        }
        (None, _) => None,
    };
    let agent = cfg.agent_name.as_ref().map(|name| {
        (
            name.clone(),
            Arc::new(agent::AgentApi::new(state.clone())) as Arc<dyn AgentBackend>,
        )
    });
    if installer.is_none() && agent.is_none() {
        tracing::info!("D-Bus: nothing to serve");
        return Ok(BusHandle {
            server: None,
            forward,
        });
    }
    let bus = match &cfg.bus {
        BusAddress::System => Bus::System,
        BusAddress::Session => Bus::Session,
        BusAddress::Address(a) => Bus::Address(a.clone()),
    };
    let server = outpost_dbus::serve(ServeConfig {
        bus,
        installer,
        agent,
    })
    .await?;
    tracing::info!(bus = %cfg.bus.describe(), names = ?server.names(), "D-Bus: serving");
    Ok(BusHandle {
        server: Some(server),
        forward,
    })
}

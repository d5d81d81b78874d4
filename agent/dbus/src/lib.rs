//! `outpost-dbus`: the only crate that imports zbus. Clients for the few D-Bus calls the agent
//! makes, implementing `outpost-health`'s capability traits, and the servers the agent offers,
//! each behind a trait of plain Rust types that the daemon implements:
//!
//! | module | bus name | calls |
//! |---|---|---|
//! | [`systemd`] | `org.freedesktop.systemd1` | `Manager.GetUnit`, `Manager.LoadUnit`, `Manager.{Start,Stop,Restart}Unit(name, "replace")`, `Unit.{LoadState,ActiveState,SubState}` |
//! | [`logind`] | `org.freedesktop.login1` | `Manager.Reboot(false)` |
//! | [`rauc`] (server) | `de.pengutronix.rauc` | RAUC 1.8's `de.pengutronix.rauc.Installer` at `/`, over [`rauc::InstallerBackend`] |
//! | [`agent1`] (server) | `io.outpost.Agent` | `io.outpost.Agent1` at `/io/outpost/Agent1`, over [`agent1::AgentBackend`] |
//! | [`server`] | | connects, exports both, requests the names: [`serve`] |
//! | `testing` (feature `testing`) | both clients' | a private `dbus-daemon` and a fake service answering those calls |
//!
//! zbus 5 runs on the caller's tokio runtime (feature `tokio`); no other executor is started.
#![forbid(unsafe_code)]

pub mod agent1;
pub mod logind;
pub mod rauc;
pub mod server;
pub mod systemd;
#[cfg(feature = "testing")]
pub mod testing;

pub use logind::DbusLogind;
pub use server::{serve, Bus, BusServer, ServeConfig, ServeError};
pub use systemd::DbusSystemd;

/// Errors of connecting to a bus.
#[derive(Debug, thiserror::Error)]
pub enum DbusError {
    #[error("D-Bus address {address:?}: {source}")]
    Address {
        address: String,
        #[source]
        source: zbus::Error,
    },
    #[error("connecting to the {bus} bus: {source}")]
    Connect {
        bus: &'static str,
        #[source]
        source: zbus::Error,
    },
}

/// Connects to the system bus, or to `address` (a D-Bus address such as
/// `unix:path=/run/dbus/system_bus_socket`) when given.
pub async fn connect(address: Option<&str>) -> Result<zbus::Connection, DbusError> {
    match address {
        None => zbus::Connection::system()
            .await
            .map_err(|source| DbusError::Connect {
                bus: "system",
                source,
            }),
        Some(a) => zbus::connection::Builder::address(a)
            .map_err(|source| DbusError::Address {
                address: a.to_owned(),
                source,
            })?
            .build()
            .await
            .map_err(|source| DbusError::Connect {
                bus: "given",
                source,
            }),
    }
}

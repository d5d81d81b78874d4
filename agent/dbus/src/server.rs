//! Serving the agent's interfaces: one connection, objects exported before any name is
//! requested (a client that sees the name finds the object), names requested without queueing
//! (if a real `rauc service` owns `de.pengutronix.rauc`, serving fails instead of waiting
//! silently behind it).

use std::sync::Arc;

use tokio::task::JoinHandle;
use zbus::fdo::{RequestNameFlags, RequestNameReply};

use crate::agent1::{self, interface::Agent1, AgentBackend};
use crate::rauc::{self, interface::Installer, InstallerBackend};

/// Which bus to serve on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bus {
    System,
    Session,
    /// A D-Bus address (`unix:path=/run/dbus/system_bus_socket`).
    Address(String),
}

impl std::fmt::Display for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Bus::System => f.write_str("system"),
            Bus::Session => f.write_str("session"),
            Bus::Address(a) => f.write_str(a),
        }
    }
}

/// What to serve: each interface under its well-known name, or not at all.
pub struct ServeConfig {
    pub bus: Bus,
    pub installer: Option<(String, Arc<dyn InstallerBackend>)>,
    pub agent: Option<(String, Arc<dyn AgentBackend>)>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("connecting to the {bus} bus: {source}")]
    Connect {
        bus: String,
        #[source]
        source: zbus::Error,
    },
    #[error("serving {what}: {source}")]
    Export {
        what: &'static str,
        #[source]
        source: zbus::Error,
    },
    #[error("the bus name {name} is already owned by another peer (a real `rauc service`? set dbus.rauc_name = \"\" to serve beside it, or stop it)")]
    NameTaken { name: String },
    #[error("requesting the bus name {name}: {source}")]
    Name {
        name: String,
        #[source]
        source: zbus::Error,
    },
}

/// Serving until stopped or dropped (dropping closes the connection, which releases the
/// names).
pub struct BusServer {
    conn: zbus::Connection,
    names: Vec<String>,
    follower: Option<JoinHandle<()>>,
}

pub async fn serve(cfg: ServeConfig) -> Result<BusServer, ServeError> {
    let bus = cfg.bus.to_string();
    let connect = |source| ServeError::Connect {
        bus: bus.clone(),
        source,
    };
    let mut builder = match &cfg.bus {
        Bus::System => zbus::connection::Builder::system(),
        Bus::Session => zbus::connection::Builder::session(),
        Bus::Address(a) => zbus::connection::Builder::address(a.as_str()),
    }
    .map_err(connect)?;
    let mut following = None;
    if let Some((_, backend)) = &cfg.installer {
        let (installer, f) = Installer::new(backend.clone());
        following = Some(f);
        builder = builder
            .serve_at(rauc::OBJECT_PATH, installer)
            .map_err(|source| ServeError::Export {
                what: rauc::INTERFACE,
                source,
            })?;
    }
    if let Some((_, backend)) = &cfg.agent {
        builder = builder
            .serve_at(agent1::OBJECT_PATH, Agent1::new(backend.clone()))
            .map_err(|source| ServeError::Export {
                what: agent1::INTERFACE,
                source,
            })?;
    }
    let conn = builder.build().await.map_err(connect)?;

    let follower = match following {
        Some(f) => {
            let iface = conn
                .object_server()
                .interface::<_, Installer>(rauc::OBJECT_PATH)
                .await
                .map_err(|source| ServeError::Export {
                    what: rauc::INTERFACE,
                    source,
                })?;
            Some(tokio::spawn(rauc::interface::follow(iface, f)))
        }
        None => None,
    };
    let mut server = BusServer {
        conn,
        names: Vec::new(),
        follower,
    };
    let names = cfg
        .installer
        .iter()
        .map(|(n, _)| n)
        .chain(cfg.agent.iter().map(|(n, _)| n));
    for name in names {
        let reply = server
            .conn
            .request_name_with_flags(name.as_str(), RequestNameFlags::DoNotQueue.into())
            .await;
        match reply {
            Ok(RequestNameReply::PrimaryOwner | RequestNameReply::AlreadyOwner) => {
                server.names.push(name.clone())
            }
            Ok(RequestNameReply::Exists | RequestNameReply::InQueue)
            | Err(zbus::Error::NameTaken) => {
                return Err(ServeError::NameTaken { name: name.clone() })
            }
            Err(source) => {
                return Err(ServeError::Name {
                    name: name.clone(),
                    source,
                })
            }
        }
    }
    Ok(server)
}

impl BusServer {
    /// The well-known names now owned.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// This connection's unique name (`:1.42`).
    pub fn unique_name(&self) -> Option<String> {
        self.conn.unique_name().map(|n| n.to_string())
    }

    /// Releases the names and stops announcing installs.
    pub async fn stop(mut self) {
        if let Some(f) = self.follower.take() {
            f.abort();
        }
        for name in std::mem::take(&mut self.names) {
            if let Err(e) = self.conn.release_name(name.as_str()).await {
                tracing::debug!(%name, error = %e, "D-Bus: releasing name");
            }
        }
    }
}

impl Drop for BusServer {
    fn drop(&mut self) {
        if let Some(f) = self.follower.take() {
            f.abort();
        }
    }
}

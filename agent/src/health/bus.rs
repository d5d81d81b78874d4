//! systemd1 and login1 for the gate, over the configured bus (`[dbus] bus`, else the system
//! bus). The connection is made on first use and kept: a gate with no systemd-unit check that
//! commits never touches D-Bus, so a device whose bus is down can still commit.

use outpost_dbus::{DbusLogind, DbusSystemd};
use outpost_health::runner::systemd::{ClientError, Logind, SystemdClient, UnitState};
use outpost_health::runner::BoxFuture;
use tokio::sync::OnceCell;

use crate::config::BusAddress;

pub struct LazyBus {
    bus: Option<BusAddress>,
    clients: OnceCell<(DbusSystemd, DbusLogind)>,
}

impl LazyBus {
    /// `None`: the system bus.
    pub fn new(bus: Option<BusAddress>) -> Self {
        Self {
            bus,
            clients: OnceCell::new(),
        }
    }

    async fn clients(&self) -> Result<&(DbusSystemd, DbusLogind), ClientError> {
        self.clients
            .get_or_try_init(|| async {
                let address = match &self.bus {
                    None | Some(BusAddress::System) => None,
                    Some(BusAddress::Session) => {
                        Some(std::env::var("DBUS_SESSION_BUS_ADDRESS").map_err(|_| {
                            ClientError(
                                "[dbus] bus = \"session\" but DBUS_SESSION_BUS_ADDRESS is not set"
                                    .into(),
                            )
                        })?)
                    }
                    Some(BusAddress::Address(a)) => Some(a.clone()),
                };
                let conn = outpost_dbus::connect(address.as_deref())
                    .await
                    .map_err(|e| ClientError(e.to_string()))?;
                Ok((DbusSystemd::new(conn.clone()), DbusLogind::new(conn)))
            })
            .await
    }
}

impl SystemdClient for LazyBus {
    fn unit_state<'a>(&'a self, unit: &'a str) -> BoxFuture<'a, Result<UnitState, ClientError>> {
        Box::pin(async move { SystemdClient::unit_state(&self.clients().await?.0, unit).await })
    }

    fn start_unit<'a>(&'a self, unit: &'a str) -> BoxFuture<'a, Result<(), ClientError>> {
        Box::pin(async move { SystemdClient::start_unit(&self.clients().await?.0, unit).await })
    }

    fn stop_unit<'a>(&'a self, unit: &'a str) -> BoxFuture<'a, Result<(), ClientError>> {
        Box::pin(async move { SystemdClient::stop_unit(&self.clients().await?.0, unit).await })
    }

    fn restart_unit<'a>(&'a self, unit: &'a str) -> BoxFuture<'a, Result<(), ClientError>> {
        Box::pin(async move { SystemdClient::restart_unit(&self.clients().await?.0, unit).await })
    }
}

impl Logind for LazyBus {
    fn reboot(&self) -> BoxFuture<'_, Result<(), ClientError>> {
        Box::pin(async move { Logind::reboot(&self.clients().await?.1).await })
    }
}

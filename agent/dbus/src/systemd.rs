//! Unit states over `org.freedesktop.systemd1`: `Manager.GetUnit` (the unit is loaded), else
//! `Manager.LoadUnit` (loads it, or answers a `not-found` unit), then the unit object's
//! `LoadState`, `ActiveState` and `SubState` read fresh each time (no property cache: a check
//! must see the state now, not the last signal received). Unit control: `Manager.StartUnit`,
//! `StopUnit`, `RestartUnit` with mode `replace`, returning once the job is queued.

use outpost_health::runner::systemd::{ClientError, SystemdClient, UnitState};
use outpost_health::runner::BoxFuture;
use zbus::proxy::CacheProperties;
use zbus::zvariant::OwnedObjectPath;

#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Manager",
    default_service = "org.freedesktop.systemd1",
    default_path = "/org/freedesktop/systemd1"
)]
trait Manager {
    fn get_unit(&self, name: &str) -> zbus::Result<OwnedObjectPath>;
    fn load_unit(&self, name: &str) -> zbus::Result<OwnedObjectPath>;
    fn start_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    fn stop_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    fn restart_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
}

/// A unit control call of [`DbusSystemd::control`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitControl {
    Start,
    Stop,
    Restart,
}

#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Unit",
    default_service = "org.freedesktop.systemd1"
)]
trait Unit {
    #[zbus(property)]
    fn load_state(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn active_state(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn sub_state(&self) -> zbus::Result<String>;
}

/// [`SystemdClient`] over a D-Bus connection (normally the system bus).
#[derive(Debug, Clone)]
pub struct DbusSystemd {
    conn: zbus::Connection,
}

impl DbusSystemd {
    pub fn new(conn: zbus::Connection) -> Self {
        Self { conn }
    }

    pub async fn unit_state(&self, unit: &str) -> Result<UnitState, zbus::Error> {
        let manager = ManagerProxy::new(&self.conn).await?;
        let path = match manager.get_unit(unit).await {
            Ok(p) => p,
            // NoSuchUnit: not loaded right now. LoadUnit loads it (or reports not-found).
            Err(zbus::Error::MethodError(..)) => manager.load_unit(unit).await?,
            Err(e) => return Err(e),
        };
        let proxy = UnitProxy::builder(&self.conn)
            .path(path)?
            .cache_properties(CacheProperties::No)
            .build()
            .await?;
        Ok(UnitState {
            load_state: proxy.load_state().await?,
            active_state: proxy.active_state().await?,
            sub_state: proxy.sub_state().await?,
        })
    }

    /// Queues a start/stop/restart job (mode `replace`); returns the job's object path.
    pub async fn control(
        &self,
        unit: &str,
        what: UnitControl,
    ) -> Result<OwnedObjectPath, zbus::Error> {
        let manager = ManagerProxy::new(&self.conn).await?;
        match what {
            UnitControl::Start => manager.start_unit(unit, "replace").await,
            UnitControl::Stop => manager.stop_unit(unit, "replace").await,
            UnitControl::Restart => manager.restart_unit(unit, "replace").await,
        }
    }

    fn control_boxed<'a>(
        &'a self,
        unit: &'a str,
        what: UnitControl,
    ) -> BoxFuture<'a, Result<(), ClientError>> {
        Box::pin(async move {
            self.control(unit, what)
                .await
                .map(|_job| ())
                .map_err(|e| ClientError(format!("systemd1: {what:?} {unit}: {e}")))
        })
    }
}

impl SystemdClient for DbusSystemd {
    fn unit_state<'a>(&'a self, unit: &'a str) -> BoxFuture<'a, Result<UnitState, ClientError>> {
        Box::pin(async move {
            DbusSystemd::unit_state(self, unit)
                .await
                .map_err(|e| ClientError(format!("systemd1: {e}")))
        })
    }

    fn start_unit<'a>(&'a self, unit: &'a str) -> BoxFuture<'a, Result<(), ClientError>> {
        self.control_boxed(unit, UnitControl::Start)
    }

    fn stop_unit<'a>(&'a self, unit: &'a str) -> BoxFuture<'a, Result<(), ClientError>> {
        self.control_boxed(unit, UnitControl::Stop)
    }

    fn restart_unit<'a>(&'a self, unit: &'a str) -> BoxFuture<'a, Result<(), ClientError>> {
        self.control_boxed(unit, UnitControl::Restart)
    }
}

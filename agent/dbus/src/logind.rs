//! Reboot through `org.freedesktop.login1.Manager.Reboot(false)`: logind runs the normal
//! shutdown (units stopped, file systems synced), unlike a hard reset. `interactive=false`:
//! never wait for a polkit prompt on a device nobody looks at.

use outpost_health::runner::systemd::{ClientError, Logind};
use outpost_health::runner::BoxFuture;

#[zbus::proxy(
    interface = "org.freedesktop.login1.Manager",
    default_service = "org.freedesktop.login1",
    default_path = "/org/freedesktop/login1"
)]
trait Login1Manager {
    fn reboot(&self, interactive: bool) -> zbus::Result<()>;
}

#[derive(Debug, Clone)]
pub struct DbusLogind {
    conn: zbus::Connection,
}

impl DbusLogind {
    pub fn new(conn: zbus::Connection) -> Self {
        Self { conn }
    }

    pub async fn reboot(&self) -> Result<(), zbus::Error> {
        Login1ManagerProxy::new(&self.conn)
            .await?
            .reboot(false)
            .await
    }
}

impl Logind for DbusLogind {
    fn reboot(&self) -> BoxFuture<'_, Result<(), ClientError>> {
        Box::pin(async move {
            DbusLogind::reboot(self)
                .await
                .map_err(|e| ClientError(format!("login1: {e}")))
        })
    }
}

//! systemd1 and login1 for the gate, over the configured bus (`[dbus] bus`, else the system
//! bus). The connection is made on first use and kept: a gate with no systemd-unit check that
//! commits never touches D-Bus, so a device whose bus is down can still commit.
//!
//! A failed trial's reboot follows `[health] reboot` (`outpost_health::checks::RebootMethod`):
//! logind, or `sync()` + `reboot(RB_AUTOBOOT)` when told so or (`auto`) when the system bus
//! cannot be reached at all (a device without systemd or D-Bus). Each path logs which it took.

use std::future::Future;
use std::time::Duration;

use outpost_dbus::{DbusLogind, DbusSystemd};
use outpost_health::checks::{RebootMethod, RebootPath};
use outpost_health::runner::systemd::{ClientError, Logind, SystemdClient, UnitState};
use outpost_health::runner::BoxFuture;
use tokio::sync::OnceCell;

use crate::config::BusAddress;

/// Pause between the "rebooting with reboot(2)" log line and the syscall, so the line leaves
/// the process (journald, a console pipe) before the machine stops.
const SYSCALL_LOG_GRACE: Duration = Duration::from_secs(1);

pub struct LazyBus {
    bus: Option<BusAddress>,
    clients: OnceCell<(DbusSystemd, DbusLogind)>,
    reboot: RebootMethod,
}

impl LazyBus {
    /// `None`: the system bus.
    pub fn new(bus: Option<BusAddress>) -> Self {
        Self {
            bus,
            clients: OnceCell::new(),
            reboot: RebootMethod::default(),
        }
    }

    /// How [`Logind::reboot`] reboots (`[health] reboot`; default `auto`).
    pub fn with_reboot(mut self, method: RebootMethod) -> Self {
        self.reboot = method;
        self
    }

    fn system_bus(&self) -> bool {
        matches!(self.bus, None | Some(BusAddress::System))
    }

    async fn logind_reboot(&self) -> Result<(), LogindError> {
        let clients = self.clients().await.map_err(LogindError::Unreachable)?;
        Logind::reboot(&clients.1).await.map_err(LogindError::Call)
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
        Box::pin(async move {
            let path = self.reboot.path(self.system_bus());
            reboot_by(path, self.reboot, self.logind_reboot(), sys_reboot()).await
        })
    }
}

/// Why logind did not reboot.
#[derive(Debug)]
enum LogindError {
    /// No connection to the bus.
    Unreachable(ClientError),
    /// Connected, but the call failed (logind missing, refusing, ...).
    Call(ClientError),
}

/// Carries out `path`: `logind` and `syscall` are only awaited when the path takes them, so
/// the choice is tested with stand-ins (`syscall` returns only when the reboot failed).
async fn reboot_by(
    path: RebootPath,
    method: RebootMethod,
    logind: impl Future<Output = Result<(), LogindError>>,
    syscall: impl Future<Output = ClientError>,
) -> Result<(), ClientError> {
    if !path.asks_logind() {
        tracing::warn!(
            reboot = method.as_str(),
            "rebooting with sync() + reboot(RB_AUTOBOOT) ([health] reboot = \"syscall\")"
        );
        return Err(syscall.await);
    }
    tracing::info!(reboot = method.as_str(), "rebooting: asking logind");
    match logind.await {
        Ok(()) => {
            tracing::info!("logind accepted the reboot");
            Ok(())
        }
        Err(LogindError::Unreachable(e)) if path.syscall_when_unreachable() => {
            tracing::warn!(
                error = %e,
                "system bus unreachable; rebooting with sync() + reboot(RB_AUTOBOOT) \
                 ([health] reboot = \"auto\")"
            );
            let failed = syscall.await;
            Err(ClientError(format!(
                "system bus unreachable ({e}), and {failed}"
            )))
        }
        Err(LogindError::Unreachable(e) | LogindError::Call(e)) => Err(e),
    }
}

/// `sync()` then `reboot(RB_AUTOBOOT)`. Returns only if the kernel refused (no
/// `CAP_SYS_BOOT`), with that error.
async fn sys_reboot() -> ClientError {
    tokio::time::sleep(SYSCALL_LOG_GRACE).await;
    let done = tokio::task::spawn_blocking(|| {
        nix::unistd::sync();
        // Returns only on failure (Infallible on success: the machine is gone).
        match nix::sys::reboot::reboot(nix::sys::reboot::RebootMode::RB_AUTOBOOT) {
            Err(errno) => errno,
            Ok(never) => match never {},
        }
    })
    .await;
    match done {
        Ok(errno) => ClientError(format!("reboot(RB_AUTOBOOT) failed: {errno}")),
        Err(e) => ClientError(format!("reboot(RB_AUTOBOOT) task failed: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    /// Runs `reboot_by` with stand-ins; returns its result and whether each was awaited.
    async fn run(
        method: RebootMethod,
        system_bus: bool,
        logind: Result<(), LogindError>,
    ) -> (Result<(), ClientError>, bool, bool) {
        let asked = AtomicBool::new(false);
        let synced = AtomicBool::new(false);
        let r = reboot_by(
            method.path(system_bus),
            method,
            async {
                asked.store(true, Ordering::SeqCst);
                logind
            },
            async {
                synced.store(true, Ordering::SeqCst);
                ClientError("reboot(RB_AUTOBOOT) failed: EPERM".into())
            },
        )
        .await;
        (r, asked.into_inner(), synced.into_inner())
    }

    fn unreachable() -> Result<(), LogindError> {
        Err(LogindError::Unreachable(ClientError("no socket".into())))
    }

    #[tokio::test]
    async fn auto_on_the_system_bus_uses_logind_when_it_answers() {
        let (r, asked, synced) = run(RebootMethod::Auto, true, Ok(())).await;
        assert!(r.is_ok() && asked && !synced);
    }

    #[tokio::test]
    async fn auto_falls_back_to_the_syscall_when_the_system_bus_is_unreachable() {
        let (r, asked, synced) = run(RebootMethod::Auto, true, unreachable()).await;
        assert!(asked && synced);
        let e = r.unwrap_err().0;
        assert!(e.contains("no socket") && e.contains("EPERM"), "{e}");
    }

    #[tokio::test]
    async fn auto_never_uses_the_syscall_when_logind_itself_fails() {
        let refused = Err(LogindError::Call(ClientError("login1: denied".into())));
        let (r, asked, synced) = run(RebootMethod::Auto, true, refused).await;
        assert!(asked && !synced);
        assert_eq!(r.unwrap_err().0, "login1: denied");
    }

    #[tokio::test]
    async fn auto_on_a_configured_bus_never_uses_the_syscall() {
        let (r, asked, synced) = run(RebootMethod::Auto, false, unreachable()).await;
        assert!(asked && !synced);
        assert_eq!(r.unwrap_err().0, "no socket");
    }

    #[tokio::test]
    async fn logind_only_reports_the_unreachable_bus() {
        let (r, asked, synced) = run(RebootMethod::Logind, true, unreachable()).await;
        assert!(asked && !synced);
        assert_eq!(r.unwrap_err().0, "no socket");
    }

    #[tokio::test]
    async fn syscall_never_touches_the_bus() {
        let (r, asked, synced) = run(RebootMethod::Syscall, false, Ok(())).await;
        assert!(!asked && synced);
        assert!(r.unwrap_err().0.contains("EPERM"));
    }

    #[test]
    fn only_the_system_bus_counts_as_the_system_bus() {
        assert!(LazyBus::new(None).system_bus());
        assert!(LazyBus::new(Some(BusAddress::System)).system_bus());
        assert!(!LazyBus::new(Some(BusAddress::Session)).system_bus());
        assert!(!LazyBus::new(Some(BusAddress::Address("unix:path=/x".into()))).system_bus());
    }
}

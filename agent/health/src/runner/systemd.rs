//! The systemd-unit check, over a [`SystemdClient`] (implemented over D-Bus by `outpost-dbus`;
//! this crate does not speak D-Bus).

use super::{BoxFuture, CheckOutcome};

/// A unit's states as `org.freedesktop.systemd1.Unit` reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitState {
    /// `loaded`, `not-found`, `masked`, ...
    pub load_state: String,
    /// `active`, `activating`, `failed`, ...
    pub active_state: String,
    pub sub_state: String,
}

/// An error from a capability client (D-Bus, logind), as text: the gate only reports it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ClientError(pub String);

/// The systemd1 calls the agent makes. Unit control queues a job with mode `replace` (as
/// `systemctl start|stop|restart` does) and returns once systemd accepted it, not when the
/// job finished: callers watch [`SystemdClient::unit_state`] for the outcome.
pub trait SystemdClient: Send + Sync {
    fn unit_state<'a>(&'a self, unit: &'a str) -> BoxFuture<'a, Result<UnitState, ClientError>>;
    /// `Manager.StartUnit(unit, "replace")`.
    fn start_unit<'a>(&'a self, unit: &'a str) -> BoxFuture<'a, Result<(), ClientError>>;
    /// `Manager.StopUnit(unit, "replace")`.
    fn stop_unit<'a>(&'a self, unit: &'a str) -> BoxFuture<'a, Result<(), ClientError>>;
    /// `Manager.RestartUnit(unit, "replace")`: starts it if it is not running.
    fn restart_unit<'a>(&'a self, unit: &'a str) -> BoxFuture<'a, Result<(), ClientError>>;
}

/// Asks logind to reboot (`org.freedesktop.login1.Manager.Reboot(false)`).
pub trait Logind: Send + Sync {
    fn reboot(&self) -> BoxFuture<'_, Result<(), ClientError>>;
}

/// `active` passes; `failed` is fatal if `fatal_on_failed` (systemd gave up on it); a unit that
/// does not exist is fatal too (a typo or a missing package will not fix itself); anything
/// else (`activating`, `inactive`, a bus error) is retried.
pub async fn check_unit(
    client: &dyn SystemdClient,
    unit: &str,
    fatal_on_failed: bool,
) -> CheckOutcome {
    let st = match client.unit_state(unit).await {
        Ok(st) => st,
        Err(e) => return CheckOutcome::fail(format!("{unit}: {e}")),
    };
    let what = format!("{unit} is {} ({})", st.active_state, st.sub_state);
    if st.load_state == "not-found" {
        CheckOutcome::fatal(format!("{unit} not found"))
    } else if st.active_state == "active" {
        CheckOutcome::pass(what)
    } else if st.active_state == "failed" && fatal_on_failed {
        CheckOutcome::fatal(what)
    } else {
        CheckOutcome::fail(what)
    }
}

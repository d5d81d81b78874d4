//! `[health] reboot`: how a failed trial restarts the device so the bootloader falls back.
//!
//! ```toml
//! [health]
//! reboot = "auto"      # the default; or "logind", "syscall"
//! ```
//!
//! * `logind`: `org.freedesktop.login1.Manager.Reboot(false)` only (an orderly shutdown of
//!   every unit). If the bus or logind does not answer, the gate stops on the error and retries
//!   with backoff.
//! * `syscall`: `sync()` then `reboot(RB_AUTOBOOT)` at once, without D-Bus (devices without
//!   systemd; the agent needs `CAP_SYS_BOOT`). Services are not stopped: whatever was not
//!   written and synced is lost, as on a power cut, which the agent survives by design.
//! * `auto`: logind; if the system bus cannot be connected to, the syscall. Only for the system
//!   bus: when `[dbus] bus` names a session bus or an address, that bus is where logind is
//!   expected (a test harness's private bus, for one), so `auto` behaves as `logind` and never
//!   reboots the machine itself. A bus that answers but whose logind refuses or is missing is an
//!   error (retried), not a reason for the syscall: the fallback is for "no D-Bus at all".
//!
//! The selection is pure ([`RebootMethod::path`]); the daemon carries it out
//! (`agent/src/health/bus.rs`).

use serde::{Deserialize, Serialize};

/// `[health] reboot`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RebootMethod {
    /// logind; `reboot(2)` when the system bus is unreachable.
    #[default]
    Auto,
    /// logind only.
    Logind,
    /// `sync()` + `reboot(RB_AUTOBOOT)` only.
    Syscall,
}

/// What a reboot request does, once the bus is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RebootPath {
    /// Ask logind; its errors are the request's errors.
    Logind,
    /// Ask logind; if connecting to the bus fails, `reboot(2)`.
    LogindThenSyscall,
    /// `reboot(2)` without touching D-Bus.
    Syscall,
}

impl RebootMethod {
    /// The path for this method. `system_bus`: logind is reached over the system bus (no
    /// `[dbus] bus`, or `bus = "system"`), not a session bus or a configured address.
    pub fn path(self, system_bus: bool) -> RebootPath {
        match self {
            RebootMethod::Auto if system_bus => RebootPath::LogindThenSyscall,
            RebootMethod::Auto | RebootMethod::Logind => RebootPath::Logind,
            RebootMethod::Syscall => RebootPath::Syscall,
        }
    }

    /// The `reboot =` word.
    pub fn as_str(self) -> &'static str {
        match self {
            RebootMethod::Auto => "auto",
            RebootMethod::Logind => "logind",
            RebootMethod::Syscall => "syscall",
        }
    }
}

impl RebootPath {
    /// Whether logind is asked at all.
    pub fn asks_logind(self) -> bool {
        !matches!(self, RebootPath::Syscall)
    }

    /// Whether `reboot(2)` follows when the bus cannot be connected to.
    pub fn syscall_when_unreachable(self) -> bool {
        !matches!(self, RebootPath::Logind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_falls_back_to_the_syscall_only_on_the_system_bus() {
        assert_eq!(RebootMethod::Auto.path(true), RebootPath::LogindThenSyscall);
        // A session bus or an explicit address: logind is expected there; never the syscall.
        assert_eq!(RebootMethod::Auto.path(false), RebootPath::Logind);
    }

    #[test]
    fn explicit_methods_ignore_the_bus() {
        for system_bus in [true, false] {
            assert_eq!(RebootMethod::Logind.path(system_bus), RebootPath::Logind);
            assert_eq!(RebootMethod::Syscall.path(system_bus), RebootPath::Syscall);
        }
    }

    #[test]
    fn paths_say_what_they_do() {
        assert!(RebootPath::Logind.asks_logind());
        assert!(!RebootPath::Logind.syscall_when_unreachable());
        assert!(RebootPath::LogindThenSyscall.asks_logind());
        assert!(RebootPath::LogindThenSyscall.syscall_when_unreachable());
        assert!(!RebootPath::Syscall.asks_logind());
        assert!(RebootPath::Syscall.syscall_when_unreachable());
    }

    #[test]
    fn default_is_auto() {
        assert_eq!(RebootMethod::default(), RebootMethod::Auto);
        assert_eq!(RebootMethod::default().as_str(), "auto");
    }
}

//! `[dbus]`: which bus the agent talks to (systemd, logind) and which names it serves there
//! (RAUC's `de.pengutronix.rauc.Installer`, our `io.outpost.Agent1`).
//!
//! ```toml
//! [dbus]
//! bus = "system"                 # "system", "session" or a D-Bus address ("unix:path=...")
//! rauc_name = "de.pengutronix.rauc"  # "" serves no RAUC API (e.g. beside a real RAUC)
//! agent_name = "io.outpost.Agent"    # "" serves no io.outpost.Agent1
//! ```
//!
//! Without a `[dbus]` section the agent serves nothing on D-Bus and reaches systemd and logind
//! on the system bus, connecting only when a check or a reboot needs them.

use serde::Deserialize;

pub const DEFAULT_RAUC_NAME: &str = "de.pengutronix.rauc";
pub const DEFAULT_AGENT_NAME: &str = "io.outpost.Agent";

/// Which bus to connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusAddress {
    System,
    Session,
    /// A D-Bus address such as `unix:path=/run/dbus/system_bus_socket`.
    Address(String),
}

impl BusAddress {
    /// The address for `outpost_dbus::connect`: `None` is the system bus.
    pub fn describe(&self) -> &str {
        match self {
            BusAddress::System => "system",
            BusAddress::Session => "session",
            BusAddress::Address(a) => a,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbusConfig {
    pub bus: BusAddress,
    /// Well-known name for RAUC's Installer API at `/`; `None`: not served.
    pub rauc_name: Option<String>,
    /// Well-known name for `io.outpost.Agent1` at `/io/outpost/Agent1`; `None`: not served.
    pub agent_name: Option<String>,
}

impl Default for DbusConfig {
    fn default() -> Self {
        Self {
            bus: BusAddress::System,
            rauc_name: Some(DEFAULT_RAUC_NAME.to_owned()),
            agent_name: Some(DEFAULT_AGENT_NAME.to_owned()),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDbus {
    bus: Option<String>,
    rauc_name: Option<String>,
    agent_name: Option<String>,
}

pub(super) fn resolve(raw: RawDbus) -> Result<DbusConfig, String> {
    let bus = match raw.bus.as_deref() {
        None | Some("system") => BusAddress::System,
        Some("session") => BusAddress::Session,
        Some(a) if a.contains(':') && a.contains('=') => BusAddress::Address(a.to_owned()),
        Some(a) => {
            return Err(format!(
                "dbus.bus {a:?} is neither \"system\", \"session\" nor a D-Bus address such as \"unix:path=/run/dbus/system_bus_socket\""
            ))
        }
    };
    let name = |key: &str, v: Option<String>, default: &str| -> Result<Option<String>, String> {
        match v {
            None => Ok(Some(default.to_owned())),
            Some(s) if s.is_empty() => Ok(None),
            Some(s) if valid_bus_name(&s) => Ok(Some(s)),
            Some(s) => Err(format!(
                "dbus.{key} {s:?} is not a well-known D-Bus name (dot-separated elements of letters, digits, '_' and '-', not starting with a digit)"
            )),
        }
    };
    Ok(DbusConfig {
        bus,
        rauc_name: name("rauc_name", raw.rauc_name, DEFAULT_RAUC_NAME)?,
        agent_name: name("agent_name", raw.agent_name, DEFAULT_AGENT_NAME)?,
    })
}

/// The D-Bus specification's rules for a well-known bus name.
fn valid_bus_name(s: &str) -> bool {
    let elements: Vec<&str> = s.split('.').collect();
    s.len() <= 255
        && elements.len() >= 2
        && elements.iter().all(|e| {
            !e.is_empty()
                && !e.starts_with(|c: char| c.is_ascii_digit())
                && e.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(bus: Option<&str>, rauc: Option<&str>) -> RawDbus {
        RawDbus {
            bus: bus.map(str::to_owned),
            rauc_name: rauc.map(str::to_owned),
            agent_name: None,
        }
    }

    #[test]
    fn defaults_serve_both_names_on_the_system_bus() {
        assert_eq!(resolve(RawDbus::default()).unwrap(), DbusConfig::default());
    }

    #[test]
    fn bus_words_and_addresses() {
        assert_eq!(
            resolve(raw(Some("session"), None)).unwrap().bus,
            BusAddress::Session
        );
        assert_eq!(
            resolve(raw(Some("unix:path=/tmp/bus"), None)).unwrap().bus,
            BusAddress::Address("unix:path=/tmp/bus".into())
        );
        let e = resolve(raw(Some("sytem"), None)).unwrap_err();
        assert!(e.contains("\"sytem\""), "{e}");
    }

    #[test]
    fn an_empty_name_turns_the_api_off_and_a_bad_one_is_refused() {
        assert_eq!(resolve(raw(None, Some(""))).unwrap().rauc_name, None);
        assert_eq!(
            resolve(raw(None, Some("com.example.rauc2")))
                .unwrap()
                .rauc_name,
            Some("com.example.rauc2".into())
        );
        for bad in ["rauc", "de..rauc", "de.1rauc", "de.rau c"] {
            assert!(resolve(raw(None, Some(bad))).is_err(), "{bad}");
        }
    }
}

//! The agent's TOML configuration: parsing, defaults, path resolution and validation.
//!
//! The shape is shared with `outpost-hub init`, which writes this file for a device, so key
//! names are part of the contract. Every key is documented in `docs/configuration.md`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use hyper::Uri;
use outpost_proto::{Priority, StreamName};
use serde::Deserialize;

mod dbus;
mod delivery;
mod identity;
mod update;
mod workloads;
pub use dbus::{BusAddress, DbusConfig};
pub use delivery::{DeliveryConfig, Window};
pub use identity::{IdentityConfig, TokenSource};
pub use outpost_health::HealthConfig;
pub use update::{UpdateConfig, UpdateSource, DEFAULT_AUTOBOOT, DEFAULT_FW_ENV_CONFIG};
pub use workloads::{K3sConfig, WorkloadsConfig};

pub const DEFAULT_SOCKET: &str = "/run/outpost/agent.sock";
pub const DEFAULT_STATE_DIR: &str = "/var/lib/outpost";
const DEFAULT_SOCKET_MODE: u32 = 0o660;
const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
const DEFAULT_OUTBOX_MAX_BYTES: u64 = 256 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config file {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// A loaded, validated configuration with every path absolute (or as given when absolute).
#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    pub device_id: Option<String>,
    pub state_dir: PathBuf,
    pub api: ApiConfig,
    pub outbox: OutboxSettings,
    pub hub: Option<HubConfig>,
    pub uploader: UploaderConfig,
    pub log: LogConfig,
    /// `[update]`; `None`: the update endpoints answer "updates are not configured".
    pub update: Option<UpdateConfig>,
    /// `[health]` (defaults when absent); the gate runs only when `[update]` is configured.
    pub health: HealthConfig,
    /// `[dbus]`; `None`: nothing is served on D-Bus, systemd and logind are on the system bus.
    pub dbus: Option<DbusConfig>,
    /// `[identity]`; `None`: the client certificate and key are `[hub] cert` and `key`.
    pub identity: Option<IdentityConfig>,
    /// `[delivery]`: poll the hub for updates (needs `[hub]` and `[update]`).
    pub delivery: Option<DeliveryConfig>,
    /// `[workloads]`: signed manifest sets applied to K3s (needs `[k3s]`).
    pub workloads: Option<WorkloadsConfig>,
    /// `[k3s]`: the K3s server the agent supervises and asks about readiness.
    pub k3s: Option<K3sConfig>,
}

#[derive(Debug, Clone)]
pub struct ApiConfig {
    pub socket: PathBuf,
    pub socket_mode: u32,
    pub tcp: Option<SocketAddr>,
    pub max_body_bytes: usize,
}

#[derive(Debug, Clone)]
pub struct OutboxSettings {
    pub path: PathBuf,
    pub max_bytes: u64,
    pub default_priority: Priority,
    pub streams: BTreeMap<StreamName, Priority>,
}

impl OutboxSettings {
    /// The priority for a publish without `?priority=`: the stream's, else the default.
    pub fn priority_for(&self, stream: &StreamName) -> Priority {
        self.streams
            .get(stream)
            .copied()
            .unwrap_or(self.default_priority)
    }
}

#[derive(Debug, Clone)]
pub struct HubConfig {
    pub url: Uri,
    pub ca: PathBuf,
    /// The client certificate: `[hub] cert`, or `[identity]`'s certificate.
    pub cert: PathBuf,
    /// `[hub] key`; `None` with `[identity]`, whose key backend signs instead.
    pub key: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploaderConfig {
    pub batch_max_records: usize,
    pub batch_max_bytes: usize,
    pub backoff_base_ms: u64,
    pub backoff_cap_ms: u64,
    pub request_timeout_ms: u64,
}

impl Default for UploaderConfig {
    fn default() -> Self {
        Self {
            batch_max_records: 1000,
            batch_max_bytes: 1024 * 1024,
            backoff_base_ms: 1000,
            backoff_cap_ms: 300_000,
            request_timeout_ms: 30_000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// journald when `JOURNAL_STREAM` is set (started by systemd), else text on stderr.
    #[default]
    Auto,
    Text,
    Json,
    Journald,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    pub level: String,
    pub format: LogFormat,
}

// ---- the file as written -------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    device_id: Option<String>,
    state_dir: Option<PathBuf>,
    #[serde(default)]
    api: RawApi,
    #[serde(default)]
    outbox: RawOutbox,
    hub: Option<RawHub>,
    #[serde(default)]
    uploader: RawUploader,
    #[serde(default)]
    log: RawLog,
    update: Option<update::RawUpdate>,
    health: Option<HealthConfig>,
    dbus: Option<dbus::RawDbus>,
    identity: Option<identity::RawIdentity>,
    delivery: Option<delivery::RawDelivery>,
    workloads: Option<workloads::RawWorkloads>,
    k3s: Option<workloads::RawK3s>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawApi {
    socket: Option<PathBuf>,
    socket_mode: Option<String>,
    tcp: Option<String>,
    max_body_bytes: Option<usize>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawOutbox {
    path: Option<PathBuf>,
    max_bytes: Option<u64>,
    default_priority: Option<Priority>,
    #[serde(default)]
    streams: BTreeMap<String, RawStream>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStream {
    priority: Priority,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHub {
    url: String,
    ca: PathBuf,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawUploader {
    batch_max_records: Option<usize>,
    batch_max_bytes: Option<usize>,
    backoff_base_ms: Option<u64>,
    backoff_cap_ms: Option<u64>,
    request_timeout_ms: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLog {
    level: Option<String>,
    format: Option<LogFormat>,
}

impl Config {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        // Absolute, so resolved paths (and the socket in the ready line) do not depend on a
        // later working directory.
        let path = &std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses `text` as if read from `path` (relative paths resolve against its folder).
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            // toml's message spans several lines (with a source excerpt); keep it as is.
            message: e.to_string().trim_end().to_owned(),
        })?;
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        };
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let base = if base.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            base
        };
        let resolve = |p: &Path| {
            if p.is_absolute() {
                p.to_owned()
            } else {
                base.join(p)
            }
        };

        let state_dir = resolve(
            raw.state_dir
                .as_deref()
                .unwrap_or(Path::new(DEFAULT_STATE_DIR)),
        );

        let socket = resolve(
            raw.api
                .socket
                .as_deref()
                .unwrap_or(Path::new(DEFAULT_SOCKET)),
        );
        let socket_mode = match raw.api.socket_mode.as_deref() {
            None => DEFAULT_SOCKET_MODE,
            Some(s) => parse_mode(s).ok_or_else(|| {
                invalid(format!(
                    "api.socket_mode {s:?} is not an octal file mode such as \"0660\""
                ))
            })?,
        };
        let tcp = match raw.api.tcp.as_deref() {
            None => None,
            Some(s) => {
                let addr: SocketAddr = s.parse().map_err(|_| {
                    invalid(format!(
                        "api.tcp {s:?} is not an address such as \"127.0.0.1:7701\""
                    ))
                })?;
                if !addr.ip().is_loopback() {
                    return Err(invalid(format!(
                        "api.tcp {s:?} is not a loopback address; the local API has no authentication \
                         and must never listen on a network interface (use 127.0.0.1 or [::1])"
                    )));
                }
                Some(addr)
            }
        };
        let max_body_bytes = raw.api.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES);
        if max_body_bytes == 0 {
            return Err(invalid("api.max_body_bytes must be at least 1".into()));
        }

        let outbox_path = match &raw.outbox.path {
            Some(p) => resolve(p),
            None => state_dir.join("outbox.sqlite"),
        };
        let max_bytes = raw.outbox.max_bytes.unwrap_or(DEFAULT_OUTBOX_MAX_BYTES);
        if max_bytes == 0 {
            return Err(invalid("outbox.max_bytes must be at least 1".into()));
        }
        let mut streams = BTreeMap::new();
        for (name, s) in raw.outbox.streams {
            let stream =
                StreamName::parse(&name).map_err(|e| invalid(format!("[outbox.streams]: {e}")))?;
            streams.insert(stream, s.priority);
        }

        let identity = match raw.identity {
            None => None,
            Some(i) => Some(identity::resolve(i, &resolve, &state_dir).map_err(invalid)?),
        };
        let hub = match raw.hub {
            None => None,
            Some(h) => {
                let (cert, key) =
                    match (&identity, h.cert, h.key) {
                        (Some(id), None, None) => (id.cert.clone(), None),
                        (Some(_), _, _) => return Err(invalid(
                            "hub.cert and hub.key must not be set with [identity] (the identity \
                             backend holds the key and enrollment writes the certificate)"
                                .into(),
                        )),
                        (None, Some(cert), Some(key)) => (resolve(&cert), Some(resolve(&key))),
                        (None, _, _) => {
                            return Err(invalid(
                                "hub.cert and hub.key are required without [identity]".into(),
                            ))
                        }
                    };
                Some(HubConfig {
                    url: parse_hub_url(&h.url)
                        .map_err(|m| invalid(format!("hub.url {:?}: {m}", h.url)))?,
                    ca: resolve(&h.ca),
                    cert,
                    key,
                })
            }
        };
        if identity.is_some() && hub.is_none() {
            return Err(invalid(
                "[identity] needs [hub] (url and ca): enrollment and uploads go there".into(),
            ));
        }

        let d = UploaderConfig::default();
        let u = &raw.uploader;
        let uploader = UploaderConfig {
            batch_max_records: u.batch_max_records.unwrap_or(d.batch_max_records),
            batch_max_bytes: u.batch_max_bytes.unwrap_or(d.batch_max_bytes),
            backoff_base_ms: u.backoff_base_ms.unwrap_or(d.backoff_base_ms),
            backoff_cap_ms: u.backoff_cap_ms.unwrap_or(d.backoff_cap_ms),
            request_timeout_ms: u.request_timeout_ms.unwrap_or(d.request_timeout_ms),
        };
        let max_records = outpost_proto::ingest::MAX_BATCH_RECORDS;
        if !(1..=max_records).contains(&uploader.batch_max_records) {
            return Err(invalid(format!(
                "uploader.batch_max_records must be between 1 and {max_records}"
            )));
        }
        // Leave room for the per-record JSON envelope under the hub's decompressed limit.
        let max_batch_bytes = outpost_proto::ingest::MAX_DECOMPRESSED_BATCH_BYTES / 2;
        if !(1..=max_batch_bytes).contains(&uploader.batch_max_bytes) {
            return Err(invalid(format!(
                "uploader.batch_max_bytes must be between 1 and {max_batch_bytes}"
            )));
        }
        if uploader.backoff_base_ms == 0 || uploader.backoff_cap_ms < uploader.backoff_base_ms {
            return Err(invalid(
                "uploader.backoff_base_ms must be at least 1 and backoff_cap_ms at least backoff_base_ms".into(),
            ));
        }
        // A day is longer than any sensible retry pause and keeps time arithmetic far from overflow.
        const DAY_MS: u64 = 24 * 60 * 60 * 1000;
        if uploader.backoff_cap_ms > DAY_MS {
            return Err(invalid(format!(
                "uploader.backoff_cap_ms must be at most {DAY_MS} (one day)"
            )));
        }
        if uploader.request_timeout_ms == 0 {
            return Err(invalid(
                "uploader.request_timeout_ms must be at least 1".into(),
            ));
        }

        let log = LogConfig {
            level: raw.log.level.unwrap_or_else(|| "info".to_owned()),
            format: raw.log.format.unwrap_or_default(),
        };
        if let Err(e) = crate::logging::parse_filter(&log.level) {
            return Err(invalid(format!("log.level {:?}: {e}", log.level)));
        }

        let update = match raw.update {
            None => None,
            Some(u) => Some(update::resolve(u, &resolve, &state_dir).map_err(invalid)?),
        };

        let mut health = raw.health.unwrap_or_default();
        for check in &mut health.checks {
            if let outpost_health::CheckKind::Http {
                ca_file: Some(ca), ..
            } = &mut check.kind
            {
                *ca = resolve(ca);
            }
        }
        let dbus = raw.dbus.map(dbus::resolve).transpose().map_err(invalid)?;
        let delivery = match raw.delivery {
            None => None,
            Some(_) if hub.is_none() || update.is_none() => {
                return Err(invalid(
                    "[delivery] needs [hub] (where updates come from) and [update] (how they \
                     are installed)"
                        .into(),
                ))
            }
            Some(d) => Some(delivery::resolve(d, &state_dir).map_err(invalid)?),
        };

        let k3s = raw
            .k3s
            .map(|k| workloads::resolve_k3s(k, &resolve))
            .transpose()
            .map_err(invalid)?;
        let workloads = match raw.workloads {
            None => None,
            Some(_) if k3s.is_none() => {
                return Err(invalid(
                    "[workloads] needs [k3s] (the cluster the manifests are applied to)".into(),
                ))
            }
            Some(w) => {
                let default_channel = delivery.as_ref().map(|d| d.channel.as_str());
                let w = workloads::resolve_workloads(w, default_channel, &state_dir, &resolve)
                    .map_err(invalid)?;
                if w.channel.is_some() && (hub.is_none() || update.is_none()) {
                    return Err(invalid(
                        "[workloads] channel needs [hub] (where sets come from) and [update] (the \
                         keyring and compatible they are checked against); without them only \
                         sets inside OS bundles are applied"
                            .into(),
                    ));
                }
                Some(w)
            }
        };

        Ok(Config {
            path: path.to_owned(),
            device_id: raw.device_id,
            state_dir,
            api: ApiConfig {
                socket,
                socket_mode,
                tcp,
                max_body_bytes,
            },
            outbox: OutboxSettings {
                path: outbox_path,
                max_bytes,
                default_priority: raw.outbox.default_priority.unwrap_or(Priority::Normal),
                streams,
            },
            hub,
            uploader,
            log,
            update,
            health,
            dbus,
            identity,
            delivery,
            workloads,
            k3s,
        })
    }
}

/// `"0660"`, `"660"` or `"0o660"`: permission bits only (no setuid/sticky bits on a socket).
fn parse_mode(s: &str) -> Option<u32> {
    let digits = s.strip_prefix("0o").unwrap_or(s);
    if digits.is_empty() || digits.len() > 4 {
        return None;
    }
    let mode = u32::from_str_radix(digits, 8).ok()?;
    (mode <= 0o777).then_some(mode)
}

fn parse_hub_url(s: &str) -> Result<Uri, String> {
    let uri: Uri = s.parse().map_err(|e| format!("not a URL ({e})"))?;
    if uri.scheme_str() != Some("https") {
        return Err("must start with https://".into());
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err("has no host".into());
    }
    if uri.query().is_some() {
        return Err("must not have a query".into());
    }
    Ok(uri)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("/etc/outpost/agent.toml"))
    }

    #[test]
    fn defaults_apply_to_a_minimal_file() {
        let c = parse("").unwrap();
        assert_eq!(c.device_id, None);
        assert_eq!(c.state_dir, Path::new("/var/lib/outpost"));
        assert_eq!(c.outbox.path, Path::new("/var/lib/outpost/outbox.sqlite"));
        assert_eq!(c.api.socket, Path::new("/run/outpost/agent.sock"));
        assert_eq!(c.api.socket_mode, 0o660);
        assert_eq!(c.api.tcp, None);
        assert_eq!(c.api.max_body_bytes, 1 << 20);
        assert_eq!(c.outbox.max_bytes, 256 << 20);
        assert_eq!(c.outbox.default_priority, Priority::Normal);
        assert!(c.hub.is_none());
        assert_eq!(c.uploader, UploaderConfig::default());
        assert_eq!(
            c.log,
            LogConfig {
                level: "info".into(),
                format: LogFormat::Auto
            }
        );
    }

    #[test]
    fn full_file_and_relative_paths() {
        let c = parse(
            r#"
            device_id = "device-001"
            state_dir = "state"
            [api]
            socket = "run/agent.sock"
            socket_mode = "0600"
            tcp = "127.0.0.1:7701"
            max_body_bytes = 2048
            [outbox]
            max_bytes = 1000000
            default_priority = "best_effort"
            [outbox.streams.alarms]
            priority = "critical"
            [hub]
            url = "https://127.0.0.1:8443"
            ca = "hub-ca.pem"
            cert = "/abs/device.pem"
            key = "device.key"
            [uploader]
            batch_max_records = 10
            batch_max_bytes = 4096
            backoff_base_ms = 10
            backoff_cap_ms = 100
            request_timeout_ms = 500
            [log]
            level = "debug"
            format = "json"
            "#,
        )
        .unwrap();
        assert_eq!(c.device_id.as_deref(), Some("device-001"));
        assert_eq!(c.state_dir, Path::new("/etc/outpost/state"));
        assert_eq!(c.outbox.path, Path::new("/etc/outpost/state/outbox.sqlite"));
        assert_eq!(c.api.socket, Path::new("/etc/outpost/run/agent.sock"));
        assert_eq!(c.api.socket_mode, 0o600);
        assert_eq!(c.api.tcp, Some("127.0.0.1:7701".parse().unwrap()));
        let alarms = StreamName::parse("alarms").unwrap();
        assert_eq!(c.outbox.priority_for(&alarms), Priority::Critical);
        assert_eq!(
            c.outbox.priority_for(&StreamName::parse("x").unwrap()),
            Priority::BestEffort
        );
        let hub = c.hub.unwrap();
        assert_eq!(hub.ca, Path::new("/etc/outpost/hub-ca.pem"));
        assert_eq!(hub.cert, Path::new("/abs/device.pem"));
        assert_eq!(
            hub.key.as_deref(),
            Some(Path::new("/etc/outpost/device.key"))
        );
        assert_eq!(hub.url.port_u16(), Some(8443));
        assert_eq!(c.uploader.batch_max_records, 10);
        assert_eq!(c.uploader.request_timeout_ms, 500);
        assert_eq!(c.log.format, LogFormat::Json);
    }

    #[test]
    fn explicit_outbox_path_resolves_against_config_dir() {
        let c = Config::parse(
            "[outbox]\npath = \"q/o.sqlite\"",
            Path::new("cfg/agent.toml"),
        )
        .unwrap();
        assert_eq!(c.outbox.path, Path::new("cfg/q/o.sqlite"));
        let c = Config::parse("state_dir = \"s\"", Path::new("agent.toml")).unwrap();
        assert_eq!(c.state_dir, Path::new("./s"));
    }

    #[test]
    fn unknown_keys_are_errors() {
        for text in [
            "devise_id = \"x\"",
            "[api]\nsockett = \"/x\"",
            "[outbox.streams.a]\npriority = \"normal\"\nx = 1",
            "[extra]",
        ] {
            let err = parse(text).unwrap_err();
            assert!(matches!(err, ConfigError::Parse { .. }), "{text}: {err}");
            assert!(err.to_string().contains("unknown field"), "{err}");
        }
    }

    #[test]
    fn non_loopback_tcp_is_refused() {
        for addr in ["0.0.0.0:7701", "192.168.1.5:7701", "[::]:7701"] {
            let err = parse(&format!("[api]\ntcp = \"{addr}\"")).unwrap_err();
            assert!(err.to_string().contains("loopback"), "{err}");
        }
        assert!(parse("[api]\ntcp = \"[::1]:7701\"").is_ok());
        assert!(parse("[api]\ntcp = \"localhost\"").is_err());
    }

    #[test]
    fn invalid_values_are_errors() {
        for text in [
            "[api]\nsocket_mode = \"0999\"",
            "[api]\nsocket_mode = \"rw\"",
            "[api]\nmax_body_bytes = 0",
            "[outbox]\ndefault_priority = \"urgent\"",
            "[outbox.streams.Bad]\npriority = \"normal\"",
            "[hub]\nurl = \"http://h\"\nca = \"a\"\ncert = \"b\"\nkey = \"c\"",
            "[hub]\nurl = \"https://h\"\nca = \"a\"\ncert = \"b\"",
            "[uploader]\nbatch_max_records = 0",
            "[uploader]\nbackoff_base_ms = 10\nbackoff_cap_ms = 5",
            "[log]\nformat = \"xml\"",
            "[log]\nlevel = \"loud=[\"",
        ] {
            assert!(parse(text).is_err(), "{text}");
        }
    }
}

#[cfg(test)]
mod example_tests {
    use super::*;

    #[test]
    fn shipped_example_parses_with_documented_defaults() {
        let text = include_str!("../../examples/agent.toml");
        let c = Config::parse(text, Path::new("/etc/outpost/agent.toml")).unwrap();
        let d = Config::parse("", Path::new("/etc/outpost/agent.toml")).unwrap();
        assert_eq!(c.api.socket, d.api.socket);
        assert_eq!(c.api.socket_mode, d.api.socket_mode);
        assert_eq!(c.api.max_body_bytes, d.api.max_body_bytes);
        assert_eq!(c.outbox.max_bytes, d.outbox.max_bytes);
        assert_eq!(c.uploader, d.uploader);
        assert_eq!(c.log, d.log);
        assert_eq!(c.hub.unwrap().ca, Path::new("/etc/outpost/hub-ca.pem"));
    }
}

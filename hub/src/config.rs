//! `hub.toml`: where to listen, where the database lives, the TLS material and the optional
//! legacy device keys. Relative paths are resolved against the config file's folder so a
//! config directory can be moved as a whole; unknown keys are errors so typos do not silently
//! fall back to defaults.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::identity;
use crate::legacy::LegacyKeys;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8443";
pub const DEFAULT_DATA_DIR: &str = "data";
pub const DB_FILE_NAME: &str = "hub.sqlite";
/// Lifetime of certificates issued at enrollment.
pub const DEFAULT_CERT_DAYS: u32 = 365;
/// Longest certificate lifetime `enroll.cert_days` allows (10 years, the fleet CA's own).
pub const MAX_CERT_DAYS: u32 = 3650;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid config {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default = "default_listen")]
    listen: SocketAddr,
    #[serde(default = "default_data_dir")]
    data_dir: PathBuf,
    tls: RawTls,
    #[serde(default)]
    ingest: RawIngest,
    #[serde(default)]
    legacy_device_keys: BTreeMap<String, String>,
    enroll: Option<RawEnroll>,
    #[serde(default)]
    releases: RawReleases,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawReleases {
    /// PEM CA certificate(s) that sign bundles; `release add` verifies against it.
    keyring: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnroll {
    ca_cert: PathBuf,
    ca_key: PathBuf,
    cert_days: Option<u32>,
    /// A duration (`90s`, `12h`, `30d`) instead of `cert_days`; for short-lived certificates.
    cert_lifetime: Option<String>,
    #[serde(default)]
    refuse_software_keys: bool,
    /// PEM files of TPM-manufacturer CAs: EK certificates chaining to any certificate in them
    /// are trusted.
    #[serde(default)]
    ek_ca: Vec<PathBuf>,
    /// Device ids (hex SHA-256 of an EK's SubjectPublicKeyInfo) trusted without an EK
    /// certificate.
    #[serde(default)]
    ek_allowlist: Vec<String>,
}

/// Shortest `enroll.cert_lifetime` (renewal happens at 2/3 of it).
pub const MIN_CERT_LIFETIME: Duration = Duration::from_secs(10);

/// `enroll.cert_lifetime` or `enroll.cert_days` (not both), default [`DEFAULT_CERT_DAYS`].
fn cert_lifetime(e: &RawEnroll) -> Result<Duration, String> {
    let max = Duration::from_secs(u64::from(MAX_CERT_DAYS) * 86_400);
    match (e.cert_days, &e.cert_lifetime) {
        (Some(_), Some(_)) => Err("set enroll.cert_days or enroll.cert_lifetime, not both".into()),
        (Some(days), None) => {
            if (1..=MAX_CERT_DAYS).contains(&days) {
                Ok(Duration::from_secs(u64::from(days) * 86_400))
            } else {
                Err(format!(
                    "enroll.cert_days must be between 1 and {MAX_CERT_DAYS}"
                ))
            }
        }
        (None, Some(text)) => {
            let d = humantime::parse_duration(text).map_err(|e| {
                format!("enroll.cert_lifetime {text:?}: {e} (use e.g. 90s, 12h, 30d)")
            })?;
            if d < MIN_CERT_LIFETIME || d > max {
                return Err(format!(
                    "enroll.cert_lifetime must be between {}s and {MAX_CERT_DAYS} days",
                    MIN_CERT_LIFETIME.as_secs()
                ));
            }
            Ok(d)
        }
        (None, None) => Ok(Duration::from_secs(u64::from(DEFAULT_CERT_DAYS) * 86_400)),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert: PathBuf,
    key: PathBuf,
    client_ca: PathBuf,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIngest {
    #[serde(default = "default_max_body_bytes")]
    max_body_bytes: usize,
}

impl Default for RawIngest {
    fn default() -> Self {
        Self {
            max_body_bytes: default_max_body_bytes(),
        }
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8443))
}

fn default_data_dir() -> PathBuf {
    PathBuf::from(DEFAULT_DATA_DIR)
}

fn default_max_body_bytes() -> usize {
    outpost_proto::ingest::MAX_COMPRESSED_BATCH_BYTES
}

/// A loaded `hub.toml` with every path made absolute (or relative to the process's working
/// directory if the config path itself was relative).
#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub tls: TlsConfig,
    pub max_body_bytes: usize,
    /// Never printed: its `Debug` is redacted.
    pub legacy_keys: LegacyKeys,
    /// `[enroll]`: devices may enroll with a token (`POST /v1/enroll`). `None`: they may not.
    pub enroll: Option<EnrollConfig>,
    /// `[releases] keyring`: the bundle signers' CA(s); `None`: `release add` refuses.
    pub releases_keyring: Option<PathBuf>,
}

/// `[enroll]`: the fleet CA that signs enrolled devices' certificates, and the policy.
#[derive(Debug, Clone)]
pub struct EnrollConfig {
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    /// How long issued (and renewed) device certificates are valid.
    pub cert_lifetime: Duration,
    pub refuse_software_keys: bool,
    /// `ek_ca`: PEM files of TPM-manufacturer CAs (paths resolved against the config file).
    pub ek_ca: Vec<PathBuf>,
    /// `ek_allowlist`: EK device ids trusted without a certificate.
    pub ek_allowlist: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: PathBuf,
}

/// `line L, column C: MESSAGE`, never the text of the line itself.
fn toml_error_without_source(e: &toml::de::Error, text: &str) -> String {
    let message = e.message().trim_end();
    match e.span() {
        Some(span) => {
            let before = &text.as_bytes()[..span.start.min(text.len())];
            let line = before.iter().filter(|b| **b == b'\n').count() + 1;
            let column = before.iter().rev().take_while(|b| **b != b'\n').count() + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message.to_owned(),
    }
}

impl Config {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses `text` as if it had been read from `path` (which anchors relative paths).
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        // toml's Display quotes the offending line, which may hold a legacy device key: report
        // only the message and where it is.
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: toml_error_without_source(&e, text),
        })?;
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        };
        if raw.ingest.max_body_bytes == 0 {
            return Err(invalid(
                "ingest.max_body_bytes must be greater than 0".into(),
            ));
        }
        for (key, device) in &raw.legacy_device_keys {
            // The key itself never appears in an error message: it is a secret.
            if key.is_empty() {
                return Err(invalid(
                    "legacy_device_keys: a key must not be empty".into(),
                ));
            }
            identity::validate_device_id(device)
                .map_err(|e| invalid(format!("legacy_device_keys: {e}")))?;
        }
        let lifetime = match &raw.enroll {
            Some(e) => cert_lifetime(e).map_err(invalid)?,
            None => Duration::ZERO,
        };
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let resolve = |p: &Path| {
            if p.is_absolute() {
                p.to_owned()
            } else {
                base.join(p)
            }
        };
        let enroll = raw.enroll.as_ref().map(|e| EnrollConfig {
            ca_cert: resolve(&e.ca_cert),
            ca_key: resolve(&e.ca_key),
            cert_lifetime: lifetime,
            refuse_software_keys: e.refuse_software_keys,
            ek_ca: e.ek_ca.iter().map(|p| resolve(p)).collect(),
            ek_allowlist: e.ek_allowlist.clone(),
        });
        Ok(Config {
            path: path.to_owned(),
            listen: raw.listen,
            data_dir: resolve(&raw.data_dir),
            tls: TlsConfig {
                cert: resolve(&raw.tls.cert),
                key: resolve(&raw.tls.key),
                client_ca: resolve(&raw.tls.client_ca),
            },
            max_body_bytes: raw.ingest.max_body_bytes,
            legacy_keys: LegacyKeys::new(
                raw.legacy_device_keys
                    .iter()
                    .map(|(k, d)| (k.as_str(), d.as_str())),
            ),
            enroll,
            releases_keyring: raw.releases.keyring.as_deref().map(resolve),
        })
    }

    /// Where published releases live: `data_dir/releases/<id>/`.
    pub fn releases_dir(&self) -> PathBuf {
        self.data_dir.join("releases")
    }

    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join(DB_FILE_NAME)
    }
}

/// The `hub.toml` that `init` writes.
pub fn render_hub_toml(listen: SocketAddr) -> String {
    format!(
        r#"# outpost-hub configuration (see docs/hub.md). Relative paths are resolved against
# the folder of this file.
listen = "{listen}"
data_dir = "{DEFAULT_DATA_DIR}"

[tls]
cert = "server.pem"
key = "server.key"
client_ca = "ca.pem"

[ingest]
max_body_bytes = {max}

# Devices enroll with a token from `outpost-hub token create` (POST /v1/enroll, no client
# certificate needed for that one endpoint); the fleet CA below signs their certificates.
[enroll]
ca_cert = "ca.pem"
ca_key = "ca.key"
# Device certificates live cert_days days (or cert_lifetime, a duration such as "12h" or
# "90s", instead); agents renew them over mTLS (POST /v1/renew) at 2/3 of their lifetime.
cert_days = {cert_days}
refuse_software_keys = false
# TPM devices prove their key is in a genuine TPM (EK certificate, credential activation,
# TPM2_Certify). Trust EK certificates issued by these TPM-manufacturer CAs (PEM files;
# roots and intermediates), and/or these EKs without a certificate (device ids: hex SHA-256
# of the EK's public key). With neither, TPM devices cannot enroll.
ek_ca = []
ek_allowlist = []

# Bundles the hub offers to devices (`outpost-hub release add`) are verified first against
# this keyring: the CA certificate(s) that sign your RAUC bundles, as on the devices.
[releases]
# keyring = "bundle-ca.pem"

# Reference-agent devices that authenticate with X-Device-Key instead of a client
# certificate. Off unless at least one key is listed; keep this file private if you do.
# [legacy_device_keys]
# "a-long-random-secret" = "device-007"
"#,
        max = outpost_proto::ingest::MAX_COMPRESSED_BATCH_BYTES,
        cert_days = DEFAULT_CERT_DAYS,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "[tls]\ncert = \"s.pem\"\nkey = \"/abs/s.key\"\nclient_ca = \"ca.pem\"\n";

    #[test]
    fn syntax_errors_never_echo_the_line_that_may_hold_a_secret() {
        let text =
            "listen = \"127.0.0.1:1\"\n[legacy_device_keys]\n\"s3cret-key-abc\" = device-007\n";
        let err = Config::parse(text, Path::new("/x/hub.toml"))
            .unwrap_err()
            .to_string();
        assert!(!err.contains("s3cret"), "{err}");
        assert!(err.contains("line 3"), "{err}");
    }

    #[test]
    fn defaults_and_relative_paths() {
        let c = Config::parse(MINIMAL, Path::new("/etc/outpost/hub.toml")).unwrap();
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(c.data_dir, Path::new("/etc/outpost/data"));
        assert_eq!(c.db_path(), Path::new("/etc/outpost/data/hub.sqlite"));
        assert_eq!(c.tls.cert, Path::new("/etc/outpost/s.pem"));
        assert_eq!(c.tls.key, Path::new("/abs/s.key"));
        assert_eq!(c.max_body_bytes, 16 * 1024 * 1024);
        assert!(c.legacy_keys.is_empty());
    }

    #[test]
    fn unknown_keys_are_errors() {
        let text = format!("{MINIMAL}[ingest]\nmax_body_byte = 5\n");
        let err = Config::parse(&text, Path::new("hub.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("max_body_byte"), "{err}");
        let text = format!("lisen = \"1.2.3.4:5\"\n{MINIMAL}");
        assert!(Config::parse(&text, Path::new("hub.toml")).is_err());
    }

    #[test]
    fn shipped_example_parses() {
        let c = Config::parse(
            include_str!("../../examples/hub.toml"),
            Path::new("/srv/hub/hub.toml"),
        )
        .unwrap();
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(c.tls.client_ca, Path::new("/srv/hub/ca.pem"));
        assert!(c.legacy_keys.is_empty());
    }

    #[test]
    fn init_template_parses() {
        let c = Config::parse(
            &render_hub_toml("127.0.0.1:9".parse().unwrap()),
            Path::new("/x/hub.toml"),
        )
        .unwrap();
        assert_eq!(c.listen.port(), 9);
        assert_eq!(c.tls.client_ca, Path::new("/x/ca.pem"));
        let e = c.enroll.unwrap();
        assert_eq!(e.ca_key, Path::new("/x/ca.key"));
        assert_eq!(
            e.cert_lifetime,
            Duration::from_secs(u64::from(DEFAULT_CERT_DAYS) * 86_400)
        );
        assert!(!e.refuse_software_keys);
    }

    #[test]
    fn enroll_section_is_optional_and_checked() {
        assert!(Config::parse(MINIMAL, Path::new("h.toml"))
            .unwrap()
            .enroll
            .is_none());
        let text = format!(
            "{MINIMAL}[enroll]\nca_cert = \"c\"\nca_key = \"k\"\nrefuse_software_keys = true\n"
        );
        let e = Config::parse(&text, Path::new("/h/h.toml"))
            .unwrap()
            .enroll
            .unwrap();
        assert!(e.refuse_software_keys);
        assert_eq!(
            e.cert_lifetime,
            Duration::from_secs(u64::from(DEFAULT_CERT_DAYS) * 86_400)
        );
        for (line, secs) in [("cert_days = 2", 172_800), ("cert_lifetime = \"90s\"", 90)] {
            let text = format!("{MINIMAL}[enroll]\nca_cert = \"c\"\nca_key = \"k\"\n{line}\n");
            let c = Config::parse(&text, Path::new("h.toml")).unwrap();
            assert_eq!(
                c.enroll.unwrap().cert_lifetime,
                Duration::from_secs(secs),
                "{line}"
            );
        }
        for bad in [
            "cert_days = 0",
            "cert_days = 4000",
            "ca_kee = \"x\"",
            "cert_lifetime = \"5s\"",
            "cert_lifetime = \"soon\"",
            "cert_lifetime = \"90s\"\ncert_days = 1",
        ] {
            let text = format!("{MINIMAL}[enroll]\nca_cert = \"c\"\nca_key = \"k\"\n{bad}\n");
            assert!(Config::parse(&text, Path::new("h.toml")).is_err(), "{bad}");
        }
    }

    #[test]
    fn legacy_keys_are_validated_and_redacted() {
        let text = format!("{MINIMAL}[legacy_device_keys]\n\"s3cret-key\" = \"device-007\"\n");
        let c = Config::parse(&text, Path::new("hub.toml")).unwrap();
        assert_eq!(c.legacy_keys.lookup(b"s3cret-key"), Some("device-007"));
        assert!(!format!("{c:?}").contains("s3cret"));
        let bad = format!("{MINIMAL}[legacy_device_keys]\n\"k\" = \"bad device\"\n");
        assert!(Config::parse(&bad, Path::new("hub.toml")).is_err());
    }
}

//! `[identity]`: the device key (TPM or, explicitly, a file), where the enrolled certificate
//! is kept, and the enrollment token. Without `[identity]` the uploader uses `[hub] cert/key`.

use std::fmt;
use std::path::{Path, PathBuf};

use outpost_identity::{BackendConfig, TpmConfig};
use serde::Deserialize;

/// Folder under `state_dir` holding the TPM key blob and the certificate.
pub const IDENTITY_DIR: &str = "identity";
/// Default certificate file inside [`IDENTITY_DIR`].
pub const CERT_FILE: &str = "device.crt";
/// The persisted time floor inside [`IDENTITY_DIR`] (see `crate::identity::floor`).
pub const TIME_FLOOR_FILE: &str = "time_floor";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawIdentity {
    backend: RawBackend,
    tcti: Option<String>,
    key_file: Option<PathBuf>,
    cert: Option<PathBuf>,
    token: Option<String>,
    token_file: Option<PathBuf>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum RawBackend {
    Tpm,
    File,
}

/// A loaded `[identity]`.
#[derive(Debug, Clone)]
pub struct IdentityConfig {
    /// Which key, and where (TPM: TCTI and the blob `state_dir/identity/identity.tpmkey`).
    pub backend: BackendConfig,
    /// The certificate chain the hub issued (PEM, leaf first); written at enrollment.
    pub cert: PathBuf,
    /// Where the enrollment token comes from, if anywhere.
    pub token: Option<TokenSource>,
    /// The persisted time floor, `state_dir/identity/time_floor`.
    pub time_floor: PathBuf,
}

impl IdentityConfig {
    /// `"tpm"` or `"file"`.
    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            BackendConfig::Tpm(_) => "tpm",
            BackendConfig::File { .. } => "file",
        }
    }
}

/// The enrollment token: inline in the config, or a file read when it is needed (so it can
/// appear later, e.g. on a boot partition).
#[derive(Clone, PartialEq, Eq)]
pub enum TokenSource {
    Inline(String),
    File(PathBuf),
}

impl fmt::Debug for TokenSource {
    // The token is a secret: never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenSource::Inline(_) => f.write_str("Inline(<redacted>)"),
            TokenSource::File(p) => f.debug_tuple("File").field(p).finish(),
        }
    }
}

pub(super) fn resolve(
    raw: RawIdentity,
    resolve: &dyn Fn(&Path) -> PathBuf,
    state_dir: &Path,
) -> Result<IdentityConfig, String> {
    let dir = state_dir.join(IDENTITY_DIR);
    let backend = match raw.backend {
        RawBackend::Tpm => {
            if raw.key_file.is_some() {
                return Err("identity.key_file is only for backend = \"file\"".into());
            }
            let mut tpm = TpmConfig::in_state_dir(&dir);
            if let Some(tcti) = raw.tcti {
                if tcti.trim().is_empty() {
                    return Err("identity.tcti must not be empty".into());
                }
                tpm.tcti = tcti;
            }
            BackendConfig::Tpm(tpm)
        }
        RawBackend::File => {
            if raw.tcti.is_some() {
                return Err("identity.tcti is only for backend = \"tpm\"".into());
            }
            let path = raw.key_file.ok_or(
                "identity.key_file is required with backend = \"file\" (a software key is never \
                 a silent default)",
            )?;
            BackendConfig::File {
                path: resolve(&path),
            }
        }
    };
    let token = match (raw.token, raw.token_file) {
        (Some(_), Some(_)) => {
            return Err("identity.token and identity.token_file exclude each other".into())
        }
        (Some(t), None) if t.trim().is_empty() => {
            return Err("identity.token must not be empty".into())
        }
        (Some(t), None) => Some(TokenSource::Inline(t.trim().to_owned())),
        (None, Some(p)) => Some(TokenSource::File(resolve(&p))),
        (None, None) => None,
    };
    Ok(IdentityConfig {
        backend,
        cert: raw
            .cert
            .map(|p| resolve(&p))
            .unwrap_or_else(|| dir.join(CERT_FILE)),
        token,
        time_floor: dir.join(TIME_FLOOR_FILE),
    })
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, TokenSource};
    use outpost_identity::BackendConfig;
    use std::path::Path;

    const HUB: &str = "[hub]\nurl = \"https://h:1\"\nca = \"ca.pem\"\n";

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(text, Path::new("/etc/outpost/agent.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn tpm_defaults_and_file_backend() {
        let c = parse(&format!(
            "state_dir = \"/s\"\n{HUB}[identity]\nbackend = \"tpm\"\n"
        ))
        .unwrap();
        let id = c.identity.unwrap();
        match &id.backend {
            BackendConfig::Tpm(t) => {
                assert_eq!(t.tcti, "device:/dev/tpmrm0");
                assert_eq!(t.key_blob, Path::new("/s/identity/identity.tpmkey"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(id.cert, Path::new("/s/identity/device.crt"));
        assert_eq!(id.token, None);
        let hub = c.hub.unwrap();
        assert_eq!(
            hub.cert, id.cert,
            "the uploader presents the identity certificate"
        );
        assert_eq!(hub.key, None);

        let c = parse(&format!(
            "{HUB}[identity]\nbackend = \"file\"\nkey_file = \"k.pem\"\ncert = \"c.pem\"\ntoken_file = \"/boot/t\"\n"
        ))
        .unwrap();
        let id = c.identity.unwrap();
        assert_eq!(
            id.backend,
            BackendConfig::File {
                path: "/etc/outpost/k.pem".into()
            }
        );
        assert_eq!(id.cert, Path::new("/etc/outpost/c.pem"));
        assert_eq!(id.token, Some(TokenSource::File("/boot/t".into())));
    }

    #[test]
    fn token_is_never_printed() {
        let c = parse(&format!(
            "{HUB}[identity]\nbackend = \"tpm\"\ntcti = \"swtpm:port=1\"\ntoken = \"opt1_s3cret\"\n"
        ))
        .unwrap();
        assert!(!format!("{c:?}").contains("s3cret"));
        assert_eq!(
            c.identity.unwrap().token,
            Some(TokenSource::Inline("opt1_s3cret".into()))
        );
    }

    #[test]
    fn invalid_combinations_are_errors() {
        for (text, needle) in [
            (format!("{HUB}[identity]\nbackend = \"file\"\n"), "key_file"),
            (
                format!("{HUB}[identity]\nbackend = \"tpm\"\nkey_file = \"k\"\n"),
                "key_file",
            ),
            (
                format!("{HUB}[identity]\nbackend = \"file\"\nkey_file = \"k\"\ntcti = \"x\"\n"),
                "tcti",
            ),
            (
                format!("{HUB}[identity]\nbackend = \"tpm\"\ntoken = \"a\"\ntoken_file = \"b\"\n"),
                "exclude",
            ),
            (
                format!("{HUB}[identity]\nbackend = \"tpm\"\ntoken = \" \"\n"),
                "empty",
            ),
            (
                format!("{HUB}[identity]\nbackend = \"hsm\"\n"),
                "unknown variant",
            ),
            (
                format!("{HUB}[identity]\nbackend = \"tpm\"\ncerts = \"x\"\n"),
                "unknown field",
            ),
            ("[identity]\nbackend = \"tpm\"\n".to_owned(), "[hub]"),
            (
                format!("{HUB}cert = \"c\"\nkey = \"k\"\n[identity]\nbackend = \"tpm\"\n"),
                "hub.cert",
            ),
            (format!("{HUB}cert = \"c\"\n"), "hub.key"),
        ] {
            let err = parse(&text).unwrap_err();
            assert!(err.contains(needle), "{text}: {err}");
        }
    }
}

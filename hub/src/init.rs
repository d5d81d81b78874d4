//! `outpost-hub init`: a complete working pair in one folder (fleet CA, hub server certificate,
//! `hub.toml`, and per device a client certificate plus a ready `agent.toml`) for tests, demos
//! and first-time users.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::config;
use crate::pki::{self, PkiError};

/// Most devices `init` will create in one go.
pub const MAX_DEVICES: u32 = 9_999;
const PUBLIC_MODE: u32 = 0o644;
const SECRET_MODE: u32 = 0o600;

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("{0} already exists; pass --force to overwrite the whole setup (this replaces the fleet CA)")]
    Exists(PathBuf),
    #[error("--devices must be at most {MAX_DEVICES}")]
    TooManyDevices,
    #[error("cannot find a free loopback port: {0}")]
    NoFreePort(std::io::Error),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Pki(#[from] PkiError),
}

#[derive(Debug, Clone)]
pub struct InitOptions {
    pub dir: PathBuf,
    pub devices: u32,
    pub listen: Option<SocketAddr>,
    pub extra_sans: Vec<String>,
    pub force: bool,
}

/// What `init` made, for the summary it prints.
#[derive(Debug, Clone)]
pub struct InitSummary {
    pub dir: PathBuf,
    pub listen: SocketAddr,
    pub hub_url: String,
    pub hub_config: PathBuf,
    pub ca_cert: PathBuf,
    pub server_cert: PathBuf,
    pub sans: Vec<String>,
    /// `(device id, its folder)`.
    pub devices: Vec<(String, PathBuf)>,
}

pub fn device_name(i: u32) -> String {
    format!("device-{i:03}")
}

pub fn run(opts: &InitOptions) -> Result<InitSummary, InitError> {
    if opts.devices > MAX_DEVICES {
        return Err(InitError::TooManyDevices);
    }
    let dir = &opts.dir;
    let devices: Vec<(String, PathBuf)> = (1..=opts.devices)
        .map(|i| (device_name(i), dir.join("devices").join(device_name(i))))
        .collect();
    let mut outputs: Vec<PathBuf> = ["hub.toml", "ca.pem", "ca.key", "server.pem", "server.key"]
        .iter()
        .map(|f| dir.join(f))
        .collect();
    for (_, d) in &devices {
        outputs.extend(
            ["device.pem", "device.key", "hub-ca.pem", "agent.toml"]
                .iter()
                .map(|f| d.join(f)),
        );
    }
    if !opts.force {
        if let Some(existing) = outputs.iter().find(|p| p.exists()) {
            return Err(InitError::Exists(existing.clone()));
        }
    }

    let listen = match opts.listen {
        Some(addr) => addr,
        None => free_loopback_port()?,
    };
    let (host, sans) = host_and_sans(listen, &opts.extra_sans);
    let hub_url = format!("https://{}", SocketAddr::new(host, listen.port()));

    let ca = pki::new_ca()?;
    let server = pki::server_cert(&ca, &sans)?;
    write(&dir.join("ca.pem"), &ca.cert_pem, PUBLIC_MODE)?;
    write(&dir.join("ca.key"), &ca.key_pem, SECRET_MODE)?;
    write(&dir.join("server.pem"), &server.cert_pem, PUBLIC_MODE)?;
    write(&dir.join("server.key"), &server.key_pem, SECRET_MODE)?;
    for (name, folder) in &devices {
        let cert = pki::device_cert(&ca, name)?;
        write(&folder.join("device.pem"), &cert.cert_pem, PUBLIC_MODE)?;
        write(&folder.join("device.key"), &cert.key_pem, SECRET_MODE)?;
        write(&folder.join("hub-ca.pem"), &ca.cert_pem, PUBLIC_MODE)?;
        write(
            &folder.join("agent.toml"),
            &agent_toml(name, &hub_url),
            PUBLIC_MODE,
        )?;
    }
    // hub.toml last: its presence marks a finished setup, and is what a rerun refuses to clobber.
    let hub_config = dir.join("hub.toml");
    write(&hub_config, &config::render_hub_toml(listen), SECRET_MODE)?;
    Ok(InitSummary {
        dir: dir.clone(),
        listen,
        hub_url,
        hub_config,
        ca_cert: dir.join("ca.pem"),
        server_cert: dir.join("server.pem"),
        sans,
        devices,
    })
}

/// The agent configuration for one device; relative paths are resolved by the agent against
/// the folder of this file.
pub fn agent_toml(device: &str, hub_url: &str) -> String {
    format!(
        r#"device_id = "{device}"
state_dir = "state"

[api]
socket = "agent.sock"

[hub]
url = "{hub_url}"
ca = "hub-ca.pem"
cert = "device.pem"
key = "device.key"
"#
    )
}

/// The port is only reserved while probing; it is released before the hub binds it, which is
/// fine for the tests and demos this exists for.
fn free_loopback_port() -> Result<SocketAddr, InitError> {
    let probe = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(InitError::NoFreePort)?;
    probe.local_addr().map_err(InitError::NoFreePort)
}

/// The host agents should dial and the server certificate's names. A wildcard listen address
/// is dialled over loopback; a specific one is dialled directly and so must be in the SANs.
fn host_and_sans(listen: SocketAddr, extra: &[String]) -> (IpAddr, Vec<String>) {
    let host = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let mut sans = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    for name in std::iter::once(host.to_string()).chain(extra.iter().cloned()) {
        if !sans.contains(&name) {
            sans.push(name);
        }
    }
    (host, sans)
}

/// Writes via a temporary file and a rename so a crash never leaves a half-written key, and
/// creates the file with its final mode so a secret is never briefly world-readable.
fn write(path: &Path, contents: &str, mode: u32) -> Result<(), InitError> {
    let err = |source| InitError::Write {
        path: path.to_owned(),
        source,
    };
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(err)?;
    }
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    let _ = fs::remove_file(&tmp);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(err)?;
    file.write_all(contents.as_bytes()).map_err(err)?;
    // The umask may have narrowed the mode; state it exactly.
    file.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(err)?;
    file.sync_all().map_err(err)?;
    fs::rename(&tmp, path).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_hosts() {
        assert_eq!(device_name(1), "device-001");
        assert_eq!(device_name(1234), "device-1234");
        let (host, sans) = host_and_sans("0.0.0.0:8443".parse().unwrap(), &["hub.example".into()]);
        assert_eq!(host, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(sans, ["localhost", "127.0.0.1", "hub.example"]);
        let (host, sans) = host_and_sans("10.1.2.3:8443".parse().unwrap(), &[]);
        assert_eq!(host.to_string(), "10.1.2.3");
        assert_eq!(sans, ["localhost", "127.0.0.1", "10.1.2.3"]);
    }

    #[test]
    fn agent_toml_format() {
        assert_eq!(
            agent_toml("device-001", "https://127.0.0.1:8443"),
            "device_id = \"device-001\"\nstate_dir = \"state\"\n\n[api]\nsocket = \"agent.sock\"\n\n[hub]\nurl = \"https://127.0.0.1:8443\"\nca = \"hub-ca.pem\"\ncert = \"device.pem\"\nkey = \"device.key\"\n"
        );
    }
}

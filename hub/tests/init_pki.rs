//! `init` output checked with the real `openssl verify`, plus file modes and overwrite rules.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use outpost_hub::config::Config;
use outpost_hub::init::{self, InitError, InitOptions};

fn openssl_verify(dir: &Path, purpose: &str, cert: &Path) -> (bool, String) {
    let out = Command::new("openssl")
        .args(["verify", "-CAfile"])
        .arg(dir.join("ca.pem"))
        .args(["-purpose", purpose])
        .arg(cert)
        .output()
        .expect("openssl is installed");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn certificates_verify_with_openssl_and_keys_are_private() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let summary = common::init_dir(dir, 2);
    assert_eq!(summary.devices.len(), 2);

    let (ok, out) = openssl_verify(dir, "sslserver", &dir.join("server.pem"));
    assert!(ok, "server cert: {out}");
    // The server certificate must not be usable as a client identity and vice versa.
    let (ok, _) = openssl_verify(dir, "sslclient", &dir.join("server.pem"));
    assert!(!ok, "server cert must not pass as a client cert");

    for name in ["device-001", "device-002"] {
        let folder = dir.join("devices").join(name);
        let (ok, out) = openssl_verify(dir, "sslclient", &folder.join("device.pem"));
        assert!(ok, "{name}: {out}");
        let (ok, _) = openssl_verify(dir, "sslserver", &folder.join("device.pem"));
        assert!(!ok, "{name} must not pass as a server cert");
        assert_eq!(
            std::fs::read(folder.join("hub-ca.pem")).unwrap(),
            std::fs::read(dir.join("ca.pem")).unwrap()
        );
        assert_eq!(mode(&folder.join("device.key")), 0o600);
        let subject = Command::new("openssl")
            .args(["x509", "-noout", "-subject", "-in"])
            .arg(folder.join("device.pem"))
            .output()
            .unwrap();
        assert!(
            String::from_utf8_lossy(&subject.stdout).contains(&format!("CN = {name}")),
            "{subject:?}"
        );
    }
    assert_eq!(mode(&dir.join("ca.key")), 0o600);
    assert_eq!(mode(&dir.join("server.key")), 0o600);

    let text = Command::new("openssl")
        .args(["x509", "-noout", "-ext", "subjectAltName", "-in"])
        .arg(dir.join("server.pem"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("DNS:localhost") && text.contains("IP Address:127.0.0.1"),
        "{text}"
    );
}

#[test]
fn hub_and_agent_configs_agree() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let summary = common::init_dir(dir, 1);
    let config = Config::load(&dir.join("hub.toml")).unwrap();
    assert!(config.listen.ip().is_loopback() && config.listen.port() != 0);
    assert_eq!(config.tls.client_ca, dir.join("ca.pem"));
    let agent = std::fs::read_to_string(dir.join("devices/device-001/agent.toml")).unwrap();
    let expected = format!(
        "device_id = \"device-001\"\nstate_dir = \"state\"\n\n[api]\nsocket = \"agent.sock\"\n\n[hub]\nurl = \"https://127.0.0.1:{}\"\nca = \"hub-ca.pem\"\ncert = \"device.pem\"\nkey = \"device.key\"\n",
        config.listen.port()
    );
    assert_eq!(agent, expected);
    assert_eq!(
        summary.hub_url,
        format!("https://127.0.0.1:{}", config.listen.port())
    );
}

#[test]
fn existing_setup_is_not_overwritten_without_force() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    common::init_dir(dir, 1);
    let ca_before = std::fs::read(dir.join("ca.pem")).unwrap();
    let mut opts = InitOptions {
        dir: dir.to_owned(),
        devices: 1,
        listen: Some("127.0.0.1:9999".parse().unwrap()),
        extra_sans: vec!["hub.example".into()],
        force: false,
    };
    assert!(matches!(init::run(&opts), Err(InitError::Exists(_))));
    assert_eq!(std::fs::read(dir.join("ca.pem")).unwrap(), ca_before);

    opts.force = true;
    let summary = init::run(&opts).unwrap();
    assert_ne!(std::fs::read(dir.join("ca.pem")).unwrap(), ca_before);
    assert_eq!(summary.listen.port(), 9999);
    assert!(summary.sans.contains(&"hub.example".to_owned()));
    assert_eq!(mode(&dir.join("ca.key")), 0o600);
}

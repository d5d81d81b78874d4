//! The real `outpost-hub` binary: init, serve (listening line, SIGTERM), records and stats.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{ca_pem, device_identity, record_json, zstd_batch, Client};

fn hub() -> Command {
    Command::new(env!("CARGO_BIN_EXE_outpost-hub"))
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn init_serve_upload_records_stats() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("setup");
    let summary = run_ok(hub().args(["init", "--devices", "2", "--dir"]).arg(&dir));
    assert!(
        summary.contains("device-002") && summary.contains("hub.toml"),
        "{summary}"
    );
    let again = hub().args(["init", "--dir"]).arg(&dir).output().unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));

    let config = dir.join("hub.toml");
    let mut child = hub()
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr: SocketAddr = line
        .trim()
        .strip_prefix("outpost-hub listening on https://")
        .unwrap_or_else(|| panic!("{line:?}"))
        .parse()
        .unwrap();

    for device in ["device-001", "device-002"] {
        let mut c = Client::connect(addr, &ca_pem(&dir), Some(&device_identity(&dir, device)))
            .await
            .unwrap();
        let body = zstd_batch(&[
            record_json("b", "temp", r#"{"v": 2}"#),
            record_json("a", "temp", r#"{"v": 1}"#),
        ]);
        let (status, _) = c
            .send("POST", "/v1/ingest", &[("content-encoding", "zstd")], body)
            .await
            .unwrap();
        assert_eq!(status, 200);
    }

    // Reading works while the hub runs (WAL).
    let records = run_ok(
        hub()
            .args(["records", "--json", "--device", "device-002", "--config"])
            .arg(&config),
    );
    let records: serde_json::Value = serde_json::from_str(&records).unwrap();
    let records = records.as_array().unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0]["device"], "device-002");
    assert_eq!(records[0]["payload"], serde_json::json!({"v": 2}));
    assert_eq!(records[0]["created_at"], "2026-11-22T04:54:47.123Z");
    for key in ["id", "stream", "created_at_ms", "received_at", "sha256"] {
        assert!(records[0].get(key).is_some(), "{key}");
    }

    let stats = run_ok(hub().args(["stats", "--json", "--config"]).arg(&config));
    let stats: serde_json::Value = serde_json::from_str(&stats).unwrap();
    assert_eq!(stats.as_array().unwrap().len(), 2);
    assert_eq!(
        (
            stats[0]["records"].as_u64(),
            stats[0]["checksums_ok"].as_u64(),
            stats[0]["checksums_bad"].as_u64()
        ),
        (Some(2), Some(2), Some(0))
    );
    let table = run_ok(hub().args(["stats", "--config"]).arg(&config));
    assert!(
        table.contains("4 record(s) from 2 device(s); 0 checksum failure(s)"),
        "{table}"
    );

    assert!(Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

#[test]
fn config_errors_are_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("hub.toml");
    std::fs::write(&config, "listen = \"127.0.0.1:0\"\nbogus = 1\n[tls]\ncert = \"a\"\nkey = \"b\"\nclient_ca = \"c\"\n").unwrap();
    let out = hub()
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bogus"));
    let out = hub()
        .args(["records", "--config"])
        .arg(Path::new("/nonexistent/hub.toml"))
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn help_has_examples() {
    for sub in ["init", "serve", "records", "stats"] {
        let text = run_ok(hub().args([sub, "--help"]));
        assert!(text.contains("EXAMPLES:"), "{sub}");
    }
    assert!(run_ok(hub().arg("--help")).contains("EXAMPLES:"));
}

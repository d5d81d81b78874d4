//! Enrollment over real TLS: a certificate-less client enrolls with a token from the real
//! `outpost-hub token create`, then uploads with the issued certificate; revocation bites on
//! the next request of an open connection; the `devices` and `device revoke` CLI.

mod common;

use std::process::Command;

use common::{ca_pem, record_json, zstd_batch, Client, RunningHub};
use hyper::StatusCode;
use rcgen::{CertificateParams, KeyPair, PublicKeyData as _};
use serde_json::json;

const ZSTD: (&str, &str) = ("content-encoding", "zstd");

fn hub_cli(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_outpost-hub"))
        .args(args)
        .output()
        .unwrap()
}

fn token(config: &std::path::Path, extra: &[&str]) -> String {
    let mut args = vec!["token", "create", "--config", config.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out = hub_cli(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 1, "only the token on stdout: {text}");
    text.trim().to_owned()
}

fn csr(key: &KeyPair) -> String {
    CertificateParams::new(Vec::<String>::new())
        .unwrap()
        .serialize_request(key)
        .unwrap()
        .pem()
        .unwrap()
}

async fn enroll(
    hub: &RunningHub,
    ca: &str,
    token: &str,
    key: &KeyPair,
    protection: &str,
) -> (StatusCode, serde_json::Value) {
    let mut anon = Client::connect(hub.addr, ca, None).await.unwrap();
    let body = json!({"token": token, "csr": csr(key), "key_protection": protection});
    anon.send("POST", "/v1/enroll", &[], body.to_string().into_bytes())
        .await
        .unwrap()
}

#[tokio::test]
async fn enroll_then_ingest_then_revoke() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    common::init_dir(dir, 1);
    let config = dir.join("hub.toml");
    // Tokens can be made before the hub ever ran (the database is created).
    let single = token(&config, &[]);
    let hub = RunningHub::start(&config).await;
    let ca = ca_pem(dir);

    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let (status, resp) = enroll(&hub, &ca, &single, &key, "software").await;
    assert_eq!(status, StatusCode::OK, "{resp}");
    let id = resp["device_id"].as_str().unwrap().to_owned();
    assert_eq!(
        id,
        outpost_proto::sha256_hex(&key.subject_public_key_info())
    );
    let chain = resp["certificate_chain"].as_str().unwrap().to_owned();

    // The single-use token is spent, also for another key.
    let other = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let (status, resp) = enroll(&hub, &ca, &single, &other, "software").await;
    assert_eq!(
        (status, resp["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("token_used_up"))
    );

    // Upload with the issued certificate: the device id is the key hash.
    let me = (chain, key.serialize_pem());
    let mut client = Client::connect(hub.addr, &ca, Some(&me)).await.unwrap();
    let (status, resp) = client
        .send(
            "POST",
            "/v1/ingest",
            &[ZSTD],
            zstd_batch(&[record_json("e1", "temp", "1")]),
        )
        .await
        .unwrap();
    assert_eq!(
        (status, resp["acked"].clone()),
        (StatusCode::OK, json!(["e1"]))
    );

    let out = hub_cli(&["devices", "--config", config.to_str().unwrap(), "--json"]);
    assert!(out.status.success());
    let devices: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(devices[0]["id"], id.as_str());
    assert_eq!(devices[0]["key_protection"], "software");
    assert_eq!(devices[0]["status"], "enrolled");
    assert!(devices[0]["last_seen"].is_string(), "{devices}");
    assert!(devices[0]["cert_not_after"].is_string());

    // Revoked while the connection is open: the next request on it gets 403.
    let out = hub_cli(&[
        "device",
        "revoke",
        "--config",
        config.to_str().unwrap(),
        &id,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (status, resp) = client
        .send(
            "POST",
            "/v1/ingest",
            &[ZSTD],
            zstd_batch(&[record_json("e2", "temp", "2")]),
        )
        .await
        .unwrap();
    assert_eq!(status, StatusCode::FORBIDDEN, "{resp}");
    let (status, _) = client.send("GET", "/healthz", &[], vec![]).await.unwrap();
    assert_eq!(status, StatusCode::FORBIDDEN);
    // And it cannot enroll again, even with a fresh token; the token is not spent.
    let fresh = token(&config, &["--uses", "2"]);
    let (status, resp) = enroll(&hub, &ca, &fresh, &key, "software").await;
    assert_eq!(
        (status, resp["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("device_revoked"))
    );
    let (status, _) = enroll(&hub, &ca, &fresh, &other, "software").await;
    assert_eq!(status, StatusCode::OK);

    let out = hub_cli(&["devices", "--config", config.to_str().unwrap()]);
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        table.contains("revoked") && table.contains("software"),
        "{table}"
    );
    assert!(table.ends_with("2 device(s)\n"), "{table}");
    hub.stop().await;
}

#[tokio::test]
async fn expired_tokens_and_bad_requests_are_refused_with_json() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    common::init_dir(dir, 0);
    let config = dir.join("hub.toml");
    let hub = RunningHub::start(&config).await;
    let ca = ca_pem(dir);
    let short = token(&config, &["--ttl", "1s"]);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let (status, resp) = enroll(&hub, &ca, &short, &key, "software").await;
    assert_eq!(
        (status, resp["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("token_expired"))
    );

    let mut anon = Client::connect(hub.addr, &ca, None).await.unwrap();
    let (status, resp) = anon
        .send("POST", "/v1/enroll", &[], b"not json".to_vec())
        .await
        .unwrap();
    assert_eq!(
        (status, resp["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_request"))
    );
    let (status, _) = anon.send("GET", "/v1/enroll", &[], vec![]).await.unwrap();
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    let (status, _) = anon
        .send("POST", "/v1/enroll", &[], vec![b' '; 100_000])
        .await
        .unwrap();
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

    // Usage errors of the CLI.
    let out = hub_cli(&[
        "token",
        "create",
        "--config",
        config.to_str().unwrap(),
        "--uses",
        "0",
    ]);
    assert!(!out.status.success());
    let out = hub_cli(&[
        "device",
        "revoke",
        "--config",
        config.to_str().unwrap(),
        "bad id",
    ]);
    assert!(!out.status.success());
    hub.stop().await;
}

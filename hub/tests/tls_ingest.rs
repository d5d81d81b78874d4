//! The hub in-process over real TLS: mutual auth, native batches, legacy keys and routing.

mod common;

use common::{ca_pem, device_identity, record_json, zstd_batch, Client, RunningHub};
use hyper::StatusCode;
use outpost_hub::store::{Filter, Store};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};
use serde_json::json;

const ZSTD: (&str, &str) = ("content-encoding", "zstd");

fn stored(dir: &std::path::Path) -> Vec<outpost_hub::store::StoredRecord> {
    Store::open_existing(&common::db_path(dir))
        .unwrap()
        .list(&Filter::default())
        .unwrap()
}

#[tokio::test]
async fn native_batch_is_stored_once_and_acked_again() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    common::init_dir(dir, 1);
    let hub = RunningHub::start(&dir.join("hub.toml")).await;
    let ca = ca_pem(dir);
    let me = device_identity(dir, "device-001");
    let mut client = Client::connect(hub.addr, &ca, Some(&me)).await.unwrap();

    let body = zstd_batch(&[
        record_json("r1", "temp", r#"{"t": 22.50}"#),
        record_json("r2", "temp", "[1, 2]"),
    ]);
    let (status, resp) = client
        .send("POST", "/v1/ingest", &[ZSTD], body.clone())
        .await
        .unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(resp, json!({"acked": ["r1", "r2"], "rejected": []}));
    let rows = stored(dir);
    assert_eq!(rows.len(), 2);
    assert_eq!(
        (rows[0].device.as_str(), rows[0].payload.as_str()),
        ("device-001", r#"{"t": 22.50}"#)
    );

    // Same connection (keep-alive): a retry is acked again and stored once.
    let (status, resp) = client
        .send("POST", "/v1/ingest", &[ZSTD], body)
        .await
        .unwrap();
    assert_eq!(
        (status, resp["acked"].clone()),
        (StatusCode::OK, json!(["r1", "r2"]))
    );
    assert_eq!(stored(dir).len(), 2);

    // Plain JSON is accepted too; a wrong checksum is rejected per record.
    let wrong =
        record_json("r3", "temp", "1").replace(&outpost_proto::sha256_hex(b"1"), &"0".repeat(64));
    let plain = format!(r#"{{"records":[{wrong}]}}"#).into_bytes();
    let (status, resp) = client.send("POST", "/v1/ingest", &[], plain).await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(resp["rejected"][0]["id"], "r3");

    // Garbage zstd: 400 with a one-line error, nothing stored.
    let (status, resp) = client
        .send("POST", "/v1/ingest", &[ZSTD], b"garbage".to_vec())
        .await
        .unwrap();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        resp["error"]
            .as_str()
            .unwrap()
            .starts_with("body is not valid zstd: "),
        "{resp}"
    );
    assert_eq!(stored(dir).len(), 2);
    hub.stop().await;
}

#[tokio::test]
async fn routing_and_body_limits() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    common::init_dir(dir, 1);
    let config = std::fs::read_to_string(dir.join("hub.toml"))
        .unwrap()
        .replace("max_body_bytes = 16777216", "max_body_bytes = 1000");
    std::fs::write(dir.join("hub.toml"), config).unwrap();
    let hub = RunningHub::start(&dir.join("hub.toml")).await;
    let mut client = Client::connect(
        hub.addr,
        &ca_pem(dir),
        Some(&device_identity(dir, "device-001")),
    )
    .await
    .unwrap();

    assert_eq!(
        client.send("GET", "/healthz", &[], vec![]).await.unwrap().0,
        StatusCode::OK
    );
    let (status, resp) = client.send("GET", "/nope", &[], vec![]).await.unwrap();
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(resp["error"].is_string());
    assert_eq!(
        client
            .send("GET", "/v1/ingest", &[], vec![])
            .await
            .unwrap()
            .0,
        StatusCode::METHOD_NOT_ALLOWED
    );
    assert_eq!(
        client
            .send("DELETE", "/healthz", &[], vec![])
            .await
            .unwrap()
            .0,
        StatusCode::METHOD_NOT_ALLOWED
    );
    assert_eq!(
        client
            .send("POST", "/v1/ingest", &[("content-encoding", "br")], vec![])
            .await
            .unwrap()
            .0,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    let (status, resp) = client
        .send("POST", "/v1/ingest", &[], vec![b' '; 1001])
        .await
        .unwrap();
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(resp["error"].as_str().unwrap().contains("1000"), "{resp}");
    // Legacy keys are off in this config.
    let (status, resp) = client
        .send("POST", "/ingest", &[("x-device-key", "k")], b"{}".to_vec())
        .await
        .unwrap();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        resp["error"].as_str().unwrap().contains("not enabled"),
        "{resp}"
    );
    hub.stop().await;
}

/// A CA and client certificate the hub has never seen, with a plausible device name.
fn foreign_identity() -> common::Identity {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::default();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Outpost fleet CA");
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, "device-001");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.signed_by(&key, &issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// A refused client either fails the handshake or (TLS 1.3, where the client finishes first)
/// gets the server's alert on its first request.
async fn is_refused(hub: &RunningHub, ca: &str, identity: Option<&common::Identity>) -> bool {
    match Client::connect(hub.addr, ca, identity).await {
        Err(_) => true,
        Ok(mut c) => c
            .send(
                "POST",
                "/v1/ingest",
                &[ZSTD],
                zstd_batch(&[record_json("x1", "temp", "1")]),
            )
            .await
            .is_err(),
    }
}

#[tokio::test]
async fn foreign_or_missing_client_certificates_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    common::init_dir(dir, 1);
    let hub = RunningHub::start(&dir.join("hub.toml")).await;
    let ca = ca_pem(dir);
    assert!(is_refused(&hub, &ca, Some(&foreign_identity())).await);
    // init enables enrollment, so a certificate-less client completes the handshake (to reach
    // /v1/enroll) but ingest and every other route still refuse it.
    let mut anon = Client::connect(hub.addr, &ca, None).await.unwrap();
    let batch = zstd_batch(&[record_json("x1", "temp", "1")]);
    let (status, resp) = anon
        .send("POST", "/v1/ingest", &[ZSTD], batch)
        .await
        .unwrap();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(resp, json!({"error": "client certificate required"}));
    let (status, _) = anon.send("GET", "/healthz", &[], vec![]).await.unwrap();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(stored(dir).is_empty());
    hub.stop().await;
}

#[tokio::test]
async fn without_enroll_or_legacy_keys_client_certificates_are_mandatory_in_the_handshake() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    common::init_dir(dir, 1);
    let config = std::fs::read_to_string(dir.join("hub.toml")).unwrap();
    let start = config.find("[enroll]").unwrap();
    let end = start + config[start..].find("\n\n").unwrap();
    std::fs::write(
        dir.join("hub.toml"),
        format!("{}{}", &config[..start], &config[end..]),
    )
    .unwrap();
    let hub = RunningHub::start(&dir.join("hub.toml")).await;
    assert!(hub.config.enroll.is_none());
    let ca = ca_pem(dir);
    assert!(is_refused(&hub, &ca, None).await);
    assert!(is_refused(&hub, &ca, Some(&foreign_identity())).await);
    let me = device_identity(dir, "device-001");
    let mut client = Client::connect(hub.addr, &ca, Some(&me)).await.unwrap();
    let (status, resp) = client
        .send("POST", "/v1/enroll", &[], b"{}".to_vec())
        .await
        .unwrap();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(resp["code"], "not_configured");
    hub.stop().await;
}

#[tokio::test]
async fn legacy_keys_admit_certless_reference_agents() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    common::init_dir(dir, 1);
    let mut config = std::fs::read_to_string(dir.join("hub.toml")).unwrap();
    config.push_str("\n[legacy_device_keys]\n\"secret-key-1\" = \"device-007\"\n");
    std::fs::write(dir.join("hub.toml"), config).unwrap();
    let hub = RunningHub::start(&dir.join("hub.toml")).await;
    let ca = ca_pem(dir);

    // A foreign certificate is still refused even though anonymous clients are allowed.
    assert!(is_refused(&hub, &ca, Some(&foreign_identity())).await);

    let mut anon = Client::connect(hub.addr, &ca, None).await.unwrap();
    let (status, resp) = anon
        .send(
            "POST",
            "/v1/ingest",
            &[ZSTD],
            zstd_batch(&[record_json("x1", "temp", "1")]),
        )
        .await
        .unwrap();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(resp, json!({"error": "client certificate required"}));

    let sum = outpost_proto::sha256_hex(br#"{"temp":22.4,"humidity":45}"#);
    let body = format!(
        r#"{{"id":"6f1c7a52-3c1b-4b53-9a43-d7f1b1a0c001","timestamp":1795323287123,"sensorData":{{"temp": 22.4, "humidity": 45}},"checksum":"{sum}"}}"#
    );
    let headers = [
        ("x-device-key", "secret-key-1"),
        ("x-payload-checksum", sum.as_str()),
        ("content-type", "application/json"),
    ];
    for (path, stored_now) in [
        ("/ingest", true),
        ("/v1/ingest/ingest", false),
        ("/v1/ingest", false),
    ] {
        let (status, resp) = anon
            .send("POST", path, &headers, body.clone().into_bytes())
            .await
            .unwrap();
        assert_eq!(status, StatusCode::OK, "{path}: {resp}");
        assert_eq!(
            resp,
            json!({"id": "6f1c7a52-3c1b-4b53-9a43-d7f1b1a0c001", "stored": stored_now}),
            "{path}"
        );
    }
    let rows = stored(dir);
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].device.as_str(), rows[0].stream.as_str()),
        ("device-007", "legacy")
    );

    let (status, resp) = anon
        .send(
            "POST",
            "/ingest",
            &[("x-device-key", "secret-key-2")],
            body.clone().into_bytes(),
        )
        .await
        .unwrap();
    assert_eq!(
        (status, resp),
        (
            StatusCode::UNAUTHORIZED,
            json!({"error": "unknown device key"})
        )
    );
    let (status, _) = anon
        .send("POST", "/ingest", &[], body.into_bytes())
        .await
        .unwrap();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let bad =
        format!(r#"{{"id":"r9","timestamp":1,"sensorData":{{"temp":1}},"checksum":"{sum}"}}"#);
    let (status, resp) = anon
        .send("POST", "/ingest", &headers[..1], bad.into_bytes())
        .await
        .unwrap();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        resp["error"]
            .as_str()
            .unwrap()
            .contains("checksum mismatch"),
        "{resp}"
    );

    // Devices with certificates keep working alongside.
    let mut dev = Client::connect(hub.addr, &ca, Some(&device_identity(dir, "device-001")))
        .await
        .unwrap();
    let (status, _) = dev
        .send(
            "POST",
            "/v1/ingest",
            &[ZSTD],
            zstd_batch(&[record_json("x1", "temp", "1")]),
        )
        .await
        .unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(stored(dir).len(), 2);
    hub.stop().await;
}

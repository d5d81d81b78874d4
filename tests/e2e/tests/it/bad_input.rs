//! Test 4: bad input at the local API and at the hub gets a clear 4xx, stores nothing, and the
//! daemons keep serving.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};
use outpost_e2e::metrics::Metrics;
use outpost_e2e::publish::publish;
use outpost_e2e::{Agent, Fleet, Hub};
use serde_json::Value;

#[test]
fn local_api_refuses_bad_input_and_stores_nothing() -> Result<()> {
    let fleet = Fleet::init(1)?;
    let dev = fleet.device(1);
    dev.set_config("api", "max_body_bytes = 4096")?;
    let tcp_port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    dev.set_config("api", &format!("tcp = \"127.0.0.1:{tcp_port}\""))?;
    let _agent = Agent::start(&dev.config)?;
    let mut api = dev.api();

    /// One bad request: what it is, where it goes, its headers and body, the status it must get.
    struct Case<'a>(&'a str, &'a str, &'a [(&'a str, &'a str)], Vec<u8>, u16);
    let json: &[(&str, &str)] = &[("Content-Type", "application/json")];
    let cases = [
        Case(
            "invalid JSON",
            "/v1/outbox/ok",
            json,
            b"{\"a\": ".to_vec(),
            400,
        ),
        Case(
            "two JSON values",
            "/v1/outbox/ok",
            json,
            b"{} {}".to_vec(),
            400,
        ),
        Case("empty body", "/v1/outbox/ok", json, Vec::new(), 400),
        Case(
            "oversize",
            "/v1/outbox/ok",
            json,
            format!("\"{}\"", "x".repeat(5000)).into_bytes(),
            413,
        ),
        Case(
            "bad stream name",
            "/v1/outbox/Bad%20Name",
            json,
            b"{}".to_vec(),
            400,
        ),
        Case(
            "stream starting with a dot",
            "/v1/outbox/.hidden",
            json,
            b"{}".to_vec(),
            400,
        ),
        Case(
            "unknown priority",
            "/v1/outbox/ok?priority=urgent",
            json,
            b"{}".to_vec(),
            400,
        ),
        Case(
            "bad idempotency key",
            "/v1/outbox/ok",
            &[("Idempotency-Key", "a b/c")],
            b"{}".to_vec(),
            400,
        ),
    ];
    for Case(what, path, headers, body, want) in cases {
        let r = api.post(path, headers, &body)?;
        assert_eq!(
            r.status,
            want,
            "{what}: {}",
            String::from_utf8_lossy(&r.body)
        );
        if want == 413 {
            // The agent refuses a declared oversize body without reading it, so it cannot keep
            // that connection: continue on a new one, as any HTTP client would.
            api = dev.api();
        }
        let err = r.json().with_context(|| what.to_string())?;
        let msg = err["error"].as_str().unwrap_or_default();
        assert!(
            !msg.is_empty() && !msg.contains('\n'),
            "{what}: one-line reason expected, got {err}"
        );
    }
    let r = api.get("/v1/nothing-here")?;
    assert_eq!(r.status, 404);
    assert_eq!(
        Metrics::fetch(&mut api)?.pending(),
        0,
        "nothing partial was stored"
    );

    // Still serving, and an idempotency key makes a retry store once.
    let (s1, p1, _) = publish(&mut api, "ok", br#"{"fine":true}"#, "")?;
    assert_eq!(s1, 202);
    let key = [("Idempotency-Key", "order-42")];
    let a = api.post("/v1/outbox/ok", &key, br#"{"n":1}"#)?;
    let b = api.post("/v1/outbox/ok", &key, br#"{"n":1}"#)?;
    assert_eq!((a.status, b.status), (202, 202));
    assert_eq!(a.json()?["id"], "order-42");
    assert_eq!(b.json()?["id"], "order-42");
    let c = api.post("/v1/outbox/ok", &key, br#"{"n":2}"#)?;
    assert_eq!(c.status, 409, "same key, different payload");
    assert_eq!(Metrics::fetch(&mut api)?.pending(), 2);
    assert!(p1.is_some());

    // The loopback TCP listener (open to every local user) publishes, but never installs.
    let tcp = |request: &str| -> Result<String> {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", tcp_port))?;
        s.write_all(request.as_bytes())?;
        let mut answer = String::new();
        s.read_to_string(&mut answer)?;
        Ok(answer)
    };
    let install = tcp("POST /v1/install HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 21\r\n\r\n{\"bundle\":\"/tmp/b.x\"}")?;
    assert!(install.starts_with("HTTP/1.1 403"), "{install}");
    assert!(install.contains("unix socket"), "{install}");
    let published = tcp("POST /v1/outbox/ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}")?;
    assert!(published.starts_with("HTTP/1.1 202"), "{published}");

    // The CLI reports a refusal with a non-zero exit and the agent's reason.
    let out = dev.ctl(&["publish", "ok", "{not json"], None)?;
    assert!(!out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).trim().is_empty());
    let out = dev.ctl(&["publish", "ok", "-"], Some(br#"{"from":"stdin"}"#))?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(Metrics::fetch(&mut api)?.pending(), 4);
    Ok(())
}

/// curl, a real independent TLS client, posting to the hub's ingest endpoint.
fn curl_ingest(
    hub_url: &str,
    fleet_dir: &Path,
    cert: Option<(&Path, &Path)>,
    body: &[u8],
) -> Result<(Option<u16>, String)> {
    let tmp = tempfile::NamedTempFile::new()?;
    std::fs::write(tmp.path(), body)?;
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-o", "-", "-w", "\n%{http_code}", "--cacert"])
        .arg(fleet_dir.join("ca.pem"))
        .args([
            "-H",
            "Content-Type: application/json",
            "-H",
            "Content-Encoding: zstd",
            "--data-binary",
        ])
        .arg(format!("@{}", tmp.path().display()));
    if let Some((c, k)) = cert {
        cmd.arg("--cert").arg(c).arg("--key").arg(k);
    }
    cmd.arg(format!("{hub_url}/v1/ingest"));
    let out = cmd.output()?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    if !out.status.success() {
        return Ok((None, String::from_utf8_lossy(&out.stderr).to_string()));
    }
    let (body, code) = text.rsplit_once('\n').unwrap_or((&text, ""));
    Ok((code.trim().parse().ok(), body.to_owned()))
}

fn batch(sha256: &str) -> Vec<u8> {
    let json = format!(
        r#"{{"records":[{{"id":"e2e-1","stream":"s","created_at":1795323287123,"sha256":"{sha256}","payload":{{"a":1}}}}]}}"#
    );
    zstd::encode_all(json.as_bytes(), 3).expect("zstd in memory")
}

#[test]
fn hub_refuses_bad_input_and_stores_nothing() -> Result<()> {
    let fleet = Fleet::init(1)?;
    let dev = fleet.device(1);
    let mut hub = Hub::start(&fleet.hub_config())?;
    let cert = Some((dev.dir.join("device.pem"), dev.dir.join("device.key")));
    let cert = cert.as_ref().map(|(c, k)| (c.as_path(), k.as_path()));

    // Wrong checksum: refused per record with a reason, nothing stored.
    let (code, body) = curl_ingest(&hub.url, &fleet.dir, cert, &batch(&"0".repeat(64)))?;
    assert_eq!(code, Some(200), "{body}");
    let v: Value = serde_json::from_str(&body)?;
    assert_eq!(v["acked"], serde_json::json!([]));
    assert_eq!(v["rejected"][0]["id"], "e2e-1");
    assert!(fleet.hub_records(None, None)?.is_empty());

    // Garbage zstd and a compressed non-JSON body: 400 with a one-line reason.
    for (what, body) in [
        ("garbage zstd", b"\x28\xb5\x2f\xfdgarbage".to_vec()),
        ("not JSON", zstd::encode_all(&b"nope"[..], 3)?),
    ] {
        let (code, text) = curl_ingest(&hub.url, &fleet.dir, cert, &body)?;
        assert_eq!(code, Some(400), "{what}: {text}");
        let v: Value = serde_json::from_str(&text)?;
        assert!(
            v["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{what}: {text}"
        );
    }

    // A client certificate from another CA, and none at all: the TLS handshake is refused.
    let other = tempfile::tempdir()?;
    let (oc, ok) = (other.path().join("c.pem"), other.path().join("c.key"));
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=device-001",
            "-keyout",
        ])
        .arg(&ok)
        .arg("-out")
        .arg(&oc)
        .output()?;
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let good_sha = outpost_proto::sha256_hex(br#"{"a":1}"#);
    let (code, err) = curl_ingest(&hub.url, &fleet.dir, Some((&oc, &ok)), &batch(&good_sha))?;
    assert!(
        code.is_none() || code == Some(401) || code == Some(403),
        "foreign certificate accepted: {code:?} {err}"
    );
    let (code, err) = curl_ingest(&hub.url, &fleet.dir, None, &batch(&good_sha))?;
    assert!(
        code.is_none() || code == Some(401),
        "no certificate accepted: {code:?} {err}"
    );
    assert!(
        fleet.hub_records(None, None)?.is_empty(),
        "nothing stored by bad requests"
    );

    // The hub is still serving, and the good record is stored once even when sent twice.
    for _ in 0..2 {
        let (code, body) = curl_ingest(&hub.url, &fleet.dir, cert, &batch(&good_sha))?;
        assert_eq!(code, Some(200), "{body}");
        let v: Value = serde_json::from_str(&body)?;
        assert_eq!(v["acked"], serde_json::json!(["e2e-1"]));
    }
    let stored = fleet.hub_records(None, None)?;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["device"], "device-001");
    assert!(hub.alive());
    Ok(())
}

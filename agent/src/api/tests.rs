//! API tests against a real daemon: real unix socket, real outbox in a tempdir.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use outpost_outbox::{Outbox, OutboxConfig};
use outpost_proto::ingest::ErrorBody;
use outpost_proto::Priority;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use crate::config::Config;
use crate::daemon::{self, Running};

struct Agent {
    dir: tempfile::TempDir,
    socket: PathBuf,
    running: Option<Running>,
}

fn config(dir: &Path, extra: &str) -> Config {
    let text = format!(
        "device_id = \"dev-test\"\nstate_dir = \"state\"\n[api]\nsocket = \"run/agent.sock\"\nsocket_mode = \"0600\"\nmax_body_bytes = 256\n[outbox.streams.alarms]\npriority = \"critical\"\n{extra}"
    );
    Config::parse(&text, &dir.join("agent.toml")).unwrap()
}

async fn agent(extra: &str) -> Agent {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), extra);
    let socket = cfg.api.socket.clone();
    let running = daemon::start(cfg).await.unwrap();
    Agent {
        dir,
        socket,
        running: Some(running),
    }
}

impl Agent {
    async fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await.unwrap();
        }
    }

    /// Opens the outbox file directly (after `stop`) to see what is durably stored.
    fn reopen(&self) -> Outbox {
        Outbox::open(OutboxConfig {
            path: self.dir.path().join("state/outbox.sqlite"),
            max_bytes: 1 << 30,
        })
        .unwrap()
    }

    fn pending(&self) -> u64 {
        self.running
            .as_ref()
            .unwrap()
            .state()
            .outbox
            .stats()
            .unwrap()
            .totals
            .pending
    }
}

struct Conn(SendRequest<Full<Bytes>>);

impl Conn {
    async fn open(socket: &Path) -> Conn {
        let io = UnixStream::connect(socket).await.unwrap();
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .unwrap();
        tokio::spawn(conn);
        Conn(sender)
    }

    async fn send(
        &mut self,
        method: Method,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, String) {
        let mut req = Request::builder()
            .method(method)
            .uri(target)
            .header("host", "localhost");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Full::new(Bytes::copy_from_slice(body))).unwrap();
        self.0.ready().await.unwrap();
        let resp = self.0.send_request(req).await.unwrap();
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }
}

async fn call(
    socket: &Path,
    method: Method,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    Conn::open(socket)
        .await
        .send(method, target, headers, body)
        .await
}

async fn post(socket: &Path, target: &str, body: &str) -> (u16, String) {
    call(socket, Method::POST, target, &[], body.as_bytes()).await
}

fn error_message(body: &str) -> String {
    assert!(
        body.ends_with('\n') && body.trim_end().lines().count() == 1,
        "one line: {body:?}"
    );
    serde_json::from_str::<ErrorBody>(body).unwrap().error
}

#[tokio::test]
async fn publish_answers_202_with_id_and_stores_bytes_verbatim() {
    let mut a = agent("").await;
    let body = "{\"b\": 1.50,  \"a\":[ 1 ]}";
    let (status, text) = post(&a.socket, "/v1/outbox/temp", body).await;
    assert_eq!(status, 202, "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let id = v["id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    assert_eq!(v["duplicate"], false);
    assert_eq!(a.pending(), 1);
    a.stop().await;
    let records = a.reopen().next_batch(10, 1 << 20).unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].id.as_str(), id);
    assert_eq!(records[0].stream.as_str(), "temp");
    assert_eq!(records[0].payload, body.as_bytes());
    assert_eq!(records[0].priority, Priority::Normal);
}

#[tokio::test]
async fn priority_comes_from_query_then_stream_then_default() {
    let mut a = agent("[outbox]\ndefault_priority = \"best_effort\"").await;
    for (target, key) in [
        ("/v1/outbox/alarms", "k1"),
        ("/v1/outbox/alarms?priority=normal", "k2"),
        ("/v1/outbox/temp", "k3"),
        ("/v1/outbox/temp?priority=critical", "k4"),
    ] {
        let (status, text) = call(
            &a.socket,
            Method::POST,
            target,
            &[("Idempotency-Key", key)],
            b"1",
        )
        .await;
        assert_eq!(status, 202, "{text}");
    }
    a.stop().await;
    let records = a.reopen().next_batch(10, 1 << 20).unwrap();
    let got: Vec<(String, Priority)> = records
        .iter()
        .map(|r| (r.id.to_string(), r.priority))
        .collect();
    assert_eq!(
        got,
        vec![
            ("k1".into(), Priority::Critical),
            ("k2".into(), Priority::Normal),
            ("k3".into(), Priority::BestEffort),
            ("k4".into(), Priority::Critical)
        ]
    );
}

#[tokio::test]
async fn idempotency_key_duplicates_and_conflicts() {
    let a = agent("").await;
    let key = [("Idempotency-Key", "order:42@shop-7")];
    let (s1, t1) = call(
        &a.socket,
        Method::POST,
        "/v1/outbox/orders",
        &key,
        b"{\"n\":1}",
    )
    .await;
    assert_eq!(
        (s1, t1.as_str()),
        (202, "{\"id\":\"order:42@shop-7\",\"duplicate\":false}\n")
    );
    let (s2, t2) = call(
        &a.socket,
        Method::POST,
        "/v1/outbox/orders",
        &key,
        b"{\"n\":1}",
    )
    .await;
    assert_eq!(
        (s2, t2.as_str()),
        (202, "{\"id\":\"order:42@shop-7\",\"duplicate\":true}\n")
    );
    let (s3, t3) = call(
        &a.socket,
        Method::POST,
        "/v1/outbox/orders",
        &key,
        b"{\"n\":2}",
    )
    .await;
    assert_eq!(s3, 409, "{t3}");
    assert!(error_message(&t3).contains("order:42@shop-7"));
    assert_eq!(a.pending(), 1);
    let (s4, t4) = call(
        &a.socket,
        Method::POST,
        "/v1/outbox/orders",
        &[("Idempotency-Key", "bad key")],
        b"1",
    )
    .await;
    assert_eq!(s4, 400);
    assert!(error_message(&t4).contains("Idempotency-Key"));
}

#[tokio::test]
async fn bad_input_is_refused_nothing_is_stored_and_the_connection_keeps_working() {
    let a = agent("").await;
    let mut conn = Conn::open(&a.socket).await;
    let cases: [(&str, &[u8], u16, &str); 7] = [
        ("/v1/outbox/temp", b"{\"a\":", 400, "not valid JSON"),
        ("/v1/outbox/temp", b"", 400, "not valid JSON"),
        ("/v1/outbox/temp", b"{} {}", 400, "not valid JSON"),
        ("/v1/outbox/Temp", b"1", 400, "bad stream name"),
        ("/v1/outbox/", b"1", 400, "bad stream name"),
        (
            "/v1/outbox/temp?priority=urgent",
            b"1",
            400,
            "unknown priority",
        ),
        (
            "/v1/outbox/temp?prio=critical",
            b"1",
            400,
            "unknown query parameter",
        ),
    ];
    for (target, body, want, text) in cases {
        let (status, resp) = conn.send(Method::POST, target, &[], body).await;
        assert_eq!(status, want, "{target}: {resp}");
        assert!(error_message(&resp).contains(text), "{target}: {resp}");
    }
    assert_eq!(a.pending(), 0);
    // Same keep-alive connection, still in sync: a good publish goes through.
    let (status, resp) = conn
        .send(Method::POST, "/v1/outbox/temp", &[], b"{\"ok\":true}")
        .await;
    assert_eq!(status, 202, "{resp}");
    assert_eq!(a.pending(), 1);
    let (_, metrics) = conn.send(Method::GET, "/metrics", &[], b"").await;
    assert!(
        metrics.contains("outpost_api_requests_rejected_total{reason=\"invalid_json\"} 3\n"),
        "{metrics}"
    );
    assert!(metrics.contains("outpost_api_requests_rejected_total{reason=\"invalid_stream\"} 2\n"));
}

#[tokio::test]
async fn oversize_bodies_get_413_without_being_read() {
    let a = agent("").await;
    let big = format!("[\"{}\"]", "x".repeat(300));
    let (status, text) = post(&a.socket, "/v1/outbox/temp", &big).await;
    assert_eq!(status, 413);
    assert!(error_message(&text).contains("max_body_bytes"));
    // A huge declared length is refused at once: the agent does not wait for the body.
    let mut raw = UnixStream::connect(&a.socket).await.unwrap();
    raw.write_all(
        b"POST /v1/outbox/temp HTTP/1.1\r\nhost: x\r\ncontent-length: 1000000000\r\n\r\n[",
    )
    .await
    .unwrap();
    let mut buf = vec![0u8; 1024];
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), raw.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let head = String::from_utf8_lossy(&buf[..n]);
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    // Chunked body without a declared length: cut off at the limit.
    let mut raw = UnixStream::connect(&a.socket).await.unwrap();
    let chunk = "x".repeat(200);
    let req = format!(
        "POST /v1/outbox/temp HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\nc8\r\n{chunk}\r\nc8\r\n{chunk}\r\n"
    );
    raw.write_all(req.as_bytes()).await.unwrap();
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), raw.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 413"));
    assert_eq!(a.pending(), 0);
    let (status, _) = post(&a.socket, "/v1/outbox/temp", "[1]").await;
    assert_eq!(status, 202);
}

#[tokio::test]
async fn unknown_paths_and_methods_get_json_errors() {
    let a = agent("").await;
    let (s, t) = call(&a.socket, Method::GET, "/nope", &[], b"").await;
    assert_eq!(s, 404);
    error_message(&t);
    let (s, t) = call(&a.socket, Method::GET, "/v1/outbox/temp", &[], b"").await;
    assert_eq!(s, 405);
    assert!(error_message(&t).contains("POST"));
    let (s, t) = call(&a.socket, Method::DELETE, "/v1/status", &[], b"").await;
    assert_eq!(s, 405);
    error_message(&t);
}

#[tokio::test]
async fn status_outbox_and_metrics_documents() {
    let a = agent("").await;
    assert_eq!(
        post(&a.socket, "/v1/outbox/alarms", "{\"x\":1}").await.0,
        202
    );
    let (s, t) = call(&a.socket, Method::GET, "/v1/status", &[], b"").await;
    assert_eq!(s, 200);
    let v: serde_json::Value = serde_json::from_str(&t).unwrap();
    assert_eq!(v["device_id"], "dev-test");
    assert_eq!(v["hub"], serde_json::Value::Null);
    assert_eq!(v["outbox"]["pending"], 1);
    assert_eq!(v["uploader"]["state"], "disabled");
    assert!(v["version"].is_string() && v["uptime_s"].is_u64());
    let (s, t) = call(&a.socket, Method::GET, "/v1/outbox", &[], b"").await;
    assert_eq!(s, 200);
    let v: crate::views::OutboxView = serde_json::from_str(&t).unwrap();
    assert_eq!(v.streams.len(), 1);
    assert_eq!(
        (v.streams[0].stream.as_str(), v.streams[0].pending),
        ("alarms", 1)
    );
    assert_eq!(v.streams[0].priority, Some(Priority::Critical));
    let (s, t) = call(&a.socket, Method::GET, "/metrics", &[], b"").await;
    assert_eq!(s, 200);
    assert!(
        t.contains("outpost_outbox_pending_records{stream=\"alarms\"} 1\n"),
        "{t}"
    );
    assert!(t.contains("outpost_outbox_max_bytes 268435456\n"));
}

#[tokio::test]
async fn socket_mode_and_stale_socket() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "");
    std::fs::create_dir_all(cfg.api.socket.parent().unwrap()).unwrap();
    // A socket file left by a crashed agent: nobody listens on it any more.
    drop(std::os::unix::net::UnixListener::bind(&cfg.api.socket).unwrap());
    let running = daemon::start(cfg.clone()).await.unwrap();
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&cfg.api.socket)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let state_mode = std::fs::metadata(&cfg.state_dir)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(state_mode, 0o700);
    // A live socket is never taken over.
    let err = crate::api::bind_unix(&cfg.api.socket, 0o600).err().unwrap();
    assert!(err.to_string().contains("in use"), "{err}");
    running.stop().await.unwrap();
    assert!(!cfg.api.socket.exists(), "socket removed on shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_202_survives_shutdown() {
    let mut a = agent("").await;
    let socket = a.socket.clone();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..32 {
        let socket = socket.clone();
        tasks.spawn(async move {
            let mut acked = Vec::new();
            let Ok(io) = UnixStream::connect(&socket).await else {
                return acked;
            };
            let Ok((mut sender, conn)) =
                hyper::client::conn::http1::handshake(TokioIo::new(io)).await
            else {
                return acked;
            };
            tokio::spawn(conn);
            for j in 0..1000 {
                if sender.ready().await.is_err() {
                    break;
                }
                let req = Request::post("/v1/outbox/load")
                    .header("host", "x")
                    .body(Full::new(Bytes::from(format!("{{\"i\":{i},\"j\":{j}}}"))))
                    .unwrap();
                let Ok(resp) = sender.send_request(req).await else {
                    break;
                };
                let status = resp.status().as_u16();
                let Ok(body) = resp.into_body().collect().await else {
                    break;
                };
                if status == 202 {
                    let v: serde_json::Value = serde_json::from_slice(&body.to_bytes()).unwrap();
                    acked.push(v["id"].as_str().unwrap().to_owned());
                }
            }
            acked
        });
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    a.stop().await;
    let mut acked = std::collections::HashSet::new();
    while let Some(r) = tasks.join_next().await {
        acked.extend(r.unwrap());
    }
    assert!(!acked.is_empty());
    let outbox = a.reopen();
    let stored: std::collections::HashSet<String> = outbox
        .next_batch(100_000, 1 << 30)
        .unwrap()
        .into_iter()
        .map(|r| r.id.into_string())
        .collect();
    let lost: Vec<_> = acked.difference(&stored).collect();
    assert!(lost.is_empty(), "{} acknowledged records lost", lost.len());
}

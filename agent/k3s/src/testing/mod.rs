//! Test stand-ins for K3s (feature `testing`): [`ApiServer`], an HTTPS server that requires a
//! client certificate of the TLS dir's client CA and answers the paths [`crate::K3sClient`]
//! calls with the JSON shapes the Kubernetes API returns, from a [`Model`]; and
//! [`write_tls_dir`], a K3s-like TLS dir. A fake K3s process for demos and the end-to-end
//! tests (`outpost-fake-k3s` in tests/e2e) is these two plus a manifests dir
//! ([`Model::set_manifests_dir`], walked recursively like K3s's deploy controller).

mod model;
mod pki;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

pub use model::{workload_json, FakeAddon, FakeNode, Model, NEVER_READY_ANNOTATION};
pub use pki::{write_tls_dir, TlsDirOptions};

use crate::api::{WorkloadKind, WorkloadRef};
use crate::K3sError;

#[derive(Debug, thiserror::Error)]
pub enum TestingError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("generating certificates: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("TLS dir: {0}")]
    Credentials(#[from] K3sError),
    #[error("TLS: {0}")]
    Tls(String),
}

/// The stand-in API server; stops (closes its port) when dropped or [`ApiServer::stop`]ped.
pub struct ApiServer {
    addr: SocketAddr,
    model: Model,
    task: JoinHandle<()>,
}

impl ApiServer {
    /// Serves on `127.0.0.1:0` with the credentials of `tls_dir` (see [`write_tls_dir`]).
    pub async fn start(tls_dir: &Path, model: Model) -> Result<Self, TestingError> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), tls_dir, model).await
    }

    /// Serves on `addr` (a fake K3s uses `127.0.0.1:6443`).
    pub async fn start_on(
        addr: SocketAddr,
        tls_dir: &Path,
        model: Model,
    ) -> Result<Self, TestingError> {
        let config = server_config(tls_dir)?;
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let m = model.clone();
        let task = tokio::spawn(async move {
            // Connections live in the set: aborting this task aborts them too.
            let mut conns = JoinSet::new();
            loop {
                let (tcp, _) = tokio::select! {
                    r = listener.accept() => match r {
                        Ok(c) => c,
                        // Out of descriptors, say: do not spin.
                        Err(_) => {
                            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                            continue;
                        }
                    },
                    Some(_) = conns.join_next(), if !conns.is_empty() => continue,
                };
                let acceptor = acceptor.clone();
                let model = m.clone();
                conns.spawn(async move {
                    // A client without a certificate of our client CA ends here.
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let model = model.clone();
                        async move { Ok::<_, std::convert::Infallible>(answer(&model, &req)) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), svc)
                        .await;
                });
            }
        });
        Ok(Self { addr, model, task })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://127.0.0.1:{port}`, for [`crate::ClientConfig::url`].
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Closes the port and drops every connection.
    pub async fn stop(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn server_config(dir: &Path) -> Result<Arc<rustls::ServerConfig>, TestingError> {
    let certs = crate::client::read_certs(&dir.join("serving-kube-apiserver.crt"))?;
    let key = crate::client::read_key(&dir.join("serving-kube-apiserver.key"))?;
    let mut roots = rustls::RootCertStore::empty();
    for ca in crate::client::read_certs(&dir.join("client-ca.crt"))? {
        roots
            .add(ca)
            .map_err(|e| TestingError::Tls(e.to_string()))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .map_err(|e| TestingError::Tls(e.to_string()))?;
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| {
            b.with_client_cert_verifier(verifier)
                .with_single_cert(certs, key)
        })
        .map_err(|e| TestingError::Tls(e.to_string()))?;
    Ok(Arc::new(config))
}

/// Routes one request to the model.
fn answer(model: &Model, req: &Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    model.log(format!("{} {path}", req.method()));
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let get = req.method() == Method::GET;
    match (req.method(), parts.as_slice()) {
        (&Method::GET, ["readyz"]) => readyz(model.ready()),
        (&Method::GET, ["api", "v1", "nodes"]) => json_response(StatusCode::OK, &node_list(model)),
        (&Method::GET, ["apis", "apps", "v1", "namespaces", ns, resource, name]) => {
            let kind = match *resource {
                "deployments" => WorkloadKind::Deployment,
                "daemonsets" => WorkloadKind::DaemonSet,
                "statefulsets" => WorkloadKind::StatefulSet,
                _ => return not_found("the server could not find the requested resource"),
            };
            match model.workload(&WorkloadRef::new(kind, ns, name)) {
                Some(obj) => json_response(StatusCode::OK, &obj),
                None => not_found(&format!("{resource}.apps \"{name}\" not found")),
            }
        }
        (m, ["apis", "k3s.cattle.io", "v1", "namespaces", "kube-system", "addons", name])
            if get || m == Method::DELETE =>
        {
            let Some(addon) = model.addon(name) else {
                return not_found(&format!("addons.k3s.cattle.io \"{name}\" not found"));
            };
            let obj = json!({
                "apiVersion": "k3s.cattle.io/v1", "kind": "Addon",
                "metadata": {"name": name, "namespace": "kube-system", "generation": 1},
                "spec": {"source": addon.source, "checksum": addon.checksum},
                "status": {}
            });
            if !get {
                model.delete_addon(name);
            }
            json_response(StatusCode::OK, &obj)
        }
        _ => not_found("the server could not find the requested resource"),
    }
}

/// kubernetes.io/docs/reference/using-api/health-checks/: 200 `ok`, else 500 listing the
/// failed checks.
fn readyz(ready: bool) -> Response<Full<Bytes>> {
    let (status, body) = if ready {
        (StatusCode::OK, "ok")
    } else {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "[+]ping ok\n[-]etcd failed: reason withheld\nreadyz check failed\n",
        )
    };
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn node_list(model: &Model) -> Value {
    let items: Vec<Value> = model
        .nodes()
        .into_iter()
        .map(|n| {
            json!({
                "metadata": {"name": n.name, "labels": {"node-role.kubernetes.io/control-plane": "true"}},
                "status": {"conditions": [
                    {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory"},
                    {"type": "Ready", "status": if n.ready { "True" } else { "False" },
                     "reason": n.reason, "message": n.message,
                     "lastHeartbeatTime": "2026-01-01T00:00:00Z",
                     "lastTransitionTime": "2026-01-01T00:00:00Z"}
                ]}
            })
        })
        .collect();
    json!({"kind": "NodeList", "apiVersion": "v1", "metadata": {"resourceVersion": "1"}, "items": items})
}

/// A Kubernetes `Status` 404.
fn not_found(message: &str) -> Response<Full<Bytes>> {
    json_response(
        StatusCode::NOT_FOUND,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": message, "reason": "NotFound", "code": 404}),
    )
}

fn json_response(status: StatusCode, v: &Value) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(v.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

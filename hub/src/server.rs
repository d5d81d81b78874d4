//! `outpost-hub serve`: the TLS accept loop, per-connection HTTP/1.1 and request routing.
//!
//! Every handler turns bad input into a `{"error": ...}` response; nothing on the request path
//! unwraps. SQLite work runs on the blocking pool so a slow fsync never stalls the reactor.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CONTENT_ENCODING, CONTENT_LENGTH};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use outpost_proto::enroll::{
    ENROLL_CHALLENGE_PATH, ENROLL_PATH, MAX_ENROLL_REQUEST_BYTES, RENEW_PATH,
};
use outpost_proto::ingest::INGEST_PATH;
use outpost_proto::legacy::{CHECKSUM_HEADER, DEVICE_KEY_HEADER};
use outpost_proto::updates::{UpdateQuery, BUNDLE_FILE, RELEASES_PREFIX, STORE_DIR, UPDATES_PATH};
use outpost_proto::workloads::{WorkloadQuery, WORKLOADS_PATH};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::config::Config;
use crate::enroll::{EnrollSetupError, Enroller, PresentedCert};
use crate::http::{self, HttpError, Resp};
use crate::identity::{self, IdentityError};
use crate::ingest;
use crate::legacy::{self, LegacyKeys};
use crate::store::{Store, StoreError};
use crate::tls::{self, TlsError};

/// Paths the reference agent posts to (`{endpoint}/ingest`, with or without `/v1/ingest` as
/// its configured endpoint).
pub const LEGACY_PATHS: [&str; 2] = ["/ingest", "/v1/ingest/ingest"];
pub const HEALTH_PATH: &str = "/healthz";

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long shutdown waits for in-flight requests before dropping connections.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot open database {path}: {source}")]
    Store { path: String, source: StoreError },
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Enroll(#[from] EnrollSetupError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// What every request handler shares.
struct State {
    store: Mutex<Store>,
    legacy_keys: LegacyKeys,
    max_body_bytes: usize,
    /// `[enroll]`: the fleet CA as issuer; `None` answers `/v1/enroll` with 503.
    enroller: Option<Arc<Enroller>>,
    /// `data_dir/releases`: published bundles and chunk stores.
    releases_dir: std::path::PathBuf,
}

impl State {
    /// A panic while holding the lock can only happen inside a SQLite call whose transaction
    /// is rolled back on drop, so the connection is consistent and poisoning can be ignored.
    fn store(&self) -> MutexGuard<'_, Store> {
        self.store
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Who is on the other end of one TLS connection.
struct Peer {
    addr: SocketAddr,
    /// `None`: no client certificate. `Some(Err)`: a verified certificate whose CN is unusable.
    device: Option<Result<String, IdentityError>>,
    /// The verified client leaf, for renewal.
    cert: Option<Result<PresentedCert, IdentityError>>,
}

/// A bound, not yet serving hub.
pub struct Server {
    listener: TcpListener,
    acceptor: TlsAcceptor,
    state: Arc<State>,
}

impl Server {
    /// Opens the database, loads the TLS material and binds `listen` (or `config.listen`).
    pub async fn bind(config: &Config, listen: Option<SocketAddr>) -> Result<Self, ServerError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|source| ServerError::DataDir {
            path: config.data_dir.display().to_string(),
            source,
        })?;
        let db = config.db_path();
        let store = Store::open(&db).map_err(|source| ServerError::Store {
            path: db.display().to_string(),
            source,
        })?;
        let enroller = match &config.enroll {
            Some(cfg) => Some(Arc::new(Enroller::load(cfg)?)),
            None => None,
        };
        // Certificate-less clients may finish the handshake when they have something to do:
        // legacy devices authenticate with a key, new devices enroll. Every other route
        // refuses them (see `route`).
        let allow_anonymous = !config.legacy_keys.is_empty() || enroller.is_some();
        let tls_config = tls::server_config(&config.tls, allow_anonymous)?;
        let addr = listen.unwrap_or(config.listen);
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ServerError::Bind { addr, source })?;
        tracing::info!(db = %db.display(), legacy_keys = config.legacy_keys.len(), enrollment = enroller.is_some(), "hub ready");
        Ok(Self {
            listener,
            acceptor: TlsAcceptor::from(tls_config),
            state: Arc::new(State {
                store: Mutex::new(store),
                legacy_keys: config.legacy_keys.clone(),
                max_body_bytes: config.max_body_bytes,
                enroller,
                releases_dir: config.releases_dir(),
            }),
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, then stops accepting, lets in-flight requests finish
    /// (up to a deadline) and returns.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut conns = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            while conns.try_join_next().is_some() {}
            let (stream, addr) = tokio::select! {
                () = &mut shutdown => break,
                accepted = self.listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        // Typically EMFILE: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            conns.spawn(serve_connection(
                stream,
                addr,
                self.acceptor.clone(),
                self.state.clone(),
                stop_rx.clone(),
            ));
        }
        tracing::info!(
            open_connections = conns.len(),
            "shutting down: no longer accepting"
        );
        drop(self.listener);
        let _ = stop_tx.send(true);
        let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
            while conns.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                open_connections = conns.len(),
                "drain deadline passed; closing remaining connections"
            );
            conns.abort_all();
        }
        tracing::info!("hub stopped");
    }
}

async fn serve_connection(
    stream: TcpStream,
    addr: SocketAddr,
    acceptor: TlsAcceptor,
    state: Arc<State>,
    mut stop: watch::Receiver<bool>,
) {
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            tracing::info!(peer = %addr, error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::info!(peer = %addr, "TLS handshake timed out");
            return;
        }
    };
    let leaf = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first());
    let device = leaf.map(|leaf| identity::device_id_from_cert(leaf));
    let cert = leaf.map(|leaf| PresentedCert::parse(leaf));
    let peer = Arc::new(Peer { addr, device, cert });
    let service = service_fn(move |req| {
        let (state, peer) = (state.clone(), peer.clone());
        async move { Ok::<_, Infallible>(route(req, &state, &peer).await) }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true)
        .serve_connection(TokioIo::new(tls), service);
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = stop.changed() => {
            // Finish the request in flight (if any), then close instead of keeping alive.
            conn.as_mut().graceful_shutdown();
            conn.as_mut().await
        }
    };
    if let Err(e) = result {
        tracing::debug!(peer = %addr, error = %e, "connection ended with an error");
    }
}

async fn route(req: Request<Incoming>, state: &Arc<State>, peer: &Peer) -> Resp {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let resp = match refuse_peer(state, peer, &path).await {
        Some(resp) => resp,
        None => dispatch(req, state, peer, &method, &path).await,
    };
    tracing::info!(peer = %peer.addr, %method, path = %path.chars().take(100).collect::<String>(), status = resp.status().as_u16(), "request");
    resp
}

/// Refusals that depend on who the peer is, before any route runs: a revoked device gets 403
/// on every request (also on a connection opened before the revocation); a client without a
/// certificate may only enroll or use the legacy (device key) routes, and `/healthz` only when
/// legacy keys are on (as before enrollment existed).
async fn refuse_peer(state: &Arc<State>, peer: &Peer, path: &str) -> Option<Resp> {
    if path == ENROLL_PATH || path == ENROLL_CHALLENGE_PATH {
        return None;
    }
    match &peer.device {
        Some(Ok(device)) => {
            let (job_state, id) = (state.clone(), device.clone());
            let not_before = match &peer.cert {
                Some(Ok(cert)) => cert.not_before_ms,
                _ => i64::MIN,
            };
            let refused = tokio::task::spawn_blocking(move || {
                job_state.store().certificate_refusal(&id, not_before)
            })
            .await;
            match refused {
                Ok(Ok(None)) => None,
                Ok(Ok(Some(why))) => Some(http::error(
                    StatusCode::FORBIDDEN,
                    &format!("device {device} is {why}"),
                )),
                Ok(Err(e)) => {
                    tracing::error!(%device, error = %e, "revocation check failed");
                    Some(http::error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "storage error",
                    ))
                }
                Err(e) => {
                    tracing::error!(error = %e, "revocation check task failed");
                    Some(http::error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "internal error",
                    ))
                }
            }
        }
        Some(Err(_)) => None,
        None if path == HEALTH_PATH && state.legacy_keys.is_empty() => Some(http::error(
            StatusCode::UNAUTHORIZED,
            "client certificate required",
        )),
        None => None,
    }
}

async fn dispatch(
    req: Request<Incoming>,
    state: &Arc<State>,
    peer: &Peer,
    method: &Method,
    path: &str,
) -> Resp {
    let post_only =
        |allowed: &'static str| (method != Method::POST).then(|| method_not_allowed(allowed));
    match path {
        ENROLL_PATH => match post_only("POST") {
            Some(resp) => resp,
            None => enroll(req, state, Round::Enroll).await,
        },
        ENROLL_CHALLENGE_PATH => match post_only("POST") {
            Some(resp) => resp,
            None => enroll(req, state, Round::Challenge).await,
        },
        RENEW_PATH => match post_only("POST") {
            Some(resp) => resp,
            None => renew(req, state, peer).await,
        },
        UPDATES_PATH if method == Method::GET => updates(&req, state, peer).await,
        UPDATES_PATH => method_not_allowed("GET"),
        WORKLOADS_PATH if method == Method::GET => workloads(&req, state, peer).await,
        WORKLOADS_PATH => method_not_allowed("GET"),
        p if p.starts_with(RELEASES_PREFIX) => {
            if method == Method::GET || method == Method::HEAD {
                release_file(&req, state, peer, p, method == Method::HEAD).await
            } else {
                method_not_allowed("GET, HEAD")
            }
        }
        HEALTH_PATH if method == Method::GET || method == Method::HEAD => {
            http::json(StatusCode::OK, &serde_json::json!({"status": "ok"}))
        }
        HEALTH_PATH => method_not_allowed("GET, HEAD"),
        INGEST_PATH => match post_only("POST") {
            Some(resp) => resp,
            None if req.headers().contains_key(DEVICE_KEY_HEADER) => {
                legacy_ingest(req, state).await
            }
            None => native_ingest(req, state, peer).await,
        },
        p if LEGACY_PATHS.contains(&p) => match post_only("POST") {
            Some(resp) => resp,
            None => legacy_ingest(req, state).await,
        },
        _ => http::error(
            StatusCode::NOT_FOUND,
            &format!(
                "no such endpoint: {}",
                path.chars().take(100).collect::<String>()
            ),
        ),
    }
}

/// The device a release route serves: only enrolled devices (verified client certificate).
fn release_client(peer: &Peer) -> Option<&str> {
    match &peer.device {
        Some(Ok(id)) => Some(id),
        _ => None,
    }
}

fn certificate_required() -> Resp {
    http::error(StatusCode::UNAUTHORIZED, "client certificate required")
}

/// `GET /v1/updates?compatible=..&version=..&channel=..`: the channel's current release for
/// the device's compatible (200), or 204 when it runs that version or nothing is published.
async fn updates(req: &Request<Incoming>, state: &Arc<State>, peer: &Peer) -> Resp {
    offer(req, state, peer, UpdateQuery::parse, |store, q| {
        Ok(store.offer_for(q)?.map(|release| {
            tracing::info!(release = %release.id, from = %q.version, to = %release.version, "update offered");
            serde_json::to_value(release.offer())
        }))
    })
    .await
}

/// `GET /v1/workloads?compatible=..&revision=..&channel=..`: the channel's current workload
/// set (200), or 204 when the device runs that revision or nothing is published.
async fn workloads(req: &Request<Incoming>, state: &Arc<State>, peer: &Peer) -> Resp {
    offer(req, state, peer, WorkloadQuery::parse, |store, q| {
        Ok(store.workload_offer_for(q)?.map(|set| {
            tracing::info!(set = %set.id, from = %q.revision, to = %set.revision, "workload set offered");
            serde_json::to_value(set.offer())
        }))
    })
    .await
}

/// What an offer lookup found: the offer as JSON, or nothing (204).
type Found = Result<Option<serde_json::Result<serde_json::Value>>, crate::store::StoreError>;

/// The shape of both offer routes: enrolled devices only, a strict query, a blocking lookup.
async fn offer<Q: Send + 'static>(
    req: &Request<Incoming>,
    state: &Arc<State>,
    peer: &Peer,
    parse: fn(&str) -> Result<Q, String>,
    lookup: fn(&crate::store::Store, &Q) -> Found,
) -> Resp {
    let Some(device) = release_client(peer).map(str::to_owned) else {
        return certificate_required();
    };
    let query = match parse(req.uri().query().unwrap_or("")) {
        Ok(q) => q,
        Err(e) => return http::error(StatusCode::BAD_REQUEST, &format!("bad query: {e}")),
    };
    let job_state = state.clone();
    let found = tokio::task::spawn_blocking(move || {
        let _span = tracing::info_span!("offer", %device).entered();
        lookup(&job_state.store(), &query)
    })
    .await;
    match found {
        Ok(Ok(Some(Ok(offer)))) => http::json(StatusCode::OK, &offer),
        Ok(Ok(None)) => {
            let mut resp = http::full_response(StatusCode::NO_CONTENT);
            resp.headers_mut().remove(hyper::header::CONTENT_TYPE);
            resp
        }
        Ok(Ok(Some(Err(e)))) => {
            tracing::error!(error = %e, "offer encoding failed");
            http::error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "offer lookup failed");
            http::error(StatusCode::INTERNAL_SERVER_ERROR, "storage error")
        }
        Err(e) => {
            tracing::error!(error = %e, "offer lookup task failed");
            http::error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}

/// `GET|HEAD /v1/releases/<id>/bundle.raucb` and `/v1/releases/<id>/store/<4hex>/<64hex>.cacnk`
/// of a published release, with `Range`. Every path part is checked before it touches the disk.
async fn release_file(
    req: &Request<Incoming>,
    state: &Arc<State>,
    peer: &Peer,
    path: &str,
    head: bool,
) -> Resp {
    if release_client(peer).is_none() {
        return certificate_required();
    }
    let not_found = || http::error(StatusCode::NOT_FOUND, "no such release file");
    let rest = &path[RELEASES_PREFIX.len()..];
    let Some((id, file)) = rest.split_once('/') else {
        return not_found();
    };
    if !outpost_proto::updates::valid_release_id(id) {
        return not_found();
    }
    let relative = if file == BUNDLE_FILE {
        std::path::PathBuf::from(BUNDLE_FILE)
    } else {
        let parts: Vec<&str> = file.split('/').collect();
        match parts.as_slice() {
            [STORE_DIR, prefix, name]
                if crate::releases::is_hex(prefix, 4)
                    && name.strip_suffix(".cacnk").is_some_and(|h| {
                        crate::releases::is_hex(h, 64) && h.starts_with(prefix)
                    }) =>
            {
                std::path::Path::new(STORE_DIR).join(prefix).join(name)
            }
            _ => return not_found(),
        }
    };
    let (job_state, rid) = (state.clone(), id.to_owned());
    match tokio::task::spawn_blocking(move || job_state.store().serves_artifact(&rid)).await {
        Ok(Ok(true)) => {}
        Ok(Ok(false)) => return not_found(),
        _ => return http::error(StatusCode::INTERNAL_SERVER_ERROR, "storage error"),
    }
    let full_path = state.releases_dir.join(id).join(relative);
    crate::files::serve(&full_path, req.headers(), head, "application/octet-stream").await
}

/// Which enrollment endpoint.
#[derive(Clone, Copy)]
enum Round {
    /// `POST /v1/enroll/challenge` (TPM round one).
    Challenge,
    /// `POST /v1/enroll`.
    Enroll,
}

/// `POST /v1/enroll` and `/v1/enroll/challenge`: open to clients without a certificate; the
/// token authorises them.
async fn enroll(req: Request<Incoming>, state: &Arc<State>, round: Round) -> Resp {
    let Some(enroller) = state.enroller.clone() else {
        return http::json(
            StatusCode::SERVICE_UNAVAILABLE,
            &outpost_proto::enroll::EnrollError {
                error: "this hub does not enroll devices (no [enroll] in hub.toml)".into(),
                code: outpost_proto::enroll::EnrollErrorCode::NotConfigured,
            },
        );
    };
    let length = content_length(&req);
    let body = match http::read_body(req.into_body(), length, MAX_ENROLL_REQUEST_BYTES).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let state = state.clone();
    let job = tokio::task::spawn_blocking(move || match round {
        Round::Enroll => enroller
            .handle(&mut state.store(), &body, now_ms())
            .map(|r| http::json(StatusCode::OK, &r)),
        Round::Challenge => enroller
            .challenge(&mut state.store(), &body, now_ms())
            .map(|c| http::json(StatusCode::OK, &c)),
    });
    match job.await {
        Ok(Ok(resp)) => resp,
        Ok(Err(failure)) => {
            tracing::info!(status = failure.status.as_u16(), code = ?failure.body.code, error = %failure.body.error, "enrollment refused");
            http::json(failure.status, &failure.body)
        }
        Err(e) => {
            tracing::error!(error = %e, "enroll task failed");
            http::error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}

/// `POST /v1/renew`: only with a verified client certificate (revoked ones were refused by
/// `refuse_peer`); the CSR must be for the same key.
async fn renew(req: Request<Incoming>, state: &Arc<State>, peer: &Peer) -> Resp {
    use outpost_proto::enroll::{EnrollError, EnrollErrorCode};
    let Some(enroller) = state.enroller.clone() else {
        return http::json(
            StatusCode::SERVICE_UNAVAILABLE,
            &EnrollError {
                error: "this hub does not issue certificates (no [enroll] in hub.toml)".into(),
                code: EnrollErrorCode::NotConfigured,
            },
        );
    };
    let presented = match &peer.cert {
        Some(Ok(c)) => c.clone(),
        Some(Err(e)) => {
            return http::json(
                StatusCode::FORBIDDEN,
                &EnrollError {
                    error: e.to_string(),
                    code: EnrollErrorCode::BadRequest,
                },
            )
        }
        None => {
            return http::json(
                StatusCode::UNAUTHORIZED,
                &EnrollError {
                    error: "renewal needs the current client certificate (mTLS)".into(),
                    code: EnrollErrorCode::CertificateRequired,
                },
            )
        }
    };
    let length = content_length(&req);
    let body = match http::read_body(req.into_body(), length, MAX_ENROLL_REQUEST_BYTES).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let state = state.clone();
    let job = tokio::task::spawn_blocking(move || {
        enroller.renew(&mut state.store(), &presented, &body, now_ms())
    });
    match job.await {
        Ok(Ok(resp)) => http::json(StatusCode::OK, &resp),
        Ok(Err(failure)) => {
            tracing::info!(status = failure.status.as_u16(), code = ?failure.body.code, error = %failure.body.error, "renewal refused");
            http::json(failure.status, &failure.body)
        }
        Err(e) => {
            tracing::error!(error = %e, "renew task failed");
            http::error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}

fn method_not_allowed(allowed: &'static str) -> Resp {
    let mut resp = http::error(
        StatusCode::METHOD_NOT_ALLOWED,
        &format!("method not allowed (allowed: {allowed})"),
    );
    resp.headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allowed));
    resp
}

fn content_length(req: &Request<Incoming>) -> Option<u64> {
    req.headers()
        .get(CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

async fn native_ingest(req: Request<Incoming>, state: &Arc<State>, peer: &Peer) -> Resp {
    let device = match &peer.device {
        Some(Ok(device)) => device.clone(),
        Some(Err(e)) => return http::error(StatusCode::FORBIDDEN, &e.to_string()),
        None => return http::error(StatusCode::UNAUTHORIZED, "client certificate required"),
    };
    let encoding = req
        .headers()
        .get(CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("(not ASCII)"));
    let encoding = match ingest::parse_encoding(encoding) {
        Ok(e) => e,
        Err(e) => return http::error(e.status(), &e.to_string()),
    };
    let length = content_length(&req);
    let body = match http::read_body(req.into_body(), length, state.max_body_bytes).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let state = state.clone();
    let job = tokio::task::spawn_blocking(move || {
        // Decompression and hashing happen before taking the store lock.
        let checked = ingest::prepare(&body, encoding)
            .map_err(|e| HttpError::new(e.status(), e.to_string()))?;
        let resp =
            ingest::commit(&mut state.store(), &device, &checked, now_ms()).map_err(|e| {
                tracing::error!(%device, error = %e, "storing batch failed");
                HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, "storage error")
            })?;
        tracing::info!(%device, acked = resp.acked.len(), rejected = resp.rejected.len(), "batch ingested");
        Ok::<_, HttpError>(resp)
    });
    match job.await {
        Ok(Ok(resp)) => http::json(StatusCode::OK, &resp),
        Ok(Err(e)) => e.into_response(),
        Err(e) => {
            tracing::error!(error = %e, "ingest task failed");
            http::error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}

async fn legacy_ingest(req: Request<Incoming>, state: &Arc<State>) -> Resp {
    let presented = req
        .headers()
        .get(DEVICE_KEY_HEADER)
        .map(HeaderValue::as_bytes);
    let device = match legacy::authenticate(&state.legacy_keys, presented) {
        Ok(d) => d.to_owned(),
        Err(e) => return e.into_response(),
    };
    // A header that is not text cannot equal a hex checksum; "" makes parse_and_verify say so.
    let header_checksum = req
        .headers()
        .get(CHECKSUM_HEADER)
        .map(|v| v.to_str().unwrap_or("").to_owned());
    let length = content_length(&req);
    let body = match http::read_body(req.into_body(), length, state.max_body_bytes).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let state = state.clone();
    let job = tokio::task::spawn_blocking(move || {
        let result = legacy::store_body(
            &mut state.store(),
            &device,
            &body,
            header_checksum.as_deref(),
            now_ms(),
        );
        if let Err(legacy::LegacyStoreError::Store(e)) = &result {
            tracing::error!(%device, error = %e, "storing legacy record failed");
        }
        result
    });
    match job.await {
        Ok(Ok(resp)) => http::json(StatusCode::OK, &resp),
        Ok(Err(legacy::LegacyStoreError::Store(_))) => {
            http::error(StatusCode::INTERNAL_SERVER_ERROR, "storage error")
        }
        Ok(Err(e)) => http::error(e.status(), &e.to_string()),
        Err(e) => {
            tracing::error!(error = %e, "legacy ingest task failed");
            http::error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}

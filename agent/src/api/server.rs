//! Listeners (unix socket, optional loopback TCP) and per-connection HTTP/1.1 serving with a
//! graceful stop: on shutdown the listeners close, idle keep-alive connections close, and
//! requests already being handled run to completion (their records are committed and answered).

use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio::task::JoinSet;

use super::routes::{self, Via};
use super::state::AppState;
use crate::shutdown::Shutdown;

/// How long shutdown waits for in-flight requests before cutting connections. A request cut
/// here was never answered with 202, so no acknowledged record is affected.
const DRAIN_GRACE: Duration = Duration::from_secs(20);

#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("cannot create socket directory {path}: {source}")]
    Dir { path: PathBuf, source: io::Error },
    #[error("{path} exists and is not a socket; refusing to replace it")]
    NotASocket { path: PathBuf },
    #[error("{path} is in use by a running process (another outpost-agent?)")]
    InUse { path: PathBuf },
    #[error("cannot remove stale socket {path}: {source}")]
    RemoveStale { path: PathBuf, source: io::Error },
    #[error("cannot listen on unix socket {path}: {source}")]
    Unix { path: PathBuf, source: io::Error },
    #[error("cannot set mode {mode:o} on {path}: {source}")]
    Chmod {
        path: PathBuf,
        mode: u32,
        source: io::Error,
    },
    #[error("cannot listen on tcp {addr}: {source}")]
    Tcp {
        addr: std::net::SocketAddr,
        source: io::Error,
    },
}

pub enum Listener {
    Unix(UnixListener, PathBuf),
    Tcp(TcpListener),
}

pub fn bind_unix(path: &Path, mode: u32) -> Result<Listener, BindError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| BindError::Dir {
            path: dir.to_owned(),
            source,
        })?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            // A socket file that accepts connections belongs to a live agent; never steal it.
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(BindError::InUse {
                    path: path.to_owned(),
                });
            }
            std::fs::remove_file(path).map_err(|source| BindError::RemoveStale {
                path: path.to_owned(),
                source,
            })?;
        }
        Ok(_) => {
            return Err(BindError::NotASocket {
                path: path.to_owned(),
            })
        }
        Err(_) => {}
    }
    let listener = UnixListener::bind(path).map_err(|source| BindError::Unix {
        path: path.to_owned(),
        source,
    })?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|source| {
        BindError::Chmod {
            path: path.to_owned(),
            mode,
            source,
        }
    })?;
    Ok(Listener::Unix(listener, path.to_owned()))
}

pub async fn bind_tcp(addr: std::net::SocketAddr) -> Result<Listener, BindError> {
    TcpListener::bind(addr)
        .await
        .map(Listener::Tcp)
        .map_err(|source| BindError::Tcp { addr, source })
}

impl Listener {
    pub fn describe(&self) -> String {
        match self {
            Listener::Unix(_, p) => format!("unix:{}", p.display()),
            Listener::Tcp(l) => match l.local_addr() {
                Ok(a) => format!("tcp:{a}"),
                Err(_) => "tcp".to_owned(),
            },
        }
    }
}

/// Accepts connections until shutdown, then drains them. Returns once every connection ended.
pub async fn serve(listener: Listener, state: Arc<AppState>, mut shutdown: Shutdown) {
    let name = listener.describe();
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = accept(&listener) => match accepted {
                Ok(Accepted::Unix(s)) => { conns.spawn(serve_conn(s, state.clone(), shutdown.clone(), Via::Unix)); }
                Ok(Accepted::Tcp(s)) => {
                    let _ = s.set_nodelay(true);
                    conns.spawn(serve_conn(s, state.clone(), shutdown.clone(), Via::Tcp));
                }
                Err(e) => {
                    // Typically EMFILE: back off briefly instead of spinning on the error.
                    tracing::warn!(listener = %name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            _ = shutdown.wait() => break,
        }
    }
    if let Listener::Unix(_, path) = &listener {
        // Only our own socket file: nobody else can have bound this path while we held it.
        let _ = std::fs::remove_file(path);
    }
    drop(listener);
    let open = conns.len();
    let drained = tokio::time::timeout(DRAIN_GRACE, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(listener = %name, open = conns.len(), "connections still busy after the grace period; closing them");
        conns.abort_all();
        while conns.join_next().await.is_some() {}
    }
    tracing::debug!(listener = %name, connections = open, "listener stopped");
}

enum Accepted {
    Unix(tokio::net::UnixStream),
    Tcp(tokio::net::TcpStream),
}

async fn accept(listener: &Listener) -> io::Result<Accepted> {
    match listener {
        Listener::Unix(l, _) => l.accept().await.map(|(s, _)| Accepted::Unix(s)),
        Listener::Tcp(l) => l.accept().await.map(|(s, _)| Accepted::Tcp(s)),
    }
}

/// How long a client may take to send a request's headers (also how long an idle keep-alive
/// connection stays open).
const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

async fn serve_conn<I>(io: I, state: Arc<AppState>, mut shutdown: Shutdown, via: Via)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| routes::handle(state.clone(), req, via));
    // Without a timer hyper silently drops its header timeout; an idle or trickling client
    // must not hold a connection (and a file descriptor) forever.
    let conn = http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true)
        .serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = shutdown.wait() => {
            // Finishes the request in progress (if any), then closes.
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

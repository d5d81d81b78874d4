//! The built-in checks, answered by the daemon itself:
//! - `local-api`: a real `GET /v1/status` over the unix socket answers 200 (the socket file,
//!   its accept loop and the handlers all work);
//! - `outbox-writable`: the outbox commits a write transaction (`Outbox::probe`);
//! - `uploaded-once`: the hub acknowledged a batch since the agent started (off by default);
//! - `k3s-ready`: K3s's `/readyz` is ok and its node `Ready`;
//! - `workloads-ready`: the booted slot's workload set is applied and rolled out.

use std::sync::Arc;

use outpost_health::checks::Builtin;
use outpost_health::runner::{BoxFuture, BuiltinProbe, CheckOutcome};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::api::AppState;

pub struct Probes {
    state: Arc<AppState>,
}

impl Probes {
    pub fn new(state: Arc<AppState>) -> Self {
        Self { state }
    }

    async fn local_api(&self) -> CheckOutcome {
        let socket = &self.state.config.api.socket;
        match status_line(socket).await {
            Ok(line) if line.starts_with("HTTP/1.1 200") => {
                CheckOutcome::pass(format!("{} answers", socket.display()))
            }
            Ok(line) => CheckOutcome::fail(format!("{}: {line}", socket.display())),
            Err(e) => CheckOutcome::fail(format!("{}: {e}", socket.display())),
        }
    }

    async fn outbox_writable(&self) -> CheckOutcome {
        match self.state.outbox.probe().await {
            Ok(_) => CheckOutcome::pass("write transaction committed"),
            Err(e) => CheckOutcome::fail(format!("outbox: {e}")),
        }
    }

    fn uploaded_once(&self) -> CheckOutcome {
        if self.state.config.hub.is_none() {
            // No hub will ever come: that is a configuration mistake, not a transient state.
            return CheckOutcome::fatal("no [hub] configured, so nothing can ever be uploaded");
        }
        match self.state.uploader.snapshot().last_success_ms {
            Some(ms) => CheckOutcome::pass(format!("last upload at {ms} ms since the epoch")),
            None => CheckOutcome::fail("no batch acknowledged by the hub since the agent started"),
        }
    }
}

impl Probes {
    async fn k3s_ready(&self) -> CheckOutcome {
        let Some(k3s) = &self.state.k3s else {
            return CheckOutcome::fatal("no [k3s] configured");
        };
        match k3s.ready().await {
            Ok(m) => CheckOutcome::pass(m),
            Err(e) => CheckOutcome::fail(e),
        }
    }

    async fn workloads_ready(&self) -> CheckOutcome {
        let (Some(k3s), Some(workloads)) = (&self.state.k3s, &self.state.workloads) else {
            return CheckOutcome::fatal("workloads-ready needs [workloads] and [k3s]");
        };
        match k3s.check_workloads(workloads).await {
            Ok(m) => CheckOutcome::pass(m),
            Err(e) => CheckOutcome::fail(e),
        }
    }
}

/// The status line of `GET /v1/status` on the unix socket.
async fn status_line(socket: &std::path::Path) -> std::io::Result<String> {
    let mut conn = tokio::net::UnixStream::connect(socket).await?;
    conn.write_all(b"GET /v1/status HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await?;
    let mut head = [0u8; 64];
    let mut n = 0;
    while n < head.len() {
        let read = conn.read(&mut head[n..]).await?;
        if read == 0 {
            break;
        }
        n += read;
        if head[..n].contains(&b'\n') {
            break;
        }
    }
    let text = String::from_utf8_lossy(&head[..n]);
    Ok(text.lines().next().unwrap_or("no answer").trim().to_owned())
}

impl BuiltinProbe for Probes {
    fn probe(&self, which: Builtin) -> BoxFuture<'_, CheckOutcome> {
        Box::pin(async move {
            match which {
                Builtin::LocalApi => self.local_api().await,
                Builtin::OutboxWritable => self.outbox_writable().await,
                Builtin::UploadedOnce => self.uploaded_once(),
                Builtin::K3sReady => self.k3s_ready().await,
                Builtin::WorkloadsReady => self.workloads_ready().await,
            }
        })
    }
}

//! `outpost-fake-k3s`: a TEST STAND-IN for K3s's API server, for the demo and the end-to-end
//! tests on machines where K3s cannot run. Not a Kubernetes: nothing is scheduled or run.
//!
//! Serves `outpost_k3s::testing::ApiServer` (mTLS with a K3s-like TLS dir, the paths the
//! agent's K3s client calls, the Kubernetes API's JSON shapes) in its manifests-dir mode:
//! the YAML files under `--manifests` (walked recursively, as K3s's deploy controller does;
//! the agent writes into `<manifests>/outpost/`) are the cluster. Every Deployment, DaemonSet
//! and StatefulSet in them is reported rolled out unless its pod template carries the
//! annotation `outpost.io/test-never-ready: "true"`; each file is an AddOn (named after its
//! basename up to the first '.') whose `spec.checksum` is the file's SHA-256. A deleted AddOn
//! stays deleted until its file changes.
//!
//! Writes the TLS dir (`server-ca.crt`, `client-admin.crt`/`.key`, `client-ca.crt`, the
//! serving certificate) unless it already holds one, prints `listening on ADDR` once it
//! accepts connections, appends `METHOD path` for every request to `--requests FILE` if
//! given, and exits on SIGTERM or SIGINT.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use outpost_k3s::testing::{write_tls_dir, ApiServer, Model, TlsDirOptions};

#[derive(Parser)]
#[command(
    version,
    about = "TEST STAND-IN for K3s's API server: the workloads in a manifests dir, always ready \
             unless annotated outpost.io/test-never-ready (for demos and tests; not a Kubernetes)"
)]
struct Args {
    /// Address to serve HTTPS on (port 0: any free port; the one taken is printed).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:6443")]
    listen: SocketAddr,
    /// K3s-like TLS dir: written if it holds no credentials yet, reused otherwise. Point the
    /// agent's `[k3s] tls_dir` here.
    #[arg(long, value_name = "DIR")]
    tls_dir: PathBuf,
    /// The auto-deploy dir the agent writes to (`[workloads] manifests_dir`); created if missing.
    #[arg(long, value_name = "DIR")]
    manifests: PathBuf,
    /// File that gets one line per request (`GET /readyz`, `DELETE /apis/...`).
    #[arg(long, value_name = "FILE")]
    requests: Option<PathBuf>,
}

/// The files the server and a client need.
const TLS_FILES: [&str; 6] = [
    "server-ca.crt",
    "client-ca.crt",
    "client-admin.crt",
    "client-admin.key",
    "serving-kube-apiserver.crt",
    "serving-kube-apiserver.key",
];

fn has_credentials(dir: &Path) -> bool {
    TLS_FILES.iter().all(|f| dir.join(f).is_file())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !has_credentials(&args.tls_dir) {
        write_tls_dir(&args.tls_dir, TlsDirOptions::default())
            .with_context(|| format!("writing the TLS dir {}", args.tls_dir.display()))?;
    }
    std::fs::create_dir_all(&args.manifests)
        .with_context(|| format!("creating {}", args.manifests.display()))?;
    let model = Model::default();
    model.set_manifests_dir(Some(args.manifests.clone()));
    let server = ApiServer::start_on(args.listen, &args.tls_dir, model.clone())
        .await
        .with_context(|| format!("serving on {}", args.listen))?;
    println!("listening on {}", server.addr());
    std::io::stdout().flush()?;

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut logged = 0;
    loop {
        let stop = tokio::select! {
            _ = term.recv() => true,
            _ = tokio::signal::ctrl_c() => true,
            _ = tokio::time::sleep(Duration::from_millis(50)) => false,
        };
        if let Some(path) = &args.requests {
            let requests = model.requests_from(logged);
            if !requests.is_empty() {
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .with_context(|| format!("{}", path.display()))?;
                for line in &requests {
                    writeln!(f, "{line}")?;
                }
                f.flush()?;
                logged += requests.len();
            }
        }
        if stop {
            break;
        }
    }
    server.stop().await;
    Ok(())
}

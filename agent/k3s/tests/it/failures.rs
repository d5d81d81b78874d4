//! What goes wrong, and how it reads.

use std::time::Duration;

use outpost_k3s::testing::{write_tls_dir, ApiServer, Model, TlsDirOptions};
use outpost_k3s::{ClientConfig, K3sClient, K3sError, WorkloadKind, WorkloadRef};

use super::{config, setup};

#[tokio::test]
async fn a_client_certificate_of_another_ca_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    let (server, _) = setup(dir.path()).await;
    write_tls_dir(other.path(), TlsDirOptions::default()).unwrap();
    let client = K3sClient::new(ClientConfig {
        client_cert: other.path().join("client-admin.crt"),
        client_key: other.path().join("client-admin.key"),
        ..config(dir.path(), &server.url())
    })
    .unwrap();
    let e = client.readyz().await.unwrap_err();
    assert!(
        matches!(e, K3sError::Tls { .. } | K3sError::Http { .. }),
        "{e}"
    );
    // The server's alert is in the message.
    assert!(e.to_string().contains("alert"), "{e}");
    // And a server certificate of another CA is refused by the client.
    let client = K3sClient::new(ClientConfig {
        server_ca: other.path().join("server-ca.crt"),
        ..config(dir.path(), &server.url())
    })
    .unwrap();
    let e = client.readyz().await.unwrap_err();
    assert!(matches!(e, K3sError::Tls { .. }), "{e}");
    assert!(e.to_string().contains("certificate"), "{e}");
}

#[tokio::test]
async fn server_down_is_k3s_not_running() {
    let dir = tempfile::tempdir().unwrap();
    let (server, client) = setup(dir.path()).await;
    assert!(client.readyz().await.unwrap());
    server.stop().await;
    let e = client.readyz().await.unwrap_err();
    assert!(e.is_not_running(), "{e:?}");
    assert!(e.to_string().starts_with("K3s is not running"), "{e}");
}

#[tokio::test]
async fn missing_credentials_say_which_file() {
    let dir = tempfile::tempdir().unwrap();
    let client = K3sClient::new(config(dir.path(), "https://127.0.0.1:1")).unwrap();
    let e = client.nodes().await.unwrap_err();
    assert!(matches!(e, K3sError::ReadCredentials { .. }), "{e}");
    assert!(e.to_string().contains("client-admin.crt"), "{e}");
}

/// K3s rewrites its certificates on rotation: the same client picks up the new files.
#[tokio::test]
async fn rotated_credentials_are_reloaded() {
    let dir = tempfile::tempdir().unwrap();
    let (server, client) = setup(dir.path()).await;
    assert!(client.readyz().await.unwrap());
    let addr = server.addr();
    server.stop().await;
    // New CAs and leaves (new sizes or mtimes), a server with them on the same address.
    write_tls_dir(dir.path(), TlsDirOptions::default()).unwrap();
    let server = ApiServer::start_on(addr, dir.path(), Model::default())
        .await
        .unwrap();
    assert!(client.readyz().await.unwrap());
    server.model().set_ready(false);
    assert!(!client.readyz().await.unwrap());
}

#[tokio::test]
async fn a_silent_server_times_out() {
    let dir = tempfile::tempdir().unwrap();
    write_tls_dir(dir.path(), TlsDirOptions::default()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((c, _)) = listener.accept().await {
            held.push(c);
        }
    });
    let client = K3sClient::new(ClientConfig {
        timeout: Duration::from_millis(300),
        ..config(dir.path(), &url)
    })
    .unwrap();
    let e = client.readyz().await.unwrap_err();
    assert!(matches!(e, K3sError::Timeout { .. }), "{e}");
    hold.abort();
}

#[tokio::test]
async fn names_are_checked_before_any_request() {
    let dir = tempfile::tempdir().unwrap();
    let (server, client) = setup(dir.path()).await;
    let w = WorkloadRef::new(WorkloadKind::Deployment, "default", "../../api/v1/secrets");
    assert!(matches!(
        client.workload(&w).await,
        Err(K3sError::BadName(_))
    ));
    assert!(server.model().requests().is_empty());
}

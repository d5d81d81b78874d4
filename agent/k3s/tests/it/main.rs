//! The real client against `testing::ApiServer` (an mTLS server answering the paths we call
//! with the JSON shapes of the Kubernetes API reference and K3s's AddOn objects).

mod calls;
mod failures;

use std::path::Path;
use std::time::Duration;

use outpost_k3s::testing::{write_tls_dir, ApiServer, Model, TlsDirOptions};
use outpost_k3s::{ClientConfig, K3sClient};

/// A TLS dir, a server on it and a client for it.
pub async fn setup(dir: &Path) -> (ApiServer, K3sClient) {
    write_tls_dir(dir, TlsDirOptions::default()).unwrap();
    let server = ApiServer::start(dir, Model::default()).await.unwrap();
    let client = K3sClient::new(config(dir, &server.url())).unwrap();
    (server, client)
}

pub fn config(dir: &Path, url: &str) -> ClientConfig {
    ClientConfig {
        url: url.to_owned(),
        timeout: Duration::from_secs(5),
        ..ClientConfig::from_tls_dir(dir)
    }
}

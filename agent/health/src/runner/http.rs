//! The HTTP(S) check: `GET url` must answer 2xx. hyper http1 over TCP, or over rustls (ring
//! provider) trusting `ca_file` (PEM) if given, else the webpki roots. One connection per run:
//! the check is rare and a kept-alive connection could hide a server that stopped accepting.

use std::path::Path;
use std::sync::Arc;

use http_body_util::Empty;
use hyper::body::Bytes;
use hyper::{Request, Uri};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::CheckOutcome;

pub async fn get(url: &str, ca_file: Option<&Path>) -> CheckOutcome {
    match try_get(url, ca_file).await {
        Ok(status) if status.is_success() => CheckOutcome::pass(format!("{url} answered {status}")),
        Ok(status) => CheckOutcome::fail(format!("{url} answered {status}")),
        Err(e) => CheckOutcome::fail(format!("{url}: {e}")),
    }
}

async fn try_get(url: &str, ca_file: Option<&Path>) -> Result<hyper::StatusCode, String> {
    let uri: Uri = url.parse().map_err(|e| format!("bad url: {e}"))?;
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err("scheme must be http or https".into()),
    };
    let host = uri.host().ok_or("url has no host")?.to_owned();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    // IPv6 literals come bracketed in URLs; connect and SNI want them bare.
    let bare = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let tcp = TcpStream::connect((bare.as_str(), port))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let authority = uri
        .authority()
        .map(|a| a.as_str().to_owned())
        .unwrap_or(host);
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    if https {
        let config = tls_config(ca_file)?;
        let name = ServerName::try_from(bare).map_err(|e| format!("server name: {e}"))?;
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|e| format!("tls: {e}"))?;
        request(tls, &authority, &path).await
    } else {
        request(tcp, &authority, &path).await
    }
}

async fn request<S>(io: S, authority: &str, path: &str) -> Result<hyper::StatusCode, String>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| format!("http: {e}"))?;
    // The connection task ends with the request (or when this future is dropped on timeout).
    let conn = tokio::spawn(conn);
    let req = Request::get(path)
        .header(hyper::header::HOST, authority)
        .header(hyper::header::USER_AGENT, "outpost-health")
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("request: {e}"))?;
    let result = sender.send_request(req).await.map(|r| r.status());
    conn.abort();
    result.map_err(|e| format!("http: {e}"))
}

fn tls_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let pem =
                std::fs::read(path).map_err(|e| format!("ca_file {}: {e}", path.display()))?;
            let mut n = 0;
            for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
                let cert = cert.map_err(|e| format!("ca_file {}: {e}", path.display()))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("ca_file {}: {e}", path.display()))?;
                n += 1;
            }
            if n == 0 {
                return Err(format!("ca_file {} holds no certificate", path.display()));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("tls: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;
    use crate::record::Verdict;

    /// A one-line HTTP server answering every connection with `status`.
    async fn server(status: &'static str) -> u16 {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut c, _)) = l.accept().await {
                let mut buf = [0u8; 1024];
                let _ = c.read(&mut buf).await;
                let resp = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n");
                let _ = c.write_all(resp.as_bytes()).await;
            }
        });
        port
    }

    #[tokio::test]
    async fn two_hundreds_pass_others_fail() {
        let ok = server("200 OK").await;
        let r = get(&format!("http://127.0.0.1:{ok}/readyz"), None).await;
        assert_eq!(r.verdict, Verdict::Pass, "{r:?}");
        let bad = server("503 Service Unavailable").await;
        let r = get(&format!("http://127.0.0.1:{bad}/readyz"), None).await;
        assert_eq!(r.verdict, Verdict::Fail);
        assert!(r.detail.unwrap().contains("503"));
        // TLS against a plain-text server fails the handshake (retryable, not a pass).
        let r = get(&format!("https://127.0.0.1:{ok}/"), None).await;
        assert_eq!(r.verdict, Verdict::Fail, "{r:?}");
        let r = get("http://127.0.0.1:1/", None).await;
        assert_eq!(r.verdict, Verdict::Fail);
    }
}

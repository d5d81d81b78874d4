//! outpostctl: the command-line client of the agent's local API.

pub mod cli;
pub mod client;
pub mod delivery;
pub mod format;
pub mod health;
pub mod identity;
pub mod update;
pub mod update_format;
pub mod workloads;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod update_tests;

use std::io::Read;
use std::path::PathBuf;

use bytes::Bytes;
use hyper::Method;
use outpost_proto::ingest::ErrorBody;

use crate::config::Config;
use crate::views::{OutboxView, StatusView};
use cli::{Cli, Command};
use client::{CtlError, CtlResponse};
// Any argument makes a valid request line; the agent (not the client) decides what is acceptable.
use outpost_proto::query::encode as encode_component;

pub const EXIT_OK: u8 = 0;
pub const EXIT_REFUSED: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_UNREACHABLE: u8 = 3;

/// What to print and the exit status.
#[derive(Debug, Default)]
pub struct Outcome {
    pub code: u8,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    pub(crate) fn ok(stdout: String) -> Self {
        Self {
            code: EXIT_OK,
            stdout,
            stderr: String::new(),
        }
    }
    /// A report on stdout whose exit status says whether what it reports failed.
    pub(crate) fn report(failed: bool, stdout: String) -> Self {
        Self {
            code: if failed { EXIT_REFUSED } else { EXIT_OK },
            stdout,
            stderr: String::new(),
        }
    }
    pub(crate) fn fail(code: u8, message: impl std::fmt::Display) -> Self {
        Self {
            code,
            stdout: String::new(),
            stderr: format!("outpostctl: {message}\n"),
        }
    }
}

pub fn socket_path(cli: &Cli) -> Result<PathBuf, String> {
    if let Some(path) = &cli.config {
        return Config::load(path)
            .map(|c| c.api.socket)
            .map_err(|e| e.to_string());
    }
    Ok(cli
        .socket
        .clone()
        .unwrap_or_else(|| PathBuf::from(cli::DEFAULT_SOCKET)))
}

/// Runs one command. `stdin` is read only for `publish ... -`. Progress of `install` is
/// dropped; see [`run_live`].
pub async fn run(cli: Cli, stdin: &mut dyn Read) -> Outcome {
    run_live(cli, stdin, false, &mut |_| {}).await
}

/// [`run`], with `install`'s progress handed to `live` as it happens (`tty`: one updating
/// line instead of one line per step).
pub async fn run_live(
    cli: Cli,
    stdin: &mut dyn Read,
    tty: bool,
    live: &mut dyn FnMut(&str),
) -> Outcome {
    // Offline: needs neither the agent nor its socket.
    if let Command::Info(args) = &cli.command {
        return update::info(cli.config.as_deref(), args);
    }
    let socket = match socket_path(&cli) {
        Ok(s) => s,
        Err(e) => return Outcome::fail(EXIT_USAGE, e),
    };
    match cli.command {
        Command::Publish(args) => {
            let body = if args.record == "-" {
                let mut buf = Vec::new();
                if let Err(e) = stdin.read_to_end(&mut buf) {
                    return Outcome::fail(
                        EXIT_USAGE,
                        format!("cannot read the record from stdin: {e}"),
                    );
                }
                buf
            } else {
                args.record.into_bytes()
            };
            let mut target = format!("/v1/outbox/{}", encode_component(&args.stream));
            if let Some(p) = &args.priority {
                target.push_str("?priority=");
                target.push_str(&encode_component(p));
            }
            let mut headers = Vec::new();
            if let Some(key) = &args.key {
                headers.push(("idempotency-key", key.as_str()));
            }
            let resp =
                match client::request(&socket, Method::POST, &target, &headers, Bytes::from(body))
                    .await
                {
                    Ok(r) => r,
                    Err(e) => return request_failed(e),
                };
            if resp.status != 202 {
                return refused(&resp);
            }
            if args.json {
                return Outcome::ok(text_line(&resp.body));
            }
            match serde_json::from_slice::<serde_json::Value>(&resp.body) {
                Ok(v) => match v.get("id").and_then(|i| i.as_str()) {
                    Some(id) => Outcome::ok(format!("{id}\n")),
                    None => Outcome::ok(text_line(&resp.body)),
                },
                Err(_) => Outcome::ok(text_line(&resp.body)),
            }
        }
        Command::Status(out) => {
            get(&socket, "/v1/status", out.json, |b| {
                serde_json::from_slice::<StatusView>(b).map(|v| format::status(&v))
            })
            .await
        }
        Command::Outbox(out) => {
            get(&socket, "/v1/outbox", out.json, |b| {
                serde_json::from_slice::<OutboxView>(b).map(|v| format::outbox(&v))
            })
            .await
        }
        Command::Info(_) => Outcome::fail(EXIT_USAGE, "internal: info is handled above"),
        Command::Install(args) => update::install(&socket, &args, tty, live).await,
        Command::Slots(out) => update::slots(&socket, out.json).await,
        Command::Mark(args) => update::mark(&socket, &args).await,
        Command::Health(args) => health::health(&socket, &args).await,
        Command::Identity(out) => identity::identity(&socket, out.json).await,
        Command::Enroll(args) => identity::enroll(&socket, &args).await,
        Command::Update(args) => delivery::update(&socket, &args.command).await,
        Command::Workloads(args) => workloads::workloads(&socket, &args).await,
        Command::K3s(out) => workloads::k3s(&socket, out.json).await,
    }
}

pub(crate) async fn get(
    socket: &std::path::Path,
    path: &str,
    json: bool,
    render: impl Fn(&[u8]) -> Result<String, serde_json::Error>,
) -> Outcome {
    let resp = match client::request(socket, Method::GET, path, &[], Bytes::new()).await {
        Ok(r) => r,
        Err(e) => return request_failed(e),
    };
    if resp.status != 200 {
        return refused(&resp);
    }
    if json {
        return Outcome::ok(text_line(&resp.body));
    }
    match render(&resp.body) {
        Ok(text) => Outcome::ok(text),
        Err(e) => Outcome::fail(
            EXIT_REFUSED,
            format!("unexpected answer from the agent ({e}); try --json"),
        ),
    }
}

pub(crate) fn text_line(body: &[u8]) -> String {
    let mut s = String::from_utf8_lossy(body).into_owned();
    if !s.ends_with('\n') {
        s.push('\n');
    }
    s
}

pub(crate) fn refused(resp: &CtlResponse) -> Outcome {
    let message = match serde_json::from_slice::<ErrorBody>(&resp.body) {
        Ok(b) => b.error,
        Err(_) => String::from_utf8_lossy(&resp.body).trim().to_owned(),
    };
    Outcome::fail(EXIT_REFUSED, format!("{message} (HTTP {})", resp.status))
}

pub(crate) fn request_failed(e: CtlError) -> Outcome {
    match e {
        CtlError::Request(_) => Outcome::fail(EXIT_USAGE, e),
        _ => Outcome::fail(EXIT_UNREACHABLE, e),
    }
}

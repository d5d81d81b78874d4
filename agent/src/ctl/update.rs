//! The update commands: `info` (offline: verifies the bundle here), and `install`, `slots`,
//! `mark`, which ask the agent.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use hyper::Method;
use outpost_bundle::{Bundle, Purpose};

use super::cli::{InfoArgs, InstallArgs, MarkArgs};
use super::client::{self, CtlResponse};
use super::{refused, request_failed, text_line, update_format, Outcome, EXIT_REFUSED, EXIT_USAGE};
use crate::config::Config;
use crate::update::context;
use crate::views::{InstallRequest, InstallState, InstallView, MarkRequest, MarkView};

/// How often `install` asks for progress: often enough for a smooth bar, rare enough to cost
/// the agent nothing.
const POLL: Duration = Duration::from_millis(200);

pub fn info(config: Option<&Path>, args: &InfoArgs) -> Outcome {
    let (keyring, mut purpose) =
        match (config, &args.keyring) {
            // clap cannot make a subcommand flag conflict with a global one; check here.
            (Some(_), Some(_)) => {
                return Outcome::fail(EXIT_USAGE, "--keyring and --config exclude each other")
            }
            (None, Some(pem)) => match context::keyring_file(pem) {
                Ok(k) => (k, Purpose::default()),
                Err(e) => return Outcome::fail(EXIT_USAGE, e),
            },
            (Some(path), None) => {
                let cfg = match Config::load(path) {
                    Ok(c) => c,
                    Err(e) => return Outcome::fail(EXIT_USAGE, e),
                };
                let Some(update) = cfg.update else {
                    return Outcome::fail(
                        EXIT_USAGE,
                        format!(
                        "{}: updates are not configured (no [update] section); use --keyring PEM",
                        path.display()
                    ),
                    );
                };
                match context::keyring(&update) {
                    Ok(k) => (k, update.purpose),
                    Err(e) => return Outcome::fail(EXIT_USAGE, e),
                }
            }
            (None, None) => return Outcome::fail(
                EXIT_USAGE,
                "info needs a keyring: --keyring PEM, or --config FILE with an [update] section",
            ),
        };
    if let Some(name) = &args.check_purpose {
        match Purpose::from_rauc_name(name) {
            Some(p) => purpose = p,
            None => {
                return Outcome::fail(
                    EXIT_USAGE,
                    format!("--check-purpose {name:?}: expected smimesign, codesign or any"),
                )
            }
        }
    }
    let mut opts = outpost_bundle::VerifyOptions::at(std::time::SystemTime::now());
    opts.purpose = purpose;
    let bundle = match Bundle::open(&args.bundle, &keyring, &opts) {
        Ok(b) => b,
        Err(e) => return Outcome::fail(EXIT_REFUSED, format!("{}: {e}", args.bundle.display())),
    };
    if args.json {
        return match serde_json::to_string(bundle.info()) {
            Ok(text) => Outcome::ok(format!("{text}\n")),
            Err(e) => Outcome::fail(EXIT_REFUSED, format!("cannot encode the summary: {e}")),
        };
    }
    Outcome::ok(update_format::info(bundle.info()))
}

/// Starts the install, then follows it until it ends. `live` receives progress text as it
/// happens (a carriage-return line on a terminal, whole lines otherwise).
pub async fn install(
    socket: &Path,
    args: &InstallArgs,
    tty: bool,
    live: &mut dyn FnMut(&str),
) -> Outcome {
    // The agent has another working directory: send an absolute path.
    let bundle = match std::path::absolute(&args.bundle) {
        Ok(p) => p,
        Err(e) => return Outcome::fail(EXIT_USAGE, format!("{}: {e}", args.bundle.display())),
    };
    let Some(bundle) = bundle.to_str().map(str::to_owned) else {
        return Outcome::fail(EXIT_USAGE, "the bundle path must be valid UTF-8");
    };
    let body = match serde_json::to_vec(&InstallRequest { bundle }) {
        Ok(b) => b,
        Err(e) => return Outcome::fail(EXIT_USAGE, e),
    };
    let resp =
        match client::request(socket, Method::POST, "/v1/install", &[], Bytes::from(body)).await {
            Ok(r) => r,
            Err(e) => return request_failed(e),
        };
    if resp.status != 202 {
        return refused(&resp);
    }
    let started: Option<InstallView> = serde_json::from_slice(&resp.body).ok();
    let started_ms = started.and_then(|v| v.started_ms);
    let mut shown = String::new();
    loop {
        let resp =
            match client::request(socket, Method::GET, "/v1/install", &[], Bytes::new()).await {
                Ok(r) => r,
                Err(e) => return request_failed(e),
            };
        if resp.status != 200 {
            return refused(&resp);
        }
        let view = match parse::<InstallView>(&resp) {
            Ok(v) => v,
            Err(o) => return o,
        };
        if started_ms.is_some() && view.started_ms != started_ms {
            return Outcome::fail(
                EXIT_REFUSED,
                "another install replaced ours; see outpostctl slots",
            );
        }
        if !args.json {
            show_progress(&view, tty, &mut shown, live);
        }
        if view.state != InstallState::Running {
            if tty && !args.json && !shown.is_empty() {
                live("\n");
            }
            return finished(&view, &resp, args.json);
        }
        tokio::time::sleep(POLL).await;
    }
}

fn show_progress(view: &InstallView, tty: bool, shown: &mut String, live: &mut dyn FnMut(&str)) {
    let line = format!("[{:>3}%] {}", view.percent, view.step);
    if tty {
        if *shown != line {
            live(&format!("\r\x1b[2K{line}"));
            *shown = line;
        }
    } else if *shown != view.step {
        // One line per step: scripts and logs get the steps, not every percent.
        live(&format!("{line}\n"));
        shown.clone_from(&view.step);
    }
}

fn finished(view: &InstallView, resp: &CtlResponse, json: bool) -> Outcome {
    let ok = view.state == InstallState::Succeeded;
    if json {
        let out = text_line(&resp.body);
        return if ok {
            Outcome::ok(out)
        } else {
            Outcome {
                code: EXIT_REFUSED,
                stdout: out,
                stderr: String::new(),
            }
        };
    }
    if !ok {
        return Outcome::fail(
            EXIT_REFUSED,
            view.error.as_deref().unwrap_or("installation failed"),
        );
    }
    Outcome::ok(update_format::install_done(view))
}

pub async fn slots(socket: &Path, json: bool) -> Outcome {
    super::get(socket, "/v1/slots", json, |b| {
        serde_json::from_slice(b).map(|v| update_format::slots(&v))
    })
    .await
}

pub async fn mark(socket: &Path, args: &MarkArgs) -> Outcome {
    let req = MarkRequest {
        state: args.state.clone(),
        slot: args.slot.clone(),
    };
    let body = match serde_json::to_vec(&req) {
        Ok(b) => b,
        Err(e) => return Outcome::fail(EXIT_USAGE, e),
    };
    let resp = match client::request(
        socket,
        Method::POST,
        "/v1/slots/mark",
        &[],
        Bytes::from(body),
    )
    .await
    {
        Ok(r) => r,
        Err(e) => return request_failed(e),
    };
    if resp.status != 200 {
        return refused(&resp);
    }
    if args.json {
        return Outcome::ok(text_line(&resp.body));
    }
    match parse::<MarkView>(&resp) {
        Ok(v) => Outcome::ok(format!("{}\n", v.message)),
        Err(o) => o,
    }
}

fn parse<T: serde::de::DeserializeOwned>(resp: &CtlResponse) -> Result<T, Outcome> {
    serde_json::from_slice(&resp.body).map_err(|e| {
        Outcome::fail(
            EXIT_REFUSED,
            format!("unexpected answer from the agent ({e}); try --json"),
        )
    })
}
